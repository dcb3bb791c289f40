//! A LLaMA sub-model as a Hugging Face `LlamaForCausalLM` folder: `config.json`,
//! `model.safetensors` (HF names, `[out, in]` matrices, Q and K rows in HF's half-split RoPE
//! order), `generation_config.json`, `tokenizer.json` + `tokenizer_config.json` (byte-level BPE,
//! ChatML template) and `manifest.json` (SHA-256 of every file).

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sorted_data::{BpePreTokenizer, ByteLevelBpe};
use sorted_nn::TransformerSubModel;

use super::export::{DenseLlama, LlamaExportError, LlamaExportOptions, SMOLLM2_CHAT_TEMPLATE};
use super::model::SortedLlama;

/// The format tag of the `manifest.json` [`export_llama_hf`] writes.
pub const LLAMA_HF_EXPORT_FORMAT: &str = "sortednet-rs llama sub-model, Hugging Face folder v1";

/// `manifest.json` of a Hugging Face export: what was exported and the SHA-256 of every other
/// file of the folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LlamaHfManifest {
    /// [`LLAMA_HF_EXPORT_FORMAT`].
    pub format: String,
    /// The model's name.
    pub name: String,
    /// The sub-model (`L..-H..-F..`).
    pub sub_model: String,
    /// File name to the hex SHA-256 of its bytes.
    pub sha256: BTreeMap<String, String>,
}

/// The rows of `w` (`[heads * head_dim, cols]`, row-major) with each head's rows reordered from
/// RoPE on adjacent pairs (GGUF: rows `2i`, `2i + 1` rotate together) to Hugging Face's
/// half-split order (rows `i`, `i + head_dim / 2`): the inverse of llama.cpp's `permute` in
/// `convert_hf_to_gguf.py`.
pub fn unpermute_rope_rows(w: &[f32], heads: usize, head_dim: usize, cols: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut out = vec![0.0; w.len()];
    for h in 0..heads {
        for i in 0..half {
            for part in 0..2 {
                let from = (h * head_dim + 2 * i + part) * cols;
                let to = (h * head_dim + part * half + i) * cols;
                out[to..to + cols].copy_from_slice(&w[from..from + cols]);
            }
        }
    }
    out
}

impl DenseLlama {
    /// The tensors of `model.safetensors`, HF names and layout, sorted by name.
    pub fn hf_tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let c = &self.config;
        let (d, f, hd) = (c.hidden_size, c.intermediate_size, c.head_dim);
        let (q, kv) = (c.num_heads * hd, c.num_kv_heads * hd);
        let mut out = vec![
            ("model.embed_tokens.weight".to_owned(), vec![c.vocab_size, d], self.embedding.clone()),
            ("model.norm.weight".to_owned(), vec![d], self.norm.clone()),
        ];
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            out.extend([
                (format!("{p}.input_layernorm.weight"), vec![d], l.attention_norm.clone()),
                (format!("{p}.self_attn.q_proj.weight"), vec![q, d], unpermute_rope_rows(&l.query, c.num_heads, hd, d)),
                (
                    format!("{p}.self_attn.k_proj.weight"),
                    vec![kv, d],
                    unpermute_rope_rows(&l.key, c.num_kv_heads, hd, d),
                ),
                (format!("{p}.self_attn.v_proj.weight"), vec![kv, d], l.value.clone()),
                (format!("{p}.self_attn.o_proj.weight"), vec![d, q], l.output.clone()),
                (format!("{p}.post_attention_layernorm.weight"), vec![d], l.ffn_norm.clone()),
                (format!("{p}.mlp.gate_proj.weight"), vec![f, d], l.gate.clone()),
                (format!("{p}.mlp.up_proj.weight"), vec![f, d], l.up.clone()),
                (format!("{p}.mlp.down_proj.weight"), vec![d, f], l.down.clone()),
            ]);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// `config.json` for `LlamaForCausalLM` (tied embeddings, float32).
    pub fn hf_config(&self, options: &LlamaExportOptions<'_>) -> Value {
        let c = &self.config;
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_layers,
            "num_attention_heads": c.num_heads,
            "num_key_value_heads": c.num_kv_heads,
            "head_dim": c.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": options.context_length,
            "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta,
            "rope_scaling": null,
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "pretraining_tp": 1,
            "initializer_range": 0.02,
            "tie_word_embeddings": true,
            "use_cache": true,
            "vocab_size": c.vocab_size,
            "torch_dtype": "float32",
            "bos_token_id": options.bos(),
            "eos_token_id": options.eos(),
            "pad_token_id": options.eos(),
        })
    }
}

