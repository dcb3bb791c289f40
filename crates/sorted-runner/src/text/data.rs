//! Sentences of a text experiment: read, split and tokenized once, before training.

use anyhow::Context;
use sorted_data::{RtSentiment, TextDataset, TokenizedDataset, WordPieceTokenizer};

use super::config::{EvalSplit, TextExperiment};

/// The training and evaluation sets of a text experiment.
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

impl TextData {
    /// Loads the vocabulary and the Rotten Tomatoes splits the config names, and tokenizes them.
    ///
    /// # Errors
    /// A vocabulary or data file that cannot be read or parsed (the error names it).
    pub fn load(exp: &TextExperiment) -> anyhow::Result<Self> {
        let cfg = &exp.config.data;
        let vocab = exp.vocab_path();
        let tokenizer = WordPieceTokenizer::from_vocab_file(&vocab)
            .with_context(|| format!("loading the vocabulary of {}", exp.source.display()))?;
        let corpus = if cfg.source == "embedded" {
            RtSentiment::embedded()?
        } else {
            RtSentiment::from_dir(std::path::Path::new(&cfg.source))
                .with_context(|| format!("loading `data.source` of {}", exp.source.display()))?
        };
        let (eval, eval_split_name) = match cfg.eval_split {
            EvalSplit::Dev => (&corpus.dev, "dev"),
            EvalSplit::Test => (&corpus.test, "test"),
        };
        let tokenize = |set: &TextDataset, limit: usize| {
            let n = if limit == 0 { set.len() } else { set.len().min(limit) };
            let head: Vec<usize> = (0..n).collect();
            TokenizedDataset::new(&tokenizer, &set.select(&head), cfg.max_len)
        };
        let train = tokenize(&corpus.train, cfg.train_limit);
        let eval = tokenize(eval, cfg.eval_limit);
        anyhow::ensure!(
            !train.is_empty() && !eval.is_empty(),
            "`{}`: no sentences to train on ({}) or to evaluate ({})",
            exp.source.display(),
            train.len(),
            eval.len()
        );
        anyhow::ensure!(
            cfg.batch_size <= train.len(),
            "`{}`: data.batch_size = {} is larger than the {} training sentences",
            exp.source.display(),
            cfg.batch_size,
            train.len()
        );
        Ok(Self { train, eval, eval_split_name, vocab_size: tokenizer.vocab_size() })
    }
}
