//! CIFAR-10 and CIFAR-100 in their binary format, for users who have the files.
//!
//! Neither dataset is in a package registry, so nothing here downloads; the loaders read the
//! "binary version" published at <https://www.cs.toronto.edu/~kriz/cifar.html>
//! (`cifar-10-binary.tar.gz`, `cifar-100-binary.tar.gz`), unpacked. Each file is a sequence of
//! fixed-size records:
//!
//! | dataset   | files                                          | record                                                  |
//! |-----------|------------------------------------------------|---------------------------------------------------------|
//! | CIFAR-10  | `data_batch_1.bin` ... `data_batch_5.bin`, `test_batch.bin` | label byte, then 3072 pixel bytes (3073 bytes)  |
//! | CIFAR-100 | `train.bin`, `test.bin`                        | coarse label byte, fine label byte, 3072 pixel bytes (3074) |
//!
//! The 3072 pixel bytes of a record are a 32x32 RGB image, channel-major: 1024 red bytes, then
//! 1024 green, then 1024 blue, each plane row-major. That is [`ImageSet`]'s layout, so the bytes
//! are copied as they are.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{DataError, ImageDataset, ImageSet};

/// The shape of every CIFAR image: `[n_channels, n_rows, n_cols]` = `[3, 32, 32]`.
pub const CIFAR_IMAGE_SHAPE: [usize; 3] = [3, 32, 32];
/// The pixel bytes of one CIFAR image: 3 * 32 * 32.
const CIFAR_IMAGE_LEN: usize = 3 * 32 * 32;

/// The folder that `cifar-10-binary.tar.gz` unpacks to.
pub const CIFAR10_DIR: &str = "cifar-10-batches-bin";
/// The CIFAR-10 training files, 10,000 images each.
pub const CIFAR10_TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// The CIFAR-10 test file, 10,000 images.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";

/// The folder that `cifar-100-binary.tar.gz` unpacks to.
pub const CIFAR100_DIR: &str = "cifar-100-binary";
/// The CIFAR-100 training file, 50,000 images.
pub const CIFAR100_TRAIN_FILE: &str = "train.bin";
/// The CIFAR-100 test file, 10,000 images.
pub const CIFAR100_TEST_FILE: &str = "test.bin";

