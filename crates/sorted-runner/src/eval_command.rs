//! `eval`: re-evaluates a run's checkpoint and rewrites its reports; and the reports an image
//! run writes after training.

use std::path::Path;
use std::time::Instant;

use burn::prelude::*;
use sorted_sched::Checkpoint;
use sorted_zoo::SortedClassifier;

use crate::cli::EvalArgs;
use crate::config::{ConfigDocument, Experiment};
use crate::data::RunData;
use crate::eval::evaluate;
use crate::provenance::RunContext;
use crate::report::ReportTarget;
use crate::run_folder::{RunFolder, open_checkpoint, read_failure, run_status};
use crate::trained_model::{ModelVisitor, visit_trained, write_norm_stats};
use crate::transformer_experiment::TransformerExperiment;

/// Evaluates every sub-model and writes `results.json`, `results.csv`, `summary.md`,
/// `plot.svg` and (for BatchNorm models) `norm_stats.json` into `target`'s run folder; prints
/// the table.
pub(crate) fn report<E: Backend, M: SortedClassifier<E>>(
    exp: &Experiment,
    data: &RunData,
    model: &M,
    device: &E::Device,
    target: ReportTarget<'_>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (rows, norm_stats) = evaluate(model, exp, data, device, target.ctx.quiet);
    let cfg = &exp.config;
    let data_text = format!("{} ({} train / {} test images)", cfg.data.source, data.train.len(), data.test.len());
    let eval_seconds = started.elapsed().as_secs_f64();
    if !norm_stats.is_empty() {
        write_norm_stats(target.run_dir, &norm_stats)?;
    }
    let extra_files = if norm_stats.is_empty() { "" } else { ", norm_stats.json" };
    target.publish(cfg, (&exp.source, exp.k), eval_seconds, data_text, rows, extra_files)
}

/// `eval`: re-evaluates a run's checkpoint and rewrites its reports.
///
/// # Errors
/// Checkpoint, data or report errors.
pub fn eval_cmd<E: Backend>(args: &EvalArgs, device: &E::Device, ctx: &RunContext) -> anyhow::Result<()> {
    let _folder = RunFolder::open(&args.run)?;
    let checkpoint = open_checkpoint(&args.run)?;
    let state = checkpoint.state().clone();
    let status = run_status(&state, read_failure(&args.run)?.as_ref());
    if let Some(status) = &status {
        eprintln!("warning: `{}`: {status}", args.run.display());
    }
    /// `eval` of a transformer run.
    fn eval_kind<K: TransformerExperiment, E: Backend>(
        doc: ConfigDocument,
        checkpoint: &Checkpoint,
        run: &Path,
        status: Option<String>,
        device: &E::Device,
        ctx: &RunContext,
    ) -> anyhow::Result<()> {
        K::from_document(doc)?.eval_run::<E>(checkpoint, run, status, device, ctx)
    }
    let doc = ConfigDocument::parse(checkpoint.config_toml(), &checkpoint.config_path())?;
    match doc.model_kind() {
        Some("bert") => {
            return eval_kind::<crate::text::TextExperiment, E>(doc, &checkpoint, &args.run, status, device, ctx);
        }
        Some("llama") => {
            return eval_kind::<crate::lm::LmExperiment, E>(doc, &checkpoint, &args.run, status, device, ctx);
        }
        _ => {}
    }
    let exp = Experiment::from_document(doc)?;
    let data = crate::data::load(&exp)?;
    let target = ReportTarget { run_dir: &args.run, state: &state, status, ctx };
    let visitor = Report { exp: &exp, data: &data, device, target };
    visit_trained::<E, _>(&exp, &data, &checkpoint, device, visitor)
}

/// Evaluates a loaded model and writes its reports for `target` ([`report`]).
pub(crate) struct Report<'a, E: Backend> {
    pub(crate) exp: &'a Experiment,
    pub(crate) data: &'a RunData,
    pub(crate) device: &'a E::Device,
    pub(crate) target: ReportTarget<'a>,
}

impl<E: Backend> ModelVisitor<E> for Report<'_, E> {
    type Output = ();
    fn visit<M: SortedClassifier<E>>(self, model: M) -> anyhow::Result<()> {
        report(self.exp, self.data, &model, self.device, self.target)
    }
}
