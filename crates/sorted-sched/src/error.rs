//! Typed errors of the scheduler crate.

use std::path::PathBuf;

use thiserror::Error;

/// An invalid sampler, optimizer or schedule configuration. Names the key and what was expected.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("`{key}`: expected {expected}, got {got}")]
pub struct ConfigError {
    /// The key path, e.g. `sampler.uniform.k`.
    pub key: String,
    /// What was expected.
    pub expected: String,
    /// What was given.
    pub got: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Self {
        Self { key: key.into(), expected: expected.into(), got: got.to_string() }
    }
}

/// A checkpoint that cannot be written or read.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// A file system operation failed.
    #[error("{action} `{path}`")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Burn could not record or load a record.
    #[error("{action} `{path}`")]
    Record {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: burn::record::RecorderError,
    },
    /// The checkpoint's state file is not valid.
    #[error("reading `{path}`: invalid checkpoint state")]
    State {
        /// The state file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// No checkpoint in the folder.
    #[error("no checkpoint in `{dir}` (expected `{dir}/checkpoint/state.json`)")]
    Missing {
        /// The folder searched.
        dir: PathBuf,
    },
    /// The optimizer in the checkpoint differs from the configured one.
    #[error("checkpoint `{path}` holds a `{found}` optimizer state, the config asks for `{expected}`")]
    OptimizerKind {
        /// The checkpoint.
        path: PathBuf,
        /// The configured optimizer.
        expected: String,
        /// The saved optimizer.
        found: String,
    },
}
