//! GGUF files: header, metadata, tensor infos and dequantization.
//!
//! A GGUF file (little-endian, versions 2 and 3) is laid out as
//!
//! ```text
//! "GGUF"  version: u32  n_tensors: u64  n_metadata: u64
//! n_metadata x (key: string, value type: u32, value)
//! n_tensors  x (name: string, n_dims: u32, dims: [u64; n_dims] fastest-first, ggml type: u32,
//!               offset: u64 from the start of the data section)
//! padding to the next multiple of `general.alignment` (default 32)
//! tensor data
//! ```
//!
//! where a string is a `u64` byte length followed by UTF-8 bytes and an array value is an
//! element type (`u32`), a count (`u64`) and the elements. Dims are listed fastest-first, so a
//! tensor with dims `[576, 1536]` is a row-major `(1536, 576)` matrix: [`GgufTensorInfo::shape`]
//! and [`GgufFile::dequantize`] give the row-major (slowest-first) shape.
//!
//! [`GgufFile::parse`] validates the whole layout before anything is read from it: every read is
//! bounds-checked (a truncated file is an error naming the file, what was being read and the byte
//! offset), every tensor's data must lie inside the file, and every tensor type must be a known
//! ggml type. Nothing panics on bad input.

mod dequantize;
mod metadata;
mod writer;

pub use metadata::GgufMetadata;
pub use writer::{GgufWriteError, GgufWriter};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The alignment of the tensor data when the file has no `general.alignment` key.
pub const GGUF_DEFAULT_ALIGNMENT: u32 = 32;

/// The most dimensions a ggml tensor has (`GGML_MAX_DIMS`).
const MAX_DIMS: u32 = 4;

/// The deepest nesting of array values accepted: deep enough for any real file, shallow enough
/// that a hostile file cannot overflow the stack.
const MAX_ARRAY_DEPTH: usize = 8;

/// A GGUF file that cannot be read, is malformed, or lacks what was asked of it. Every variant
/// names the file and, where there is one, the metadata key or tensor.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be read.
    #[error("reading `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file ends in the middle of the header, the metadata or the tensor infos.
    #[error("`{path}` is truncated: reading {what} at byte {offset} needs {needed} bytes, the file has {len} bytes")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read (naming the metadata key or tensor).
        what: String,
        /// Where it starts.
        offset: u64,
        /// How many bytes it needs from `offset` on.
        needed: u64,
        /// The length of the file.
        len: u64,
    },
    /// The file does not start with the magic bytes `GGUF`.
    #[error("`{path}` is not a GGUF file: it starts with {got:02x?}, expected \"GGUF\"")]
    Magic {
        /// The file.
        path: PathBuf,
        /// Its first four bytes.
        got: Vec<u8>,
    },
    /// A GGUF version other than 2 or 3.
    #[error("`{path}`: GGUF version {version} is not supported (versions 2 and 3 are read, little-endian){hint}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version field as read (little-endian).
        version: u32,
        /// A note when the field reads as 2 or 3 big-endian.
        hint: &'static str,
    },
    /// A malformed header, metadata entry or tensor info (bad value type, invalid UTF-8,
    /// duplicate name, bad alignment, misaligned tensor offset, ...).
    #[error("`{path}`: byte {offset}: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Where the offending item starts.
        offset: u64,
        /// What is wrong, naming the key or tensor.
        why: String,
    },
    /// A tensor whose ggml type id is not a known ggml type.
    #[error("`{path}`: tensor `{tensor}` has unknown ggml type id {ggml_type}")]
    UnknownType {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The type id in the file.
        ggml_type: u32,
    },
    /// A tensor whose data runs past the end of the file.
    #[error(
        "`{path}`: the data of tensor `{tensor}` (bytes {start}..{end}) runs past the end of the {len}-byte file \
         (truncated file?)"
    )]
    TensorBounds {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Where its data starts in the file.
        start: u64,
        /// Where its data ends in the file.
        end: u64,
        /// The length of the file.
        len: u64,
    },
    /// A metadata key asked for is not in the file.
    #[error("`{path}` has no metadata key `{key}` (expected {expected})")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The type asked for.
        expected: &'static str,
    },
    /// A metadata value of another type than the one asked for.
    #[error("`{path}`: metadata key `{key}` is {got}, expected {expected}")]
    KeyType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The type asked for.
        expected: &'static str,
        /// The value's type (and the value, for numbers out of range).
        got: String,
    },
    /// A tensor asked for is not in the file.
    #[error("`{path}` has no tensor `{tensor}`")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
    },
    /// A tensor of a ggml type [`GgufFile::dequantize`] does not decode.
    #[error(
        "`{path}`: tensor `{tensor}` is {ggml_type} (ggml type {}); dequantize reads F32, F16, BF16, Q8_0, Q8_K, \
         Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K",
        ggml_type.id()
    )]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its type.
        ggml_type: GgmlType,
    },
    /// A tensor whose shape does not fit the model built from the file's metadata.
    #[error("`{path}`: tensor `{tensor}` has shape {got:?}, the model expects {expected:?}")]
    TensorShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The shape the model needs (row-major, slowest first).
        expected: Vec<usize>,
        /// The shape in the file.
        got: Vec<usize>,
    },
}

