//! MNIST: the full set from a folder, or the subset compiled into this crate.

use std::path::{Path, PathBuf};

use crate::{DataError, ImageDataset, ImageSet};

/// The standard file name of the MNIST training images.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// The standard file name of the MNIST training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// The standard file name of the MNIST test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// The standard file name of the MNIST test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The number of MNIST classes (the digits 0 to 9).
pub const MNIST_CLASSES: usize = 10;

/// The names of the MNIST classes, by label: the digits themselves.
pub const MNIST_CLASS_NAMES: [&str; MNIST_CLASSES] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The number of training images in the embedded subset: the first 10,000 of MNIST's 60,000.
pub const EMBEDDED_TRAIN_LEN: usize = 10_000;
/// Every how many test images the embedded subset keeps one: indices 0, 5, 10, ... of MNIST's
/// 10,000 test images, 2,000 in all, drawn from both halves of the test set.
pub const EMBEDDED_TEST_STRIDE: usize = 5;

/// SHA-256 of the four *uncompressed* IDX files of the embedded subset, by standard file name.
///
/// `cargo xtask data embedded` checks the subset it cuts against these, and the tests check the
/// embedded bytes. The provenance and the checksums of the compressed files are in
/// `crates/sorted-data/data/mnist-subset/README.md`.
pub const EMBEDDED_MNIST_SHA256: [(&str, &str); 4] = [
    (TRAIN_IMAGES, "2889698e6bc3614913e76901316712919d1998fc2b44512451bfe65bc1e668b1"),
    (TRAIN_LABELS, "651e38e2ac0632f5113ec18f1df4977117f953197819034009971a6675a0df78"),
    (TEST_IMAGES, "544b11e980491b35ea0a29d267be603798a522d267bd875eefdf185f2a90b4ed"),
    (TEST_LABELS, "00c8ee896b56b1f141feedeefecd0ec606a7715b411eb44be7e1b1decd17e3fd"),
];

/// The embedded subset's folder inside this crate, relative to the crate root.
pub const EMBEDDED_DIR: &str = "data/mnist-subset";

/// The MNIST handwritten digits: 28x28 grey images, labels 0 to 9.
///
/// MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, licensed CC BY-SA 3.0.
///
/// ```
/// let mnist = sorted_data::Mnist::embedded()?;
/// assert_eq!((mnist.train.len(), mnist.test.len()), (10_000, 2_000));
/// assert_eq!(mnist.train.image_shape(), [1, 28, 28]);
/// # Ok::<(), sorted_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mnist {
    /// The training split.
    pub train: ImageSet,
    /// The test split.
    pub test: ImageSet,
}

