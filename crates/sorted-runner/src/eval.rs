//! Evaluating every sub-model: accuracy, cost, measured time.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sorted_data::{EpochOrder, ImageBatch};

use crate::data::RunData;
use sorted_nn::{NormCalibrator, NormPass, SubModel, SubModelNormStats};
use sorted_zoo::SortedClassifier;

use crate::config::{EvalConfig, Experiment};

/// The calibration subset's seed is derived from the run seed (its own ChaCha streams).
pub const CALIBRATION_SEED_SALT: u64 = 0x5eed_ca1b_0000_0002;

/// One evaluated sub-model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubModelResult {
    /// The sub-model (`Display` form, widths joined by `-`).
    pub sub_model: String,
    /// Active blocks.
    pub depth: usize,
    /// Active width of each block.
    pub widths: Vec<usize>,
    /// Trainable parameters used.
    pub params: u64,
    /// FLOPs per sample (multiply-add = 2).
    pub flops: u64,
    /// Test accuracy in [0, 1].
    pub accuracy: f64,
    /// Accuracy as a share of the full model's.
    pub relative: f64,
    /// Measured forward time per test sample, microseconds (batched, on the run's device).
    pub us_per_sample: f64,
    /// Test accuracy with switchable BatchNorm's private running statistics instead of
    /// recalibrated ones (`batch_norm = "switchable"` runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_switchable: Option<f64>,
    /// Perplexity on the held-out text (language-model runs only; their `accuracy` is
    /// next-token top-1 accuracy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perplexity: Option<f64>,
}

/// Recalibrated BatchNorm statistics of every evaluated sub-model, as saved in
/// `norm_stats.json`: sub-model -> per layer `(mean, var)`.
pub type NormStatsFile = BTreeMap<String, Vec<(Vec<f32>, Vec<f32>)>>;

/// Recalibrates BatchNorm statistics for `sub` on the calibration batches.
pub fn calibrate<B: Backend, M: SortedClassifier<B>>(
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

/// The calibration batches: `calibration_samples` training images chosen by a seeded
/// permutation, cut into batches of the training batch size (BatchNorm saw batches of that size
/// in training).
pub fn calibration_batches<B: Backend>(
    data: &RunData,
    eval: &EvalConfig,
    batch_size: usize,
    seed: u64,
    device: &B::Device,
) -> Vec<ImageBatch<B>> {
    let n = eval.calibration_samples.clamp(1, data.train.len());
    let order = EpochOrder::new(data.train.len(), n, seed ^ CALIBRATION_SEED_SALT);
    let chosen = order.batch_indices(0);
    chosen.chunks(batch_size.max(1)).map(|c| data.batcher.batch(&data.train, c, device)).collect()
}

/// The test set as batches, built once and shared by every sub-model.
pub fn test_batches<B: Backend>(data: &RunData, batch_size: usize, device: &B::Device) -> Vec<ImageBatch<B>> {
    let all: Vec<usize> = (0..data.test.len()).collect();
    all.chunks(batch_size).map(|c| data.batcher.batch(&data.test, c, device)).collect()
}

/// Accuracy of `sub` and the measured forward time per sample in microseconds: with `stats`
/// when given, else batch statistics (models without BatchNorm), or each layer's switchable
/// running statistics when `switchable`.
pub fn accuracy<B: Backend, M: SortedClassifier<B>>(
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

/// Evaluates every sub-model of `space` on the test set. Models with BatchNorm are evaluated
/// with statistics recalibrated per sub-model (returned for saving).
pub fn evaluate<B: Backend, M: SortedClassifier<B>>(
    model: &M,
    exp: &Experiment,
    data: &RunData,
    device: &B::Device,
    quiet: bool,
) -> (Vec<SubModelResult>, NormStatsFile) {
    let subs: Vec<SubModel> = exp.space.iter().collect();
    evaluate_subs(model, exp, data, device, &subs, quiet)
}

/// [`evaluate`] for the given sub-models of the experiment's space only. `relative` is taken
/// against the space's largest sub-model when it is among them, else left at 0.
pub fn evaluate_subs<B: Backend, M: SortedClassifier<B>>(
    model: &M,
    exp: &Experiment,
    data: &RunData,
    device: &B::Device,
    subs: &[SubModel],
    quiet: bool,
) -> (Vec<SubModelResult>, NormStatsFile) {
    let (space, eval) = (&exp.space, &exp.config.eval);
    let (train_batch_size, seed) = (exp.config.data.batch_size, exp.config.seed);
    let tests = test_batches::<B>(data, eval.batch_size, device);
    let calib = if model.has_batch_norm() {
        calibration_batches::<B>(data, eval, train_batch_size, seed, device)
    } else {
        Vec::new()
    };
    // Switchable runs are evaluated both ways, on the same weights.
    let switchable = exp.config.model.batch_norm() == Some(crate::config::BatchNormStats::Switchable);
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(subs.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("eval  {bar:32.green/blue} {pos}/{len} sub-models  ETA {eta}")
            .expect("valid template"),
    );
    let mut rows = Vec::with_capacity(subs.len());
    let mut norm_stats = NormStatsFile::new();
    for sub in subs {
        let stats = model.has_batch_norm().then(|| calibrate(model, sub, &calib));
        let (acc, us) = accuracy(model, sub, stats.as_ref(), false, &tests, device);
        let accuracy_switchable = switchable.then(|| accuracy(model, sub, None, true, &tests, device).0);
        if let Some(s) = &stats {
            norm_stats.insert(sub.to_string(), s.to_vecs());
        }
        let cost = model.cost(sub);
        rows.push(SubModelResult {
            sub_model: sub.to_string(),
            depth: sub.depth(),
            widths: sub.widths().to_vec(),
            params: cost.params,
            flops: cost.flops,
            accuracy: acc,
            relative: 0.0,
            us_per_sample: us,
            accuracy_switchable,
            perplexity: None,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let full = space.largest().to_string();
    let full_acc = rows.iter().find(|r| r.sub_model == full).map_or(0.0, |r| r.accuracy);
    for r in &mut rows {
        r.relative = if full_acc > 0.0 { r.accuracy / full_acc } else { 0.0 };
    }
    (rows, norm_stats)
}
