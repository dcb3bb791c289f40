//! Scheduler invariants, compiled as one integration binary.

mod accumulation;
mod checkpoints;
mod configs;
mod distill;
mod samplers;
mod toy;
mod train_loop;
