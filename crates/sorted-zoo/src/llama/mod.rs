//! LLaMA-family decoders (SmolLM2): GGUF weights, a nested decoder with exits sharing the final
//! norm and LM head, nested FFN width and query heads, and KV-cached decoding.

mod decode;
mod decode_benchmark;
mod decode_engine;
mod evaluate;
mod exit_perplexity;
mod export;
mod export_gguf;
mod export_hf;
mod host_decode;
mod lm_score;
mod model;
mod model_config;
mod row_product;
mod soft;
mod soft_step;
mod sub_models;
mod weights;

/// The GGUF reader lives in sorted-data (a file format, no Burn in it); re-exported here, where the
/// decoder is loaded from it.
pub use sorted_data::{
    GGUF_DEFAULT_ALIGNMENT, GgmlType, GgufError, GgufFile, GgufMetadata, GgufTensorInfo, GgufValue, GgufValueType,
};

pub use decode::{
    DecodeStats, EarlyExitConfig, EarlyExitStats, LlamaDecoder, SpeculativeConfig, early_exit_greedy, greedy,
    speculative_greedy,
};
pub use decode_benchmark::{DecodeRow, DecodeRun, EarlyExitRun, time_decoding, time_early_exit};
pub use evaluate::{LlamaEvaluation, LlamaSubModelScore, evaluate_llama_sub_models};
pub use exit_perplexity::{ExitPerplexity, ExitPerplexityError, exit_perplexity};
pub use export::{DenseLlama, DenseLlamaLayer, LlamaExportError, LlamaExportOptions, SMOLLM2_CHAT_TEMPLATE};
pub use export_gguf::export_llama_gguf;
pub use export_hf::{LLAMA_HF_EXPORT_FORMAT, LlamaHfManifest, export_llama_hf, hf_tokenizer_json, unpermute_rope_rows};
pub use host_decode::HostWeights;
pub use lm_score::LmScore;
pub use model::{
    DecodeLayerWeights, DecodeWeights, KvCache, LayerCache, SortedLlama, SortedLlamaConfig, SortedLlamaLayer,
};
pub use model_config::{LlamaLoadError, LlamaModelConfig, RandomLlamaSizes, load_gguf};
pub use row_product::{FEW_ROWS_MAX, SINGLE_ROW_MIN_ELEMENTS, few_row_product, matmul_by_transposed};
pub use soft::{
    GradientProbe, HeadGradient, SoftLoss, SoftOptions, SoftTerm, gradient_probe, soft_loss, soft_loss_with,
};
pub use soft_step::{SoftStepLoss, SoftTermLoss, soft_step_loss};
/// RMSNorm and RoPE live in sorted-nn beside the other layers; re-exported where LLaMA uses them.
pub use sorted_nn::{RmsNorm, rope};
pub use sub_models::{LlamaSubModelError, LlamaSubModels};
