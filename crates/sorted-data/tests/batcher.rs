//! ImageBatcher: shapes, normalisation values and labels, on Flex.

use burn::backend::Flex;
use burn::tensor::{TensorData, Tolerance};
use sorted_data::{ImageBatcher, ImageSet, MNIST_MEAN, MNIST_STD, Mnist};

#[test]
fn shapes_values_and_labels() {
    let set = ImageSet {
        images: vec![0, 255, 128, 64, /* image 1 */ 10, 20, 30, 40, /* image 2 */ 255, 0, 0, 255],
        labels: vec![5, 6, 7],
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
    assert_eq!(ImageBatcher::default(), ImageBatcher { mean: MNIST_MEAN, std: MNIST_STD });
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
    let set = ImageSet { images: vec![0; 3], labels: vec![0; 3], n_rows: 1, n_cols: 1 };
    let _ = ImageBatcher::default().batch::<Flex>(&set, &[3], &Default::default());
}
