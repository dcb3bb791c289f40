//! One optimizer step's worth of sub-model gradients, summed.

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

/// The summed gradients of one step and the per-sub-model loss values (unweighted).
#[derive(Debug)]
pub struct Accumulated {
    /// `sum_i w_i * grad(loss_i)`, with the weights normalised to sum to 1.
    pub grads: GradientsParams,
    /// `loss_i` of each sub-model, in sampling order.
    pub losses: Vec<f64>,
}

impl Accumulated {
    /// The weighted mean loss of the step.
    pub fn mean_loss(&self, weights: &[f64]) -> f64 {
        let w = normalised_weights(weights, self.losses.len());
        self.losses.iter().zip(w).map(|(l, w)| l * w).sum()
    }
}

/// Normalised loss weights: `weights` scaled to sum to 1, or the mean (`1/k` each) when empty.
///
/// # Panics
/// If `weights` is non-empty with a length other than `k` (configs are validated upstream).
pub fn normalised_weights(weights: &[f64], k: usize) -> Vec<f64> {
    if weights.is_empty() {
        return vec![1.0 / k as f64; k];
    }
    assert_eq!(weights.len(), k, "one loss weight per sampled sub-model");
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}

/// Runs forward + backward for each sub-model and sums the gradients, weighted by `weights`
/// (normalised; empty = the mean of the losses). The result equals the gradient of the weighted
/// sum of the losses, computed with one backward pass per sub-model so that only one graph is
/// alive at a time.
///
/// `S` is the space's sub-model type ([`sorted_nn::SubModel`], [`sorted_nn::TransformerSubModel`]).
/// `loss_of(model, i, sub)` returns the scalar loss of sub-model `sub`, the `i`-th of the step
/// (use `i` to pick a fresh batch per sub-model).
///
/// # Example
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::prelude::*;
/// use sorted_nn::{NestingSpace, NestingSpaceConfig};
/// use sorted_sched::accumulate;
/// use sorted_nn::SortedLinearConfig;
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1], widths: Some(vec![2, 4]), block_widths: None, tie_widths: false,
/// })?;
/// let layer = SortedLinearConfig::new(3, 4).init::<B>(&device);
/// let x = Tensor::<B, 2>::ones([2, 3], &device);
/// let subs: Vec<_> = space.iter().collect();
/// let acc = accumulate(&layer, &subs, &[], |m, _, sub| m.forward(x.clone(), sub.last_width()).sum());
/// assert_eq!(acc.losses.len(), 2);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
pub fn accumulate<B, M, S>(
    model: &M,
    subs: &[S],
    weights: &[f64],
    mut loss_of: impl FnMut(&M, usize, &S) -> Tensor<B, 1>,
) -> Accumulated
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let w = normalised_weights(weights, subs.len());
    let mut acc = GradientsAccumulator::<M>::new();
    // Loss values stay on the device until the end: one read (one device sync) per step.
    let mut values = Vec::with_capacity(subs.len());
    for (i, sub) in subs.iter().enumerate() {
        let loss = loss_of(model, i, sub);
        values.push(loss.clone().detach());
        let grads = loss.mul_scalar(w[i]).backward();
        acc.accumulate(model, GradientsParams::from_grads(grads, model));
    }
    let losses =
        if values.is_empty() { Vec::new() } else { Tensor::cat(values, 0).into_data().iter::<f64>().collect() };
    Accumulated { grads: acc.grads(), losses }
}
