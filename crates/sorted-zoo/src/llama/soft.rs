//! The sorted fine-tuning (SoFT) objective: a weighted mean of the next-token cross-entropies
//! of several sub-models (exit depth x query heads x FFN width), sharing one forward pass per
//! width, with
//! optional self-distillation of the sub-models from the full model.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use sorted_nn::TransformerSubModel;

use super::model::SortedLlama;

/// One sub-model in a SoFT loss, and its weight. The sub-model's depth is its exit (through the
/// shared final norm and head); its query heads are the first `heads / num_kv_heads` of each KV
/// group (see [`SortedLlama`]); its FFN width the SwiGLU units of every layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftTerm {
    /// The sub-model (its `Display`, `L{depth}-H{heads}-F{ffn}`, names it in reports).
    pub sub: TransformerSubModel,
    /// Weight in the mean (positive).
    pub weight: f64,
}

/// A SoFT loss: the weighted mean and each term's own cross-entropy (same order as the terms).
#[derive(Clone, Debug)]
pub struct SoftLoss<B: Backend> {
    /// `sum(weight_i * loss_i) / sum(weight_i)`, the value to differentiate, where `loss_i` is
    /// the term's cross-entropy, or with [`SoftOptions::distill`] `a > 0` and a term other than
    /// the full model, `(1 - a) * cross-entropy + a * KL(full model || term)`.
    pub total: Tensor<B, 1>,
    /// The cross-entropy of each term on the text (same order as the terms).
    pub terms: Vec<Tensor<B, 1>>,
    /// With distillation, each term's KL divergence from the full model's next-token
    /// distribution (`None` for the full model itself, and for every term without it).
    pub distill_terms: Vec<Option<Tensor<B, 1>>>,
}

/// The SoFT loss of `terms` on next-token prediction: `inputs` and `targets` are `[batch, seq]`
/// (targets are the inputs shifted by one). Terms with the same widths (query heads and FFN)
/// share one forward pass ([`SortedLlama::forward_exits`]), so equal-width SoFT (the Sorted
/// LLaMA recipe: every exit at full width) costs one pass plus one head per exit; SortedNet
/// sampling over depth x heads x FFN width costs one pass per distinct pair of widths.
///
/// # Panics
/// If `terms` is empty, a weight is not positive and finite, or a depth or width does not fit
/// the model (validate user input first).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
/// use sorted_zoo::llama::{SoftTerm, SortedLlamaConfig, soft_loss};
///
/// let device = Default::default();
/// let model = SortedLlamaConfig::tiny().init::<Flex>(&device);
/// let exits = TransformerSpaceConfig { depths: vec![2, 4], heads: vec![4], ffn: vec![24], hidden: None };
/// let space = TransformerSpace::new(exits, 16)?;
/// let inputs = Tensor::<Flex, 2, Int>::from_ints([[1, 5, 9, 3]], &device);
/// let targets = Tensor::<Flex, 2, Int>::from_ints([[5, 9, 3, 7]], &device);
/// // Exits after 2 and 4 layers, the last weighted 3x, all 4 query heads, full SwiGLU width.
/// let terms = [
///     SoftTerm { sub: space.parse_sub_model("L2-H4-F24")?, weight: 1.0 },
///     SoftTerm { sub: space.parse_sub_model("L4-H4-F24")?, weight: 3.0 },
/// ];
/// let loss = soft_loss(&model, inputs, targets, &terms);
/// assert_eq!(loss.terms.len(), 2);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
pub fn soft_loss<B: Backend>(
    model: &SortedLlama<B>,
    inputs: Tensor<B, 2, Int>,
    targets: Tensor<B, 2, Int>,
    terms: &[SoftTerm],
) -> SoftLoss<B> {
    soft_loss_with(model, inputs, targets, terms, SoftOptions::default())
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

/// What a SoFT loss does besides the weighted cross-entropies; the default is the Sorted LLaMA
/// recipe (every exit trains the head, no distillation).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SoftOptions {
    /// Which terms train the shared final norm and head.
    pub head_gradient: HeadGradient,
    /// Self-distillation weight `a` in `[0, 1]`: every term other than the full model (all
    /// layers, every query head, full SwiGLU width) minimises `(1 - a) * cross-entropy + a * KL(p_full || p_term)`,
    /// with the full model's next-token distribution `p_full` detached, so it is a fixed target
    /// that only the full model's own term moves. The full model comes from the same pass when
    /// it is a term and from one extra forward pass otherwise. A drafter for greedy
    /// self-speculative decoding is accepted when it agrees with the full model, which is what
    /// this term trains. 0 (the default): the text only.
    pub distill: f64,
}

