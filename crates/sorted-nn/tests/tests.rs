//! Nesting invariants of the sorted layers, compiled as one integration binary.
// One range per tensor dimension: a 1-D parameter takes a one-element array on purpose.
#![allow(clippy::single_range_in_vec_init)]

mod attention;
mod layers;
