//! Training and evaluation of a language-model experiment: SoFT on sorted-sched's one loop.
//! A step's sampled sub-models share one forward pass per width ([`TrainTask::joint_loss`]),
//! each weighted by its exit's weight; every sub-model is then scored on the held-out text.

use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use sorted_data::{EpochOrder, LmBatch, LmChunks, LmData};
use sorted_nn::{TransformerSpace, TransformerSubModel};
use sorted_sched::{Checkpoint, JointLoss, Peer, TrainConfig, TrainTask};
use sorted_zoo::llama::{
    SoftOptions, SoftTerm, SortedLlama, evaluate_llama_sub_models, soft_loss_with, soft_step_loss,
};

use super::config::LmExperiment;
use crate::eval::SubModelResult;
use crate::provenance::{RunContext, write_file};
use crate::report::ReportTarget;
use crate::run_folder::RunFolder;
use crate::train::{TrainOptions, train_experiment};
use crate::transformer_experiment::TransformerExperiment;

/// The per-step log of each sampled sub-model's losses, appended to by every training call.
pub const TERM_LOSSES_FILE: &str = "term_losses.jsonl";

/// One sub-model's losses in one step (a line of [`TERM_LOSSES_FILE`] holds a step's).
pub use sorted_zoo::llama::SoftTermLoss as TermLoss;

/// Each step's term losses, in step order, as a peer's loop logs them.
type TermLog = Mutex<Vec<(u64, Vec<TermLoss>)>>;

#[derive(Serialize)]
struct StepLine<'a> {
    step: u64,
    terms: &'a [TermLoss],
}

