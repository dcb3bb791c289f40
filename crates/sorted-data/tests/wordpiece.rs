//! WordPieceTokenizer: BERT's basic tokenizer and greedy WordPiece, on a committed fixture
//! vocabulary, and against known ids of the real bert-base-uncased vocabulary when
//! `cargo xtask data minilm` has fetched it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sorted_data::{DataError, RtSentiment, SpecialTokens, WordPieceTokenizer, csv};

/// The committed fixture: 41 tokens, the special ones at ids 0 ([PAD]), 2 ([UNK]), 3 ([CLS]) and
/// 4 ([SEP]), not where bert-base-uncased has them, so lookups by name are tested.
fn fixture_path() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vocab-tiny.txt"))
}

fn fixture() -> WordPieceTokenizer {
    WordPieceTokenizer::from_vocab_file(fixture_path()).unwrap()
}

#[test]
fn fixture_vocab_ids_are_line_indices_and_specials_are_found_by_name() {
    let tokenizer = fixture();
    assert_eq!(tokenizer.vocab_size(), 41);
    assert_eq!(tokenizer.special(), SpecialTokens { cls: 3, sep: 4, pad: 0, unk: 2 });
    assert_eq!(tokenizer.token_to_id("man"), Some(19));
    assert_eq!(tokenizer.token_to_id("##ing"), Some(22));
    assert_eq!(tokenizer.token_to_id("ing"), None);
    assert_eq!(tokenizer.id_to_token(33), Some("naive"));
    assert_eq!(tokenizer.id_to_token(41), None);
}

#[test]
fn basic_tokenizer_lowercases_strips_accents_and_splits_punctuation() {
    let words = |text: &str| WordPieceTokenizer::pre_tokenize(text);
    assert_eq!(words("A man is eating food."), ["a", "man", "is", "eating", "food", "."]);
    assert_eq!(words("Héllo, WORLD!!"), ["hello", ",", "world", "!", "!"]);
    assert_eq!(words("don't"), ["don", "'", "t"]);
    // Decomposed input (e + combining acute) and precomposed input agree.
    assert_eq!(words("Cafe\u{301} CAFÉ naïve façade"), ["cafe", "cafe", "naive", "facade"]);
    // ASCII symbols are punctuation to BERT; non-ASCII symbols are not.
    assert_eq!(words("$5+3=8 ½€"), ["$", "5", "+", "3", "=", "8", "½€"]);
    // Unicode punctuation: dashes, curly quotes, the ellipsis.
    assert_eq!(words("wait…“really”—yes"), ["wait", "…", "“", "really", "”", "—", "yes"]);
    // CJK ideographs become words of their own; kana does not, and loses its voicing mark
    // (で is て + U+3099, a nonspacing mark), as in BERT.
    assert_eq!(words("日本語です"), ["日", "本", "語", "てす"]);
    // Controls, format characters and U+FFFD are dropped; all whitespace separates.
    assert_eq!(words("a\u{0}b\u{85}c\u{200B}d\u{FFFD}e"), ["abcde"]);
    assert_eq!(words(" x\ty\r\nz\u{A0}w\u{3000}v\u{2028}u "), ["x", "y", "z", "w", "v", "u"]);
    // Final sigma lowercases by context, as Python's str.lower does.
    assert_eq!(words("ΟΔΟΣ"), ["οδο\u{3C2}"]);
    assert!(words("").is_empty() && words(" \n\t ").is_empty() && words("\u{301}").is_empty());
}

#[test]
fn wordpiece_is_greedy_longest_match_first() {
    let tokenizer = fixture();
    // `una` beats `un`, `##ffa` beats `##ff`.
    assert_eq!(tokenizer.tokenize("unaffable"), ["una", "##ffa", "##ble"]);
    assert_eq!(tokenizer.tokenize("A man is eating food."), ["a", "man", "is", "eat", "##ing", "food", "."]);
    assert_eq!(tokenizer.tokenize("Films, don't!"), ["film", "##s", ",", "don", "'", "t", "!"]);
    assert_eq!(tokenizer.tokenize("Café naïve 日本"), ["cafe", "naive", "日", "本"]);
    // One piece that matches nothing makes the whole word [UNK], not just its tail.
    assert_eq!(tokenizer.tokenize("unaffablez the"), ["[UNK]", "the"]);
    assert_eq!(tokenizer.tokenize("zebra"), ["[UNK]"]);
}

