//! The one training loop every experiment kind shares: sample → batches → accumulate → learning
//! rate → optimizer step → checkpoint → stop or resume.
//!
//! What differs between experiments (images, sentences, language-model windows; plain labels or
//! distillation) is a [`TrainTask`]: the batches of a step and the loss of one sub-model on
//! them. Everything else, including crash-safe checkpoints, exact resume and divergence
//! detection, is here once.

use std::fmt::Display;
use std::path::Path;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::Tensor;
use burn::tensor::backend::AutodiffBackend;

use burn::optim::GradientsParams;
use burn::prelude::ElementConversion;

use crate::{
    CheckpointError, LrSchedule, Sampler, SortedOptimizer, TrainConfig, TrainState, accumulate_parallel, generations,
    load_checkpoint, normalised_weights, save_checkpoint,
};

/// A model [`TrainLoop::run`] can train: an autodiff module whose inner (non-autodiff) module
/// can cross threads, for the accumulation on worker threads. Every such module is one (the
/// blanket impl), so callers name only this bound.
pub trait TrainModel<B: AutodiffBackend>: AutodiffModule<B, InnerModule: Send> {}

impl<B: AutodiffBackend, M: AutodiffModule<B, InnerModule: Send>> TrainModel<B> for M {}

/// What one experiment kind supplies to [`TrainLoop::run`].
pub trait TrainTask<B: AutodiffBackend, M: AutodiffModule<B>>: Sync {
    /// The sub-model type the sampler draws.
    type Sub: Clone + Display + Send + Sync;
    /// Whatever one step needs besides the model: its batches (one shared, or one per
    /// sub-model), a teacher's predictions, ...
    type Step: Sync;

    /// Builds step `step`'s inputs for the sampled `subs` (called once per step, before any
    /// sub-model's loss; `model` is the model as it enters the step).
    fn prepare(&self, model: &M, step: u64, subs: &[Self::Sub]) -> Self::Step;

    /// The unweighted loss of `sub`, the `index`-th sampled sub-model, on `step`'s inputs.
    fn loss(&self, step: &Self::Step, model: &M, index: usize, sub: &Self::Sub) -> Tensor<B, 1>;

    /// The losses of all `subs` in one graph, for tasks whose sub-models share work (a
    /// decoder's exits share the layers below them: one forward pass gives them all). `weights`
    /// are the loop's normalised loss weights, one per sub-model. `None` (the default): the loop
    /// calls [`TrainTask::loss`] once per sub-model and accumulates their gradients.
    fn joint_loss(
        &self,
        _step: &Self::Step,
        _model: &M,
        _subs: &[Self::Sub],
        _weights: &[f64],
    ) -> Option<JointLoss<B>> {
        None
    }
}

/// What [`TrainTask::joint_loss`] returns.
#[derive(Debug)]
pub struct JointLoss<B: AutodiffBackend> {
    /// The step's loss: the weighted combination the optimizer follows (one backward pass).
    pub total: Tensor<B, 1>,
    /// Each sub-model's own loss, in sampling order (checked for divergence, logged).
    pub losses: Vec<f64>,
}

/// Hears about the loop's progress (a progress bar, log lines); every method has a no-op
/// default.
pub trait TrainObserver {
    /// The loop starts at `position` of `total` steps and runs until `end`.
    fn started(&mut self, _position: u64, _end: u64, _total: u64) {}
    /// Step `step` (counted from 1) finished with weighted mean loss `loss` at learning rate
    /// `lr`.
    fn step(&mut self, _step: u64, _end: u64, _loss: f64, _lr: f64) {}
    /// The loop ended (normally or not).
    fn finished(&mut self) {}
}

/// An observer that ignores everything.
impl TrainObserver for () {}

/// How one call of [`TrainLoop::run`] starts and stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopOptions {
    /// Continue from the run folder's newest checkpoint.
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps in total, as if interrupted.
    pub stop_after: Option<u64>,
    /// This call is one peer of a data-parallel run: its task prepares its shard of each
    /// step's batch, the loop averages gradients and losses over the peers before the step,
    /// and only rank 0 writes checkpoints (needs the `collective` feature).
    pub peer: Option<Peer>,
}

/// One peer of a data-parallel run ([`LoopOptions::peer`]): threads of one process, or of
/// several processes (nodes) joined by Burn's global orchestrator, where `rank` and `peers`
/// count the peers of every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// This peer's rank, `0..peers`; rank 0 writes checkpoints (and, in the runner, reports).
    pub rank: usize,
    /// How many peers train together (on every node).
    pub peers: usize,
    /// How long a collective call (joining, each average, leaving) may wait for the other peers
    /// before it fails: a dead peer or node ends the run with an error instead of a hang.
    pub timeout: std::time::Duration,
}

impl Peer {
    /// The [`Peer::timeout`] of [`Peer::new`]: long enough for the slowest step and a
    /// checkpoint write on rank 0, which the other peers wait for.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

    /// Peer `rank` of `peers`, with the [`Peer::DEFAULT_TIMEOUT`].
    pub fn new(rank: usize, peers: usize) -> Self {
        Self { rank, peers, timeout: Self::DEFAULT_TIMEOUT }
    }

