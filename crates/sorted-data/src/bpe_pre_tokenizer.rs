//! The pre-tokenizers of byte-level BPE: how a text is cut into the pieces that BPE merges
//! within, never across.

use std::path::Path;

use crate::DataError;
use crate::char_class::is_letter;

/// How [`ByteLevelBpe`](crate::ByteLevelBpe) cuts a text into pieces before BPE: merges happen
/// inside a piece, never across two.
///
/// Both variants are built on GPT-2's regular expression, which Hugging Face's `ByteLevel`
/// pre-tokenizer (`use_regex=true`) uses:
///
/// ```text
/// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// ```
///
/// Its matches, left to right, are the pieces: an English contraction suffix (lowercase only);
/// a run of letters, of numbers or of other non-space characters, each with at most one space
/// (U+0020) in front; a run of whitespace. A run of whitespace followed by a non-space keeps its
/// last character for the next piece (`\s+(?!\S)`), so `"a  b"` is `a`, ` `, ` b`, and a lone
/// newline before a word is a piece of its own. The expression is implemented by hand (Rust's
/// `regex` has no look-ahead), with these classes:
///
/// - `\p{L}`: general category `L*`, from a table generated from Python's `unicodedata`
///   (Unicode 14.0);
/// - `\p{N}`: [`char::is_numeric`] (general categories Nd, Nl, No);
/// - `\s`: [`char::is_whitespace`] (the `White_Space` property, which is Oniguruma's `\s`, the
///   engine Hugging Face `tokenizers` runs the expression on).
///
/// ```
/// use sorted_data::BpePreTokenizer;
///
/// let text = "I'll pay 1024 coins,  you'd\nsay!";
/// assert_eq!(
///     BpePreTokenizer::Gpt2.split(text),
///     ["I", "'ll", " pay", " 1024", " coins", ",", " ", " you", "'d", "\n", "say", "!"]
/// );
/// // SmolLM2's: every digit alone, and the space before a number is a piece of its own.
/// assert_eq!(
///     BpePreTokenizer::SmolLm.split(text),
///     ["I", "'ll", " pay", " ", "1", "0", "2", "4", " coins", ",", " ", " you", "'d", "\n", "say", "!"]
/// );
/// assert_eq!(BpePreTokenizer::from_gguf_name("smollm", "model.gguf")?, BpePreTokenizer::SmolLm);
/// # Ok::<(), sorted_data::DataError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BpePreTokenizer {
    /// GPT-2's expression alone: `tokenizer.ggml.pre = "gpt2"` in a GGUF file.
    #[default]
    Gpt2,
    /// SmolLM's (SmolLM2's too): first every numeric character (`char::is_numeric`) becomes a
    /// piece of its own, then GPT-2's expression cuts the text between them. This is Hugging
    /// Face's `Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false,
    /// use_regex=true)]`, and llama.cpp's `smollm` pre-tokenizer (`tokenizer.ggml.pre =
    /// "smollm"`): numbers are spelled digit by digit.
    SmolLm,
}

impl BpePreTokenizer {
    /// The pre-tokenizer a GGUF file's `tokenizer.ggml.pre` names: `gpt2` or `smollm`; `path`
    /// names the file in errors.
    ///
    /// # Errors
    /// [`DataError::UnknownPreTokenizer`] for any other name (llama.cpp knows dozens, most with
    /// expressions of their own).
    pub fn from_gguf_name(name: &str, path: impl AsRef<Path>) -> Result<Self, DataError> {
        match name {
            "gpt2" => Ok(BpePreTokenizer::Gpt2),
            "smollm" => Ok(BpePreTokenizer::SmolLm),
            _ => Err(DataError::UnknownPreTokenizer { path: path.as_ref().to_path_buf(), got: name.to_owned() }),
        }
    }

    /// The name of the pre-tokenizer in a GGUF file's `tokenizer.ggml.pre`.
    pub fn gguf_name(self) -> &'static str {
        match self {
            BpePreTokenizer::Gpt2 => "gpt2",
            BpePreTokenizer::SmolLm => "smollm",
        }
    }

    /// The pieces of `text`, in order; they concatenate to `text`, and none is empty.
    pub fn split(self, text: &str) -> Vec<&str> {
        let mut pieces = Vec::new();
        self.split_into(text, &mut pieces);
        pieces
    }

    /// Appends the pieces of `text` to `pieces`.
    pub(crate) fn split_into<'a>(self, text: &'a str, pieces: &mut Vec<&'a str>) {
        match self {
            BpePreTokenizer::Gpt2 => gpt2_split(text, pieces),
            BpePreTokenizer::SmolLm => {
                let mut start = 0;
                for (at, c) in text.char_indices().filter(|(_, c)| c.is_numeric()) {
                    gpt2_split(&text[start..at], pieces);
                    let end = at + c.len_utf8();
                    pieces.push(&text[at..end]);
                    start = end;
                }
                gpt2_split(&text[start..], pieces);
            }
        }
    }
}

