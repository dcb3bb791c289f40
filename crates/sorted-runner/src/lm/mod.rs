//! Language-model experiments (`[model.llama]`): sorted fine-tuning of a decoder (SoFT) on any
//! text, run by `train` like image and text experiments (checkpoints, resume, stop-after,
//! `eval`).

pub mod config;
pub(crate) mod run;

pub use config::{LmExperiment, LmExperimentConfig, LmModelConfig, is_lm_experiment};
pub(crate) use run::train_lm_in_folder;
pub use run::{TERM_LOSSES_FILE, TermLoss, train_lm_experiment};
