//! Loading the experiment's data.

use std::path::Path;

use anyhow::Context;
use sorted_data::{
    CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, Cifar10, Cifar100, Cifar100Labels, FASHION_MNIST_MEAN,
    FASHION_MNIST_STD, FashionMnist, ImageBatcher, ImageDataset, ImageSet, Mnist,
};

use crate::config::{DataConfig, DatasetKind};

/// An experiment's images, with the normalisation its batches use.
#[derive(Clone, Debug)]
pub struct RunData {
    /// Training split (after `train_limit`).
    pub train: ImageSet,
    /// Test split (after `test_limit`).
    pub test: ImageSet,
    /// Class names by label.
    pub class_names: &'static [&'static str],
    /// Builds normalised batches (the dataset's per-channel statistics).
    pub batcher: ImageBatcher,
}

impl RunData {
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

/// Loads the configured dataset and applies the limits.
///
/// # Errors
/// When the folder or its files cannot be read (the error names the file and the command that
/// fetches the data).
pub fn load(config: &DataConfig) -> anyhow::Result<RunData> {
    let dir = Path::new(&config.source);
    let embedded = config.source == "embedded";
    anyhow::ensure!(
        !embedded || config.dataset == DatasetKind::Mnist,
        "data.source = \"embedded\" is the MNIST subset; data.dataset = \"{}\" needs a folder in data.source",
        config.dataset.name()
    );
    let (dataset, batcher): (ImageDataset, ImageBatcher) = match config.dataset {
        DatasetKind::Mnist if embedded => {
            (Mnist::embedded().context("loading the embedded MNIST subset")?.into(), ImageBatcher::default())
        }
        DatasetKind::Mnist => (
            Mnist::from_dir(dir)
                .with_context(|| {
                    format!(
                        "loading MNIST from `{}` (data.source); `cargo xtask data mnist` puts the full set in data/mnist",
                        dir.display()
                    )
                })?
                .into(),
            ImageBatcher::default(),
        ),
        DatasetKind::FashionMnist => (
            FashionMnist::from_dir(dir)
                .with_context(|| {
                    format!(
                        "loading Fashion-MNIST from `{}` (data.source); `cargo xtask data fashion-mnist` puts it in \
                         data/fashion-mnist",
                        dir.display()
                    )
                })?
                .into(),
            ImageBatcher::new(FASHION_MNIST_MEAN, FASHION_MNIST_STD),
        ),
        DatasetKind::Cifar10 => (
            Cifar10::from_dir(dir)
                .with_context(|| format!("loading CIFAR-10 (binary version) from `{}` (data.source)", dir.display()))?
                .into(),
            ImageBatcher::per_channel(CIFAR10_MEAN, CIFAR10_STD),
        ),
        DatasetKind::Cifar100 => (
            Cifar100::from_dir(dir, Cifar100Labels::Fine)
                .with_context(|| format!("loading CIFAR-100 (binary version) from `{}` (data.source)", dir.display()))?
                .into(),
            ImageBatcher::per_channel(CIFAR100_MEAN, CIFAR100_STD),
        ),
    };
    let mut data = RunData { train: dataset.train, test: dataset.test, class_names: dataset.class_names, batcher };
    limit(&mut data.train, config.train_limit);
    limit(&mut data.test, config.test_limit);
    check_splits(config, data.train.len(), data.test.len())?;
    Ok(data)
}

/// Empty splits and a batch larger than the training split are errors: either would give a
/// report of 0 % or of nothing, not a result.
fn check_splits(config: &DataConfig, n_train: usize, n_test: usize) -> anyhow::Result<()> {
    for (split, n) in [("training", n_train), ("test", n_test)] {
        anyhow::ensure!(n > 0, "the {split} split of data.source = {:?} holds no images", config.source);
    }
    anyhow::ensure!(
        config.batch_size <= n_train,
        "data.batch_size = {} is larger than the {n_train} training images of data.source = {:?}{}",
        config.batch_size,
        config.source,
        if config.train_limit > 0 { format!(" (data.train_limit = {})", config.train_limit) } else { String::new() }
    );
    Ok(())
}

fn limit(set: &mut ImageSet, n: usize) {
    if n > 0 && n < set.len() {
        *set = set.select(&(0..n).collect::<Vec<_>>());
    }
}
