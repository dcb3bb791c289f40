//! Image training: the image experiments' [`TrainTask`] for sorted-sched's one training loop,
//! and the progress display every loop of the runner uses.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

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
    LoopOptions, Peer, Sampler, TrainError, TrainLoop, TrainObserver, TrainState, TrainTask, distillation_loss,
};
use sorted_zoo::SortedClassifier;

use crate::config::{Experiment, ExperimentConfig};
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
    /// Train as one node of several (`train --distributed`): this node's local peers take the
    /// global ranks `node * local .. (node + 1) * local` of `nodes * local` peers.
    pub distributed: Option<crate::distributed::Distributed>,
}

/// An image classifier that trains: a [`SortedClassifier`] with autodiff whose inner module
/// (evaluation, the distillation teacher) is one too. Every such model is one (blanket impl).
pub trait TrainableClassifier<B: AutodiffBackend>:
    SortedClassifier<B> + AutodiffModule<B, InnerModule: SortedClassifier<B::InnerBackend>>
{
}

impl<B, M> TrainableClassifier<B> for M
where
    B: AutodiffBackend,
    M: SortedClassifier<B> + AutodiffModule<B, InnerModule: SortedClassifier<B::InnerBackend>>,
{
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
    let sampler = cfg.sampler.build(&exp.space, cfg.seed).expect("validated");
    let task = |peer: Option<Peer>, device: &B::Device| ImageTask {
        data,
        order: EpochOrder::new(data.train.len(), cfg.data.batch_size, cfg.seed ^ DATA_SEED_SALT),
        augmentation: cfg.data.augment.init(cfg.seed ^ AUGMENT_SEED_SALT),
        augment: !cfg.data.augment.is_identity(),
        fresh_batches: cfg.train.fresh_batches,
        k: sampler.k() as u64,
        distill: cfg.train.distill,
        largest: exp.space.largest(),
        loss_fn: CrossEntropyLossConfig::new().init(device),
        device: device.clone(),
        peer,
    };
    let outcome = train_experiment(cfg, sampler.as_ref(), run_dir, device, &task, model, options)?;
    Ok(TrainOutcome { model: outcome.model, state: outcome.state })
}

/// A [`TrainTask`] whose sub-models peers' threads can share: the bounds of the data-parallel
/// helpers, named once.
pub(crate) trait PeerTask<B: AutodiffBackend, M: AutodiffModule<B>>: TrainTask<B, M, Sub: Send + Sync> {}

impl<B: AutodiffBackend, M: AutodiffModule<B>, T: TrainTask<B, M, Sub: Send + Sync>> PeerTask<B, M> for T {}

/// Trains `model` with experiment `cfg`'s loop (any flow: its `[train]`, `[lr]`, `[optimizer]`
/// and seed; `sampler` built from its `[sampler]`), checkpointing into `run_dir` with the
/// resolved config, on the run's peers (`train.devices` / `train.peers`, and the nodes of
/// `options.distributed`): one loop on `device`, or one thread per peer, each with its own
/// `task(Some(peer), peer_device)` and optimizer, averaging gradients with Burn's collective
/// ([`run_peers`]). The trained model comes back on `device` (evaluation and reports run there).
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
        run_peers(&train_loop, &devices, task, model, optim, options)?
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

