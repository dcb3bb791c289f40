//! What the transformer experiment kinds (`[model.bert]` text, `[model.llama]` language model)
//! share: the [`TransformerExperiment`] trait through which `train` and `eval` reach them, and
//! the helpers of their reports. It depends on neither `train_command`/`eval_command` nor the
//! kinds, so the kinds use it without importing the commands that dispatch to them.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::{TransformerSpace, TransformerSubModel};
use sorted_sched::{Checkpoint, Sampler, SamplerConfig, TrainConfig};

use crate::eval::SubModelResult;
use crate::provenance::RunContext;
use crate::run_folder::RunFolder;
use crate::train::TrainOptions;

/// A transformer experiment kind (`[model.bert]` text, `[model.llama]` language model): what
/// `train` and `eval` need of it, so that each kind states only what differs.
pub(crate) trait TransformerExperiment: Sized {
    /// Validates the experiment from its parsed file.
    ///
    /// # Errors
    /// An invalid config, naming the key.
    fn from_document(doc: crate::config::ConfigDocument) -> anyhow::Result<Self>;

    /// Validates the experiment again after its `[train]` table changed (`--devices`).
    ///
    /// # Errors
    /// An invalid config, naming the key.
    fn revalidate(self, source: &Path) -> anyhow::Result<Self>;

    /// The experiment's name (a new run folder's default name).
    fn name(&self) -> &str;

    /// Its `[train]` table.
    fn train_config(&mut self) -> &mut TrainConfig;

    /// Its `data.batch_size`.
    fn batch_size(&self) -> usize;

    /// Trains it in a run folder this process holds, then evaluates and reports.
    ///
    /// # Errors
    /// Model, data, checkpoint or report errors, each naming its file.
    fn train_in_folder<B: AutodiffBackend>(
        &self,
        folder: RunFolder,
        options: &TrainOptions,
        device: &B::Device,
        ctx: &RunContext,
    ) -> anyhow::Result<()>;

    /// `eval` of one of its runs: loads `checkpoint` and rewrites the run's reports.
    ///
    /// # Errors
    /// Model, data or checkpoint errors, each naming its file.
    fn eval_run<E: Backend>(
        &self,
        checkpoint: &Checkpoint,
        run_dir: &Path,
        status: Option<String>,
        device: &E::Device,
        ctx: &RunContext,
    ) -> anyhow::Result<()>;
}

/// Trains the transformer experiment `exp` into `run_dir` (created; default: a new folder named
/// after it; or, with `options.resume`, continued from its checkpoint) and reports.
///
/// # Errors
/// As [`TransformerExperiment::train_in_folder`]; a folder in use or already used (unless
/// `options.force`).
pub(crate) fn train_in_new_folder<K: TransformerExperiment, B: AutodiffBackend>(
    exp: &K,
    run_dir: Option<&Path>,
    options: &TrainOptions,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<PathBuf> {
    crate::train::in_run_folder(exp.name(), run_dir, options, |folder| {
        exp.train_in_folder::<B>(folder, options, device, ctx)
    })
}

/// The sub-models a transformer run's report evaluates: a `fixed` run trains one truncated
/// model, so only that one (the rest of the space holds untrained slices of it); else all.
/// `sampler` is the run's, built from `config` on `space`.
pub(crate) fn evaluated_subs(
    config: &SamplerConfig,
    sampler: &dyn Sampler<TransformerSubModel>,
    space: &TransformerSpace,
) -> Vec<TransformerSubModel> {
    match config {
        SamplerConfig::Fixed(_) => sampler.sample(0),
        _ => space.iter().collect(),
    }
}

/// `rows` with each one's accuracy relative to the largest evaluated sub-model's (by FLOPs: the
/// full model, unless the run is `fixed`).
pub(crate) fn with_relative(mut rows: Vec<SubModelResult>) -> Vec<SubModelResult> {
    let full_accuracy = rows.iter().max_by_key(|r| r.flops).map_or(0.0, |r| r.accuracy);
    for r in &mut rows {
        r.relative = if full_accuracy > 0.0 { r.accuracy / full_accuracy } else { 0.0 };
    }
    rows
}
