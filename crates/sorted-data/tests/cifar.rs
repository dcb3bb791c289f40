//! CIFAR-10 and CIFAR-100 binary files: fixtures written byte by byte here, never real CIFAR.

use std::path::Path;

use sorted_data::{
    CIFAR10_CLASS_NAMES, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, Cifar10, Cifar100, Cifar100Labels, DataError,
    ImageDataset,
};

/// One record's 3072 pixel bytes: channel c, row r, column k holds `(seed + 3c + 5r + 7k) % 256`,
/// so every plane, row and image differs.
fn pixels(seed: usize) -> Vec<u8> {
    (0..3)
        .flat_map(|c| (0..32).flat_map(move |r| (0..32).map(move |k| ((seed + 3 * c + 5 * r + 7 * k) % 256) as u8)))
        .collect()
}

/// A CIFAR-10 file: for each `(label, seed)` a label byte and the pixels of `seed`.
fn cifar10_file(records: &[(u8, usize)]) -> Vec<u8> {
    records.iter().flat_map(|&(label, seed)| std::iter::once(label).chain(pixels(seed))).collect()
}

/// A CIFAR-100 file: for each `(coarse, fine, seed)` the two label bytes and the pixels of `seed`.
fn cifar100_file(records: &[(u8, u8, usize)]) -> Vec<u8> {
    records.iter().flat_map(|&(coarse, fine, seed)| [coarse, fine].into_iter().chain(pixels(seed))).collect()
}

/// Writes the six CIFAR-10 files into `dir`: batch b holds two records with labels b and 9 - b,
/// the test file one record with label 4.
fn write_cifar10(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (b, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(name), cifar10_file(&[(b as u8, 10 * b), (9 - b as u8, 10 * b + 1)])).unwrap();
    }
    std::fs::write(dir.join(CIFAR10_TEST_FILE), cifar10_file(&[(4, 100)])).unwrap();
}

#[test]
fn cifar10_reads_every_batch_in_order_channel_major() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    let cifar = Cifar10::from_dir(dir.path()).unwrap();
    assert_eq!((cifar.train.len(), cifar.test.len()), (10, 1));
    assert_eq!(cifar.train.labels, [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]);
    assert_eq!(cifar.train.image_shape(), [3, 32, 32]);
    // Image 5 is the second record of batch 3 (seed 21); its bytes are the record's, as stored.
    assert_eq!(cifar.train.image(5), pixels(21).as_slice());
    // Channel-major: green (c = 1), row 2, column 3 of that image.
    // seed 21 + 3 * channel 1 + 5 * row 2 + 7 * column 3.
    assert_eq!(cifar.train.channel(5, 1)[2 * 32 + 3], 21 + 3 + 10 + 21);
    assert_eq!(cifar.test.image(0), pixels(100).as_slice());

    let data: ImageDataset = cifar.into();
    assert_eq!((data.n_classes(), data.class_names[4]), (10, "deer"));
    assert_eq!(data.class_names, CIFAR10_CLASS_NAMES);
}

#[test]
fn cifar10_finds_the_folder_the_archive_unpacks_to() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(&dir.path().join("cifar-10-batches-bin"));
    let nested = Cifar10::from_dir(dir.path()).unwrap();
    assert_eq!(nested, Cifar10::from_dir(&dir.path().join("cifar-10-batches-bin")).unwrap());
}