/// The type of a metadata value, with its GGUF type id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgufValueType {
    /// `u8` (id 0).
    U8,
    /// `i8` (id 1).
    I8,
    /// `u16` (id 2).
    U16,
    /// `i16` (id 3).
    I16,
    /// `u32` (id 4).
    U32,
    /// `i32` (id 5).
    I32,
    /// `f32` (id 6).
    F32,
    /// `bool`, one byte 0 or 1 (id 7).
    Bool,
    /// UTF-8 string (id 8).
    String,
    /// Array of values of one type (id 9).
    Array,
    /// `u64` (id 10).
    U64,
    /// `i64` (id 11).
    I64,
    /// `f64` (id 12).
    F64,
}

impl GgufValueType {
    const ALL: [Self; 13] = [
        Self::U8,
        Self::I8,
        Self::U16,
        Self::I16,
        Self::U32,
        Self::I32,
        Self::F32,
        Self::Bool,
        Self::String,
        Self::Array,
        Self::U64,
        Self::I64,
        Self::F64,
    ];

    /// The type with GGUF type id `id`, if there is one.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.get(id as usize).copied()
    }

    /// The GGUF type id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The name used in messages (`u32`, `string`, `array`).
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "u64",
            Self::I64 => "i64",
            Self::F64 => "f64",
        }
    }

    /// The fewest bytes a value of this type takes in the file (for sanity-checking counts
    /// before allocating).
    fn min_size(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

impl fmt::Display for GgufValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// A string.
    String(String),
    /// An array (possibly of arrays): every element has type `element_type`.
    Array {
        /// The type of the elements (also known when the array is empty).
        element_type: GgufValueType,
        /// The elements.
        values: Vec<GgufValue>,
    },
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

impl GgufValue {
    /// The value's type.
    pub fn value_type(&self) -> GgufValueType {
        match self {
            Self::U8(_) => GgufValueType::U8,
            Self::I8(_) => GgufValueType::I8,
            Self::U16(_) => GgufValueType::U16,
            Self::I16(_) => GgufValueType::I16,
            Self::U32(_) => GgufValueType::U32,
            Self::I32(_) => GgufValueType::I32,
            Self::F32(_) => GgufValueType::F32,
            Self::Bool(_) => GgufValueType::Bool,
            Self::String(_) => GgufValueType::String,
            Self::Array { .. } => GgufValueType::Array,
            Self::U64(_) => GgufValueType::U64,
            Self::I64(_) => GgufValueType::I64,
            Self::F64(_) => GgufValueType::F64,
        }
    }

    /// The value as an integer, whatever its integer type; `None` for other types.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Self::U8(v) => v.into(),
            Self::I8(v) => v.into(),
            Self::U16(v) => v.into(),
            Self::I16(v) => v.into(),
            Self::U32(v) => v.into(),
            Self::I32(v) => v.into(),
            Self::U64(v) => v.into(),
            Self::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The string, if the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if the value is an array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            Self::Array { values, .. } => Some(values),
            _ => None,
        }
    }

    /// The type as messages name it: `u32`, `string`, `array of string`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Array { element_type, .. } => format!("array of {element_type}"),
            other => other.value_type().name().into(),
        }
    }
}

