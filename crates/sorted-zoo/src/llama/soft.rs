//! The sorted fine-tuning (SoFT) objective: a weighted mean of the next-token cross-entropies
//! of several sub-models (exit depth x FFN width), sharing one forward pass per FFN width.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

use super::model::SortedLlama;

/// One sub-model in a SoFT loss: its exit depth, its SwiGLU width and its weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftTerm {
    /// Layers run before the exit (through the shared final norm and head).
    pub depth: usize,
    /// SwiGLU units used in every layer.
    pub ffn: usize,
    /// Weight in the mean (positive).
    pub weight: f64,
}

/// A SoFT loss: the weighted mean and each term's own cross-entropy (same order as the terms).
#[derive(Clone, Debug)]
pub struct SoftLoss<B: Backend> {
    /// `sum(weight_i * loss_i) / sum(weight_i)`, the value to differentiate.
    pub total: Tensor<B, 1>,
    /// The cross-entropy of each term.
    pub terms: Vec<Tensor<B, 1>>,
}

/// The SoFT loss of `terms` on next-token prediction: `inputs` and `targets` are `[batch, seq]`
/// (targets are the inputs shifted by one). Terms with the same FFN width share one forward
/// pass ([`SortedLlama::forward_exits`]), so equal-width SoFT (the Sorted LLaMA recipe: every
/// exit at full width) costs one pass plus one head per exit; SortedNet sampling over depth x
/// FFN width costs one pass per distinct width.
///
/// # Panics
/// If `terms` is empty, a weight is not positive and finite, or a depth or width does not fit
/// the model (validate user input first).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_zoo::llama::{SoftTerm, SortedLlamaConfig, soft_loss};
///
/// let device = Default::default();
/// let model = SortedLlamaConfig::tiny().init::<Flex>(&device);
/// let inputs = Tensor::<Flex, 2, Int>::from_ints([[1, 5, 9, 3]], &device);
/// let targets = Tensor::<Flex, 2, Int>::from_ints([[5, 9, 3, 7]], &device);
/// // Exits after 2 and 4 layers, the last weighted 3x, full SwiGLU width (24).
/// let terms = [SoftTerm { depth: 2, ffn: 24, weight: 1.0 }, SoftTerm { depth: 4, ffn: 24, weight: 3.0 }];
/// let loss = soft_loss(&model, inputs, targets, &terms);
/// assert_eq!(loss.terms.len(), 2);
/// ```
pub fn soft_loss<B: Backend>(
    model: &SortedLlama<B>,
    inputs: Tensor<B, 2, Int>,
    targets: Tensor<B, 2, Int>,
    terms: &[SoftTerm],
) -> SoftLoss<B> {
    soft_loss_with(model, inputs, targets, terms, HeadGradient::AllExits)
}

/// Which terms of a SoFT loss train the shared final RMSNorm and the tied head/embedding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeadGradient {
    /// Every exit (the Sorted LLaMA recipe).
    #[default]
    AllExits,
    /// Only terms at the model's full depth: shallower exits read the norm and head as
    /// constants, so they adapt only the layers below them and cannot pull the shared head away
    /// from the full model.
    FullDepthOnly,
}

/// [`soft_loss`] with a choice of which exits train the shared norm and head.
///
/// # Panics
/// As [`soft_loss`].
pub fn soft_loss_with<B: Backend>(
    model: &SortedLlama<B>,
    inputs: Tensor<B, 2, Int>,
    targets: Tensor<B, 2, Int>,
    terms: &[SoftTerm],
    head_gradient: HeadGradient,
) -> SoftLoss<B> {
    assert!(!terms.is_empty(), "soft_loss: no terms");
    assert!(
        terms.iter().all(|t| t.weight.is_finite() && t.weight > 0.0),
        "soft_loss: weights must be positive and finite: {terms:?}"
    );
    let [n, s] = targets.dims();
    let targets = targets.reshape([n * s]);
    let loss_fn = CrossEntropyLossConfig::new().init(&inputs.device());
    let mut per_term: Vec<Option<Tensor<B, 1>>> = vec![None; terms.len()];
    let mut widths: Vec<usize> = terms.iter().map(|t| t.ffn).collect();
    widths.sort_unstable();
    widths.dedup();
    for ffn in widths {
        let mut depths: Vec<usize> = terms.iter().filter(|t| t.ffn == ffn).map(|t| t.depth).collect();
        depths.sort_unstable();
        depths.dedup();
        // With `FullDepthOnly`, the exits below the full depth see the norm and head detached.
        let full = model.layers.len();
        let exits = model.forward_exits_with(inputs.clone(), &depths, ffn, |depth, x| {
            if head_gradient == HeadGradient::AllExits || depth == full {
                model.head(x)
            } else {
                model.head_with(x, model.norm.weight.val().detach(), model.embedding.val().detach())
            }
        });
        for (depth, logits) in depths.iter().zip(exits) {
            let v = logits.dims()[2];
            let loss = loss_fn.forward(logits.reshape([n * s, v]), targets.clone());
            for (slot, term) in per_term.iter_mut().zip(terms) {
                if term.ffn == ffn && term.depth == *depth {
                    *slot = Some(loss.clone());
                }
            }
        }
    }
    let terms_loss: Vec<Tensor<B, 1>> = per_term.into_iter().map(|t| t.expect("every term computed")).collect();
    let weight_sum: f64 = terms.iter().map(|t| t.weight).sum();
    let total = terms_loss
        .iter()
        .zip(terms)
        .map(|(l, t)| l.clone().mul_scalar(t.weight / weight_sum))
        .reduce(|a, b| a + b)
        .expect("at least one term");
    SoftLoss { total, terms: terms_loss }
}
