//! Scheduler invariants, compiled as one integration binary.

mod accumulation;
mod checkpoints;
mod configs;
#[cfg(feature = "collective")]
mod data_parallel;
mod distill;
mod samplers;
mod toy;
mod train_loop;
