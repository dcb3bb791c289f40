//! The runner's commands, generic over the backend.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::data::RunData;
use anyhow::Context;
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::{SubModel, SubModelNormStats};
use sorted_sched::{Checkpoint, TrainConfig, TrainState};
use sorted_zoo::{
    ClassifierVisitor, SortedClassifier, TrainableClassifierVisitor, calibrate_sub_model, calibration_batches,
};

use crate::cli::{EvalArgs, TrainArgs};
use crate::config::Experiment;
use crate::eval::{NormStatsFile, evaluate};
use crate::provenance::{RunContext, new_run_dir, write_file};
use crate::report::{RunMeta, RunReport};
use crate::run_folder::{RunFolder, open_checkpoint, read_failure, run_status};
use crate::train::{TrainOptions, TrainableClassifier, train};
use crate::transformer_experiment::{TransformerExperiment, train_in_new_folder};

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

/// `train`: trains, then evaluates every sub-model and writes the reports.
///
/// # Errors
/// Config, data, checkpoint or report errors, each naming its file.
pub fn train_cmd<B: AutodiffBackend>(
    args: &TrainArgs,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<PathBuf> {
    let distributed = args.distributed.as_deref().map(crate::distributed::Distributed::load).transpose()?;
    let flags = TrainFlags { args, ctx, distributed };
    let text_and_source = match (&args.config, &args.resume) {
        (Some(path), _) => Some((
            std::fs::read_to_string(path).with_context(|| format!("reading config `{}`", path.display()))?,
            path.clone(),
            None,
        )),
        (None, Some(dir)) => {
            // The folder is taken before its checkpoint is read: another writer may be saving it.
            let folder = RunFolder::open(dir)?;
            let checkpoint = open_checkpoint(dir)?;
            Some((checkpoint.config_toml().to_string(), checkpoint.config_path(), Some((folder, dir.clone()))))
        }
        (None, None) => None,
    };
    // The file is read once: its text picks the experiment type, then is parsed as that type.
    let (mut resumed, mut fresh) = (None, None);
    if let Some((text, source, folder)) = text_and_source {
        match crate::text::model_kind(&text).as_deref() {
            Some("bert") => return flags.train_kind::<crate::text::TextExperiment, B>(&text, &source, folder, device),
            Some("llama") => return flags.train_kind::<crate::lm::LmExperiment, B>(&text, &source, folder, device),
            _ => {
                let exp = Experiment::from_toml(&text, &source)?;
                match folder {
                    Some(folder) => resumed = Some((exp, folder)),
                    None => fresh = Some(exp),
                }
            }
        }
    }
    let (exp, run_dir, folder) = match resumed {
        Some((exp, (folder, dir))) => (exp, dir, Some(folder)),
        None => {
            let mut exp = fresh.unwrap_or_else(Experiment::default_experiment);
            flags.steps(&mut exp.config.train)?;
            let dir = args.out.clone().unwrap_or_else(|| new_run_dir(&exp.config.name));
            (exp, dir, None)
        }
    };
    let mut exp = exp;
    if flags.place(&mut exp.config.train) {
        exp = Experiment::from_config(exp.config, &exp.source).context("with --devices")?;
    }
    flags.check_nodes(exp.config.data.batch_size, exp.config.train.peers(), &exp.source)?;
    let options = flags.options(args.resume.is_some());
    let folder = match folder {
        Some(folder) => folder,
        None => RunFolder::create(&run_dir, options.force)?,
    };
    train_in_folder::<B>(&exp, folder, &options, device, ctx)?;
    Ok(run_dir)
}

/// What `train`'s flags change in any experiment: `--steps`, `--devices`, `--distributed` and
/// the training options.
struct TrainFlags<'a> {
    args: &'a TrainArgs,
    ctx: &'a RunContext,
    distributed: Option<crate::distributed::Distributed>,
}

