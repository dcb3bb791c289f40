//! What the Hugging Face and GGUF exports of a LLaMA sub-model share: the sub-model's weights
//! copied out as a dense LLaMA ([`DenseLlama`]), the export options, the error type and the
//! atomic file writes.

use std::path::PathBuf;

use burn::prelude::*;
use sorted_data::{ByteLevelBpe, END_OF_TEXT, GgufWriteError, IM_END, IM_START};
use sorted_nn::{SpecError, TransformerSubModel};

use super::model::{SortedLlama, SortedLlamaConfig};

/// SmolLM2-Instruct's chat template (ChatML with a default system prompt), as its
/// `tokenizer_config.json` and GGUF `tokenizer.chat_template` hold it; `sorted_data::chatml_prompt`
/// renders the same text.
pub const SMOLLM2_CHAT_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Why a LLaMA sub-model could not be exported. Every variant names the sub-model or the file.
#[derive(Debug, thiserror::Error)]
pub enum LlamaExportError {
    /// The sub-model does not fit the sorted model it is cut from.
    #[error("sub-model {sub} cannot be cut from this LLaMA")]
    SubModel {
        /// The sub-model (`L..-H..-F..`).
        sub: String,
        /// Which axis does not fit.
        #[source]
        source: SpecError,
    },
    /// Writing, syncing or renaming a file or folder failed.
    #[error("writing `{path}`")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Building or writing the GGUF file failed.
    #[error("GGUF export to `{path}`")]
    Gguf {
        /// The GGUF file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: GgufWriteError,
    },
}

/// What an export writes beside the weights.
#[derive(Clone, Debug)]
pub struct LlamaExportOptions<'a> {
    /// The tokenizer (byte-level BPE, e.g. `ByteLevelBpe::from_gguf` of the source file); without
    /// one, no tokenizer files or `tokenizer.ggml.*` keys are written.
    pub tokenizer: Option<&'a ByteLevelBpe>,
    /// The model's name (`general.name`, the manifest).
    pub name: String,
    /// The context length declared (`max_position_embeddings`, `llama.context_length`).
    pub context_length: usize,
    /// The beginning-of-sequence id; `None`: `<|im_start|>` if the tokenizer has it as a special
    /// token, else `<|endoftext|>`, else none.
    pub bos_token_id: Option<u32>,
    /// The end-of-sequence id; `None`: `<|im_end|>`, else `<|endoftext|>`, else none.
    pub eos_token_id: Option<u32>,
}

impl Default for LlamaExportOptions<'_> {
    fn default() -> Self {
        Self {
            tokenizer: None,
            name: "sortednet-llama".into(),
            context_length: 8192,
            bos_token_id: None,
            eos_token_id: None,
        }
    }
}

impl LlamaExportOptions<'_> {
    fn special(&self, preferred: &str) -> Option<u32> {
        let bpe = self.tokenizer?;
        let find = |t: &str| bpe.special_tokens().find(|&(s, _)| s == t).map(|(_, id)| id);
        find(preferred).or_else(|| find(END_OF_TEXT))
    }

    /// The beginning-of-sequence id (see [`LlamaExportOptions::bos_token_id`]).
    pub fn bos(&self) -> Option<u32> {
        self.bos_token_id.or_else(|| self.special(IM_START))
    }

    /// The end-of-sequence id (see [`LlamaExportOptions::eos_token_id`]).
    pub fn eos(&self) -> Option<u32> {
        self.eos_token_id.or_else(|| self.special(IM_END))
    }
}

/// One layer of a [`DenseLlama`]: row-major `[out, in]` matrices (GGUF's layout, Q and K rows
/// ordered for RoPE on adjacent pairs) and the norm scales.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseLlamaLayer {
    /// RMSNorm before attention, `[d]`.
    pub attention_norm: Vec<f32>,
    /// `[heads * head_dim, d]`; head `h` reads KV head `h / (heads / kv_heads)`.
    pub query: Vec<f32>,
    /// `[kv_heads * head_dim, d]`.
    pub key: Vec<f32>,
    /// `[kv_heads * head_dim, d]`.
    pub value: Vec<f32>,
    /// `[d, heads * head_dim]`.
    pub output: Vec<f32>,
    /// RMSNorm before the FFN, `[d]`.
    pub ffn_norm: Vec<f32>,
    /// `[ffn, d]`.
    pub gate: Vec<f32>,
    /// `[ffn, d]`.
    pub up: Vec<f32>,
    /// `[d, ffn]`.
    pub down: Vec<f32>,
}

