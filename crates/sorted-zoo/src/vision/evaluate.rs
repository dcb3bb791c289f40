//! Evaluating a trained classifier's sub-models: BatchNorm statistics recalibrated per
//! sub-model on a seeded subset of the training images, then accuracy and measured forward time
//! on the test set.

use std::time::Instant;

use burn::prelude::*;
use sorted_data::{EpochOrder, ImageBatch, ImageData};
use sorted_nn::{Cost, NormCalibrator, NormPass, SubModel, SubModelNormStats};

use super::classifier::SortedClassifier;

/// The calibration subset's seed is derived from the run seed (its own ChaCha streams).
pub const CALIBRATION_SEED_SALT: u64 = 0x5eed_ca1b_0000_0002;

/// Recalibrates BatchNorm statistics for `sub` on the calibration batches.
///
/// # Panics
/// When `batches` is empty ([`calibration_batches`] always gives at least one for a non-empty
/// training set).
pub fn calibrate_sub_model<B: Backend, M: SortedClassifier<B>>(
    model: &M,
    sub: &SubModel,
    batches: &[ImageBatch<B>],
) -> SubModelNormStats<B> {
    let mut calib = NormCalibrator::new();
    for batch in batches {
        let mut seen = Vec::new();
        let _ = model.forward(batch.images.clone(), sub, &mut NormPass::Observe(&mut seen));
        calib.add(seen);
    }
    calib.finish().expect("at least one calibration batch")
}

/// The calibration batches: `samples` training images (at least one, at most the training set)
/// chosen by a permutation seeded from `seed`, cut into batches of `batch_size` (use the
/// training batch size: BatchNorm saw batches of that size in training).
pub fn calibration_batches<B: Backend>(
    data: &ImageData,
    samples: usize,
    batch_size: usize,
    seed: u64,
    device: &B::Device,
) -> Vec<ImageBatch<B>> {
    let n = samples.clamp(1, data.train.len());
    let order = EpochOrder::new(data.train.len(), n, seed ^ CALIBRATION_SEED_SALT);
    let chosen = order.batch_indices(0);
    chosen.chunks(batch_size.max(1)).map(|c| data.batcher.batch(&data.train, c, device)).collect()
}

/// The test set as batches of `batch_size`, built once and shared by every sub-model.
pub fn test_batches<B: Backend>(data: &ImageData, batch_size: usize, device: &B::Device) -> Vec<ImageBatch<B>> {
    let all: Vec<usize> = (0..data.test.len()).collect();
    all.chunks(batch_size).map(|c| data.batcher.batch(&data.test, c, device)).collect()
}

/// Accuracy of `sub` on `batches` and the measured forward time per sample in microseconds:
/// with `stats` when given, else batch statistics (models without BatchNorm), or each layer's
/// switchable running statistics when `switchable`.
pub fn sub_model_accuracy<B: Backend, M: SortedClassifier<B>>(
    model: &M,
    sub: &SubModel,
    stats: Option<&SubModelNormStats<B>>,
    switchable: bool,
    batches: &[ImageBatch<B>],
    device: &B::Device,
) -> (f64, f64) {
    let mut correct = 0i64;
    let mut total = 0usize;
    let mut seconds = 0.0;
    for batch in batches {
        let mut pass = match (stats, switchable) {
            (_, true) => NormPass::Switchable,
            (Some(s), false) => NormPass::Calibrated(s),
            (None, false) => NormPass::Batch,
        };
        let _ = B::sync(device);
        let t = Instant::now();
        let logits = model.forward(batch.images.clone(), sub, &mut pass);
        let predicted = logits.argmax(1).flatten::<1>(0, 1);
        let hits = predicted.equal(batch.labels.clone()).int().sum().into_scalar().elem::<i64>();
        seconds += t.elapsed().as_secs_f64();
        correct += hits;
        total += batch.labels.dims()[0];
    }
    (correct as f64 / total.max(1) as f64, seconds * 1e6 / total.max(1) as f64)
}

/// One evaluated sub-model of a classifier ([`evaluate_sub_model`]).
#[derive(Debug)]
pub struct SubModelEvaluation<B: Backend> {
    /// Analytic parameters and FLOPs per sample.
    pub cost: Cost,
    /// Test accuracy in [0, 1], with recalibrated statistics for BatchNorm models.
    pub accuracy: f64,
    /// Measured forward time per test sample, microseconds.
    pub us_per_sample: f64,
    /// Test accuracy with switchable BatchNorm's private running statistics (when asked for).
    pub accuracy_switchable: Option<f64>,
    /// The recalibrated BatchNorm statistics (BatchNorm models only), for saving.
    pub norm_stats: Option<SubModelNormStats<B>>,
}

/// Evaluates `sub` on the test batches: BatchNorm models with statistics recalibrated on
/// `calibration` (see [`calibration_batches`]), and also with switchable running statistics
/// when `switchable`.
///
/// # Panics
/// When the model has BatchNorm and `calibration` is empty.
pub fn evaluate_sub_model<B: Backend, M: SortedClassifier<B>>(
    model: &M,
    sub: &SubModel,
    tests: &[ImageBatch<B>],
    calibration: &[ImageBatch<B>],
    switchable: bool,
    device: &B::Device,
) -> SubModelEvaluation<B> {
    let norm_stats = model.has_batch_norm().then(|| calibrate_sub_model(model, sub, calibration));
    let (accuracy, us_per_sample) = sub_model_accuracy(model, sub, norm_stats.as_ref(), false, tests, device);
    let accuracy_switchable = switchable.then(|| sub_model_accuracy(model, sub, None, true, tests, device).0);
    SubModelEvaluation { cost: model.cost(sub), accuracy, us_per_sample, accuracy_switchable, norm_stats }
}
