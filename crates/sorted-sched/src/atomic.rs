//! Atomic file writes: a temporary file in the same folder, then a rename.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: readers see the old file or the complete new one, never a
/// partial write. The temporary file lives in the same folder (so the rename stays on one file
/// system) and is removed on failure.
///
/// # Errors
/// The I/O error of creating, writing, syncing or renaming the temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A hidden temporary path next to `path`, unique to this process.
pub(crate) fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Creates `path` (which must not exist), writes `bytes` and flushes them to the disk. For files
/// inside a folder that is itself renamed into place once complete.
///
/// # Errors
/// The I/O error of creating, writing or syncing the file (e.g. "No space left on device").
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes a folder's entries (new names, renames) to the disk. A no-op where folders cannot be
/// opened as files (Windows).
///
/// # Errors
/// The I/O error of syncing the folder.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir) {
        Ok(handle) => handle.sync_all().or_else(|e| if cfg!(windows) { Ok(()) } else { Err(e) }),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(e),
    }
}
