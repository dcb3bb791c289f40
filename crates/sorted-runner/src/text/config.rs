//! The config of a text-classification experiment (a sorted BERT): `[model.bert]`,
//! `[data]` for sentences, and a transformer `[space]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_sched::Sampler;
use sorted_zoo::SortedBertConfig;

use crate::config::{ConfigDocument, ConfigError, ExperimentConfig};

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

/// A text-classification experiment, as read from TOML: `[data]` of sentences,
/// `[model.bert]` and the transformer `[space]` (`depths`, `heads`, `ffn`, optional `hidden`).
/// `eval.calibration_samples` is unused: BERT has no BatchNorm.
pub type TextExperimentConfig = ExperimentConfig<TextDataConfig, TextModelConfig, TransformerSpaceConfig>;

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
    /// The sampler built from `[sampler]` on `space` when the config was validated, which
    /// training and evaluation use (a pure function of seed and step, so one is shared).
    pub sampler: Arc<dyn Sampler<TransformerSubModel>>,
}

/// Whether TOML text describes a text experiment (`[model.bert]`), without validating it.
pub fn is_text_experiment(text: &str) -> bool {
    model_kind(text).as_deref() == Some("bert")
}

pub use crate::config::model_kind;

impl TextExperiment {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key (a missing pretrained folder included).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_document(ConfigDocument::read(path)?)
    }

    /// Parses and validates config text; `path` names it in errors.
    ///
    /// # Errors
    /// As [`TextExperiment::from_file`].
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::from_document(ConfigDocument::parse(text, path)?)
    }

    /// Validates an experiment file parsed once.
    ///
    /// # Errors
    /// As [`TextExperiment::from_file`].
    pub fn from_document(doc: ConfigDocument) -> Result<Self, ConfigError> {
        let path = doc.path().to_path_buf();
        Self::from_config(doc.deserialize()?, &path)
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
        let sampler: Arc<dyn Sampler<TransformerSubModel>> =
            config.sampler.build_for(&space, config.seed).map_err(|e| invalid(&e.key, e.expected, e.got))?.into();
        let k = sampler.k();
        config.validate_shared(k, config.data.batch_size, path)?;
        if config.data.max_len < 3 || config.data.max_len > sizes.max_position_embeddings {
            return Err(invalid(
                "data.max_len",
                format!("3..={} (the model's learned positions)", sizes.max_position_embeddings),
                config.data.max_len.to_string(),
            ));
        }
        Ok(Self { config, bert: sizes, space, source: path.into(), k, sampler })
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
        self.config.to_toml()
    }
}
