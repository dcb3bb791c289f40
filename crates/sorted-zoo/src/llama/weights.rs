//! A [`SortedLlama`] from a GGUF file: sizes from the metadata, dequantized tensors (f32).

use burn::module::Param;
use burn::prelude::*;
use sorted_nn::SortedLinear;

use super::model::{SortedLlama, SortedLlamaConfig};
use crate::bert::transposed;
use sorted_data::{GgufError, GgufFile, GgufMetadata};
use sorted_nn::RmsNorm;

impl SortedLlamaConfig {
    /// Reads the sizes of a `llama` GGUF file: `llama.block_count`, `embedding_length`,
    /// `feed_forward_length`, `attention.head_count`, `attention.head_count_kv`,
    /// `attention.key_length` (default `embedding_length / head_count`), `rope.freq_base`
    /// (default 10,000), `attention.layer_norm_rms_epsilon` (default 1e-5) and
    /// the vocabulary (`llama.vocab_size`, else the length of `tokenizer.ggml.tokens`).
    ///
    /// # Errors
    /// [`GgufError`] naming the missing or mistyped key; an architecture other than `llama`
    /// or sizes that do not divide is [`GgufError::KeyType`] naming the key.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, GgufError> {
        Self::from_gguf_metadata(file.metadata())
    }

    /// [`SortedLlamaConfig::from_gguf`] from the metadata alone, such as
    /// [`GgufFile::read_metadata`] reads without the tensors.
    ///
    /// # Errors
    /// As [`SortedLlamaConfig::from_gguf`].
    pub fn from_gguf_metadata(file: &GgufMetadata) -> Result<Self, GgufError> {
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
        let n_tokens = match file.get("tokenizer.ggml.tokens") {
            Some(_) => Some(file.string_array("tokenizer.ggml.tokens")?.len()),
            None => None,
        };
        let vocab = match n_tokens {
            Some(n) if file.get("llama.vocab_size").is_none() => n,
            _ => u("llama.vocab_size")?,
        };
        // The tokenizer's ids index the embedding and the LM head's rows name tokens: a
        // vocabulary of another size makes one of them index past the other.
        if let Some(n) = n_tokens.filter(|&n| n != vocab) {
            return Err(wrong(
                "tokenizer.ggml.tokens",
                "as many tokens as llama.vocab_size",
                format!("{n} tokens, but llama.vocab_size is {vocab}"),
            ));
        }
        // A head width other than `embedding_length / head_count` (a sub-model with fewer heads)
        // is given by `attention.key_length`, as llama.cpp reads it.
        let head_dim = match file.get("llama.attention.key_length") {
            Some(_) => u("llama.attention.key_length")?,
            None if heads == 0 || !hidden.is_multiple_of(heads) => {
                return Err(wrong(
                    "llama.attention.head_count",
                    "a divisor of llama.embedding_length",
                    heads.to_string(),
                ));
            }
            None => hidden / heads,
        };
        let mut config = Self::new(
            vocab,
            hidden,
            u("llama.block_count")?,
            heads,
            kv_heads,
            head_dim,
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

    /// Checks that `file` holds every tensor [`SortedLlama::from_gguf`] reads for this config,
    /// with the shape the model needs, without allocating anything for them. The sizes in the
    /// metadata are only trusted once tensors of those shapes back them, and those tensors'
    /// data lies inside the file ([`GgufFile::parse`] checks it): so the model this config
    /// allocates is bounded by the file's length.
    ///
    /// # Errors
    /// [`GgufError::MissingTensor`] or [`GgufError::TensorShape`] for the first tensor that is
    /// missing or mis-shaped, in the order the loader reads them (a layer count far beyond the
    /// file's tensors fails at the first missing layer).
    pub fn check_gguf_tensors(&self, file: &GgufFile) -> Result<(), GgufError> {
        for (name, shape) in expected_tensors(self) {
            let info = file
                .tensor_info(&name)
                .ok_or_else(|| GgufError::MissingTensor { path: file.path().into(), tensor: name.clone() })?;
            if info.shape() != shape {
                return Err(GgufError::TensorShape {
                    path: file.path().into(),
                    tensor: name,
                    expected: shape,
                    got: info.shape(),
                });
            }
        }
        Ok(())
    }
}

/// The tensors [`SortedLlama::from_gguf`] reads for `config`, with their row-major shapes, in
/// the order it reads them (produced one at a time: the layer count is not trusted yet).
fn expected_tensors(config: &SortedLlamaConfig) -> impl Iterator<Item = (String, Vec<usize>)> + '_ {
    let (d, f) = (config.hidden_size, config.intermediate_size);
    let (q, kv) = (config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim);
    let layer = move |i: usize| {
        [
            ("attn_norm", vec![d]),
            ("attn_q", vec![q, d]),
            ("attn_k", vec![kv, d]),
            ("attn_v", vec![kv, d]),
            ("attn_output", vec![d, q]),
            ("ffn_norm", vec![d]),
            ("ffn_gate", vec![f, d]),
            ("ffn_up", vec![f, d]),
            ("ffn_down", vec![d, f]),
        ]
        .map(|(part, shape)| (format!("blk.{i}.{part}.weight"), shape))
    };
    std::iter::once(("token_embd.weight".to_owned(), vec![config.vocab_size, d]))
        .chain((0..config.num_layers).flat_map(layer))
        .chain(std::iter::once(("output_norm.weight".to_owned(), vec![d])))
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
        config.check_gguf_tensors(file)?;
        // Every tensor is replaced below (`check_gguf_tensors` found them all).
        let mut model = config.init_as::<B>(burn::module::Initializer::Zeros, device);
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
