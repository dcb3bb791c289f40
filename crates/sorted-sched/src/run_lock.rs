//! One writer per run folder: an exclusive lock on `run_dir/run.lock`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::CheckpointError;

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = "run.lock";

/// An exclusive, advisory lock on a run folder, held until dropped.
///
/// It is the operating system's file lock (`flock` on Unix), so it is released when the process
/// ends in any way, `kill -9` included: a lock file left behind by a dead process is never
/// "stale". The file holds the holder's pid, for the error message of the next process.
#[derive(Debug)]
pub struct RunLock {
    file: std::fs::File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `run_dir` (which must exist) without waiting.
    ///
    /// # Errors
    /// [`CheckpointError::Locked`] naming the holder's pid when another process (or another
    /// lock in this one) holds it; [`CheckpointError::Io`] when the file cannot be opened.
    pub fn acquire(run_dir: &Path) -> Result<Self, CheckpointError> {
        let path = run_dir.join(LOCK_FILE);
        let io = |action, source| CheckpointError::Io { action, path: path.clone(), source };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("opening", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(CheckpointError::Locked { dir: run_dir.to_path_buf(), holder: text.trim().parse().ok() });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking", e)),
        }
        let pid = std::process::id().to_string();
        file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0))).map_err(|e| io("writing", e))?;
        file.write_all(pid.as_bytes()).map_err(|e| io("writing", e))?;
        Ok(Self { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("in use") && message.contains(&std::process::id().to_string()), "{message}");
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
