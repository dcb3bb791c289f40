//! `[data]` of a text-classification experiment: the Rotten Tomatoes sentences (embedded slice
//! or the full corpus), which split is evaluated, and the limits; loading tokenizes them once
//! with a WordPiece vocabulary.
//!
//! ```
//! use sorted_data::TextDataConfig;
//!
//! let config: TextDataConfig = toml::from_str("batch_size = 16\ntrain_limit = 64\neval_limit = 40")?;
//! let vocab = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vocab-tiny.txt");
//! let data = config.load(&vocab)?; // the embedded slice
//! assert_eq!((data.train.len(), data.eval.len(), data.eval_split_name), (64, 40, "test"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{DataError, RtSentiment, TextDataset, TokenizedDataset, WordPieceTokenizer};

#[cfg(feature = "embedded")]
fn embedded() -> Result<RtSentiment, DataError> {
    RtSentiment::embedded()
}

#[cfg(not(feature = "embedded"))]
fn embedded() -> Result<RtSentiment, DataError> {
    Err(DataError::Config {
        key: "data.source".into(),
        expected: "a folder (this build of sorted-data has no embedded subset)".into(),
        got: "\"embedded\"".into(),
    })
}

/// `[data]` of a text experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextDataConfig {
    /// `"embedded"` (the committed Rotten Tomatoes slice) or the folder of
    /// `rotten_tomatoes_corpus_full.csv` (`cargo xtask data rt-sentiment` → `data/rt-sentiment`).
    #[serde(default = "default_source")]
    pub source: String,
    /// Which split is evaluated: `dev` or `test`.
    #[serde(default)]
    pub eval_split: EvalSplit,
    /// Tokens per sentence at most, `[CLS]` and `[SEP]` included (longer ones are truncated).
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Training batch size (sentences).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Use only the first `train_limit` training sentences (0 = all).
    #[serde(default)]
    pub train_limit: usize,
    /// Use only the first `eval_limit` evaluation sentences (0 = all).
    #[serde(default)]
    pub eval_limit: usize,
}

/// The values an empty `[data]` gets: the embedded Rotten Tomatoes slice.
impl Default for TextDataConfig {
    fn default() -> Self {
        Self {
            source: default_source(),
            eval_split: EvalSplit::default(),
            max_len: default_max_len(),
            batch_size: default_batch_size(),
            train_limit: 0,
            eval_limit: 0,
        }
    }
}

/// The evaluated split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    /// The development split (for tuning).
    Dev,
    /// The test split (for reporting).
    #[default]
    Test,
}

fn default_source() -> String {
    "embedded".into()
}
fn default_max_len() -> usize {
    64
}
fn default_batch_size() -> usize {
    32
}

/// The training and evaluation sentences of a text experiment, tokenized.
#[derive(Clone, Debug)]
pub struct TextData {
    /// Training sentences.
    pub train: TokenizedDataset,
    /// Evaluated sentences (`data.eval_split`).
    pub eval: TokenizedDataset,
    /// `dev` or `test`.
    pub eval_split_name: &'static str,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
}

impl TextDataConfig {
    /// Loads the vocabulary and the splits the config names, and tokenizes them.
    ///
    /// # Errors
    /// A vocabulary or data file that cannot be read or parsed (named); an empty split or a
    /// batch larger than the training sentences ([`DataError::Config`] naming the key).
    pub fn load(&self, vocab: &Path) -> Result<TextData, DataError> {
        let tokenizer = WordPieceTokenizer::from_vocab_file(vocab)?;
        let corpus = if self.source == "embedded" {
            embedded()?
        } else {
            RtSentiment::from_dir(Path::new(&self.source)).map_err(|e| DataError::Load {
                dataset: "Rotten Tomatoes",
                source_dir: self.source.clone(),
                hint: "`cargo xtask data rt-sentiment` fetches it".into(),
                source: Box::new(e),
            })?
        };
        let (eval, eval_split_name) = match self.eval_split {
            EvalSplit::Dev => (&corpus.dev, "dev"),
            EvalSplit::Test => (&corpus.test, "test"),
        };
        let tokenize = |set: &TextDataset, limit: usize| {
            let n = if limit == 0 { set.len() } else { set.len().min(limit) };
            let head: Vec<usize> = (0..n).collect();
            TokenizedDataset::new(&tokenizer, &set.select(&head), self.max_len)
        };
        let train = tokenize(&corpus.train, self.train_limit);
        let eval = tokenize(eval, self.eval_limit);
        if train.is_empty() || eval.is_empty() {
            return Err(DataError::Config {
                key: "data".into(),
                expected: "sentences to train on and to evaluate".into(),
                got: format!("{} training, {} evaluation sentences", train.len(), eval.len()),
            });
        }
        if self.batch_size > train.len() {
            return Err(DataError::Config {
                key: "data.batch_size".into(),
                expected: format!("at most the {} training sentences", train.len()),
                got: self.batch_size.to_string(),
            });
        }
        Ok(TextData { train, eval, eval_split_name, vocab_size: tokenizer.vocab_size() })
    }
}