/// A ggml tensor type, with its block size (elements) and block byte size. Names follow ggml
/// (`Q4_0`, `Q4_K`), hence the underscores.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit float (id 0).
    F32,
    /// IEEE half (id 1).
    F16,
    /// 32-element blocks: f16 scale, 16 bytes of 4-bit values minus 8 (id 2).
    Q4_0,
    /// 32-element blocks: f16 scale and minimum, 16 bytes of 4-bit values (id 3).
    Q4_1,
    /// id 6.
    Q5_0,
    /// id 7.
    Q5_1,
    /// 32-element blocks: f16 scale, 32 signed bytes (id 8).
    Q8_0,
    /// id 9.
    Q8_1,
    /// id 10.
    Q2_K,
    /// id 11.
    Q3_K,
    /// id 12.
    Q4_K,
    /// id 13.
    Q5_K,
    /// id 14.
    Q6_K,
    /// id 15.
    Q8_K,
    /// id 16.
    IQ2_XXS,
    /// id 17.
    IQ2_XS,
    /// id 18.
    IQ3_XXS,
    /// id 19.
    IQ1_S,
    /// id 20.
    IQ4_NL,
    /// id 21.
    IQ3_S,
    /// id 22.
    IQ2_S,
    /// id 23.
    IQ4_XS,
    /// id 24.
    I8,
    /// id 25.
    I16,
    /// id 26.
    I32,
    /// id 27.
    I64,
    /// id 28.
    F64,
    /// id 29.
    IQ1_M,
    /// bfloat16 (id 30).
    BF16,
    /// id 34.
    TQ1_0,
    /// id 35.
    TQ2_0,
    /// id 39.
    MXFP4,
    /// id 40.
    NVFP4,
    /// id 41.
    Q1_0,
}

