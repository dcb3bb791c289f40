//! Image training: the image experiments' [`TrainTask`] for sorted-sched's one training loop,
//! and the progress display every loop of the runner uses.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use sorted_nn::SubModel;
use sorted_sched::{LoopOptions, Peer, PeerTask, Sampler, TrainError, TrainLoop, TrainObserver, TrainState, TrainTask};
use sorted_zoo::{ClassifierStep, ClassifierTraining};

use crate::config::{Experiment, ExperimentConfig};
use crate::data::RunData;
use crate::run_folder::{TrainingFailure, clear_failure, mark_failed};

/// The data order's seed salt and the trainable-classifier bound, now sorted-zoo's
/// (`vision/classifier_training.rs`), under their old paths.
pub use sorted_zoo::{DATA_SEED_SALT, TrainableClassifier};

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
    /// Train as one node of several (`train --distributed`): this node's local peers take the
    /// global ranks `node * local .. (node + 1) * local` of `nodes * local` peers.
    pub distributed: Option<crate::distributed::Distributed>,
}

/// Trains `model` for the experiment's steps, checkpointing into `run_dir`: the image
/// experiment's [`TrainTask`] run by sorted-sched's one [`TrainLoop`].
///
/// # Errors
/// When a checkpoint cannot be read or written, or training diverges (the run is then marked
/// failed, `failed.json`).
pub fn train<B: AutodiffBackend, M: TrainableClassifier<B>>(
    exp: &Experiment,
    data: &RunData,
    model: M,
    device: &B::Device,
    run_dir: &Path,
    options: &TrainOptions,
) -> anyhow::Result<TrainOutcome<M>> {
    let cfg = &exp.config;
    let task = |peer: Option<Peer>, device: &B::Device| {
        let training = ClassifierTraining::new(data, &cfg.data, cfg.seed, exp.space.largest(), device)
            .fresh_batches(cfg.train.fresh_batches, exp.k)
            .distill(cfg.train.distill);
        ImageTask(match peer {
            Some(p) => training.shard(p.rank, p.peers),
            None => training,
        })
    };
    let outcome = train_experiment(cfg, exp.sampler.as_ref(), run_dir, device, &task, model, options)?;
    Ok(TrainOutcome { model: outcome.model, state: outcome.state })
}

/// Trains `model` with experiment `cfg`'s loop (any flow: its `[train]`, `[lr]`, `[optimizer]`
/// and seed; `sampler` built from its `[sampler]`), checkpointing into `run_dir` with the
/// resolved config, on the run's peers (`train.devices` / `train.peers`, and the nodes of
/// `options.distributed`): one loop on `device`, or one thread per peer, each with its own
/// `task(Some(peer), peer_device)` and optimizer, averaging gradients with Burn's collective
/// (sorted-sched's [`run_peers`](sorted_sched::run_peers)). The trained model comes back on `device` (evaluation and reports run there).
///
/// # Errors
/// As [`TrainLoop::run`], with the run folder as context; with peers, the first peer's error.
pub(crate) fn train_experiment<B, M, T, D, C, S>(
    cfg: &ExperimentConfig<D, C, S>,
    sampler: &dyn Sampler<T::Sub>,
    run_dir: &Path,
    device: &B::Device,
    task: &(dyn Fn(Option<Peer>, &B::Device) -> T + Sync),
    model: M,
    options: &TrainOptions,
) -> anyhow::Result<sorted_sched::LoopOutcome<M>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B, InnerModule: Send>,
    T: PeerTask<B, M>,
    D: serde::Serialize,
    C: serde::Serialize,
    S: serde::Serialize,
{
    let config_toml = cfg.to_toml();
    let train_loop = TrainLoop::new(&cfg.train, &cfg.lr, sampler, cfg.seed, run_dir, &config_toml);
    let optimizer = &cfg.optimizer;
    let optim = || optimizer.init();
    let devices = peer_devices::<B>(&cfg.train, device);
    let outcome = if devices.len() > 1 || options.distributed.is_some() {
        let node = options.distributed.as_ref().map(|d| (&d.node, d.timeout));
        sorted_sched::run_peers::<B, M, anyhow::Error>(&devices, node, model, |peer, device, model| {
            let peer_options = TrainOptions { quiet: options.quiet || peer.rank > 0, ..options.clone() };
            run_loop(&train_loop, &task(Some(peer), device), model, optim(), device, &peer_options, Some(peer))
        })?
    } else {
        let model = model.fork(&devices[0]);
        run_loop(&train_loop, &task(None, &devices[0]), model, optim(), &devices[0], options, None)?
    };
    Ok(sorted_sched::LoopOutcome { model: outcome.model.fork(device), state: outcome.state })
}

