//! ByteLevelBpe: GPT-2 style byte-level BPE on a committed fixture vocabulary, and against
//! Hugging Face `tokenizers` on SmolLM2's real vocabulary, read from its GGUF file when
//! `cargo xtask data smollm2` has fetched it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sorted_data::{
    BpePreTokenizer, ByteLevelBpe, DataError, SHAKESPEARE_HELDOUT_WORKS, SMOLLM2_SYSTEM_PROMPT, Shakespeare,
    chatml_prompt, gpt2_byte_char, gpt2_char_byte,
};

/// The committed fixture, `tests/data/bpe-tiny-{tokens,merges}.txt`: `<|endoftext|>`,
/// `<|im_start|>`, `<|im_end|>` (ids 0-2), the characters of 255 bytes in GPT-2's order (all
/// but `0x04`, which SmolLM2's vocabulary lacks too), then one token per merge, 282 tokens.
/// The merges are ranked so that the result of a merge is merged again (`Ġ t`, then
/// `Ġt he`), a pair of better rank wins over an earlier position (`b c` before `a b`), and a
/// two-byte character is merged from its bytes (`Ã ©` is `é`). The expected tokens below are
/// Hugging Face `tokenizers` 0.23.3's on the same fixture.
fn fixture(pre_tokenizer: BpePreTokenizer) -> ByteLevelBpe {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"));
    let lines = |file: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(file)).unwrap().lines().map(str::to_owned).collect()
    };
    ByteLevelBpe::new(lines("bpe-tiny-tokens.txt"), &lines("bpe-tiny-merges.txt"), "bpe-tiny")
        .unwrap()
        .with_pre_tokenizer(pre_tokenizer)
        .with_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        .unwrap()
}

/// The tokens of the ids of `text`.
fn tokens<'a>(bpe: &'a ByteLevelBpe, text: &str) -> Vec<&'a str> {
    bpe.encode(text).into_iter().map(|id| bpe.token(id).unwrap()).collect()
}

/// A vocabulary of the 256 byte characters in byte order, then `extra`.
fn alphabet_and(extra: &[&str]) -> Vec<String> {
    (0..=255u8)
        .map(|byte| gpt2_byte_char(byte).to_string())
        .chain(extra.iter().map(|token| (*token).to_owned()))
        .collect()
}

#[test]
fn the_byte_alphabet_is_gpt2s() {
    let chars: String = (0..=255u8).map(gpt2_byte_char).collect();
    // The bytes that are not printable count up from U+0100: 0x00..=0x20 first (so a space is
    // `Ġ`), then 0x7F..=0xA0, then the soft hyphen 0xAD; the printable ones stand for
    // themselves.
    assert!(chars.starts_with("ĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠ!\"#$%&'()*+,-./0123"), "{chars}");
    let from_7f: String = (0x7Fu8..=0xAE).map(gpt2_byte_char).collect();
    assert_eq!(from_7f, "ġĢģĤĥĦħĨĩĪīĬĭĮįİıĲĳĴĵĶķĸĹĺĻļĽľĿŀŁł¡¢£¤¥¦§¨©ª«¬Ń®");
    assert_eq!((gpt2_byte_char(b'~'), gpt2_byte_char(0xFF)), ('~', 'ÿ'));
    let mut distinct: Vec<char> = chars.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 256);
    assert!((0..=255u8).all(|byte| gpt2_char_byte(gpt2_byte_char(byte)) == Some(byte)));
    for c in ['\u{AD}', ' ', '\n', '\u{144}', '日'] {
        assert_eq!(gpt2_char_byte(c), None, "{c:?}");
    }
}

