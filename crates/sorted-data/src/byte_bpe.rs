//! GPT-2 style byte-level BPE: text to token ids and back, as Hugging Face's `tokenizers`
//! computes them for SmolLM2.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use crate::{BpePreTokenizer, DataError};

/// The character that GPT-2's byte-level alphabet writes `byte` as.
///
/// The printable bytes `!`..=`~`, `¡`..=`¬` and `®`..=`ÿ` (188 of them) stand for themselves
/// (as Latin-1 characters); the other 68 (controls, space, `0x7F`..=`0xA0`, the soft hyphen
/// `0xAD`) are written U+0100 + n, n counting them in byte order. So a space is `Ġ` (U+0120)
/// and a newline `Ċ` (U+010A), and every token of a byte-level vocabulary is printable.
///
/// ```
/// use sorted_data::{gpt2_byte_char, gpt2_char_byte};
///
/// assert_eq!([gpt2_byte_char(b'a'), gpt2_byte_char(b' '), gpt2_byte_char(b'\n')], ['a', 'Ġ', 'Ċ']);
/// assert_eq!([gpt2_byte_char(0xAD), gpt2_byte_char(0xE6)], ['Ń', 'æ']);
/// assert!((0..=255u8).all(|byte| gpt2_char_byte(gpt2_byte_char(byte)) == Some(byte)));
/// assert_eq!(gpt2_char_byte('日'), None);
/// ```
pub fn gpt2_byte_char(byte: u8) -> char {
    let code = match byte {
        b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF => u32::from(byte),
        0x00..=0x20 => 0x100 + u32::from(byte),
        0x7F..=0xA0 => 0x100 + 33 + u32::from(byte - 0x7F),
        // 0xAD, the soft hyphen, the last byte that is not printable.
        _ => 0x100 + 67,
    };
    char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The byte that `c` stands for in GPT-2's byte-level alphabet (see [`gpt2_byte_char`]), or
/// `None` if `c` is not one of its 256 characters.
pub fn gpt2_char_byte(c: char) -> Option<u8> {
    let code = u32::from(c);
    let byte = match code {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => code,
        0x100..=0x120 => code - 0x100,
        0x121..=0x142 => code - 0x121 + 0x7F,
        0x143 => 0xAD,
        _ => return None,
    };
    u8::try_from(byte).ok()
}

/// A byte-level BPE tokenizer in the style of GPT-2, as SmolLM2 uses it: Hugging Face's
/// `ByteLevel` pre-tokenizer (`add_prefix_space=false`, `use_regex=true`), a BPE model with
/// no unknown token, no dropout and no byte fallback, and special tokens matched before all
/// else.
///
/// It is built from the vocabulary (`tokens`, the id of a token is its index) and the merges
/// (`"left right"`, ranked by their order), as a GGUF file's `tokenizer.ggml.tokens` and
/// `tokenizer.ggml.merges` hold them. [`encode`](Self::encode) works in four steps:
///
/// 1. **Special tokens** (given by [`with_special_tokens`](Self::with_special_tokens)) are
///    found by exact string match, leftmost first and the longest where several start at the
///    same place, and become their ids; the text between them goes on alone. Nothing is
///    normalised, and no space around them is stripped.
/// 2. **Pre-tokenization** cuts that text into pieces ([`BpePreTokenizer`], GPT-2's by default,
///    [`BpePreTokenizer::SmolLm`] for SmolLM2).
/// 3. **Bytes**: each piece becomes one symbol per UTF-8 byte, the vocabulary's one-character
///    token of [`gpt2_byte_char`] of the byte. A byte whose character is not a token is dropped,
///    as Hugging Face does without an unknown token (SmolLM2's vocabulary lacks 21 of the 256:
///    the controls `0x04`, `0x06`, `0x13`, `0x14`, `0x16` and `0x1D`, and `0xC0`, `0xC1`,
///    `0xF1`, `0xF2`, `0xF5`..=`0xFF`, which only the code points U+40000..U+BFFFF use in valid
///    UTF-8).
/// 4. **Merges**: within a piece, the adjacent pair whose merge ranks first (leftmost among
///    equals) is replaced by the merged token, until no adjacent pair has a merge. This is
///    Hugging Face's algorithm (a priority queue over pairs), step for step.
///
/// [`decode`](Self::decode) maps every character of each token back to its byte and reads the
/// bytes as UTF-8.
///
/// ```
/// use sorted_data::{BpePreTokenizer, ByteLevelBpe, gpt2_byte_char};
///
/// // A toy vocabulary: two special tokens, the 256 byte characters, then one token per merge.
/// let mut tokens = vec!["<|im_start|>".to_owned(), "<|im_end|>".to_owned()];
/// tokens.extend((0..=255u8).map(|byte| gpt2_byte_char(byte).to_string()));
/// let merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"];
/// tokens.extend(merges.iter().map(|merge| merge.replace(' ', "")));
/// let bpe = ByteLevelBpe::new(tokens, &merges, "toy.gguf")?
///     .with_pre_tokenizer(BpePreTokenizer::SmolLm)
///     .with_special_tokens(["<|im_start|>", "<|im_end|>"])?;
///
/// let ids = bpe.encode("<|im_start|>hello world!<|im_end|>");
/// let hello = bpe.token_id("hello").unwrap();
/// let world = bpe.token_id("Ġworld").unwrap();
/// assert_eq!(ids, [0, hello, world, bpe.token_id("!").unwrap(), 1]);
/// assert_eq!(bpe.decode(&ids), "<|im_start|>hello world!<|im_end|>");
/// // Without special tokens, `<|im_end|>` would be plain text: `<`, `|`, `im`, ...
/// assert_eq!(bpe.decode(&bpe.encode("héllo wörld 12")), "héllo wörld 12");
/// # Ok::<(), sorted_data::DataError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ByteLevelBpe {
    /// Id to token.
    tokens: Vec<String>,
    /// Token to id.
    vocab: HashMap<String, u32>,
    /// A pair of adjacent ids to the rank of its merge and the id of the merged token.
    merges: HashMap<(u32, u32), (usize, u32)>,
    /// The id of the one-character token of each byte, if the vocabulary has it.
    byte_ids: [Option<u32>; 256],
    /// The special tokens and their ids, in the order given.
    special: Vec<(String, u32)>,
    /// Whether some special token starts with this byte: the only places worth trying a match.
    special_first_bytes: [bool; 256],
    pre_tokenizer: BpePreTokenizer,
    /// What the vocabulary was read from, for errors.
    name: PathBuf,
}

