//! `[model.bert]` of a text experiment: pretrained weights (a Hugging Face `BertModel` folder)
//! or random sizes, the vocabulary, pooling and dropout, checked against the transformer space.
//!
//! ```
//! use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
//! use sorted_zoo::BertModelConfig;
//!
//! let config: BertModelConfig = toml::from_str(
//!     "vocab = 'vocab.txt'\n[random]\nhidden_size = 16\nnum_layers = 2\nnum_heads = 4\nintermediate_size = 32",
//! )?;
//! let sizes = config.sizes()?;
//! let space = TransformerSpace::new(
//!     TransformerSpaceConfig { depths: vec![1, 2], heads: vec![2, 4], ffn: vec![16, 32], hidden: None },
//!     sizes.hidden_size,
//! )?;
//! BertModelConfig::check_space(&sizes, &space)?;
//! assert_eq!(config.vocab_path(), std::path::Path::new("vocab.txt"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sorted_nn::TransformerSpace;

use super::{Pooling, SortedBertConfig};
use crate::ModelConfigError;
use crate::sorting::{DEFAULT_SORT_BATCHES, ImportanceScore, check_sort_keys};

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

/// `[model.bert]`: a sorted BERT encoder with a classification head. Give `pretrained` or
/// `random`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BertModelConfig {
    /// Folder of a Hugging Face `BertModel`: `config.json`, `model.safetensors`, `vocab.txt`
    /// (`cargo xtask data minilm` → `data/minilm`).
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
    /// Sort the encoder's attention heads and FFN units, most important first, once before
    /// training starts (issue 31, [`crate::sorting`]), so that every sub-model's prefix starts
    /// as the best units instead of arbitrary ones: `taylor`, `activation` or `magnitude`
    /// (unset: no sorting). The scores are summed over the first `sort_batches` training
    /// batches. At that point the classification head is still **random** (it is initialised,
    /// not fine-tuned), so `taylor` differentiates the classification loss through a random
    /// head: it measures each unit's effect along random directions, a noisy estimate (DynaBERT
    /// computes it only after fine-tuning the head). `activation` (mean |activation|) does not
    /// involve the head and is the robust choice for a pretrained encoder with a new head;
    /// `magnitude` needs no data. A resumed run does not sort again: its checkpoint holds the
    /// sorted weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<ImportanceScore>,
    /// Training batches the `sort_by` scores are summed over (default
    /// [`DEFAULT_SORT_BATCHES`](crate::sorting::DEFAULT_SORT_BATCHES); needs `sort_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_batches: Option<usize>,
}

fn default_dropout() -> f64 {
    0.1
}

impl BertModelConfig {
    /// The model's sizes: from the pretrained `config.json` or `random` (a random model's
    /// `vocab_size` is 1 until its vocabulary is loaded), with pooling and dropout.
    ///
    /// # Errors
    /// [`ModelConfigError`] naming the key: not exactly one source, a missing vocabulary, an
    /// unreadable `config.json`, dropout outside `[0, 1)`, invalid sizes.
    pub fn sizes(&self) -> Result<SortedBertConfig, ModelConfigError> {
        let sizes = match (&self.pretrained, &self.random) {
            (Some(dir), None) => {
                SortedBertConfig::from_hf_config(&Path::new(dir).join("config.json")).map_err(|e| {
                    ModelConfigError::new(
                        "model.bert.pretrained",
                        "a folder with a BERT config.json and model.safetensors (`cargo xtask data minilm`)",
                        format!("{dir}: {e}"),
                    )
                })?
            }
            (None, Some(r)) => SortedBertConfig::new(1, r.hidden_size, r.num_layers, r.num_heads, r.intermediate_size)
                .with_max_position_embeddings(r.max_position_embeddings),
            _ => {
                return Err(ModelConfigError::new(
                    "model.bert",
                    "exactly one of `pretrained` and `random`",
                    format!("pretrained = {:?}, random = {}", self.pretrained, self.random.is_some()),
                ));
            }
        };
        if self.pretrained.is_none() && self.vocab.is_none() {
            return Err(ModelConfigError::new("model.bert.vocab", "a vocab.txt path (required with `random`)", "none"));
        }
        check_sort_keys("bert", self.sort_by, self.sort_batches)?;
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelConfigError::new("model.bert.dropout", "a probability in [0, 1)", self.dropout));
        }
        let sizes = sizes.with_pooling(self.pooling).with_dropout(self.dropout);
        sizes.validate().map_err(|e| ModelConfigError::new("model.bert.random", "valid sizes", e))?;
        Ok(sizes)
    }

    /// Checks that the space's largest sub-model fits the allocated `sizes`.
    ///
    /// # Errors
    /// [`ModelConfigError`] naming the `space.*` key that exceeds the model.
    pub fn check_space(sizes: &SortedBertConfig, space: &TransformerSpace) -> Result<(), ModelConfigError> {
        let full = space.largest();
        for (key, needed, allocated) in [
            ("space.depths", full.depth, sizes.num_layers),
            ("space.heads", full.heads, sizes.num_heads),
            ("space.ffn", full.ffn, sizes.intermediate_size),
            ("space.hidden", full.hidden, sizes.hidden_size),
        ] {
            if needed > allocated {
                return Err(ModelConfigError::new(key, format!("options up to the model's {allocated}"), needed));
            }
        }
        Ok(())
    }

    /// The vocabulary file.
    ///
    /// # Panics
    /// If neither `vocab` nor `pretrained` is set ([`BertModelConfig::sizes`] refuses that).
    pub fn vocab_path(&self) -> PathBuf {
        match (&self.vocab, &self.pretrained) {
            (Some(v), _) => PathBuf::from(v),
            (None, Some(dir)) => Path::new(dir).join("vocab.txt"),
            (None, None) => panic!("[model.bert] names no vocabulary (validate it with `sizes` first)"),
        }
    }

    /// The importance score and calibration batches to sort the model with before training
    /// (`sort_by`, `sort_batches` with its default), if any.
    pub fn sorting(&self) -> Option<(ImportanceScore, usize)> {
        self.sort_by.map(|score| (score, self.sort_batches.unwrap_or(DEFAULT_SORT_BATCHES)))
    }

    /// The pretrained weights file, if any.
    pub fn weights_path(&self) -> Option<PathBuf> {
        self.pretrained.as_ref().map(|dir| Path::new(dir).join("model.safetensors"))
    }
}
