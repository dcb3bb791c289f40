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
        let (data_start, tensors) = parse_header(path, &bytes)?;
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

/// The bytes per element of the safetensors dtypes; `None` for a dtype this loader does not
/// know (its entries are still bounds-checked, only their length is not).
fn dtype_width(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// Parses and checks the header of a safetensors file: the 8-byte little-endian header
/// length, the JSON table, and every tensor's data offsets (inside the file, ordered, and as
/// long as its shape and dtype say). Returns where the data starts and the tensor table.
/// Nothing is allocated beyond the header itself, whose length is checked against the file's.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(usize, HashMap<String, TensorInfo>), WeightsError> {
    let format = |why: String| WeightsError::Format { path: path.into(), why };
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format(format!("{} bytes, shorter than the 8-byte header length", bytes.len())))?;
    let header_len = u64::from_le_bytes(len_bytes);
    let data_start =
        usize::try_from(header_len).ok().and_then(|n| n.checked_add(8)).filter(|&e| e <= bytes.len()).ok_or_else(
            || format(format!("header length {header_len} runs past the end of the {}-byte file", bytes.len())),
        )?;
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
        let numel = info.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        let n_bytes = dtype_width(&info.dtype).map(|w| numel.and_then(|n| n.checked_mul(w)));
        match (numel, n_bytes) {
            (None, _) => return Err(format(format!("tensor `{name}`: shape {:?} overflows", info.shape))),
            (_, Some(n)) if n != Some((end - start) as u64) => {
                return Err(format(format!(
                    "tensor `{name}`: shape {:?} of {} needs {} bytes, its data offsets {start}..{end} hold {}",
                    info.shape,
                    info.dtype,
                    n.map_or_else(|| "more than 2^64".to_owned(), |n| n.to_string()),
                    end - start
                )));
            }
            _ => {}
        }
        tensors.insert(name, info);
    }
    Ok((data_start, tensors))
}

