//! A GGUF file's metadata: its key-value entries in file order, with typed accessors that name
//! the file and the key in errors. Read with the whole file ([`GgufFile::read`]) or alone
//! ([`GgufFile::read_metadata`], for the sizes of a model file of hundreds of megabytes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[cfg(doc)]
use super::GgufFile;
use super::{GgufError, GgufValue, GgufValueType};

/// The metadata of a GGUF file.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufMetadata {
    path: PathBuf,
    version: u32,
    entries: Vec<(String, GgufValue)>,
    index: HashMap<String, usize>,
}

impl GgufMetadata {
    /// The entries of the file `path` (GGUF `version`), with `index` from key to position.
    pub(super) fn new(
        path: PathBuf,
        version: u32,
        entries: Vec<(String, GgufValue)>,
        index: HashMap<String, usize>,
    ) -> Self {
        Self { path, version, entries, index }
    }

    /// The file the metadata came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Every entry, in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &GgufValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The metadata value of `key`, if the file has it.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// The value of `key` or a [`GgufError::MissingKey`] naming the expected type.
    fn require(&self, key: &str, expected: &'static str) -> Result<&GgufValue, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey { path: self.path.clone(), key: key.into(), expected })
    }

    fn key_type(&self, key: &str, expected: &'static str, got: String) -> GgufError {
        GgufError::KeyType { path: self.path.clone(), key: key.into(), expected, got }
    }

    /// The value of `key` as a `u32`: a value of any integer type is accepted if it fits
    /// (converters differ in the integer types they write).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::KeyType`] for another type or a value out of
    /// range.
    pub fn u32(&self, key: &str) -> Result<u32, GgufError> {
        let value = self.require(key, "u32")?;
        match value.as_i128() {
            Some(v) => u32::try_from(v).map_err(|_| self.key_type(key, "u32", format!("{} {v}", value.describe()))),
            None => Err(self.key_type(key, "u32", value.describe())),
        }
    }

    /// The value of `key` as an `f32` (an `f64` value is rounded to `f32`).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::KeyType`] for another type.
    pub fn f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.require(key, "f32")? {
            GgufValue::F32(v) => Ok(*v),
            GgufValue::F64(v) => Ok(*v as f32),
            other => Err(self.key_type(key, "f32", other.describe())),
        }
    }

    /// The value of `key` as a string.
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::KeyType`] for another type.
    pub fn str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key, "string")? {
            GgufValue::String(s) => Ok(s),
            other => Err(self.key_type(key, "string", other.describe())),
        }
    }

    /// The value of `key` as an array of strings (`tokenizer.ggml.tokens`).
    ///
    /// # Errors
    /// [`GgufError::MissingKey`], or [`GgufError::KeyType`] for another type.
    pub fn string_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        const EXPECTED: &str = "array of string";
        match self.require(key, EXPECTED)? {
            GgufValue::Array { element_type: GgufValueType::String, values } => {
                Ok(values.iter().filter_map(GgufValue::as_str).collect())
            }
            other => Err(self.key_type(key, EXPECTED, other.describe())),
        }
    }
}

impl<'a> IntoIterator for &'a GgufMetadata {
    type Item = (&'a str, &'a GgufValue);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (String, GgufValue)>, fn(&'a (String, GgufValue)) -> Self::Item>;

    /// Every entry, in file order ([`GgufMetadata::iter`]).
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}
