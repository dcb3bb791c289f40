//! A labelled set of images held in memory as bytes.

use std::path::Path;

use crate::{DataError, idx};

/// A labelled set of 8-bit images, all of one shape, held in memory.
///
/// This is the in-memory form of an IDX images/labels pair (MNIST, Fashion-MNIST: one channel)
/// or of CIFAR batch files (three channels). Each image is stored channel-major (CHW), as the
/// CIFAR binary format stores it: all `n_rows * n_cols` bytes of channel 0 (row-major), then
/// those of channel 1, and so on. Pixels stay bytes until an [`ImageBatcher`](crate::ImageBatcher)
/// turns a batch of them into a `[n, n_channels, n_rows, n_cols]` tensor.
///
/// ```
/// use sorted_data::ImageSet;
///
/// // Two 1x2 RGB images: channel-major, so R R G G B B per image.
/// let set = ImageSet {
///     images: vec![10, 11, 20, 21, 30, 31, /* image 1 */ 40, 41, 50, 51, 60, 61],
///     labels: vec![3, 8],
///     n_channels: 3,
///     n_rows: 1,
///     n_cols: 2,
/// };
/// assert_eq!((set.len(), set.image_shape(), set.image_len()), (2, [3, 1, 2], 6));
/// assert_eq!(set.image(1), &[40, 41, 50, 51, 60, 61]);
/// assert_eq!(set.channel(1, 2), &[60, 61]); // the blue plane of image 1
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// The bytes of all images, concatenated: `len() * image_len()` bytes, each image
    /// channel-major (CHW) and each channel row-major.
    pub images: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// The number of channels of every image: 1 for grey (MNIST), 3 for RGB (CIFAR).
    pub n_channels: usize,
    /// The height of every image.
    pub n_rows: usize,
    /// The width of every image.
    pub n_cols: usize,
}

impl ImageSet {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The number of pixels of one channel of one image, `n_rows * n_cols`.
    ///
    /// For a single-channel set this is also the number of bytes of one image; in general that
    /// is [`image_len`](Self::image_len).
    pub fn n_pixels(&self) -> usize {
        self.n_rows * self.n_cols
    }

    /// The number of bytes of one image, `n_channels * n_rows * n_cols`.
    pub fn image_len(&self) -> usize {
        self.n_channels * self.n_pixels()
    }

