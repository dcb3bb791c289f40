//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Decode with a GGUF decoder (SmolLM2): plain greedy, and lossless self-speculative
    /// decoding drafted by its first layers; `--bench DIR` writes a timing report.
    Generate(GenerateArgs),
    /// Per-exit perplexity of a GGUF decoder on the held-out Shakespeare works.
    Perplexity(PerplexityArgs),
    /// Sorted fine-tuning (SoFT) of a GGUF decoder on Shakespeare: the (weighted) mean loss of
    /// several exits from one forward pass, or of sub-models sampled over exits x FFN widths
    /// (one exit = plain fine-tuning).
    Soft(SoftArgs),
    /// Sort a pretrained decoder's query heads and SwiGLU units by importance on an
    /// experiment's training text and write it as a GGUF file, ready for sorted fine-tuning.
    Sort(SortArgs),
    /// Run the coordinator of a training run over several machines (Burn's global
    /// orchestrator) until stopped; each node then runs `train --distributed node.toml`.
    Coordinator(CoordinatorArgs),
}

/// `coordinator`.
#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// The port to listen on (the nodes' `distributed.coordinator` is `<this host>:<port>`).
    #[arg(long)]
    pub port: u16,
}

/// `sort`.
#[derive(Debug, Args)]
pub struct SortArgs {
    /// A `[model.llama]` experiment: its model, training text and `sort_by` / `sort_batches`.
    #[arg(long)]
    pub config: PathBuf,
    /// The importance score (default: the config's `sort_by`, else `taylor`).
    #[arg(long, value_parser = ["taylor", "activation", "magnitude"])]
    pub by: Option<String>,
    /// Output folder: `model.gguf` (F32, the full sorted decoder with its tokenizer) and
    /// `sort_scores.json`.
    #[arg(long)]
    pub out: PathBuf,
}

/// `soft`.
#[derive(Debug, Args)]
pub struct SoftArgs {
    /// The GGUF model (`cargo xtask data smollm2`).
    #[arg(long, default_value = "data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub gguf: PathBuf,
    /// The Shakespeare folder (`cargo xtask data shakespeare`).
    #[arg(long, default_value = "data/shakespeare")]
    pub shakespeare: PathBuf,
    /// Exits trained, comma-separated (their losses are averaged); `30` alone = plain
    /// fine-tuning.
    #[arg(long, value_delimiter = ',', default_value = "6,12,18,24,30")]
    pub exits: Vec<usize>,
    /// Loss weight of each exit, comma-separated, in the order of `--exits` (default: equal,
    /// the Sorted LLaMA recipe). The loss is the weighted mean.
    #[arg(long, value_delimiter = ',')]
    pub exit_weights: Vec<f64>,
    /// SortedNet sampling over depth x FFN width: the SwiGLU widths to sample (comma-separated);
    /// each step then trains `--samples` sub-models drawn uniformly per axis from the exits x
    /// these widths, instead of every exit at full width.
    #[arg(long, value_delimiter = ',')]
    pub ffn: Vec<usize>,
    /// SortedNet sampling over query heads: the head counts to sample (comma-separated
    /// multiples of the KV heads, e.g. `3,6,9` for SmolLM2's 9 query / 3 KV heads); each keeps
    /// the first heads of every KV group. Combines with `--ffn`.
    #[arg(long, value_delimiter = ',')]
    pub heads: Vec<usize>,
    /// Sub-models per step when sampling (`--ffn`, `--heads`).
    #[arg(long, default_value_t = 3)]
    pub samples: usize,
    /// When sampling, always train the full model as one of the `--samples`.
    #[arg(long)]
    pub include_full: bool,
    /// Train the shared final norm and tied head from the full-depth exit only (shallower exits
    /// then adapt only their layers); default: from every exit, as in Sorted LLaMA.
    #[arg(long)]
    pub head_from_full_only: bool,
    /// Self-distillation weight `a` in [0, 1]: every exit below the full model minimises
    /// `(1 - a) * cross-entropy + a * KL(full model || exit)`, the full model's distribution
    /// detached (a fixed target each step), which trains the exits to agree with the full model
    /// as a speculative drafter must. 0: the text only (Sorted LLaMA).
    #[arg(long, default_value_t = 0.0)]
    pub distill: f64,
    /// Before training, print (and record in `gradient_probe.json`) each term's gradient norm on the
    /// first batch over the layers every exit shares and over the final norm + head: how
    /// strongly each exit pulls on the shared weights (one extra forward/backward per term).
    #[arg(long)]
    pub probe_gradients: bool,
    /// Optimizer steps.
    #[arg(long, default_value_t = 60, value_parser = at_least_one)]
    pub steps: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub batch_size: usize,
    /// Tokens per window.
    #[arg(long, default_value_t = 128, value_parser = at_least_one)]
    pub seq_len: usize,
    /// Peak learning rate (AdamW; warm-up over 10% of the steps, then linear decay).
    #[arg(long, default_value_t = 1e-4, value_parser = positive_finite)]
    pub lr: f64,
    /// Seed of the data order and the sampler.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Held-out tokens every sub-model is scored on after training.
    #[arg(long, default_value_t = 4096, value_parser = at_least_one)]
    pub eval_tokens: usize,
    /// The run folder (`config.toml`, `checkpoint/`, `results.*`, `term_losses.jsonl`);
    /// `train --resume` continues it, `generate/perplexity --weights` read it.
    #[arg(long)]
    pub out: PathBuf,
    /// Stop (with a checkpoint) after this many steps; `train --resume` continues.
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// Replace a run already in `--out`.
    #[arg(long)]
    pub force: bool,
}