impl GgmlType {
    /// Every known type, in id order.
    const ALL: [Self; 34] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q8_1,
        Self::Q2_K,
        Self::Q3_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
        Self::Q8_K,
        Self::IQ2_XXS,
        Self::IQ2_XS,
        Self::IQ3_XXS,
        Self::IQ1_S,
        Self::IQ4_NL,
        Self::IQ3_S,
        Self::IQ2_S,
        Self::IQ4_XS,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::F64,
        Self::IQ1_M,
        Self::BF16,
        Self::TQ1_0,
        Self::TQ2_0,
        Self::MXFP4,
        Self::NVFP4,
        Self::Q1_0,
    ];

    /// `(id, name, elements per block, bytes per block)`, as in ggml's type traits.
    fn traits(self) -> (u32, &'static str, u64, u64) {
        const QK_K: u64 = 256;
        match self {
            Self::F32 => (0, "F32", 1, 4),
            Self::F16 => (1, "F16", 1, 2),
            Self::Q4_0 => (2, "Q4_0", 32, 2 + 16),
            Self::Q4_1 => (3, "Q4_1", 32, 2 + 2 + 16),
            Self::Q5_0 => (6, "Q5_0", 32, 2 + 4 + 16),
            Self::Q5_1 => (7, "Q5_1", 32, 2 + 2 + 4 + 16),
            Self::Q8_0 => (8, "Q8_0", 32, 2 + 32),
            Self::Q8_1 => (9, "Q8_1", 32, 4 + 32),
            Self::Q2_K => (10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
            Self::Q3_K => (11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
            Self::Q4_K => (12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12),
            Self::Q5_K => (13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
            Self::Q6_K => (14, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
            Self::Q8_K => (15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8),
            Self::IQ2_XXS => (16, "IQ2_XXS", QK_K, 2 + QK_K / 4),
            Self::IQ2_XS => (17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32),
            Self::IQ3_XXS => (18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8),
            Self::IQ1_S => (19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16),
            Self::IQ4_NL => (20, "IQ4_NL", 32, 2 + 16),
            Self::IQ3_S => (21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
            Self::IQ2_S => (22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16),
            Self::IQ4_XS => (23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
            Self::I8 => (24, "I8", 1, 1),
            Self::I16 => (25, "I16", 1, 2),
            Self::I32 => (26, "I32", 1, 4),
            Self::I64 => (27, "I64", 1, 8),
            Self::F64 => (28, "F64", 1, 8),
            Self::IQ1_M => (29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
            Self::BF16 => (30, "BF16", 1, 2),
            Self::TQ1_0 => (34, "TQ1_0", QK_K, 2 + 4 * 13),
            Self::TQ2_0 => (35, "TQ2_0", QK_K, 2 + 64),
            Self::MXFP4 => (39, "MXFP4", 32, 1 + 16),
            Self::NVFP4 => (40, "NVFP4", 64, 4 + 32),
            Self::Q1_0 => (41, "Q1_0", 128, 2 + 16),
        }
    }

    /// The type with ggml type id `id`, if it is a known one.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        self.traits().0
    }

    /// The ggml name (`Q4_1`).
    pub fn name(self) -> &'static str {
        self.traits().1
    }

    /// Elements per block (1 for plain types).
    pub fn block_size(self) -> u64 {
        self.traits().2
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        self.traits().3
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a tensor is and what it holds, as listed in the file (validated: its data lies inside
/// the file and its first dimension is a whole number of blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufTensorInfo {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    offset: u64,
    n_elements: usize,
    n_bytes: usize,
}

impl GgufTensorInfo {
    /// The tensor's name (`blk.0.attn_q.weight`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dimensions as GGUF lists them: fastest-varying first.
    pub fn dims(&self) -> &[u64] {
        &self.dims
    }

    /// The row-major shape, slowest-varying first: the dims reversed (`[576, 1536]` in the file
    /// is `[1536, 576]` here).
    pub fn shape(&self) -> Vec<usize> {
        // Checked in `GgufFile::parse`: every dim fits `usize`.
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// The ggml type of the stored data.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// The offset of the data from the start of the data section.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The number of elements.
    pub fn n_elements(&self) -> usize {
        self.n_elements
    }

    /// The number of bytes of stored data.
    pub fn n_bytes(&self) -> usize {
        self.n_bytes
    }
}

/// A parsed GGUF file: its metadata and tensor infos over the file's bytes.
///
/// ```
/// # fn main() -> Result<(), sorted_data::GgufError> {
/// # // Run where `cargo xtask data smollm2` has fetched the file.
/// # let path = std::path::Path::new("../../data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
/// # if !path.exists() { return Ok(()); }
/// use sorted_data::GgufFile;
///
/// let gguf = GgufFile::read(path)?;
/// let d_model = gguf.u32("llama.embedding_length")? as usize;
/// let (shape, values) = gguf.dequantize("blk.0.attn_q.weight")?; // Q4_1 in the file
/// assert_eq!(shape, [d_model, d_model]); // [out, in]
/// assert_eq!(values.len(), d_model * d_model);
/// # Ok(()) }
/// ```
pub struct GgufFile {
    bytes: Vec<u8>,
    alignment: u32,
    data_start: usize,
    metadata: GgufMetadata,
    tensors: Vec<GgufTensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.metadata.path())
            .field("version", &self.metadata.version())
            .field("len", &self.bytes.len())
            .field("n_metadata", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .finish_non_exhaustive()
    }
}

impl GgufFile {
    /// Reads and parses the GGUF file at `path` (the whole file is read into memory).
    ///
    /// # Errors
    /// [`GgufError::Read`], or any error of [`GgufFile::parse`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| GgufError::Read { path: path.into(), source })?;
        Self::parse(bytes, path)
    }

    /// Reads only the header and the metadata of the GGUF file at `path`: the
    /// [`GgufMetadata`] [`GgufFile::read`] would give ([`GgufFile::metadata`]), without reading the
    /// tensor infos or the tensor data. The file is read from its start in growing prefixes
    /// (the first mebibyte, then twice as many bytes, ...) until the metadata is
    /// parsed, so a model file of hundreds of megabytes costs a few megabytes of reading (its
    /// tokenizer's vocabulary is most of its metadata).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use sorted_data::{GgufFile, GgufValue, GgufWriter};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("m.gguf");
    /// let mut w = GgufWriter::new();
    /// w.metadata("llama.embedding_length", GgufValue::U32(576));
    /// w.write(&path)?;
    /// let metadata = GgufFile::read_metadata(&path)?;
    /// assert_eq!(metadata.u32("llama.embedding_length")?, 576);
    /// assert_eq!(metadata.len(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`GgufError::Read`], or [`GgufError::Magic`], [`GgufError::Version`],
    /// [`GgufError::Truncated`] or [`GgufError::Format`] for the header or a metadata entry: the
    /// error [`GgufFile::read`] gives for it, naming the file.
    pub fn read_metadata(path: impl AsRef<Path>) -> Result<GgufMetadata, GgufError> {
        read_metadata_from(path.as_ref(), METADATA_PREFIX)
    }

    /// Parses the bytes of a GGUF file; `path` names it in errors.
    ///
    /// # Errors
    /// [`GgufError::Magic`], [`GgufError::Version`], [`GgufError::Truncated`] (naming what was
    /// being read and where), [`GgufError::Format`], [`GgufError::UnknownType`] or
    /// [`GgufError::TensorBounds`].
    pub fn parse(bytes: Vec<u8>, path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let mut cur = Cursor::new(&bytes, bytes.len() as u64, path);
        let Header { n_tensors, alignment, metadata } = Header::parse(&mut cur)?;

        // A tensor info is at least 8 + 4 + 4 + 8 bytes.
        cur.check_count(n_tensors, 24, &|| format!("{n_tensors} tensor infos"))?;
        let mut raw_infos = Vec::with_capacity(preallocated(n_tensors));
        for i in 0..n_tensors {
            let start = cur.pos;
            let name = cur.string(&|| format!("the name of tensor info {i}"))?;
            let what = |part: &str| format!("{part} of tensor `{name}`");
            let n_dims = cur.u32(&|| what("the dimension count"))?;
            if n_dims > MAX_DIMS {
                return Err(cur.format(start, format!("tensor `{name}` has {n_dims} dimensions, at most 4")));
            }
            let dims =
                (0..n_dims).map(|d| cur.u64(&|| what(&format!("dimension {d}")))).collect::<Result<Vec<_>, _>>()?;
            let type_id = cur.u32(&|| what("the ggml type"))?;
            let offset = cur.u64(&|| what("the data offset"))?;
            raw_infos.push((start, name, dims, type_id, offset));
        }
        // The data section starts at the next multiple of the alignment after the infos.
        let data_start = cur.pos.div_ceil(alignment as usize) * alignment as usize;

        let len = bytes.len() as u64;
        let mut tensors = Vec::with_capacity(raw_infos.len());
        let mut tensor_index = HashMap::with_capacity(raw_infos.len());
        for (start, name, dims, type_id, offset) in raw_infos {
            let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownType {
                path: path.into(),
                tensor: name.clone(),
                ggml_type: type_id,
            })?;
            let format = |why: String| cur.format(start, format!("tensor `{name}`: {why}"));
            // Every dim and the element count fit `usize`, so shapes convert without loss.
            let n_elements = dims
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d).filter(|_| usize::try_from(d).is_ok()))
                .filter(|&n| usize::try_from(n).is_ok());
            let Some(n_elements) = n_elements else {
                return Err(format(format!("dims {dims:?} have too many elements")));
            };
            let row = dims.first().copied().unwrap_or(1);
            if row % ggml_type.block_size() != 0 {
                return Err(format(format!(
                    "its first dim {row} is not a multiple of the {ggml_type} block size {}",
                    ggml_type.block_size()
                )));
            }
            if offset % u64::from(alignment) != 0 {
                return Err(format(format!("data offset {offset} is not a multiple of the alignment {alignment}")));
            }
            let n_bytes = (n_elements / ggml_type.block_size()).checked_mul(ggml_type.block_bytes());
            let file_start = (data_start as u64).checked_add(offset);
            let file_end = file_start.zip(n_bytes).and_then(|(start, n)| start.checked_add(n));
            let n_bytes = match (n_bytes, file_end) {
                (Some(n_bytes), Some(end)) if end <= len => n_bytes,
                _ => {
                    return Err(GgufError::TensorBounds {
                        path: path.into(),
                        tensor: name,
                        start: file_start.unwrap_or(u64::MAX),
                        end: file_end.unwrap_or(u64::MAX),
                        len,
                    });
                }
            };
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(format("the name appears twice".into()));
            }
            tensors.push(GgufTensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                n_elements: n_elements as usize,
                n_bytes: n_bytes as usize,
            });
        }
        Ok(Self { bytes, alignment, data_start, metadata, tensors, tensor_index })
    }

    /// The file the data came from (as given to [`GgufFile::read`] or [`GgufFile::parse`]).
    pub fn path(&self) -> &Path {
        self.metadata.path()
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.metadata.version()
    }

    /// The alignment of the tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u32 {
        self.alignment
    }

    /// Where the data section starts in the file.
    pub fn data_start(&self) -> usize {
        self.data_start
    }

    /// The metadata: every entry in file order, with typed accessors.
    pub fn metadata(&self) -> &GgufMetadata {
        &self.metadata
    }

    /// The metadata value of `key`, if the file has it ([`GgufMetadata::get`]).
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// The value of `key` as a `u32` ([`GgufMetadata::u32`]).
    ///
    /// # Errors
    /// As [`GgufMetadata::u32`].
    pub fn u32(&self, key: &str) -> Result<u32, GgufError> {
        self.metadata.u32(key)
    }

    /// The value of `key` as an `f32` ([`GgufMetadata::f32`]).
    ///
    /// # Errors
    /// As [`GgufMetadata::f32`].
    pub fn f32(&self, key: &str) -> Result<f32, GgufError> {
        self.metadata.f32(key)
    }

    /// The value of `key` as a string ([`GgufMetadata::str`]).
    ///
    /// # Errors
    /// As [`GgufMetadata::str`].
    pub fn str(&self, key: &str) -> Result<&str, GgufError> {
        self.metadata.str(key)
    }

    /// The value of `key` as an array of strings ([`GgufMetadata::string_array`]).
    ///
    /// # Errors
    /// As [`GgufMetadata::string_array`].
    pub fn string_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        self.metadata.string_array(key)
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = &GgufTensorInfo> {
        self.tensors.iter()
    }

    /// The info of tensor `name`, if the file has it.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    fn require_tensor(&self, name: &str) -> Result<&GgufTensorInfo, GgufError> {
        self.tensor_info(name).ok_or_else(|| GgufError::MissingTensor { path: self.path().into(), tensor: name.into() })
    }

    /// The stored bytes of tensor `name`, as they are in the file.
    ///
    /// # Errors
    /// [`GgufError::MissingTensor`].
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self.require_tensor(name)?;
        Ok(self.raw(info))
    }

    fn raw(&self, info: &GgufTensorInfo) -> &[u8] {
        // Checked in `parse`: the data lies inside the file.
        let start = self.data_start + info.offset as usize;
        &self.bytes[start..start + info.n_bytes]
    }

    /// The values of tensor `name` as f32, with its row-major shape (slowest-first: the GGUF
    /// dims reversed, so a linear layer's weight is `[out, in]`). F32, F16, BF16, the legacy
    /// block types Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1, and the k-quants Q2_K, Q3_K, Q4_K, Q5_K,
    /// Q6_K and Q8_K are decoded as ggml's reference dequantization does, bit for bit (checked
    /// against gguf-py in `tests/gguf_quants.rs`). The i-quants, ternary and FP4 types are not.
    ///
    /// # Errors
    /// [`GgufError::MissingTensor`], or [`GgufError::UnsupportedType`] naming the tensor's type.
    pub fn dequantize(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), GgufError> {
        let info = self.require_tensor(name)?;
        let raw = self.raw(info);
        let mut out = Vec::with_capacity(info.n_elements);
        if !dequantize::decode(info.ggml_type, raw, &mut out) {
            return Err(GgufError::UnsupportedType {
                path: self.path().into(),
                tensor: name.into(),
                ggml_type: info.ggml_type,
            });
        }
        debug_assert_eq!(out.len(), info.n_elements);
        Ok((info.shape(), out))
    }
}