/// The names of the ten CIFAR-10 classes, by label (as in `batches.meta.txt`).
pub const CIFAR10_CLASS_NAMES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The names of the 100 CIFAR-100 classes ("fine" labels), by label (as in
/// `fine_label_names.txt`: alphabetical).
pub const CIFAR100_FINE_CLASS_NAMES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// The names of the 20 CIFAR-100 superclasses ("coarse" labels), by label (as in
/// `coarse_label_names.txt`: alphabetical).
pub const CIFAR100_COARSE_CLASS_NAMES: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

/// The mean of each channel (R, G, B) over the CIFAR-10 training set, on the 0..1 scale: the
/// standard published values.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// The standard deviation of each channel (R, G, B) over the CIFAR-10 training set, all pixels
/// of a channel pooled (as [`ImageSet::channel_mean_std`] computes it), on the 0..1 scale.
///
/// Many CIFAR recipes use `(0.2023, 0.1994, 0.2010)` instead: that is the average of the
/// per-image standard deviations, a different (smaller) quantity.
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
/// The mean of each channel (R, G, B) over the CIFAR-100 training set, on the 0..1 scale.
pub const CIFAR100_MEAN: [f32; 3] = [0.5071, 0.4865, 0.4409];
/// The standard deviation of each channel (R, G, B) over the CIFAR-100 training set, all pixels
/// of a channel pooled, on the 0..1 scale.
pub const CIFAR100_STD: [f32; 3] = [0.2673, 0.2564, 0.2762];

/// Where to get the CIFAR-10 files, for [`DataError::MissingFile`].
const CIFAR10_HELP: &str = "CIFAR-10 needs data_batch_1.bin ... data_batch_5.bin and test_batch.bin, the \
    \"binary version\" (cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html; not the \
    Python or MATLAB version). Unpack it and give the folder it unpacks to (cifar-10-batches-bin) or its parent";
/// Where to get the CIFAR-100 files, for [`DataError::MissingFile`].
const CIFAR100_HELP: &str = "CIFAR-100 needs train.bin and test.bin, the \"binary version\" \
    (cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html; not the Python or MATLAB \
    version). Unpack it and give the folder it unpacks to (cifar-100-binary) or its parent";

/// The record layout of one of the two formats.
struct Layout {
    /// The format and its record layout, for error messages.
    format: &'static str,
    /// The number of classes of each label byte, in record order.
    label_classes: &'static [usize],
    /// Which label byte becomes the image's label.
    label: usize,
}

impl Layout {
    const CIFAR10: Layout =
        Layout { format: "CIFAR-10 (1 label byte + 3072 pixel bytes)", label_classes: &[10], label: 0 };

    const fn cifar100(labels: Cifar100Labels) -> Layout {
        Layout {
            format: "CIFAR-100 (1 coarse label byte + 1 fine label byte + 3072 pixel bytes)",
            label_classes: &[20, 100],
            label: match labels {
                Cifar100Labels::Coarse => 0,
                Cifar100Labels::Fine => 1,
            },
        }
    }

    fn record_bytes(&self) -> usize {
        self.label_classes.len() + CIFAR_IMAGE_LEN
    }

    /// Parses one file of records, appending its images and labels to `set`.
    fn parse_into(&self, bytes: &[u8], path: &Path, set: &mut ImageSet) -> Result<(), DataError> {
        let record_bytes = self.record_bytes();
        if bytes.is_empty() {
            return Err(DataError::Empty { path: path.to_path_buf(), format: self.format });
        }
        if !bytes.len().is_multiple_of(record_bytes) {
            return Err(DataError::RecordSize {
                path: path.to_path_buf(),
                len: bytes.len() as u64,
                record_bytes: record_bytes as u64,
                format: self.format,
            });
        }
        let n_labels = self.label_classes.len();
        set.images.reserve(bytes.len() / record_bytes * CIFAR_IMAGE_LEN);
        for (index, record) in bytes.chunks_exact(record_bytes).enumerate() {
            let (labels, pixels) = record.split_at(n_labels);
            // Every label byte is checked, the unused one too: a bad one means a corrupt file.
            for (&label, &n_classes) in labels.iter().zip(self.label_classes) {
                if usize::from(label) >= n_classes {
                    return Err(DataError::BadLabel { path: path.to_path_buf(), index, label, n_classes });
                }
            }
            set.labels.push(labels[self.label]);
            set.images.extend_from_slice(pixels);
        }
        Ok(())
    }

    /// Parses one file held in memory into a new set.
    fn parse(&self, bytes: &[u8], path: &Path) -> Result<ImageSet, DataError> {
        let mut set = empty_set();
        self.parse_into(bytes, path, &mut set)?;
        Ok(set)
    }

    /// Reads and parses the files `names` of `dir`, in order, into one set.
    fn read(&self, dir: &Path, names: &[&str], help: &'static str) -> Result<ImageSet, DataError> {
        let mut set = empty_set();
        for name in names {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(DataError::MissingFile { dir: dir.to_path_buf(), file: (*name).to_owned(), help });
            }
            let bytes = std::fs::read(&path).map_err(|source| DataError::Io { path: path.clone(), source })?;
            self.parse_into(&bytes, &path, &mut set)?;
        }
        Ok(set)
    }
}

/// A set of no CIFAR images.
fn empty_set() -> ImageSet {
    let [n_channels, n_rows, n_cols] = CIFAR_IMAGE_SHAPE;
    ImageSet { images: Vec::new(), labels: Vec::new(), n_channels, n_rows, n_cols }
}

/// The folder that holds `probe`: `dir` itself, or `dir/subdir` (the folder the official
/// archive unpacks to). Falls back to `dir`, so a missing file is reported there.
fn resolve_dir(dir: &Path, subdir: &str, probe: &str) -> PathBuf {
    let nested = dir.join(subdir);
    if !dir.join(probe).is_file() && nested.join(probe).is_file() { nested } else { dir.to_path_buf() }
}

