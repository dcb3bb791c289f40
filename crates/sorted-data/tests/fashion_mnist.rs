//! Fashion-MNIST from a folder, on generated IDX fixtures (the real files come from
//! `cargo xtask data fashion-mnist`).

use std::path::Path;

use sorted_data::{
    DataError, FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionMnist, ImageDataset, ImageSet,
    TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, idx,
};

/// Writes a tiny Fashion-MNIST in its shipped form (gzip IDX under MNIST's names) into `dir`.
fn write_fixture(dir: &Path) -> (ImageSet, ImageSet) {
    let images = |n: usize, start: u8| (0..n * 784).map(|x| (x as u8).wrapping_add(start)).collect::<Vec<u8>>();
    let train = ImageSet { images: images(3, 0), labels: vec![9, 0, 5], n_channels: 1, n_rows: 28, n_cols: 28 };
    let test = ImageSet { images: images(2, 7), labels: vec![8, 1], n_channels: 1, n_rows: 28, n_cols: 28 };
    let files = [
        (TRAIN_IMAGES, idx::encode_images(&train.images, 3, 28, 28)),
        (TRAIN_LABELS, idx::encode_labels(&train.labels)),
        (TEST_IMAGES, idx::encode_images(&test.images, 2, 28, 28)),
        (TEST_LABELS, idx::encode_labels(&test.labels)),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(format!("{name}.gz")), idx::compress_gzip(&bytes)).unwrap();
    }
    (train, test)
}

#[test]
fn from_dir_reads_the_shipped_gzip_files() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_fixture(dir.path());
    let fashion = FashionMnist::from_dir(dir.path()).unwrap();
    assert_eq!(fashion, FashionMnist { train, test });
    let data: ImageDataset = fashion.into();
    assert_eq!(data.n_classes(), 10);
    assert_eq!(data.image_shape(), [1, 28, 28]);
    let names: Vec<&str> = data.train.labels.iter().map(|&l| data.class_names[usize::from(l)]).collect();
    assert_eq!(names, ["Ankle boot", "T-shirt/top", "Sandal"]);
}

#[test]
fn class_names_and_statistics_are_fashion_mnists() {
    assert_eq!(FASHION_MNIST_CLASS_NAMES.len(), 10);
    assert_eq!(FASHION_MNIST_CLASS_NAMES[0], "T-shirt/top");
    assert_eq!(FASHION_MNIST_CLASS_NAMES[9], "Ankle boot");
    assert!((FASHION_MNIST_MEAN - 0.2860).abs() < 1e-4 && (FASHION_MNIST_STD - 0.3530).abs() < 1e-4);
}

#[test]
fn malformed_files_are_rejected_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());
    // A gzip file cut short: the error says it does not decompress, and which file.
    let path = dir.path().join(format!("{TEST_IMAGES}.gz"));
    let gz = std::fs::read(&path).unwrap();
    std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
    let err = FashionMnist::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::Gzip { path: p, .. } if *p == path), "{err:?}");
    assert!(err.to_string().contains("t10k-images-idx3-ubyte.gz"), "{err}");

    // A labels file in place of the images: the wrong magic number.
    std::fs::write(&path, idx::compress_gzip(&idx::encode_labels(&[1, 2]))).unwrap();
    let err = FashionMnist::from_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, DataError::WrongMagic { expected: idx::IMAGES_MAGIC, got: idx::LABELS_MAGIC, .. }),
        "{err:?}"
    );

    // A label beyond the ten classes.
    write_fixture(dir.path());
    std::fs::write(dir.path().join(format!("{TRAIN_LABELS}.gz")), idx::compress_gzip(&idx::encode_labels(&[0, 10, 1])))
        .unwrap();
    let err = FashionMnist::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::BadLabel { index: 1, label: 10, n_classes: 10, .. }), "{err:?}");

    // A missing file.
    std::fs::remove_file(dir.path().join(format!("{TRAIN_IMAGES}.gz"))).unwrap();
    let err = FashionMnist::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::Missing { file, .. } if file == TRAIN_IMAGES), "{err:?}");
}

/// The real Fashion-MNIST, when `cargo xtask data fashion-mnist` has fetched it: its documented
/// shape and statistics. Without the folder there is nothing to check (the data is not
/// committed, and tests never download).
#[test]
fn real_data_when_present_matches_the_constants() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/fashion-mnist"));
    if !dir.is_dir() {
        eprintln!("skipped: data/fashion-mnist is absent (`cargo xtask data fashion-mnist` fetches it)");
        return;
    }
    let fashion = FashionMnist::from_dir(dir).unwrap();
    assert_eq!((fashion.train.len(), fashion.test.len()), (60_000, 10_000));
    let [(mean, std)] = fashion.train.channel_mean_std()[..] else { panic!("one channel") };
    assert!((mean - f64::from(FASHION_MNIST_MEAN)).abs() < 1e-4, "mean {mean}");
    assert!((std - f64::from(FASHION_MNIST_STD)).abs() < 1e-4, "std {std}");
    // Every class has exactly 6,000 training images.
    let mut counts = [0usize; 10];
    fashion.train.labels.iter().for_each(|&l| counts[usize::from(l)] += 1);
    assert_eq!(counts, [6_000; 10]);
}
