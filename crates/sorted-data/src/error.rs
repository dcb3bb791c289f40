//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading a dataset.
///
/// Every variant names the file it is about (`path`; for data compiled into the binary this is a
/// source name such as `embedded:mnist-subset/train-images-idx3-ubyte.gz`) and carries what was
/// expected and what was found as fields, so callers can match on them and the message is
/// actionable on its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A file starts with the gzip magic bytes but does not decompress.
    #[error("{}: looks gzip-compressed (starts with 1f 8b) but does not decompress", path.display())]
    Gzip {
        /// The file that failed to decompress.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    /// The IDX magic number is not the one expected for this kind of file.
    #[error(
        "{}: wrong IDX magic number: expected {expected:#010x} ({}), got {got:#010x}",
        path.display(),
        magic_name(*expected)
    )]
    WrongMagic {
        /// The file with the wrong magic number.
        path: PathBuf,
        /// The magic number this kind of file must start with.
        expected: u32,
        /// The magic number found in the file.
        got: u32,
    },

    /// The file is shorter than its header (or the header itself) says it must be.
    #[error(
        "{}: truncated: expected {expected_bytes} bytes, got {got_bytes}",
        path.display()
    )]
    Truncated {
        /// The truncated file (after decompression, if it was gzip-compressed).
        path: PathBuf,
        /// The length the header implies (or the header length, if even that is missing).
        expected_bytes: u64,
        /// The actual length.
        got_bytes: u64,
    },

    /// The file is longer than its header says: trailing bytes usually mean a corrupt or
    /// concatenated file, so they are rejected rather than ignored.
    #[error(
        "{}: {} unexpected trailing bytes: the header implies {expected_bytes} bytes, got {got_bytes}",
        path.display(),
        got_bytes - expected_bytes
    )]
    TrailingBytes {
        /// The file with trailing bytes (after decompression, if it was gzip-compressed).
        path: PathBuf,
        /// The length the header implies.
        expected_bytes: u64,
        /// The actual length.
        got_bytes: u64,
    },

    /// An IDX header field is out of range (for instance an image size of zero, or sizes whose
    /// product does not fit in memory).
    #[error("{}: bad IDX header field `{field}`: expected {expected}, got {got}", path.display())]
    BadHeader {
        /// The file with the bad header.
        path: PathBuf,
        /// The header field: `n_items`, `n_rows` or `n_cols`.
        field: &'static str,
        /// What the field must satisfy.
        expected: &'static str,
        /// The value found.
        got: u64,
    },

    /// The images file and the labels file hold different numbers of items.
    #[error(
        "{} holds {images} images but {} holds {labels} labels; the counts must match",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// The labels file.
        labels_path: PathBuf,
        /// The number of images.
        images: usize,
        /// The number of labels.
        labels: usize,
    },

    /// A label is outside the dataset's class range.
    #[error(
        "{}: label {label} at index {index} is out of range: expected a class in 0..{n_classes}",
        path.display()
    )]
    BadLabel {
        /// The labels file.
        path: PathBuf,
        /// The index of the offending label.
        index: usize,
        /// The offending label.
        label: u8,
        /// The number of classes of the dataset.
        n_classes: usize,
    },

    /// Two splits of one dataset have images of different sizes.
    #[error(
        "{} holds {}x{} images but {} holds {}x{} images; both splits must have the same image size",
        first_path.display(),
        first.0,
        first.1,
        second_path.display(),
        second.0,
        second.1
    )]
    ShapeMismatch {
        /// The first images file.
        first_path: PathBuf,
        /// `(n_rows, n_cols)` of the first file.
        first: (usize, usize),
        /// The second images file.
        second_path: PathBuf,
        /// `(n_rows, n_cols)` of the second file.
        second: (usize, usize),
    },

    /// A file a dataset needs is not in its folder.
    #[error(
        "{}: missing {file} (looked for {file} and {file}.gz{})",
        dir.display(),
        if alternatives.is_empty() { String::new() } else { format!(", and {}", alternatives.join(", ")) }
    )]
    Missing {
        /// The folder that was searched.
        dir: PathBuf,
        /// The standard file name.
        file: String,
        /// Other accepted names that were also tried (besides `file` and `file.gz`).
        alternatives: Vec<String>,
    },

    /// A file of a dataset that is not in any registry (CIFAR) is not where it was looked for;
    /// the message says where to get it.
    #[error("{}: missing {file}; {help}", dir.display())]
    MissingFile {
        /// The folder that was searched.
        dir: PathBuf,
        /// The file's name.
        file: String,
        /// Which files the folder should hold and where to get them.
        help: &'static str,
    },

    /// A file of fixed-size records is not a whole number of records long.
    #[error(
        "{}: {len} bytes is not a whole number of {format} records ({record_bytes} bytes each; {} bytes left over)",
        path.display(),
        len % record_bytes
    )]
    RecordSize {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The size of one record.
        record_bytes: u64,
        /// The format and its record layout, for example `CIFAR-10 (1 label byte + 3072 pixel bytes)`.
        format: &'static str,
    },

    /// A file holds no data at all (an interrupted download, usually).
    #[error("{}: the file is empty; expected at least one {format} record", path.display())]
    Empty {
        /// The empty file.
        path: PathBuf,
        /// The format expected, for example `CIFAR-10 (1 label byte + 3072 pixel bytes)`.
        format: &'static str,
    },

    /// A text file is not valid UTF-8.
    #[error("{}:{line}: not valid UTF-8 (at byte offset {offset})", path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// The line (counted from 1) holding the first invalid byte.
        line: usize,
        /// The offset of the first invalid byte in the file.
        offset: usize,
    },

    /// A CSV file breaks the CSV syntax (RFC 4180, with LF or CRLF line endings).
    #[error("{}:{line}: bad CSV: expected {expected}, got {got}", path.display())]
    CsvSyntax {
        /// The CSV file.
        path: PathBuf,
        /// The line (counted from 1) of the offending character.
        line: usize,
        /// What the syntax allows there.
        expected: &'static str,
        /// What the file holds there.
        got: String,
    },

    /// A quoted CSV field is never closed: the file ends inside it.
    #[error(
        "{}:{line}: unterminated quoted field: the quote that opens it is never closed (a quote inside a quoted field is written \"\")",
        path.display()
    )]
    UnterminatedQuote {
        /// The CSV file.
        path: PathBuf,
        /// The line (counted from 1) of the opening quote.
        line: usize,
    },

    /// A CSV record has the wrong number of fields.
    #[error("{}:{line}: expected {expected} fields, got {got}", path.display())]
    FieldCount {
        /// The CSV file.
        path: PathBuf,
        /// The line (counted from 1) the record starts on.
        line: usize,
        /// The number of columns of the header.
        expected: usize,
        /// The number of fields of the record.
        got: usize,
    },

    /// The header of a CSV file is not the one its format has.
    #[error("{}:{line}: wrong header: expected `{expected}`, got `{got}`", path.display())]
    CsvHeader {
        /// The CSV file.
        path: PathBuf,
        /// The line (counted from 1) of the header.
        line: usize,
        /// The header the format has, fields joined by commas.
        expected: String,
        /// The header found, fields joined by commas.
        got: String,
    },

    /// A field holds a value outside the set its column allows (an unknown category, say).
    #[error("{}:{line}: unknown {column} `{got}`: expected one of {expected}", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The line (counted from 1) of the record.
        line: usize,
        /// The column.
        column: &'static str,
        /// The values allowed.
        expected: &'static str,
        /// The value found.
        got: String,
    },

    /// A file holds a number of records other than the one its format fixes.
    #[error("{}: expected {expected} {what}, got {got}", path.display())]
    RecordCount {
        /// The file.
        path: PathBuf,
        /// What is counted, for example `reviews (fresh or rotten rows)`.
        what: &'static str,
        /// The number the format requires, in words: `600`, `at least 1`.
        expected: String,
        /// The number found.
        got: usize,
    },

    /// A token occurs on two lines of a vocabulary file, so it would have two ids.
    #[error(
        "{}:{line}: token `{token}` is already on line {first_line}; every line of a vocabulary must be a distinct token",
        path.display()
    )]
    DuplicateToken {
        /// The vocabulary file.
        path: PathBuf,
        /// The line (counted from 1) of the repetition.
        line: usize,
        /// The line (counted from 1) the token first occurs on.
        first_line: usize,
        /// The token.
        token: String,
    },

    /// A vocabulary lacks a special token the tokenizer needs.
    #[error(
        "{}: no line is the special token `{token}`; a BERT vocabulary needs [PAD], [UNK], [CLS] and [SEP]",
        path.display()
    )]
    MissingToken {
        /// The vocabulary file.
        path: PathBuf,
        /// The special token that is missing.
        token: &'static str,
    },

    /// A token occurs twice in a vocabulary given as a list (a GGUF file's
    /// `tokenizer.ggml.tokens`), so it would have two ids.
    #[error(
        "{}: token {id} `{token}` is already token {first_id}; every token of a vocabulary must be distinct",
        path.display()
    )]
    DuplicateTokenId {
        /// What the vocabulary was read from.
        path: PathBuf,
        /// The id (index, counted from 0) of the repetition.
        id: u32,
        /// The id the token first has.
        first_id: u32,
        /// The token.
        token: String,
    },

    /// A BPE merge is malformed or does not fit the vocabulary.
    #[error("{}: merge {index} `{merge}`: expected {expected}", path.display())]
    BadMerge {
        /// What the merges were read from.
        path: PathBuf,
        /// The merge's index (counted from 0), which is its rank.
        index: usize,
        /// The merge, as given.
        merge: String,
        /// What the merge must be, for example ``its result `Ġthe` to be a token of the
        /// vocabulary``.
        expected: String,
    },

    /// A special token of a tokenizer is not usable.
    #[error("{}: special token `{token}`: expected {expected}", path.display())]
    BadSpecialToken {
        /// What the vocabulary was read from.
        path: PathBuf,
        /// The special token, as given.
        token: String,
        /// What it must be: `a token of the vocabulary` or `a non-empty token`.
        expected: &'static str,
    },

    /// A GGUF file names a pre-tokenizer that is not implemented.
    #[error("{}: unknown pre-tokenizer `{got}`: expected `gpt2` or `smollm`", path.display())]
    UnknownPreTokenizer {
        /// The file.
        path: PathBuf,
        /// The name it gives (`tokenizer.ggml.pre`).
        got: String,
    },

    /// Input that would need more memory than the reader allows for it (a gzip stream that
    /// inflates past [`MAX_DECOMPRESSED_BYTES`](crate::idx::MAX_DECOMPRESSED_BYTES), say).
    #[error("{}: {what} exceeds the limit of {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What is too large.
        what: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },

    /// A vocabulary has more tokens than `u32` ids can number.
    #[error("{}: {n_tokens} tokens do not fit in u32 ids", path.display())]
    VocabTooLarge {
        /// The vocabulary file.
        path: PathBuf,
        /// The number of lines.
        n_tokens: usize,
    },
    /// A `[data]` value that cannot give a run data: names the key.
    #[error("`{key}`: expected {expected}, got {got}")]
    Config {
        /// The key path, e.g. `data.batch_size`.
        key: String,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A dataset folder could not be loaded; says how to get the data.
    #[error("loading {dataset} from `{source_dir}` (data.source); {hint}")]
    Load {
        /// The dataset's config name.
        dataset: &'static str,
        /// The folder.
        source_dir: String,
        /// How to get the data.
        hint: String,
        /// What went wrong.
        #[source]
        source: Box<DataError>,
    },
    /// A GGUF file (or a key of it) that cannot be read.
    #[error(transparent)]
    Gguf(#[from] crate::GgufError),
}

/// A human name for an IDX magic number, for error messages.
fn magic_name(magic: u32) -> &'static str {
    match magic {
        crate::idx::IMAGES_MAGIC => "IDX images: unsigned bytes, 3 dimensions",
        crate::idx::LABELS_MAGIC => "IDX labels: unsigned bytes, 1 dimension",
        _ => "unknown",
    }
}
