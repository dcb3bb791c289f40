//! Turning images held as bytes into normalised tensors.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::ImageSet;

/// The mean pixel intensity of the MNIST training set, on the 0..1 scale.
pub const MNIST_MEAN: f32 = 0.1307;
/// The standard deviation of the MNIST training set's pixel intensities, on the 0..1 scale.
pub const MNIST_STD: f32 = 0.3081;

/// One batch of images and their labels, on a device.
#[derive(Clone, Debug)]
pub struct ImageBatch<B: Backend> {
    /// The normalised images, `[n, 1, n_rows, n_cols]`.
    pub images: Tensor<B, 4>,
    /// The labels, `[n]`.
    pub labels: Tensor<B, 1, Int>,
}

/// Builds [`ImageBatch`]es from an [`ImageSet`], normalising each pixel `x` (a byte) to
/// `(x / 255 - mean) / std`.
///
/// ```
/// use burn::backend::Flex;
/// use sorted_data::{ImageBatcher, ImageSet};
///
/// let set = ImageSet { images: vec![0, 255, 51, 102], labels: vec![7, 3], n_rows: 1, n_cols: 2 };
/// let batch = ImageBatcher { mean: 0.0, std: 1.0 }.batch::<Flex>(&set, &[1], &Default::default());
/// assert_eq!(batch.images.dims(), [1, 1, 1, 2]);
/// assert_eq!(batch.images.into_data().to_vec::<f32>().unwrap(), [0.2, 0.4]);
/// assert_eq!(batch.labels.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [3]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageBatcher {
    /// The mean subtracted from each pixel after scaling to 0..1.
    pub mean: f32,
    /// The standard deviation each pixel is divided by after subtracting the mean.
    pub std: f32,
}

impl Default for ImageBatcher {
    /// The MNIST statistics: mean [`MNIST_MEAN`], standard deviation [`MNIST_STD`].
    fn default() -> Self {
        ImageBatcher { mean: MNIST_MEAN, std: MNIST_STD }
    }
}

impl ImageBatcher {
    /// The images at `indices` (in that order) and their labels, as tensors on `device`.
    ///
    /// # Shapes
    /// - images: `[indices.len(), 1, set.n_rows, set.n_cols]`
    /// - labels: `[indices.len()]`
    ///
    /// # Panics
    /// If an index is out of range (indices come from [`EpochOrder`](crate::EpochOrder) or
    /// `0..set.len()`, so this is a bug).
    pub fn batch<B: Backend>(&self, set: &ImageSet, indices: &[usize], device: &B::Device) -> ImageBatch<B> {
        let n_pixels = set.n_pixels();
        let mut pixels = Vec::with_capacity(indices.len() * n_pixels);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            assert!(
                index < set.len(),
                "ImageBatcher::batch: index {index} out of range for a set of {} images",
                set.len()
            );
            pixels.extend(set.image(index).iter().map(|&x| (f32::from(x) / 255.0 - self.mean) / self.std));
            labels.push(i64::from(set.labels[index]));
        }
        let n = indices.len();
        ImageBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, 1, set.n_rows, set.n_cols]), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