#[test]
fn words_over_100_characters_are_unknown() {
    let tokenizer = fixture();
    let word = |n: usize| "a".repeat(n);
    let pieces = tokenizer.tokenize(&word(100));
    assert_eq!(pieces.len(), 100);
    assert!(pieces[0] == "a" && pieces[1..].iter().all(|p| *p == "##a"));
    assert_eq!(tokenizer.tokenize(&word(101)), ["[UNK]"]);
    // Characters are counted, not bytes: 100 two-byte characters still fit.
    let slashed = WordPieceTokenizer::from_vocab_str("[PAD]\n[UNK]\n[CLS]\n[SEP]\nø\n##ø\n", "ø.txt").unwrap();
    assert_eq!(slashed.tokenize(&"ø".repeat(100)).len(), 100);
    assert_eq!(slashed.tokenize(&"ø".repeat(101)), ["[UNK]"]);
    assert_eq!(tokenizer.tokenize(&format!("{} a", "a".repeat(100))).len(), 101);
}

#[test]
fn encode_adds_cls_and_sep_and_truncates_keeping_sep() {
    let tokenizer = fixture();
    let encoding = tokenizer.encode("A man is eating food.", 512);
    assert_eq!(encoding.ids, [3, 16, 19, 20, 21, 22, 23, 11, 4]);
    assert_eq!((encoding.n_pieces, encoding.is_truncated()), (7, false));
    let exact = tokenizer.encode("A man is eating food.", 9);
    assert_eq!((exact.ids.len(), exact.is_truncated()), (9, false));
    let cut = tokenizer.encode("A man is eating food.", 5);
    assert_eq!(cut.ids, [3, 16, 19, 20, 4]);
    assert_eq!((cut.n_pieces, cut.is_truncated()), (7, true));
    assert_eq!(tokenizer.encode("A man is eating food.", 2).ids, [3, 4]);
    assert_eq!(tokenizer.encode("", 8).ids, [3, 4]);
    // Special tokens in the text are text: no input forges a separator.
    assert_eq!(tokenizer.tokenize("[CLS]"), ["[", "cl", "##s", "]"]);
}

#[test]
#[should_panic(expected = "max_len 1 leaves no room for [CLS] and [SEP]")]
fn encode_needs_room_for_cls_and_sep() {
    let _ = fixture().encode("a", 1);
}

#[test]
fn crlf_line_ends_and_a_byte_order_mark_are_tolerated() {
    let text = std::fs::read_to_string(fixture_path()).unwrap();
    let crlf = format!("\u{FEFF}{}", text.replace('\n', "\r\n"));
    let tokenizer = WordPieceTokenizer::from_vocab_str(&crlf, "vocab-crlf.txt").unwrap();
    assert_eq!(tokenizer.vocab_size(), 41);
    assert_eq!(tokenizer.encode("unaffable", 16).ids, fixture().encode("unaffable", 16).ids);
    // An empty line keeps its id, so the ids after it are unchanged, and matches nothing.
    let gap = WordPieceTokenizer::from_vocab_str("[PAD]\n\n[UNK]\n[CLS]\n[SEP]\nx\n", "gap.txt").unwrap();
    assert_eq!((gap.token_to_id("x"), gap.token_to_id("")), (Some(5), None));
}