/// The classes of non-space characters in GPT-2's expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `\p{L}`.
    Letter,
    /// `\p{N}`.
    Number,
    /// `[^\s\p{L}\p{N}]`.
    Other,
}

/// The class of a non-space character.
fn class_of(c: char) -> Class {
    if is_letter(c) {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else {
        Class::Other
    }
}

/// The suffixes of GPT-2's contraction alternatives, in the expression's order (none is a
/// prefix of another, so the order does not matter).
const CONTRACTIONS: [&str; 7] = ["s", "t", "re", "ve", "m", "ll", "d"];

/// Appends the matches of GPT-2's expression in `text` to `pieces`.
fn gpt2_split<'a>(text: &'a str, pieces: &mut Vec<&'a str>) {
    let mut start = 0;
    while start < text.len() {
        let len = gpt2_match(&text[start..]);
        pieces.push(&text[start..start + len]);
        start += len;
    }
}

/// The length in bytes of the match of GPT-2's expression at the start of `text`: the first
/// alternative that matches there, each as long as it can be. It is at least one character
/// (the expression matches every character somewhere), so a non-empty `text` always advances.
fn gpt2_match(text: &str) -> usize {
    let mut chars = text.char_indices();
    let Some((_, first)) = chars.next() else { return 0 };
    // 's|'t|'re|'ve|'m|'ll|'d
    if first == '\''
        && let Some(suffix) = CONTRACTIONS.iter().find(|suffix| text[1..].starts_with(**suffix))
    {
        return 1 + suffix.len();
    }
    //  ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+: the three classes split all non-space characters,
    // so a space followed by a non-space always starts one of them, and only the class of the
    // character after the space decides which.
    let run_start = match (first, chars.next()) {
        (' ', Some((at, next))) if !next.is_whitespace() => Some((at, next)),
        (c, _) if !c.is_whitespace() => Some((0, c)),
        _ => None,
    };
    if let Some((at, c)) = run_start {
        let class = class_of(c);
        return text[at..]
            .char_indices()
            .find(|&(_, c)| c.is_whitespace() || class_of(c) != class)
            .map_or(text.len(), |(end, _)| at + end);
    }
    // \s+(?!\S)|\s+: the whole run of whitespace if the text ends there; otherwise the run but
    // its last character, which a following match may take as its leading space (backtracking
    // one character satisfies the look-ahead); and a single whitespace character before a
    // non-space, which only the plain `\s+` matches.
    let (end, last) = match text.char_indices().find(|(_, c)| !c.is_whitespace()) {
        None => return text.len(),
        Some((end, _)) => (end, text[..end].char_indices().last().map_or(0, |(at, _)| at)),
    };
    if last > 0 { last } else { end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_concatenates_to_the_text_with_no_empty_piece() {
        let texts =
            ["", " ", "  ", "a", "'", "''s", "\n\n", " \t x", "x \u{3000}\u{3000}y", "١٢ ab12 ½", "é\u{301} 日本"];
        for text in texts {
            for pre in [BpePreTokenizer::Gpt2, BpePreTokenizer::SmolLm] {
                let pieces = pre.split(text);
                assert_eq!(pieces.concat(), text, "{pre:?} {text:?}");
                assert!(pieces.iter().all(|piece| !piece.is_empty()), "{pre:?} {text:?}: {pieces:?}");
            }
        }
    }

    #[test]
    fn whitespace_runs_leave_their_last_character_to_the_next_word() {
        let split = |text| BpePreTokenizer::Gpt2.split(text);
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a\n\n  b"), ["a", "\n\n ", " b"]);
        assert_eq!(split("a \nb"), ["a", " ", "\n", "b"]);
        assert_eq!(split("a\tb"), ["a", "\t", "b"]);
        assert_eq!(split("a   "), ["a", "   "]);
        assert_eq!(split("  "), ["  "]);
        assert_eq!(split(" !?x"), [" !?", "x"]);
        assert_eq!(split("'s'S 're'x"), ["'s", "'", "S", " '", "re", "'", "x"]);
    }
}
