//! IDX parsing through the public API: round trips and the errors users see.

use sorted_data::{DataError, ImageSet, idx};

/// Three 2x3 images with distinct pixels, and their labels.
fn fixture() -> ImageSet {
    ImageSet { images: (0..18).map(|x| x * 13).collect(), labels: vec![2, 0, 1], n_channels: 1, n_rows: 2, n_cols: 3 }
}

fn encode(set: &ImageSet) -> (Vec<u8>, Vec<u8>) {
    (idx::encode_images(&set.images, set.len(), set.n_rows, set.n_cols), idx::encode_labels(&set.labels))
}

#[test]
fn raw_round_trip() {
    let set = fixture();
    let (images, labels) = encode(&set);
    let parsed = ImageSet::from_idx_bytes(&images, &labels, "imgs", "labs").unwrap();
    assert_eq!(parsed, set);
    assert_eq!(parsed.n_classes(), 3);
}

#[test]
fn gzip_round_trip() {
    let set = fixture();
    let (images, labels) = encode(&set);
    let (images_gz, labels_gz) = (idx::compress_gzip(&images), idx::compress_gzip(&labels));
    assert_ne!(images_gz, images);
    let parsed = ImageSet::from_idx_bytes(&images_gz, &labels_gz, "imgs.gz", "labs.gz").unwrap();
    assert_eq!(parsed, set);
    // A mix of raw and gzip is fine too.
    let mixed = ImageSet::from_idx_bytes(&images_gz, &labels, "imgs.gz", "labs").unwrap();
    assert_eq!(mixed, set);
}

#[test]
fn truncated_images_name_the_file_and_byte_counts() {
    let (mut images, labels) = encode(&fixture());
    images.truncate(images.len() - 5); // 16 + 18 = 34 bytes expected, 29 left
    let err = ImageSet::from_idx_bytes(&images, &labels, "cut-images.idx3", "labs").unwrap_err();
    assert!(
        matches!(
            &err,
            DataError::Truncated { path, expected_bytes: 34, got_bytes: 29 }
                if path.to_str() == Some("cut-images.idx3")
        ),
        "{err:?}"
    );
    let message = err.to_string();
    for needle in ["cut-images.idx3", "34", "29", "truncated"] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[test]
fn truncated_gzip_content_is_reported_after_decompression() {
    let (images, labels) = encode(&fixture());
    let mut labels_short = labels.clone();
    labels_short.pop();
    let err =
        ImageSet::from_idx_bytes(&idx::compress_gzip(&images), &idx::compress_gzip(&labels_short), "i.gz", "l.gz")
            .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("l.gz") && message.contains("expected 11 bytes, got 10"), "{message}");
}

#[test]
fn trailing_garbage_is_an_error() {
    let (images, mut labels) = encode(&fixture());
    labels.extend_from_slice(b"junk");
    let err = ImageSet::from_idx_bytes(&images, &labels, "imgs", "labels-plus-junk").unwrap_err();
    assert!(matches!(&err, DataError::TrailingBytes { expected_bytes: 11, got_bytes: 15, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("labels-plus-junk") && message.contains("4 unexpected trailing bytes"), "{message}");
}

#[test]
fn wrong_magic_names_the_file_and_both_magics() {
    let (images, labels) = encode(&fixture());
    // Images and labels swapped: the classic mistake.
    let err = ImageSet::from_idx_bytes(&labels, &images, "swapped-images", "swapped-labels").unwrap_err();
    assert!(
        matches!(
            &err,
            DataError::WrongMagic { path, expected: idx::IMAGES_MAGIC, got: idx::LABELS_MAGIC }
                if path.to_str() == Some("swapped-images")
        ),
        "{err:?}"
    );
    let message = err.to_string();
    for needle in ["swapped-images", "0x00000803", "0x00000801"] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[test]
fn count_mismatch_names_both_files() {
    let set = fixture();
    let images = idx::encode_images(&set.images, set.len(), set.n_rows, set.n_cols);
    let labels = idx::encode_labels(&set.labels[..2]);
    let err = ImageSet::from_idx_bytes(&images, &labels, "three-images", "two-labels").unwrap_err();
    assert!(matches!(&err, DataError::CountMismatch { images: 3, labels: 2, .. }), "{err:?}");
    let message = err.to_string();
    for needle in ["three-images", "two-labels", "3 images", "2 labels"] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[test]
fn unreadable_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope-images");
    let err = ImageSet::from_idx_files(&missing, &missing).unwrap_err();
    assert!(matches!(&err, DataError::Io { path, .. } if *path == missing), "{err:?}");
    assert!(err.to_string().contains("nope-images"));
    assert!(std::error::Error::source(&err).is_some());
}
