//! Augmentation: random crops and flips are pure functions of (seed, step, position).

use sorted_data::{AugmentConfig, ImageSet, ImageTransform, Mnist};

/// A 3-channel 4x5 image with distinct non-zero bytes: channel c, row r, column k holds
/// 1 + 20c + 5r + k.
fn rgb_image() -> (Vec<u8>, [usize; 3]) {
    let shape = [3, 4, 5];
    let image = (0..3).flat_map(|c| (0..4).flat_map(move |r| (0..5).map(move |k| (1 + 20 * c + 5 * r + k) as u8)));
    (image.collect(), shape)
}

/// The byte at channel `c`, row `r`, column `k` of a channel-major image of `shape`.
fn at(image: &[u8], [_, n_rows, n_cols]: [usize; 3], c: usize, r: usize, k: usize) -> u8 {
    image[(c * n_rows + r) * n_cols + k]
}

#[test]
fn no_padding_and_no_flip_is_the_identity() {
    let augmentation = AugmentConfig { crop_padding: 0, horizontal_flip: false }.init(123);
    let (image, shape) = rgb_image();
    for step in [0, 1, 99, u64::MAX] {
        for index in [0, 1, 63] {
            assert_eq!(augmentation.apply(&image, shape, step, index), image);
        }
    }
    assert_eq!(ImageTransform::IDENTITY.apply(&image, shape), image);
}

#[test]
fn flipping_twice_is_the_identity() {
    let (image, shape) = rgb_image();
    let flip = ImageTransform { flip: true, ..ImageTransform::IDENTITY };
    let once = flip.apply(&image, shape);
    assert_ne!(once, image);
    // Row 0 of channel 0 reversed.
    assert_eq!(&once[..5], &[5, 4, 3, 2, 1]);
    assert_eq!(flip.apply(&once, shape), image);
}

#[test]
fn a_crop_is_a_shifted_copy_with_zeros_entering() {
    let (image, shape) = rgb_image();
    let [n_channels, n_rows, n_cols] = shape;
    // Every shift a padding of 2 can produce, with and without a flip.
    for shift_rows in -2..=2isize {
        for shift_cols in -2..=2isize {
            for flip in [false, true] {
                let transform = ImageTransform { shift_rows, shift_cols, flip };
                let out = transform.apply(&image, shape);
                assert_eq!(out.len(), image.len());
                for c in 0..n_channels {
                    for r in 0..n_rows {
                        for k in 0..n_cols {
                            let k_unflipped = if flip { n_cols - 1 - k } else { k };
                            let (sr, sk) = (r as isize + shift_rows, k_unflipped as isize + shift_cols);
                            let inside = (0..n_rows as isize).contains(&sr) && (0..n_cols as isize).contains(&sk);
                            let expected = if inside { at(&image, shape, c, sr as usize, sk as usize) } else { 0 };
                            assert_eq!(at(&out, shape, c, r, k), expected, "{transform:?} at ({c}, {r}, {k})");
                        }
                    }
                }
                // The zeros that entered are exactly the rows and columns shifted in.
                let zeros = out.iter().filter(|&&x| x == 0).count();
                let kept = (n_rows - shift_rows.unsigned_abs()) * (n_cols - shift_cols.unsigned_abs());
                assert_eq!(zeros, n_channels * (n_rows * n_cols - kept), "{transform:?}");
            }
        }
    }
}

#[test]
fn a_crop_of_the_padded_image_matches_padding_by_hand() {
    // Pad a 1-channel 3x3 image by 1 on each side by hand, cut a 3x3 window at (top, left), and
    // compare with the shift (top - 1, left - 1).
    let image: Vec<u8> = (1..=9).collect();
    let mut padded = [[0u8; 5]; 5];
    for r in 0..3 {
        for k in 0..3 {
            padded[r + 1][k + 1] = image[r * 3 + k];
        }
    }
    for top in 0..=2 {
        for left in 0..=2 {
            let window: Vec<u8> = (0..3).flat_map(|r| (0..3).map(move |k| padded[top + r][left + k])).collect();
            let shift = ImageTransform { shift_rows: top as isize - 1, shift_cols: left as isize - 1, flip: false };
            assert_eq!(shift.apply(&image, [1, 3, 3]), window, "top {top}, left {left}");
        }
    }
}

