//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::device::DeviceKind;

/// Train, evaluate and export nested (sorted) sub-models.
///
/// With no command, trains the built-in default experiment (`configs/mnist-mlp.toml`: a sorted
/// MLP on the embedded MNIST subset) and reports every sub-model.
#[derive(Debug, Parser)]
#[command(name = "sorted-runner", version, about)]
pub struct Cli {
    /// Where to run: cpu (Flex), ndarray, wgpu or cuda (each needs its cargo feature).
    #[arg(long, global = true, value_enum, default_value = "cpu")]
    pub device: DeviceKind,
    /// No progress bars or tables (reports are still written).
    #[arg(long, global = true)]
    pub quiet: bool,
    /// The command (default: `train` with the default config).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A runner command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train an experiment, then evaluate every sub-model and write the reports.
    Train(TrainArgs),
    /// Evaluate every sub-model of a finished run again and rewrite its reports.
    Eval(EvalArgs),
    /// Export one sub-model as a standalone dense model (burn record + safetensors + manifest).
    Export(ExportArgs),
}

/// `train`.
#[derive(Debug, Default, Args)]
pub struct TrainArgs {
    /// The experiment config (TOML). Default: the built-in `configs/mnist-mlp.toml`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The run folder (default: `runs/<name>-<UTC time>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override `train.steps`.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Continue the run in this folder from its checkpoint (its saved config is used).
    #[arg(long, conflicts_with_all = ["config", "out", "steps"])]
    pub resume: Option<PathBuf>,
    /// Stop after this many steps in total, with a checkpoint, as if interrupted.
    #[arg(long)]
    pub stop_after: Option<u64>,
}

/// `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run folder.
    #[arg(long)]
    pub run: PathBuf,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// The sub-model: widths joined by `-` (e.g. `128-64`), `full` or `smallest`.
    #[arg(long)]
    pub sub_model: String,
    /// Output folder (default: `<run>/export/<sub-model>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