/// `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The GGUF model (`cargo xtask data smollm2`).
    #[arg(long, default_value = "data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub gguf: PathBuf,
    /// A prompt (repeat for several); default: the 8 built-in benchmark prompts.
    #[arg(long)]
    pub prompt: Vec<String>,
    /// Feed the prompt as is instead of wrapping it in the ChatML template.
    #[arg(long)]
    pub raw: bool,
    /// Tokens to generate per prompt at most (generation also stops at `<|im_end|>`).
    #[arg(long, default_value_t = 48, value_parser = at_least_one)]
    pub max_new: usize,
    /// Self-speculative decoding drafted by the first N layers (repeat to compare depths).
    #[arg(long)]
    pub draft_depth: Vec<usize>,
    /// First draft length.
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    pub draft_len: usize,
    /// Longest draft.
    #[arg(long, default_value_t = 8, value_parser = at_least_one)]
    pub max_draft: usize,
    /// Also draft over only the first N tokens of the vocabulary (a nested vocabulary; repeat
    /// to compare sizes): each drafted token's head costs N/vocab, verification stays exact.
    #[arg(long)]
    pub draft_vocab: Vec<usize>,
    /// Decode with Burn and the model's own (training) weight layout instead of the fastest
    /// decoder for the device: on a CPU a copy of the weights on the host decoded one fused pass
    /// per layer, elsewhere Burn with a transposed copy of the projections (with `--bench`, the
    /// model layout and, on a CPU, Burn's decoding layout are timed too).
    #[arg(long)]
    pub model_layout: bool,
    /// Decode on the host CPU with the projections and the tied head in 8-bit blocks (ggml's
    /// Q8_0 scheme: a quarter of the bytes per token), each product's activations quantized to
    /// 8-bit blocks too and summed in integers as llama.cpp does; lossy. Also decodes greedily
    /// with f32 weights and says how many prompts and tokens agree.
    #[arg(long, conflicts_with = "model_layout")]
    pub q8: bool,
    /// With `--q8`: keep the activations in f32 (only the weights are rounded: closer to the
    /// f32 tokens, about a fifth slower).
    #[arg(long, requires = "q8")]
    pub f32_activations: bool,
    /// Keep the draft length fixed instead of adapting it to the acceptance.
    #[arg(long)]
    pub fixed_draft: bool,
    /// Also verify the last drafted token, so a fully accepted draft ends with the full
    /// model's own next token (every cycle emits accepted + 1 tokens, for one more pass of the
    /// draft's layers); `both` decodes every drafter both ways, for `--bench`.
    #[arg(long, value_enum, default_value_t = BonusTokenArg::Off)]
    pub bonus_token: BonusTokenArg,
    /// Fall back to plain greedy steps while they are measured faster per token than the
    /// drafter's cycles, trying the slower mode once after every N of the faster (repeat to
    /// compare; 0 = never fall back). Default: 0.
    #[arg(long)]
    pub fallback_probe: Vec<usize>,
    /// Write `decode.json` and `decode.md` (tokens/s, acceptance, speed-up) into this folder.
    #[arg(long)]
    pub bench: Option<PathBuf>,
    /// Fine-tuned weights replacing the GGUF's: a `soft` / `[model.llama]` run folder (its
    /// newest checkpoint) or a `model.mpk` record.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Decode this sub-model instead of the full model, e.g. `L20-H6-F768`: its first L layers,
    /// H query heads (a multiple of the KV heads: the first heads of every KV group) and F
    /// SwiGLU units; an axis left out stays full. Drafts and early exits then come from its own
    /// first layers at the same widths. With `--bench`, the full model's greedy decoding is
    /// timed too, for comparison.
    #[arg(long)]
    pub sub_model: Option<String>,
    /// Also decode with confidence-based early exit (lossy, reported separately): exits and
    /// their top-probability thresholds, e.g. `20:0.9,25:0.8`.
    #[arg(long, value_delimiter = ',')]
    pub early_exit: Vec<String>,
}