/// [`soft_loss`] with [`SoftOptions`]: which exits train the shared norm and head, and
/// self-distillation from the full model.
///
/// # Panics
/// As [`soft_loss`], and if `options.distill` is outside `[0, 1]`.
pub fn soft_loss_with<B: Backend>(
    model: &SortedLlama<B>,
    inputs: Tensor<B, 2, Int>,
    targets: Tensor<B, 2, Int>,
    terms: &[SoftTerm],
    options: SoftOptions,
) -> SoftLoss<B> {
    assert!(!terms.is_empty(), "soft_loss: no terms");
    assert!(
        terms.iter().all(|t| t.weight.is_finite() && t.weight > 0.0),
        "soft_loss: weights must be positive and finite: {terms:?}"
    );
    let distill = options.distill;
    assert!((0.0..=1.0).contains(&distill), "soft_loss: distill must be in [0, 1], got {distill}");
    let [n, s] = targets.dims();
    let targets = targets.reshape([n * s, 1]);
    let full = model.full_sub_model();
    let full_depth = full.depth;
    let width_of = |t: &SoftTerm| (t.sub.heads, t.sub.ffn);
    let is_full = |t: &SoftTerm| t.sub.depth == full_depth && width_of(t) == (full.heads, full.ffn);
    let mut logp: Vec<Option<Tensor<B, 2>>> = vec![None; terms.len()];
    // One forward pass per distinct (heads, FFN) width, through a term of that width.
    let mut widths: Vec<&TransformerSubModel> = terms.iter().map(|t| &t.sub).collect();
    widths.sort_unstable_by_key(|t| (t.heads, t.ffn));
    widths.dedup_by_key(|t| (t.heads, t.ffn));
    for sub in widths {
        let width = (sub.heads, sub.ffn);
        let mut depths: Vec<usize> = terms.iter().filter(|t| width_of(t) == width).map(|t| t.sub.depth).collect();
        depths.sort_unstable();
        depths.dedup();
        // With `FullDepthOnly`, the exits below the full depth see the norm and head detached.
        let exits = model.forward_exits_with(inputs.clone(), &depths, sub, |depth, x| {
            if options.head_gradient == HeadGradient::AllExits || depth == full_depth {
                model.head(x)
            } else {
                model.head_with(x, model.norm.weight.val().detach(), model.embedding.val().detach())
            }
        });
        for (depth, logits) in depths.iter().zip(exits) {
            let v = logits.dims()[2];
            let lp = log_softmax(logits.reshape([n * s, v]), 1);
            for (slot, term) in logp.iter_mut().zip(terms) {
                if width_of(term) == width && term.sub.depth == *depth {
                    *slot = Some(lp.clone());
                }
            }
        }
    }
    let logp: Vec<Tensor<B, 2>> = logp.into_iter().map(|t| t.expect("every term computed")).collect();
    let ce: Vec<Tensor<B, 1>> = logp.iter().map(|lp| lp.clone().gather(1, targets.clone()).mean().neg()).collect();
    let teacher: Option<(Tensor<B, 2>, Tensor<B, 2>)> =
        (distill > 0.0 && terms.iter().any(|t| !is_full(t))).then(|| {
            let full = terms.iter().position(is_full).map(|i| logp[i].clone()).unwrap_or_else(|| {
                let logits = model.forward_exits(inputs.clone(), &[full_depth], &full).remove(0);
                let v = logits.dims()[2];
                log_softmax(logits.reshape([n * s, v]), 1)
            });
            let full = full.detach();
            // The full model's probabilities, once for every distilled term.
            (full.clone().exp(), full)
        });
    let kl: Vec<Option<Tensor<B, 1>>> = terms
        .iter()
        .zip(&logp)
        .map(|(t, lp)| {
            let (p, logp_full) = teacher.as_ref().filter(|_| !is_full(t))?;
            Some((p.clone() * (logp_full.clone() - lp.clone())).sum_dim(1).mean())
        })
        .collect();
    let weight_sum: f64 = terms.iter().map(|t| t.weight).sum();
    let total = terms
        .iter()
        .zip(ce.iter().zip(&kl))
        .map(|(t, (ce, kl))| {
            let loss = match kl {
                Some(kl) => ce.clone().mul_scalar(1.0 - distill) + kl.clone().mul_scalar(distill),
                None => ce.clone(),
            };
            loss.mul_scalar(t.weight / weight_sum)
        })
        .reduce(|a, b| a + b)
        .expect("at least one term");
    SoftLoss { total, terms: ce, distill_terms: kl }
}

