#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod augment;
mod batcher;
mod bpe_pre_tokenizer;
mod byte_bpe;
mod char_class;
mod chatml;
mod cifar;
pub mod csv;
mod dataset;
mod epoch_order;
mod error;
mod fashion_mnist;
mod gguf;
pub mod idx;
mod image_data_config;
mod image_set;
mod lm_chunks;
mod lm_data_config;
mod mnist;
mod rt_sentiment;
mod shakespeare;
mod text_batcher;
mod text_data_config;
mod text_dataset;
mod tokenized_dataset;
mod wordpiece;

pub use augment::{AugmentConfig, Augmentation, ImageTransform};
pub use batcher::{ImageBatch, ImageBatcher, MNIST_MEAN, MNIST_STD};
pub use bpe_pre_tokenizer::BpePreTokenizer;
pub use byte_bpe::{ByteLevelBpe, gpt2_byte_char, gpt2_char_byte};
pub use chatml::{END_OF_TEXT, IM_END, IM_START, SMOLLM2_SYSTEM_PROMPT, chatml_prompt};
pub use cifar::{
    CIFAR_IMAGE_SHAPE, CIFAR10_CLASS_NAMES, CIFAR10_DIR, CIFAR10_MEAN, CIFAR10_STD, CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES, CIFAR100_COARSE_CLASS_NAMES, CIFAR100_DIR, CIFAR100_FINE_CLASS_NAMES, CIFAR100_MEAN,
    CIFAR100_STD, CIFAR100_TEST_FILE, CIFAR100_TRAIN_FILE, Cifar10, Cifar100, Cifar100Labels,
};
pub use dataset::ImageDataset;
pub use epoch_order::EpochOrder;
pub use error::DataError;
pub use fashion_mnist::{FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, FashionMnist};
pub use gguf::{
    GGUF_DEFAULT_ALIGNMENT, GgmlType, GgufError, GgufFile, GgufMetadata, GgufTensorInfo, GgufValue, GgufValueType,
    GgufWriteError, GgufWriter,
};
pub use image_data_config::{DatasetKind, ImageData, ImageDataConfig};
pub use image_set::ImageSet;
pub use lm_chunks::{LmBatch, LmChunks};
pub use lm_data_config::{LmData, LmDataConfig, LmText};
pub use mnist::{
    EMBEDDED_DIR, EMBEDDED_MNIST_SHA256, EMBEDDED_TEST_STRIDE, EMBEDDED_TRAIN_LEN, MNIST_CLASS_NAMES, MNIST_CLASSES,
    Mnist, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
pub use rt_sentiment::{
    RT_CLASS_NAMES, RT_CLASSES, RT_CSV_FILE, RT_CSV_HEADER, RT_EMBEDDED_DEV_LEN, RT_EMBEDDED_DIR, RT_EMBEDDED_FILE,
    RT_EMBEDDED_SHA256, RT_EMBEDDED_TEST_LEN, RT_EMBEDDED_TRAIN_LEN, RT_SPLIT_SEED, RtSentiment, RtSplit,
};
pub use shakespeare::{
    SHAKESPEARE_FILE_SUFFIX, SHAKESPEARE_HELDOUT_WORKS, SHAKESPEARE_N_WORKS, Shakespeare, ShakespeareWork,
    WORK_SEPARATOR,
};
/// Atomic writes (the GGUF writer, xtask); they live in sorted-provenance, shared by every crate.
pub use sorted_provenance::write_atomic;
pub use text_batcher::{TextBatch, TextBatcher};
pub use text_data_config::{EvalSplit, TextData, TextDataConfig};
pub use text_dataset::TextDataset;
pub use tokenized_dataset::TokenizedDataset;
pub use wordpiece::{
    CLS_TOKEN, CONTINUATION_PREFIX, Encoding, MAX_CHARS_PER_WORD, PAD_TOKEN, SEP_TOKEN, SpecialTokens, UNK_TOKEN,
    WordPieceTokenizer,
};