impl ByteLevelBpe {
    /// Builds the tokenizer from a vocabulary (`tokens[id]` is the token of `id`) and a list of
    /// merges, each two tokens separated by one space, best first; `name` names them in
    /// errors (the GGUF file they came from, say).
    ///
    /// The tokenizer starts with GPT-2's pre-tokenizer and no special tokens (see
    /// [`with_pre_tokenizer`](Self::with_pre_tokenizer) and
    /// [`with_special_tokens`](Self::with_special_tokens)).
    ///
    /// # Errors
    /// - [`DataError::Empty`] if `tokens` is empty;
    /// - [`DataError::VocabTooLarge`] if the ids do not fit in `u32`;
    /// - [`DataError::DuplicateTokenId`] if a token occurs twice, naming both ids;
    /// - [`DataError::BadMerge`] if a merge is not two tokens separated by one space, if its
    ///   parts or their concatenation are not tokens, or if it repeats an earlier merge.
    pub fn new<S: AsRef<str>>(tokens: Vec<String>, merges: &[S], name: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = name.as_ref();
        if tokens.is_empty() {
            return Err(DataError::Empty { path: path.to_path_buf(), format: "byte-level BPE vocabulary" });
        }
        let too_large = || DataError::VocabTooLarge { path: path.to_path_buf(), n_tokens: tokens.len() };
        u32::try_from(tokens.len()).map_err(|_| too_large())?;
        let mut vocab = HashMap::with_capacity(tokens.len());
        for (index, token) in tokens.iter().enumerate() {
            let id = u32::try_from(index).map_err(|_| too_large())?;
            match vocab.entry(token.clone()) {
                Entry::Vacant(entry) => {
                    entry.insert(id);
                }
                Entry::Occupied(entry) => {
                    return Err(DataError::DuplicateTokenId {
                        path: path.to_path_buf(),
                        id,
                        first_id: *entry.get(),
                        token: token.clone(),
                    });
                }
            }
        }
        let mut merge_map = HashMap::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let merge = merge.as_ref();
            let bad = |expected: String| DataError::BadMerge {
                path: path.to_path_buf(),
                index: rank,
                merge: merge.to_owned(),
                expected,
            };
            let (left, right) = match merge.split_once(' ') {
                Some((left, right)) if !left.is_empty() && !right.is_empty() && !right.contains(' ') => (left, right),
                _ => return Err(bad("two tokens separated by one space".to_owned())),
            };
            let id = |part: &str, role: &str| {
                vocab
                    .get(part)
                    .copied()
                    .ok_or_else(|| bad(format!("its {role} `{part}` to be a token of the vocabulary")))
            };
            let pair = (id(left, "left part")?, id(right, "right part")?);
            let merged = id(&format!("{left}{right}"), "result")?;
            match merge_map.entry(pair) {
                Entry::Vacant(entry) => {
                    entry.insert((rank, merged));
                }
                Entry::Occupied(entry) => {
                    let (first, _) = *entry.get();
                    return Err(bad(format!("a pair not merged before (merge {first} is the same pair)")));
                }
            }
        }
        let byte_ids = std::array::from_fn(|byte| {
            let byte = u8::try_from(byte).unwrap_or(u8::MAX);
            vocab.get(gpt2_byte_char(byte).encode_utf8(&mut [0; 4]) as &str).copied()
        });
        Ok(ByteLevelBpe {
            tokens,
            vocab,
            merges: merge_map,
            byte_ids,
            special: Vec::new(),
            special_first_bytes: [false; 256],
            pre_tokenizer: BpePreTokenizer::default(),
            name: path.to_path_buf(),
        })
    }

    /// The tokenizer with the pre-tokenizer `pre_tokenizer` (for SmolLM2,
    /// [`BpePreTokenizer::SmolLm`]; a GGUF file names it in `tokenizer.ggml.pre`, see
    /// [`BpePreTokenizer::from_gguf_name`]).
    pub fn with_pre_tokenizer(mut self, pre_tokenizer: BpePreTokenizer) -> Self {
        self.pre_tokenizer = pre_tokenizer;
        self
    }

    /// The tokenizer with `tokens` as its special tokens, replacing any given before: where
    /// the text holds one of them, it becomes that token's id, and BPE never sees it.
    ///
    /// For SmolLM2 these are the 17 tokens of ids 0..=16 (`<|endoftext|>`, `<|im_start|>`,
    /// `<|im_end|>`, `<repo_name>`, ...): in a GGUF file, the tokens whose
    /// `tokenizer.ggml.token_type` is 3 (control).
    ///
    /// # Errors
    /// [`DataError::BadSpecialToken`] if a token is empty or not in the vocabulary.
    pub fn with_special_tokens<S: AsRef<str>>(
        mut self,
        tokens: impl IntoIterator<Item = S>,
    ) -> Result<Self, DataError> {
        let mut special = Vec::new();
        for token in tokens {
            let token = token.as_ref();
            let bad =
                |expected| DataError::BadSpecialToken { path: self.name.clone(), token: token.to_owned(), expected };
            if token.is_empty() {
                return Err(bad("a non-empty token"));
            }
            let id = self.vocab.get(token).copied().ok_or_else(|| bad("a token of the vocabulary"))?;
            special.push((token.to_owned(), id));
        }
        self.special_first_bytes = [false; 256];
        for (token, _) in &special {
            self.special_first_bytes[usize::from(token.as_bytes()[0])] = true;
        }
        self.special = special;
        Ok(self)
    }

    /// The pre-tokenizer.
    pub fn pre_tokenizer(&self) -> BpePreTokenizer {
        self.pre_tokenizer
    }

    /// The number of ids: the number of tokens of the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The number of merges.
    pub fn n_merges(&self) -> usize {
        self.merges.len()
    }

    /// The vocabulary: `tokens()[id]` is the token of `id` (in the byte-level alphabet).
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The merges, best first, each `"left right"` as [`new`](Self::new) takes them.
    pub fn merges(&self) -> Vec<String> {
        let mut ranked: Vec<_> = self.merges.iter().map(|(&(left, right), &(rank, _))| (rank, left, right)).collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .map(|(_, left, right)| format!("{} {}", self.tokens[left as usize], self.tokens[right as usize]))
            .collect()
    }

    /// The special tokens and their ids, in the order given to
    /// [`with_special_tokens`](Self::with_special_tokens).
    pub fn special_tokens(&self) -> impl Iterator<Item = (&str, u32)> {
        self.special.iter().map(|(token, id)| (token.as_str(), *id))
    }

    /// The id of `token`, if it is in the vocabulary: spelled in the byte-level alphabet
    /// (`Ġthe` for " the"), or a special token as it is (`<|im_end|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// The token of `id` (in the byte-level alphabet), if the vocabulary has that many tokens.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The token ids of `text` (see the type's documentation for the steps). No token is added
    /// at either end: SmolLM2 adds no beginning-of-sequence token (`tokenizer.ggml.add_bos_token`
    /// is false), and a chat prompt carries its own special tokens ([`chatml_prompt`](crate::chatml_prompt)).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        // Words repeat a lot in a long text: each distinct piece goes through BPE once.
        let mut cache: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut pieces = Vec::new();
        let mut scratch = Scratch::default();
        let mut start = 0;
        loop {
            let found = self.next_special(&text[start..]);
            let end = found.map_or(text.len(), |(at, _, _)| start + at);
            pieces.clear();
            self.pre_tokenizer.split_into(&text[start..end], &mut pieces);
            for &piece in &pieces {
                let piece_ids = cache.entry(piece).or_insert_with(|| self.merge_piece(piece, &mut scratch));
                ids.extend_from_slice(piece_ids);
            }
            let Some((_, len, id)) = found else { break };
            ids.push(id);
            start = end + len;
        }
        ids
    }

    /// The text of `ids`: the bytes of each token, read as UTF-8.
    ///
    /// A token stands for the bytes of its characters in GPT-2's byte-level alphabet
    /// ([`gpt2_char_byte`]); a token with a character outside it (a special token such as
    /// `<|im_end|>` has none, being ASCII) stands for its own UTF-8 bytes, as in Hugging Face's
    /// `ByteLevel` decoder. Special tokens are kept. Ids outside the vocabulary are skipped.
    ///
    /// The result is lossy where the bytes are not valid UTF-8: each invalid sequence becomes
    /// U+FFFD, which happens when `ids` ends (or starts) inside a multi-byte character, as a
    /// prefix of a generated sequence can. Use [`decode_bytes`](Self::decode_bytes) to join
    /// such pieces first.
    pub fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids)).into_owned()
    }

    /// The bytes of `ids`, as [`decode`](Self::decode) reads them, before UTF-8 decoding.
    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for token in ids.iter().filter_map(|&id| self.token(id)) {
            let start = bytes.len();
            for c in token.chars() {
                match gpt2_char_byte(c) {
                    Some(byte) => bytes.push(byte),
                    None => {
                        bytes.truncate(start);
                        bytes.extend_from_slice(token.as_bytes());
                        break;
                    }
                }
            }
        }
        bytes
    }

    /// The first special token in `text`: its byte offset, its length and its id; the longest
    /// of those that start at the leftmost place.
    fn next_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        // A token starts with the first byte of a character, so every byte that could start one
        // is at a character boundary.
        let bytes = text.as_bytes();
        (0..bytes.len()).filter(|&at| self.special_first_bytes[usize::from(bytes[at])]).find_map(|at| {
            let rest = &text[at..];
            self.special
                .iter()
                .filter(|(token, _)| rest.starts_with(token.as_str()))
                .max_by_key(|(token, _)| token.len())
                .map(|(token, id)| (at, token.len(), *id))
        })
    }

    /// The ids of one piece: its bytes, merged.
    fn merge_piece(&self, piece: &str, scratch: &mut Scratch) -> Vec<u32> {
        let symbols = &mut scratch.symbols;
        symbols.clear();
        symbols.extend(piece.bytes().filter_map(|byte| self.byte_ids[usize::from(byte)]).map(|id| Symbol {
            id,
            prev: None,
            next: None,
            alive: true,
        }));
        let n = symbols.len();
        for (index, symbol) in symbols.iter_mut().enumerate() {
            symbol.prev = index.checked_sub(1);
            symbol.next = Some(index + 1).filter(|&next| next < n);
        }
        // Hugging Face's `Word::merge_all`: a min-queue of (rank, position) over candidate
        // pairs; an entry whose pair has changed since it was pushed is stale and skipped.
        let queue = &mut scratch.queue;
        queue.clear();
        for index in 1..n {
            if let Some(&(rank, merged)) = self.merges.get(&(symbols[index - 1].id, symbols[index].id)) {
                queue.push(Reverse((rank, index - 1, merged)));
            }
        }
        while let Some(Reverse((_, at, merged))) = queue.pop() {
            let Some(next) = symbols[at].next.filter(|_| symbols[at].alive) else { continue };
            if self.merges.get(&(symbols[at].id, symbols[next].id)).map(|&(_, id)| id) != Some(merged) {
                continue;
            }
            symbols[at].id = merged;
            symbols[next].alive = false;
            symbols[at].next = symbols[next].next;
            if let Some(after) = symbols[at].next {
                symbols[after].prev = Some(at);
                if let Some(&(rank, merged)) = self.merges.get(&(merged, symbols[after].id)) {
                    queue.push(Reverse((rank, at, merged)));
                }
            }
            if let Some(before) = symbols[at].prev
                && let Some(&(rank, merged)) = self.merges.get(&(symbols[before].id, merged))
            {
                queue.push(Reverse((rank, before, merged)));
            }
        }
        symbols.iter().filter(|symbol| symbol.alive).map(|symbol| symbol.id).collect()
    }
}