    /// This peer's shard of a batch: the `rank`-th of `peers` equal parts (`batch.len()` is a
    /// multiple of `peers`; a remainder goes to nobody).
    pub fn shard<T: Clone>(&self, batch: &[T]) -> Vec<T> {
        let per = batch.len() / self.peers.max(1);
        batch[self.rank * per..(self.rank + 1) * per].to_vec()
    }
}

/// Why training stopped without finishing.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint to resume is from another run.
    #[error(
        "the checkpoint in `{dir}` is from a run of {found_steps} steps with seed {found_seed}, \
         the config asks for {steps} steps with seed {seed}"
    )]
    OtherRun {
        /// The run folder.
        dir: std::path::PathBuf,
        /// The checkpoint's total steps.
        found_steps: u64,
        /// The checkpoint's seed.
        found_seed: u64,
        /// The config's total steps.
        steps: u64,
        /// The config's seed.
        seed: u64,
    },
    /// A data-parallel peer could not reach the others.
    #[error("peer {rank} of {peers}: {reason}")]
    Peer {
        /// The peer's rank.
        rank: usize,
        /// The peer count.
        peers: usize,
        /// What failed.
        reason: String,
    },
    /// A loss or the weights became NaN or infinite.
    #[error(
        "training diverged at step {step}{}: {reason}",
        sub_model.as_ref().map(|s| format!(" (sub-model {s})")).unwrap_or_default()
    )]
    Diverged {
        /// The step (counted from 1) that diverged.
        step: u64,
        /// The sub-model whose loss was not finite, when it was a loss.
        sub_model: Option<String>,
        /// What was not finite.
        reason: String,
    },
}

/// The trained model and where training stands.
#[derive(Debug)]
pub struct LoopOutcome<M> {
    /// The model after the last step run.
    pub model: M,
    /// The training position (`state.step < state.total_steps` when stopped early).
    pub state: TrainState,
}

/// The loop's fixed parts: the run's config sections, its sampler and its checkpoint folder.
#[derive(Clone, Copy)]
pub struct TrainLoop<'a, S> {
    /// `[train]`.
    pub train: &'a TrainConfig,
    /// `[lr]`.
    pub lr: &'a LrSchedule,
    /// The sampler, built once from `[sampler]`.
    pub sampler: &'a dyn Sampler<S>,
    /// The run's seed (recorded in checkpoints; a resume must match it).
    pub seed: u64,
    /// The run folder; checkpoints go to its `checkpoint/`. The caller holds its
    /// [`RunLock`](crate::RunLock).
    pub run_dir: &'a Path,
    /// The experiment's config text, saved with every checkpoint.
    pub config_toml: &'a str,
}

impl<'a, S> TrainLoop<'a, S> {
    /// The loop of a run: its `[train]` and `[lr]`, its sampler (built once), its seed, the run
    /// folder and the config text saved with every checkpoint.
    pub fn new(
        train: &'a TrainConfig,
        lr: &'a LrSchedule,
        sampler: &'a dyn Sampler<S>,
        seed: u64,
        run_dir: &'a Path,
        config_toml: &'a str,
    ) -> Self {
        Self { train, lr, sampler, seed, run_dir, config_toml }
    }
}