#[test]
fn augmentation_is_a_pure_function_of_seed_step_and_position() {
    let config = AugmentConfig { crop_padding: 4, horizontal_flip: true };
    let mnist = Mnist::embedded().unwrap();
    let (set, shape) = (&mnist.train, mnist.train.image_shape());
    let batch = |seed: u64, step: u64| -> Vec<Vec<u8>> {
        let augmentation = config.init(seed);
        (0..16).map(|i| augmentation.apply(set.image(i), shape, step, i)).collect()
    };
    // Same seed and step, from a fresh value (a resumed run): same output.
    assert_eq!(batch(7, 3), batch(7, 3));
    // Another step, or another seed: other augmentations.
    assert_ne!(batch(7, 3), batch(7, 4));
    assert_ne!(batch(7, 3), batch(8, 3));
    // Positions within a batch get different transforms, and the order of the calls does not
    // matter.
    let augmentation = config.init(7);
    let transforms: Vec<ImageTransform> = (0..16).map(|i| augmentation.transform(3, i)).collect();
    assert!(transforms.iter().any(|t| *t != transforms[0]));
    let backwards: Vec<ImageTransform> = (0..16).rev().map(|i| augmentation.transform(3, i)).collect();
    assert!(transforms.iter().eq(backwards.iter().rev()));
}

#[test]
fn transforms_are_pinned() {
    // Pins the draws (ChaCha8 stream per step, one block per position): a change here changes
    // every augmented run and breaks bit-exact resuming of old checkpoints, so it must be
    // deliberate.
    let augmentation = AugmentConfig { crop_padding: 4, horizontal_flip: true }.init(0);
    let drawn: Vec<(isize, isize, bool)> =
        (0..4).map(|i| augmentation.transform(1, i)).map(|t| (t.shift_rows, t.shift_cols, t.flip)).collect();
    assert_eq!(drawn, PINNED);
}

const PINNED: [(isize, isize, bool); 4] = [(2, 2, false), (2, -2, true), (0, 3, true), (-4, -2, true)];

#[test]
fn augmenting_keeps_labels_and_shape_of_every_image() {
    let set = ImageSet { images: (0..24).collect(), labels: vec![0, 1], n_channels: 3, n_rows: 2, n_cols: 2 };
    let augmentation = AugmentConfig { crop_padding: 1, horizontal_flip: true }.init(2);
    for index in 0..2 {
        let out = augmentation.apply(set.image(index), set.image_shape(), 0, index);
        assert_eq!(out.len(), set.image_len());
        // Whatever was drawn, every non-zero byte comes from the same channel of the source.
        for (c, plane) in out.chunks(4).enumerate() {
            assert!(plane.iter().all(|x| *x == 0 || set.channel(index, c).contains(x)), "{out:?}");
        }
    }
}

#[test]
fn config_keys_are_optional_and_misspellings_rejected() {
    let empty: AugmentConfig = toml::from_str("").unwrap();
    assert_eq!(empty, AugmentConfig::default());
    assert_eq!(empty, AugmentConfig { crop_padding: 0, horizontal_flip: false });
    let crop: AugmentConfig = toml::from_str("crop_padding = 4").unwrap();
    assert_eq!(crop, AugmentConfig { crop_padding: 4, horizontal_flip: false });
    let err = toml::from_str::<AugmentConfig>("crop_padding = 4\nhorizontal_flips = true").unwrap_err();
    assert!(err.to_string().contains("horizontal_flips"), "{err}");
    // And back: the resolved config written beside a run parses to the same value.
    let written = toml::to_string(&AugmentConfig { crop_padding: 2, horizontal_flip: true }).unwrap();
    assert_eq!(
        toml::from_str::<AugmentConfig>(&written).unwrap(),
        AugmentConfig { crop_padding: 2, horizontal_flip: true }
    );
}
