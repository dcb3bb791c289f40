//! The training loop: sample, accumulate, step, checkpoint.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use sorted_data::{EpochOrder, ImageBatch};

use crate::data::RunData;
use sorted_nn::NormPass;
use sorted_sched::{
    CheckpointError, SortedOptimizer, TrainState, accumulate_parallel, distillation_loss, generations, load_checkpoint,
    save_checkpoint,
};
use sorted_zoo::SortedClassifier;

use crate::config::Experiment;
use crate::run_folder::{TrainingFailure, clear_failure, mark_failed};

/// The data order's seed is derived from the run seed so that it never shares ChaCha streams
/// with the sampler (which uses the run seed itself).
pub const DATA_SEED_SALT: u64 = 0x5eed_da7a_0000_0001;

/// The augmentation seed, likewise derived from the run seed.
pub const AUGMENT_SEED_SALT: u64 = 0x5eed_a06e_0000_0003;

/// What one call of [`train`] did.
#[derive(Debug)]
pub struct TrainOutcome<M> {
    /// The trained model.
    pub model: M,
    /// Where training stands.
    pub state: TrainState,
}

/// Options of one training call.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the run folder's checkpoint.
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps in total, as if interrupted.
    pub stop_after: Option<u64>,
    /// No progress bar or log lines.
    pub quiet: bool,
    /// Replace a run already in the output folder (its checkpoints are deleted first).
    pub force: bool,
}

/// Trains `model` for the experiment's steps, checkpointing into `run_dir`.
///
/// # Errors
/// When a checkpoint cannot be read or written.
pub fn train<B, M>(
    exp: &Experiment,
    data: &RunData,
    model: M,
    device: &B::Device,
    run_dir: &Path,
    options: &TrainOptions,
) -> anyhow::Result<TrainOutcome<M>>
where
    B: AutodiffBackend,
    M: SortedClassifier<B> + AutodiffModule<B>,
    M::InnerModule: SortedClassifier<B::InnerBackend>,
{
    let cfg = &exp.config;
    let total = cfg.train.steps;
    let sampler = cfg.sampler.build(&exp.space, cfg.seed).expect("validated");
    let mut optim: SortedOptimizer<M, B> = cfg.optimizer.init();
    let mut model = model;
    let mut state =
        TrainState { step: 0, total_steps: total, seed: cfg.seed, optimizer: optim.kind().into(), train_seconds: 0.0 };
    if options.resume {
        let (m, o, s) = load_checkpoint(run_dir, model, optim, device)
            .with_context(|| format!("resuming from `{}`", run_dir.display()))?;
        (model, optim, state) = (m, o, s);
        anyhow::ensure!(
            state.total_steps == total && state.seed == cfg.seed,
            "checkpoint in `{}` is from a run of {} steps with seed {}, the config asks for {} steps with seed {}",
            run_dir.display(),
            state.total_steps,
            state.seed,
            total,
            cfg.seed
        );
    }
    let end = options.stop_after.map_or(total, |s| s.min(total));
    let order = EpochOrder::new(data.train.len(), cfg.data.batch_size, cfg.seed ^ DATA_SEED_SALT);
    let batcher = &data.batcher;
    let augmentation = cfg.data.augment.init(cfg.seed ^ AUGMENT_SEED_SALT);
    let augment = !cfg.data.augment.is_identity();
    // Batch `b` of the run (`step`, or `step * k + i` with fresh batches) gets augmentation
    // stream `b`: a resumed run sees the same augmented images.
    let make_batch = |b: u64| {
        let indices = order.batch_indices(b);
        if augment {
            batcher.batch_augmented(&data.train, &indices, &augmentation, b, device)
        } else {
            batcher.batch(&data.train, &indices, device)
        }
    };
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let k = sampler.k() as u64;
    let config_toml = exp.to_toml();
    let reduction = cfg.train.loss_reduction.scale(k as usize);
    let largest = exp.space.largest();

    let mut progress = TrainProgress::new(total, state.step, options.quiet);
    let seconds_before = state.train_seconds;
    while state.step < end {
        let step = state.step;
        let subs = sampler.sample(step);
        let batches: Vec<ImageBatch<B>> = if cfg.train.fresh_batches {
            (0..k).map(|i| make_batch(step * k + i)).collect()
        } else {
            vec![make_batch(step)]
        };
        // In-place distillation: the largest sub-model's log-probabilities on the step's batch,
        // from a forward pass without autodiff (training-mode BatchNorm, as its own loss sees).
        let distill = cfg.train.distill;
        let teacher: Option<Tensor<B, 2>> = (distill > 0.0 && subs.iter().any(|s| *s != largest)).then(|| {
            let images = batches[0].images.clone().inner();
            let logits = model.valid().forward(images, &largest, &mut NormPass::Batch);
            Tensor::from_inner(log_softmax(logits, 1))
        });
        let acc = accumulate_parallel(&model, &subs, &cfg.train.loss_weights, cfg.train.threads, |m, i, sub| {
            let batch = &batches[i.min(batches.len() - 1)];
            let logits = m.forward(batch.images.clone(), sub, &mut NormPass::Batch);
            let loss = match &teacher {
                Some(t) if *sub != largest => {
                    let labels = loss_fn.forward(logits.clone(), batch.labels.clone());
                    labels.mul_scalar(1.0 - distill) + distillation_loss(logits, t.clone()).mul_scalar(distill)
                }
                _ => loss_fn.forward(logits, batch.labels.clone()),
            };
            loss.mul_scalar(reduction)
        });
        // The losses were scaled by `reduction` for the gradient; report the weighted mean.
        let loss = acc.mean_loss(&cfg.train.loss_weights) / reduction;
        check_finite_losses(run_dir, step, &acc.losses, &subs)?;
        let lr = cfg.lr.lr(step, total);
        model = optim.step(lr, model, acc.grads);
        state.step += 1;
        progress.step(state.step, end, loss, lr);
        if checkpoint_due(state.step, end, cfg.train.checkpoint_every) {
            state.train_seconds = seconds_before + progress.seconds();
            save_or_fail(run_dir, &model, &optim, &state, &config_toml, cfg.train.keep_checkpoints)?;
        }
    }
    progress.finish();
    // `--stop-after` at or before the first step: the run still gets its first checkpoint, so
    // that `--resume` works as the message says.
    if generations(run_dir)?.is_empty() {
        state.train_seconds = seconds_before + progress.seconds();
        save_or_fail(run_dir, &model, &optim, &state, &config_toml, cfg.train.keep_checkpoints)?;
    }
    if state.step == total {
        clear_failure(run_dir);
    }
    state.train_seconds = seconds_before + progress.seconds();
    Ok(TrainOutcome { model, state })
}

