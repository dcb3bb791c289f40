//! `[model.llama]` of a language-model experiment: where the decoder comes from (a GGUF file, or
//! random sizes for tests), its tokenizer, and SoFT's loss options.
//!
//! ```
//! use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
//! use sorted_zoo::llama::LlamaModelConfig;
//!
//! let config: LlamaModelConfig = toml::from_str(
//!     "exit_weights = [1.0, 2.0]\n[random]\nhidden_size = 16\nnum_layers = 4\nnum_heads = 4\n\
//!      num_kv_heads = 2\nhead_dim = 4\nintermediate_size = 24",
//! )?;
//! let space = TransformerSpace::new(
//!     TransformerSpaceConfig { depths: vec![2, 4], heads: vec![2, 4], ffn: vec![12, 24], hidden: None },
//!     16,
//! )?;
//! config.validate(&space)?;
//! let (model, bpe) = config.load::<burn_flex::Flex>(&Default::default())?;
//! model.check_space(&space)?;
//! assert_eq!(bpe.vocab_size(), 256); // random models read bytes
//! assert_eq!(config.exit_weight(&space, 4), 2.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sorted_data::{ByteLevelBpe, DataError, GgufError, GgufFile, gpt2_byte_char};
use sorted_nn::TransformerSpace;

use super::{HeadGradient, SoftOptions, SortedLlama, SortedLlamaConfig};
use crate::ModelConfigError;
use crate::sorting::{DEFAULT_SORT_BATCHES, ImportanceScore, check_sort_keys};

/// Sizes of a randomly initialised decoder (`[model.llama.random]`); its tokenizer maps each
/// byte to one token (vocabulary 256).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomLlamaSizes {
    /// Hidden width.
    pub hidden_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads per layer.
    pub num_heads: usize,
    /// Key/value heads per layer (divides `num_heads`).
    pub num_kv_heads: usize,
    /// Features per head (even: RoPE rotates pairs).
    pub head_dim: usize,
    /// SwiGLU inner width.
    pub intermediate_size: usize,
}

/// `[model.llama]`: a sorted LLaMA decoder. Give `gguf` or `random`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlamaModelConfig {
    /// A GGUF file of a LLaMA-family decoder with its tokenizer (`cargo xtask data smollm2`
    /// fetches SmolLM2-135M-Instruct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf: Option<String>,
    /// Sizes of a randomly initialised decoder instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomLlamaSizes>,
    /// Loss weight of each exit, one per `space.depths` (ascending); empty: equal. A sampled
    /// sub-model's loss is weighted by its exit's weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_weights: Vec<f64>,
    /// Only the full-depth exit trains the shared final norm and LM head (the shallower exits
    /// see them frozen).
    #[serde(default)]
    pub head_from_full_only: bool,
    /// Sort the decoder's SwiGLU units and its query heads (within each KV group), most
    /// important first, once before training from scratch (issue 31, [`crate::sorting`]), so
    /// that every width sub-model's prefix starts as the best units: `taylor` (first-order
    /// Taylor of the next-token loss, meaningful here because the LM head is pretrained),
    /// `activation` or `magnitude` (unset: no sorting). The scores are summed over the first
    /// `sort_batches` batches of training windows. A resumed run does not sort again (its
    /// checkpoint holds the sorted weights), and evaluating a run never sorts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_by: Option<ImportanceScore>,
    /// Training batches the `sort_by` scores are summed over (default
    /// [`DEFAULT_SORT_BATCHES`]; needs `sort_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_batches: Option<usize>,
}

/// Why `[model.llama]` could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LlamaLoadError {
    /// The GGUF file or one of its keys.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// Its tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] DataError),
    /// Sizes that do not fit together.
    #[error(transparent)]
    Config(#[from] ModelConfigError),
}

