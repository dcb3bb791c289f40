//! Provenance every report carries and every command shares: the run context (device, command
//! line, commit), the machine, time stamps and run folder names, atomic file writes. The parts
//! the library crates and `xtask` share live in `sorted-provenance`, re-exported here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sorted_provenance::write_atomic;
pub use sorted_provenance::{command_line, git_commit, machine, utc_stamp};

/// Context shared by the commands.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The device's name for reports.
    pub device_name: String,
    /// No progress bars or tables.
    pub quiet: bool,
    /// The command line, for reports.
    pub command: String,
    /// The commit the binary was started from (read once at start: a long run's reports must
    /// not name a commit made while it ran).
    pub commit: String,
}

/// A new folder `runs/<name>-<UTC time>` (with `-1`, `-2`, ... if it exists).
pub fn new_run_dir(name: &str) -> PathBuf {
    let base = PathBuf::from("runs").join(format!("{name}-{}", utc_stamp()));
    let mut dir = base.clone();
    let mut i = 1;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{i}", base.display()));
        i += 1;
    }
    dir
}

/// Writes one file atomically, naming it on failure.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, bytes).with_context(|| format!("writing `{}`", path.display()))
}
