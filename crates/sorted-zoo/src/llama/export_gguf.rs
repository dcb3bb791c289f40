//! A LLaMA sub-model as a `llama` GGUF file: llama.cpp's tensor names and layout (Q and K rows
//! ordered for RoPE on adjacent pairs, the model's own), the `llama.*` sizes, and the
//! tokenizer in `tokenizer.ggml.*`; read back by [`SortedLlama::from_gguf`].

use std::path::Path;

use burn::prelude::*;
use sorted_data::{GgmlType, GgufValue, GgufValueType, GgufWriteError, GgufWriter};
use sorted_nn::TransformerSubModel;

use super::export::{DenseLlama, LlamaExportError, LlamaExportOptions, SMOLLM2_CHAT_TEMPLATE};
use super::model::SortedLlama;

/// ggml's `general.file_type` of a file whose matrices are `ggml_type` (`LLAMA_FTYPE_*`).
fn file_type(ggml_type: GgmlType) -> u32 {
    match ggml_type {
        GgmlType::F16 => 1,
        GgmlType::Q8_0 => 7,
        _ => 0,
    }
}

fn strings<'s>(items: impl IntoIterator<Item = &'s str>) -> GgufValue {
    GgufValue::Array {
        element_type: GgufValueType::String,
        values: items.into_iter().map(|s| GgufValue::String(s.to_owned())).collect(),
    }
}

impl DenseLlama {
    /// This model as a GGUF file in memory: the matrices as `ggml_type` (F32, F16 or Q8_0; a
    /// matrix whose rows are not whole Q8_0 blocks falls back to F16, as llama.cpp's quantizer
    /// does), the norms as F32. The metadata holds every `llama.*` size (`attention.key_length`
    /// too, since a sub-model's head width is not `embedding_length / head_count`) and, with a
    /// tokenizer, `tokenizer.ggml.{model, pre, tokens, token_type, merges, bos_token_id,
    /// eos_token_id, add_bos_token, chat_template}`.
    ///
    /// # Errors
    /// [`GgufWriteError`] naming the tensor, for a type other than F32, F16 or Q8_0.
    pub fn to_gguf(&self, options: &LlamaExportOptions<'_>, ggml_type: GgmlType) -> Result<GgufWriter, GgufWriteError> {
        let c = &self.config;
        let u = |v: usize| GgufValue::U32(v as u32);
        let mut w = GgufWriter::new();
        w.metadata("general.architecture", GgufValue::String("llama".into()))
            .metadata("general.name", GgufValue::String(format!("{} {}", options.name, self.sub_model)))
            .metadata("general.file_type", GgufValue::U32(file_type(ggml_type)))
            .metadata("general.quantization_version", GgufValue::U32(2))
            .metadata("llama.context_length", u(options.context_length))
            .metadata("llama.embedding_length", u(c.hidden_size))
            .metadata("llama.block_count", u(c.num_layers))
            .metadata("llama.feed_forward_length", u(c.intermediate_size))
            .metadata("llama.attention.head_count", u(c.num_heads))
            .metadata("llama.attention.head_count_kv", u(c.num_kv_heads))
            .metadata("llama.attention.key_length", u(c.head_dim))
            .metadata("llama.attention.value_length", u(c.head_dim))
            .metadata("llama.rope.dimension_count", u(c.head_dim))
            .metadata("llama.rope.freq_base", GgufValue::F32(c.rope_theta as f32))
            .metadata("llama.attention.layer_norm_rms_epsilon", GgufValue::F32(c.rms_norm_eps as f32))
            .metadata("llama.vocab_size", u(c.vocab_size));
        if let Some(bpe) = options.tokenizer {
            let special: std::collections::HashSet<u32> = bpe.special_tokens().map(|(_, id)| id).collect();
            let token_type = (0..bpe.vocab_size() as u32)
                .map(|id| GgufValue::I32(if special.contains(&id) { 3 } else { 1 }))
                .collect();
            let merges = bpe.merges();
            w.metadata("tokenizer.ggml.model", GgufValue::String("gpt2".into()))
                .metadata("tokenizer.ggml.pre", GgufValue::String(bpe.pre_tokenizer().gguf_name().into()))
                .metadata("tokenizer.ggml.tokens", strings(bpe.tokens().iter().map(String::as_str)))
                .metadata(
                    "tokenizer.ggml.token_type",
                    GgufValue::Array { element_type: GgufValueType::I32, values: token_type },
                )
                .metadata("tokenizer.ggml.merges", strings(merges.iter().map(String::as_str)))
                .metadata("tokenizer.ggml.add_bos_token", GgufValue::Bool(false))
                .metadata("tokenizer.chat_template", GgufValue::String(SMOLLM2_CHAT_TEMPLATE.into()));
            if let Some(id) = options.bos() {
                w.metadata("tokenizer.ggml.bos_token_id", GgufValue::U32(id));
            }
            if let Some(id) = options.eos() {
                w.metadata("tokenizer.ggml.eos_token_id", GgufValue::U32(id))
                    .metadata("tokenizer.ggml.padding_token_id", GgufValue::U32(id));
            }
        }
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (q, kv) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let matrix = |w: &mut GgufWriter, name: &str, shape: [usize; 2], values: &[f32]| {
            let ty = match ggml_type {
                GgmlType::Q8_0 if !shape[1].is_multiple_of(GgmlType::Q8_0.block_size() as usize) => GgmlType::F16,
                other => other,
            };
            w.tensor(name, &shape, values, ty).map(|_| ())
        };
        matrix(&mut w, "token_embd.weight", [c.vocab_size, d], &self.embedding)?;
        for (i, l) in self.layers.iter().enumerate() {
            let name = |part: &str| format!("blk.{i}.{part}.weight");
            w.tensor(&name("attn_norm"), &[d], &l.attention_norm, GgmlType::F32)?;
            matrix(&mut w, &name("attn_q"), [q, d], &l.query)?;
            matrix(&mut w, &name("attn_k"), [kv, d], &l.key)?;
            matrix(&mut w, &name("attn_v"), [kv, d], &l.value)?;
            matrix(&mut w, &name("attn_output"), [d, q], &l.output)?;
            w.tensor(&name("ffn_norm"), &[d], &l.ffn_norm, GgmlType::F32)?;
            matrix(&mut w, &name("ffn_gate"), [f, d], &l.gate)?;
            matrix(&mut w, &name("ffn_up"), [f, d], &l.up)?;
            matrix(&mut w, &name("ffn_down"), [d, f], &l.down)?;
        }
        w.tensor("output_norm.weight", &[d], &self.norm, GgmlType::F32)?;
        Ok(w)
    }
}

/// Writes sub-model `sub` of `model` as the `llama` GGUF file `path` (see
/// [`DenseLlama::to_gguf`]), atomically (a synced temporary file renamed into place).
///
/// # Errors
/// [`LlamaExportError::SubModel`] if `sub` does not fit `model`; [`LlamaExportError::Gguf`]
/// naming the file for an unsupported type or a failed write.
pub fn export_llama_gguf<B: Backend>(
    model: &SortedLlama<B>,
    sub: &TransformerSubModel,
    options: &LlamaExportOptions<'_>,
    ggml_type: GgmlType,
    path: impl AsRef<Path>,
) -> Result<(), LlamaExportError> {
    let path = path.as_ref();
    let gguf = |source| LlamaExportError::Gguf { path: path.to_path_buf(), source };
    let writer = model.dense_weights(sub)?.to_gguf(options, ggml_type).map_err(gguf)?;
    writer.write(path).map_err(gguf)
}
