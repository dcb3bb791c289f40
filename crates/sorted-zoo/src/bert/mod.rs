//! BERT: a post-LN transformer encoder with nested depth, heads, FFN and hidden width, and its
//! loader for Hugging Face `BertModel` weights.

mod model;
mod weights;

pub use model::{Pooling, SortedBert, SortedBertConfig, SortedBertLayer};
pub use weights::WeightsError;
pub(crate) use weights::transposed;