/// A special token as `tokenizers` lists it (`tokenizer.json`'s `added_tokens` carry the id,
/// `tokenizer_config.json`'s `added_tokens_decoder` key it by id instead).
fn added_token(id: Option<u32>, content: &str) -> Value {
    let mut token = json!({
        "content": content, "single_word": false, "lstrip": false, "rstrip": false,
        "normalized": false, "special": true,
    });
    if let Some(id) = id {
        token["id"] = json!(id);
    }
    token
}

/// `tokenizer.json` (Hugging Face `tokenizers`) of a byte-level BPE: the BPE model with its
/// vocabulary and merges, the `ByteLevel` pre-tokenizer (after `Digits` for SmolLM's), no
/// normaliser, and the special tokens as added tokens.
pub fn hf_tokenizer_json(bpe: &ByteLevelBpe) -> Value {
    let vocab: serde_json::Map<String, Value> =
        bpe.tokens().iter().enumerate().map(|(id, t)| (t.clone(), json!(id))).collect();
    let byte_level = json!({ "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true });
    let pre_tokenizer = match bpe.pre_tokenizer() {
        BpePreTokenizer::Gpt2 => byte_level,
        BpePreTokenizer::SmolLm => json!({
            "type": "Sequence",
            "pretokenizers": [{ "type": "Digits", "individual_digits": true }, byte_level],
        }),
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": bpe.special_tokens().map(|(t, id)| added_token(Some(id), t)).collect::<Vec<_>>(),
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true },
        "decoder": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true },
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": bpe.merges(),
        },
    })
}

/// `tokenizer_config.json`: the special tokens, bos/eos/pad, no BOS added, the ChatML
/// template.
fn hf_tokenizer_config(bpe: &ByteLevelBpe, options: &LlamaExportOptions<'_>) -> Value {
    let token = |id: Option<u32>| id.and_then(|id| bpe.token(id)).map(str::to_owned);
    let decoder: serde_json::Map<String, Value> =
        bpe.special_tokens().map(|(t, id)| (id.to_string(), added_token(None, t))).collect();
    let unk = bpe.special_tokens().find(|&(t, _)| t == sorted_data::END_OF_TEXT).map(|(t, _)| t.to_owned());
    json!({
        "add_bos_token": false,
        "add_eos_token": false,
        "add_prefix_space": false,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": bpe.special_tokens().map(|(t, _)| t.to_owned()).collect::<Vec<_>>(),
        "bos_token": token(options.bos()),
        "eos_token": token(options.eos()),
        "pad_token": token(options.eos()),
        "unk_token": unk,
        "chat_template": SMOLLM2_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": false,
        "model_max_length": options.context_length,
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": bpe.vocab_size(),
    })
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON serialises");
    bytes.push(b'\n');
    bytes
}

/// Writes sub-model `sub` of `model` as the Hugging Face `LlamaForCausalLM` folder `out`:
/// `config.json`, `model.safetensors` (f32, `{"format": "pt"}`), `generation_config.json`,
/// with a tokenizer `tokenizer.json` and `tokenizer_config.json`, and `manifest.json` with
/// the SHA-256 of the others. The folder is written beside `out` under a temporary name, each
/// file synced, then renamed into place; an earlier folder at `out` is replaced.
///
/// # Errors
/// [`LlamaExportError::SubModel`] if `sub` does not fit `model`; [`LlamaExportError::Io`]
/// naming the file or folder that could not be written.
pub fn export_llama_hf<B: Backend>(
    model: &SortedLlama<B>,
    sub: &TransformerSubModel,
    options: &LlamaExportOptions<'_>,
    out: impl AsRef<Path>,
) -> Result<LlamaHfManifest, LlamaExportError> {
    let out = out.as_ref();
    let dense = model.dense_weights(sub)?;
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("config.json", pretty(&dense.hf_config(options))),
        ("model.safetensors", crate::export_files::safetensors_f32(&dense.hf_tensors())),
        (
            "generation_config.json",
            pretty(&json!({
                "_from_model_config": true,
                "bos_token_id": options.bos(),
                "eos_token_id": options.eos(),
                "pad_token_id": options.eos(),
            })),
        ),
    ];
    if let Some(bpe) = options.tokenizer {
        files.push(("tokenizer.json", pretty(&hf_tokenizer_json(bpe))));
        files.push(("tokenizer_config.json", pretty(&hf_tokenizer_config(bpe, options))));
    }
    let manifest = LlamaHfManifest {
        format: LLAMA_HF_EXPORT_FORMAT.into(),
        name: options.name.clone(),
        sub_model: dense.sub_model.clone(),
        sha256: files
            .iter()
            .map(|(name, bytes)| {
                let hex = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
                ((*name).to_owned(), hex)
            })
            .collect(),
    };
    let manifest_bytes = pretty(&serde_json::to_value(&manifest).expect("manifest serialises"));
    files.push(("manifest.json", manifest_bytes));

    crate::export_files::write_folder(out, &files)?;
    Ok(manifest)
}
