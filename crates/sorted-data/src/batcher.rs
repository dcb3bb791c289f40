//! Turning images held as bytes into normalised tensors.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::{Augmentation, ImageSet};

/// The mean pixel intensity of the MNIST training set, on the 0..1 scale.
pub const MNIST_MEAN: f32 = 0.1307;
/// The standard deviation of the MNIST training set's pixel intensities, on the 0..1 scale.
pub const MNIST_STD: f32 = 0.3081;

/// One batch of images and their labels, on a device.
#[derive(Clone, Debug)]
pub struct ImageBatch<B: Backend> {
    /// The normalised images, `[n, n_channels, n_rows, n_cols]`.
    pub images: Tensor<B, 4>,
    /// The labels, `[n]`.
    pub labels: Tensor<B, 1, Int>,
}

/// Builds [`ImageBatch`]es from an [`ImageSet`], normalising each pixel `x` (a byte) of channel
/// `c` to `(x / 255 - mean_c) / std_c`.
///
/// The statistics are either one `(mean, std)` for every channel ([`new`](Self::new), and
/// [`default`](Self::default), which is MNIST's), or one pair per channel
/// ([`per_channel`](Self::per_channel), for RGB data such as CIFAR).
///
/// ```
/// use burn::backend::Flex;
/// use sorted_data::{CIFAR10_MEAN, CIFAR10_STD, ImageBatcher, ImageSet};
///
/// let set = ImageSet { images: vec![0, 255, 51, 102], labels: vec![7, 3], n_channels: 1, n_rows: 1, n_cols: 2 };
/// let batch = ImageBatcher::new(0.0, 1.0).batch::<Flex>(&set, &[1], &Default::default());
/// assert_eq!(batch.images.dims(), [1, 1, 1, 2]);
/// assert_eq!(batch.images.into_data().to_vec::<f32>().unwrap(), [0.2, 0.4]);
/// assert_eq!(batch.labels.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [3]);
///
/// // One 1x1 RGB image, normalised with each channel's own statistics.
/// let rgb = ImageSet { images: vec![255, 255, 255], labels: vec![0], n_channels: 3, n_rows: 1, n_cols: 1 };
/// let cifar = ImageBatcher::per_channel(CIFAR10_MEAN, CIFAR10_STD);
/// let images = cifar.batch::<Flex>(&rgb, &[0], &Default::default()).images;
/// assert_eq!(images.dims(), [1, 3, 1, 1]);
/// let expected = [0, 1, 2].map(|c| (1.0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c]);
/// assert_eq!(images.into_data().to_vec::<f32>().unwrap(), expected);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ImageBatcher {
    /// The mean subtracted from each pixel after scaling to 0..1, in every channel, when
    /// `channel_stats` is `None`. A batcher built by [`per_channel`](Self::per_channel) sets
    /// it to the average of the channel means, as a summary only: use
    /// [`stats`](Self::stats) to read what a channel is normalised with.
    pub mean: f32,
    /// The standard deviation each pixel is divided by after subtracting the mean, in every
    /// channel, when `channel_stats` is `None` (a summary otherwise, like `mean`).
    pub std: f32,
    /// One `(mean, std)` per channel, in channel order, overriding `mean` and `std`; `None`
    /// applies `mean` and `std` to every channel.
    pub channel_stats: Option<Vec<(f32, f32)>>,
}

impl Default for ImageBatcher {
    /// The MNIST statistics: mean [`MNIST_MEAN`], standard deviation [`MNIST_STD`], for every
    /// channel.
    fn default() -> Self {
        ImageBatcher::new(MNIST_MEAN, MNIST_STD)
    }
}

impl ImageBatcher {
    /// A batcher that normalises every channel with the same `mean` and `std` (on the 0..1
    /// scale), whatever the number of channels.
    pub fn new(mean: f32, std: f32) -> Self {
        ImageBatcher { mean, std, channel_stats: None }
    }

    /// A batcher for `C`-channel images that normalises channel `c` with `mean[c]` and `std[c]`
    /// (on the 0..1 scale), for example [`CIFAR10_MEAN`](crate::CIFAR10_MEAN) and
    /// [`CIFAR10_STD`](crate::CIFAR10_STD).
    pub fn per_channel<const C: usize>(mean: [f32; C], std: [f32; C]) -> Self {
        let average = |values: &[f32; C]| values.iter().sum::<f32>() / C.max(1) as f32;
        ImageBatcher {
            mean: average(&mean),
            std: average(&std),
            channel_stats: Some(mean.into_iter().zip(std).collect()),
        }
    }

    /// The number of channels this batcher is made for: `Some(C)` for a
    /// [`per_channel`](Self::per_channel) batcher, `None` if it handles any number.
    pub fn n_channels(&self) -> Option<usize> {
        self.channel_stats.as_ref().map(Vec::len)
    }