/// How many items of a count read from a file are allocated before they are read: the count is
/// only bounded by the file's length over the item's smallest size, and an item in memory is
/// larger than that (a crafted file of 100 MB could otherwise ask for gigabytes); more grow as
/// they are read.
fn preallocated(count: u64) -> usize {
    count.min(1 << 16) as usize
}

/// How many bytes of a file [`GgufFile::read_metadata`] reads first.
const METADATA_PREFIX: u64 = 1 << 20;

/// [`GgufFile::read_metadata`], reading `first` bytes first (at least one).
fn read_metadata_from(path: &Path, first: u64) -> Result<GgufMetadata, GgufError> {
    use std::io::Read;

    let read_error = |source| GgufError::Read { path: path.into(), source };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let info = file.metadata().map_err(read_error)?;
    let mut bytes = Vec::new();
    if !info.is_file() {
        // A pipe or a device has no length to read prefixes against: read it whole.
        file.read_to_end(&mut bytes).map_err(read_error)?;
        return Header::parse(&mut Cursor::new(&bytes, bytes.len() as u64, path)).map(|header| header.metadata);
    }
    let mut len = info.len();
    let mut want = first.clamp(1, len.max(1));
    loop {
        let missing = want.saturating_sub(bytes.len() as u64);
        (&mut file).take(missing).read_to_end(&mut bytes).map_err(read_error)?;
        if (bytes.len() as u64) < want {
            // The file ended before its length as first read (it shrank): what was read is all.
            len = bytes.len() as u64;
        }
        let have = bytes.len() as u64;
        match Header::parse(&mut Cursor::new(&bytes, len, path)) {
            Ok(header) => return Ok(header.metadata),
            // Past the prefix read so far but inside the file: read more and parse again.
            Err(GgufError::Truncated { offset, needed, .. }) if have < len && offset.saturating_add(needed) <= len => {
                want = have.saturating_mul(2).max(offset + needed).min(len);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The header and the metadata: what precedes the tensor infos.
struct Header {
    n_tensors: u64,
    alignment: u32,
    metadata: GgufMetadata,
}

impl Header {
    /// Reads the magic bytes, version, counts and metadata entries from the start of `cur`,
    /// leaving it at the first tensor info.
    fn parse(cur: &mut Cursor<'_>) -> Result<Self, GgufError> {
        let path = cur.path;
        let magic = cur.take(4, &|| "the magic bytes".into())?;
        if magic != b"GGUF" {
            return Err(GgufError::Magic { path: path.into(), got: magic.to_vec() });
        }
        let version = cur.u32(&|| "the version".into())?;
        if !matches!(version, 2 | 3) {
            let hint = if matches!(version.swap_bytes(), 2 | 3) { "; this looks like a big-endian file" } else { "" };
            return Err(GgufError::Version { path: path.into(), version, hint });
        }
        let n_tensors = cur.u64(&|| "the tensor count".into())?;
        let n_metadata = cur.u64(&|| "the metadata count".into())?;
        // A key is at least 8 + 4 + 1 bytes.
        cur.check_count(n_metadata, 13, &|| format!("{n_metadata} metadata entries"))?;

        let mut metadata = Vec::with_capacity(preallocated(n_metadata));
        let mut metadata_index = HashMap::with_capacity(preallocated(n_metadata));
        let mut alignment_at = 0;
        for i in 0..n_metadata {
            let start = cur.pos;
            let key = cur.string(&|| format!("the key of metadata entry {i}"))?;
            let what = |part: &str| format!("{part} of metadata key `{key}`");
            let type_id = cur.u32(&|| what("the value type"))?;
            let value = cur.value(type_id, 0, &|| what("the value"))?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(cur.format(start, format!("metadata key `{key}` appears twice")));
            }
            if key == "general.alignment" {
                alignment_at = start;
            }
            metadata.push((key, value));
        }

        let alignment = match metadata_index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => GGUF_DEFAULT_ALIGNMENT,
            Some(GgufValue::U32(a)) if a.is_power_of_two() => *a,
            Some(other) => {
                return Err(cur.format(
                    alignment_at,
                    format!("`general.alignment` must be a u32 power of two, got {other:?} ({})", other.describe()),
                ));
            }
        };
        let metadata = GgufMetadata::new(path.into(), version, metadata, metadata_index);
        Ok(Self { n_tensors, alignment, metadata })
    }
}

/// A bounds-checked little-endian reader over the file's bytes, or over a prefix of them
/// ([`GgufFile::read_metadata`]). `what` closures describe the item being read; they run only
/// when there is an error to report.
struct Cursor<'a> {
    /// The bytes read: the whole file, or its first bytes.
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
    /// The length of the file (at least `bytes.len()`): counts are checked against it, and a
    /// [`GgufError::Truncated`] that ends within it ran past the prefix, not the file.
    len: u64,
}

type What<'w> = &'w dyn Fn() -> String;

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], len: u64, path: &'a Path) -> Self {
        debug_assert!(bytes.len() as u64 <= len);
        Self { bytes, pos: 0, path, len }
    }

    fn truncated(&self, what: What<'_>, needed: u64) -> GgufError {
        GgufError::Truncated { path: self.path.into(), what: what(), offset: self.pos as u64, needed, len: self.len }
    }

    fn format(&self, offset: usize, why: String) -> GgufError {
        GgufError::Format { path: self.path.into(), offset: offset as u64, why }
    }

    /// The bytes of the file after the current position.
    fn remaining(&self) -> u64 {
        self.len - self.pos as u64
    }

    fn take(&mut self, n: u64, what: What<'_>) -> Result<&'a [u8], GgufError> {
        // Past the bytes read is past the file when they are the whole file.
        if n > (self.bytes.len() - self.pos) as u64 {
            return Err(self.truncated(what, n));
        }
        let slice = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: What<'_>) -> Result<[u8; N], GgufError> {
        let slice = self.take(N as u64, what)?;
        let mut out = [0; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u32(&mut self, what: What<'_>) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: What<'_>) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Fails, before anything is allocated for them, when `count` items of at least `min_size`
    /// bytes each cannot fit in the rest of the file.
    fn check_count(&self, count: u64, min_size: u64, what: What<'_>) -> Result<(), GgufError> {
        match count.checked_mul(min_size) {
            Some(n) if n <= self.remaining() => Ok(()),
            n => Err(self.truncated(what, n.unwrap_or(u64::MAX))),
        }
    }

    fn string(&mut self, what: What<'_>) -> Result<String, GgufError> {
        let start = self.pos;
        let n = self.u64(&|| format!("the length of {}", what()))?;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| self.format(start, format!("{} is not valid UTF-8: {e}", what())))
    }

    /// A metadata value of type `type_id`, arrays nested at most [`MAX_ARRAY_DEPTH`] deep.
    fn value(&mut self, type_id: u32, depth: usize, what: What<'_>) -> Result<GgufValue, GgufError> {
        let start = self.pos;
        let Some(value_type) = GgufValueType::from_id(type_id) else {
            return Err(self.format(start, format!("{}: unknown metadata value type {type_id}", what())));
        };
        Ok(match value_type {
            GgufValueType::U8 => GgufValue::U8(u8::from_le_bytes(self.array(what)?)),
            GgufValueType::I8 => GgufValue::I8(i8::from_le_bytes(self.array(what)?)),
            GgufValueType::U16 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            GgufValueType::I16 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            GgufValueType::U32 => GgufValue::U32(u32::from_le_bytes(self.array(what)?)),
            GgufValueType::I32 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            GgufValueType::F32 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            GgufValueType::U64 => GgufValue::U64(u64::from_le_bytes(self.array(what)?)),
            GgufValueType::I64 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            GgufValueType::F64 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
            GgufValueType::Bool => match self.array::<1>(what)? {
                [0] => GgufValue::Bool(false),
                [1] => GgufValue::Bool(true),
                [b] => return Err(self.format(start, format!("{}: bool byte {b}, expected 0 or 1", what()))),
            },
            GgufValueType::String => GgufValue::String(self.string(what)?),
            GgufValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(
                        self.format(start, format!("{}: arrays nested more than {MAX_ARRAY_DEPTH} deep", what()))
                    );
                }
                let element_id = self.u32(&|| format!("the element type of {}", what()))?;
                let Some(element_type) = GgufValueType::from_id(element_id) else {
                    return Err(self.format(start, format!("{}: unknown array element type {element_id}", what())));
                };
                let count = self.u64(&|| format!("the length of {}", what()))?;
                self.check_count(count, element_type.min_size(), &|| format!("the {count} elements of {}", what()))?;
                let mut values = Vec::with_capacity(preallocated(count));
                for i in 0..count {
                    values.push(self.value(element_id, depth + 1, &|| format!("element {i} of {}", what()))?);
                }
                GgufValue::Array { element_type, values }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_round_trip_and_block_sizes_are_ggmls() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
        }
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 42, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "{id}");
        }
        let sizes: Vec<_> =
            [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::BF16]
                .map(|t| (t.name(), t.block_size(), t.block_bytes()))
                .into();
        assert_eq!(
            sizes,
            [
                ("Q4_0", 32, 18),
                ("Q4_1", 32, 20),
                ("Q8_0", 32, 34),
                ("Q4_K", 256, 144),
                ("Q6_K", 256, 210),
                ("BF16", 1, 2)
            ]
        );
        for (i, t) in GgufValueType::ALL.into_iter().enumerate() {
            assert_eq!((t.id(), GgufValueType::from_id(i as u32)), (i as u32, Some(t)));
        }
        assert_eq!(GgufValueType::from_id(13), None);
    }

    #[test]
    fn metadata_is_read_through_prefixes_of_any_size() {
        let mut w = GgufWriter::new();
        w.metadata("general.architecture", GgufValue::String("llama".into()))
            .metadata("llama.embedding_length", GgufValue::U32(16))
            .metadata(
                "tokens",
                GgufValue::Array {
                    element_type: GgufValueType::String,
                    values: (0..50).map(|i| GgufValue::String(format!("t{i}"))).collect(),
                },
            )
            .tensor("a", &[32], &[1.0; 32], GgmlType::F32)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        w.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let full = GgufFile::read(&path).unwrap().metadata().clone();
        for first in [0, 1, 7, 24, 100, 10_000] {
            assert_eq!(read_metadata_from(&path, first).unwrap(), full, "first {first}");
        }
        std::fs::write(&path, &bytes[..300]).unwrap();
        let expected = GgufFile::read(&path).unwrap_err().to_string();
        for first in [1, 7, 100, 10_000] {
            assert_eq!(read_metadata_from(&path, first).unwrap_err().to_string(), expected, "first {first}");
        }
    }
}
