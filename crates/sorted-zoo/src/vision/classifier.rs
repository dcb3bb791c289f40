//! The interface every sorted classifier in the zoo implements.

use burn::prelude::*;
use sorted_nn::{Cost, NestingSpace, NormPass, SpecError, SubModel, SubModelNormStats};

/// A sorted image classifier: one set of parameters, any sub-model of its space selectable per
/// call.
///
/// Implemented by [`SortedMlp`](crate::SortedMlp) and [`SortedCnn`](crate::SortedCnn), so runners
/// and benches can be written once for every model.
pub trait SortedClassifier<B: Backend>: Module<B> {
    /// The plain dense model a sub-model is extracted into.
    type Dense: DenseClassifier<B>;

    /// Class logits of sub-model `sub`.
    ///
    /// # Shapes
    /// - images: `[batch, channels, height, width]`
    /// - output: `[batch, n_classes]`
    ///
    /// # Panics
    /// If `sub` does not fit the allocation (check spaces with
    /// [`SortedClassifier::check_space`] first) or `norm` lacks statistics the pass needs.
    fn forward(&self, images: Tensor<B, 4>, sub: &SubModel, norm: &mut NormPass<'_, B>) -> Tensor<B, 2>;

    /// Analytic parameters and FLOPs (per sample) of `sub`, shared head included.
    fn cost(&self, sub: &SubModel) -> Cost;

    /// Whether the model has BatchNorm layers (whose statistics must be recalibrated per
    /// sub-model before evaluation).
    fn has_batch_norm(&self) -> bool;

    /// Checks that every sub-model of `space` fits this model's allocation.
    ///
    /// # Errors
    /// [`SpecError::Allocation`] naming the block that does not fit.
    fn check_space(&self, space: &NestingSpace) -> Result<(), SpecError>;

    /// Copies sub-model `sub` into a dense model of ordinary burn-nn layers. Models with
    /// BatchNorm need `stats` recalibrated for `sub`.
    ///
    /// # Panics
    /// If the model has BatchNorm and `stats` is `None`, or `sub` does not fit.
    fn extract(&self, sub: &SubModel, stats: Option<&SubModelNormStats<B>>) -> Self::Dense;
}

/// A dense classifier extracted from a sorted one.
pub trait DenseClassifier<B: Backend>: Module<B> {
    /// Class logits, `[batch, n_classes]`, for images `[batch, channels, height, width]`.
    fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2>;
}

/// Checks `space` against per-block allocated widths.
pub(crate) fn check_widths(space: &NestingSpace, allocated: &[usize]) -> Result<(), SpecError> {
    if space.n_blocks() > allocated.len() {
        return Err(SpecError::Allocation {
            what: "depth".into(),
            allocated: allocated.len(),
            needed: space.n_blocks(),
        });
    }
    for (b, &alloc) in allocated.iter().enumerate().take(space.n_blocks()) {
        let needed = *space.block_widths(b).last().expect("validated");
        if needed > alloc {
            return Err(SpecError::Allocation { what: format!("block {b} width"), allocated: alloc, needed });
        }
    }
    Ok(())
}
