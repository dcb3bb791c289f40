//! Checks shared by the residual models' tests (ResNet, MobileNetV2).

use std::collections::BTreeSet;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::Distribution;
use sorted_nn::test_util::assert_matches_dense;
use sorted_nn::{
    NestingSpace, NestingSpaceConfig, NormCalibrator, NormPass, SortedBatchNorm, SubModel, SubModelNormStats,
};
use sorted_zoo::{DenseClassifier, SortedClassifier};

/// Depths `1..=n` over per-block width options (`tie_widths = false`).
pub fn mixed_space(block_widths: &[&[usize]]) -> NestingSpace {
    NestingSpace::new(NestingSpaceConfig {
        depths: (1..=block_widths.len()).collect(),
        widths: None,
        block_widths: Some(block_widths.iter().map(|w| w.to_vec()).collect()),
        tie_widths: false,
    })
    .unwrap()
}

/// Images `[n, c, h, w]` drawn from a seeded normal distribution.
pub fn images<B: Backend>(n: usize, [c, h, w]: [usize; 3], device: &B::Device) -> Tensor<B, 4> {
    Tensor::random([n, c, h, w], Distribution::Normal(0.5, 1.0), device)
}

/// Recalibrated statistics of `sub` on `calib`, observed in two batches.
pub fn calibrate<M: SortedClassifier<Flex>>(
    model: &M,
    sub: &SubModel,
    calib: &Tensor<Flex, 4>,
) -> SubModelNormStats<Flex> {
    let mut calibrator = NormCalibrator::new();
    for chunk in calib.clone().chunk(2, 0) {
        let mut seen = Vec::new();
        let _ = model.forward(chunk, sub, &mut NormPass::Observe(&mut seen));
        calibrator.add(seen);
    }
    calibrator.finish().unwrap()
}

/// For every sub-model of `space`: the sliced forward with recalibrated statistics equals the
/// extracted dense model's forward (1e-5), the statistics have the channel counts
/// `norm_widths(sub)` in forward order, and the analytic parameter count equals the dense
/// model's trainable parameters.
pub fn assert_every_sub_model_matches_dense<M: SortedClassifier<Flex>>(
    model: &M,
    space: &NestingSpace,
    shape: [usize; 3],
    norm_widths: impl Fn(&SubModel) -> Vec<usize>,
) {
    let device = Default::default();
    let calib = images::<Flex>(16, shape, &device);
    let x = images::<Flex>(3, shape, &device);
    for sub in space.iter() {
        let stats = calibrate(model, &sub, &calib);
        let widths: Vec<usize> = stats.layers.iter().map(|s| s.mean.dims()[0]).collect();
        assert_eq!(widths, norm_widths(&sub), "BatchNorm widths of {sub} in forward order");
        let sliced = model.forward(x.clone(), &sub, &mut NormPass::Calibrated(&stats));
        let dense = model.extract(&sub, Some(&stats));
        assert_matches_dense(sliced, dense.forward(x.clone()), 1e-5);
        // burn counts BatchNorm running statistics as parameters; the cost counts trainable ones.
        let running: usize = widths.iter().map(|c| 2 * c).sum();
        assert_eq!(model.cost(&sub).params, (dense.num_params() - running) as u64, "params of {sub}");
    }
}

/// `x` with channels `c..` set to zero.
pub fn mask<B: Backend>(x: Tensor<B, 4>, c: usize) -> Tensor<B, 4> {
    let c_max = x.dims()[1];
    let keep: Vec<f32> = (0..c_max).map(|i| if i < c { 1.0 } else { 0.0 }).collect();
    let keep = Tensor::<B, 1>::from_floats(keep.as_slice(), &x.device()).reshape([1, c_max, 1, 1]);
    x * keep
}

/// The running statistics of every switchable width of every named BatchNorm layer.
pub fn running_stats<B: Backend>(norms: &[(String, &SortedBatchNorm<B>)]) -> Vec<(String, usize, Vec<f32>)> {
    let mut out = Vec::new();
    for (name, norm) in norms {
        for (i, &w) in norm.widths.iter().enumerate() {
            let mut values = norm.running_mean[i].value().into_data().to_vec::<f32>().unwrap();
            values.extend(norm.running_var[i].value().into_data().to_vec::<f32>().unwrap());
            out.push((name.clone(), w, values));
        }
    }
    out
}

/// Asserts that exactly the `(layer, width)` pairs in `used` changed between two snapshots of
/// [`running_stats`].
#[track_caller]
pub fn assert_only_used_stats_changed(
    before: &[(String, usize, Vec<f32>)],
    after: &[(String, usize, Vec<f32>)],
    used: &BTreeSet<(String, usize)>,
) {
    assert_eq!(before.len(), after.len());
    let mut seen = BTreeSet::new();
    for ((name, w, old), (_, _, new)) in before.iter().zip(after) {
        let key = (name.clone(), *w);
        assert_eq!(old != new, used.contains(&key), "{name} at width {w}: changed = {}", old != new);
        seen.insert(key);
    }
    assert!(used.is_subset(&seen), "used widths without switchable statistics: {:?}", used.difference(&seen));
}

/// A residual model's batch norms by name (`stem`, `b0.norm1`, ...), for [`running_stats`].
pub trait NamedNorms<B: Backend> {
    /// `(name, norm)` per batch norm, in forward order.
    fn named_norms(&self) -> Vec<(String, &SortedBatchNorm<B>)>;
}

/// With switchable statistics, only `sub`'s widths move: recalibrating the inference model
/// (Observe + NormCalibrator) touches no stored statistics (the recalibrated ones, one per
/// entry of `used`, live beside the model, per sub-model), and training passes of `sub` move
/// the switchable statistics of exactly the `(layer, width)` pairs in `used`.
#[track_caller]
pub fn assert_statistics_change_only_for<M>(
    model: &M,
    sub: &SubModel,
    x: Tensor<Autodiff<Flex>, 4>,
    used: &BTreeSet<(String, usize)>,
) where
    M: SortedClassifier<Autodiff<Flex>> + AutodiffModule<Autodiff<Flex>> + NamedNorms<Autodiff<Flex>>,
    M::InnerModule: SortedClassifier<Flex> + NamedNorms<Flex>,
{
    let inner = model.valid();
    let before = running_stats(&inner.named_norms());
    let stats = calibrate(&inner, sub, &x.clone().inner());
    assert_eq!(stats.layers.len(), used.len());
    assert_eq!(running_stats(&inner.named_norms()), before);

    let before = running_stats(&model.named_norms());
    let _ = model.forward(x.clone(), sub, &mut NormPass::Batch);
    let mut seen = Vec::new();
    let _ = model.forward(x, sub, &mut NormPass::Observe(&mut seen));
    assert_only_used_stats_changed(&before, &running_stats(&model.named_norms()), used);
}
