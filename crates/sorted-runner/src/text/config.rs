//! The config of a text-classification experiment (a sorted BERT): `[model.bert]`,
//! `[data]` for sentences, and a transformer `[space]`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
use sorted_sched::{LrSchedule, OptimizerConfig, SamplerConfig};
use sorted_zoo::SortedBertConfig;

use crate::config::{ConfigError, EvalConfig, TrainConfig, validate_shared};

/// `[data]` and `[model.bert]`: sorted-data's and sorted-zoo's configs, under the names the
/// runner's text configs use.
pub use sorted_data::{EvalSplit, TextDataConfig};
pub use sorted_zoo::{BertModelConfig as BertOptions, RandomBertSizes};

/// `[model.<kind>]` of a text experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TextModelConfig {
    /// A sorted BERT.
    Bert(BertOptions),
}

/// A text-classification experiment, as read from TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextExperimentConfig {
    /// A short name, used for the run folder.
    pub name: String,
    /// The seed of every random stream (head initialisation, dropout, sampling, data order).
    pub seed: u64,
    /// Data.
    pub data: TextDataConfig,
    /// The model.
    pub model: TextModelConfig,
    /// The transformer space (`depths`, `heads`, `ffn`, optional `hidden`).
    pub space: TransformerSpaceConfig,
    /// The sub-model sampler.
    #[serde(default)]
    pub sampler: SamplerConfig,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    pub lr: LrSchedule,
    /// Training length and accumulation switches.
    pub train: TrainConfig,
    /// Evaluation (`calibration_samples` is unused: BERT has no BatchNorm).
    #[serde(default)]
    pub eval: EvalConfig,
}

/// A validated text experiment.
#[derive(Clone, Debug)]
pub struct TextExperiment {
    /// The config as written (defaults filled in when saved).
    pub config: TextExperimentConfig,
    /// The model's sizes (from the pretrained `config.json` or `random`; a random model's
    /// `vocab_size` is set from its vocabulary file when the data is loaded).
    pub bert: SortedBertConfig,
    /// The validated space.
    pub space: TransformerSpace,
    /// Where the config came from.
    pub source: PathBuf,
    /// Sub-models the sampler draws per step.
    pub k: usize,
}

/// Whether TOML text describes a text experiment (`[model.bert]`), without validating it.
pub fn is_text_experiment(text: &str) -> bool {
    model_kind(text).as_deref() == Some("bert")
}

/// The `[model.<kind>]` an experiment's TOML names (`None` when it does not parse or names
/// none), which picks the experiment type before it is validated.
pub fn model_kind(text: &str) -> Option<String> {
    let table = toml::from_str::<toml::Table>(text).ok()?;
    table.get("model")?.as_table()?.keys().next().cloned()
}

impl TextExperiment {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key (a missing pretrained folder included).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates config text; `path` names it in errors.
    ///
    /// # Errors
    /// As [`TextExperiment::from_file`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: TextExperimentConfig =
            toml::from_str(text).map_err(|source| ConfigError::Parse { path: path.into(), source })?;
        Self::from_config(config, path)
    }

    /// Validates a parsed config.
    ///
    /// # Errors
    /// As [`TextExperiment::from_file`].
    pub fn from_config(config: TextExperimentConfig, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |key: &str, expected: String, got: String| ConfigError::Invalid {
            path: path.into(),
            key: key.into(),
            expected,
            got,
        };
        let TextModelConfig::Bert(bert) = &config.model;
        let model_error = |e: sorted_zoo::ModelConfigError| invalid(&e.key, e.expected, e.got);
        let sizes = bert.sizes().map_err(model_error)?;
        let space = TransformerSpace::new(config.space.clone(), sizes.hidden_size)
            .map_err(|source| ConfigError::Space { path: path.into(), source })?;
        BertOptions::check_space(&sizes, &space).map_err(model_error)?;
        let k = config.sampler.build_for(&space, config.seed).map_err(|e| invalid(&e.key, e.expected, e.got))?.k();
        let invalid_owned = |key: String, expected: String, got: String| invalid(&key, expected, got);
        let c = &config;
        validate_shared(&c.name, &c.optimizer, &c.lr, &c.train, &c.eval, k, c.data.batch_size, &invalid_owned)?;
        if config.train.distill != 0.0 {
            return Err(invalid(
                "train.distill",
                "0: in-place distillation is implemented for image experiments only".into(),
                config.train.distill.to_string(),
            ));
        }
        if config.data.max_len < 3 || config.data.max_len > sizes.max_position_embeddings {
            return Err(invalid(
                "data.max_len",
                format!("3..={} (the model's learned positions)", sizes.max_position_embeddings),
                config.data.max_len.to_string(),
            ));
        }
        Ok(Self { config, bert: sizes, space, source: path.into(), k })
    }

    /// The vocabulary file.
    pub fn vocab_path(&self) -> PathBuf {
        let TextModelConfig::Bert(bert) = &self.config.model;
        bert.vocab_path()
    }

    /// The pretrained weights file, if any.
    pub fn weights_path(&self) -> Option<PathBuf> {
        let TextModelConfig::Bert(bert) = &self.config.model;
        bert.weights_path()
    }

    /// The resolved config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.config).expect("config serialises")
    }
}
