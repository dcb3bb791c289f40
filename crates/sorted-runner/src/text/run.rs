//! Training and evaluation of a sorted BERT on sentence classification.

use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use sorted_data::{EpochOrder, TextBatch, TextBatcher, TokenizedDataset};
use sorted_nn::TransformerSubModel;
use sorted_sched::{Checkpoint, Peer, TrainConfig, TrainState, TrainTask};
use sorted_zoo::{SortedBert, bert_classification_loss, bert_teacher_log_probs, evaluate_bert_sub_models};

use super::config::{TextExperiment, TextModelConfig};
use crate::eval::SubModelResult;
use crate::provenance::RunContext;
use crate::provenance::write_file;
use crate::report::ReportTarget;
use crate::run_folder::RunFolder;
use crate::train::{DATA_SEED_SALT, TrainOptions, train_experiment};
use crate::transformer_experiment::TransformerExperiment;
use anyhow::Context;
use sorted_data::TextData;

/// Trains the text experiment `exp` into `run_dir` (created; or, with `options.resume`,
/// continued from its checkpoint), then evaluates every sub-model and writes `results.json`,
/// `results.csv`, `summary.md`, `plot.svg`. With `options.stop_after` it stops early with a
/// checkpoint and no report, as image runs do.
///
/// # Errors
/// Data, weights, checkpoint or report errors, each naming its file; a folder in use or
/// already used (unless `options.force`).
pub fn train_text_experiment<B: AutodiffBackend>(
    exp: &TextExperiment,
    run_dir: Option<&Path>,
    options: &TrainOptions,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<std::path::PathBuf> {
    crate::transformer_experiment::train_in_new_folder::<TextExperiment, B>(exp, run_dir, options, device, ctx)
}

impl TransformerExperiment for TextExperiment {
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
        let exp = self;
        let run_dir = folder.dir().to_path_buf();
        write_file(&run_dir.join("config.toml"), exp.to_toml().as_bytes())?;
        let data = exp
            .config
            .data
            .load(&exp.vocab_path())
            .with_context(|| format!("loading [data] of `{}`", exp.source.display()))?;
        let bert = bert_for(exp, &data)?;
        crate::train::RunStart {
            name: &exp.config.name,
            sub_models: exp.space.len(),
            sampler: (exp.config.sampler.kind(), exp.k),
            steps: exp.config.train.steps,
            data: format!("{} train / {} {} sentences", data.train.len(), data.eval.len(), data.eval_split_name),
        }
        .announce(ctx, &run_dir);
        B::seed(device, exp.config.seed);
        let mut model = bert.init::<B>(device);
        if let Some(weights) = exp.weights_path() {
            model = model.load_hf_safetensors(&weights)?;
        }
        model.check_space(&exp.space).map_err(|e| anyhow::anyhow!("{}: [space] {e}", exp.source.display()))?;
        // Sorting happens once, before step 0: a resumed run loads the sorted weights from its
        // checkpoint, and sorting again would rewrite the scores of weights it never trains.
        let TextModelConfig::Bert(options_bert) = &exp.config.model;
        if let (false, Some((score, n_batches))) = (options.resume, options_bert.sorting()) {
            let cfg = &exp.config;
            let order = text_order(exp, &data.train);
            let sorted = sorted_zoo::sorting::sort_bert_on(
                model,
                score,
                n_batches,
                &data.train,
                &order,
                &TextBatcher::new(cfg.data.max_len),
                device,
            )
            .with_context(|| format!("sorting by `model.bert.sort_by` of `{}`", exp.source.display()))?;
            crate::sort::record_sort(&run_dir, "attention heads and FFN units", score, &sorted, ctx.quiet)?;
            model = sorted.model;
        }
        let (model, state) = train_bert(exp, &data.train, model, device, &run_dir, options)?;
        if !crate::train::finished(&state, &run_dir, ctx.quiet)
            || !crate::train::reports_here(options, &state, ctx.quiet)
        {
            return Ok(());
        }
        let target = ReportTarget { run_dir: &run_dir, state: &state, status: None, ctx };
        report_text::<B::InnerBackend>(exp, &data, &model.valid(), device, target)
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
        let data = exp
            .config
            .data
            .load(&exp.vocab_path())
            .with_context(|| format!("loading [data] of `{}`", exp.source.display()))?;
        let model = checkpoint.load_model(bert_for(exp, &data)?.init::<E>(device), device)?;
        let target = ReportTarget { run_dir, state: checkpoint.state(), status, ctx };
        report_text(exp, &data, &model, device, target)
    }
}

/// The BERT of a text experiment, its vocabulary fitted to the data unless pretrained weights
/// fix it.
pub(super) fn bert_for(exp: &TextExperiment, data: &TextData) -> anyhow::Result<sorted_zoo::SortedBertConfig> {
    let mut bert = exp.bert.clone();
    if exp.weights_path().is_none() {
        bert.vocab_size = data.vocab_size;
    }
    anyhow::ensure!(
        data.vocab_size <= bert.vocab_size,
        "the vocabulary `{}` has {} tokens, the model's embedding table only {}",
        exp.vocab_path().display(),
        data.vocab_size,
        bert.vocab_size
    );
    Ok(bert)
}

