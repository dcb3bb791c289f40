//! Texts turned into token ids once, before training.

use crate::{TextDataset, WordPieceTokenizer};

/// The token ids of every text of a [`TextDataset`], with the labels: what
/// [`TextBatcher`](crate::TextBatcher) makes batches from. Tokenizing once, before training,
/// keeps the tokenizer out of the training loop.
///
/// ```
/// use sorted_data::{TextDataset, TokenizedDataset, WordPieceTokenizer};
///
/// let tokenizer = WordPieceTokenizer::from_vocab_str("[PAD]\n[UNK]\n[CLS]\n[SEP]\ngood\nfun\n.\n", "vocab.txt")?;
/// let data = TextDataset { texts: vec!["Good fun.".into(), "Good.".into()], labels: vec![1, 1] };
/// let tokenized = TokenizedDataset::new(&tokenizer, &data, 4);
/// assert_eq!(tokenized.sequences, [vec![2, 4, 5, 3], vec![2, 4, 6, 3]]); // the first is cut
/// assert_eq!((tokenized.pad_id, tokenized.n_truncated, tokenized.longest()), (0, 1, 4));
/// # Ok::<(), sorted_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenizedDataset {
    /// The ids of each text, `[CLS]` first and `[SEP]` last
    /// ([`WordPieceTokenizer::encode`]).
    pub sequences: Vec<Vec<u32>>,
    /// The label of each text.
    pub labels: Vec<u8>,
    /// The id that pads shorter sequences in a batch: the vocabulary's `[PAD]`.
    pub pad_id: u32,
    /// How many texts had more word pieces than fit and were cut.
    pub n_truncated: usize,
}

impl TokenizedDataset {
    /// Encodes every text of `data` with `tokenizer`, each cut to at most `max_len` ids.
    ///
    /// # Panics
    /// If `max_len < 2` (see [`WordPieceTokenizer::encode`]).
    pub fn new(tokenizer: &WordPieceTokenizer, data: &TextDataset, max_len: usize) -> Self {
        let mut n_truncated = 0;
        let sequences = data
            .texts
            .iter()
            .map(|text| {
                let encoding = tokenizer.encode(text, max_len);
                n_truncated += usize::from(encoding.is_truncated());
                encoding.ids
            })
            .collect();
        TokenizedDataset { sequences, labels: data.labels.clone(), pad_id: tokenizer.special().pad, n_truncated }
    }

    /// The number of texts.
    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    /// Whether there are no texts.
    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }

    /// The length of the longest sequence (0 if there is none).
    pub fn longest(&self) -> usize {
        self.sequences.iter().map(Vec::len).max().unwrap_or(0)
    }
}
