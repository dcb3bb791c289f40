//! `[data]` of an image experiment: which dataset, where it is, how it is batched, and its
//! loading with the dataset's normalisation and the configured limits, checked so that no run
//! trains on an empty split or a batch larger than its data.
//!
//! ```
//! use sorted_data::{DatasetKind, ImageDataConfig};
//!
//! let config: ImageDataConfig = toml::from_str("batch_size = 32\ntrain_limit = 640")?;
//! assert_eq!(config.dataset, DatasetKind::Mnist);
//! let data = config.load()?; // the MNIST subset compiled into this crate
//! assert_eq!((data.train.len(), data.n_classes(), data.image_shape()), (640, 10, [1, 28, 28]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    AugmentConfig, CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, Cifar10, Cifar100, Cifar100Labels,
    DataError, FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionMnist, ImageBatcher, ImageDataset, ImageSet, Mnist,
};

/// The image datasets an experiment can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// MNIST digits, 1x28x28 (embedded subset or the full set).
    #[default]
    Mnist,
    /// Fashion-MNIST, 1x28x28.
    FashionMnist,
    /// CIFAR-10, 3x32x32.
    Cifar10,
    /// CIFAR-100 (fine labels), 3x32x32.
    Cifar100,
}

impl DatasetKind {
    /// The name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    /// `[channels, height, width]` of one image.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => [1, 28, 28],
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => [3, 32, 32],
        }
    }

    /// The number of classes.
    pub fn n_classes(self) -> usize {
        match self {
            DatasetKind::Cifar100 => 100,
            _ => 10,
        }
    }
}

/// `[data]`: where the images come from and how they are batched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDataConfig {
    /// Which dataset: `mnist` (the default), `fashion-mnist`, `cifar10`, `cifar100`.
    #[serde(default)]
    pub dataset: DatasetKind,
    /// `"embedded"` (the committed MNIST subset; MNIST only) or the dataset's folder: the four
    /// IDX files (raw or `.gz`) for MNIST (`cargo xtask data mnist` → `data/mnist`) and
    /// Fashion-MNIST (`cargo xtask data fashion-mnist` → `data/fashion-mnist`), or CIFAR's
    /// binary version (`cifar-10-batches-bin/` or `cifar-100-binary/`, or their parent).
    #[serde(default = "default_source")]
    pub source: String,
    /// Training-time augmentation (seeded; off by default): `crop_padding`, `horizontal_flip`.
    #[serde(default, skip_serializing_if = "AugmentConfig::is_identity")]
    pub augment: AugmentConfig,
    /// Training batch size.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Use only the first `train_limit` training images (0 = all).
    #[serde(default)]
    pub train_limit: usize,
    /// Use only the first `test_limit` test images (0 = all).
    #[serde(default)]
    pub test_limit: usize,
}

impl Default for ImageDataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::default(),
            source: default_source(),
            augment: AugmentConfig::default(),
            batch_size: default_batch_size(),
            train_limit: 0,
            test_limit: 0,
        }
    }
}

fn default_source() -> String {
    "embedded".into()
}

fn default_batch_size() -> usize {
    128
}

/// An experiment's images, with the normalisation its batches use.
#[derive(Clone, Debug)]
pub struct ImageData {
    /// Training split (after `train_limit`).
    pub train: ImageSet,
    /// Test split (after `test_limit`).
    pub test: ImageSet,
    /// Class names by label.
    pub class_names: &'static [&'static str],
    /// Builds normalised batches (the dataset's per-channel statistics).
    pub batcher: ImageBatcher,
}

impl ImageData {
    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// `[channels, rows, cols]` of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        self.train.image_shape()
    }

    /// Per-channel `(mean, std)` the batcher normalises with.
    pub fn normalisation(&self) -> Vec<(f32, f32)> {
        (0..self.image_shape()[0]).map(|c| self.batcher.stats(c)).collect()
    }
}

