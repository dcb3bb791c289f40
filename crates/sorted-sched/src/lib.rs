#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod accumulate;
mod checkpoint;
mod error;
mod manifest;
mod optimizer;
mod parallel;
mod peer_sync;
mod peers;
mod run_lock;
mod sampler;
mod schedule;
mod train_config;
mod train_loop;

pub use accumulate::{Accumulated, accumulate, normalised_weights};
pub use checkpoint::{
    Checkpoint, DEFAULT_KEEP, TrainState, checkpoint_dir, first_non_finite_parameter, generations, load_checkpoint,
    load_model, load_record_checked, read_config, read_state, save_checkpoint,
};
pub use error::{CheckpointError, ConfigError};
pub use manifest::{CheckpointManifest, FileDigest, MANIFEST_FILE, MANIFEST_FORMAT, digest_file};
pub use optimizer::{AdamOptions, OptimizerConfig, SgdOptions, SortedOptimizer};
pub use parallel::accumulate_parallel;
pub use peer_sync::NodeConfig;
#[cfg(feature = "collective")]
pub use peer_sync::{abandon, join, join_node, leave};
#[cfg(feature = "collective")]
pub use peers::run_peers;
pub use peers::{PeerPanicked, PeerTask};
pub use run_lock::{LOCK_FILE, RunLock};
pub use sampler::{
    AllSampler, AllSamplerConfig, FixedSampler, FixedSamplerConfig, FullSampler, FullSamplerConfig, MAX_K, Sampler,
    SamplerConfig, SandwichSampler, SandwichSamplerConfig, SubModelSpace, UniformOver, UniformSampler,
    UniformSamplerConfig, WeightedSampler, WeightedSamplerConfig,
};
pub use schedule::{Decay, LrSchedule};
/// In-place distillation's loss; it lives in sorted-nn, so the model zoo can use it too.
pub use sorted_nn::distillation_loss;
/// Atomic writes (checkpoint files, reports); they live in sorted-provenance, shared by every crate.
pub use sorted_provenance::write_atomic;
pub use train_config::{LossReduction, TrainConfig};
pub use train_loop::{
    JointLoss, LoopOptions, LoopOutcome, Peer, TrainError, TrainLoop, TrainModel, TrainObserver, TrainTask,
    checkpoint_due,
};