    /// The `(mean, std)` that channel `channel` is normalised with.
    ///
    /// # Panics
    /// If the batcher has per-channel statistics and `channel` is not below their number.
    pub fn stats(&self, channel: usize) -> (f32, f32) {
        match &self.channel_stats {
            None => (self.mean, self.std),
            Some(stats) => *stats.get(channel).unwrap_or_else(|| {
                panic!("ImageBatcher::stats: channel {channel} of a batcher with {} channel statistics", stats.len())
            }),
        }
    }

    /// The images at `indices` (in that order) and their labels, as tensors on `device`.
    ///
    /// # Shapes
    /// - images: `[indices.len(), set.n_channels, set.n_rows, set.n_cols]`
    /// - labels: `[indices.len()]`
    ///
    /// # Panics
    /// If an index is out of range (indices come from [`EpochOrder`](crate::EpochOrder) or
    /// `0..set.len()`, so this is a bug), or if the batcher has per-channel statistics for a
    /// different number of channels than `set` has (pick the batcher with the dataset).
    pub fn batch<B: Backend>(&self, set: &ImageSet, indices: &[usize], device: &B::Device) -> ImageBatch<B> {
        self.build(set, indices, None, device)
    }

    /// Like [`batch`](Self::batch), but each image first goes through `augmentation`, with the
    /// random choices of training step `step` and of its position in `indices`. The same
    /// `(augmentation seed, step, indices)` always give the same batch, so a resumed run sees
    /// the augmentations an uninterrupted run would have.
    ///
    /// `step` is the number the batch was drawn with, as in
    /// [`EpochOrder::batch_indices(step)`](crate::EpochOrder::batch_indices).
    ///
    /// ```
    /// use burn::backend::Flex;
    /// use sorted_data::{AugmentConfig, ImageBatcher, Mnist};
    ///
    /// let mnist = Mnist::embedded()?;
    /// let augmentation = AugmentConfig { crop_padding: 2, horizontal_flip: false }.init(7);
    /// let batcher = ImageBatcher::default();
    /// let batch = batcher.batch_augmented::<Flex>(&mnist.train, &[0, 1], &augmentation, 3, &Default::default());
    /// assert_eq!(batch.images.dims(), [2, 1, 28, 28]);
    /// # Ok::<(), sorted_data::DataError>(())
    /// ```
    ///
    /// # Shapes
    /// As [`batch`](Self::batch): augmentation keeps the image shape.
    ///
    /// # Panics
    /// As [`batch`](Self::batch).
    pub fn batch_augmented<B: Backend>(
        &self,
        set: &ImageSet,
        indices: &[usize],
        augmentation: &Augmentation,
        step: u64,
        device: &B::Device,
    ) -> ImageBatch<B> {
        self.build(set, indices, Some((augmentation, step)), device)
    }

    fn build<B: Backend>(
        &self,
        set: &ImageSet,
        indices: &[usize],
        augmentation: Option<(&Augmentation, u64)>,
        device: &B::Device,
    ) -> ImageBatch<B> {
        let shape = set.image_shape();
        if let Some(n) = self.n_channels() {
            assert_eq!(
                n, set.n_channels,
                "ImageBatcher: per-channel statistics for {n} channels, but the images have {}",
                set.n_channels
            );
        }
        // Every byte value of a channel maps to one float: a table per channel computes each
        // value once, with the same arithmetic as normalising pixel by pixel.
        let tables: Vec<[f32; 256]> = (0..set.n_channels)
            .map(|channel| {
                let (mean, std) = self.stats(channel);
                std::array::from_fn(|x| (f32::from(x as u8) / 255.0 - mean) / std)
            })
            .collect();
        let n_pixels = set.n_pixels();
        let mut pixels = Vec::with_capacity(indices.len() * set.image_len());
        let mut labels = Vec::with_capacity(indices.len());
        let mut augmented = Vec::new();
        for (position, &index) in indices.iter().enumerate() {
            assert!(
                index < set.len(),
                "ImageBatcher::batch: index {index} out of range for a set of {} images",
                set.len()
            );
            let image = match augmentation {
                Some((augmentation, step)) => {
                    augmentation.apply_into(set.image(index), shape, step, position, &mut augmented);
                    &augmented[..]
                }
                None => set.image(index),
            };
            if n_pixels > 0 {
                for (plane, table) in image.chunks_exact(n_pixels).zip(&tables) {
                    pixels.extend(plane.iter().map(|&x| table[usize::from(x)]));
                }
            }
            labels.push(i64::from(set.labels[index]));
        }
        let n = indices.len();
        ImageBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, set.n_channels, set.n_rows, set.n_cols]), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
