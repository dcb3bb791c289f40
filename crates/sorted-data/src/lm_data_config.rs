//! `[data]` of a language-model experiment (sorted fine-tuning of a decoder): a text corpus,
//! tokenized once and cut into windows of `seq_len` tokens, with a held-out text for
//! evaluation. Any UTF-8 text file works; the Shakespeare folder of `cargo xtask data
//! shakespeare` is one named source (its training and held-out works).
//!
//! ```
//! use sorted_data::{ByteLevelBpe, LmDataConfig};
//!
//! let dir = std::env::temp_dir().join(format!("lm-data-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("corpus.txt"), "to be or not to be, that is the question. ".repeat(40))?;
//! let config: LmDataConfig = toml::from_str(&format!(
//!     "train = '{}'\nseq_len = 16\nbatch_size = 2",
//!     dir.join("corpus.txt").display()
//! ))?;
//! // A byte-level tokenizer without merges: one token per byte.
//! let tokens: Vec<String> = (0..=255u8).map(|b| sorted_data::gpt2_byte_char(b).to_string()).collect();
//! let bpe = ByteLevelBpe::new(tokens, &[] as &[&str], "bytes")?;
//! let data = config.load(&bpe)?;
//! // The last tenth of the text is held out for evaluation.
//! assert_eq!((data.train.seq_len(), data.eval.seq_len()), (16, 16));
//! assert!(data.train.len() > 8 * data.eval.len() && !data.eval.is_empty());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{ByteLevelBpe, DataError, LmChunks, SHAKESPEARE_HELDOUT_WORKS, Shakespeare};

/// `[data]` of a language-model experiment. Give `shakespeare` or `train`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmDataConfig {
    /// The Shakespeare folder (`cargo xtask data shakespeare` → `data/shakespeare`): trains on
    /// its training works, evaluates on its held-out works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shakespeare: Option<String>,
    /// A UTF-8 text file to train on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<String>,
    /// A UTF-8 text file to evaluate on (default: the last `held_out` share of `train`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<String>,
    /// The share of `train` held out for evaluation when `eval` is not given.
    #[serde(default = "default_held_out")]
    pub held_out: f64,
    /// Tokens per training window (each window predicts its next `seq_len` tokens).
    #[serde(default = "default_seq_len")]
    pub seq_len: usize,
    /// Windows per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Evaluation tokens at most (the first ones of the evaluation text).
    #[serde(default = "default_eval_tokens")]
    pub eval_tokens: usize,
}

/// The values an empty `[data]` gets: no text yet ([`LmDataConfig::validate`] asks for one).
impl Default for LmDataConfig {
    fn default() -> Self {
        Self {
            shakespeare: None,
            train: None,
            eval: None,
            held_out: default_held_out(),
            seq_len: default_seq_len(),
            batch_size: default_batch_size(),
            eval_tokens: default_eval_tokens(),
        }
    }
}

fn default_held_out() -> f64 {
    0.1
}
fn default_seq_len() -> usize {
    128
}
fn default_batch_size() -> usize {
    4
}
fn default_eval_tokens() -> usize {
    4096
}

/// The texts an [`LmDataConfig`] names, read but not tokenized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmText {
    /// The training text.
    pub train: String,
    /// The evaluation text.
    pub eval: String,
    /// Where they came from, for reports.
    pub description: String,
}

/// Tokenized windows of an [`LmDataConfig`].
#[derive(Clone, Debug)]
pub struct LmData {
    /// Training windows.
    pub train: LmChunks,
    /// Evaluation windows (at most `eval_tokens` targets).
    pub eval: LmChunks,
    /// Where the text came from, for reports.
    pub description: String,
}