#[test]
fn a_missing_special_token_is_named() {
    let err = WordPieceTokenizer::from_vocab_str("[PAD]\n[UNK]\n[CLS]\nhello\n", "vocab.txt").unwrap_err();
    assert!(matches!(&err, DataError::MissingToken { token: "[SEP]", .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("vocab.txt: ") && message.contains("`[SEP]`"), "{message}");
}

#[test]
fn a_duplicate_token_names_both_lines() {
    let err =
        WordPieceTokenizer::from_vocab_str("[PAD]\n[UNK]\n[CLS]\n[SEP]\nfilm\nplot\nfilm\n", "dup.txt").unwrap_err();
    assert!(matches!(&err, DataError::DuplicateToken { line: 7, first_line: 5, .. }), "{err:?}");
    assert!(err.to_string().starts_with("dup.txt:7: token `film` is already on line 5"), "{err}");
}

#[test]
fn empty_unreadable_and_non_utf8_vocabularies_are_errors() {
    let err = WordPieceTokenizer::from_vocab_str("", "empty.txt").unwrap_err();
    assert!(matches!(&err, DataError::Empty { .. }) && err.to_string().contains("empty.txt"), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("vocab.txt");
    let err = WordPieceTokenizer::from_vocab_file(&missing).unwrap_err();
    assert!(matches!(&err, DataError::Io { path, .. } if *path == missing), "{err:?}");

    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"[PAD]\n[UNK]\n[CLS]\n[SEP]\ncaf\xe9\n").unwrap();
    let err = WordPieceTokenizer::from_vocab_file(&latin1).unwrap_err();
    assert!(matches!(&err, DataError::Utf8 { line: 5, offset: 27, .. }), "{err:?}");
    assert!(err.to_string().contains("latin1.txt:5: not valid UTF-8"), "{err}");
}

/// The real bert-base-uncased vocabulary of all-MiniLM-L6-v2, if `cargo xtask data minilm` has
/// fetched it (it is not committed); `None` after printing why the test is skipped.
fn real_vocab() -> Option<WordPieceTokenizer> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/minilm/vocab.txt"));
    if !path.is_file() {
        eprintln!("skipped: data/minilm/vocab.txt is absent (`cargo xtask data minilm` fetches it)");
        return None;
    }
    Some(WordPieceTokenizer::from_vocab_file(&path).unwrap())
}

#[test]
fn real_vocab_gives_the_known_bert_ids() {
    let Some(tokenizer) = real_vocab() else { return };
    assert_eq!(tokenizer.vocab_size(), 30_522);
    assert_eq!(tokenizer.special(), SpecialTokens { cls: 101, sep: 102, pad: 0, unk: 100 });
    assert_eq!(tokenizer.encode("A man is eating food.", 128).ids, [101, 1037, 2158, 2003, 5983, 2833, 1012, 102]);
    // Expected pieces and ids from Hugging Face's algorithm re-typed in Python and checked by
    // line number in vocab.txt (id = line - 1).
    let cases: [(&str, &[&str], &[u32]); 7] = [
        ("unaffable", &["una", "##ffa", "##ble"], &[14477, 20961, 3468]),
        ("Café", &["cafe"], &[7668]),
        ("naïve façade", &["naive", "facade"], &[15743, 8508]),
        ("Héllo, WORLD!!", &["hello", ",", "world", "!", "!"], &[7592, 1010, 2088, 999, 999]),
        ("don't", &["don", "'", "t"], &[2123, 1005, 1056]),
        ("tokenization", &["token", "##ization"], &[19204, 3989]),
        ("日本語", &["日", "本", "語"], &[1864, 1876, 1950]),
    ];
    for (text, pieces, ids) in cases {
        assert_eq!(tokenizer.tokenize(text), pieces, "{text}");
        let encoding = tokenizer.encode(text, 128);
        assert_eq!(encoding.ids[1..encoding.ids.len() - 1], *ids, "{text}");
    }
}

/// SHA-256 of the ids of every text, one line of space-separated ids per text.
fn ids_digest(tokenizer: &WordPieceTokenizer, texts: &[&str], max_len: usize) -> String {
    let mut hasher = Sha256::new();
    for text in texts {
        let ids: Vec<String> = tokenizer.encode(text, max_len).ids.iter().map(u32::to_string).collect();
        hasher.update(format!("{}\n", ids.join(" ")));
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The digests below were computed by a re-typing of Hugging Face's `BasicTokenizer` and
/// `WordpieceTokenizer` in Python 3.11 (`unicodedata` 14.0.0) on the same texts.
#[test]
fn real_vocab_matches_the_python_reference_on_the_embedded_reviews() {
    let Some(tokenizer) = real_vocab() else { return };
    let rt = RtSentiment::embedded().unwrap();
    let texts: Vec<&str> =
        [&rt.train, &rt.dev, &rt.test].iter().flat_map(|d| d.texts.iter().map(String::as_str)).collect();
    assert_eq!(texts.len(), 600);
    assert_eq!(ids_digest(&tokenizer, &texts, 512), "bf69adad22072503dee15d288c9cb0f195ddbe22f017af56c8a816b81e92a8e3");
}

#[test]
fn real_vocab_matches_the_python_reference_on_the_whole_corpus() {
    let Some(tokenizer) = real_vocab() else { return };
    let path =
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/rt-sentiment/rotten_tomatoes_corpus_full.csv"));
    if !path.is_file() {
        eprintln!("skipped: data/rt-sentiment is absent (`cargo xtask data rt-sentiment` fetches it)");
        return;
    }
    // Every text, plot descriptions included (they are longer and more varied than reviews).
    let records = csv::parse_bytes(&std::fs::read(path).unwrap(), path).unwrap();
    let texts: Vec<&str> = records[1..].iter().map(|record| record.fields[1].as_str()).collect();
    assert_eq!(texts.len(), 13_905);
    assert_eq!(
        ids_digest(&tokenizer, &texts, 100_000),
        "9001bdd9a9fddc132f11bb3f7966badfad86984b5ef74c16d54eb88fa7ad0a4a"
    );
    assert_eq!(ids_digest(&tokenizer, &texts, 128), "7178d0ee06b041d3fd594efdc4013a099ed8d16d185a46cf37e7ada88a06c62d");
}
