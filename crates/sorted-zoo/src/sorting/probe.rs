//! Small tensor helpers shared by the families' scores: squared norms of weight columns and
//! rows, block sums, and reading a score tensor back as `Vec<f32>`.

use burn::prelude::*;

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
