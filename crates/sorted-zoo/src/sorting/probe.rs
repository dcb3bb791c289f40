//! Small tensor helpers shared by the families' scores: squared norms of weight columns and
//! rows, block sums, reading a score tensor back as `Vec<f32>`, and the transformers' unit gates.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::{LayerScores, TransformerScores};

/// One transformer layer's (head, FFN unit) gates.
pub(crate) type LayerGates<B> = (Tensor<B, 1>, Tensor<B, 1>);

/// The squared L2 norm of every column of `w` (`[r, c]` -> `[c]`).
pub(crate) fn col_sq<B: Backend>(w: Tensor<B, 2>) -> Tensor<B, 1> {
    let c = w.dims()[1];
    w.clone().mul(w).sum_dim(0).reshape([c])
}

/// The squared L2 norm of every row of `w` (`[r, c]` -> `[r]`).
pub(crate) fn row_sq<B: Backend>(w: Tensor<B, 2>) -> Tensor<B, 1> {
    let r = w.dims()[0];
    w.clone().mul(w).sum_dim(1).reshape([r])
}

/// Sums of consecutive blocks of `block` entries (`[n * block]` -> `[n]`): per-feature values
/// summed per head.
pub(crate) fn block_sums<B: Backend>(t: Tensor<B, 1>, block: usize) -> Tensor<B, 1> {
    let n = t.dims()[0] / block;
    t.reshape([n, block]).sum_dim(1).reshape([n])
}

/// A score tensor as `f32` values.
pub(crate) fn to_vec<B: Backend>(t: Tensor<B, 1>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("a float tensor converted to f32")
}

/// A gate of ones, tracked by autodiff when the backend has it: multiplying a unit's output by
/// it changes nothing, and its gradient is the unit's `sum(activation x gradient)`.
pub(crate) fn ones_gate<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 1> {
    Tensor::ones([n], device).require_grad()
}

/// Next-token or class cross-entropy: the mean of `-log_softmax(logits)[target]` over rows
/// (`logits` `[n, classes]`, `targets` `[n]`).
pub(crate) fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let n = targets.dims()[0];
    let log_p = burn::tensor::activation::log_softmax(logits, 1);
    log_p.gather(1, targets.reshape([n, 1])).neg().mean()
}

/// A (head, FFN unit) gate of ones per layer, of the `(heads, units)` of `shapes`; tracked by
/// autodiff when `track`.
pub(crate) fn layer_gates<B: Backend>(
    shapes: impl Iterator<Item = (usize, usize)>,
    track: bool,
    device: &B::Device,
) -> Vec<LayerGates<B>> {
    let gate = |n| if track { ones_gate::<B>(n, device) } else { Tensor::ones([n], device) };
    shapes.map(|(heads, units)| (gate(heads), gate(units))).collect()
}

/// A probe's per-layer (head, FFN unit) mean `|activation|` as scores.
pub(crate) fn mean_scores<B: Backend>(means: Vec<LayerGates<B>>) -> TransformerScores {
    let layers = means.into_iter().map(|(h, f)| LayerScores { heads: to_vec(h), ffn: to_vec(f) }).collect();
    TransformerScores { layers }
}

/// The Taylor scores `|dL/dgate|` of every layer's gates from `grads` (0 for a gate the loss
/// does not reach).
pub(crate) fn gate_scores<B: AutodiffBackend>(gates: &[LayerGates<B>], grads: &B::Gradients) -> TransformerScores {
    let taylor = |g: &Tensor<B, 1>| match g.grad(grads) {
        Some(grad) => to_vec(grad.abs()),
        None => vec![0.0; g.dims()[0]],
    };
    TransformerScores { layers: gates.iter().map(|(h, f)| LayerScores { heads: taylor(h), ffn: taylor(f) }).collect() }
}
