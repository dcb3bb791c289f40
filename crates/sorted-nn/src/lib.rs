#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod attention;
mod conv;
mod cost;
mod distill;
mod embedding;
mod error;
mod linear;
mod nesting_space;
mod norm;
mod record_shapes;
mod rope;
mod sub_model_space;
#[cfg(feature = "test-util")]
pub mod test_util;
mod transformer_space;

pub use attention::{DenseMultiHeadAttention, PaddingMask, SortedMultiHeadAttention, SortedMultiHeadAttentionConfig};
pub use conv::{SortedConv2d, SortedConv2dConfig};
pub use cost::Cost;
pub use distill::distillation_loss;
pub use embedding::{SortedEmbedding, SortedEmbeddingConfig};
pub use error::SpecError;
pub use linear::{SortedLinear, SortedLinearConfig};
pub use nesting_space::{MAX_BLOCKS, MAX_WIDTH, NestingSpace, NestingSpaceConfig, SubModel};
pub use norm::{
    BatchStatistics, NormCalibrator, NormPass, RmsNorm, SortedBatchNorm, SortedBatchNormConfig, SortedLayerNorm,
    SortedLayerNormConfig, SubModelNormStats, dense_batch_norm_forward,
};
pub use record_shapes::{ParamShapes, ShapeMismatch, load_record_same_shapes};
pub use rope::rope;
pub use sub_model_space::SubModelSpace;
pub use transformer_space::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
