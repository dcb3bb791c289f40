//! ImageBatcher: shapes, normalisation values and labels, on Flex.

use burn::backend::Flex;
use burn::tensor::{TensorData, Tolerance};
use sorted_data::{AugmentConfig, CIFAR10_MEAN, CIFAR10_STD, ImageBatcher, ImageSet, MNIST_MEAN, MNIST_STD, Mnist};

#[test]
fn shapes_values_and_labels() {
    let set = ImageSet {
        images: vec![0, 255, 128, 64, /* image 1 */ 10, 20, 30, 40, /* image 2 */ 255, 0, 0, 255],
        labels: vec![5, 6, 7],
        n_channels: 1,
        n_rows: 2,
        n_cols: 2,
    };
    let device = Default::default();
    let batch = ImageBatcher::default().batch::<Flex>(&set, &[2, 0], &device);
    assert_eq!(batch.images.dims(), [2, 1, 2, 2]);
    assert_eq!(batch.labels.dims(), [2]);
    let norm = |x: f32| (x / 255.0 - 0.1307) / 0.3081;
    let expected = TensorData::new([255.0, 0.0, 0.0, 255.0, 0.0, 255.0, 128.0, 64.0].map(norm).to_vec(), [2, 1, 2, 2]);
    batch.images.into_data().assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
    assert_eq!(batch.labels.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [7, 5]);
    // Hand-checked values: black and white under the MNIST statistics.
    assert!((norm(0.0) - -0.424_212_9).abs() < 1e-6);
    assert!((norm(255.0) - 2.821_486_5).abs() < 1e-6);
}

#[test]
fn default_is_mnist_statistics_and_matches_the_embedded_data() {
    assert_eq!(ImageBatcher::default(), ImageBatcher { mean: MNIST_MEAN, std: MNIST_STD, channel_stats: None });
    assert_eq!(ImageBatcher::default(), ImageBatcher::new(MNIST_MEAN, MNIST_STD));
    assert_eq!((MNIST_MEAN, MNIST_STD), (0.1307, 0.3081));
    // On the real data the normalised training pixels have mean ~0 and std ~1.
    let mnist = Mnist::embedded().unwrap();
    let indices: Vec<usize> = (0..2000).collect();
    let images = ImageBatcher::default().batch::<Flex>(&mnist.train, &indices, &Default::default()).images;
    let values = images.into_data().to_vec::<f32>().unwrap();
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 0.05, "mean {mean}");
    assert!((var.sqrt() - 1.0).abs() < 0.05, "std {}", var.sqrt());
}

#[test]
#[should_panic(expected = "index 3 out of range for a set of 3 images")]
fn out_of_range_index_panics_with_the_numbers() {
    let set = ImageSet { images: vec![0; 3], labels: vec![0; 3], n_channels: 1, n_rows: 1, n_cols: 1 };
    let _ = ImageBatcher::default().batch::<Flex>(&set, &[3], &Default::default());
}

/// Two 3-channel 2x2 images with distinct bytes: image i, channel c, pixel p holds 40i + 10c + p.
fn rgb() -> ImageSet {
    let images =
        (0..2u8).flat_map(|i| (0..3u8).flat_map(move |c| (0..4u8).map(move |p| 40 * i + 10 * c + p))).collect();
    ImageSet { images, labels: vec![1, 2], n_channels: 3, n_rows: 2, n_cols: 2 }
}