/// CIFAR-10: 32x32 RGB photographs of ten classes, 50,000 for training and 10,000 for testing.
///
/// CIFAR-10 is by Alex Krizhevsky, Vinod Nair and Geoffrey Hinton ("Learning Multiple Layers of
/// Features from Tiny Images", 2009). It is in no package registry: get the binary version from
/// <https://www.cs.toronto.edu/~kriz/cifar.html> and point [`from_dir`](Self::from_dir) at it.
///
/// ```
/// use sorted_data::{CIFAR10_CLASS_NAMES, Cifar10, ImageDataset};
///
/// // Two records of the CIFAR-10 binary format: a label byte, then 3072 pixel bytes (R, G, B planes).
/// let mut bytes = vec![3];
/// bytes.extend([10; 1024].iter().chain(&[20; 1024]).chain(&[30; 1024]));
/// bytes.push(8);
/// bytes.extend([0; 3072]);
/// let set = Cifar10::parse(&bytes, "two-records.bin")?;
/// assert_eq!((set.len(), set.image_shape(), set.labels.as_slice()), (2, [3, 32, 32], &[3, 8][..]));
/// assert_eq!(set.channel(0, 1)[0], 20); // the green plane of image 0
/// assert_eq!(CIFAR10_CLASS_NAMES[usize::from(set.labels[0])], "cat");
///
/// // A folder without the files: the error names the file and where to get it.
/// let empty = tempfile::tempdir()?;
/// let err = Cifar10::from_dir(empty.path()).unwrap_err();
/// assert!(err.to_string().contains("data_batch_1.bin"));
/// assert!(err.to_string().contains("https://www.cs.toronto.edu/~kriz/cifar.html"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cifar10 {
    /// The training split: `data_batch_1.bin` to `data_batch_5.bin`, in that order.
    pub train: ImageSet,
    /// The test split: `test_batch.bin`.
    pub test: ImageSet,
}

impl Cifar10 {
    /// Reads CIFAR-10 from a folder holding [`CIFAR10_TRAIN_FILES`] and [`CIFAR10_TEST_FILE`]:
    /// either the unpacked [`CIFAR10_DIR`] folder or its parent.
    ///
    /// # Errors
    /// - [`DataError::MissingFile`] if a file is not there (the message says where to get it);
    /// - [`DataError::Io`] if a file cannot be read;
    /// - every error of [`parse`](Self::parse), naming the file.
    pub fn from_dir(dir: &Path) -> Result<Cifar10, DataError> {
        let dir = resolve_dir(dir, CIFAR10_DIR, CIFAR10_TEST_FILE);
        let train = Layout::CIFAR10.read(&dir, &CIFAR10_TRAIN_FILES, CIFAR10_HELP)?;
        let test = Layout::CIFAR10.read(&dir, &[CIFAR10_TEST_FILE], CIFAR10_HELP)?;
        Ok(Cifar10 { train, test })
    }

    /// Parses one CIFAR-10 batch file held in memory. `name` is the file name used in errors.
    ///
    /// # Errors
    /// - [`DataError::Empty`] if `bytes` is empty;
    /// - [`DataError::RecordSize`] if its length is not a multiple of 3073 bytes;
    /// - [`DataError::BadLabel`] for the first record whose label is not below 10.
    pub fn parse(bytes: &[u8], name: impl AsRef<Path>) -> Result<ImageSet, DataError> {
        Layout::CIFAR10.parse(bytes, name.as_ref())
    }
}

impl From<Cifar10> for ImageDataset {
    fn from(cifar: Cifar10) -> Self {
        ImageDataset { train: cifar.train, test: cifar.test, class_names: &CIFAR10_CLASS_NAMES }
    }
}

/// Which of the two CIFAR-100 labels an image gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cifar100Labels {
    /// The 100 classes ([`CIFAR100_FINE_CLASS_NAMES`]): the usual benchmark.
    #[default]
    Fine,
    /// The 20 superclasses ([`CIFAR100_COARSE_CLASS_NAMES`]).
    Coarse,
}

impl Cifar100Labels {
    /// The class names of these labels, by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            Cifar100Labels::Fine => &CIFAR100_FINE_CLASS_NAMES,
            Cifar100Labels::Coarse => &CIFAR100_COARSE_CLASS_NAMES,
        }
    }
}

