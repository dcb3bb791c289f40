//! The config of a text-classification experiment (a sorted BERT): `[model.bert]`,
//! `[data]` for sentences, and a transformer `[space]`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
use sorted_sched::{LrSchedule, OptimizerConfig, SamplerConfig};
use sorted_zoo::{Pooling, SortedBertConfig};

use crate::config::{ConfigError, EvalConfig, TrainConfig, validate_train_eval};

/// `[data]` of a text experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextDataConfig {
    /// `"embedded"` (the committed Rotten Tomatoes slice) or the folder of
    /// `rotten_tomatoes_corpus_full.csv` (`cargo xtask data rt-sentiment` → `data/rt-sentiment`).
    #[serde(default = "default_source")]
    pub source: String,
    /// Which split is evaluated: `dev` or `test`.
    #[serde(default)]
    pub eval_split: EvalSplit,
    /// Tokens per sentence at most, `[CLS]` and `[SEP]` included (longer ones are truncated).
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Training batch size (sentences).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Use only the first `train_limit` training sentences (0 = all).
    #[serde(default)]
    pub train_limit: usize,
    /// Use only the first `eval_limit` evaluation sentences (0 = all).
    #[serde(default)]
    pub eval_limit: usize,
}

/// The evaluated split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    /// The development split (for tuning).
    Dev,
    /// The test split (for reporting).
    #[default]
    Test,
}

fn default_source() -> String {
    "embedded".into()
}
fn default_max_len() -> usize {
    64
}
fn default_batch_size() -> usize {
    32
}

/// Sizes of a randomly initialised BERT (`[model.bert.random]`), for tests and experiments
/// without pretrained weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomBertSizes {
    /// Hidden width.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Attention heads per layer.
    pub num_heads: usize,
    /// FFN inner width.
    pub intermediate_size: usize,
    /// Learned positions.
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
}

fn default_positions() -> usize {
    128
}

/// `[model.bert]`: a sorted BERT encoder with a classification head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertOptions {
    /// Folder of a Hugging Face `BertModel`: `config.json`, `model.safetensors`, `vocab.txt`
    /// (`cargo xtask data minilm` → `data/minilm`). Give this or `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    /// Sizes of a randomly initialised encoder instead of pretrained weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomBertSizes>,
    /// The WordPiece vocabulary (default: `vocab.txt` in `pretrained`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<String>,
    /// How token states are pooled for the classifier: `mean` (default) or `cls`.
    #[serde(default)]
    pub pooling: Pooling,
    /// Dropout in training.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

fn default_dropout() -> f64 {
    0.1
}

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
        let sizes = match (&bert.pretrained, &bert.random) {
            (Some(dir), None) => {
                let file = Path::new(dir).join("config.json");
                SortedBertConfig::from_hf_config(&file).map_err(|e| {
                    invalid(
                        "model.bert.pretrained",
                        "a folder with a BERT config.json and model.safetensors (`cargo xtask data minilm`)".into(),
                        format!("{dir}: {e}"),
                    )
                })?
            }
            // The vocabulary size is the vocab file's, set when the tokenizer is loaded.
            (None, Some(r)) => SortedBertConfig::new(1, r.hidden_size, r.num_layers, r.num_heads, r.intermediate_size)
                .with_max_position_embeddings(r.max_position_embeddings),
            _ => {
                return Err(invalid(
                    "model.bert",
                    "exactly one of `pretrained` and `random`".into(),
                    format!("pretrained = {:?}, random = {}", bert.pretrained, bert.random.is_some()),
                ));
            }
        };
        if bert.pretrained.is_none() && bert.vocab.is_none() {
            return Err(invalid("model.bert.vocab", "a vocab.txt path (required with `random`)".into(), "none".into()));
        }
        if !(0.0..1.0).contains(&bert.dropout) {
            return Err(invalid("model.bert.dropout", "a probability in [0, 1)".into(), bert.dropout.to_string()));
        }
        let sizes = sizes.with_pooling(bert.pooling).with_dropout(bert.dropout);
        sizes.validate().map_err(|e| invalid("model.bert.random", "valid sizes".into(), e.to_string()))?;
        let space = TransformerSpace::new(config.space.clone(), sizes.hidden_size)
            .map_err(|source| ConfigError::Space { path: path.into(), source })?;
        let full = space.largest();
        for (key, needed, allocated) in [
            ("space.depths", full.depth, sizes.num_layers),
            ("space.heads", full.heads, sizes.num_heads),
            ("space.ffn", full.ffn, sizes.intermediate_size),
            ("space.hidden", full.hidden, sizes.hidden_size),
        ] {
            if needed > allocated {
                return Err(invalid(key, format!("options up to the model's {allocated}"), needed.to_string()));
            }
        }
        let k = config.sampler.build_for(&space, config.seed).map_err(|e| invalid(&e.key, e.expected, e.got))?.k();
        config.optimizer.validate().map_err(|e| invalid(&e.key, e.expected, e.got))?;
        config.lr.validate().map_err(|e| invalid(&e.key, e.expected, e.got))?;
        if config.data.batch_size == 0 {
            return Err(invalid("data.batch_size", "a value >= 1".into(), "0".into()));
        }
        let invalid_owned = |key: String, expected: String, got: String| invalid(&key, expected, got);
        crate::run_folder::check_run_name(&config.name).map_err(|got| {
            invalid("name", "1-100 letters, digits, `.`, `_`, `-`, not starting with `.`".into(), got)
        })?;
        validate_train_eval(&config.train, &config.eval, k, &invalid_owned)?;
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
        match (&bert.vocab, &bert.pretrained) {
            (Some(v), _) => PathBuf::from(v),
            (None, Some(dir)) => Path::new(dir).join("vocab.txt"),
            (None, None) => unreachable!("validated: random models name their vocab"),
        }
    }

    /// The pretrained weights file, if any.
    pub fn weights_path(&self) -> Option<PathBuf> {
        let TextModelConfig::Bert(bert) = &self.config.model;
        bert.pretrained.as_ref().map(|dir| Path::new(dir).join("model.safetensors"))
    }

    /// The resolved config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.config).expect("config serialises")
    }
}
