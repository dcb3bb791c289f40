#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod few_rows;
mod q8_rows;

pub use few_rows::{FEW_ROWS_MAX, PARALLEL_MIN_ELEMENTS, RowMatrix, few_rows_times_transposed};
pub use q8_rows::{Q8_BLOCK, Q8Matrix};
