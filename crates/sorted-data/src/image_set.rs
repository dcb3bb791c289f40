//! A labelled set of single-channel images held in memory as bytes.

use std::path::Path;

use crate::{DataError, idx};

/// A labelled set of single-channel 8-bit images, all of one size, held in memory.
///
/// This is the in-memory form of an IDX images/labels pair (MNIST, Fashion-MNIST). Pixels stay
/// bytes until an [`ImageBatcher`](crate::ImageBatcher) turns a batch of them into a tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// The pixels of all images, concatenated: `len() * n_rows * n_cols` bytes, each image
    /// row-major.
    pub images: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
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

    /// The number of pixels of one image, `n_rows * n_cols`.
    pub fn n_pixels(&self) -> usize {
        self.n_rows * self.n_cols
    }

    /// The number of classes, taken as the largest label plus one (0 for an empty set).
    pub fn n_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&max| usize::from(max) + 1)
    }

    /// The pixels of image `index`, row-major.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let n_pixels = self.n_pixels();
        &self.images[index * n_pixels..(index + 1) * n_pixels]
    }

    /// A new set holding the images at `indices`, in that order (repeats allowed).
    ///
    /// ```
    /// use sorted_data::ImageSet;
    ///
    /// let set = ImageSet { images: vec![1, 1, 2, 2, 3, 3], labels: vec![0, 1, 2], n_rows: 1, n_cols: 2 };
    /// let every_other = set.select(&[0, 2]);
    /// assert_eq!(every_other.images, [1, 1, 3, 3]);
    /// assert_eq!(every_other.labels, [0, 2]);
    /// ```
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select(&self, indices: &[usize]) -> ImageSet {
        let mut images = Vec::with_capacity(indices.len() * self.n_pixels());
        for &index in indices {
            images.extend_from_slice(self.image(index));
        }
        ImageSet {
            images,
            labels: indices.iter().map(|&index| self.labels[index]).collect(),
            n_rows: self.n_rows,
            n_cols: self.n_cols,
        }
    }

    /// Reads an IDX images file and an IDX labels file, each raw or gzip-compressed.
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
        Ok(ImageSet { images: pixels, labels, n_rows, n_cols })
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
        ImageSet { images: (0..12).collect(), labels: vec![4, 0, 2], n_rows: 2, n_cols: 2 }
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
    fn check_labels_names_the_first_bad_label() {
        let err = tiny().check_labels(3, Path::new("l.idx1")).unwrap_err();
        assert!(matches!(err, DataError::BadLabel { index: 0, label: 4, n_classes: 3, .. }));
        assert!(tiny().check_labels(5, Path::new("l.idx1")).is_ok());
    }
}
