#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod batcher;
mod epoch_order;
mod error;
pub mod idx;
mod image_set;
mod mnist;

pub use batcher::{ImageBatch, ImageBatcher, MNIST_MEAN, MNIST_STD};
pub use epoch_order::EpochOrder;
pub use error::DataError;
pub use image_set::ImageSet;
pub use mnist::{
    EMBEDDED_DIR, EMBEDDED_MNIST_SHA256, EMBEDDED_TEST_STRIDE, EMBEDDED_TRAIN_LEN, MNIST_CLASSES, Mnist, TEST_IMAGES,
    TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS,
};