impl TrainFlags<'_> {
    /// The training options of a new run (`resume` false) or a resumed one.
    fn options(&self, resume: bool) -> TrainOptions {
        TrainOptions {
            resume,
            stop_after: self.args.stop_after,
            quiet: self.ctx.quiet,
            force: self.args.force && !resume,
            distributed: self.distributed.clone(),
        }
    }

    /// `--steps` replaces `train.steps`.
    fn steps(&self, train: &mut TrainConfig) -> anyhow::Result<()> {
        if let Some(steps) = self.args.steps {
            anyhow::ensure!(steps > 0, "--steps must be at least 1");
            train.steps = steps;
        }
        Ok(())
    }

    /// `--devices` replaces `train.devices` and `train.peers` (then the config is validated
    /// again: true); notes a resumed run that changes its number of peers.
    fn place(&self, train: &mut TrainConfig) -> bool {
        let before = train.peers();
        if !self.args.devices.is_empty() {
            train.devices = self.args.devices.clone();
            train.peers = None;
        }
        if self.args.resume.is_some() && train.peers() != before && !self.ctx.quiet {
            eprintln!(
                "note: resuming with {} peers where the run so far had {before}: the same steps up to float summation \
                 order (every peer takes an equal share of each batch)",
                train.peers()
            );
        }
        !self.args.devices.is_empty()
    }

    /// `--distributed` needs a batch that splits over every node's peers.
    fn check_nodes(&self, batch: usize, local_peers: usize, source: &Path) -> anyhow::Result<()> {
        match &self.distributed {
            Some(d) => d.check_batch(batch, local_peers, source),
            None => Ok(()),
        }
    }

    /// `train` of a transformer experiment read from `text` (`folder`: the held folder and
    /// path of a resumed run).
    fn train_kind<K: TransformerExperiment, B: AutodiffBackend>(
        &self,
        text: &str,
        source: &Path,
        folder: Option<(RunFolder, PathBuf)>,
        device: &B::Device,
    ) -> anyhow::Result<PathBuf> {
        let mut exp = K::from_toml(text, source)?;
        self.steps(exp.train_config())?;
        if self.place(exp.train_config()) {
            exp = exp.revalidate(source).context("with --devices")?;
        }
        check_device_kinds(&exp.train_config().devices, self.ctx)?;
        let peers = exp.train_config().peers();
        self.check_nodes(exp.batch_size(), peers, source)?;
        match folder {
            Some((folder, dir)) => {
                exp.train_in_folder::<B>(folder, &self.options(true), device, self.ctx)?;
                Ok(dir)
            }
            None => train_in_new_folder::<K, B>(&exp, self.args.out.as_deref(), &self.options(false), device, self.ctx),
        }
    }
}

/// Refuses devices of another kind than the command's backend (`--device`).
fn check_device_kinds(devices: &[String], ctx: &RunContext) -> anyhow::Result<()> {
    for (i, name) in devices.iter().enumerate() {
        let spec = crate::device::DeviceSpec::parse(name).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            spec.kind.name() == ctx.device_name,
            "train.devices[{i}] = `{name}` needs `--device {}` (this run's backend is {})",
            spec.kind.flag(),
            ctx.device_name
        );
    }
    Ok(())
}

/// Trains an in-memory experiment into `run_dir` (created), then evaluates every sub-model and
/// writes the reports, as `train` does. The folder is locked for the whole call; a new run
/// refuses a folder that already holds one unless `options.force`.
///
/// # Errors
/// Data, checkpoint or report errors, each naming its file; a folder in use or already used.
pub fn train_experiment<B: AutodiffBackend>(
    exp: &Experiment,
    run_dir: &Path,
    options: &TrainOptions,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<()> {
    let folder = RunFolder::take(run_dir, options.resume, options.force)?;
    train_in_folder::<B>(exp, folder, options, device, ctx)
}

/// [`train_experiment`] in a folder this process already holds.
fn train_in_folder<B: AutodiffBackend>(
    exp: &Experiment,
    folder: RunFolder,
    options: &TrainOptions,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<()> {
    check_device_kinds(&exp.config.train.devices, ctx)?;
    let run_dir = folder.dir();
    write_file(&run_dir.join("config.toml"), exp.to_toml().as_bytes())?;
    let data = crate::data::load(exp)?;
    crate::train::RunStart {
        name: &exp.config.name,
        sub_models: exp.space.len(),
        sampler: (exp.config.sampler.kind(), exp.k),
        steps: exp.config.train.steps,
        data: format!("{} train / {} test images", data.train.len(), data.test.len()),
    }
    .announce(ctx, run_dir);
    if exp.k > exp.space.len() {
        eprintln!(
            "warning: {}: the sampler draws k = {} sub-models per step from a space of {}: every step repeats some",
            exp.source.display(),
            exp.k,
            exp.space.len()
        );
    }
    B::seed(device, exp.config.seed);
    let (exp, data) = (exp, &data);
    /// Trains the concrete model, then evaluates it.
    struct Training<'a, B: AutodiffBackend> {
        exp: &'a Experiment,
        data: &'a RunData,
        device: &'a B::Device,
        run_dir: &'a Path,
        options: &'a TrainOptions,
        ctx: &'a RunContext,
    }
    impl<B: AutodiffBackend> TrainableClassifierVisitor<B> for Training<'_, B> {
        type Output = anyhow::Result<()>;
        fn visit<M>(self, model: M) -> anyhow::Result<()>
        where
            M: SortedClassifier<B> + AutodiffModule<B>,
            M::InnerModule: SortedClassifier<B::InnerBackend>,
        {
            train_then_eval(self.exp, self.data, model, self.device, self.run_dir, self.options, self.ctx)
        }
    }
    let mut model = exp.config.model.init::<B>(&exp.space, data.image_shape(), data.n_classes(), device);
    if !options.resume {
        model = crate::sort::start_image_model(exp, data, model, device, run_dir, ctx.quiet)?;
    }
    model.visit_trainable(Training { exp, data, device, run_dir, options, ctx })?;
    Ok(())
}

