#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod conv;
mod cost;
mod error;
mod linear;
mod norm;
mod spec;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use conv::{SortedConv2d, SortedConv2dConfig};
pub use cost::Cost;
pub use error::SpecError;
pub use linear::{SortedLinear, SortedLinearConfig};
pub use norm::{
    BatchStatistics, NormCalibrator, NormPass, SortedBatchNorm, SortedBatchNormConfig, SortedLayerNorm,
    SortedLayerNormConfig, SubModelNormStats, dense_batch_norm_forward,
};
pub use spec::{NestingSpace, NestingSpaceConfig, SubModel};