/// Evaluates every sub-model of `model` and writes the run's reports for `target`.
fn report_text<E: Backend>(
    exp: &TextExperiment,
    data: &TextData,
    model: &SortedBert<E>,
    device: &E::Device,
    target: ReportTarget<'_>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let state = target.state;
    let rows = evaluate_bert(exp, model, &data.eval, device, target.ctx.quiet);
    let cfg = &exp.config;
    let data_text = format!(
        "Rotten Tomatoes {} ({} train / {} {} sentences; {:.1} sub-model-sentences/s in training)",
        cfg.data.source,
        data.train.len(),
        data.eval.len(),
        data.eval_split_name,
        (state.step as f64 * (exp.k * cfg.data.batch_size) as f64) / state.train_seconds.max(1e-9)
    );
    let eval_seconds = started.elapsed().as_secs_f64();
    target.publish(cfg, (&exp.source, exp.k), eval_seconds, data_text, rows, "")
}

fn train_bert<B: AutodiffBackend>(
    exp: &TextExperiment,
    train: &TokenizedDataset,
    model: SortedBert<B>,
    device: &B::Device,
    run_dir: &Path,
    options: &TrainOptions,
) -> anyhow::Result<(SortedBert<B>, TrainState)> {
    let cfg = &exp.config;
    let task = |peer: Option<Peer>, device: &B::Device| TextTask {
        train,
        order: text_order(exp, train),
        batcher: TextBatcher::new(cfg.data.max_len),
        fresh_batches: cfg.train.fresh_batches,
        k: exp.k as u64,
        distill: cfg.train.distill,
        largest: exp.space.largest(),
        loss_fn: CrossEntropyLossConfig::new().init(device),
        device: device.clone(),
        peer,
    };
    let outcome = train_experiment(cfg, exp.sampler.as_ref(), run_dir, device, &task, model, options)?;
    Ok((outcome.model, outcome.state))
}

/// The order training draws its sentence batches in (batch `b` = step `b`'s shared batch);
/// sorting calibrates on its first batches.
fn text_order(exp: &TextExperiment, train: &TokenizedDataset) -> EpochOrder {
    EpochOrder::new(train.len(), exp.config.data.batch_size, exp.config.seed ^ DATA_SEED_SALT)
}

/// The text experiments' part of the loop: padded sentence batches (one shared, or one per
/// sub-model) and the classification loss, mixed with in-place distillation from the largest
/// sub-model as image experiments do.
struct TextTask<'a, B: AutodiffBackend> {
    train: &'a TokenizedDataset,
    order: EpochOrder,
    batcher: TextBatcher,
    fresh_batches: bool,
    k: u64,
    distill: f64,
    largest: TransformerSubModel,
    loss_fn: burn::nn::loss::CrossEntropyLoss<B>,
    device: B::Device,
    /// This peer's shard of every batch, in a data-parallel run.
    peer: Option<Peer>,
}

/// A step's sentence batches, and the teacher's log-probabilities when distilling.
struct TextStep<B: AutodiffBackend> {
    batches: Vec<TextBatch<B>>,
    teacher: Option<Tensor<B, 2>>,
}

impl<B: AutodiffBackend> TrainTask<B, SortedBert<B>> for TextTask<'_, B> {
    type Sub = TransformerSubModel;
    type Step = TextStep<B>;

    fn prepare(&self, model: &SortedBert<B>, step: u64, subs: &[TransformerSubModel]) -> TextStep<B> {
        let batch = |b: u64| {
            let indices = self.order.batch_indices(b);
            let indices = self.peer.map_or(indices.clone(), |p| p.shard(&indices));
            self.batcher.batch(self.train, &indices, &self.device)
        };
        let batches = if self.fresh_batches {
            (0..self.k).map(|i| batch(step * self.k + i)).collect()
        } else {
            vec![batch(step)]
        };
        // In-place distillation: the largest sub-model's log-probabilities on the step's batch,
        // from a forward pass without autodiff (and so without dropout).
        let teacher = (self.distill > 0.0 && subs.iter().any(|s| *s != self.largest))
            .then(|| bert_teacher_log_probs(model, &batches[0], &self.largest));
        TextStep { batches, teacher }
    }

    fn loss(&self, step: &TextStep<B>, model: &SortedBert<B>, index: usize, sub: &TransformerSubModel) -> Tensor<B, 1> {
        let b = &step.batches[index.min(step.batches.len() - 1)];
        let distill = step.teacher.as_ref().filter(|_| *sub != self.largest).map(|t| (t, self.distill));
        bert_classification_loss(model, b, sub, &self.loss_fn, distill)
    }
}

/// Accuracy of every sub-model of the space on `set` ([`evaluate_bert_sub_models`]), with its
/// cost at the set's mean sentence length and its measured forward time per sentence.
fn evaluate_bert<B: Backend>(
    exp: &TextExperiment,
    model: &SortedBert<B>,
    set: &TokenizedDataset,
    device: &B::Device,
    quiet: bool,
) -> Vec<SubModelResult> {
    let subs = crate::transformer_experiment::evaluated_subs(&exp.config.sampler, exp.sampler.as_ref(), &exp.space);
    let bar = crate::train::progress_bar(subs.len() as u64, 0, quiet);
    let (max_len, batch_size) = (exp.config.data.max_len, exp.config.eval.batch_size);
    let scores = evaluate_bert_sub_models(model, set, &subs, max_len, batch_size, device, |_| bar.inc(1));
    bar.finish_and_clear();
    let rows = scores
        .into_iter()
        .map(|s| {
            let us = 1e6 * s.seconds / set.len().max(1) as f64;
            SubModelResult::transformer(&s.sub, s.params, s.flops, s.accuracy, us, None)
        })
        .collect();
    crate::transformer_experiment::with_relative(rows)
}
