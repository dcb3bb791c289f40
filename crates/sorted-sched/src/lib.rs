#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod accumulate;
mod atomic;
mod checkpoint;
mod distill;
mod error;
mod optimizer;
mod parallel;
mod sampler;
mod schedule;

pub use accumulate::{Accumulated, accumulate, normalised_weights};
pub use atomic::write_atomic;
pub use checkpoint::{
    TrainState, checkpoint_dir, load_checkpoint, load_model, read_config, read_state, save_checkpoint,
};
pub use distill::distillation_loss;
pub use error::{CheckpointError, ConfigError};
pub use optimizer::{AdamOptions, OptimizerConfig, SgdOptions, SortedOptimizer};
pub use parallel::accumulate_parallel;
pub use sampler::{
    AllSampler, AllSamplerConfig, FixedSampler, FixedSamplerConfig, FullSampler, FullSamplerConfig, Sampler,
    SamplerConfig, SandwichSampler, SandwichSamplerConfig, SubModelSpace, UniformOver, UniformSampler,
    UniformSamplerConfig, WeightedSampler, WeightedSamplerConfig,
};
pub use schedule::{Decay, LrSchedule};
