//! Writing a sorted LLaMA decoder as a GGUF file beside the one it was loaded from.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use sorted_data::{ByteLevelBpe, DataError, GgufError, GgufFile};
use sorted_nn::{SpecError, TransformerSpace, TransformerSpaceConfig};

use super::ImportanceScore;
use crate::llama::{GgmlType, LlamaExportError, LlamaExportOptions, SortedLlama, export_llama_gguf};

/// Why a sorted decoder could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SortedGgufError {
    /// The source GGUF (read again for its tokenizer) could not be read.
    #[error(transparent)]
    Read(#[from] GgufError),
    /// The source GGUF holds no usable byte-level BPE tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] DataError),
    /// The decoder's own shape is not a transformer space.
    #[error(transparent)]
    Space(#[from] SpecError),
    /// Writing the sorted GGUF failed.
    #[error("writing `{path}`")]
    Export {
        /// The GGUF file written.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: LlamaExportError,
    },
}

/// Writes `model`, sorted by `score` from the decoder in the GGUF file `source`, to `out` as an
/// F32 GGUF of the whole decoder (every layer, head and SwiGLU unit) with `source`'s tokenizer,
/// named `"<source> sorted by <score>"`.
///
/// # Errors
/// An unreadable `source` or tokenizer, a decoder whose shape is not a transformer space, a
/// failed write (naming `out`).
///
/// # Panics
/// For a decoder without layers.
pub fn write_sorted_llama_gguf<B: Backend>(
    model: &SortedLlama<B>,
    source: &Path,
    score: ImportanceScore,
    out: &Path,
) -> Result<(), SortedGgufError> {
    let file = GgufFile::read(source)?;
    let bpe = ByteLevelBpe::from_gguf(&file)?;
    let (l0, d) = (&model.layers[0], model.embedding.dims()[1]);
    let whole = TransformerSpaceConfig {
        depths: vec![model.layers.len()],
        heads: vec![l0.num_heads],
        ffn: vec![l0.gate.d_output_max()],
        hidden: None,
    };
    let full = TransformerSpace::new(whole, d)?.largest();
    let options = LlamaExportOptions {
        tokenizer: Some(&bpe),
        name: format!("{} sorted by {}", source.display(), score.name()),
        ..Default::default()
    };
    export_llama_gguf(model, &full, &options, GgmlType::F32, out)
        .map_err(|source| SortedGgufError::Export { path: out.to_path_buf(), source })
}