impl LmDataConfig {
    /// Checks the values that need no file: exactly one source, `held_out` in (0, 1), positive
    /// sizes.
    ///
    /// # Errors
    /// [`DataError::Config`] naming the key under `data.`.
    pub fn validate(&self) -> Result<(), DataError> {
        let invalid = |key: &str, expected: &str, got: String| DataError::Config {
            key: key.into(),
            expected: expected.into(),
            got,
        };
        match (&self.shakespeare, &self.train) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(invalid(
                    "data",
                    "exactly one of `shakespeare` (a folder) and `train` (a text file)",
                    format!("shakespeare = {:?}, train = {:?}", self.shakespeare, self.train),
                ));
            }
        }
        if self.shakespeare.is_some() && self.eval.is_some() {
            return Err(invalid(
                "data.eval",
                "no `eval` with `shakespeare` (its held-out works are evaluated)",
                format!("{:?}", self.eval),
            ));
        }
        if !(self.held_out > 0.0 && self.held_out < 1.0) {
            return Err(invalid("data.held_out", "a share in (0, 1)", self.held_out.to_string()));
        }
        for (key, value) in [
            ("data.seq_len", self.seq_len),
            ("data.batch_size", self.batch_size),
            ("data.eval_tokens", self.eval_tokens),
        ] {
            if value == 0 {
                return Err(invalid(key, "a value >= 1", "0".into()));
            }
        }
        Ok(())
    }

    /// Reads the texts: Shakespeare's training and held-out works, or `train` and `eval`, or
    /// `train` split at a line break near `1 - held_out` of its length.
    ///
    /// # Errors
    /// An unreadable or non-UTF-8 file, named; a text too short to split.
    pub fn read_text(&self) -> Result<LmText, DataError> {
        self.validate()?;
        if let Some(dir) = &self.shakespeare {
            let corpus = Shakespeare::from_dir(Path::new(dir)).map_err(|e| DataError::Load {
                dataset: "Shakespeare",
                source_dir: dir.into(),
                hint: "`cargo xtask data shakespeare` fetches it".into(),
                source: Box::new(e),
            })?;
            return Ok(LmText {
                train: corpus.train_text(),
                eval: corpus.heldout_text(),
                description: format!(
                    "Shakespeare `{dir}` (training works; held out: {})",
                    SHAKESPEARE_HELDOUT_WORKS.join(", ")
                ),
            });
        }
        let train_path = self.train.as_deref().expect("validated: one source");
        let train = read_utf8(Path::new(train_path))?;
        if let Some(eval_path) = &self.eval {
            let eval = read_utf8(Path::new(eval_path))?;
            return Ok(LmText { train, eval, description: format!("`{train_path}` (evaluated on `{eval_path}`)") });
        }
        let at = split_point(&train, self.held_out);
        if at == 0 || at == train.len() {
            return Err(DataError::Config {
                key: "data.train".into(),
                expected: "a text long enough to hold out `data.held_out` of it".into(),
                got: format!("`{train_path}`: {} bytes", train.len()),
            });
        }
        let (head, tail) = train.split_at(at);
        Ok(LmText {
            eval: tail.to_string(),
            train: head.to_string(),
            description: format!("`{train_path}` (the last {:.0}% held out)", 100.0 * self.held_out),
        })
    }

    /// Reads and tokenizes the texts with `bpe` and cuts them into windows.
    ///
    /// # Errors
    /// As [`LmDataConfig::read_text`]; fewer training windows than `batch_size`, or no
    /// evaluation window, naming the key.
    pub fn load(&self, bpe: &ByteLevelBpe) -> Result<LmData, DataError> {
        let text = self.read_text()?;
        let train = LmChunks::new(bpe.encode(&text.train), self.seq_len);
        let mut eval_ids = bpe.encode(&text.eval);
        eval_ids.truncate(self.eval_tokens + 1);
        let eval = LmChunks::new(eval_ids, self.seq_len.min(self.eval_tokens));
        if train.len() < self.batch_size {
            return Err(DataError::Config {
                key: "data.batch_size".into(),
                expected: format!("at most the {} training windows of {} tokens", train.len(), self.seq_len),
                got: self.batch_size.to_string(),
            });
        }
        if eval.is_empty() {
            return Err(DataError::Config {
                key: "data.eval_tokens".into(),
                expected: "an evaluation text of at least 2 tokens".into(),
                got: format!("{} tokens", eval.ids().len()),
            });
        }
        Ok(LmData { train, eval, description: text.description })
    }
}

/// The byte offset where the last `share` of `text` begins, moved to just after the nearest
/// earlier line break when there is one (always a character boundary).
fn split_point(text: &str, share: f64) -> usize {
    let mut at = ((text.len() as f64) * (1.0 - share)) as usize;
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    match text[..at].rfind('\n') {
        Some(nl) if nl + 1 > at / 2 => nl + 1,
        _ => at,
    }
}

fn read_utf8(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: PathBuf::from(path), source })?;
    Ok(crate::csv::utf8(&bytes, path)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::{LmDataConfig, split_point};

    fn config(extra: &str) -> Result<LmDataConfig, toml::de::Error> {
        toml::from_str(extra)
    }

    #[test]
    fn the_split_lands_after_a_line_break_on_a_character_boundary() {
        let text = "first line\nsecond line\nthird é line\n";
        let at = split_point(text, 0.3);
        assert_eq!(&text[..at], "first line\nsecond line\n");
        let no_breaks = "ééééééééé";
        let at = split_point(no_breaks, 0.5);
        assert!(no_breaks.is_char_boundary(at) && at > 0);
    }

    #[test]
    fn bad_data_sections_are_refused_naming_the_key() {
        let err = |text: &str| config(text).unwrap().validate().unwrap_err().to_string();
        assert!(err("seq_len = 8").contains("`data`"), "no source");
        assert!(err("train = 'a.txt'\nshakespeare = 'd'").contains("`data`"));
        assert!(err("shakespeare = 'd'\neval = 'e.txt'").contains("data.eval"));
        assert!(err("train = 'a.txt'\nheld_out = 1.0").contains("data.held_out"));
        assert!(err("train = 'a.txt'\nseq_len = 0").contains("data.seq_len"));
        assert!(err("train = 'a.txt'\nbatch_size = 0").contains("data.batch_size"));
        assert!(config("train = 'a.txt'\nwindow = 3").unwrap_err().to_string().contains("window"));
        let missing = config("train = '/no/such/corpus.txt'").unwrap().read_text().unwrap_err().to_string();
        assert!(missing.contains("/no/such/corpus.txt"), "{missing}");
    }
}