#[test]
fn cifar10_missing_file_is_named_with_where_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    let err = Cifar10::from_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, DataError::MissingFile { dir: d, file, .. } if d == dir.path() && file == "data_batch_4.bin"),
        "{err:?}"
    );
    let message = err.to_string();
    for needle in
        ["data_batch_4.bin", "binary version", "cifar-10-binary.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar.html"]
    {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[test]
fn cifar10_size_not_a_whole_number_of_records_names_file_size_and_record_size() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    let mut cut = cifar10_file(&[(1, 0), (2, 1)]);
    cut.truncate(2 * 3073 - 100);
    std::fs::write(dir.path().join("data_batch_2.bin"), &cut).unwrap();
    let err = Cifar10::from_dir(dir.path()).unwrap_err();
    assert!(
        matches!(&err, DataError::RecordSize { path, len: 6046, record_bytes: 3073, .. } if path.ends_with("data_batch_2.bin")),
        "{err:?}"
    );
    let message = err.to_string();
    for needle in ["data_batch_2.bin", "6046 bytes", "3073 bytes", "2973 bytes left over", "CIFAR-10"] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[test]
fn cifar10_empty_file_is_an_error() {
    let err = Cifar10::parse(&[], "test_batch.bin").unwrap_err();
    assert!(matches!(&err, DataError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("test_batch.bin: the file is empty"), "{err}");
}

#[test]
fn cifar10_label_out_of_range_names_file_record_and_value() {
    let bytes = cifar10_file(&[(3, 0), (9, 1), (10, 2)]);
    let err = Cifar10::parse(&bytes, "data_batch_5.bin").unwrap_err();
    assert!(matches!(&err, DataError::BadLabel { index: 2, label: 10, n_classes: 10, .. }), "{err:?}");
    let message = err.to_string();
    for needle in ["data_batch_5.bin", "label 10", "index 2", "0..10"] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[test]
fn cifar100_reads_fine_or_coarse_labels() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("cifar-100-binary");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(nested.join("train.bin"), cifar100_file(&[(19, 99, 0), (0, 0, 1), (4, 51, 2)])).unwrap();
    std::fs::write(nested.join("test.bin"), cifar100_file(&[(10, 47, 3)])).unwrap();

    let fine = Cifar100::from_dir(dir.path(), Cifar100Labels::Fine).unwrap();
    assert_eq!((fine.train.labels.as_slice(), fine.test.labels.as_slice()), (&[99, 0, 51][..], &[47][..]));
    assert_eq!(fine.train.image(2), pixels(2).as_slice());
    assert_eq!((fine.class_names().len(), fine.class_names()[99]), (100, "worm"));

    let coarse = Cifar100::from_dir(dir.path(), Cifar100Labels::Coarse).unwrap();
    assert_eq!((coarse.train.labels.as_slice(), coarse.test.labels.as_slice()), (&[19, 0, 4][..], &[10][..]));
    assert_eq!(coarse.train.images, fine.train.images);
    let data: ImageDataset = coarse.into();
    assert_eq!((data.n_classes(), data.class_names[19]), (20, "vehicles_2"));
}

#[test]
fn cifar100_checks_both_label_bytes_and_the_record_size() {
    // A bad coarse label is reported even when fine labels are used, and the other way round.
    let bad_coarse = cifar100_file(&[(1, 2, 0), (20, 5, 1)]);
    let err = Cifar100::parse(&bad_coarse, "train.bin", Cifar100Labels::Fine).unwrap_err();
    assert!(matches!(&err, DataError::BadLabel { index: 1, label: 20, n_classes: 20, .. }), "{err:?}");
    let bad_fine = cifar100_file(&[(1, 100, 0)]);
    let err = Cifar100::parse(&bad_fine, "test.bin", Cifar100Labels::Coarse).unwrap_err();
    assert!(matches!(&err, DataError::BadLabel { index: 0, label: 100, n_classes: 100, .. }), "{err:?}");
    assert!(err.to_string().contains("test.bin"), "{err}");

    // A CIFAR-10 file read as CIFAR-100 is the wrong record size.
    let err = Cifar100::parse(&cifar10_file(&[(1, 0), (2, 1)]), "cifar10.bin", Cifar100Labels::Fine).unwrap_err();
    assert!(matches!(&err, DataError::RecordSize { len: 6146, record_bytes: 3074, .. }), "{err:?}");
    assert!(err.to_string().contains("CIFAR-100"), "{err}");
}

#[test]
fn cifar100_missing_folder_says_where_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = Cifar100::from_dir(dir.path(), Cifar100Labels::Fine).unwrap_err();
    assert!(matches!(&err, DataError::MissingFile { file, .. } if file == "train.bin"), "{err:?}");
    assert!(err.to_string().contains("cifar-100-binary.tar.gz"), "{err}");
}
