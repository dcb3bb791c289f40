//! An image run's trained model, whatever its family: [`visit_trained`] builds the model the
//! config names, loads a checkpoint into it and hands it to a [`ModelVisitor`]; with the
//! BatchNorm statistics `eval` saved beside it (`norm_stats.json`).

use std::path::Path;

use anyhow::Context;
use burn::prelude::*;
use sorted_nn::{SubModel, SubModelNormStats};
use sorted_sched::Checkpoint;
use sorted_zoo::{ClassifierVisitor, SortedClassifier, calibrate_sub_model, calibration_batches};

use crate::config::Experiment;
use crate::data::RunData;
use crate::eval::NormStatsFile;
use crate::provenance::write_file;

/// Something done with a trained model, whatever its family (the runner's commands are
/// generic over [`SortedClassifier`]; this picks the concrete model from the config).
pub trait ModelVisitor<E: Backend> {
    /// What the visit returns.
    type Output;

    /// Does the work with the loaded model.
    ///
    /// # Errors
    /// Whatever the work fails with.
    fn visit<M: SortedClassifier<E>>(self, model: M) -> anyhow::Result<Self::Output>;
}

/// Builds the experiment's model, loads `checkpoint` (opened and verified once by the caller)
/// into it and hands it to `visitor`.
///
/// # Errors
/// A mismatched checkpoint, or the visitor's error.
pub fn visit_trained<E: Backend, V: ModelVisitor<E>>(
    exp: &Experiment,
    data: &RunData,
    checkpoint: &Checkpoint,
    device: &E::Device,
    visitor: V,
) -> anyhow::Result<V::Output> {
    /// Loads the checkpoint into the concrete model, then hands it on.
    struct Loading<'a, E: Backend, V> {
        checkpoint: &'a Checkpoint,
        device: &'a E::Device,
        visitor: V,
    }
    impl<E: Backend, V: ModelVisitor<E>> ClassifierVisitor<E> for Loading<'_, E, V> {
        type Output = anyhow::Result<V::Output>;
        fn visit<M: SortedClassifier<E>>(self, model: M) -> Self::Output {
            self.visitor.visit(self.checkpoint.load_model(model, self.device)?)
        }
    }
    let model = exp.config.model.init::<E>(&exp.space, data.image_shape(), data.n_classes(), device);
    model.visit(Loading { checkpoint, device, visitor })
}

/// Writes the recalibrated BatchNorm statistics of a run's sub-models (`norm_stats.json`).
pub(crate) fn write_norm_stats(run_dir: &Path, stats: &NormStatsFile) -> anyhow::Result<()> {
    write_file(&run_dir.join("norm_stats.json"), &serde_json::to_vec(stats).expect("stats serialise"))
}

/// Reads `norm_stats.json` of a run, if present.
///
/// # Errors
/// When the file exists but cannot be parsed.
pub fn read_norm_stats(run_dir: &Path) -> anyhow::Result<Option<NormStatsFile>> {
    let path = run_dir.join("norm_stats.json");
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
    Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("parsing `{}`", path.display()))?))
}

/// The BatchNorm statistics of each of `subs`: those `eval` saved in the run's
/// `norm_stats.json`, else recalibrated on the experiment's calibration batches (drawn once,
/// and only when one is missing).
///
/// # Errors
/// When `norm_stats.json` exists but cannot be read.
pub fn saved_or_calibrated_stats<E: Backend, M: SortedClassifier<E>>(
    run_dir: &Path,
    exp: &Experiment,
    data: &RunData,
    model: &M,
    subs: &[SubModel],
    device: &E::Device,
) -> anyhow::Result<Vec<SubModelNormStats<E>>> {
    let mut saved = read_norm_stats(run_dir)?.unwrap_or_default();
    let mut calibration = None;
    let mut stats_of = |sub: &SubModel| match saved.remove(&sub.to_string()) {
        Some(layers) => SubModelNormStats::from_vecs(&layers, device),
        None => {
            let cfg = &exp.config;
            let (samples, batch_size) = (cfg.eval.calibration_samples, cfg.data.batch_size);
            let batches = calibration
                .get_or_insert_with(|| calibration_batches::<E>(data, samples, batch_size, cfg.seed, device));
            calibrate_sub_model(model, sub, batches)
        }
    };
    Ok(subs.iter().map(&mut stats_of).collect())
}
