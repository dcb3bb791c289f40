//! A [`SortedLlama`] from a GGUF file: sizes from the metadata, dequantized tensors (f32).

use burn::module::Param;
use burn::prelude::*;
use sorted_nn::SortedLinear;

use super::gguf::{GgufError, GgufFile};
use super::model::{RmsNorm, SortedLlama, SortedLlamaConfig};
use crate::bert::transposed;

impl SortedLlamaConfig {
    /// Reads the sizes of a `llama` GGUF file: `llama.block_count`, `embedding_length`,
    /// `feed_forward_length`, `attention.head_count`, `attention.head_count_kv`,
    /// `rope.freq_base` (default 10,000), `attention.layer_norm_rms_epsilon` (default 1e-5) and
    /// the vocabulary (`llama.vocab_size`, else the length of `tokenizer.ggml.tokens`).
    ///
    /// # Errors
    /// [`GgufError`] naming the missing or mistyped key; an architecture other than `llama`
    /// or sizes that do not divide is [`GgufError::KeyType`] naming the key.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, GgufError> {
        let arch = file.str("general.architecture")?;
        let wrong = |key: &str, expected: &'static str, got: String| GgufError::KeyType {
            path: file.path().into(),
            key: key.into(),
            expected,
            got,
        };
        if arch != "llama" {
            return Err(wrong("general.architecture", "\"llama\"", format!("\"{arch}\"")));
        }
        let u = |key: &str| file.u32(key).map(|v| v as usize);
        let hidden = u("llama.embedding_length")?;
        let heads = u("llama.attention.head_count")?;
        let kv_heads = u("llama.attention.head_count_kv").or_else(|_| u("llama.attention.head_count"))?;
        let vocab = match u("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => file.string_array("tokenizer.ggml.tokens")?.len(),
        };
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(wrong("llama.attention.head_count", "a divisor of llama.embedding_length", heads.to_string()));
        }
        let mut config = Self::new(
            vocab,
            hidden,
            u("llama.block_count")?,
            heads,
            kv_heads,
            hidden / heads,
            u("llama.feed_forward_length")?,
        );
        if file.get("llama.rope.freq_base").is_some() {
            config.rope_theta = file.f32("llama.rope.freq_base")? as f64;
        }
        if file.get("llama.attention.layer_norm_rms_epsilon").is_some() {
            config.rms_norm_eps = file.f32("llama.attention.layer_norm_rms_epsilon")? as f64;
        }
        config.validate().map_err(|e| wrong("llama.*", "consistent sizes", e.to_string()))?;
        Ok(config)
    }
}

fn take(file: &GgufFile, name: &str, expected: &[usize]) -> Result<Vec<f32>, GgufError> {
    let (shape, values) = file.dequantize(name)?;
    if shape != expected {
        return Err(GgufError::TensorShape {
            path: file.path().into(),
            tensor: name.into(),
            expected: expected.to_vec(),
            got: shape,
        });
    }
    Ok(values)
}

fn load_linear<B: Backend>(file: &GgufFile, name: &str, layer: &mut SortedLinear<B>) -> Result<(), GgufError> {
    let (d_in, d_out) = (layer.d_input_max(), layer.d_output_max());
    // GGUF lists dims fastest first: a `[d_in, d_out]` entry is the row-major `(d_out, d_in)`
    // matrix, the transpose of burn's `[d_in, d_out]` layout.
    let values = transposed(&take(file, name, &[d_out, d_in])?, d_out, d_in);
    let device = layer.weight.device();
    layer.weight = Param::from_tensor(Tensor::from_data(TensorData::new(values, [d_in, d_out]), &device));
    Ok(())
}

fn load_norm<B: Backend>(file: &GgufFile, name: &str, norm: &mut RmsNorm<B>) -> Result<(), GgufError> {
    let d = norm.weight.dims()[0];
    let device = norm.weight.device();
    norm.weight = Param::from_tensor(Tensor::from_data(TensorData::new(take(file, name, &[d])?, [d]), &device));
    Ok(())
}

impl<B: Backend> SortedLlama<B> {
    /// Builds the decoder of a `llama` GGUF file on `device`: sizes from
    /// [`SortedLlamaConfig::from_gguf`], every tensor dequantized to f32 (`token_embd`,
    /// `blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up,
    /// ffn_down}`, `output_norm`). The LM head is tied to the embedding; a file with its own
    /// `output.weight` is refused, naming it.
    ///
    /// # Errors
    /// [`GgufError`] naming the file and the first missing, mis-shaped or undecodable tensor.
    pub fn from_gguf(file: &GgufFile, device: &B::Device) -> Result<Self, GgufError> {
        let config = SortedLlamaConfig::from_gguf(file)?;
        if file.tensor_info("output.weight").is_some() {
            return Err(GgufError::KeyType {
                path: file.path().into(),
                key: "output.weight".into(),
                expected: "no separate LM head (tied embeddings)",
                got: "a separate output.weight tensor".into(),
            });
        }
        let mut model = config.init::<B>(device);
        let [v, d] = model.embedding.dims();
        let embedding = take(file, "token_embd.weight", &[v, d])?;
        model.embedding = Param::from_tensor(Tensor::from_data(TensorData::new(embedding, [v, d]), device));
        for (i, layer) in model.layers.iter_mut().enumerate() {
            let p = format!("blk.{i}");
            load_norm(file, &format!("{p}.attn_norm.weight"), &mut layer.attention_norm)?;
            load_linear(file, &format!("{p}.attn_q.weight"), &mut layer.query)?;
            load_linear(file, &format!("{p}.attn_k.weight"), &mut layer.key)?;
            load_linear(file, &format!("{p}.attn_v.weight"), &mut layer.value)?;
            load_linear(file, &format!("{p}.attn_output.weight"), &mut layer.output)?;
            load_norm(file, &format!("{p}.ffn_norm.weight"), &mut layer.ffn_norm)?;
            load_linear(file, &format!("{p}.ffn_gate.weight"), &mut layer.gate)?;
            load_linear(file, &format!("{p}.ffn_up.weight"), &mut layer.up)?;
            load_linear(file, &format!("{p}.ffn_down.weight"), &mut layer.down)?;
        }
        load_norm(file, "output_norm.weight", &mut model.norm)?;
        Ok(model)
    }
}