/// One symbol of a piece during merging: a node of a doubly linked list over the piece's
/// initial symbols.
#[derive(Clone, Copy)]
struct Symbol {
    /// The token id.
    id: u32,
    /// The alive symbol before, if any.
    prev: Option<usize>,
    /// The alive symbol after, if any.
    next: Option<usize>,
    /// False once merged into the symbol before it.
    alive: bool,
}

/// Buffers reused across the pieces of a text.
#[derive(Default)]
struct Scratch {
    symbols: Vec<Symbol>,
    /// Candidate merges: (rank, position of the left symbol, merged id), smallest first.
    queue: BinaryHeap<Reverse<(usize, usize, u32)>>,
}

impl ByteLevelBpe {
    /// The byte-level BPE tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.tokens`,
    /// `merges`, `pre`; control tokens, `token_type` 3, are matched as special tokens).
    ///
    /// # Errors
    /// [`DataError::Gguf`] for a missing or malformed tokenizer key, or the tokenizer's own
    /// errors, each naming the file and key.
    pub fn from_gguf(file: &crate::GgufFile) -> Result<Self, DataError> {
        use crate::GgufValue;
        let tokens: Vec<String> = file.string_array("tokenizer.ggml.tokens")?.into_iter().map(String::from).collect();
        let merges = file.string_array("tokenizer.ggml.merges")?;
        let types: Vec<i128> = file
            .get("tokenizer.ggml.token_type")
            .and_then(GgufValue::as_array)
            .map(|values| values.iter().filter_map(GgufValue::as_i128).collect())
            .unwrap_or_default();
        let control: Vec<String> =
            tokens.iter().zip(&types).filter(|&(_, &t)| t == 3).map(|(token, _)| token.clone()).collect();
        let pre = match file.get("tokenizer.ggml.pre") {
            Some(_) => crate::BpePreTokenizer::from_gguf_name(file.str("tokenizer.ggml.pre")?, file.path())?,
            None => crate::BpePreTokenizer::Gpt2,
        };
        Self::new(tokens, &merges, file.path())?.with_pre_tokenizer(pre).with_special_tokens(control)
    }
}
