//! Text classification with a sorted BERT: config, tokenized data, training and evaluation.
//!
//! `sorted-runner train --config F` lands here when `F` has a `[model.bert]` table.

pub mod config;
mod export;
mod run;

pub use config::{
    BertOptions, EvalSplit, RandomBertSizes, TextDataConfig, TextExperiment, TextExperimentConfig, TextModelConfig,
    is_text_experiment, model_kind,
};
pub(crate) use export::export_text;
pub use run::train_text_experiment;
pub use sorted_data::TextData;
