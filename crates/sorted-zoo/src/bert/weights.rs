//! Pretrained BERT weights: Hugging Face `BertModel` safetensors files and their `config.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use serde::Deserialize;
use sorted_nn::{SortedEmbedding, SortedLayerNorm, SortedLinear};

use super::model::{SortedBert, SortedBertConfig};

/// Pretrained weights that cannot be read or do not fit the model. Every variant names the file
/// and, where there is one, the tensor or key.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read.
    #[error("reading `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not a safetensors file (bad header length, JSON or offsets).
    #[error("`{path}` is not a valid safetensors file: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("`{path}` has no tensor `{tensor}` (expected shape {expected:?})")]
    Missing {
        /// The file.
        path: PathBuf,
        /// The Hugging Face tensor name.
        tensor: String,
        /// The shape the model needs.
        expected: Vec<usize>,
    },
    /// A tensor with the wrong shape.
    #[error("`{path}`: tensor `{tensor}` has shape {got:?}, the model expects {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The Hugging Face tensor name.
        tensor: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the file.
        got: Vec<usize>,
    },
    /// A tensor stored in a type the loader does not read.
    #[error("`{path}`: tensor `{tensor}` is {dtype}, expected F32, F16 or BF16")]
    DType {
        /// The file.
        path: PathBuf,
        /// The Hugging Face tensor name.
        tensor: String,
        /// The stored type.
        dtype: String,
    },
    /// A `config.json` that is not a usable BERT config.
    #[error("`{path}`: {why}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        why: String,
    },
}

#[derive(Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// A parsed safetensors file: the header's tensor table over the raw bytes.
struct SafeTensors {
    path: PathBuf,
    bytes: Vec<u8>,
    data_start: usize,
    tensors: HashMap<String, TensorInfo>,
}

impl SafeTensors {
    fn read(path: &Path) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Read { path: path.into(), source })?;
        Self::parse(path, bytes)
    }

    fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, WeightsError> {
        let format = |why: String| WeightsError::Format { path: path.into(), why };
        let len_bytes: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format(format!("{} bytes, shorter than the 8-byte header length", bytes.len())))?;
        let header_len = u64::from_le_bytes(len_bytes) as usize;
        let data_start = 8usize.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or_else(|| {
            format(format!("header length {header_len} runs past the end of the {}-byte file", bytes.len()))
        })?;
        let mut table: HashMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..data_start])
            .map_err(|e| format(format!("header is not a JSON object: {e}")))?;
        table.remove("__metadata__");
        let data_len = bytes.len() - data_start;
        let mut tensors = HashMap::with_capacity(table.len());
        for (name, value) in table {
            let info: TensorInfo =
                serde_json::from_value(value).map_err(|e| format(format!("tensor `{name}`: bad entry: {e}")))?;
            let [start, end] = info.data_offsets;
            if start > end || end > data_len {
                return Err(format(format!(
                    "tensor `{name}`: data offsets {start}..{end} outside the {data_len} data bytes (truncated file?)"
                )));
            }
            tensors.insert(name, info);
        }
        Ok(Self { path: path.into(), bytes, data_start, tensors })
    }

    /// The values of tensor `name`, checked against `expected`, as f32 in row-major order.
    fn take(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let path = || self.path.clone();
        // Checkpoints of `BertFor*` models prefix the encoder with `bert.`.
        let info =
            self.tensors.get(name).or_else(|| self.tensors.get(&format!("bert.{name}"))).ok_or_else(|| {
                WeightsError::Missing { path: path(), tensor: name.into(), expected: expected.to_vec() }
            })?;
        if info.shape != expected {
            return Err(WeightsError::Shape {
                path: path(),
                tensor: name.into(),
                expected: expected.to_vec(),
                got: info.shape.clone(),
            });
        }
        let [start, end] = info.data_offsets;
        let raw = &self.bytes[self.data_start + start..self.data_start + end];
        let numel: usize = expected.iter().product();
        let width = match info.dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(WeightsError::DType { path: path(), tensor: name.into(), dtype: other.into() }),
        };
        if raw.len() != numel * width {
            return Err(WeightsError::Format {
                path: path(),
                why: format!("tensor `{name}`: {} bytes for {numel} {} values", raw.len(), info.dtype),
            });
        }
        Ok(match info.dtype.as_str() {
            "F32" => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            "F16" => raw.chunks_exact(2).map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
            _ => raw.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect(),
        })
    }
}

/// IEEE half precision to f32 (subnormals, infinities and NaN included).
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        _ => (1.0 + frac / 1024.0) * 2f32.powi(exp - 15),
    }
}

fn tensor<B: Backend, const D: usize>(values: Vec<f32>, shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A `[rows, cols]` row-major matrix transposed into a new `[cols, rows]` buffer (Hugging Face
/// `Linear` weights are `[out, in]`, burn's `[in, out]`).
pub(crate) fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

fn load_linear<B: Backend>(st: &SafeTensors, prefix: &str, layer: &mut SortedLinear<B>) -> Result<(), WeightsError> {
    let (d_in, d_out) = (layer.d_input_max(), layer.d_output_max());
    let device = layer.weight.device();
    let w = st.take(&format!("{prefix}.weight"), &[d_out, d_in])?;
    layer.weight = Param::from_tensor(tensor(transposed(&w, d_out, d_in), [d_in, d_out], &device));
    if layer.bias.is_some() {
        let b = st.take(&format!("{prefix}.bias"), &[d_out])?;
        layer.bias = Some(Param::from_tensor(tensor(b, [d_out], &device)));
    }
    Ok(())
}

fn load_norm<B: Backend>(st: &SafeTensors, prefix: &str, norm: &mut SortedLayerNorm<B>) -> Result<(), WeightsError> {
    let d = norm.d_model_max();
    let device = norm.gamma.device();
    // Old TensorFlow-converted checkpoints name them gamma/beta.
    let get = |new: &str, old: &str| {
        st.take(&format!("{prefix}.{new}"), &[d]).or_else(|e| st.take(&format!("{prefix}.{old}"), &[d]).map_err(|_| e))
    };
    norm.gamma = Param::from_tensor(tensor(get("weight", "gamma")?, [d], &device));
    norm.beta = Param::from_tensor(tensor(get("bias", "beta")?, [d], &device));
    Ok(())
}

fn load_table<B: Backend>(st: &SafeTensors, name: &str, table: &mut SortedEmbedding<B>) -> Result<(), WeightsError> {
    let [n, d] = table.weight.dims();
    let device = table.weight.device();
    table.weight = Param::from_tensor(tensor(st.take(name, &[n, d])?, [n, d], &device));
    Ok(())
}

/// The fields of a Hugging Face BERT `config.json` the model needs.
#[derive(Deserialize)]
struct HfBertConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "two")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default)]
    model_type: Option<String>,
}