/// CIFAR-100: 32x32 RGB photographs of 100 classes grouped into 20 superclasses, 50,000 for
/// training and 10,000 for testing.
///
/// Same authors and source as [`Cifar10`]. Every image has a fine and a coarse label; the
/// [`Cifar100Labels`] chosen when reading decides which one [`ImageSet::labels`] holds.
///
/// ```
/// use sorted_data::{Cifar100, Cifar100Labels, ImageDataset};
///
/// // The CIFAR-100 binary format: coarse label byte, fine label byte, then 3072 pixel bytes.
/// let dir = tempfile::tempdir()?;
/// for (name, fine) in [("train.bin", 51), ("test.bin", 99)] {
///     let mut record = vec![4, fine];
///     record.extend([128; 3072]);
///     std::fs::write(dir.path().join(name), record)?;
/// }
/// let fine: ImageDataset = Cifar100::from_dir(dir.path(), Cifar100Labels::Fine)?.into();
/// assert_eq!((fine.train.labels[0], fine.class_names[51]), (51, "mushroom"));
/// let coarse: ImageDataset = Cifar100::from_dir(dir.path(), Cifar100Labels::Coarse)?.into();
/// assert_eq!((coarse.n_classes(), coarse.test.labels[0], coarse.class_names[4]), (20, 4, "fruit_and_vegetables"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cifar100 {
    /// The training split: `train.bin`.
    pub train: ImageSet,
    /// The test split: `test.bin`.
    pub test: ImageSet,
    /// Which labels the splits hold.
    pub labels: Cifar100Labels,
}

impl Cifar100 {
    /// Reads CIFAR-100 from a folder holding [`CIFAR100_TRAIN_FILE`] and [`CIFAR100_TEST_FILE`]:
    /// either the unpacked [`CIFAR100_DIR`] folder or its parent. The images get the `labels`
    /// labels; both label bytes of every record are checked.
    ///
    /// # Errors
    /// - [`DataError::MissingFile`] if a file is not there (the message says where to get it);
    /// - [`DataError::Io`] if a file cannot be read;
    /// - every error of [`parse`](Self::parse), naming the file.
    pub fn from_dir(dir: &Path, labels: Cifar100Labels) -> Result<Cifar100, DataError> {
        let dir = resolve_dir(dir, CIFAR100_DIR, CIFAR100_TEST_FILE);
        let layout = Layout::cifar100(labels);
        let train = layout.read(&dir, &[CIFAR100_TRAIN_FILE], CIFAR100_HELP)?;
        let test = layout.read(&dir, &[CIFAR100_TEST_FILE], CIFAR100_HELP)?;
        Ok(Cifar100 { train, test, labels })
    }

    /// Parses one CIFAR-100 file held in memory, keeping the `labels` labels. `name` is the file
    /// name used in errors.
    ///
    /// # Errors
    /// - [`DataError::Empty`] if `bytes` is empty;
    /// - [`DataError::RecordSize`] if its length is not a multiple of 3074 bytes;
    /// - [`DataError::BadLabel`] for the first record whose coarse label is not below 20 or
    ///   whose fine label is not below 100.
    pub fn parse(bytes: &[u8], name: impl AsRef<Path>, labels: Cifar100Labels) -> Result<ImageSet, DataError> {
        Layout::cifar100(labels).parse(bytes, name.as_ref())
    }

    /// The class names of the labels this value holds.
    pub fn class_names(&self) -> &'static [&'static str] {
        self.labels.class_names()
    }
}

impl From<Cifar100> for ImageDataset {
    fn from(cifar: Cifar100) -> Self {
        let class_names = cifar.class_names();
        ImageDataset { train: cifar.train, test: cifar.test, class_names }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_are_complete_and_sorted_where_the_dataset_sorts_them() {
        assert_eq!(CIFAR100_FINE_CLASS_NAMES.len(), 100);
        assert!(CIFAR100_FINE_CLASS_NAMES.is_sorted());
        assert!(CIFAR100_COARSE_CLASS_NAMES.is_sorted());
        assert_eq!(Cifar100Labels::default(), Cifar100Labels::Fine);
        assert_eq!(Cifar100Labels::Coarse.class_names().len(), 20);
    }

    #[test]
    fn label_choice_reads_from_config_files() {
        #[derive(Debug, Deserialize)]
        struct Data {
            labels: Cifar100Labels,
        }
        let coarse: Data = toml::from_str("labels = \"coarse\"").unwrap();
        assert_eq!(coarse.labels, Cifar100Labels::Coarse);
        let err = toml::from_str::<Data>("labels = \"medium\"").unwrap_err();
        assert!(err.to_string().contains("fine") && err.to_string().contains("coarse"), "{err}");
    }

    #[test]
    fn record_sizes() {
        assert_eq!(Layout::CIFAR10.record_bytes(), 3073);
        assert_eq!(Layout::cifar100(Cifar100Labels::Fine).record_bytes(), 3074);
    }
}
