//! The experiment config: one TOML file composing the library crates' configs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::config_document::ConfigDocument;
pub use crate::config_error::ConfigError;
use serde::{Deserialize, Serialize};
/// `[data]`: sorted-data's image data config, under the name the runner's configs use.
pub use sorted_data::{DatasetKind, ImageDataConfig as DataConfig};
use sorted_nn::{NestingSpace, NestingSpaceConfig};
pub use sorted_sched::{LossReduction, TrainConfig};
use sorted_sched::{LrSchedule, OptimizerConfig, Sampler, SamplerConfig};
/// `[model.<kind>]`: sorted-zoo's classifier config, under the name the runner's configs use.
pub use sorted_zoo::{
    BatchNormStats, ClassifierConfig as ModelConfig, CnnOptions, MlpOptions, MobileNetV2Options, ResNetOptions,
};

/// The default experiment (`configs/mnist-mlp.toml`), compiled in so that
/// `cargo run -p sorted-runner --release` works from any folder.
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/mnist-mlp.toml");
/// The name the default config is reported under.
pub const DEFAULT_CONFIG_NAME: &str = "configs/mnist-mlp.toml";

/// `[eval]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// Training images used to recalibrate BatchNorm statistics per sub-model.
    #[serde(default = "default_calibration")]
    pub calibration_samples: usize,
    /// The share of the full model's accuracy a sub-model must reach to count (the paper: 0.96).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            batch_size: default_eval_batch(),
            calibration_samples: default_calibration(),
            threshold: default_threshold(),
        }
    }
}

fn default_eval_batch() -> usize {
    1000
}
fn default_calibration() -> usize {
    512
}
fn default_threshold() -> f64 {
    0.96
}

/// One experiment as read from a TOML file: what every flow shares, with the flow's `[data]`
/// (`D`), `[model.<kind>]` (`M`) and `[space]` (`S`). The defaults are the image flow's;
/// [`crate::text::TextExperimentConfig`] and [`crate::lm::LmExperimentConfig`] name the others.
/// One generic struct rather than a shared part flattened in: serde does not support
/// `flatten` beside `deny_unknown_fields` (house style, section 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig<D = DataConfig, M = ModelConfig, S = NestingSpaceConfig> {
    /// A short name, used for the run folder.
    pub name: String,
    /// The seed of every random stream (initialisation, sampling, data order).
    pub seed: u64,
    /// Data (defaults when the section is absent).
    #[serde(default)]
    pub data: D,
    /// The model family.
    pub model: M,
    /// The space of sub-models.
    pub space: S,
    /// The sub-model sampler.
    #[serde(default)]
    pub sampler: SamplerConfig,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub lr: LrSchedule,
    /// Training length and accumulation switches.
    pub train: TrainConfig,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
}

impl<D: Serialize, M: Serialize, S: Serialize> ExperimentConfig<D, M, S> {
    /// The resolved config (defaults filled in) as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks what every experiment kind shares: the run name, `[optimizer]`, `[lr]`, `[train]`
    /// (positive steps and threads, `k` valid loss weights or none, device names, a training
    /// `batch_size` that splits evenly over the peers) and `[eval]` (a positive batch, a
    /// threshold in (0, 1]).
    ///
    /// # Errors
    /// The first value out of range, naming its key and `path`.
    pub(crate) fn validate_shared(&self, k: usize, batch_size: usize, path: &Path) -> Result<(), ConfigError> {
        let invalid = ConfigError::invalid_in(path);
        crate::run_folder::check_run_name(&self.name).map_err(|got| {
            invalid("name".into(), "1-100 letters, digits, `.`, `_`, `-`, not starting with `.`".into(), got)
        })?;
        self.optimizer.validate().map_err(|e| invalid(e.key, e.expected, e.got))?;
        self.lr.validate().map_err(|e| invalid(e.key, e.expected, e.got))?;
        let train = &self.train;
        train.validate(k).map_err(|e| invalid(e.key, e.expected, e.got))?;
        if batch_size == 0 {
            return Err(invalid("data.batch_size".into(), "a value >= 1".into(), "0".into()));
        }
        for (i, name) in train.devices.iter().enumerate() {
            crate::device::DeviceSpec::parse(name)
                .map_err(|why| invalid(format!("train.devices[{i}]"), crate::device::DEVICE_SPEC_FORMS.into(), why))?;
        }
        let peers = train.peers();
        if !batch_size.is_multiple_of(peers) {
            return Err(invalid(
                "data.batch_size".into(),
                format!("a multiple of train.peers = {peers} (every peer gets an equal share)"),
                batch_size.to_string(),
            ));
        }
        let eval = &self.eval;
        if eval.batch_size == 0 {
            return Err(invalid("eval.batch_size".into(), "a value >= 1".into(), "0".into()));
        }
        if !(eval.threshold > 0.0 && eval.threshold <= 1.0) {
            return Err(invalid("eval.threshold".into(), "a share in (0, 1]".into(), eval.threshold.to_string()));
        }
        Ok(())
    }
}

