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
    /// Measure latency and peak memory of every sub-model on the chosen device; plot latency
    /// against accuracy with the Pareto front.
    Profile(ProfileArgs),
    /// Print the most accurate sub-model under a latency, parameter or FLOPs budget.
    Select(SelectArgs),
    /// Compare a sorted run with its baselines: a sample of sub-models trained alone (same
    /// steps) and every sub-model sliced from the alone-trained full model.
    Compare(CompareArgs),
}

/// `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The experiment config (TOML) of the sorted run.
    #[arg(long)]
    pub config: PathBuf,
    /// The output folder (default: `runs/<name>-compare-<UTC time>`). Sub-folders that already
    /// hold results are reused, so an interrupted comparison continues where it stopped.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A finished sorted run of the same config to reuse instead of training one.
    #[arg(long)]
    pub sorted: Option<PathBuf>,
    /// How many sub-models to train alone: the smallest, the full model and evenly spaced FLOPs
    /// ranks in between.
    #[arg(long, default_value_t = 5)]
    pub alone: usize,
    /// Override `train.steps` (for every run).
    #[arg(long)]
    pub steps: Option<u64>,
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

/// `profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The run folder (trained and evaluated: its `results.json` gives the accuracies).
    #[arg(long)]
    pub run: PathBuf,
    /// Images per forward pass (1 for per-request latency).
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Untimed passes per sub-model before timing.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed passes per sub-model (the median is reported).
    #[arg(long, default_value_t = 50)]
    pub repeats: usize,
    /// Also time each sub-model's dense copy (what `export` writes), interleaved with the
    /// sliced passes, and report sliced / dense.
    #[arg(long)]
    pub compare_dense: bool,
    /// Output folder (default: `<run>/profile/<device>-b<batch size>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `select`: exactly one budget.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("budget").required(true).args(["max_latency_ms", "max_params", "max_flops"])))]
pub struct SelectArgs {
    /// The run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// Latency budget in milliseconds, from `profile` on `--device` at `--batch-size`.
    #[arg(long)]
    pub max_latency_ms: Option<f64>,
    /// Parameter budget.
    #[arg(long)]
    pub max_params: Option<u64>,
    /// FLOPs-per-sample budget.
    #[arg(long)]
    pub max_flops: Option<u64>,
    /// The batch size of the latency profile to use.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// A latency profile folder other than `<run>/profile/<device>-b<batch size>`.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Print the selection as JSON.
    #[arg(long)]
    pub json: bool,
}