#[test]
fn merges_follow_their_rank_and_stay_inside_pieces() {
    let bpe = fixture(BpePreTokenizer::Gpt2);
    assert_eq!((bpe.vocab_size(), bpe.n_merges()), (282, 24));
    assert_eq!(
        tokens(&bpe, "the weather in the world"),
        ["t", "he", "Ġw", "e", "a", "t", "he", "r", "Ġ", "in", "Ġthe", "Ġworld"]
    );
    // `b c` ranks before `a b`, so `abc` is `a bc` although `a b` comes first in the text.
    assert_eq!(tokens(&bpe, "abc ab bcab"), ["a", "bc", "Ġ", "ab", "Ġ", "bc", "ab"]);
    assert_eq!(tokens(&bpe, "ababab"), ["ab", "ab", "ab"]);
    // é is the bytes C3 A9, `Ã` and `©`, merged first; then `a f`, `c af` and `caf Ã©`.
    assert_eq!(tokens(&bpe, "café's cafe"), ["cafÃ©", "'s", "Ġ", "caf", "e"]);
    // A whitespace run before a word leaves it its last character, so `Ġ Ġ` and `Ċ Ċ` do not
    // meet there; at the end of the text they do.
    assert_eq!(tokens(&bpe, "sing  ring\n\nthe"), ["s", "ing", "Ġ", "Ġ", "r", "ing", "Ċ", "Ċ", "t", "he"]);
    assert_eq!(tokens(&bpe, "a  \n\n"), ["a", "ĠĠ", "ĊĊ"]);
    // A character the merges do not cover stays bytes: Ⅻ is E2 85 AB.
    assert_eq!(tokens(&bpe, "Ⅻ½"), ["â", "ħ", "«", "Â", "½"]);
    assert!(bpe.encode("").is_empty());
}

#[test]
fn smollm_spells_numbers_digit_by_digit() {
    let gpt2 = fixture(BpePreTokenizer::Gpt2);
    let smollm = fixture(BpePreTokenizer::SmolLm);
    assert_eq!(tokens(&gpt2, "12 123 x12"), ["12", "Ġ", "12", "3", "Ġ", "x", "12"]);
    assert_eq!(tokens(&smollm, "12 123 x12"), ["1", "2", "Ġ", "1", "2", "3", "Ġ", "x", "1", "2"]);
    assert_eq!(tokens(&gpt2, "it's 12th"), ["i", "t", "'s", "Ġ", "12", "t", "h"]);
    assert_eq!(tokens(&smollm, "it's 12th"), ["i", "t", "'s", "Ġ", "1", "2", "t", "h"]);
    assert_eq!(smollm.pre_tokenizer(), BpePreTokenizer::SmolLm);
    assert_eq!(BpePreTokenizer::from_gguf_name("gpt2", "m.gguf").unwrap(), BpePreTokenizer::Gpt2);
    assert_eq!(BpePreTokenizer::SmolLm.gguf_name(), "smollm");
    let err = BpePreTokenizer::from_gguf_name("llama-bpe", "m.gguf").unwrap_err();
    assert!(matches!(&err, DataError::UnknownPreTokenizer { got, .. } if got == "llama-bpe"), "{err:?}");
    assert_eq!(err.to_string(), "m.gguf: unknown pre-tokenizer `llama-bpe`: expected `gpt2` or `smollm`");
}

#[test]
fn a_byte_without_a_token_is_dropped_and_its_neighbours_merge() {
    // The fixture has no token for 0x04, as SmolLM2's has none; Hugging Face, without an
    // unknown token, drops it, and `a` and `b` then meet.
    let bpe = fixture(BpePreTokenizer::SmolLm);
    assert_eq!(bpe.token_id(&gpt2_byte_char(4).to_string()), None);
    assert_eq!(tokens(&bpe, "a\u{4}b\u{4}c"), ["a", "b", "c"]);
    assert_eq!(tokens(&bpe, "\u{4}ab"), ["ab"]);
    assert_eq!(bpe.decode(&bpe.encode("x\u{4}y")), "xy");
}

