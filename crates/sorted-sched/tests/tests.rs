//! Scheduler invariants, compiled as one integration binary.

mod accumulation;
mod configs;
mod distill;
mod samplers;
mod toy;
