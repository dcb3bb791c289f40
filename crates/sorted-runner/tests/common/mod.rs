//! What the runner's tests share: the CLI and context they run under, the lock on burn's global
//! generator, training from a config file, and the tiny experiments' TOML.

#![cfg(feature = "flex")]

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use sorted_runner::{Cli, Command, RunContext, TrainArgs, run_on};

pub(crate) type B = Autodiff<Flex>;

/// Model initialisation draws from burn's process-global generator (`B::seed`) and tests run on
/// parallel threads: runs that must be reproducible hold this lock.
static RNG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn rng_guard() -> std::sync::MutexGuard<'static, ()> {
    RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn ctx() -> RunContext {
    RunContext { device_name: "cpu (flex)".into(), quiet: true, command: "test".into(), commit: "test".into() }
}

pub(crate) fn cli(command: Command) -> Cli {
    Cli { device: sorted_runner::DeviceKind::Cpu, quiet: true, command: Some(command) }
}

/// Runs `command` on the Flex backend as `sorted-runner --quiet` would.
pub(crate) fn run_cli(command: Command) -> anyhow::Result<()> {
    run_on::<B>(&cli(command), Default::default(), &ctx())
}

pub(crate) fn train(config: &Path, out: &Path, stop_after: Option<u64>) {
    let args = TrainArgs { config: Some(config.into()), out: Some(out.into()), stop_after, ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
}

pub(crate) fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("exp.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every weight matrix of the MLP checkpointed in `run`, flattened.
pub(crate) fn mlp_weights(run: &Path) -> Vec<f32> {
    let exp = sorted_runner::config::Experiment::from_file(&run.join("config.toml")).unwrap();
    let device = Default::default();
    let model = sorted_zoo::SortedMlpConfig::for_space(784, 10, &exp.space).init::<Flex>(&device);
    let model = sorted_sched::load_model(run, model, &device).unwrap();
    let mut v = Vec::new();
    for block in &model.blocks {
        v.extend(block.weight.val().into_data().to_vec::<f32>().unwrap());
    }
    v.extend(model.head.weight.val().into_data().to_vec::<f32>().unwrap());
    v
}

pub(crate) const TINY_MLP: &str = r#"
name = "tiny-mlp"
seed = 7
[data]
source = "embedded"
batch_size = 32
train_limit = 640
test_limit = 200
[model.mlp]
[space]
depths = [1, 2]
widths = [8, 16]
[sampler.sandwich]
k = 3
[optimizer.adam]
[lr]
base = 1e-2
warmup_steps = 2
[train]
steps = 40
checkpoint_every = 16
"#;

/// The sampler, optimizer and learning rate of the small image experiments: two sub-models a
/// step drawn uniformly, SGD with momentum 0.9 at 0.05 (tests swap these lines by `replace`).
pub(crate) const UNIFORM_SGD: &str = "[sampler.uniform]\nk = 2\n[optimizer.sgd]\nmomentum = 0.9\n[lr]\nbase = 0.05\n";

/// A small image experiment `name` seeded with `seed`, on 160 embedded digits (64 to test) in
/// batches of 16: `model` (its `[model.*]` and `[space]`), [`UNIFORM_SGD`], then `rest`.
pub(crate) fn tiny_image(name: &str, seed: u64, model: &str, rest: &str) -> String {
    let data = "[data]\nsource = \"embedded\"\nbatch_size = 16\ntrain_limit = 160\ntest_limit = 64";
    format!("\nname = \"{name}\"\nseed = {seed}\n{data}\n{model}{UNIFORM_SGD}{rest}")
}

/// A CNN with BatchNorm, 4 steps of [`tiny_image`].
pub(crate) fn tiny_cnn() -> String {
    let model = "[model.cnn]\nstrides = [2, 2]\n[space]\ndepths = [1, 2]\nwidths = [2, 4]\n";
    let rest = "[train]\nsteps = 4\nfresh_batches = true\n[eval]\ncalibration_samples = 48\nbatch_size = 32\n";
    tiny_image("tiny-cnn", 3, model, rest)
}

/// The `[space]` (`depths`, 2 or 4 heads, `ffn`), `sampler`, AdamW and learning rate (`base`,
/// one warm-up step) of the tiny transformer experiments, text and LM.
pub(crate) fn transformer_sections(depths: &str, ffn: &str, sampler: &str, base: &str) -> String {
    format!(
        "[space]\ndepths = {depths}\nheads = [2, 4]\nffn = {ffn}\n\n{sampler}\n\n[optimizer.adamw]\n\n[lr]\nbase = {base}\nwarmup_steps = 1\n"
    )
}
