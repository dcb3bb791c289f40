//! Scheduler invariants, compiled as one integration binary.

mod accumulation;
mod configs;
mod samplers;
mod toy;
