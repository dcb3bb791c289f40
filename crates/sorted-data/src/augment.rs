//! Data augmentation: random crops of the zero-padded image and random horizontal flips, as
//! pure functions of `(seed, step, position in the batch)`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How training images are augmented; the default is no augmentation.
///
/// The usual CIFAR recipe is `crop_padding = 4` and `horizontal_flip = true`. Flipping suits
/// photographs, not digits or letters: keep it off for MNIST.
///
/// In a TOML file (both keys optional, unknown keys rejected):
///
/// ```
/// use sorted_data::AugmentConfig;
///
/// let config: AugmentConfig = toml::from_str("crop_padding = 4\nhorizontal_flip = true")?;
/// assert_eq!(config, AugmentConfig { crop_padding: 4, horizontal_flip: true });
/// assert!(AugmentConfig::default().is_identity());
/// assert!(toml::from_str::<AugmentConfig>("crop_pading = 4").is_err());
/// # Ok::<(), toml::de::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random crop: pad each side of the image with this many zero pixels, then cut an image
    /// of the original size at a random offset (uniform over the `(2p + 1)^2` offsets). `0`
    /// turns cropping off.
    #[serde(default)]
    pub crop_padding: usize,
    /// Random horizontal flip: mirror each image left-right with probability 1/2.
    #[serde(default)]
    pub horizontal_flip: bool,
}

impl AugmentConfig {
    /// Whether this configuration leaves every image unchanged.
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.horizontal_flip
    }

    /// The augmentation drawing its random choices from `seed`.
    ///
    /// Give it a seed of its own (for instance the run seed XOR a constant), so its random
    /// numbers are unrelated to those of the sub-model sampler and the data order, which use
    /// the same generator and streams.
    pub fn init(&self, seed: u64) -> Augmentation {
        Augmentation { config: *self, seed }
    }
}

/// The ChaCha words reserved for the random choices of one image: one 64-byte block. An image
/// draws two shifts and a coin, a few words (more only on a rare rejection in range sampling), so
/// images do not share random numbers. Either way the choices are a pure function of the position.
const WORDS_PER_IMAGE: u128 = 16;

/// An [`AugmentConfig`] with its seed: the augmentation of every image of every step.
///
/// The random choices of the image at position `index` of the batch of step `step` come from
/// `ChaCha8Rng::seed_from_u64(seed)` on stream `step`, starting at word `16 * index`. They are a
/// pure function of `(seed, step, index)`: no state is kept between calls, so a run resumed at
/// step `s` augments exactly as an uninterrupted run.
///
/// ```
/// use sorted_data::{AugmentConfig, ImageTransform};
///
/// let augmentation = AugmentConfig { crop_padding: 1, horizontal_flip: true }.init(42);
/// // A 1-channel 2x3 image.
/// let image = [1, 2, 3, 4, 5, 6];
/// let out = augmentation.apply(&image, [1, 2, 3], 10, 0);
/// assert_eq!(out.len(), image.len());
/// // Same seed, step and position: same result, here and in a resumed run.
/// assert_eq!(out, AugmentConfig { crop_padding: 1, horizontal_flip: true }.init(42).apply(&image, [1, 2, 3], 10, 0));
/// // The drawn transform explains the output.
/// let transform: ImageTransform = augmentation.transform(10, 0);
/// assert!(transform.shift_rows.abs() <= 1 && transform.shift_cols.abs() <= 1);
/// assert_eq!(out, transform.apply(&image, [1, 2, 3]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Augmentation {
    config: AugmentConfig,
    seed: u64,
}

impl Augmentation {
    /// The configuration.
    pub fn config(&self) -> AugmentConfig {
        self.config
    }

    /// The seed of the random choices.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The random transform of the image at position `index` of the batch of step `step`.
    ///
    /// With cropping on, the crop's top-left corner in the padded image is uniform in
    /// `0..=2p` along each axis, which is a shift of `-p..=p`; with flipping on, the image is
    /// mirrored with probability 1/2. Off parts give no shift and no flip.
    pub fn transform(&self, step: u64, index: usize) -> ImageTransform {
        if self.config.is_identity() {
            return ImageTransform::IDENTITY;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(step);
        rng.set_word_pos(index as u128 * WORDS_PER_IMAGE);
        // Draws are made whatever the configuration, so turning one part on or off does not
        // change the other part's choices.
        // A padding beyond u32::MAX is capped there: shifts that large blank any image anyway.
        let padding = i64::from(u32::try_from(self.config.crop_padding).unwrap_or(u32::MAX));
        let shift = |rng: &mut ChaCha8Rng| {
            let shift = rng.random_range(-padding..=padding);
            isize::try_from(shift).unwrap_or(if shift < 0 { isize::MIN } else { isize::MAX })
        };
        let shift_rows = shift(&mut rng);
        let shift_cols = shift(&mut rng);
        let flip = rng.random_bool(0.5) && self.config.horizontal_flip;
        ImageTransform { shift_rows, shift_cols, flip }
    }

    /// The augmented copy of `image` (channel-major bytes of shape `[n_channels, n_rows,
    /// n_cols]`) at position `index` of the batch of step `step`.
    ///
    /// # Panics
    /// If `image.len()` is not the product of `shape`.
    pub fn apply(&self, image: &[u8], shape: [usize; 3], step: u64, index: usize) -> Vec<u8> {
        let mut out = Vec::new();
        self.apply_into(image, shape, step, index, &mut out);
        out
    }

    /// [`apply`](Self::apply), writing into `out` (cleared first) to reuse its allocation.
    ///
    /// # Panics
    /// If `image.len()` is not the product of `shape`.
    pub fn apply_into(&self, image: &[u8], shape: [usize; 3], step: u64, index: usize, out: &mut Vec<u8>) {
        self.transform(step, index).apply_into(image, shape, out);
    }
}

/// The augmentation of one image: a shift with zeros filling in (what a crop of the zero-padded
/// image is), then an optional left-right mirror.
///
/// Output pixel `(c, r, k)` is input pixel `(c, r + shift_rows, k' + shift_cols)`, or 0 where
/// that lies outside the image, with `k' = n_cols - 1 - k` if `flip` and `k' = k` otherwise. A
/// crop at offset `(top, left)` of the image padded by `p` is the shift `(top - p, left - p)`.
/// Every value is valid: a shift by at least the image size gives a black image.
///
/// ```
/// use sorted_data::ImageTransform;
///
/// // A 1-channel 2x3 image, shifted one column (a crop at left = p + 1) and mirrored.
/// let image = [1, 2, 3, 4, 5, 6];
/// let crop = ImageTransform { shift_rows: 0, shift_cols: 1, flip: false };
/// assert_eq!(crop.apply(&image, [1, 2, 3]), [2, 3, 0, 5, 6, 0]);
/// let flipped = ImageTransform { flip: true, ..crop };
/// assert_eq!(flipped.apply(&image, [1, 2, 3]), [0, 3, 2, 0, 6, 5]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ImageTransform {
    /// Rows the content moves up by (negative: down); rows entering are zeros.
    pub shift_rows: isize,
    /// Columns the content moves left by (negative: right); columns entering are zeros.
    pub shift_cols: isize,
    /// Whether the (shifted) image is mirrored left-right.
    pub flip: bool,
}

