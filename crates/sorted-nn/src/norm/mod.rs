//! Nested normalisation layers and BatchNorm statistics per sub-model.

mod batch;
mod calibration;
mod layer;
mod rms;

pub use batch::{BatchStatistics, SortedBatchNorm, SortedBatchNormConfig, dense_batch_norm_forward};
pub use calibration::{NormCalibrator, NormPass, SubModelNormStats};
pub use layer::{SortedLayerNorm, SortedLayerNormConfig};
pub use rms::RmsNorm;
