//! A checkpoint's manifest: the size and SHA-256 of every file it holds, so that a damaged or
//! edited file is refused when the checkpoint is loaded instead of giving silently wrong weights.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::CheckpointError;

/// The manifest's file name inside a checkpoint generation.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The format tag written into every manifest.
pub const MANIFEST_FORMAT: &str = "sortednet-checkpoint/1";

/// Size and digest of one file of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

impl FileDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self { bytes: bytes.len() as u64, sha256: hex(&Sha256::digest(bytes)) }
    }
}

/// `manifest.json`: what a complete checkpoint generation holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointManifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// The optimizer steps the checkpoint has completed.
    pub step: u64,
    /// Every file of the generation (but the manifest) by name.
    pub files: BTreeMap<String, FileDigest>,
}

impl CheckpointManifest {
    /// Reads and parses `dir/manifest.json`.
    ///
    /// # Errors
    /// [`CheckpointError::Damaged`] when the file is missing, unreadable or not a manifest of
    /// this format.
    pub fn read(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| damaged(&path, format!("unreadable ({e})")))?;
        let manifest: Self =
            serde_json::from_slice(&bytes).map_err(|e| damaged(&path, format!("not a checkpoint manifest ({e})")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(damaged(&path, format!("format `{}`, expected `{MANIFEST_FORMAT}`", manifest.format)));
        }
        for name in manifest.files.keys() {
            if name.is_empty() || name.contains(['/', '\\']) || name == ".." || name == "." || name == MANIFEST_FILE {
                return Err(damaged(&path, format!("lists the file name `{name}`, which is not allowed")));
            }
        }
        Ok(manifest)
    }

    /// Checks every listed file of `dir` against its size and digest, streaming (no file is
    /// held in memory).
    ///
    /// # Errors
    /// [`CheckpointError::Damaged`] naming the first file that is missing, of another size or
    /// another digest (with `previous: None`; the caller knows the other generations).
    pub fn verify(&self, dir: &Path) -> Result<(), CheckpointError> {
        for (name, want) in &self.files {
            let path = dir.join(name);
            let got = digest_file(&path).map_err(|e| damaged(&path, format!("unreadable ({e})")))?;
            check_digest(&path, want, &got)?;
        }
        Ok(())
    }

    /// Reads the listed file `name` of `dir` whole and checks it against the manifest.
    ///
    /// # Errors
    /// [`CheckpointError::Damaged`] when the file is not listed, missing or differs.
    pub fn read_verified(&self, dir: &Path, name: &str) -> Result<Vec<u8>, CheckpointError> {
        let path = dir.join(name);
        let want = self.files.get(name).ok_or_else(|| damaged(&path, "not listed in the manifest".into()))?;
        let bytes = std::fs::read(&path).map_err(|e| damaged(&path, format!("unreadable ({e})")))?;
        check_digest(&path, want, &FileDigest::of(&bytes))?;
        Ok(bytes)
    }
}

fn check_digest(path: &Path, want: &FileDigest, got: &FileDigest) -> Result<(), CheckpointError> {
    if got.bytes != want.bytes {
        return Err(damaged(path, format!("{} bytes, the manifest says {}", got.bytes, want.bytes)));
    }
    if got.sha256 != want.sha256 {
        return Err(damaged(path, format!("SHA-256 {}, the manifest says {}", got.sha256, want.sha256)));
    }
    Ok(())
}

fn damaged(path: &Path, reason: String) -> CheckpointError {
    CheckpointError::Damaged { file: path.to_path_buf(), reason, previous: None }
}

/// The size and SHA-256 of a file, read in blocks.
///
/// # Errors
/// The I/O error of opening or reading it.
pub fn digest_file(path: &Path) -> std::io::Result<FileDigest> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok(FileDigest { bytes: total, sha256: hex(&hasher.finalize()) })
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The generation folders' names: `step-000000300`.
pub(crate) fn generation_name(step: u64) -> String {
    format!("step-{step:09}")
}

/// The step of a generation folder name, `None` for anything else (temporary folders, files).
pub(crate) fn generation_step(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_names_round_trip_and_reject_others() {
        assert_eq!(generation_name(300), "step-000000300");
        assert_eq!(generation_step("step-000000300"), Some(300));
        assert_eq!(generation_step(".step-000000300.tmp-12"), None);
        assert_eq!(generation_step("step-"), None);
        assert_eq!(generation_step("step-12a"), None);
        assert_eq!(generation_step("step-99999999999999999999999"), None);
    }

    #[test]
    fn hex_matches_the_known_digest_of_abc() {
        assert_eq!(FileDigest::of(b"abc").sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
