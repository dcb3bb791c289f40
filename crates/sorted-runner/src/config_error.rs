//! A config that cannot be read, parsed or validated, for every experiment kind; the error
//! always names the file (and the key, line or value where there is one).

use std::path::{Path, PathBuf};

/// A config that cannot be read, parsed or validated. Always names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config `{path}`")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown (misspelt) key, a missing key or a wrong type; the message
    /// carries line, column and key.
    #[error("parsing config `{path}`: {source}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The TOML error.
        source: toml_edit::de::Error,
    },
    /// An invalid `[space]`.
    #[error("invalid config `{path}`: [space] {source}")]
    Space {
        /// The config file.
        path: PathBuf,
        /// What is wrong, naming the key.
        source: sorted_nn::SpecError,
    },
    /// A value out of range.
    #[error("invalid config `{path}`: `{key}`: expected {expected}, got {got}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The key path.
        key: String,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
}

impl ConfigError {
    /// A builder of [`ConfigError::Invalid`] for the file `path`: `(key, expected, got)`.
    pub(crate) fn invalid_in(path: &Path) -> impl Fn(String, String, String) -> ConfigError + '_ {
        move |key, expected, got| ConfigError::Invalid { path: path.into(), key, expected, got }
    }
}
