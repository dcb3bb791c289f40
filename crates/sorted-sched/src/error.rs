//! Typed errors of the scheduler crate.

use std::path::PathBuf;

use sorted_nn::ShapeMismatch;
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
    /// A file of a checkpoint is missing, unreadable or differs from its manifest.
    #[error("checkpoint file `{file}` is damaged: {reason}{}", fallback_hint(file, previous.as_deref()))]
    Damaged {
        /// The damaged file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// An older generation of the same run that verifies, if any.
        previous: Option<PathBuf>,
    },
    /// The weights do not fit the model built from the config.
    #[error("`{path}`: {mismatch}")]
    Shape {
        /// The model file.
        path: PathBuf,
        /// The first parameter of another shape: its path, the shape the config gives and the
        /// shape in the file. Not a `#[source]`: the message above already holds its text.
        mismatch: ShapeMismatch,
    },
    /// The weights to save hold NaN or infinity (training diverged).
    #[error("the weights hold NaN or infinity at step {step} (parameter `{param}`): not saved as a checkpoint")]
    NonFinite {
        /// The step the weights are from.
        step: u64,
        /// The first parameter found with a non-finite value.
        param: String,
    },
    /// Another process holds the run folder.
    #[error("the run folder `{dir}` is in use by another process{}", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The run folder.
        dir: PathBuf,
        /// The holder's process id, as it wrote it into the lock file.
        holder: Option<u32>,
    },
    /// No checkpoint in the folder.
    #[error("no checkpoint in `{dir}` (expected `{dir}/checkpoint/step-*/`)")]
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

fn fallback_hint(file: &std::path::Path, previous: Option<&std::path::Path>) -> String {
    match (previous, file.parent()) {
        (Some(previous), Some(generation)) => format!(
            "; the older checkpoint `{}` is intact: move `{}` out of the checkpoint folder to use it",
            previous.display(),
            generation.display()
        ),
        _ => String::new(),
    }
}