impl LlamaModelConfig {
    /// Checks the config against the space: one source, exit weights (one positive weight per
    /// depth), random sizes. The loaded model's allocation is checked by
    /// [`SortedLlama::check_space`].
    ///
    /// # Errors
    /// [`ModelConfigError`] naming the key.
    pub fn validate(&self, space: &TransformerSpace) -> Result<(), ModelConfigError> {
        if self.gguf.is_some() == self.random.is_some() {
            return Err(ModelConfigError::new(
                "model.llama",
                "exactly one of `gguf` (a file) and `random` (sizes)",
                format!("gguf = {:?}, random = {}", self.gguf, self.random.is_some()),
            ));
        }
        if !self.exit_weights.is_empty() && self.exit_weights.len() != space.depths().len() {
            return Err(ModelConfigError::new(
                "model.llama.exit_weights",
                format!("one weight per depth of space.depths {:?}", space.depths()),
                format!("{} weights", self.exit_weights.len()),
            ));
        }
        if let Some(w) = self.exit_weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(ModelConfigError::new("model.llama.exit_weights", "positive finite weights", w));
        }
        check_sort_keys("llama", self.sort_by, self.sort_batches)?;
        if let Some(r) = &self.random {
            self.random_config(r)
                .validate()
                .map_err(|e| ModelConfigError::new("model.llama.random", "sizes a decoder can have", e.to_string()))?;
            if r.num_layers > 4096 || r.hidden_size > 1 << 16 || r.intermediate_size > 1 << 18 {
                return Err(ModelConfigError::new(
                    "model.llama.random",
                    "at most 4096 layers, hidden 65536, SwiGLU 262144",
                    format!("{r:?}"),
                ));
            }
        }
        Ok(())
    }

    fn random_config(&self, r: &RandomLlamaSizes) -> SortedLlamaConfig {
        SortedLlamaConfig::new(
            256,
            r.hidden_size,
            r.num_layers,
            r.num_heads,
            r.num_kv_heads,
            r.head_dim,
            r.intermediate_size,
        )
    }

    /// The decoder and its tokenizer: read from the GGUF file (dequantized to f32), or
    /// randomly initialised (seed the backend first) with a byte tokenizer.
    ///
    /// # Errors
    /// An unreadable or inconsistent GGUF file, naming it and the key.
    pub fn load<B: Backend>(&self, device: &B::Device) -> Result<(SortedLlama<B>, ByteLevelBpe), LlamaLoadError> {
        if let Some(r) = &self.random {
            let tokens: Vec<String> = (0..=255u8).map(|b| gpt2_byte_char(b).to_string()).collect();
            let bpe = ByteLevelBpe::new(tokens, &[] as &[&str], "bytes")?;
            return Ok((self.random_config(r).init(device), bpe));
        }
        let path = self
            .gguf
            .as_deref()
            .ok_or_else(|| ModelConfigError::new("model.llama", "exactly one of `gguf` and `random`", "neither"))?;
        load_gguf(Path::new(path), device)
    }

    /// The loss weight of exit `depth` (1 when no weights are given or `depth` is not one of
    /// the space's depths).
    pub fn exit_weight(&self, space: &TransformerSpace, depth: usize) -> f64 {
        space.depths().iter().position(|&d| d == depth).and_then(|i| self.exit_weights.get(i)).copied().unwrap_or(1.0)
    }

    /// The importance score and calibration batches to sort the decoder with before training
    /// (`sort_by`, `sort_batches` with its default), if any.
    pub fn sorting(&self) -> Option<(ImportanceScore, usize)> {
        self.sort_by.map(|score| (score, self.sort_batches.unwrap_or(DEFAULT_SORT_BATCHES)))
    }

    /// SoFT's loss options with self-distillation weight `distill`.
    pub fn soft_options(&self, distill: f64) -> SoftOptions {
        let head_gradient = if self.head_from_full_only { HeadGradient::FullDepthOnly } else { HeadGradient::AllExits };
        SoftOptions { head_gradient, distill }
    }
}

/// A GGUF decoder and its tokenizer, checked to agree on the vocabulary.
///
/// # Errors
/// An unreadable or inconsistent file, naming it and the key.
pub fn load_gguf<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(SortedLlama<B>, ByteLevelBpe), LlamaLoadError> {
    let file = GgufFile::read(path)?;
    let bpe = ByteLevelBpe::from_gguf(&file)?;
    let model = SortedLlama::<B>::from_gguf(&file, device)?;
    let rows = model.embedding.dims()[0];
    if bpe.vocab_size() != rows {
        return Err(ModelConfigError::new(
            "tokenizer.ggml.tokens",
            format!("as many tokens as the embedding's {rows} rows (llama.vocab_size) in `{}`", path.display()),
            bpe.vocab_size(),
        )
        .into());
    }
    Ok((model, bpe))
}
