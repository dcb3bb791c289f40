//! Which statistics BatchNorm layers use in one forward pass, and their recalibration.

use burn::prelude::*;

use super::batch::{BatchStatistics, SortedBatchNorm};

/// How every BatchNorm layer of one forward pass normalises. Passed explicitly to a model's
/// forward (no hidden mode flag).
#[derive(Debug)]
pub enum NormPass<'a, B: Backend> {
    /// Batch statistics (training).
    Batch,
    /// Batch statistics, and each layer's statistics are appended to the vector in forward
    /// order (the first half of recalibration).
    Observe(&'a mut Vec<BatchStatistics<B>>),
    /// Fixed statistics recalibrated for this sub-model, one per BatchNorm layer in forward
    /// order.
    Calibrated(&'a SubModelNormStats<B>),
    /// Each layer's private running statistics for its active width (switchable BN).
    Switchable,
}

impl<B: Backend> NormPass<'_, B> {
    /// Applies `norm` as the `index`-th BatchNorm layer of this pass.
    ///
    /// # Panics
    /// If calibrated statistics are missing for `index` or do not match the active width.
    pub fn apply(&mut self, norm: &SortedBatchNorm<B>, index: usize, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            NormPass::Batch => norm.forward_batch(x).0,
            NormPass::Observe(seen) => {
                let (y, stats) = norm.forward_batch(x);
                seen.push(stats);
                y
            }
            NormPass::Calibrated(stats) => {
                let layer = stats.layers.get(index).unwrap_or_else(|| {
                    panic!(
                        "NormPass: no calibrated statistics for BatchNorm layer {index} ({} given)",
                        stats.layers.len()
                    )
                });
                norm.forward_with(x, layer)
            }
            NormPass::Switchable => norm.forward_switchable(x),
        }
    }
}

/// Recalibrated BatchNorm statistics of one sub-model: one entry per BatchNorm layer that the
/// sub-model runs, in forward order.
#[derive(Clone, Debug)]
pub struct SubModelNormStats<B: Backend> {
    /// Per-layer statistics.
    pub layers: Vec<BatchStatistics<B>>,
}

impl<B: Backend> SubModelNormStats<B> {
    /// The statistics as plain vectors `(mean, var)` per layer, for saving.
    pub fn to_vecs(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        let v = |t: &Tensor<B, 1>| t.clone().into_data().convert::<f32>().to_vec::<f32>().expect("f32 data");
        self.layers.iter().map(|s| (v(&s.mean), v(&s.var))).collect()
    }

    /// Rebuilds statistics saved with [`SubModelNormStats::to_vecs`].
    pub fn from_vecs(layers: &[(Vec<f32>, Vec<f32>)], device: &B::Device) -> Self {
        let t = |v: &Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), device);
        Self { layers: layers.iter().map(|(m, v)| BatchStatistics { mean: t(m), var: t(v) }).collect() }
    }
}

/// Accumulates per-layer batch statistics over several batches into population statistics
/// (mean of the means; variance from the mean of `var + mean^2`), the exact full-data
/// statistics when the batches have equal sizes.
///
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{BatchStatistics, NormCalibrator};
///
/// let device = Default::default();
/// let t = |v: [f32; 1]| Tensor::<Flex, 1>::from_floats(v, &device);
/// let mut calib = NormCalibrator::new();
/// calib.add(vec![BatchStatistics { mean: t([0.0]), var: t([1.0]) }]);
/// calib.add(vec![BatchStatistics { mean: t([2.0]), var: t([1.0]) }]);
/// let stats = calib.finish().unwrap();
/// // Values 0±1 and 2±1 pooled: mean 1, variance 1 + 1.
/// assert_eq!(stats.layers[0].mean.clone().into_scalar(), 1.0);
/// assert_eq!(stats.layers[0].var.clone().into_scalar(), 2.0);
/// ```
#[derive(Debug, Default)]
pub struct NormCalibrator<B: Backend> {
    sums: Vec<(Tensor<B, 1>, Tensor<B, 1>)>,
    n_batches: usize,
}

impl<B: Backend> NormCalibrator<B> {
    /// An empty calibrator.
    pub fn new() -> Self {
        Self { sums: Vec::new(), n_batches: 0 }
    }

    /// Adds the statistics observed in one batch ([`NormPass::Observe`]).
    ///
    /// # Panics
    /// If the number of layers differs from earlier batches.
    pub fn add(&mut self, observed: Vec<BatchStatistics<B>>) {
        if self.n_batches == 0 {
            self.sums = observed
                .into_iter()
                .map(|s| {
                    let sq = s.var + s.mean.clone().powi_scalar(2);
                    (s.mean, sq)
                })
                .collect();
        } else {
            assert_eq!(observed.len(), self.sums.len(), "NormCalibrator: layer count changed between batches");
            for (acc, s) in self.sums.iter_mut().zip(observed) {
                let sq = s.var + s.mean.clone().powi_scalar(2);
                acc.0 = acc.0.clone() + s.mean;
                acc.1 = acc.1.clone() + sq;
            }
        }
        self.n_batches += 1;
    }

    /// The pooled statistics, or `None` if no batch was added.
    pub fn finish(self) -> Option<SubModelNormStats<B>> {
        if self.n_batches == 0 {
            return None;
        }
        let n = self.n_batches as f64;
        let layers = self
            .sums
            .into_iter()
            .map(|(m, sq)| {
                let mean = m.div_scalar(n);
                let var = sq.div_scalar(n) - mean.clone().powi_scalar(2);
                BatchStatistics { mean, var: var.clamp_min(0.0) }
            })
            .collect();
        Some(SubModelNormStats { layers })
    }
}
