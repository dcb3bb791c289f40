//! A dataset of any kind: its two splits and its class names.

use crate::ImageSet;

/// The training and test splits of an image classification dataset, with the names of its
/// classes: the common form of [`Mnist`](crate::Mnist), [`FashionMnist`](crate::FashionMnist),
/// [`Cifar10`](crate::Cifar10) and [`Cifar100`](crate::Cifar100), each of which converts into
/// it with `into()`.
///
/// ```
/// use sorted_data::{ImageDataset, Mnist};
///
/// let data: ImageDataset = Mnist::embedded()?.into();
/// assert_eq!(data.n_classes(), 10);
/// assert_eq!(data.class_names[7], "7");
/// assert_eq!(data.image_shape(), [1, 28, 28]);
/// # Ok::<(), sorted_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDataset {
    /// The training split.
    pub train: ImageSet,
    /// The test split.
    pub test: ImageSet,
    /// The name of each class, by label.
    pub class_names: &'static [&'static str],
}

impl ImageDataset {
    /// The number of classes: labels are in `0..n_classes()`.
    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The shape of one image, `[n_channels, n_rows, n_cols]` (both splits share it).
    pub fn image_shape(&self) -> [usize; 3] {
        self.train.image_shape()
    }
}