/// A sub-model of a [`SortedLlama`] as a plain dense LLaMA: its sizes and its f32 weights
/// (tied embeddings), copied out of the sorted model's active slices.
#[derive(Clone, Debug)]
pub struct DenseLlama {
    /// The dense sizes: `num_layers` = depth, `num_heads` = active query heads,
    /// `intermediate_size` = active SwiGLU width; the rest as allocated.
    pub config: SortedLlamaConfig,
    /// The sub-model it was cut from (`L..-H..-F..`).
    pub sub_model: String,
    /// Token embeddings and LM head, `[vocab, d]`.
    pub embedding: Vec<f32>,
    /// The layers.
    pub layers: Vec<DenseLlamaLayer>,
    /// The final RMSNorm, `[d]`.
    pub norm: Vec<f32>,
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 data after convert")
}

impl<B: Backend> SortedLlama<B> {
    /// Copies sub-model `sub` out as a dense LLaMA: the first `sub.depth` layers, in each the
    /// first `sub.heads / kv_heads` query heads of every KV group and the first `sub.ffn`
    /// SwiGLU units (the same slices [`SortedLlama::forward`] uses).
    ///
    /// # Errors
    /// [`LlamaExportError::SubModel`] if `sub` does not fit this model (depth, heads not a
    /// multiple of the KV heads or above the allocated ones, FFN width, hidden width).
    pub fn dense_weights(&self, sub: &TransformerSubModel) -> Result<DenseLlama, LlamaExportError> {
        let l0 = &self.layers[0];
        let [vocab, d] = self.embedding.dims();
        let (nh, nkv, hd, f) = (l0.num_heads, l0.num_kv_heads, l0.head_dim, l0.gate.d_output_max());
        let fail = |source| LlamaExportError::SubModel { sub: sub.to_string(), source };
        let allocation =
            |what: &str, allocated, needed| fail(SpecError::Allocation { what: what.into(), allocated, needed });
        if sub.depth == 0 || sub.depth > self.layers.len() {
            return Err(allocation("depth (layers)", self.layers.len(), sub.depth));
        }
        if sub.heads == 0 || sub.heads > nh {
            return Err(allocation("heads", nh, sub.heads));
        }
        if !sub.heads.is_multiple_of(nkv) {
            return Err(fail(SpecError::Conflict {
                keys: "heads".into(),
                why: format!("{} query heads cannot be spread over {nkv} KV groups", sub.heads),
            }));
        }
        if sub.ffn == 0 || sub.ffn > f {
            return Err(allocation("ffn", f, sub.ffn));
        }
        if sub.hidden != d {
            return Err(allocation("hidden (not nested in LLaMA)", d, sub.hidden));
        }
        let (heads, ffn) = (sub.heads, sub.ffn);
        let per_group = heads / nkv;
        let layers = self.layers[..sub.depth]
            .iter()
            .map(|l| {
                // The query's columns (burn `[d, nh * hd]`) and the output's rows are grouped by KV
                // head; a sub-model keeps the first `per_group` heads of every group.
                let q = l.query.weight.val().reshape([d, nkv, nh / nkv * hd]).slice([0..d, 0..nkv, 0..per_group * hd]);
                let o = l.output.weight.val().reshape([nkv, nh / nkv * hd, d]).slice([0..nkv, 0..per_group * hd, 0..d]);
                let t = |w: Tensor<B, 2>| values(w.transpose());
                DenseLlamaLayer {
                    attention_norm: values(l.attention_norm.weight.val()),
                    query: t(q.reshape([d, heads * hd])),
                    key: t(l.key.weight.val()),
                    value: t(l.value.weight.val()),
                    output: t(o.reshape([heads * hd, d])),
                    ffn_norm: values(l.ffn_norm.weight.val()),
                    gate: t(l.gate.weight.val().slice([0..d, 0..ffn])),
                    up: t(l.up.weight.val().slice([0..d, 0..ffn])),
                    down: t(l.down.weight.val().slice([0..ffn, 0..d])),
                }
            })
            .collect();
        let eps = l0.attention_norm.epsilon;
        let config = SortedLlamaConfig::new(vocab, d, sub.depth, heads, nkv, hd, ffn)
            .with_rope_theta(self.rope_theta)
            .with_rms_norm_eps(eps);
        Ok(DenseLlama {
            config,
            sub_model: sub.to_string(),
            embedding: values(self.embedding.val()),
            layers,
            norm: values(self.norm.weight.val()),
        })
    }
}

impl From<crate::export_files::WriteFailure> for LlamaExportError {
    fn from(f: crate::export_files::WriteFailure) -> Self {
        LlamaExportError::Io { path: f.path, source: f.source }
    }
}
