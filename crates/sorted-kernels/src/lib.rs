#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod few_rows;

pub use few_rows::{FEW_ROWS_MAX, PARALLEL_MIN_ELEMENTS, RowMatrix, few_rows_times_transposed};