#[test]
fn multi_channel_batches_are_nchw_with_per_channel_statistics() {
    let set = rgb();
    let batcher = ImageBatcher::per_channel([0.1, 0.2, 0.3], [0.5, 0.25, 2.0]);
    assert_eq!(batcher.n_channels(), Some(3));
    assert_eq!(batcher.stats(2), (0.3, 2.0));
    let batch = batcher.batch::<Flex>(&set, &[1, 0], &Default::default());
    assert_eq!(batch.images.dims(), [2, 3, 2, 2]);
    let (mean, std) = ([0.1f32, 0.2, 0.3], [0.5f32, 0.25, 2.0]);
    let mut expected = Vec::new();
    for image in [1u8, 0] {
        for c in 0..3 {
            for p in 0..4u8 {
                expected.push((f32::from(40 * image + 10 * c as u8 + p) / 255.0 - mean[c]) / std[c]);
            }
        }
    }
    // The same arithmetic as normalising pixel by pixel: exact equality.
    assert_eq!(batch.images.into_data().to_vec::<f32>().unwrap(), expected);
    assert_eq!(batch.labels.into_data().convert::<i64>().to_vec::<i64>().unwrap(), [2, 1]);
}

#[test]
fn one_mean_and_std_serve_any_number_of_channels() {
    let set = rgb();
    let batcher = ImageBatcher::new(0.5, 0.25);
    assert_eq!(batcher.n_channels(), None);
    let images = batcher.batch::<Flex>(&set, &[0], &Default::default()).images;
    assert_eq!(images.dims(), [1, 3, 2, 2]);
    let expected: Vec<f32> = set.image(0).iter().map(|&x| (f32::from(x) / 255.0 - 0.5) / 0.25).collect();
    assert_eq!(images.into_data().to_vec::<f32>().unwrap(), expected);
    // The same statistics given per channel give the same batch.
    let per_channel = ImageBatcher::per_channel([0.5; 3], [0.25; 3]);
    let again = per_channel.batch::<Flex>(&set, &[0], &Default::default()).images;
    assert_eq!(again.into_data().to_vec::<f32>().unwrap(), expected);
    // A per-channel batcher summarises its statistics in `mean` and `std`.
    let cifar = ImageBatcher::per_channel(CIFAR10_MEAN, CIFAR10_STD);
    assert!((cifar.mean - 0.4734).abs() < 1e-4 && (cifar.std - 0.2507).abs() < 1e-4, "{cifar:?}");
}

#[test]
#[should_panic(expected = "per-channel statistics for 3 channels, but the images have 1")]
fn per_channel_statistics_must_match_the_images() {
    let set = ImageSet { images: vec![0; 4], labels: vec![0], n_channels: 1, n_rows: 2, n_cols: 2 };
    let _ = ImageBatcher::per_channel(CIFAR10_MEAN, CIFAR10_STD).batch::<Flex>(&set, &[0], &Default::default());
}

#[test]
fn augmented_batches_are_reproducible_and_identity_when_off() {
    let mnist = Mnist::embedded().unwrap();
    let indices: Vec<usize> = (0..8).collect();
    let device = Default::default();
    let batcher = ImageBatcher::default();
    let plain = batcher.batch::<Flex>(&mnist.train, &indices, &device).images.into_data();
    let off = AugmentConfig::default().init(1);
    let unchanged = batcher.batch_augmented::<Flex>(&mnist.train, &indices, &off, 5, &device).images.into_data();
    assert_eq!(unchanged, plain);

    let on = AugmentConfig { crop_padding: 4, horizontal_flip: true }.init(1);
    let a = batcher.batch_augmented::<Flex>(&mnist.train, &indices, &on, 5, &device);
    let b = batcher.batch_augmented::<Flex>(&mnist.train, &indices, &on, 5, &device);
    let other_step = batcher.batch_augmented::<Flex>(&mnist.train, &indices, &on, 6, &device);
    assert_eq!(a.images.dims(), [8, 1, 28, 28]);
    let a = a.images.into_data();
    assert_eq!(a, b.images.into_data());
    assert_ne!(a, plain);
    assert_ne!(a, other_step.images.into_data());
    // Each image is its own augmented copy, normalised: check one against the byte path.
    let image_3 = on.apply(mnist.train.image(3), mnist.train.image_shape(), 5, 3);
    let expected: Vec<f32> = image_3.iter().map(|&x| (f32::from(x) / 255.0 - MNIST_MEAN) / MNIST_STD).collect();
    assert_eq!(a.to_vec::<f32>().unwrap()[3 * 784..4 * 784], expected);
}