/// `perplexity`.
#[derive(Debug, Args)]
pub struct PerplexityArgs {
    /// The GGUF model (`cargo xtask data smollm2`).
    #[arg(long, default_value = "data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")]
    pub gguf: PathBuf,
    /// The Shakespeare folder (`cargo xtask data shakespeare`).
    #[arg(long, default_value = "data/shakespeare")]
    pub shakespeare: PathBuf,
    /// Held-out tokens to score.
    #[arg(long, default_value_t = 8192, value_parser = at_least_one)]
    pub tokens: usize,
    /// Window length.
    #[arg(long, default_value_t = 256, value_parser = at_least_one)]
    pub seq_len: usize,
    /// Exit depths (comma-separated; default every 6th layer and the last).
    #[arg(long, value_delimiter = ',')]
    pub exits: Vec<usize>,
    /// SwiGLU widths to score each exit at (comma-separated; default the full width).
    #[arg(long, value_delimiter = ',')]
    pub ffn: Vec<usize>,
    /// Query heads to score each exit at (comma-separated multiples of the KV heads; the first
    /// heads of every KV group are kept; default every head). Every combination with `--ffn`
    /// is scored.
    #[arg(long, value_delimiter = ',')]
    pub heads: Vec<usize>,
    /// Also write the table (with provenance) to this Markdown file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fine-tuned weights replacing the GGUF's: a `soft` / `[model.llama]` run folder (its
    /// newest checkpoint) or a `model.mpk` record.
    #[arg(long)]
    pub weights: Option<PathBuf>,
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
    /// Train up to this many alone runs at once, each as its own `sorted-runner train` process on
    /// the same device (config and log beside its folder: `alone-<name>.toml`, `alone-<name>.log`).
    /// Worth it on a GPU or a many-core machine; the alone runs' wall times then overlap. 1: one
    /// after another in this process.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
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
    /// Replace the run already in `--out` (its checkpoints are deleted first).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// One data-parallel peer per device, comma-separated, peer `i` on the `i`-th (`cpu,cpu`,
    /// `cuda:0,cuda:1`; the kind must be `--device`'s): overrides `train.devices` and
    /// `train.peers` (also of a resumed run, whose steps do not depend on where they run).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// Train as one node of several machines: a node file with a `[distributed]` table (`node`,
    /// `nodes`, `address`, `coordinator`, optional `timeout_s`; see docs/distributed.md). Every
    /// node runs the same experiment with the same number of local peers; node 0 writes the
    /// checkpoints and reports.
    #[arg(long)]
    pub distributed: Option<PathBuf>,
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
    /// The run folder (an image run: a dense model; a `[model.llama]` run: a Hugging Face
    /// folder and GGUF files).
    #[arg(long, required_unless_present = "gguf")]
    pub run: Option<PathBuf>,
    /// Export a sub-model of this GGUF decoder as it is (no run).
    #[arg(long, conflicts_with = "run")]
    pub gguf: Option<PathBuf>,
    /// The sub-model: widths joined by `-` (e.g. `128-64`), `L20-H9-F1536` for a decoder,
    /// `full` or `smallest`.
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
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub batch_size: usize,
    /// Untimed passes per sub-model before timing.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed passes per sub-model (the median is reported).
    #[arg(long, default_value_t = 50, value_parser = at_least_one)]
    pub repeats: usize,
    /// Also time each sub-model's dense copy (what `export` writes, in the same weight layout),
    /// interleaved with the sliced passes, and report sliced / dense.
    #[arg(long)]
    pub compare_dense: bool,
    /// The memory order of the linear weights while serving: `input-major` (the training
    /// layout, best for batches) or `output-major` (best at batch 1 on CPU).
    #[arg(long, value_enum, default_value_t = LayoutArg::InputMajor)]
    pub weight_layout: LayoutArg,
    /// Output folder (default: `<run>/profile/<device>-b<batch size>`, with `-output-major`
    /// appended for that layout).
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
    /// The weight layout of the latency profile to use.
    #[arg(long, value_enum, default_value_t = LayoutArg::InputMajor)]
    pub weight_layout: LayoutArg,
    /// A latency profile folder other than `profile`'s default for the device, batch size and
    /// weight layout.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Print the selection as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `generate --bonus-token`: [`sorted_zoo::llama::SpeculativeConfig::bonus_token`] on the
/// command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BonusTokenArg {
    /// Verify only the positions whose next token was drafted.
    Off,
    /// Also verify the last drafted token.
    On,
    /// Decode every drafter both ways.
    Both,
}

impl BonusTokenArg {
    /// The `bonus_token` settings to decode with.
    pub fn settings(self) -> &'static [bool] {
        match self {
            Self::Off => &[false],
            Self::On => &[true],
            Self::Both => &[false, true],
        }
    }
}

/// `--weight-layout`: [`sorted_zoo::deploy::WeightLayout`] on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// `[d_in, d_out]` row-major, the training layout.
    InputMajor,
    /// `[d_out, d_in]` row-major.
    OutputMajor,
}

impl From<LayoutArg> for sorted_zoo::deploy::WeightLayout {
    fn from(arg: LayoutArg) -> Self {
        match arg {
            LayoutArg::InputMajor => Self::InputMajor,
            LayoutArg::OutputMajor => Self::OutputMajor,
        }
    }
}

/// A count flag that must be at least 1 (a usage error, exit code 2, otherwise).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("expected at least 1, got 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a whole number >= 1 ({e})")),
    }
}

/// A rate that must be finite and positive.
fn positive_finite(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("expected a finite value > 0, got {v}")),
        Err(e) => Err(format!("expected a number ({e})")),
    }
}