/// The device of every peer: `train.devices` (validated names, of the command's backend), else
/// `train.peers` times the command's `device`.
fn peer_devices<B: AutodiffBackend>(train: &sorted_sched::TrainConfig, device: &B::Device) -> Vec<B::Device> {
    if train.devices.is_empty() {
        return vec![device.clone(); train.peers()];
    }
    train
        .devices
        .iter()
        .map(|name| crate::device::DeviceSpec::parse(name).expect("validated with the config").device::<B>())
        .collect()
}

/// The image experiments' [`TrainTask`]: sorted-zoo's [`ClassifierTraining`] (batches, label
/// loss mixed with in-place distillation), adapted to sorted-sched's loop.
struct ImageTask<'a, B: AutodiffBackend>(ClassifierTraining<'a, B>);

impl<B: AutodiffBackend, M: TrainableClassifier<B>> TrainTask<B, M> for ImageTask<'_, B> {
    type Sub = SubModel;
    type Step = ClassifierStep<B>;

    fn prepare(&self, model: &M, step: u64, subs: &[SubModel]) -> ClassifierStep<B> {
        self.0.prepare(model, step, subs)
    }

    fn loss(&self, step: &ClassifierStep<B>, model: &M, index: usize, sub: &SubModel) -> Tensor<B, 1> {
        self.0.loss(step, model, index, sub)
    }
}

/// Runs `train_loop` on `task` with the runner's progress display, as one peer of a
/// data-parallel run (`peer`) or alone (`None`); a divergence marks the run failed
/// ([`stopped`]), a finished run clears an earlier failure mark (both only on rank 0).
///
/// # Errors
/// As [`TrainLoop::run`], with the run folder as context.
fn run_loop<B, M, T>(
    train_loop: &TrainLoop<'_, T::Sub>,
    task: &T,
    model: M,
    optim: sorted_sched::SortedOptimizer<M, B>,
    device: &B::Device,
    options: &TrainOptions,
    peer: Option<Peer>,
) -> anyhow::Result<sorted_sched::LoopOutcome<M>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B, InnerModule: Send>,
    T: TrainTask<B, M>,
{
    let mut progress = TrainProgress::new(options.quiet);
    let loop_options = LoopOptions { resume: options.resume, stop_after: options.stop_after, peer };
    let main = peer.is_none_or(|p| p.rank == 0);
    let outcome = train_loop
        .run(task, model, optim, device, loop_options, &mut progress)
        .map_err(|e| if main { stopped(train_loop.run_dir, e) } else { anyhow::Error::new(e) })?;
    if main && outcome.state.step == outcome.state.total_steps {
        clear_failure(train_loop.run_dir);
    }
    Ok(outcome)
}

/// The line every training run starts with (unless `--quiet`):
/// `name: N sub-models, sampler S (k = K), T steps on DEVICE (DATA) -> DIR`.
pub(crate) struct RunStart<'a> {
    /// The run's name.
    pub name: &'a str,
    /// Sub-models in the space.
    pub sub_models: usize,
    /// The sampler's kind and its `k`.
    pub sampler: (&'static str, usize),
    /// Optimizer steps.
    pub steps: u64,
    /// What the data is, e.g. `60000 train / 10000 test images`.
    pub data: String,
}

impl RunStart<'_> {
    /// Prints the line for a run into `run_dir` on `ctx`'s device.
    pub(crate) fn announce(&self, ctx: &crate::provenance::RunContext, run_dir: &Path) {
        if !ctx.quiet {
            eprintln!(
                "{}: {} sub-models, sampler {} (k = {}), {} steps on {} ({}) -> {}",
                self.name,
                self.sub_models,
                self.sampler.0,
                self.sampler.1,
                self.steps,
                ctx.device_name,
                self.data,
                run_dir.display()
            );
        }
    }
}