impl ImageDataConfig {
    /// Loads the configured dataset with its normalisation and applies the limits.
    ///
    /// # Errors
    /// [`DataError::Config`] for `source = "embedded"` with another dataset than MNIST, an
    /// empty split or a batch larger than the training split; [`DataError::Load`] (naming the
    /// folder and how to fetch the data) when the files cannot be read.
    pub fn load(&self) -> Result<ImageData, DataError> {
        let dir = Path::new(&self.source);
        let embedded = self.source == "embedded";
        if embedded && self.dataset != DatasetKind::Mnist {
            return Err(DataError::Config {
                key: "data.source".into(),
                expected: format!(
                    "a folder: \"embedded\" is the MNIST subset, data.dataset is `{}`",
                    self.dataset.name()
                ),
                got: "\"embedded\"".into(),
            });
        }
        let from = |hint: &str| {
            let hint = hint.to_string();
            move |source: DataError| DataError::Load {
                dataset: self.dataset.name(),
                source_dir: self.source.clone(),
                hint: hint.clone(),
                source: Box::new(source),
            }
        };
        let (dataset, batcher): (ImageDataset, ImageBatcher) = match self.dataset {
            #[cfg(feature = "embedded")]
            DatasetKind::Mnist if embedded => (Mnist::embedded()?.into(), ImageBatcher::default()),
            #[cfg(not(feature = "embedded"))]
            DatasetKind::Mnist if embedded => {
                return Err(DataError::Config {
                    key: "data.source".into(),
                    expected: "a folder (this build of sorted-data has no embedded subset)".into(),
                    got: "\"embedded\"".into(),
                });
            }
            DatasetKind::Mnist => (
                Mnist::from_dir(dir).map_err(from("`cargo xtask data mnist` puts the full set in data/mnist"))?.into(),
                ImageBatcher::default(),
            ),
            DatasetKind::FashionMnist => (
                FashionMnist::from_dir(dir)
                    .map_err(from("`cargo xtask data fashion-mnist` puts it in data/fashion-mnist"))?
                    .into(),
                ImageBatcher::new(FASHION_MNIST_MEAN, FASHION_MNIST_STD),
            ),
            DatasetKind::Cifar10 => (
                Cifar10::from_dir(dir).map_err(from("CIFAR-10's binary version"))?.into(),
                ImageBatcher::per_channel(CIFAR10_MEAN, CIFAR10_STD),
            ),
            DatasetKind::Cifar100 => (
                Cifar100::from_dir(dir, Cifar100Labels::Fine).map_err(from("CIFAR-100's binary version"))?.into(),
                ImageBatcher::per_channel(CIFAR100_MEAN, CIFAR100_STD),
            ),
        };
        let mut data =
            ImageData { train: dataset.train, test: dataset.test, class_names: dataset.class_names, batcher };
        limit(&mut data.train, self.train_limit);
        limit(&mut data.test, self.test_limit);
        self.check_splits(data.train.len(), data.test.len())?;
        Ok(data)
    }

    /// Empty splits and a batch larger than the training split are errors: either would give a
    /// report of 0 % or of nothing, not a result.
    fn check_splits(&self, n_train: usize, n_test: usize) -> Result<(), DataError> {
        for (split, n) in [("training", n_train), ("test", n_test)] {
            if n == 0 {
                return Err(DataError::Config {
                    key: "data.source".into(),
                    expected: format!("images in its {split} split"),
                    got: format!("{:?}, whose {split} split holds no images", self.source),
                });
            }
        }
        if self.batch_size == 0 || self.batch_size > n_train {
            let limit = if self.train_limit > 0 {
                format!(" (data.train_limit = {})", self.train_limit)
            } else {
                String::new()
            };
            return Err(DataError::Config {
                key: "data.batch_size".into(),
                expected: format!("1 to the {n_train} training images of {:?}{limit}", self.source),
                got: self.batch_size.to_string(),
            });
        }
        Ok(())
    }
}

fn limit(set: &mut ImageSet, n: usize) {
    if n > 0 && n < set.len() {
        *set = set.select(&(0..n).collect::<Vec<_>>());
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;

    #[test]
    fn issue_27_bad_data_configs_are_errors_naming_the_key() {
        let load = |text: &str| toml::from_str::<ImageDataConfig>(text).unwrap().load().unwrap_err().to_string();
        let err = load("dataset = \"cifar10\"");
        assert!(err.contains("data.source") && err.contains("cifar10"), "{err}");
        let err = load("batch_size = 100\ntrain_limit = 50");
        assert!(err.contains("data.batch_size") && err.contains("50 training images"), "{err}");
        let err = load("source = \"no/such/folder\"");
        assert!(err.contains("no/such/folder") && err.contains("cargo xtask data mnist"), "{err}");
    }
}
