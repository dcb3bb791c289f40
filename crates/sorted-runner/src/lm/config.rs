//! The config of a language-model experiment (sorted fine-tuning of a decoder, SoFT):
//! `[model.llama]`, `[data]` of text windows, and a transformer `[space]` of exits x query
//! heads x SwiGLU widths.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sorted_data::{GgufFile, LmDataConfig};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_sched::Sampler;
use sorted_zoo::llama::{LlamaModelConfig, SortedLlamaConfig};

use crate::config::{ConfigDocument, ConfigError, ExperimentConfig};

/// `[model.<kind>]` of a language-model experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum LmModelConfig {
    /// A sorted LLaMA decoder.
    Llama(LlamaModelConfig),
}

/// A language-model experiment, as read from TOML: `[data]` of text windows, `[model.llama]`,
/// and the transformer `[space]` (`depths` are the exits; `heads`, `ffn`; `hidden` is not
/// nested). `train.distill` is SoFT's self-distillation weight (KL to the full model); of
/// `[eval]` only `threshold` is used. `[sampler.all]` draws every exit every step.
pub type LmExperimentConfig = ExperimentConfig<LmDataConfig, LmModelConfig, TransformerSpaceConfig>;

/// A validated language-model experiment.
#[derive(Clone, Debug)]
pub struct LmExperiment {
    /// The config as written (defaults filled in when saved).
    pub config: LmExperimentConfig,
    /// The validated space (checked against the loaded model when it is loaded). Its hidden
    /// width is `space.hidden`, else the decoder's: `[model.llama.random]`'s, or the GGUF
    /// file's `llama.embedding_length` when the file exists at validation (else a placeholder
    /// of 1 until [`LmExperiment::space_for`] gives the loaded width).
    pub space: TransformerSpace,
    /// Where the config came from.
    pub source: PathBuf,
    /// Sub-models the sampler draws per step.
    pub k: usize,
    /// The sampler built from `[sampler]` on `space` when the config was validated; training
    /// and evaluation reach it through [`LmExperiment::sampler_for`].
    pub sampler: Arc<dyn Sampler<TransformerSubModel>>,
}

/// Whether TOML text describes a language-model experiment (`[model.llama]`).
pub fn is_lm_experiment(text: &str) -> bool {
    crate::config::model_kind(text).as_deref() == Some("llama")
}

impl LmExperiment {
    /// Parses and validates config text; `path` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the key.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::from_document(ConfigDocument::parse(text, path)?)
    }

    /// Validates an experiment file parsed once.
    ///
    /// # Errors
    /// As [`LmExperiment::from_toml`].
    pub fn from_document(doc: ConfigDocument) -> Result<Self, ConfigError> {
        let path = doc.path().to_path_buf();
        Self::from_config(doc.deserialize()?, &path)
    }

    /// Validates a parsed config.
    ///
    /// # Errors
    /// As [`LmExperiment::from_toml`].
    pub fn from_config(config: LmExperimentConfig, path: &Path) -> Result<Self, ConfigError> {
        let invalid = ConfigError::invalid_in(path);
        let LmModelConfig::Llama(llama) = &config.model;
        // The hidden width is not nested in LLaMA: a GGUF model's sizes are read from the file's
        // metadata when the file is there (the load reports a missing one), and the space is
        // checked against them here; otherwise the width is known once the model is loaded
        // (`space_for`), when the space is checked against it.
        let gguf_sizes = match (&llama.gguf, &llama.random) {
            (Some(file), None) if Path::new(file).exists() => {
                let sizes = GgufFile::read_metadata(file).and_then(|m| SortedLlamaConfig::from_gguf_metadata(&m));
                let sizes = sizes.map_err(|e| {
                    let expected = "a readable llama GGUF file (its metadata gives the decoder's sizes)";
                    invalid("model.llama.gguf".into(), expected.into(), format!("{:#}", anyhow::Error::from(e)))
                })?;
                Some((file, sizes))
            }
            _ => None,
        };
        let given = config.space.hidden.as_ref().and_then(|h| h.iter().max().copied());
        let hidden = match (&llama.random, given, &gguf_sizes) {
            (Some(r), _, _) => r.hidden_size,
            (None, Some(given), _) => given,
            (None, None, Some((_, sizes))) => sizes.hidden_size,
            (None, None, None) => 1,
        };
        let space = TransformerSpace::new(config.space.clone(), hidden)
            .map_err(|source| ConfigError::Space { path: path.into(), source })?;
        llama.validate(&space).map_err(|e| invalid(e.key, e.expected, e.got))?;
        if let Some((file, sizes)) = &gguf_sizes {
            sizes.check_space(&space).map_err(|e| {
                let expected = format!("sub-models the decoder of `{file}` holds");
                invalid("space".into(), expected, e.to_string())
            })?;
        }
        config.data.validate().map_err(|e| match e {
            sorted_data::DataError::Config { key, expected, got } => invalid(key, expected, got),
            other => invalid("data".into(), "a valid [data] section".into(), other.to_string()),
        })?;
        let sampler: Arc<dyn Sampler<TransformerSubModel>> =
            config.sampler.build_for(&space, config.seed).map_err(|e| invalid(e.key, e.expected, e.got))?.into();
        let k = sampler.k();
        config.validate_shared(k, config.data.batch_size, path)?;
        if config.train.threads != 1 {
            return Err(invalid(
                "train.threads".into(),
                "1: a step's sub-models share one forward pass (the backend threads each operation)".into(),
                config.train.threads.to_string(),
            ));
        }
        if config.train.fresh_batches {
            return Err(invalid(
                "train.fresh_batches".into(),
                "false: a step's sub-models share one forward pass over one batch".into(),
                "true".into(),
            ));
        }
        Ok(Self { config, space, source: path.into(), k, sampler })
    }

    /// The space for a decoder of hidden width `d_model` (the `hidden` default is the model's):
    /// equal to [`LmExperiment::space`] when that was built for `d_model` (a random decoder, or
    /// a GGUF file present at validation).
    ///
    /// # Errors
    /// A `[space]` that does not fit that width, naming the key.
    pub fn space_for(&self, d_model: usize) -> Result<TransformerSpace, ConfigError> {
        TransformerSpace::new(self.config.space.clone(), d_model)
            .map_err(|source| ConfigError::Space { path: self.source.clone(), source })
    }

    /// The sampler for `space` (from [`LmExperiment::space_for`]): the one built at validation
    /// when `space` is the validated one, else one built for `space` (the hidden width of a GGUF
    /// model whose file was missing at validation, which the sub-models carry, is known only
    /// once it is loaded).
    ///
    /// # Errors
    /// A `[sampler]` that does not fit `space`, naming the key.
    pub fn sampler_for(&self, space: &TransformerSpace) -> anyhow::Result<Arc<dyn Sampler<TransformerSubModel>>> {
        if *space == self.space {
            return Ok(Arc::clone(&self.sampler));
        }
        let sampler = self.config.sampler.build_for(space, self.config.seed);
        let invalid = ConfigError::invalid_in(&self.source);
        Ok(sampler.map_err(|e| invalid(e.key, e.expected, e.got))?.into())
    }

    /// The decoder's config.
    pub fn llama(&self) -> &LlamaModelConfig {
        let LmModelConfig::Llama(llama) = &self.config.model;
        llama
    }

    /// The resolved config as TOML.
    pub fn to_toml(&self) -> String {
        self.config.to_toml()
    }
}