/// Trains the language-model experiment `exp` into `run_dir` (created; or, with
/// `options.resume`, continued), then scores every sub-model and writes the reports.
///
/// # Errors
/// Model, data, checkpoint or report errors, each naming its file; a folder in use or already
/// used (unless `options.force`).
pub fn train_lm_experiment<B: AutodiffBackend>(
    exp: &LmExperiment,
    run_dir: Option<&Path>,
    options: &TrainOptions,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<std::path::PathBuf> {
    crate::transformer_experiment::train_in_new_folder::<LmExperiment, B>(exp, run_dir, options, device, ctx)
}

impl TransformerExperiment for LmExperiment {
    fn from_document(doc: crate::config::ConfigDocument) -> anyhow::Result<Self> {
        Ok(Self::from_document(doc)?)
    }

    fn revalidate(self, source: &Path) -> anyhow::Result<Self> {
        Ok(Self::from_config(self.config, source)?)
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn train_config(&mut self) -> &mut TrainConfig {
        &mut self.config.train
    }

    fn batch_size(&self) -> usize {
        self.config.data.batch_size
    }

    fn train_in_folder<B: AutodiffBackend>(
        &self,
        folder: RunFolder,
        options: &TrainOptions,
        device: &B::Device,
        ctx: &RunContext,
    ) -> anyhow::Result<()> {
        train_lm_in_folder::<B>(self, folder, options, device, ctx)
    }

    fn eval_run<E: Backend>(
        &self,
        checkpoint: &Checkpoint,
        run_dir: &Path,
        status: Option<String>,
        device: &E::Device,
        ctx: &RunContext,
    ) -> anyhow::Result<()> {
        let exp = self;
        let (model, data, space) = load::<E>(exp, device)?;
        let model = checkpoint.load_model(model, device)?;
        let target = ReportTarget { run_dir, state: checkpoint.state(), status, ctx };
        report_lm(exp, &data, &space, &model, device, target)
    }
}

/// The experiment's decoder (seeded, loaded), its tokenized text and its space checked
/// against the decoder.
pub(crate) fn load<B: Backend>(
    exp: &LmExperiment,
    device: &B::Device,
) -> anyhow::Result<(SortedLlama<B>, LmData, TransformerSpace)> {
    B::seed(device, exp.config.seed);
    let (model, bpe) = exp
        .llama()
        .load::<B>(device)
        .with_context(|| format!("loading [model.llama] of `{}`", exp.source.display()))?;
    let space = exp.space_for(model.embedding.dims()[1])?;
    model.check_space(&space).map_err(|e| anyhow::anyhow!("{}: [space] {e}", exp.source.display()))?;
    let data = exp.config.data.load(&bpe).with_context(|| format!("loading [data] of `{}`", exp.source.display()))?;
    Ok((model, data, space))
}

/// [`train_lm_experiment`] in a folder this process already holds.
pub(crate) fn train_lm_in_folder<B: AutodiffBackend>(
    exp: &LmExperiment,
    folder: RunFolder,
    options: &TrainOptions,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<()> {
    let run_dir = folder.dir().to_path_buf();
    write_file(&run_dir.join("config.toml"), exp.to_toml().as_bytes())?;
    let (mut model, data, space) = load::<B>(exp, device)?;
    let cfg = &exp.config;
    let order = data.train.epoch_order(cfg.data.batch_size, cfg.seed);
    // Sorting happens here, before step 0 of a fresh run, and nowhere in `load` (which `eval`
    // shares): a resumed run loads the sorted weights from its checkpoint.
    if let (false, Some((score, n_batches))) = (options.resume, exp.llama().sorting()) {
        let sorted = sorted_zoo::sorting::sort_llama_on(model, score, n_batches, &data.train, &order, device)
            .with_context(|| format!("sorting by `model.llama.sort_by` of `{}`", exp.source.display()))?;
        crate::sort::record_sort(&run_dir, "query heads and SwiGLU units", score, &sorted, ctx.quiet)?;
        model = sorted.model;
    }
    crate::train::RunStart {
        name: &cfg.name,
        sub_models: space.len(),
        sampler: (cfg.sampler.kind(), exp.k),
        steps: cfg.train.steps,
        data: format!("{} training windows of {} tokens", data.train.len(), cfg.data.seq_len),
    }
    .announce(ctx, &run_dir);
    let sampler = exp.sampler_for(&space)?;
    // Every peer logs its own shard's term losses; rank 0's log is written (one peer: the
    // batch's).
    let log = Mutex::new(Vec::new());
    let task = |peer: Option<Peer>, device: &B::Device| LmTask {
        chunks: &data.train,
        order: order.clone(),
        options: exp.llama().soft_options(cfg.train.distill),
        space: &space,
        exp,
        device: device.clone(),
        log: peer.is_none_or(|p| p.rank == 0).then_some(&log),
        peer,
    };
    let outcome = train_experiment(cfg, sampler.as_ref(), &run_dir, device, &task, model, options);
    append_term_losses(&run_dir, &log.into_inner().unwrap_or_default())?;
    let outcome = outcome?;
    if !crate::train::finished(&outcome.state, &run_dir, ctx.quiet)
        || !crate::train::reports_here(options, &outcome.state, ctx.quiet)
    {
        return Ok(());
    }
    let target = ReportTarget { run_dir: &run_dir, state: &outcome.state, status: None, ctx };
    report_lm::<B::InnerBackend>(exp, &data, &space, &outcome.model.valid(), device, target)
}

fn append_term_losses(run_dir: &Path, log: &[(u64, Vec<TermLoss>)]) -> anyhow::Result<()> {
    let path = run_dir.join(TERM_LOSSES_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening `{}`", path.display()))?;
    for (step, terms) in log {
        let line = serde_json::to_string(&StepLine { step: *step, terms }).expect("serialises");
        writeln!(file, "{line}").with_context(|| format!("writing `{}`", path.display()))?;
    }
    Ok(())
}

/// Scores every sub-model (a `fixed` run: the one it trained) on the held-out windows and
/// writes the run's reports; `accuracy` is next-token top-1 accuracy.
fn report_lm<E: Backend>(
    exp: &LmExperiment,
    data: &LmData,
    space: &TransformerSpace,
    model: &SortedLlama<E>,
    device: &E::Device,
    target: ReportTarget<'_>,
) -> anyhow::Result<()> {
    let (cfg, state) = (&exp.config, target.state);
    let subs = crate::transformer_experiment::evaluated_subs(&cfg.sampler, exp.sampler_for(space)?.as_ref(), space);
    let eval = evaluate_llama_sub_models(model, &data.eval, &subs, cfg.data.seq_len, device);
    let (seconds, tokens) = (eval.seconds, eval.tokens);
    let rows: Vec<SubModelResult> = eval
        .scores
        .iter()
        .map(|score| {
            let us = 1e6 * seconds / (subs.len() * tokens.max(1)) as f64;
            SubModelResult::transformer(
                &score.sub,
                score.params,
                score.flops,
                score.accuracy,
                us,
                Some(score.perplexity),
            )
        })
        .collect();
    let rows = crate::transformer_experiment::with_relative(rows);
    let data_text = format!(
        "{}; {} training windows of {} tokens, {tokens} held-out tokens; accuracy = next-token top-1 ({:.0} \
         tokens/s in training)",
        data.description,
        data.train.len(),
        cfg.data.seq_len,
        (state.step * (cfg.data.batch_size * cfg.data.seq_len) as u64) as f64 / state.train_seconds.max(1e-9)
    );
    target.publish(cfg, (&exp.source, exp.k), seconds, data_text, rows, &format!(", {TERM_LOSSES_FILE}"))
}

/// The language-model experiments' part of the loop: a batch of windows per step, shared by
/// the step's sub-models, and SoFT's multi-exit loss.
struct LmTask<'a, B: AutodiffBackend> {
    chunks: &'a LmChunks,
    order: EpochOrder,
    options: SoftOptions,
    space: &'a TransformerSpace,
    exp: &'a LmExperiment,
    device: B::Device,
    /// Where this peer's term losses go (rank 0 only).
    log: Option<&'a TermLog>,
    /// This peer's shard of every batch, in a data-parallel run.
    peer: Option<Peer>,
}

impl<B: AutodiffBackend> TrainTask<B, SortedLlama<B>> for LmTask<'_, B> {
    type Sub = TransformerSubModel;
    type Step = (u64, LmBatch<B>);

    fn prepare(&self, _model: &SortedLlama<B>, step: u64, _subs: &[TransformerSubModel]) -> (u64, LmBatch<B>) {
        let indices = self.order.batch_indices(step);
        let indices = self.peer.map_or(indices.clone(), |p| p.shard(&indices));
        (step, self.chunks.batch::<B>(&indices, &self.device))
    }

    fn loss(
        &self,
        step: &(u64, LmBatch<B>),
        model: &SortedLlama<B>,
        _index: usize,
        sub: &TransformerSubModel,
    ) -> Tensor<B, 1> {
        let term = SoftTerm { sub: *sub, weight: 1.0 };
        soft_loss_with(model, step.1.inputs.clone(), step.1.targets.clone(), &[term], self.options).total
    }

    fn joint_loss(
        &self,
        step: &(u64, LmBatch<B>),
        model: &SortedLlama<B>,
        subs: &[TransformerSubModel],
        weights: &[f64],
    ) -> Option<JointLoss<B>> {
        let loss = soft_step_loss(model, self.exp.llama(), self.space, &step.1, subs, weights, self.options);
        let losses = loss.terms.iter().map(|t| t.loss).collect();
        if let Some(Ok(mut log)) = self.log.map(Mutex::lock) {
            log.push((step.0 + 1, loss.terms));
        }
        Some(JointLoss { total: loss.total, losses })
    }
}
