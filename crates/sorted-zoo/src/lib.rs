#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod classifier;
mod cnn;
pub mod deploy;
mod mlp;

pub use classifier::{DenseClassifier, SortedClassifier};
pub use cnn::{DenseCnn, SortedCnn, SortedCnnConfig};
pub use mlp::{DenseMlp, SortedMlp, SortedMlpConfig};