/// Checks the header of a Hugging Face safetensors file held in memory, as
/// [`SortedBert::load_hf_safetensors`] does before reading any tensor, and returns the names
/// of its tensors, sorted. `name` names the file in errors.
///
/// # Errors
/// [`WeightsError::Format`], naming the file and what is wrong: a file shorter than the header
/// length, a header running past the end, a header that is not a JSON table of tensor entries,
/// or a tensor whose data offsets lie outside the file or disagree with its shape and dtype.
pub fn safetensors_tensor_names(bytes: &[u8], name: impl AsRef<Path>) -> Result<Vec<String>, WeightsError> {
    let (_, tensors) = parse_header(name.as_ref(), bytes)?;
    let mut names: Vec<String> = tensors.into_keys().collect();
    names.sort_unstable();
    Ok(names)
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

/// The most bytes of f32 parameters a BERT `config.json` may imply: 2^34 (16 GiB), forty times
/// BERT-large's 1.3 GB. A larger config is refused before anything is allocated for it.
pub const MAX_BERT_PARAMETER_BYTES: u64 = 1 << 34;

/// Checks that the f32 parameters `hf` implies fit in [`MAX_BERT_PARAMETER_BYTES`]. The error
/// names the key at fault: that of the largest term, and for the layers' term the width
/// (`hidden_size` or `intermediate_size`) if one layer alone exceeds the limit, the layer count
/// otherwise. Overflow counts as the largest.
fn check_parameter_bytes(hf: &HfBertConfig) -> Result<(), String> {
    let n = |v: usize| v as u64;
    let (h, f, layers) = (n(hf.hidden_size), n(hf.intermediate_size), n(hf.num_hidden_layers));
    let table = |rows: usize| n(rows).checked_mul(h);
    // Per layer: Q, K, V, output and two norms (4 h^2 + 8 h); the FFN (2 h f + f + h).
    let attention = h.checked_mul(h).and_then(|p| p.checked_mul(4)?.checked_add(h.checked_mul(8)?));
    let ffn = h.checked_mul(f).and_then(|p| p.checked_mul(2)?.checked_add(f)?.checked_add(h));
    let per_layer = attention.zip(ffn).and_then(|(a, b)| a.checked_add(b));
    let terms: [(&str, Option<u64>); 5] = [
        ("vocab_size", table(hf.vocab_size)),
        ("max_position_embeddings", table(hf.max_position_embeddings)),
        ("type_vocab_size", table(hf.type_vocab_size)),
        ("num_hidden_layers", per_layer.and_then(|p| p.checked_mul(layers))),
        // The pooler and the embedding norm.
        ("hidden_size", h.checked_mul(h).and_then(|p| p.checked_add(h.checked_mul(3)?))),
    ];
    let bytes = |params: Option<u64>| params.and_then(|p| p.checked_mul(4));
    let total = bytes(terms.iter().try_fold(0u64, |sum, (_, t)| sum.checked_add((*t)?)));
    if total.is_some_and(|b| b <= MAX_BERT_PARAMETER_BYTES) {
        return Ok(());
    }
    let largest = terms.iter().rev().max_by_key(|(_, t)| t.unwrap_or(u64::MAX)).map_or("hidden_size", |(k, _)| *k);
    let fits = |params: Option<u64>| bytes(params).is_some_and(|b| b <= MAX_BERT_PARAMETER_BYTES);
    let key = match largest {
        "num_hidden_layers" if !fits(per_layer) => {
            if attention.unwrap_or(u64::MAX) >= ffn.unwrap_or(u64::MAX) {
                "hidden_size"
            } else {
                "intermediate_size"
            }
        }
        other => other,
    };
    let value = match key {
        "vocab_size" => hf.vocab_size,
        "max_position_embeddings" => hf.max_position_embeddings,
        "type_vocab_size" => hf.type_vocab_size,
        "num_hidden_layers" => hf.num_hidden_layers,
        "intermediate_size" => hf.intermediate_size,
        _ => hf.hidden_size,
    };
    Err(format!(
        "`{key}` is {value}: with hidden_size {h}, intermediate_size {f} and num_hidden_layers {layers} the model \
         would need {} bytes of f32 parameters, more than the limit of {MAX_BERT_PARAMETER_BYTES} bytes",
        total.map_or_else(|| "more than 2^64".to_owned(), |b| b.to_string()),
    ))
}

impl SortedBertConfig {
    /// Reads the sizes from a Hugging Face BERT `config.json` (the head options keep their
    /// defaults: set them with the `with_*` methods).
    ///
    /// # Errors
    /// [`WeightsError::Read`], or [`WeightsError::Config`] naming the missing or unsupported
    /// key (`model_type` other than `bert`, `hidden_act` other than `gelu`).
    pub fn from_hf_config(path: &Path) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(|source| WeightsError::Read { path: path.into(), source })?;
        Self::from_hf_config_bytes(&bytes, path)
    }

    /// Reads the sizes from the bytes of a Hugging Face BERT `config.json`, as
    /// [`from_hf_config`](Self::from_hf_config) does; `name` names the file in errors.
    ///
    /// The sizes are bounded before anything is allocated for them: the f32 parameters they
    /// imply (embeddings, layers, pooler) must fit in [`MAX_BERT_PARAMETER_BYTES`] (16 GiB,
    /// 40 times BERT-large), or the error names the key of the largest term.
    ///
    /// # Errors
    /// [`WeightsError::Config`] naming the missing, mistyped, unsupported or too large key.
    pub fn from_hf_config_bytes(bytes: &[u8], name: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = name.as_ref();
        let config = |why: String| WeightsError::Config { path: path.into(), why };
        let hf: HfBertConfig = serde_json::from_slice(bytes).map_err(|e| config(format!("not a BERT config: {e}")))?;
        if let Some(kind) = hf.model_type.as_deref().filter(|k| *k != "bert") {
            return Err(config(format!("`model_type` is \"{kind}\", expected \"bert\"")));
        }
        if hf.hidden_act != "gelu" {
            return Err(config(format!(
                "`hidden_act` is \"{}\", only \"gelu\" (erf GELU) is implemented",
                hf.hidden_act
            )));
        }
        check_parameter_bytes(&hf).map_err(config)?;
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
