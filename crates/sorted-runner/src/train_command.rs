//! `train`: a new or resumed run of any experiment kind (image, text, language model), then the
//! evaluation of every sub-model and the reports.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use sorted_sched::TrainConfig;
use sorted_zoo::{SortedClassifier, TrainableClassifierVisitor};

use crate::cli::TrainArgs;
use crate::config::{ConfigDocument, Experiment};
use crate::data::RunData;
use crate::eval_command::report;
use crate::provenance::{RunContext, new_run_dir, write_file};
use crate::report::ReportTarget;
use crate::run_folder::{RunFolder, open_checkpoint};
use crate::train::{TrainOptions, TrainableClassifier, train};
use crate::transformer_experiment::{TransformerExperiment, train_in_new_folder};

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
    let document_and_folder = match (&args.config, &args.resume) {
        (Some(path), _) => Some((ConfigDocument::read(path)?, None)),
        (None, Some(dir)) => {
            // The folder is taken before its checkpoint is read: another writer may be saving it.
            let folder = RunFolder::open(dir)?;
            let checkpoint = open_checkpoint(dir)?;
            let doc = ConfigDocument::parse(checkpoint.config_toml(), &checkpoint.config_path())?;
            Some((doc, Some((folder, dir.clone()))))
        }
        (None, None) => None,
    };
    // The file is read and parsed once: its `[model.<kind>]` picks the experiment type, then the
    // same parse is read as that type.
    let (mut resumed, mut fresh) = (None, None);
    if let Some((doc, folder)) = document_and_folder {
        match doc.model_kind() {
            Some("bert") => return flags.train_kind::<crate::text::TextExperiment, B>(doc, folder, device),
            Some("llama") => return flags.train_kind::<crate::lm::LmExperiment, B>(doc, folder, device),
            _ => {
                let exp = Experiment::from_document(doc)?;
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

    /// `train` of a transformer experiment from its parsed file `doc` (`folder`: the held folder
    /// and path of a resumed run).
    fn train_kind<K: TransformerExperiment, B: AutodiffBackend>(
        &self,
        doc: ConfigDocument,
        folder: Option<(RunFolder, PathBuf)>,
        device: &B::Device,
    ) -> anyhow::Result<PathBuf> {
        let source = doc.path().to_path_buf();
        let source = source.as_path();
        let mut exp = K::from_document(doc)?;
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
    let target = ReportTarget { run_dir, state: &outcome.state, status: None, ctx };
    report(exp, data, &inner, device, target)
}
