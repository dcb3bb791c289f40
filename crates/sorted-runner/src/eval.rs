//! Evaluating every sub-model of an image run into report rows, with a progress bar (the
//! evaluation itself is sorted-zoo's `evaluate_sub_model`).

use std::collections::BTreeMap;

use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sorted_nn::SubModel;
use sorted_zoo::{SortedClassifier, calibration_batches, evaluate_sub_model, test_batches};

use crate::config::Experiment;
use crate::data::RunData;

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

impl SubModelResult {
    /// The row of transformer sub-model `sub` (widths: heads, FFN, hidden), its share of the
    /// full model left at 0 for the caller to fill in.
    pub fn transformer(
        sub: &sorted_nn::TransformerSubModel,
        params: u64,
        flops: u64,
        accuracy: f64,
        us_per_sample: f64,
        perplexity: Option<f64>,
    ) -> Self {
        Self {
            sub_model: sub.to_string(),
            depth: sub.depth,
            widths: vec![sub.heads, sub.ffn, sub.hidden],
            params,
            flops,
            accuracy,
            relative: 0.0,
            us_per_sample,
            accuracy_switchable: None,
            perplexity,
        }
    }
}

/// Recalibrated BatchNorm statistics of every evaluated sub-model, as saved in
/// `norm_stats.json`: sub-model -> per layer `(mean, var)`.
pub type NormStatsFile = BTreeMap<String, Vec<(Vec<f32>, Vec<f32>)>>;

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
        calibration_batches::<B>(data, eval.calibration_samples, train_batch_size, seed, device)
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
        let e = evaluate_sub_model(model, sub, &tests, &calib, switchable, device);
        if let Some(s) = &e.norm_stats {
            norm_stats.insert(sub.to_string(), s.to_vecs());
        }
        rows.push(SubModelResult {
            sub_model: sub.to_string(),
            depth: sub.depth(),
            widths: sub.widths().to_vec(),
            params: e.cost.params,
            flops: e.cost.flops,
            accuracy: e.accuracy,
            relative: 0.0,
            us_per_sample: e.us_per_sample,
            accuracy_switchable: e.accuracy_switchable,
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
