#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod few_rows;
mod host_decoder;
mod host_kv_cache;
mod host_matrix;
mod q8_int8_dots;
mod q8_rows;
mod spinning_partner;

pub use few_rows::{FEW_ROWS_MAX, PARALLEL_MIN_ELEMENTS, RowMatrix, few_rows_times_transposed};
pub use host_decoder::{HostDecoder, HostDecoderShape, HostLayer};
pub use host_kv_cache::HostKvCache;
pub use host_matrix::HostMatrix;
pub use q8_rows::{Q8_BLOCK, Q8Matrix};