/// Takes `run_dir` (default: a new `runs/<name>-<time>`) for a fresh or resumed run (refusing
/// one already used unless `options.force`), runs `train` in it, and returns the folder.
///
/// # Errors
/// A folder in use or already used, or `train`'s error.
pub(crate) fn in_run_folder(
    name: &str,
    run_dir: Option<&Path>,
    options: &TrainOptions,
    train: impl FnOnce(crate::run_folder::RunFolder) -> anyhow::Result<()>,
) -> anyhow::Result<std::path::PathBuf> {
    let run_dir = run_dir.map_or_else(|| crate::provenance::new_run_dir(name), Path::to_path_buf);
    let folder = crate::run_folder::RunFolder::take(&run_dir, options.resume, options.force)?;
    train(folder)?;
    Ok(run_dir)
}

/// Whether this process evaluates and reports a finished run: every run but those of nodes
/// other than node 0 of a run over several nodes (node 0 reports; the others say so).
pub(crate) fn reports_here(options: &TrainOptions, state: &TrainState, quiet: bool) -> bool {
    match options.distributed.as_ref().filter(|d| d.node.node > 0) {
        Some(d) => {
            if !quiet {
                eprintln!(
                    "node {} of {}: trained {} steps; node 0 writes the checkpoints and evaluates the sub-models",
                    d.node.node, d.node.nodes, state.step
                );
            }
            false
        }
        None => true,
    }
}

/// Whether training reached its last step; if not, says (unless `quiet`) how to continue.
pub(crate) fn finished(state: &TrainState, run_dir: &Path, quiet: bool) -> bool {
    if state.step < state.total_steps && !quiet {
        eprintln!(
            "stopped at step {}/{}; continue with `sorted-runner train --resume {}`",
            state.step,
            state.total_steps,
            run_dir.display()
        );
    }
    state.step >= state.total_steps
}

/// The runner's account of a loop that stopped: a divergence marks the run failed
/// (`failed.json`) and says how to go on; other errors get the run folder as context.
pub(crate) fn stopped(run_dir: &Path, error: TrainError) -> anyhow::Error {
    match error {
        TrainError::Diverged { step, sub_model, reason } => {
            let failure = TrainingFailure { step, sub_model, message: reason };
            if let Err(e) = mark_failed(run_dir, &failure) {
                return e.context("marking a diverged run failed");
            }
            anyhow::anyhow!(
                "training diverged at step {step}{}: {}; the run is marked failed (`{}`) and keeps its last good \
                 checkpoint; lower lr.base in the config",
                failure.sub_model.as_ref().map(|s| format!(" (sub-model {s})")).unwrap_or_default(),
                failure.message,
                run_dir.join(crate::run_folder::FAILED_FILE).display()
            )
        }
        other => anyhow::Error::new(other).context(format!("training in `{}`", run_dir.display())),
    }
}

/// The progress of a training loop: the bar, a smoothed loss, and a log line every tenth of
/// the run when stderr is not a terminal. Shared by the image and text loops.
pub(crate) struct TrainProgress {
    bar: ProgressBar,
    quiet: bool,
    log_lines: bool,
    started: Instant,
    ema: Option<f64>,
    total: u64,
}

impl TrainProgress {
    /// A progress display (none when `quiet`); the bar appears when the loop starts.
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            bar: ProgressBar::hidden(),
            quiet,
            log_lines: !quiet && !std::io::stderr().is_terminal(),
            started: Instant::now(),
            ema: None,
            total: 0,
        }
    }

    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

impl TrainObserver for TrainProgress {
    fn started(&mut self, position: u64, _end: u64, total: u64) {
        self.bar = progress_bar(total, position, self.quiet);
        self.total = total;
        self.started = Instant::now();
    }

    fn step(&mut self, step: u64, end: u64, loss: f64, lr: f64) {
        let ema = self.ema.map_or(loss, |e| 0.98 * e + 0.02 * loss);
        self.ema = Some(ema);
        self.bar.set_position(step);
        self.bar.set_message(format!("loss {ema:.4} lr {lr:.2e}"));
        if self.log_lines && (step.is_multiple_of((self.total / 10).max(1)) || step == end) {
            eprintln!("step {step}/{} loss {ema:.4} lr {lr:.2e} ({:.1} s)", self.total, self.seconds());
        }
    }

    fn finished(&mut self) {
        self.bar.finish_and_clear();
    }
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
