//! Nesting invariants of the sorted layers, compiled as one integration binary.

mod layers;
