//! Atomic file writes: a synced temporary file in the same folder, then a rename.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: readers see the old file or the complete new one, never
/// a partial write. The temporary file ([`temp_sibling`], in the same folder so the rename stays
/// on one file system) is synced before the rename and removed on failure.
///
/// # Errors
/// The I/O error of creating, writing, syncing or renaming the temporary file.
///
/// # Example
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("out.txt");
/// sorted_provenance::write_atomic(&path, b"first")?;
/// sorted_provenance::write_atomic(&path, b"second")?;
/// assert_eq!(std::fs::read(&path)?, b"second");
/// assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
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

/// A hidden temporary path next to `path`, unique to this process: `.<name>.tmp-<pid>` in the
/// same folder, so renaming it onto `path` stays on one file system.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Creates `path` (which must not exist), writes `bytes` and flushes them to the disk. For files
/// inside a folder that is itself renamed into place once complete.
///
/// # Errors
/// The I/O error of creating, writing or syncing the file (e.g. "No space left on device"), or
/// `AlreadyExists`.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Flushes a folder's entries (new names, renames) to the disk. A no-op where folders cannot be
/// opened as files (Windows).
///
/// # Errors
/// The I/O error of syncing the folder.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir) {
        Ok(handle) => handle.sync_all().or_else(|e| if cfg!(windows) { Ok(()) } else { Err(e) }),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_is_a_hidden_sibling() {
        let tmp = temp_sibling(Path::new("runs/a/manifest.json"));
        assert_eq!(tmp.parent(), Some(Path::new("runs/a")));
        assert_eq!(tmp.file_name().unwrap().to_string_lossy(), format!(".manifest.json.tmp-{}", std::process::id()));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, b"old").unwrap();
        // A folder in the way of the rename: the write fails after the temporary file exists.
        let blocked = dir.path().join("sub");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn synced_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        write_synced(&path, b"1").unwrap();
        assert_eq!(write_synced(&path, b"2").unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"1");
        sync_dir(dir.path()).unwrap();
    }
}
