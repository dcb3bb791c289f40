//! BERT's WordPiece tokenizer: text to token ids, as Hugging Face's uncased `BertTokenizer`
//! computes them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

use unicode_normalization::UnicodeNormalization;

use crate::DataError;
use crate::char_class::{is_cjk, is_control, is_nonspacing_mark, is_punctuation, is_whitespace};

/// The classification token every encoding starts with.
pub const CLS_TOKEN: &str = "[CLS]";
/// The separator token every encoding ends with.
pub const SEP_TOKEN: &str = "[SEP]";
/// The token that fills a batch's shorter sequences.
pub const PAD_TOKEN: &str = "[PAD]";
/// The token of a word the vocabulary cannot spell.
pub const UNK_TOKEN: &str = "[UNK]";
/// The prefix of a word piece that continues a word.
pub const CONTINUATION_PREFIX: &str = "##";
/// Words longer than this many characters become a single [`UNK_TOKEN`] (BERT's
/// `max_input_chars_per_word`).
pub const MAX_CHARS_PER_WORD: usize = 100;

/// The ids of the special tokens of a vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpecialTokens {
    /// The id of [`CLS_TOKEN`].
    pub cls: u32,
    /// The id of [`SEP_TOKEN`].
    pub sep: u32,
    /// The id of [`PAD_TOKEN`].
    pub pad: u32,
    /// The id of [`UNK_TOKEN`].
    pub unk: u32,
}

/// The token ids of one text: `[CLS]`, the word pieces, `[SEP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// The ids, `[CLS]` first and `[SEP]` last, at most the `max_len` asked for.
    pub ids: Vec<u32>,
    /// The number of word pieces of the whole text, before truncation: `ids.len() - 2` unless
    /// the text was cut.
    pub n_pieces: usize,
}

impl Encoding {
    /// Whether word pieces were cut off to fit `max_len`.
    pub fn is_truncated(&self) -> bool {
        self.n_pieces + 2 > self.ids.len()
    }
}

/// BERT's uncased WordPiece tokenizer, read from a `vocab.txt` (one token per line; a token's
/// id is its line index, counted from 0).
///
/// It reproduces Hugging Face's `BertTokenizer(do_lower_case=True, tokenize_chinese_chars=True,
/// strip_accents=None)`, the tokenizer of `bert-base-uncased` and of all-MiniLM-L6-v2:
///
/// 1. **Clean**: drop U+0000, U+FFFD and control characters; every whitespace character
///    becomes a space.
/// 2. **CJK**: put spaces around each CJK ideograph, so each is a word of its own.
/// 3. Normalise to NFC and split on whitespace.
/// 4. Per word: **lowercase**, **strip accents** (decompose to NFD, drop nonspacing marks), and
///    **split at punctuation**: each punctuation character becomes a word of its own.
///    Punctuation is all non-alphanumeric printable ASCII and the Unicode categories `P*`.
/// 5. **WordPiece**, per word: greedy longest match first; pieces after the first carry
///    [`CONTINUATION_PREFIX`]. A word the vocabulary cannot spell, or longer than
///    [`MAX_CHARS_PER_WORD`] characters, becomes one `[UNK]`.
///
/// The character classes come from tables generated from Python's `unicodedata`, which is what
/// `BertTokenizer` consults; see the source of `char_class.rs` for the one known approximation
/// (code points assigned after Unicode 14.0). Unlike Hugging Face, the text is never searched
/// for special tokens: the characters `[CLS]` in a review are just text (`[`, `cl`, `##s`,
/// `]`), so no input can forge a separator.
///
/// ```
/// use sorted_data::WordPieceTokenizer;
///
/// let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n.\na\nman\neat\n##ing\ncafe\n";
/// let tokenizer = WordPieceTokenizer::from_vocab_str(vocab, "vocab.txt")?;
/// assert_eq!(tokenizer.tokenize("A man, eating. Café!"), ["a", "man", "[UNK]", "eat", "##ing", ".", "cafe", "[UNK]"]);
///
/// let encoding = tokenizer.encode("A man eating.", 16);
/// assert_eq!(encoding.ids, [2, 5, 6, 7, 8, 4, 3]); // [CLS] a man eat ##ing . [SEP]
/// // Truncated to 4 ids, [SEP] kept at the end.
/// let short = tokenizer.encode("A man eating.", 4);
/// assert_eq!(short.ids, [2, 5, 6, 3]);
/// assert!(short.is_truncated());
/// # Ok::<(), sorted_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct WordPieceTokenizer {
    /// Token to id.
    vocab: HashMap<String, u32>,
    /// Id to token.
    tokens: Vec<String>,
    special: SpecialTokens,
}