fn two() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

impl SortedBertConfig {
    /// Reads the sizes from a Hugging Face BERT `config.json` (the head options keep their
    /// defaults: set them with the `with_*` methods).
    ///
    /// # Errors
    /// [`WeightsError::Read`], or [`WeightsError::Config`] naming the missing or unsupported
    /// key (`model_type` other than `bert`, `hidden_act` other than `gelu`).
    pub fn from_hf_config(path: &Path) -> Result<Self, WeightsError> {
        let text = std::fs::read_to_string(path).map_err(|source| WeightsError::Read { path: path.into(), source })?;
        let config = |why: String| WeightsError::Config { path: path.into(), why };
        let hf: HfBertConfig = serde_json::from_str(&text).map_err(|e| config(format!("not a BERT config: {e}")))?;
        if let Some(kind) = hf.model_type.as_deref().filter(|k| *k != "bert") {
            return Err(config(format!("`model_type` is \"{kind}\", expected \"bert\"")));
        }
        if hf.hidden_act != "gelu" {
            return Err(config(format!(
                "`hidden_act` is \"{}\", only \"gelu\" (erf GELU) is implemented",
                hf.hidden_act
            )));
        }
        let c = SortedBertConfig::new(
            hf.vocab_size,
            hf.hidden_size,
            hf.num_hidden_layers,
            hf.num_attention_heads,
            hf.intermediate_size,
        )
        .with_max_position_embeddings(hf.max_position_embeddings)
        .with_type_vocab_size(hf.type_vocab_size)
        .with_layer_norm_eps(hf.layer_norm_eps);
        c.validate().map_err(|e| config(e.to_string()))?;
        Ok(c)
    }
}

impl<B: Backend> SortedBert<B> {
    /// Replaces the encoder's parameters (and the pooler's, when the model has one) with the
    /// tensors of a Hugging Face `BertModel` safetensors file; the classifier keeps its
    /// initialisation. Tensor names: `embeddings.*`, `encoder.layer.N.*`, `pooler.dense.*`
    /// (a `bert.` prefix is accepted); F32, F16 and BF16 are read, and the result is f32.
    ///
    /// # Errors
    /// [`WeightsError`] naming the file and the first tensor that is missing, mis-shaped or of
    /// an unsupported type, or what is wrong with the file itself.
    pub fn load_hf_safetensors(mut self, path: &Path) -> Result<Self, WeightsError> {
        let st = SafeTensors::read(path)?;
        load_table(&st, "embeddings.word_embeddings.weight", &mut self.word_embeddings)?;
        load_table(&st, "embeddings.position_embeddings.weight", &mut self.position_embeddings)?;
        load_table(&st, "embeddings.token_type_embeddings.weight", &mut self.token_type_embeddings)?;
        load_norm(&st, "embeddings.LayerNorm", &mut self.embedding_norm)?;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let p = format!("encoder.layer.{i}");
            load_linear(&st, &format!("{p}.attention.self.query"), &mut layer.attention.query)?;
            load_linear(&st, &format!("{p}.attention.self.key"), &mut layer.attention.key)?;
            load_linear(&st, &format!("{p}.attention.self.value"), &mut layer.attention.value)?;
            load_linear(&st, &format!("{p}.attention.output.dense"), &mut layer.attention.output)?;
            load_norm(&st, &format!("{p}.attention.output.LayerNorm"), &mut layer.attention_norm)?;
            load_linear(&st, &format!("{p}.intermediate.dense"), &mut layer.intermediate)?;
            load_linear(&st, &format!("{p}.output.dense"), &mut layer.output)?;
            load_norm(&st, &format!("{p}.output.LayerNorm"), &mut layer.output_norm)?;
        }
        if let Some(pooler) = self.pooler.as_mut() {
            load_linear(&st, "pooler.dense", pooler)?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_decodes_known_values() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x3555), 0.333_251_95);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert!(half_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn transpose_moves_rows_to_columns() {
        assert_eq!(transposed(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn truncated_and_garbage_files_are_rejected_naming_the_problem() {
        let p = Path::new("x.safetensors");
        let e = SafeTensors::parse(p, vec![1, 2, 3]).err().unwrap().to_string();
        assert!(e.contains("x.safetensors") && e.contains("shorter"), "{e}");
        let mut bytes = 100u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        let e = SafeTensors::parse(p, bytes).err().unwrap().to_string();
        assert!(e.contains("runs past the end"), "{e}");
        let header = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0; 4]);
        let e = SafeTensors::parse(p, bytes).err().unwrap().to_string();
        assert!(e.contains("tensor `a`") && e.contains("truncated"), "{e}");
    }
}