fn train_then_eval<B: AutodiffBackend, M: TrainableClassifier<B>>(
    exp: &Experiment,
    data: &RunData,
    model: M,
    device: &B::Device,
    run_dir: &Path,
    options: &TrainOptions,
    ctx: &RunContext,
) -> anyhow::Result<()> {
    let outcome = train(exp, data, model, device, run_dir, options)?;
    if !crate::train::finished(&outcome.state, run_dir, ctx.quiet) {
        return Ok(());
    }
    if !crate::train::reports_here(options, &outcome.state, ctx.quiet) {
        return Ok(());
    }
    let inner = outcome.model.valid();
    report(exp, data, &inner, device, run_dir, &outcome.state, None, ctx)
}

/// Evaluates every sub-model and writes `results.json`, `results.csv`, `summary.md`,
/// `plot.svg` and (for BatchNorm models) `norm_stats.json`; prints the table. `state` is where
/// the evaluated weights stand; `status` says when that is not a finished run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn report<E: Backend, M: SortedClassifier<E>>(
    exp: &Experiment,
    data: &RunData,
    model: &M,
    device: &E::Device,
    run_dir: &Path,
    state: &TrainState,
    status: Option<String>,
    ctx: &RunContext,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (rows, norm_stats) = evaluate(model, exp, data, device, ctx.quiet);
    let cfg = &exp.config;
    let data_text = format!("{} ({} train / {} test images)", cfg.data.source, data.train.len(), data.test.len());
    let eval_seconds = started.elapsed().as_secs_f64();
    let meta = RunMeta::new(ctx, cfg, &exp.source, exp.k, state, eval_seconds, data_text, status);
    let report = RunReport::new(meta, cfg.eval.threshold, rows);
    if !norm_stats.is_empty() {
        write_norm_stats(run_dir, &norm_stats)?;
    }
    report.publish(run_dir, ctx.quiet, if norm_stats.is_empty() { "" } else { ", norm_stats.json" })
}

fn write_norm_stats(run_dir: &Path, stats: &NormStatsFile) -> anyhow::Result<()> {
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
        checkpoint: &Checkpoint,
        run: &Path,
        status: Option<String>,
        device: &E::Device,
        ctx: &RunContext,
    ) -> anyhow::Result<()> {
        K::from_toml(checkpoint.config_toml(), &checkpoint.config_path())?
            .eval_run::<E>(checkpoint, run, status, device, ctx)
    }
    match crate::text::model_kind(checkpoint.config_toml()).as_deref() {
        Some("bert") => {
            return eval_kind::<crate::text::TextExperiment, E>(&checkpoint, &args.run, status, device, ctx);
        }
        Some("llama") => return eval_kind::<crate::lm::LmExperiment, E>(&checkpoint, &args.run, status, device, ctx),
        _ => {}
    }
    let exp = crate::config::image_experiment(&checkpoint, &args.run)?;
    let data = crate::data::load(&exp)?;
    let visitor = Report { exp: &exp, data: &data, device, out: &args.run, state: &state, status, ctx };
    visit_trained::<E, _>(&exp, &data, &checkpoint, device, visitor)
}

/// Evaluates a loaded model and writes its reports into `out` ([`report`]).
pub(crate) struct Report<'a, E: Backend> {
    pub(crate) exp: &'a Experiment,
    pub(crate) data: &'a RunData,
    pub(crate) device: &'a E::Device,
    pub(crate) out: &'a Path,
    pub(crate) state: &'a TrainState,
    pub(crate) status: Option<String>,
    pub(crate) ctx: &'a RunContext,
}

impl<E: Backend> ModelVisitor<E> for Report<'_, E> {
    type Output = ();
    fn visit<M: SortedClassifier<E>>(self, model: M) -> anyhow::Result<()> {
        report(self.exp, self.data, &model, self.device, self.out, self.state, self.status, self.ctx)
    }
}