// A sub-model is cloned into, shown by and sent to the accumulation's worker threads.
impl<S: Clone + Display + Send + Sync> TrainLoop<'_, S> {
    /// Trains `model` with `optim` from step 0 (or, with `options.resume`, from the newest
    /// checkpoint, restoring weights, optimizer state and position exactly) until
    /// `train.steps` or `options.stop_after`, saving a checkpoint generation every
    /// `train.checkpoint_every` steps and at the end.
    ///
    /// Each step: `sampler.sample(step)`, [`TrainTask::prepare`], the `k` losses (each times
    /// the `loss_reduction` factor) accumulated over `train.threads` threads with
    /// `train.loss_weights`, a check that every loss is finite, the learning rate of the step,
    /// one optimizer step.
    ///
    /// # Errors
    /// [`TrainError::Diverged`] naming the step (and sub-model) whose loss or weights are not
    /// finite: the checkpoints written before stay, none is written from those weights;
    /// [`TrainError::OtherRun`] when resuming another run's checkpoint;
    /// [`TrainError::Checkpoint`] when a checkpoint cannot be read or written.
    pub fn run<B, M, T>(
        &self,
        task: &T,
        model: M,
        optim: SortedOptimizer<M, B>,
        device: &B::Device,
        options: LoopOptions,
        observer: &mut dyn TrainObserver,
    ) -> Result<LoopOutcome<M>, TrainError>
    where
        B: AutodiffBackend,
        M: TrainModel<B>,
        T: TrainTask<B, M, Sub = S>,
    {
        let total = self.train.steps;
        let (mut model, mut optim) = (model, optim);
        let mut state = TrainState {
            step: 0,
            total_steps: total,
            seed: self.seed,
            optimizer: optim.kind().into(),
            train_seconds: 0.0,
        };
        if options.resume {
            let (m, o, s) = load_checkpoint(self.run_dir, model, optim, device)?;
            if s.total_steps != total || s.seed != self.seed {
                return Err(TrainError::OtherRun {
                    dir: self.run_dir.to_path_buf(),
                    found_steps: s.total_steps,
                    found_seed: s.seed,
                    steps: total,
                    seed: self.seed,
                });
            }
            (model, optim, state) = (m, o, s);
        }
        let end = options.stop_after.map_or(total, |s| s.min(total));
        let started = Instant::now();
        let seconds_before = state.train_seconds;
        observer.started(state.step, end, total);
        let result = self.steps(task, model, &mut optim, &mut state, end, options.peer, device, observer, &|| {
            seconds_before + started.elapsed().as_secs_f64()
        });
        observer.finished();
        let model = result?;
        state.train_seconds = seconds_before + started.elapsed().as_secs_f64();
        Ok(LoopOutcome { model, state })
    }

    /// Steps `state.step..end`, then the checkpoint a run without one needs.
    #[allow(clippy::too_many_arguments)]
    fn steps<B, M, T>(
        &self,
        task: &T,
        mut model: M,
        optim: &mut SortedOptimizer<M, B>,
        state: &mut TrainState,
        end: u64,
        peer: Option<Peer>,
        device: &B::Device,
        observer: &mut dyn TrainObserver,
        seconds: &dyn Fn() -> f64,
    ) -> Result<M, TrainError>
    where
        B: AutodiffBackend,
        M: TrainModel<B>,
        T: TrainTask<B, M, Sub = S>,
    {
        let total = self.train.steps;
        let reduction = self.train.loss_reduction.scale(self.sampler.k());
        let weights = &self.train.loss_weights;
        while state.step < end {
            let step = state.step;
            let subs = self.sampler.sample(step);
            let inputs = task.prepare(&model, step, &subs);
            // Each sub-model's loss (for the divergence check), the step's gradients and its
            // weighted mean loss.
            let (losses, grads, loss) =
                match task.joint_loss(&inputs, &model, &subs, &normalised_weights(weights, subs.len())) {
                    Some(joint) => {
                        let mean = joint.total.clone().into_scalar().elem::<f64>();
                        let grads = GradientsParams::from_grads(joint.total.mul_scalar(reduction).backward(), &model);
                        (joint.losses, grads, mean)
                    }
                    None => {
                        let acc = accumulate_parallel(&model, &subs, weights, self.train.threads, |m, i, sub| {
                            task.loss(&inputs, m, i, sub).mul_scalar(reduction)
                        });
                        // The losses were scaled by `reduction` for the gradient; report them unscaled.
                        let mean = acc.mean_loss(weights) / reduction;
                        (acc.losses.iter().map(|l| l / reduction).collect(), acc.grads, mean)
                    }
                };
            // Data parallel: the peers' losses and gradients are averaged, so every peer checks
            // the same values and takes the same step.
            let (losses, grads, loss) = match peer {
                Some(peer) => crate::peer_sync::average(peer, losses, grads, loss, &model, device)?,
                None => (losses, grads, loss),
            };
            if let Some(i) = losses.iter().position(|l| !l.is_finite()) {
                return Err(TrainError::Diverged {
                    step: step + 1,
                    sub_model: Some(subs[i].to_string()),
                    reason: format!("the loss became {}", losses[i]),
                });
            }
            if !loss.is_finite() {
                return Err(TrainError::Diverged {
                    step: step + 1,
                    sub_model: None,
                    reason: format!("the weighted loss became {loss}"),
                });
            }
            let lr = self.lr.lr(step, total);
            model = optim.step(lr, model, grads);
            state.step += 1;
            observer.step(state.step, end, loss, lr);
            let writes = peer.is_none_or(|p| p.rank == 0);
            if writes && checkpoint_due(state.step, end, self.train.checkpoint_every) {
                state.train_seconds = seconds();
                self.save(&model, optim, state)?;
            }
        }
        // A stop at or before the first step still leaves a checkpoint, so that resume works.
        if peer.is_none_or(|p| p.rank == 0) && generations(self.run_dir)?.is_empty() {
            state.train_seconds = seconds();
            self.save(&model, optim, state)?;
        }
        Ok(model)
    }

    fn save<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        model: &M,
        optim: &SortedOptimizer<M, B>,
        state: &TrainState,
    ) -> Result<(), TrainError> {
        match save_checkpoint(self.run_dir, model, optim, state, self.config_toml, self.train.keep_checkpoints) {
            Ok(_) => Ok(()),
            Err(CheckpointError::NonFinite { step, param }) => Err(TrainError::Diverged {
                step,
                sub_model: None,
                reason: format!("the weights hold NaN or infinity (parameter `{param}`)"),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether step `step` (counted from 1) ends the call or falls on the checkpoint interval
/// (`every` = 0: only at the end).
pub fn checkpoint_due(step: u64, end: u64, every: u64) -> bool {
    step == end || (every > 0 && step.is_multiple_of(every))
}