    /// The shape of one image, `[n_channels, n_rows, n_cols]`: a batch of these images is a
    /// `[n, n_channels, n_rows, n_cols]` tensor.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.n_channels, self.n_rows, self.n_cols]
    }

    /// The number of classes, taken as the largest label plus one (0 for an empty set).
    pub fn n_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&max| usize::from(max) + 1)
    }

    /// The bytes of image `index`: channel-major, each channel row-major.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let image_len = self.image_len();
        &self.images[index * image_len..(index + 1) * image_len]
    }

    /// The pixels of channel `channel` of image `index`, row-major.
    ///
    /// # Panics
    /// If `index >= self.len()` or `channel >= self.n_channels`.
    pub fn channel(&self, index: usize, channel: usize) -> &[u8] {
        assert!(channel < self.n_channels, "ImageSet::channel: channel {channel} of a {}-channel set", self.n_channels);
        let n_pixels = self.n_pixels();
        &self.image(index)[channel * n_pixels..(channel + 1) * n_pixels]
    }

    /// A new set holding the images at `indices`, in that order (repeats allowed).
    ///
    /// ```
    /// use sorted_data::ImageSet;
    ///
    /// let set = ImageSet { images: vec![1, 1, 2, 2, 3, 3], labels: vec![0, 1, 2], n_channels: 1, n_rows: 1, n_cols: 2 };
    /// let every_other = set.select(&[0, 2]);
    /// assert_eq!(every_other.images, [1, 1, 3, 3]);
    /// assert_eq!(every_other.labels, [0, 2]);
    /// ```
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &index in indices {
            images.extend_from_slice(self.image(index));
        }
        ImageSet {
            images,
            labels: indices.iter().map(|&index| self.labels[index]).collect(),
            n_channels: self.n_channels,
            n_rows: self.n_rows,
            n_cols: self.n_cols,
        }
    }

    /// The mean and standard deviation of each channel's pixels over the whole set, on the
    /// 0..1 scale (bytes divided by 255): one `(mean, std)` per channel, in channel order.
    ///
    /// The standard deviation is that of all the channel's pixels pooled (the population
    /// standard deviation, dividing by the number of pixels), which is what the usual
    /// normalisation constants are: on the full MNIST training set this gives
    /// [`MNIST_MEAN`](crate::MNIST_MEAN) and [`MNIST_STD`](crate::MNIST_STD) to four decimals.
    /// The sums are exact (integers), so the result does not depend on the order of the images.
    /// An empty set gives `(NaN, NaN)` per channel.
    ///
    /// ```
    /// use sorted_data::ImageSet;
    ///
    /// let set = ImageSet { images: vec![0, 255, 255, 255], labels: vec![0, 1], n_channels: 2, n_rows: 1, n_cols: 1 };
    /// let stats = set.channel_mean_std();
    /// assert_eq!(stats[0], (0.5, 0.5)); // channel 0 holds 0 and 255
    /// assert_eq!(stats[1], (1.0, 0.0)); // channel 1 holds 255 twice
    /// ```
    pub fn channel_mean_std(&self) -> Vec<(f64, f64)> {
        let n_pixels = self.n_pixels();
        let mut sums = vec![(0u64, 0u64); self.n_channels];
        if n_pixels > 0 {
            for image in self.images.chunks_exact(self.image_len()) {
                for (plane, (sum, sum_sq)) in image.chunks_exact(n_pixels).zip(&mut sums) {
                    for &x in plane {
                        *sum += u64::from(x);
                        *sum_sq += u64::from(x) * u64::from(x);
                    }
                }
            }
        }
        let count = (self.len() * n_pixels) as f64;
        sums.into_iter()
            .map(|(sum, sum_sq)| {
                let mean = sum as f64 / count;
                let var = (sum_sq as f64 / count - mean * mean).max(0.0);
                (mean / 255.0, var.sqrt() / 255.0)
            })
            .collect()
    }

    /// Reads an IDX images file and an IDX labels file, each raw or gzip-compressed, into a
    /// single-channel set.
    ///
    /// # Errors
    /// [`DataError::Io`] if a file cannot be read, and every error of
    /// [`from_idx_bytes`](Self::from_idx_bytes).
    pub fn from_idx_files(images: &Path, labels: &Path) -> Result<Self, DataError> {
        let read =
            |path: &Path| std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source });
        Self::parse(&read(images)?, &read(labels)?, images, labels)
    }

    /// Parses an IDX images file and an IDX labels file held in memory, each raw or
    /// gzip-compressed. The names are used in error messages.
    ///
    /// # Errors
    /// - [`DataError::Gzip`] if gzip data does not decompress;
    /// - [`DataError::WrongMagic`], [`DataError::Truncated`], [`DataError::TrailingBytes`] or
    ///   [`DataError::BadHeader`] if a file is not a well-formed IDX file of its kind;
    /// - [`DataError::CountMismatch`] if the two files hold different numbers of items.
    pub fn from_idx_bytes(
        images: &[u8],
        labels: &[u8],
        images_name: &str,
        labels_name: &str,
    ) -> Result<Self, DataError> {
        Self::parse(images, labels, Path::new(images_name), Path::new(labels_name))
    }

    fn parse(images: &[u8], labels: &[u8], images_path: &Path, labels_path: &Path) -> Result<Self, DataError> {
        let (pixels, n_images, n_rows, n_cols) =
            idx::parse_images(&idx::decompress_if_gzip(images, images_path)?, images_path)?;
        let labels = idx::parse_labels(&idx::decompress_if_gzip(labels, labels_path)?, labels_path)?;
        if n_images != labels.len() {
            return Err(DataError::CountMismatch {
                images_path: images_path.to_path_buf(),
                labels_path: labels_path.to_path_buf(),
                images: n_images,
                labels: labels.len(),
            });
        }
        Ok(ImageSet { images: pixels, labels, n_channels: 1, n_rows, n_cols })
    }

    /// Checks that every label is below `n_classes`; `labels_path` names the labels file in the
    /// error.
    ///
    /// # Errors
    /// [`DataError::BadLabel`] for the first label that is not.
    pub fn check_labels(&self, n_classes: usize, labels_path: &Path) -> Result<(), DataError> {
        match self.labels.iter().enumerate().find(|&(_, &label)| usize::from(label) >= n_classes) {
            Some((index, &label)) => {
                Err(DataError::BadLabel { path: labels_path.to_path_buf(), index, label, n_classes })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ImageSet {
        ImageSet { images: (0..12).collect(), labels: vec![4, 0, 2], n_channels: 1, n_rows: 2, n_cols: 2 }
    }

    #[test]
    fn sizes() {
        let set = tiny();
        assert_eq!((set.len(), set.n_pixels(), set.n_classes()), (3, 4, 5));
        assert!(!set.is_empty());
        assert_eq!(set.image(1), &[4, 5, 6, 7]);
        let empty = set.select(&[]);
        assert!(empty.is_empty());
        assert_eq!(empty.n_classes(), 0);
    }

    #[test]
    fn channels_are_planes_of_each_image() {
        // Two 2-channel 1x2 images.
        let set = ImageSet { images: (0..8).collect(), labels: vec![0, 1], n_channels: 2, n_rows: 1, n_cols: 2 };
        assert_eq!((set.n_pixels(), set.image_len(), set.image_shape()), (2, 4, [2, 1, 2]));
        assert_eq!(set.image(1), &[4, 5, 6, 7]);
        assert_eq!(set.channel(1, 0), &[4, 5]);
        assert_eq!(set.channel(1, 1), &[6, 7]);
        let picked = set.select(&[1, 1]);
        assert_eq!(picked.images, [4, 5, 6, 7, 4, 5, 6, 7]);
        assert_eq!(picked.n_channels, 2);
    }

    #[test]
    fn channel_statistics_are_per_plane_and_exact() {
        // Channel 0: 0, 51, 102, 153 -> mean 76.5/255 = 0.3; channel 1: all 255.
        let set = ImageSet {
            images: vec![0, 51, 255, 255, 102, 153, 255, 255],
            labels: vec![0, 0],
            n_channels: 2,
            n_rows: 1,
            n_cols: 2,
        };
        let stats = set.channel_mean_std();
        assert_eq!(stats.len(), 2);
        assert!((stats[0].0 - 0.3).abs() < 1e-12, "{stats:?}");
        // Population std of 0, 51, 102, 153 is 51 * sqrt(1.25).
        assert!((stats[0].1 - 51.0 * 1.25f64.sqrt() / 255.0).abs() < 1e-12, "{stats:?}");
        assert_eq!(stats[1], (1.0, 0.0));
        assert!(set.select(&[]).channel_mean_std()[0].0.is_nan());
    }

    #[test]
    fn check_labels_names_the_first_bad_label() {
        let err = tiny().check_labels(3, Path::new("l.idx1")).unwrap_err();
        assert!(matches!(err, DataError::BadLabel { index: 0, label: 4, n_classes: 3, .. }));
        assert!(tiny().check_labels(5, Path::new("l.idx1")).is_ok());
    }
}