#[test]
fn special_tokens_are_matched_first_and_exactly() {
    let bpe = fixture(BpePreTokenizer::SmolLm);
    assert_eq!(bpe.encode("<|im_start|>the<|im_end|>\n<|endoftext|>"), [1, 86, 259, 2, 200, 0]);
    assert_eq!(bpe.encode("x<|im_start|><|im_end|>y"), [90, 1, 2, 91]);
    // Near misses are text.
    assert_eq!(tokens(&bpe, "<|im_start <|im_end|").concat(), "<|im_startĠ<|im_end|");
    assert_eq!(
        bpe.special_tokens().collect::<Vec<_>>(),
        [("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)]
    );
    // Without special tokens, they are text too.
    let plain = bpe.clone().with_special_tokens(Vec::<String>::new()).unwrap();
    assert_eq!(tokens(&plain, "<|im_end|>"), ["<", "|", "i", "m", "_", "e", "n", "d", "|", ">"]);

    // Leftmost first, then longest: `abc` starts before `bc`; `<a>b` outlasts `<a>`.
    let tokens = alphabet_and(&["bc", "abc", "<a>", "<a>b"]);
    let no_merges: [&str; 0] = [];
    let bpe = ByteLevelBpe::new(tokens, &no_merges, "specials")
        .unwrap()
        .with_special_tokens(["bc", "<a>", "abc", "<a>b"])
        .unwrap();
    let [bc, abc, a, ab] = [256, 257, 258, 259];
    assert_eq!(bpe.encode("xabcd"), [u32::from(b'x'), abc, u32::from(b'd')]);
    assert_eq!(bpe.encode("bc<a>b<a>"), [bc, ab, a]);
}

#[test]
fn decode_reverses_encode_and_is_lossy_only_for_broken_utf8() {
    let bpe = fixture(BpePreTokenizer::SmolLm);
    for text in ["the world", "café's  12\n\n", "Ⅻ 日本語 🎉 naïve", "<|im_start|>user\nhi<|im_end|>\n", " \t\r\n", ""]
    {
        assert_eq!(bpe.decode(&bpe.encode(text)), text, "{text:?}");
    }
    // Ids outside the vocabulary are skipped; special tokens are kept.
    assert_eq!(bpe.decode(&[0, 99_999, 67]), "<|endoftext|>a");
    // 日 is three bytes, E6 97 A5, three tokens here: two of them are not UTF-8.
    let ids = bpe.encode("日");
    assert_eq!(ids.len(), 3);
    assert_eq!(bpe.decode(&ids[..2]), "\u{FFFD}");
    assert_eq!(bpe.decode_bytes(&ids[..2]), [0xE6, 0x97]);
    let mut bytes = bpe.decode_bytes(&ids[..1]);
    bytes.extend(bpe.decode_bytes(&ids[1..]));
    assert_eq!(String::from_utf8(bytes).unwrap(), "日");
    // A token with a character outside the byte alphabet stands for its own UTF-8 bytes.
    let no_merges: [&str; 0] = [];
    let odd = ByteLevelBpe::new(alphabet_and(&["日本", "aĠ日"]), &no_merges, "odd").unwrap();
    assert_eq!(odd.decode(&[256, 32, 257]), "日本 aĠ日");
}

#[test]
fn a_malformed_vocabulary_or_merge_is_an_error_naming_it() {
    let no_merges: [&str; 0] = [];
    let err = ByteLevelBpe::new(Vec::new(), &no_merges, "empty.gguf").unwrap_err();
    assert!(matches!(&err, DataError::Empty { .. }) && err.to_string().starts_with("empty.gguf: "), "{err:?}");

    let tokens = |extra: &[&str]| alphabet_and(extra);
    let err = ByteLevelBpe::new(tokens(&["ab", "a"]), &no_merges, "dup.gguf").unwrap_err();
    assert!(matches!(&err, DataError::DuplicateTokenId { id: 257, first_id: 97, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "dup.gguf: token 257 `a` is already token 97; every token of a vocabulary must be distinct"
    );

    let merge_error = |merges: &[&str]| ByteLevelBpe::new(tokens(&["ab"]), merges, "m.gguf").unwrap_err();
    for (merges, index, expected) in [
        (&["ab"][..], 0, "two tokens separated by one space"),
        (&["a b", "a  b"], 1, "two tokens separated by one space"),
        (&[" b"], 0, "two tokens separated by one space"),
        (&["a b c"], 0, "two tokens separated by one space"),
        (&["a xyz"], 0, "its right part `xyz` to be a token of the vocabulary"),
        (&["b a"], 0, "its result `ba` to be a token of the vocabulary"),
        (&["a b", "a b"], 1, "a pair not merged before (merge 0 is the same pair)"),
    ] {
        let err = merge_error(merges);
        assert!(
            matches!(&err, DataError::BadMerge { index: i, expected: e, merge, .. }
                if *i == index && e == expected && merge == merges[index]),
            "{merges:?}: {err:?}"
        );
    }
    assert_eq!(
        merge_error(&["b a"]).to_string(),
        "m.gguf: merge 0 `b a`: expected its result `ba` to be a token of the vocabulary"
    );

    let bpe = ByteLevelBpe::new(tokens(&["ab"]), &["a b"], "s.gguf").unwrap();
    let err = bpe.clone().with_special_tokens(["<|im_end|>"]).unwrap_err();
    assert!(matches!(&err, DataError::BadSpecialToken { expected: "a token of the vocabulary", .. }), "{err:?}");
    assert_eq!(err.to_string(), "s.gguf: special token `<|im_end|>`: expected a token of the vocabulary");
    let err = bpe.with_special_tokens([""]).unwrap_err();
    assert!(matches!(&err, DataError::BadSpecialToken { expected: "a non-empty token", .. }), "{err:?}");
}

/// What the tests need of a GGUF file's metadata, read by a reader of their own: the tokens,
/// the merges, the token types and the string values.
#[derive(Default)]
struct GgufVocab {
    tokens: Vec<String>,
    merges: Vec<String>,
    token_types: Vec<i32>,
    strings: HashMap<String, String>,
}

fn read_array<const N: usize>(reader: &mut impl Read) -> [u8; N] {
    let mut bytes = [0; N];
    reader.read_exact(&mut bytes).unwrap();
    bytes
}

fn read_u32(reader: &mut impl Read) -> u32 {
    u32::from_le_bytes(read_array(reader))
}

fn read_u64(reader: &mut impl Read) -> u64 {
    u64::from_le_bytes(read_array(reader))
}

fn read_string(reader: &mut impl Read) -> String {
    let mut bytes = vec![0; usize::try_from(read_u64(reader)).unwrap()];
    reader.read_exact(&mut bytes).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The size of a GGUF scalar value type.
fn scalar_size(value_type: u32) -> u64 {
    match value_type {
        0 | 1 | 7 => 1, // u8, i8, bool
        2 | 3 => 2,     // u16, i16
        4..=6 => 4,     // u32, i32, f32
        10..=12 => 8,   // u64, i64, f64
        _ => panic!("GGUF value type {value_type} is not a scalar"),
    }
}

/// Reads the key-value section of a GGUF v3 file: magic `GGUF`, version, tensor count, key-value
/// count, then each key (u64 length + bytes), its value type (u32) and its value; an array is
/// its element type (u32), its length (u64) and its elements.
fn read_gguf_vocab(path: &Path) -> GgufVocab {
    let mut reader = BufReader::new(File::open(path).unwrap());
    assert_eq!(&read_array::<4>(&mut reader), b"GGUF");
    assert_eq!(read_u32(&mut reader), 3);
    let (_n_tensors, n_kv) = (read_u64(&mut reader), read_u64(&mut reader));
    let mut vocab = GgufVocab::default();
    let skip = |reader: &mut BufReader<File>, n: u64| {
        std::io::copy(&mut reader.by_ref().take(n), &mut std::io::sink()).unwrap();
    };
    for _ in 0..n_kv {
        let key = read_string(&mut reader);
        match read_u32(&mut reader) {
            8 => {
                let value = read_string(&mut reader);
                vocab.strings.insert(key, value);
            }
            9 => {
                let (element_type, n) = (read_u32(&mut reader), read_u64(&mut reader));
                match (key.as_str(), element_type) {
                    ("tokenizer.ggml.tokens", 8) => vocab.tokens = (0..n).map(|_| read_string(&mut reader)).collect(),
                    ("tokenizer.ggml.merges", 8) => vocab.merges = (0..n).map(|_| read_string(&mut reader)).collect(),
                    ("tokenizer.ggml.token_type", 5) => {
                        vocab.token_types = (0..n).map(|_| i32::from_le_bytes(read_array(&mut reader))).collect();
                    }
                    (_, 8) => (0..n).for_each(|_| drop(read_string(&mut reader))),
                    (_, element_type) => skip(&mut reader, n * scalar_size(element_type)),
                }
            }
            value_type => skip(&mut reader, scalar_size(value_type)),
        }
    }
    vocab
}

/// SmolLM2-135M-Instruct's tokenizer and the metadata it came from, if `cargo xtask data
/// smollm2` has fetched the GGUF file (it is not committed); `None` after printing why the
/// test is skipped.
fn real_smollm2() -> Option<(ByteLevelBpe, GgufVocab)> {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"));
    if !path.is_file() {
        eprintln!("skipped: data/smollm2 is absent (`cargo xtask data smollm2` fetches it)");
        return None;
    }
    let vocab = read_gguf_vocab(&path);
    let pre = BpePreTokenizer::from_gguf_name(&vocab.strings["tokenizer.ggml.pre"], &path).unwrap();
    // The special tokens are the control tokens (token type 3).
    let control = vocab.tokens.iter().zip(&vocab.token_types).filter(|&(_, &kind)| kind == 3).map(|(token, _)| token);
    let bpe = ByteLevelBpe::new(vocab.tokens.clone(), &vocab.merges, &path)
        .unwrap()
        .with_pre_tokenizer(pre)
        .with_special_tokens(control)
        .unwrap();
    Some((bpe, vocab))
}

/// SmolLM2-Instruct's chat template, as its GGUF file holds it (`tokenizer.chat_template`),
/// which `chatml_prompt` renders by hand.
const SMOLLM2_CHAT_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

#[test]
fn real_vocabulary_is_smollm2s() {
    let Some((bpe, vocab)) = real_smollm2() else { return };
    assert_eq!((bpe.vocab_size(), bpe.n_merges()), (49_152, 48_900));
    assert_eq!(bpe.pre_tokenizer(), BpePreTokenizer::SmolLm);
    let special: Vec<(&str, u32)> = bpe.special_tokens().collect();
    assert_eq!(special.len(), 17);
    assert!(special.iter().enumerate().all(|(index, &(_, id))| id as usize == index));
    assert_eq!(special[..3], [("<|endoftext|>", 0), ("<|im_start|>", 1), ("<|im_end|>", 2)]);
    assert_eq!(vocab.strings["tokenizer.ggml.model"], "gpt2");
    assert_eq!(vocab.strings["tokenizer.chat_template"], SMOLLM2_CHAT_TEMPLATE);
    assert!(SMOLLM2_CHAT_TEMPLATE.contains(SMOLLM2_SYSTEM_PROMPT));
    // 21 of the 256 byte characters are not tokens (see `ByteLevelBpe`).
    let missing: Vec<u8> =
        (0..=255u8).filter(|&byte| bpe.token_id(&gpt2_byte_char(byte).to_string()).is_none()).collect();
    let mut expected = vec![0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2];
    expected.extend(0xF5..=0xFF);
    assert_eq!(missing, expected);
}

/// The ids Hugging Face `tokenizers` 0.23.3 gives, on SmolLM2-135M-Instruct's vocabulary and
/// merges as its GGUF file holds them, with SmolLM2's pipeline: pre-tokenizer
/// `Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
/// use_regex=True)]`, `BPE(unk_token=None)`, ids 0..=16 added as special tokens.
#[rustfmt::skip]
const REFERENCE: [(&str, &[u32]); 44] = [
    ("Hello world", &[19556, 905]),
    ("Hello, world! How are you?", &[19556, 28, 905, 17, 1073, 359, 346, 47]),
    ("The quick brown fox jumps over the lazy dog.", &[504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30]),
    ("12345", &[33, 34, 35, 36, 37]),
    (" 12345", &[216, 33, 34, 35, 36, 37]),
    ("a 1b 22c 3.14159 -7 1,000,000", &[81, 216, 33, 82, 216, 34, 34, 83, 216, 35, 30, 33, 36, 33, 37, 41, 731, 39, 216, 33, 28, 32, 32, 32, 28, 32, 32, 32]),
    ("In 1599, Hamlet (Act 3, Scene 1) said: 2B or not 2B?", &[788, 216, 33, 37, 41, 41, 28, 24630, 365, 6868, 216, 35, 28, 35550, 216, 33, 25, 1137, 42, 216, 34, 50, 355, 441, 216, 34, 50, 47]),
    ("don't I'll we've they're she'd it's I'm", &[12420, 982, 339, 3060, 392, 3543, 502, 2316, 1041, 6737, 357, 506, 339, 5248]),
    ("DON'T I'LL 'S 'tis o'er ''quoted'' 's", &[52, 2154, 23, 68, 339, 23, 16421, 637, 67, 637, 34818, 263, 23, 259, 10922, 385, 5036, 3816, 637, 99]),
    ("x  y\n\n  z", &[104, 216, 329, 8866, 1892]),
    ("line one\nline two\r\nline three\n", &[1311, 582, 198, 1311, 827, 201, 198, 1311, 1296, 198]),
    ("trailing spaces   ", &[4861, 4966, 5600, 333]),
    ("   leading spaces", &[256, 2899, 5600]),
    ("\ttabs\tand\t\ttabs\n\t", &[197, 100, 7366, 197, 397, 197, 197, 100, 7366, 3354]),
    ("multiple     spaces between", &[30404, 289, 5600, 826]),
    ("\n\n\n", &[16506]),
    (" ", &[216]),
    ("", &[]),
    ("naïve café résumé", &[3546, 46494, 37366, 412, 2756, 5422, 2756]),
    ("日本語のテキスト", &[23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226]),
    ("Привет, мир!", &[155, 249, 46879, 16464, 32547, 28, 41337, 7872, 9175, 17]),
    ("مرحبا بالعالم", &[21706, 20602, 44626, 31462, 10805, 45726, 22208, 34966, 22208, 21706]),
    ("नमस्ते दुनिया", &[30658, 35090, 38770, 16525, 26293, 30581, 12335, 116, 42990, 30658, 27011, 32932, 18075]),
    ("emoji 🎉🚀 and ZWJ 👩\u{200D}💻", &[391, 33777, 15107, 232, 227, 10813, 244, 218, 284, 1777, 71, 58, 15107, 235, 119, 321, 231, 10813, 236, 136]),
    ("Ⅻ ½ ² ٣ ١٢٣", &[173, 223, 121, 216, 16738, 216, 19133, 216, 164, 113, 216, 164, 111, 164, 112, 164, 113]),
    ("\u{A0}nbsp\u{2003}em space\u{3000}ideographic", &[15442, 94, 32093, 321, 221, 391, 1898, 12109, 218, 489, 4551]),
    ("a\u{1C}b\u{85}c\u{2028}d", &[81, 213, 82, 141, 223, 83, 321, 118, 84]),
    ("control \u{4} bytes \u{6}\u{13}", &[11656, 216, 15590, 216]),
    ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n", &[1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]),
    ("<|im_start|><|im_end|><|endoftext|>", &[1, 2, 0]),
    ("text<|endoftext|>more text <|im_end|> spaced", &[2692, 0, 3143, 1694, 216, 2, 23861]),
    ("<|im_start <|im_end| partial <|im_start|", &[44, 108, 306, 79, 3738, 2067, 108, 306, 79, 486, 108, 9908, 2067, 108, 306, 79, 3738, 108]),
    ("<repo_name>x<file_sep>y<jupyter_code>", &[3, 104, 5, 105, 13]),
    ("fn main() { println!(\"{}\", 42); }", &[7853, 1085, 1000, 1662, 1628, 34115, 17, 43331, 1002, 216, 36, 34, 4258, 4029]),
    ("def f(x):\n    return x ** 2  # square\n", &[1604, 275, 24, 104, 727, 472, 1003, 1792, 1903, 216, 34, 216, 907, 5222, 198]),
    ("https://example.com/path?q=1&r=two#frag", &[4687, 1742, 7434, 30, 824, 31, 1537, 47, 97, 45, 33, 22, 98, 45, 11355, 19, 28082]),
    ("email@example.com, @user #hashtag $100 50% ^_^", &[10349, 48, 7434, 30, 824, 28, 3394, 4093, 907, 14307, 9204, 1885, 33, 32, 32, 216, 37, 32, 21, 13481, 79, 78]),
    ("WHAT IS THIS? CamelCaseWords and snake_case_words", &[30423, 4042, 26603, 47, 5784, 299, 10802, 29553, 284, 14321, 79, 7544, 79, 6774]),
    ("Ay, marry, is't.\nHOR.\nBut to my mind,--though I am native here,\nAnd to the manner born,--it is a custom\nMore honour'd in the breach than the observance.", &[45496, 28, 17690, 28, 314, 982, 30, 198, 56, 2460, 30, 198, 2596, 288, 957, 1945, 28, 423, 1790, 339, 744, 4534, 1535, 28, 198, 3528, 288, 260, 5710, 3988, 28, 423, 269, 314, 253, 2929, 198, 5507, 19461, 6737, 281, 260, 20952, 670, 260, 30322, 30]),
    ("supercalifragilisticexpialidocious antidisestablishmentarianism", &[14174, 5020, 342, 1808, 301, 40482, 104, 96, 409, 311, 42288, 1598, 17889, 30834, 358, 35050]),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &[46880, 46880, 46880, 46880, 46880, 46880, 46880, 46880, 46880, 46880, 46880]),
    ("ababababab bcbcbc", &[369, 369, 369, 369, 369, 278, 22076, 22076, 83]),
    ("----====****____", &[586, 2031, 5398, 3640]),
    ("!!!???...,,,", &[29646, 16693, 47, 27040, 12002]),
];

#[test]
fn real_vocabulary_matches_hugging_face_on_the_reference_strings() {
    let Some((bpe, _)) = real_smollm2() else { return };
    for (text, ids) in REFERENCE {
        assert_eq!(bpe.encode(text), ids, "{text:?}");
        // Decoding gives the text back, less the bytes without a token.
        let kept: String = text
            .chars()
            .filter(|c| !matches!(c, '\u{4}' | '\u{6}' | '\u{13}' | '\u{14}' | '\u{16}' | '\u{1D}'))
            .collect();
        assert_eq!(bpe.decode(ids), kept, "{text:?}");
    }
    // The chat prompt of the data notes' check is ChatML as SmolLM2's template writes it.
    let prompt = chatml_prompt(&[("user", "What is the capital of France?")], true);
    assert_eq!(REFERENCE.iter().find(|(text, _)| *text == prompt).map(|(_, ids)| ids.len()), Some(37));
}

/// SHA-256 of the ids, each as 4 little-endian bytes.
fn ids_digest(ids: &[u32]) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.to_le_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digests were computed by Hugging Face `tokenizers` 0.23.3 (see [`REFERENCE`]) on the
/// same texts, built the same way in Python.
#[test]
fn real_vocabulary_matches_hugging_face_on_shakespeare() {
    let Some((bpe, _)) = real_smollm2() else { return };
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/shakespeare"));
    if !dir.is_dir() {
        eprintln!("skipped: data/shakespeare is absent (`cargo xtask data shakespeare` fetches it)");
        return;
    }
    let works = Shakespeare::from_dir(dir).unwrap();
    assert_eq!(works.heldout.iter().map(|work| work.name.as_str()).collect::<Vec<_>>(), SHAKESPEARE_HELDOUT_WORKS);
    let heldout = bpe.encode(&works.heldout_text());
    assert_eq!(heldout.len(), 76_546);
    assert_eq!(ids_digest(&heldout), "b2647c5c7a9a34212cbc67c3234534c7b0d5461b679bc909f22fd35245667501");
    let train = bpe.encode(&works.train_text());
    assert_eq!(train.len(), 1_488_142);
    assert_eq!(ids_digest(&train), "d243c79ce61da8d0234291e78ba96839541256844d9c0cf04cbea7ef951f3946");
}
