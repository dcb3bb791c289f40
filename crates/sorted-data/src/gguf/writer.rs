//! Writing GGUF files: metadata entries and tensors in order, F32 values encoded as F32, F16 or
//! Q8_0 (as ggml's reference `quantize_row_q8_0_ref` does), the layout [`GgufFile::parse`]
//! reads (see the module documentation of `gguf/mod.rs`), and an atomic write to disk.

use std::path::{Path, PathBuf};

#[cfg(doc)]
use super::GgufFile;
use super::{GGUF_DEFAULT_ALIGNMENT, GgmlType, GgufValue};

/// Why a GGUF file could not be built or written. Every variant names the tensor or file.
#[derive(Debug, thiserror::Error)]
pub enum GgufWriteError {
    /// A tensor's values do not fill its shape.
    #[error("GGUF tensor `{tensor}`: {got} values for shape {shape:?}")]
    Length {
        /// The tensor.
        tensor: String,
        /// Its row-major shape.
        shape: Vec<usize>,
        /// The number of values given.
        got: usize,
    },
    /// A block-quantized type whose blocks do not divide the rows.
    #[error("GGUF tensor `{tensor}`: rows of {row} values are not whole {ggml_type} blocks of {block}")]
    Blocks {
        /// The tensor.
        tensor: String,
        /// The type asked for.
        ggml_type: GgmlType,
        /// The row length (the fastest dimension).
        row: usize,
        /// The block size of the type.
        block: usize,
    },
    /// A type this writer does not encode (it encodes F32, F16 and Q8_0).
    #[error("GGUF tensor `{tensor}`: encoding {ggml_type} is not supported (F32, F16 and Q8_0 are)")]
    Unsupported {
        /// The tensor.
        tensor: String,
        /// The type asked for.
        ggml_type: GgmlType,
    },
    /// Writing, syncing or renaming the file failed.
    #[error("writing `{path}`")]
    Io {
        /// The file (or the temporary file beside it).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A GGUF file under construction: metadata entries and tensors are kept in the order they are
/// added; [`to_bytes`](Self::to_bytes) lays out the header, the metadata, the tensor infos,
/// padding and the data (each tensor padded to the alignment), and [`write`](Self::write)
/// writes that atomically.
///
/// ```
/// use sorted_data::{GgmlType, GgufFile, GgufValue, GgufWriter};
///
/// let mut w = GgufWriter::new();
/// w.metadata("general.architecture", GgufValue::String("llama".into()));
/// let values: Vec<f32> = (0..64).map(|i| i as f32 / 8.0).collect();
/// w.tensor("m", &[2, 32], &values, GgmlType::Q8_0)?;
/// let file = GgufFile::parse(w.to_bytes(), "m.gguf")?;
/// let (shape, back) = file.dequantize("m")?;
/// assert_eq!(shape, [2, 32]);
/// // Q8_0 rounds to 8 bits per block of 32: within one step (the block's largest |value| / 127).
/// let step = 7.875 / 127.0;
/// assert!(back.iter().zip(&values).all(|(a, b)| (a - b).abs() <= step));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GgufWriter {
    version: u32,
    alignment: usize,
    n_metadata: u64,
    metadata: Vec<u8>,
    /// Name, dims fastest-first, ggml type id, data.
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// `value` in the file's encoding (the type id is written by the caller).
fn put_value(out: &mut Vec<u8>, value: &GgufValue) {
    match value {
        GgufValue::U8(v) => out.push(*v),
        GgufValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::Bool(v) => out.push(u8::from(*v)),
        GgufValue::String(s) => put_string(out, s),
        GgufValue::Array { element_type, values } => {
            out.extend_from_slice(&element_type.id().to_le_bytes());
            out.extend_from_slice(&(values.len() as u64).to_le_bytes());
            for v in values {
                put_value(out, v);
            }
        }
        GgufValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

impl GgufWriter {
    /// An empty GGUF version 3 file with the default alignment (32).
    pub fn new() -> Self {
        Self {
            version: 3,
            alignment: GGUF_DEFAULT_ALIGNMENT as usize,
            n_metadata: 0,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// The same, declaring `version` in the header (the layout stays version 3's; readers accept
    /// 2 and 3).
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Appends a metadata entry. A `general.alignment` entry (`U32`) also sets the alignment
    /// the tensor data is laid out with.
    pub fn metadata(&mut self, key: &str, value: GgufValue) -> &mut Self {
        let mut bytes = Vec::new();
        put_value(&mut bytes, &value);
        if let ("general.alignment", GgufValue::U32(a)) = (key, &value)
            && *a > 0
        {
            self.alignment = *a as usize;
        }
        self.raw_metadata(key, value.value_type().id(), &bytes)
    }

    /// Appends a metadata entry with the raw value type id `type_id` and raw value bytes, as
    /// they go into the file (for files that test a reader's checks).
    pub fn raw_metadata(&mut self, key: &str, type_id: u32, value: &[u8]) -> &mut Self {
        put_string(&mut self.metadata, key);
        self.metadata.extend_from_slice(&type_id.to_le_bytes());
        self.metadata.extend_from_slice(value);
        self.n_metadata += 1;
        self
    }

    /// Appends a tensor of row-major `shape` (slowest first, as [`GgufFile::dequantize`]
    /// returns it) holding `values`, encoded as `ggml_type` (F32, F16 or Q8_0). F16 rounds to
    /// nearest even; Q8_0 quantizes each block of 32 as ggml's reference code does.
    ///
    /// # Errors
    /// [`GgufWriteError::Length`] if `values` does not fill `shape`,
    /// [`GgufWriteError::Blocks`] if the row length is not a multiple of the type's block,
    /// [`GgufWriteError::Unsupported`] for another type.
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
        ggml_type: GgmlType,
    ) -> Result<&mut Self, GgufWriteError> {
        if shape.iter().product::<usize>() != values.len() {
            return Err(GgufWriteError::Length { tensor: name.into(), shape: shape.to_vec(), got: values.len() });
        }
        let data =
            encode(ggml_type, values).ok_or_else(|| GgufWriteError::Unsupported { tensor: name.into(), ggml_type })?;
        let block = ggml_type.block_size() as usize;
        let row = shape.last().copied().unwrap_or(1);
        if !row.is_multiple_of(block) {
            return Err(GgufWriteError::Blocks { tensor: name.into(), ggml_type, row, block });
        }
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        Ok(self.raw_tensor(name, &dims, ggml_type.id(), data))
    }

    /// Appends a tensor with dims listed fastest-first, a raw ggml type id and its stored
    /// bytes, unchecked.
    pub fn raw_tensor(&mut self, name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push((name.into(), dims.to_vec(), type_id, data));
        self
    }

    /// The bytes of the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with_data_start().0
    }

    /// The bytes of the file, and where its data section starts.
    pub fn to_bytes_with_data_start(&self) -> (Vec<u8>, usize) {
        let pad = |out: &mut Vec<u8>| out.resize(out.len().div_ceil(self.alignment) * self.alignment, 0);
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.n_metadata.to_le_bytes());
        out.extend_from_slice(&self.metadata);
        let mut data = Vec::new();
        for (name, dims, type_id, bytes) in &self.tensors {
            put_string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&type_id.to_le_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            data.extend_from_slice(bytes);
            pad(&mut data);
        }
        pad(&mut out);
        let data_start = out.len();
        out.extend_from_slice(&data);
        (out, data_start)
    }

    /// Writes the file to `path` atomically: into a temporary file beside it, synced, then
    /// renamed over `path` (a reader never sees half a file).
    ///
    /// # Errors
    /// [`GgufWriteError::Io`] naming the file.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<(), GgufWriteError> {
        let path = path.as_ref();
        crate::write_atomic(path, &self.to_bytes())
            .map_err(|source| GgufWriteError::Io { path: path.to_path_buf(), source })
    }
}

/// `values` stored as `ggml_type`, or `None` for a type not encoded here.
fn encode(ggml_type: GgmlType, values: &[f32]) -> Option<Vec<u8>> {
    match ggml_type {
        GgmlType::F32 => Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        GgmlType::F16 => Some(values.iter().flat_map(|&v| f32_to_f16(v).to_le_bytes()).collect()),
        GgmlType::Q8_0 => Some(values.chunks(32).flat_map(q8_0_block).collect()),
        _ => None,
    }
}

/// One `Q8_0` block (`d: f16, qs: [i8; 32]`) as `quantize_row_q8_0_ref` computes it: `d =
/// amax / 127`, `q = round(x / d)` with the f32 `d`, and `d` stored as f16.
fn q8_0_block(x: &[f32]) -> Vec<u8> {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = f32_to_f16(d).to_le_bytes().to_vec();
    out.extend(x.iter().map(|&v| ((v * id).round() as i8) as u8));
    out
}

/// f32 to IEEE half precision, rounding to nearest even (overflow to infinity, NaN kept NaN).
pub(crate) fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x007f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    // The value's exponent rebased to half precision.
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal half (or zero): shift the full significand into place, rounding to even.
        if e < -10 {
            return sign;
        }
        let m = mantissa | 0x0080_0000;
        let shift = (14 - e) as u32;
        let half = m >> shift;
        let rest = m & ((1 << shift) - 1);
        let midpoint = 1 << (shift - 1);
        let round = rest > midpoint || (rest == midpoint && half & 1 == 1);
        return sign | (half + u32::from(round)) as u16;
    }
    let half = ((e as u32) << 10) | (mantissa >> 13);
    let rest = mantissa & 0x1fff;
    let round = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
    // A carry out of the mantissa moves to the next exponent (and to infinity), as it should.
    sign | (half + u32::from(round)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GgufFile;

    #[test]
    fn every_finite_half_survives_the_round_trip_and_ties_go_to_even() {
        for h in 0..=u16::MAX {
            if (h >> 10) & 0x1f == 0x1f {
                continue;
            }
            let file = GgufFile::parse(
                {
                    let mut w = GgufWriter::new();
                    w.raw_tensor("h", &[1], GgmlType::F16.id(), h.to_le_bytes().to_vec());
                    w.to_bytes()
                },
                "h.gguf",
            )
            .unwrap();
            let v = file.dequantize("h").unwrap().1[0];
            assert_eq!(f32_to_f16(v), if h == 0x8000 { 0x8000 } else { h }, "{h:#06x}");
        }
        // 1 + 2^-11 lies halfway between 1 and the next half: to even (1); 1 + 3 * 2^-11 to 1 + 2^-9.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0);
        assert_eq!(f32_to_f16(1.5 * 2f32.powi(-25)), 1);
        assert_eq!(f32_to_f16(f32::NAN) & 0x7c00, 0x7c00);
    }

    #[test]
    fn written_tensors_and_metadata_read_back() {
        let values: Vec<f32> = (0..96).map(|i| ((i * 37) % 29) as f32 / 7.0 - 2.0).collect();
        let mut w = GgufWriter::new();
        w.metadata("general.alignment", GgufValue::U32(64)).metadata(
            "a.list",
            GgufValue::Array {
                element_type: crate::GgufValueType::String,
                values: vec![GgufValue::String("x".into()), GgufValue::String("y z".into())],
            },
        );
        w.tensor("f32", &[3, 32], &values, GgmlType::F32).unwrap();
        w.tensor("f16", &[96], &values, GgmlType::F16).unwrap();
        w.tensor("q8", &[3, 32], &values, GgmlType::Q8_0).unwrap();
        let file = GgufFile::parse(w.to_bytes(), "t.gguf").unwrap();
        assert_eq!(file.alignment(), 64);
        assert_eq!(file.string_array("a.list").unwrap(), ["x", "y z"]);
        assert_eq!(file.dequantize("f32").unwrap(), (vec![3, 32], values.clone()));
        let (_, f16) = file.dequantize("f16").unwrap();
        assert!(f16.iter().zip(&values).all(|(a, b)| (a - b).abs() <= b.abs() / 1024.0));
        let (_, q8) = file.dequantize("q8").unwrap();
        for (block, orig) in q8.chunks(32).zip(values.chunks(32)) {
            let amax = orig.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(block.iter().zip(orig).all(|(a, b)| (a - b).abs() <= amax / 127.0 * 0.51 + 1e-3));
        }
        let err = w.tensor("bad", &[2, 16], &values[..32], GgmlType::Q8_0).unwrap_err().to_string();
        assert!(err.contains("bad") && err.contains("Q8_0"), "{err}");
        let err = w.tensor("short", &[2, 32], &values[..32], GgmlType::F32).unwrap_err().to_string();
        assert!(err.contains("short") && err.contains("32 values"), "{err}");
    }

    #[test]
    fn write_is_atomic_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        let mut w = GgufWriter::new();
        w.metadata("k", GgufValue::U32(7));
        w.write(&path).unwrap();
        assert_eq!(GgufFile::read(&path).unwrap().u32("k").unwrap(), 7);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        let missing = dir.path().join("no/such/m.gguf");
        let err = w.write(&missing).unwrap_err();
        assert!(format!("{err}").contains("m.gguf"), "{err}");
    }
}