/// A parsed and validated experiment.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// The config as written (defaults filled in when saved).
    pub config: ExperimentConfig,
    /// The validated space.
    pub space: NestingSpace,
    /// Where the config came from (for reports and errors).
    pub source: PathBuf,
    /// Sub-models the sampler draws per step.
    pub k: usize,
    /// The sampler built from `[sampler]` when the config was validated, which training uses
    /// (a pure function of seed and step, so one is shared).
    pub sampler: Arc<dyn Sampler>,
}

impl Experiment {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_document(ConfigDocument::read(path)?)
    }

    /// The built-in default experiment.
    ///
    /// # Panics
    /// Never: the default config is checked by a test.
    pub fn default_experiment() -> Self {
        Self::from_toml(DEFAULT_CONFIG, Path::new(DEFAULT_CONFIG_NAME)).expect("the default config is valid")
    }

    /// Parses and validates config text; `path` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::from_document(ConfigDocument::parse(text, path)?)
    }

    /// Validates an experiment file parsed once ([`ConfigDocument`]).
    ///
    /// # Errors
    /// As [`Experiment::from_toml`].
    pub fn from_document(doc: ConfigDocument) -> Result<Self, ConfigError> {
        let path = doc.path().to_path_buf();
        Self::from_config(doc.deserialize()?, &path)
    }

    /// Validates an already-parsed config; `path` names where it came from in errors.
    ///
    /// # Errors
    /// As [`Experiment::from_toml`], less the parse errors.
    pub fn from_config(config: ExperimentConfig, path: &Path) -> Result<Self, ConfigError> {
        let invalid = ConfigError::invalid_in(path);
        let space = NestingSpace::new(config.space.clone())
            .map_err(|source| ConfigError::Space { path: path.into(), source })?;
        let sampler: Arc<dyn Sampler> =
            config.sampler.build(&space, config.seed).map_err(|e| invalid(e.key, e.expected, e.got))?.into();
        let k = sampler.k();
        config.validate_shared(k, config.data.batch_size, path)?;
        if config.train.threads > 1 && config.model.batch_norm() == Some(BatchNormStats::Switchable) {
            return Err(invalid(
                "train.threads".into(),
                "1 with switchable BatchNorm (its running statistics are updated one sub-model at a time)".into(),
                config.train.threads.to_string(),
            ));
        }
        config.model.validate(&space).map_err(|e| invalid(e.key, e.expected, e.got))?;
        let dataset = config.data.dataset;
        if let Some(params) = config.model.estimated_params(&space, dataset.image_shape(), dataset.n_classes()) {
            crate::memory_budget::check_fits(params, crate::memory_budget::available_bytes()).map_err(|got| {
                invalid("space.widths".into(), "a model that fits in this machine's memory".into(), got)
            })?;
        }
        Ok(Self { config, space, source: path.into(), k, sampler })
    }

    /// The resolved config (defaults filled in) as TOML.
    pub fn to_toml(&self) -> String {
        self.config.to_toml()
    }
}

/// The `[model.<kind>]` an experiment's TOML names (`None` when it does not parse or names
/// none), which picks the experiment type before it is validated.
pub fn model_kind(text: &str) -> Option<String> {
    ConfigDocument::parse(text, Path::new("")).ok()?.model_kind().map(String::from)
}

/// Opens a run's newest checkpoint (verified once) and the experiment saved with it.
///
/// # Errors
/// When the run has no checkpoint or its config is invalid.
pub(crate) fn load_run(run_dir: &Path) -> anyhow::Result<(Experiment, sorted_sched::Checkpoint)> {
    let checkpoint = crate::run_folder::open_checkpoint(run_dir)?;
    let exp = image_experiment(&checkpoint, run_dir)?;
    Ok((exp, checkpoint))
}

/// The image experiment saved with `checkpoint` of the run in `run_dir`.
pub(crate) fn image_experiment(checkpoint: &sorted_sched::Checkpoint, run_dir: &Path) -> anyhow::Result<Experiment> {
    let doc = ConfigDocument::parse(checkpoint.config_toml(), &checkpoint.config_path())?;
    if let Some(kind @ ("bert" | "llama")) = doc.model_kind() {
        anyhow::bail!(
            "`{}` is a [model.{kind}] run: profile, select and compare support image runs only so far \
             (`eval` re-scores it; its report is in results.json)",
            run_dir.display()
        );
    }
    Ok(Experiment::from_document(doc)?)
}