/// One SoFT term's gradient on one batch: how hard it pulls on the layers every term shares
/// and on the shared final norm and head ([`gradient_probe`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GradientProbe {
    /// The sub-model (exit depth, query heads, SwiGLU width, hidden width).
    #[serde(flatten)]
    pub sub: TransformerSubModel,
    /// Its cross-entropy.
    pub loss: f64,
    /// Layers shared by every term (the shallowest term's depth).
    pub shared_layers: usize,
    /// L2 norm of its gradient over those layers' parameters.
    pub shared_layers_norm: f64,
    /// L2 norm of its gradient over the final norm and the tied embedding/head.
    pub head_norm: f64,
}

/// Each term of `terms` alone on one batch: its loss and the L2 norms of its gradient over the
/// layers every term shares and over the final norm + embedding (one forward and backward pass
/// per term).
pub fn gradient_probe<B: burn::tensor::backend::AutodiffBackend>(
    model: &SortedLlama<B>,
    inputs: Tensor<B, 2, Int>,
    targets: Tensor<B, 2, Int>,
    terms: &[SoftTerm],
    options: SoftOptions,
) -> Vec<GradientProbe> {
    use burn::module::Param;
    fn sq<B: burn::tensor::backend::AutodiffBackend, const D: usize>(p: &Param<Tensor<B, D>>, g: &B::Gradients) -> f64 {
        p.grad(g).map_or(0.0, |g| g.powi_scalar(2).sum().into_scalar().elem::<f64>())
    }
    let shared = terms.iter().map(|t| t.sub.depth).min().unwrap_or(0);
    terms
        .iter()
        .map(|term| {
            let loss = soft_loss_with(model, inputs.clone(), targets.clone(), std::slice::from_ref(term), options);
            let value = loss.total.clone().into_scalar().elem::<f64>();
            let grads = loss.total.backward();
            let mut layers = 0.0;
            for layer in &model.layers[..shared] {
                for w in [
                    &layer.query.weight,
                    &layer.key.weight,
                    &layer.value.weight,
                    &layer.output.weight,
                    &layer.gate.weight,
                    &layer.up.weight,
                    &layer.down.weight,
                ] {
                    layers += sq(w, &grads);
                }
                layers += sq(&layer.attention_norm.weight, &grads) + sq(&layer.ffn_norm.weight, &grads);
            }
            let head = sq(&model.embedding, &grads) + sq(&model.norm.weight, &grads);
            GradientProbe {
                sub: term.sub,
                loss: value,
                shared_layers: shared,
                shared_layers_norm: layers.sqrt(),
                head_norm: head.sqrt(),
            }
        })
        .collect()
}