/// The embedded subset's gzip IDX files, in the order train images, train labels, test images,
/// test labels.
#[cfg(feature = "embedded")]
const EMBEDDED: [(&str, &[u8]); 4] = [
    (
        "embedded:mnist-subset/train-images-idx3-ubyte.gz",
        include_bytes!("../data/mnist-subset/train-images-idx3-ubyte.gz"),
    ),
    (
        "embedded:mnist-subset/train-labels-idx1-ubyte.gz",
        include_bytes!("../data/mnist-subset/train-labels-idx1-ubyte.gz"),
    ),
    (
        "embedded:mnist-subset/t10k-images-idx3-ubyte.gz",
        include_bytes!("../data/mnist-subset/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "embedded:mnist-subset/t10k-labels-idx1-ubyte.gz",
        include_bytes!("../data/mnist-subset/t10k-labels-idx1-ubyte.gz"),
    ),
];

impl Mnist {
    /// The MNIST subset compiled into this crate (about 2 MB of gzip IDX): the first 10,000
    /// training images and every 5th test image (2,000). Needs no file and no network.
    ///
    /// Only with the `embedded` feature (on by default).
    ///
    /// # Errors
    /// Never, unless the committed files were corrupted; the error then names the embedded file.
    #[cfg(feature = "embedded")]
    pub fn embedded() -> Result<Mnist, DataError> {
        let [train_images, train_labels, test_images, test_labels] = EMBEDDED;
        let split = |(images_name, images), (labels_name, labels)| {
            let set = ImageSet::from_idx_bytes(images, labels, images_name, labels_name)?;
            set.check_labels(MNIST_CLASSES, Path::new(labels_name))?;
            Ok::<_, DataError>(set)
        };
        let train = split(train_images, train_labels)?;
        let test = split(test_images, test_labels)?;
        check_same_shape(&train, Path::new(train_images.0), &test, Path::new(test_images.0))?;
        Ok(Mnist { train, test })
    }

    /// Reads MNIST from a folder holding the four standard files, each either raw
    /// (`train-images-idx3-ubyte`) or gzip-compressed (`train-images-idx3-ubyte.gz`). The
    /// variant spelling with a dot (`train-images.idx3-ubyte`) is accepted too.
    ///
    /// `cargo xtask data mnist` puts the full set into `data/mnist`.
    ///
    /// # Errors
    /// - [`DataError::Missing`] if a file is in none of the accepted spellings;
    /// - [`DataError::BadLabel`] if a label is not a digit;
    /// - [`DataError::ShapeMismatch`] if train and test images differ in size;
    /// - every error of [`ImageSet::from_idx_files`].
    pub fn from_dir(dir: &Path) -> Result<Mnist, DataError> {
        let (train, test) = read_idx_dir(dir, MNIST_CLASSES)?;
        Ok(Mnist { train, test })
    }
}

impl From<Mnist> for ImageDataset {
    fn from(mnist: Mnist) -> Self {
        ImageDataset { train: mnist.train, test: mnist.test, class_names: &MNIST_CLASS_NAMES }
    }
}

/// Reads the training and test splits from a folder in MNIST's layout: the four files
/// [`TRAIN_IMAGES`], [`TRAIN_LABELS`], [`TEST_IMAGES`], [`TEST_LABELS`], each raw or gzip, with
/// a dash or a dot before `idx`. Fashion-MNIST uses the same layout and names.
pub(crate) fn read_idx_dir(dir: &Path, n_classes: usize) -> Result<(ImageSet, ImageSet), DataError> {
    let split = |images: &str, labels: &str| {
        let images_path = find_file(dir, images)?;
        let labels_path = find_file(dir, labels)?;
        let set = ImageSet::from_idx_files(&images_path, &labels_path)?;
        set.check_labels(n_classes, &labels_path)?;
        Ok::<_, DataError>((set, images_path))
    };
    let (train, train_path) = split(TRAIN_IMAGES, TRAIN_LABELS)?;
    let (test, test_path) = split(TEST_IMAGES, TEST_LABELS)?;
    check_same_shape(&train, &train_path, &test, &test_path)?;
    Ok((train, test))
}

/// Finds `file` in `dir` under its accepted spellings: raw or `.gz`, with a dash or a dot
/// before `idx`.
fn find_file(dir: &Path, file: &str) -> Result<PathBuf, DataError> {
    let dotted = file.replacen("-idx", ".idx", 1);
    let candidates = [file.to_owned(), format!("{file}.gz"), dotted.clone(), format!("{dotted}.gz")];
    candidates.iter().map(|name| dir.join(name)).find(|path| path.is_file()).ok_or_else(|| DataError::Missing {
        dir: dir.to_path_buf(),
        file: file.to_owned(),
        alternatives: candidates[2..].to_vec(),
    })
}

/// Checks that both splits hold images of one size.
fn check_same_shape(
    first: &ImageSet,
    first_path: &Path,
    second: &ImageSet,
    second_path: &Path,
) -> Result<(), DataError> {
    let (a, b) = ((first.n_rows, first.n_cols), (second.n_rows, second.n_cols));
    if a == b {
        return Ok(());
    }
    Err(DataError::ShapeMismatch {
        first_path: first_path.to_path_buf(),
        first: a,
        second_path: second_path.to_path_buf(),
        second: b,
    })
}