/// Stops a diverged run: when a sampled sub-model's loss is NaN or infinite, marks the run
/// failed (`failed.json`: the step and the sub-model) and returns the error. The checkpoints
/// already written are kept; none is written from the diverged weights. `step` is the index
/// (from 0) of the step whose `losses` these are.
///
/// # Errors
/// The divergence, naming the step and the sub-model.
pub(crate) fn check_finite_losses(
    run_dir: &Path,
    step: u64,
    losses: &[f64],
    subs: &[impl std::fmt::Display],
) -> anyhow::Result<()> {
    let Some(i) = losses.iter().position(|l| !l.is_finite()) else { return Ok(()) };
    // Steps are counted from 1 in messages and in `failed.json`, as in the progress lines.
    let step = step + 1;
    let failure = TrainingFailure {
        step,
        sub_model: subs.get(i).map(ToString::to_string),
        message: format!("the loss became {}", losses[i]),
    };
    mark_failed(run_dir, &failure)?;
    anyhow::bail!(
        "training diverged at step {step}: the loss of sub-model {} became {}; the run is marked failed \
         (`{}`) and keeps its last good checkpoint; lower lr.base in the config",
        failure.sub_model.as_deref().unwrap_or("?"),
        losses[i],
        run_dir.join(crate::run_folder::FAILED_FILE).display()
    )
}

/// Saves a checkpoint generation; weights that hold NaN or infinity mark the run failed
/// instead (the previous generation stays the checkpoint).
///
/// # Errors
/// The divergence, or the checkpoint error naming its file.
pub(crate) fn save_or_fail<B: AutodiffBackend, M: AutodiffModule<B>>(
    run_dir: &Path,
    model: &M,
    optim: &SortedOptimizer<M, B>,
    state: &TrainState,
    config_toml: &str,
    keep: usize,
) -> anyhow::Result<()> {
    match save_checkpoint(run_dir, model, optim, state, config_toml, keep) {
        Ok(_) => Ok(()),
        Err(CheckpointError::NonFinite { step, param }) => {
            let message = format!("the weights hold NaN or infinity after step {step} (parameter `{param}`)");
            mark_failed(run_dir, &TrainingFailure { step, sub_model: None, message: message.clone() })?;
            anyhow::bail!(
                "training diverged: {message}; the run is marked failed (`{}`) and keeps its last good \
                 checkpoint; lower lr.base in the config",
                run_dir.join(crate::run_folder::FAILED_FILE).display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("writing a checkpoint into `{}`", run_dir.display())),
    }
}

/// The progress of a training loop: the bar, a smoothed loss, and a log line every tenth of
/// the run when stderr is not a terminal. Shared by the image and text loops.
pub(crate) struct TrainProgress {
    bar: ProgressBar,
    log_lines: bool,
    started: Instant,
    ema: Option<f64>,
    total: u64,
}

impl TrainProgress {
    /// A run of `total` steps starting at `position`.
    pub(crate) fn new(total: u64, position: u64, quiet: bool) -> Self {
        Self {
            bar: progress_bar(total, position, quiet),
            log_lines: !quiet && !std::io::stderr().is_terminal(),
            started: Instant::now(),
            ema: None,
            total,
        }
    }

    /// Records finished step `step` (1-based) of a call ending at `end`.
    pub(crate) fn step(&mut self, step: u64, end: u64, loss: f64, lr: f64) {
        let ema = self.ema.map_or(loss, |e| 0.98 * e + 0.02 * loss);
        self.ema = Some(ema);
        self.bar.set_position(step);
        self.bar.set_message(format!("loss {ema:.4} lr {lr:.2e}"));
        if self.log_lines && (step.is_multiple_of((self.total / 10).max(1)) || step == end) {
            eprintln!("step {step}/{} loss {ema:.4} lr {lr:.2e} ({:.1} s)", self.total, self.seconds());
        }
    }

    /// Seconds since the start of this call.
    pub(crate) fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Whether step `step` (1-based) ends the call or falls on the checkpoint interval.
pub(crate) fn checkpoint_due(step: u64, end: u64, every: u64) -> bool {
    step == end || (every > 0 && step.is_multiple_of(every))
}

pub(crate) fn progress_bar(total: u64, position: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total).with_position(position);
    bar.set_style(
        ProgressStyle::with_template("train {bar:32.cyan/blue} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
