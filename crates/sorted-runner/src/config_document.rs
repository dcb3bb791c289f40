//! An experiment file parsed once: its `[model.<kind>]` table picks the experiment type (image,
//! `bert` text, `llama` language model), and the same parse is then read as that type, with the
//! file's line and column in every error.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::config_error::ConfigError;

/// A parsed experiment file, not yet read as a type.
#[derive(Debug)]
pub struct ConfigDocument {
    doc: toml_edit::ImDocument<String>,
    path: PathBuf,
}

impl ConfigDocument {
    /// Reads and parses a config file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or, for TOML syntax, [`ConfigError::Parse`]; both name the file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for TOML syntax, naming the file, line and column;
    /// [`ConfigError::Invalid`] for a `[model]` with more than one kind.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let doc = toml_edit::ImDocument::parse(text.to_string())
            .map_err(|e| ConfigError::Parse { path: path.into(), source: e.into() })?;
        if let Some(model) = doc.get("model").and_then(toml_edit::Item::as_table_like)
            && model.len() > 1
        {
            let kinds: Vec<String> = model.iter().map(|(kind, _)| format!("[model.{kind}]")).collect();
            return Err(ConfigError::Invalid {
                path: path.into(),
                key: "model".into(),
                expected: "one model kind".into(),
                got: kinds.join(" and "),
            });
        }
        Ok(Self { doc, path: path.into() })
    }

    /// Where the text came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `[model.<kind>]` the file names (`None` when it names none), which picks the
    /// experiment type before the file is read as that type.
    pub fn model_kind(&self) -> Option<&str> {
        let model = self.doc.get("model")?.as_table_like()?;
        model.iter().next().map(|(kind, _)| kind)
    }

    /// Reads the parsed file as `T`.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for an unknown (misspelt) key, a missing key or a wrong type,
    /// naming the file, line, column and key.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, ConfigError> {
        let Self { doc, path } = self;
        T::deserialize(toml_edit::de::Deserializer::from(doc)).map_err(|source| ConfigError::Parse { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_kind_is_read_from_a_table_or_an_inline_table() {
        let kind =
            |text: &str| ConfigDocument::parse(text, Path::new("x.toml")).unwrap().model_kind().map(String::from);
        assert_eq!(kind("[model.bert]\nlayers = 2\n"), Some("bert".into()));
        assert_eq!(kind("model = { llama = { gguf = \"m.gguf\" } }\n"), Some("llama".into()));
        assert_eq!(kind("name = \"a\"\n"), None);
        let two = ConfigDocument::parse("[model.mlp]\n[model.llama]\n", Path::new("two.toml")).unwrap_err();
        assert_eq!(
            two.to_string(),
            "invalid config `two.toml`: `model`: expected one model kind, got [model.mlp] and [model.llama]"
        );
    }

    #[test]
    fn a_wrong_key_names_the_file_line_and_key() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Config {
            name: String,
        }
        let doc = ConfigDocument::parse("name = \"a\"\nnmae = 1\n", Path::new("c.toml")).unwrap();
        let message = doc.deserialize::<Config>().unwrap_err().to_string();
        assert!(message.contains("`c.toml`") && message.contains("line 2") && message.contains("nmae"), "{message}");
        let syntax = ConfigDocument::parse("name = \n", Path::new("c.toml")).unwrap_err().to_string();
        assert!(syntax.contains("`c.toml`") && syntax.contains("line 1"), "{syntax}");
    }
}