impl ImageTransform {
    /// The transform that changes nothing.
    pub const IDENTITY: ImageTransform = ImageTransform { shift_rows: 0, shift_cols: 0, flip: false };

    /// The transformed copy of `image`, channel-major bytes of shape `[n_channels, n_rows,
    /// n_cols]`.
    ///
    /// # Panics
    /// If `image.len()` is not the product of `shape`.
    pub fn apply(&self, image: &[u8], shape: [usize; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        self.apply_into(image, shape, &mut out);
        out
    }

    /// [`apply`](Self::apply), writing into `out` (cleared first) to reuse its allocation.
    ///
    /// # Panics
    /// If `image.len()` is not the product of `shape`.
    pub fn apply_into(&self, image: &[u8], shape: [usize; 3], out: &mut Vec<u8>) {
        let [n_channels, n_rows, n_cols] = shape;
        assert_eq!(
            image.len(),
            n_channels * n_rows * n_cols,
            "ImageTransform::apply: {} bytes are not an image of shape {shape:?}",
            image.len()
        );
        out.clear();
        if *self == Self::IDENTITY {
            out.extend_from_slice(image);
            return;
        }
        out.resize(image.len(), 0);
        // The source index of `target + shift` when it lies inside `0..len`.
        let source =
            |target: usize, shift: isize, len: usize| target.checked_add_signed(shift).filter(|&source| source < len);
        for channel in 0..n_channels {
            let plane = channel * n_rows * n_cols;
            for row in 0..n_rows {
                let Some(source_row) = source(row, self.shift_rows, n_rows) else { continue };
                let (from, to) = (plane + source_row * n_cols, plane + row * n_cols);
                for col in 0..n_cols {
                    let unflipped = if self.flip { n_cols - 1 - col } else { col };
                    if let Some(source_col) = source(unflipped, self.shift_cols, n_cols) {
                        out[to + col] = image[from + source_col];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_stay_within_the_padding_and_cover_it() {
        let augmentation = AugmentConfig { crop_padding: 2, horizontal_flip: true }.init(1);
        let transforms: Vec<_> = (0..400).map(|i| augmentation.transform(0, i)).collect();
        for axis in [|t: &ImageTransform| t.shift_rows, |t: &ImageTransform| t.shift_cols] {
            let mut seen: Vec<isize> = transforms.iter().map(axis).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen, [-2, -1, 0, 1, 2]);
        }
        let flips = transforms.iter().filter(|t| t.flip).count();
        assert!((150..250).contains(&flips), "{flips} flips of 400");
    }

    #[test]
    fn switching_flip_off_keeps_the_crops() {
        let both = AugmentConfig { crop_padding: 3, horizontal_flip: true }.init(5);
        let crop_only = AugmentConfig { crop_padding: 3, horizontal_flip: false }.init(5);
        for index in 0..20 {
            let (a, b) = (both.transform(9, index), crop_only.transform(9, index));
            assert_eq!((a.shift_rows, a.shift_cols), (b.shift_rows, b.shift_cols));
            assert!(!b.flip);
        }
    }

    #[test]
    fn identity_config_draws_nothing() {
        let augmentation = AugmentConfig::default().init(3);
        assert_eq!(augmentation.transform(7, 2), ImageTransform::IDENTITY);
    }

    #[test]
    fn huge_shifts_give_black_images() {
        let image = [9u8; 12];
        let far = ImageTransform { shift_rows: 0, shift_cols: isize::MIN, flip: true };
        assert_eq!(far.apply(&image, [3, 2, 2]), [0; 12]);
        let down = ImageTransform { shift_rows: -2, shift_cols: 0, flip: false };
        assert_eq!(down.apply(&image, [3, 2, 2]), [0; 12]);
    }
}
