//! Fashion-MNIST: Zalando's 28x28 grey images of clothing, in MNIST's file format and layout.

use std::path::Path;

use crate::{DataError, ImageDataset, ImageSet, mnist::read_idx_dir};

/// The mean pixel intensity of the Fashion-MNIST training set, on the 0..1 scale.
///
/// Computed with [`ImageSet::channel_mean_std`] over all 60,000 training images
/// (`cargo xtask data stats fashion-mnist`, after `cargo xtask data fashion-mnist`):
/// 0.286041.
pub const FASHION_MNIST_MEAN: f32 = 0.2860;
/// The standard deviation of the Fashion-MNIST training set's pixel intensities (all pixels
/// pooled), on the 0..1 scale; computed like [`FASHION_MNIST_MEAN`]: 0.353024.
pub const FASHION_MNIST_STD: f32 = 0.3530;

/// The names of the ten Fashion-MNIST classes, by label, as Zalando's README lists them.
pub const FASHION_MNIST_CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Fashion-MNIST: 28x28 grey images of ten kinds of clothing, 60,000 for training and 10,000
/// for testing, a drop-in replacement for MNIST that is harder to fit.
///
/// Fashion-MNIST is by Han Xiao, Kashif Rasul and Roland Vollgraf (Zalando Research), MIT
/// licence. `cargo xtask data fashion-mnist` fetches it into `data/fashion-mnist` (from the
/// Debian package `dataset-fashion-mnist`).
///
/// ```
/// use sorted_data::{FASHION_MNIST_CLASS_NAMES, FashionMnist, ImageDataset, idx};
///
/// // A folder in Fashion-MNIST's layout: the four MNIST file names, gzip or raw.
/// let dir = tempfile::tempdir()?;
/// let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), idx::compress_gzip(&bytes));
/// write("train-images-idx3-ubyte.gz", idx::encode_images(&[0; 2 * 784], 2, 28, 28))?;
/// write("train-labels-idx1-ubyte.gz", idx::encode_labels(&[9, 0]))?;
/// write("t10k-images-idx3-ubyte.gz", idx::encode_images(&[255; 784], 1, 28, 28))?;
/// write("t10k-labels-idx1-ubyte.gz", idx::encode_labels(&[7]))?;
///
/// let fashion = FashionMnist::from_dir(dir.path())?;
/// assert_eq!((fashion.train.len(), fashion.test.len()), (2, 1));
/// let data: ImageDataset = fashion.into();
/// assert_eq!(data.class_names[usize::from(data.train.labels[0])], "Ankle boot");
/// assert_eq!(data.class_names, FASHION_MNIST_CLASS_NAMES);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FashionMnist {
    /// The training split.
    pub train: ImageSet,
    /// The test split.
    pub test: ImageSet,
}

impl FashionMnist {
    /// Reads Fashion-MNIST from a folder holding its four files under MNIST's names
    /// ([`TRAIN_IMAGES`](crate::TRAIN_IMAGES) and so on), each raw or gzip-compressed (as
    /// shipped: `train-images-idx3-ubyte.gz`).
    ///
    /// `cargo xtask data fashion-mnist` puts the full set into `data/fashion-mnist`.
    ///
    /// # Errors
    /// - [`DataError::Missing`] if a file is in none of the accepted spellings;
    /// - [`DataError::BadLabel`] if a label is not below 10;
    /// - [`DataError::ShapeMismatch`] if train and test images differ in size;
    /// - every error of [`ImageSet::from_idx_files`].
    pub fn from_dir(dir: &Path) -> Result<FashionMnist, DataError> {
        let (train, test) = read_idx_dir(dir, FASHION_MNIST_CLASS_NAMES.len())?;
        Ok(FashionMnist { train, test })
    }
}

impl From<FashionMnist> for ImageDataset {
    fn from(fashion: FashionMnist) -> Self {
        ImageDataset { train: fashion.train, test: fashion.test, class_names: &FASHION_MNIST_CLASS_NAMES }
    }
}