/// Data-parallel training: one thread per entry of `devices`, local peer `i` on `devices[i]`
/// (global rank `i`, or `node * devices.len() + i` on node `node` of a run over several nodes), each
/// running the loop on its shard of every batch (`task(Some(peer), device)`), averaging
/// gradients with Burn's collective; rank 0 shows progress, writes checkpoints and returns the
/// trained model (on its device). A peer that fails resets the collective, so the others fail
/// too instead of waiting for it.
///
/// # Errors
/// The first peer's error (a divergence, a checkpoint, a collective failure naming the peer).
fn run_peers<B, M, T>(
    train_loop: &TrainLoop<'_, T::Sub>,
    devices: &[B::Device],
    task: &(dyn Fn(Option<Peer>, &B::Device) -> T + Sync),
    model: M,
    optim: impl Fn() -> sorted_sched::SortedOptimizer<M, B> + Sync,
    options: &TrainOptions,
) -> anyhow::Result<sorted_sched::LoopOutcome<M>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B, InnerModule: Send>,
    T: PeerTask<B, M>,
{
    /// What a peer's thread returns: rank 0's trained weights and position, nothing for others.
    type PeerResult<I> = anyhow::Result<Option<(I, TrainState)>>;
    let results: Vec<PeerResult<M::InnerModule>> = std::thread::scope(|scope| {
        let peers = devices.len();
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(rank, device)| {
                let (inner, optim, task) = (model.valid(), &optim, task);
                scope.spawn(move || {
                    let peer = match &options.distributed {
                        Some(node) => {
                            let peer = node.peer(rank, peers);
                            sorted_sched::join_node::<B::InnerBackend>(peer, peers, &node.node, device)?;
                            peer
                        }
                        None => {
                            let peer = Peer::new(rank, peers);
                            sorted_sched::join::<B::InnerBackend>(peer, device)?;
                            peer
                        }
                    };
                    let peer_options = TrainOptions { quiet: options.quiet || peer.rank > 0, ..options.clone() };
                    let result = run_loop(
                        train_loop,
                        &task(Some(peer), device),
                        M::from_inner(inner).fork(device),
                        optim(),
                        device,
                        &peer_options,
                        Some(peer),
                    );
                    if result.is_err() {
                        sorted_sched::abandon::<B::InnerBackend>();
                    }
                    let _ = sorted_sched::leave::<B::InnerBackend>(peer);
                    // The node's first peer returns the model (the same on every peer).
                    result.map(|o| (rank == 0).then(|| (o.model.valid(), o.state)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a data-parallel peer panicked"))))
            .collect()
    });
    let mut first = None;
    for result in results {
        match result {
            Ok(Some((inner, state))) => first = first.or(Some(Ok((inner, state)))),
            Ok(None) => {}
            Err(e) => {
                if !matches!(first, Some(Err(_))) {
                    first = Some(Err(e));
                }
            }
        }
    }
    let (inner, state) = first.expect("rank 0 returns the model or an error")?;
    Ok(sorted_sched::LoopOutcome { model: M::from_inner(inner), state })
}

/// The image experiments' part of the loop: batches (augmented, one shared or one per
/// sub-model) and the label loss, mixed with in-place distillation from the largest sub-model.
struct ImageTask<'a, B: AutodiffBackend> {
    data: &'a RunData,
    order: EpochOrder,
    augmentation: sorted_data::Augmentation,
    augment: bool,
    fresh_batches: bool,
    k: u64,
    distill: f64,
    largest: sorted_nn::SubModel,
    loss_fn: burn::nn::loss::CrossEntropyLoss<B>,
    device: B::Device,
    /// This peer's shard of every batch, in a data-parallel run.
    peer: Option<Peer>,
}

impl<B: AutodiffBackend> ImageTask<'_, B> {
    /// Batch `b` of the run (`step`, or `step * k + i` with fresh batches) gets augmentation
    /// stream `b`: a resumed run sees the same augmented images.
    fn batch(&self, b: u64) -> ImageBatch<B> {
        let indices = self.order.batch_indices(b);
        let indices = self.peer.map_or(indices.clone(), |p| p.shard(&indices));
        let batcher = &self.data.batcher;
        if self.augment {
            batcher.batch_augmented(&self.data.train, &indices, &self.augmentation, b, &self.device)
        } else {
            batcher.batch(&self.data.train, &indices, &self.device)
        }
    }
}

/// A step's batches, and the teacher's log-probabilities when distilling.
struct ImageStep<B: AutodiffBackend> {
    batches: Vec<ImageBatch<B>>,
    teacher: Option<Tensor<B, 2>>,
}

impl<B: AutodiffBackend, M: TrainableClassifier<B>> TrainTask<B, M> for ImageTask<'_, B> {
    type Sub = sorted_nn::SubModel;
    type Step = ImageStep<B>;

    fn prepare(&self, model: &M, step: u64, subs: &[Self::Sub]) -> ImageStep<B> {
        let batches: Vec<ImageBatch<B>> = if self.fresh_batches {
            (0..self.k).map(|i| self.batch(step * self.k + i)).collect()
        } else {
            vec![self.batch(step)]
        };
        // In-place distillation: the largest sub-model's log-probabilities on the step's batch,
        // from a forward pass without autodiff (training-mode BatchNorm, as its own loss sees).
        let teacher = (self.distill > 0.0 && subs.iter().any(|s| *s != self.largest)).then(|| {
            let images = batches[0].images.clone().inner();
            let logits = model.valid().forward(images, &self.largest, &mut NormPass::Batch);
            Tensor::from_inner(log_softmax(logits, 1))
        });
        ImageStep { batches, teacher }
    }

    fn loss(&self, step: &ImageStep<B>, model: &M, index: usize, sub: &Self::Sub) -> Tensor<B, 1> {
        let batch = &step.batches[index.min(step.batches.len() - 1)];
        let logits = model.forward(batch.images.clone(), sub, &mut NormPass::Batch);
        match &step.teacher {
            Some(t) if *sub != self.largest => {
                let labels = self.loss_fn.forward(logits.clone(), batch.labels.clone());
                labels.mul_scalar(1.0 - self.distill) + distillation_loss(logits, t.clone()).mul_scalar(self.distill)
            }
            _ => self.loss_fn.forward(logits, batch.labels.clone()),
        }
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
