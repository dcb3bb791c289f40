//! Nesting invariants of the zoo models, compiled as one integration binary.

mod models;
