//! BERT: a post-LN transformer encoder with nested depth, heads, FFN and hidden width, and its
//! loader for Hugging Face `BertModel` weights.

mod classification_loss;
mod evaluate;
mod export_hf;
mod linear_probe;
mod model;
mod model_config;
mod weights;

pub use classification_loss::{bert_classification_loss, bert_teacher_log_probs};
pub use evaluate::{BertSubModelScore, evaluate_bert_sub_models};
pub use export_hf::{BERT_HF_EXPORT_FORMAT, BertExportError, BertExportOptions, BertHfManifest, export_bert_hf};
pub use linear_probe::{LinearProbe, ProbeError, ProbeOptions, sentence_features};
pub use model::{Pooling, SortedBert, SortedBertConfig, SortedBertLayer};
pub use model_config::{BertModelConfig, RandomBertSizes};
pub(crate) use weights::transposed;
pub use weights::{MAX_BERT_PARAMETER_BYTES, WeightsError, safetensors_tensor_names};