impl WordPieceTokenizer {
    /// Reads a BERT `vocab.txt`, for example `data/minilm/vocab.txt` (`cargo xtask data
    /// minilm` fetches it).
    ///
    /// # Errors
    /// [`DataError::Io`] if the file cannot be read, and every error of
    /// [`from_vocab_str`](Self::from_vocab_str) (and [`DataError::Utf8`]), naming the file.
    pub fn from_vocab_file(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
        Self::from_vocab_bytes(&bytes, path)
    }

    /// Builds the tokenizer from the bytes of a `vocab.txt`, which must be UTF-8; `name` names
    /// it in errors.
    ///
    /// # Errors
    /// [`DataError::Utf8`] if the bytes are not UTF-8, and every error of
    /// [`from_vocab_str`](Self::from_vocab_str).
    pub fn from_vocab_bytes(bytes: &[u8], name: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = name.as_ref();
        Self::from_vocab_str(crate::csv::utf8(bytes, path)?, path)
    }

    /// Builds the tokenizer from the text of a `vocab.txt`; `name` names it in errors.
    ///
    /// Line `i` (counted from 0) is the token of id `i`. Lines end with `\n`; a `\r` before it
    /// is dropped, and so is a leading byte-order mark. An empty line keeps its id but matches
    /// nothing.
    ///
    /// # Errors
    /// - [`DataError::Empty`] if `text` is empty;
    /// - [`DataError::DuplicateToken`] if a token occurs on two lines, naming both;
    /// - [`DataError::MissingToken`] if `[CLS]`, `[SEP]`, `[PAD]` or `[UNK]` is missing;
    /// - [`DataError::VocabTooLarge`] if the ids do not fit in `u32`.
    pub fn from_vocab_str(text: &str, name: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = name.as_ref();
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        if text.is_empty() {
            return Err(DataError::Empty { path: path.to_path_buf(), format: "vocabulary (one token per line)" });
        }
        let tokens: Vec<String> = text.lines().map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned()).collect();
        let too_large = || DataError::VocabTooLarge { path: path.to_path_buf(), n_tokens: tokens.len() };
        u32::try_from(tokens.len()).map_err(|_| too_large())?;
        let mut vocab = HashMap::with_capacity(tokens.len());
        for (index, token) in tokens.iter().enumerate() {
            if token.is_empty() {
                continue;
            }
            let id = u32::try_from(index).map_err(|_| too_large())?;
            match vocab.entry(token.clone()) {
                Entry::Vacant(entry) => {
                    entry.insert(id);
                }
                Entry::Occupied(entry) => {
                    return Err(DataError::DuplicateToken {
                        path: path.to_path_buf(),
                        line: index + 1,
                        first_line: *entry.get() as usize + 1,
                        token: token.clone(),
                    });
                }
            }
        }
        let id_of = |token: &'static str| {
            vocab.get(token).copied().ok_or(DataError::MissingToken { path: path.to_path_buf(), token })
        };
        let special = SpecialTokens {
            cls: id_of(CLS_TOKEN)?,
            sep: id_of(SEP_TOKEN)?,
            pad: id_of(PAD_TOKEN)?,
            unk: id_of(UNK_TOKEN)?,
        };
        Ok(WordPieceTokenizer { vocab, tokens, special })
    }

    /// The number of ids: the number of lines of the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The ids of `[CLS]`, `[SEP]`, `[PAD]` and `[UNK]`.
    pub fn special(&self) -> SpecialTokens {
        self.special
    }

    /// The id of `token`, if it is in the vocabulary (continuation pieces with their `##`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// The token of `id`, if the vocabulary has that many lines.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Steps 1 to 4 of the tokenizer (see the type's documentation): the words and punctuation
    /// marks of `text`, cleaned, lowercased and without accents, before WordPiece. This needs no
    /// vocabulary.
    ///
    /// ```
    /// use sorted_data::WordPieceTokenizer;
    ///
    /// assert_eq!(WordPieceTokenizer::pre_tokenize("Naïve,  CAFÉ\u{200B}s日本!"), ["naive", ",", "cafes", "日", "本", "!"]);
    /// ```
    pub fn pre_tokenize(text: &str) -> Vec<String> {
        let mut cleaned = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{FFFD}' || is_control(c) {
                continue;
            }
            if is_whitespace(c) {
                cleaned.push(' ');
            } else if is_cjk(c) {
                cleaned.extend([' ', c, ' ']);
            } else {
                cleaned.push(c);
            }
        }
        let normalized: String = cleaned.nfc().collect();
        let mut words = Vec::new();
        for token in normalized.split(char::is_whitespace).filter(|token| !token.is_empty()) {
            let lowercase = token.to_lowercase();
            let mut word = String::new();
            // After NFD the accents are separate nonspacing marks, dropped here.
            for c in lowercase.nfd().filter(|&c| !is_nonspacing_mark(c)) {
                if is_punctuation(c) || c.is_whitespace() {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    if !c.is_whitespace() {
                        words.push(c.to_string());
                    }
                } else {
                    word.push(c);
                }
            }
            if !word.is_empty() {
                words.push(word);
            }
        }
        words
    }

    /// The word pieces of `text`, as the vocabulary spells them (`[UNK]` for words it cannot
    /// spell), without `[CLS]` and `[SEP]`.
    pub fn tokenize(&self, text: &str) -> Vec<&str> {
        let mut ids = Vec::new();
        self.push_pieces(text, &mut ids);
        ids.iter().map(|&id| self.tokens[id as usize].as_str()).collect()
    }

    /// The ids of `text`: `[CLS]`, its word pieces, `[SEP]`. If there are more than
    /// `max_len - 2` pieces, the rest are cut off, so the encoding is `max_len` ids long and
    /// still ends with `[SEP]` (Hugging Face's `truncation=True, max_length=max_len`).
    ///
    /// # Panics
    /// If `max_len < 2`: `[CLS]` and `[SEP]` must fit (validate the configuration first).
    pub fn encode(&self, text: &str, max_len: usize) -> Encoding {
        assert!(max_len >= 2, "WordPieceTokenizer::encode: max_len {max_len} leaves no room for [CLS] and [SEP]");
        let mut ids = vec![self.special.cls];
        self.push_pieces(text, &mut ids);
        let n_pieces = ids.len() - 1;
        ids.truncate(max_len - 1);
        ids.push(self.special.sep);
        Encoding { ids, n_pieces }
    }

    /// Appends the ids of the word pieces of `text` to `ids`.
    fn push_pieces(&self, text: &str, ids: &mut Vec<u32>) {
        let mut scratch = Scratch::default();
        for word in Self::pre_tokenize(text) {
            self.push_word(&word, ids, &mut scratch);
        }
    }

    /// Appends the ids of one word's pieces to `ids`: greedy longest match first, or a single
    /// `[UNK]` if the word is too long or some part of it matches nothing.
    fn push_word(&self, word: &str, ids: &mut Vec<u32>, scratch: &mut Scratch) {
        let bounds = &mut scratch.bounds;
        bounds.clear();
        bounds.extend(word.char_indices().map(|(at, _)| at));
        bounds.push(word.len());
        let n_chars = bounds.len() - 1;
        if n_chars > MAX_CHARS_PER_WORD {
            ids.push(self.special.unk);
            return;
        }
        let first = ids.len();
        let mut start = 0;
        while start < n_chars {
            let found = (start + 1..=n_chars).rev().find_map(|end| {
                let piece = &word[bounds[start]..bounds[end]];
                let id = if start == 0 {
                    self.vocab.get(piece)
                } else {
                    scratch.piece.clear();
                    scratch.piece.push_str(CONTINUATION_PREFIX);
                    scratch.piece.push_str(piece);
                    self.vocab.get(scratch.piece.as_str())
                };
                id.map(|&id| (id, end))
            });
            let Some((id, end)) = found else {
                ids.truncate(first);
                ids.push(self.special.unk);
                return;
            };
            ids.push(id);
            start = end;
        }
    }
}

/// Buffers reused across the words of a text.
#[derive(Default)]
struct Scratch {
    /// The byte offsets of the characters of a word, and its length.
    bounds: Vec<usize>,
    /// A continuation piece being looked up, `##` included.
    piece: String,
}
