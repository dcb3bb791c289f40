//! What every Hugging Face export writes the same way: safetensors files of f32 tensors with
//! `{"format": "pt"}` metadata, pretty JSON, SHA-256 digests, and a folder published whole
//! (written under a temporary name, each file synced, then renamed into place).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A tensor to write: its name, shape and row-major f32 values.
pub(crate) type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// A safetensors file of f32 tensors `(name, shape, values)`, in the order given, with
/// `{"format": "pt"}` metadata (transformers and accelerate refuse other formats).
pub(crate) fn safetensors_f32(tensors: &[NamedTensor]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({ "format": "pt" }));
    let mut offset = 0usize;
    for (name, shape, values) in tensors {
        let end = offset + 4 * values.len();
        header.insert(name.clone(), json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }));
        offset = end;
    }
    let mut header = serde_json::to_vec(&Value::Object(header)).expect("header serialises");
    // The data starts 8-byte aligned, as the safetensors library writes it.
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for (_, _, values) in tensors {
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    }
    out
}

/// `value` as pretty-printed JSON with a final newline.
pub(crate) fn pretty_json(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("JSON serialises");
    bytes.push(b'\n');
    bytes
}

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A file or folder that could not be written, synced or renamed.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    /// The file or folder.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

fn failure(path: &Path) -> impl FnOnce(std::io::Error) -> WriteFailure + '_ {
    move |source| WriteFailure { path: path.to_path_buf(), source }
}

/// Writes `bytes` to the new file `path` and syncs it ([`sorted_provenance::write_synced`]).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), WriteFailure> {
    sorted_provenance::write_synced(path, bytes).map_err(failure(path))
}

/// Moves the finished folder `tmp` to `out`, after syncing it. An earlier folder at `out` is
/// moved aside, not deleted, until the new one is in place: a kill in between leaves one of
/// them whole.
pub(crate) fn publish_folder(tmp: &Path, out: &Path) -> Result<(), WriteFailure> {
    sorted_provenance::sync_dir(tmp).map_err(failure(tmp))?;
    let aside = sorted_provenance::temp_sibling(out).with_extension("old");
    if out.exists() {
        std::fs::rename(out, &aside).map_err(failure(out))?;
    }
    std::fs::rename(tmp, out).map_err(failure(out))?;
    let _ = std::fs::remove_dir_all(&aside);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = sorted_provenance::sync_dir(parent);
    }
    Ok(())
}

/// Writes the folder `out` holding `files` (name, bytes): beside `out` under a temporary name,
/// each file synced, then renamed into place; an earlier folder at `out` is replaced. Nothing
/// is left behind on failure.
pub(crate) fn write_folder(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<(), WriteFailure> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failure(parent))?;
    }
    let tmp = sorted_provenance::temp_sibling(out);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(failure(&tmp))?;
    let written = files.iter().try_for_each(|(name, bytes)| write_synced(&tmp.join(name), bytes));
    let result = written.and_then(|()| publish_folder(&tmp, out));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}
