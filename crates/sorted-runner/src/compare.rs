//! `compare`: a sorted run against its baselines (issue 3's table).
//!
//! For one config it produces, in one folder:
//! - `sorted/`: the sorted run itself (or reuses a finished one given by `--sorted`);
//! - `alone-<sub>/`: a sample of sub-models (smallest, largest = the full model, and evenly
//!   spaced ranks by FLOPs in between), each trained alone as its own dense model with the same
//!   steps, batch size, optimizer and schedule;
//! - `naive/`: every sub-model sliced from the alone-trained full model without sorted training
//!   (BatchNorm recalibrated per sub-model, as for the sorted model);
//! - `compare.json` and `compare.md`: the table.
//!
//! A folder whose `results.json` already exists is reused, so an interrupted comparison picks
//! up where it stopped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as ProcessCommand, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use sorted_nn::{NestingSpaceConfig, SubModel};
use sorted_sched::{FullSamplerConfig, SamplerConfig};

use crate::cli::CompareArgs;
use crate::config::{Experiment, ModelConfig};
use crate::device::DeviceKind;
use crate::eval_command::Report;
use crate::provenance::{RunContext, new_run_dir};
use crate::provenance::{machine, write_file};
use crate::report::{ReportTarget, RunReport};
use crate::train::TrainOptions;
use crate::train_command::train_experiment;

/// One compared sub-model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    /// The sub-model (widths joined by `-`).
    pub sub_model: String,
    /// FLOPs per sample.
    pub flops: u64,
    /// FLOPs / the full model's FLOPs.
    pub flops_ratio: f64,
    /// Parameters used.
    pub params: u64,
    /// Accuracy as a sub-model of the sorted run.
    pub sorted: f64,
    /// Accuracy when trained alone with the same budget.
    pub alone: f64,
    /// Accuracy when sliced from the alone-trained full model.
    pub naive: f64,
    /// Wall time of its alone training, seconds.
    pub alone_train_seconds: f64,
}

/// Everything `compare.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// The config compared.
    pub config: String,
    /// The command line.
    pub command: String,
    /// The commit of the binary's working tree.
    pub commit: String,
    /// CPU and cores.
    pub machine: String,
    /// The device trained on.
    pub device: String,
    /// Optimizer steps of every run.
    pub steps: u64,
    /// The share of the full model that counts.
    pub threshold: f64,
    /// Sorted run: full model accuracy, sub-models at threshold, of how many, training seconds.
    pub sorted_full: f64,
    /// Sorted sub-models at `threshold` of the sorted full model.
    pub sorted_at_threshold: usize,
    /// Sub-models in the space.
    pub n_sub_models: usize,
    /// The smallest FLOPs ratio among sorted sub-models at threshold.
    pub sorted_min_flops_ratio_at_threshold: f64,
    /// Wall time of the sorted training, seconds.
    pub sorted_train_seconds: f64,
    /// The full model trained alone.
    pub alone_full: f64,
    /// Naively sliced sub-models at `threshold` of the alone-trained full model.
    pub naive_at_threshold: usize,
    /// The compared sample.
    pub rows: Vec<CompareRow>,
}

impl CompareReport {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Sorted training against its baselines: `{}`\n\n\
             - command: `{}`\n- commit: `{}`\n- machine: {}; device: {}\n- every run: {} steps\n\n\
             | | sorted run | baseline |\n|---|---:|---:|\n\
             | full model accuracy | {:.2} % | {:.2} % (trained alone) |\n\
             | sub-models >= {:.0} % of their full model | {} of {} | {} of {} (sliced from the alone-trained full model) |\n\
             | smallest FLOPs share still >= {:.0} % | {:.2} % | |\n\
             | training wall time | {:.0} s | |\n\n",
            self.config,
            self.command,
            self.commit,
            self.machine,
            self.device,
            self.steps,
            100.0 * self.sorted_full,
            100.0 * self.alone_full,
            100.0 * self.threshold,
            self.sorted_at_threshold,
            self.n_sub_models,
            self.naive_at_threshold,
            self.n_sub_models,
            100.0 * self.threshold,
            100.0 * self.sorted_min_flops_ratio_at_threshold,
            self.sorted_train_seconds,
        );
        s.push_str(
            "| sub-model | FLOPs | FLOPs share | params | sorted | alone | sorted - alone | naive slice | alone train s |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| `{}` | {:.2} M | {:.2} % | {} | {:.2} % | {:.2} % | {:+.2} | {:.2} % | {:.0} |\n",
                r.sub_model,
                r.flops as f64 / 1e6,
                100.0 * r.flops_ratio,
                r.params,
                100.0 * r.sorted,
                100.0 * r.alone,
                100.0 * (r.sorted - r.alone),
                100.0 * r.naive,
                r.alone_train_seconds
            ));
        }
        s
    }
}

/// Picks `n` sub-models spread over the FLOPs ranks of `results`: the smallest, the largest and
/// evenly spaced ranks in between (fewer when the space is smaller).
pub fn pick_sample(results: &RunReport, n: usize) -> Vec<String> {
    let mut by_flops: Vec<_> = results.results.iter().collect();
    by_flops.sort_by_key(|r| r.flops);
    let len = by_flops.len();
    if len == 0 {
        return Vec::new();
    }
    let n = n.clamp(1, len);
    let mut picked: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        let rank = if n == 1 { len - 1 } else { (i * (len - 1) + (n - 1) / 2) / (n - 1) };
        let name = by_flops[rank].sub_model.clone();
        if !picked.contains(&name) {
            picked.push(name);
        }
    }
    picked
}

/// The experiment that trains `sub` alone: a dense model of exactly its widths and depth, same
/// data, seed, optimizer, schedule and steps; BatchNorm statistics recalibrated after training.
///
/// The model part is sorted-zoo's [`sorted_zoo::ClassifierConfig::alone`]; this sets the space,
/// a full sampler and one thread.
///
/// # Errors
/// A config the sub-model's space does not validate against.
pub fn alone_experiment(exp: &Experiment, sub: &SubModel) -> anyhow::Result<Experiment> {
    let mut c = exp.config.clone();
    c.name = format!("{}-alone-{sub}", c.name);
    let (model, block_widths) = c.model.alone(sub);
    c.model = model;
    c.space = NestingSpaceConfig {
        depths: vec![sub.depth()],
        widths: None,
        block_widths: Some(block_widths.into_iter().map(|w| vec![w]).collect()),
        tie_widths: false,
    };
    c.sampler = SamplerConfig::Full(FullSamplerConfig {});
    c.train.loss_weights.clear();
    c.train.threads = 1;
    c.train.fresh_batches = false;
    Ok(Experiment::from_config(c, &exp.source)?)
}

/// One sub-model to train alone, into `dir`.
struct AloneRun {
    name: String,
    exp: Experiment,
    dir: PathBuf,
}

/// Trains `runs` as child `sorted-runner train` processes on `device`, at most `jobs` at once.
/// Each gets its config written beside its folder (`alone-<name>.toml`) and its output logged
/// there (`alone-<name>.log`).
///
/// # Errors
/// A config or log that cannot be written, a child that cannot start, or children that fail
/// (named with their logs, after all have ended).
fn train_in_processes(runs: &[AloneRun], jobs: usize, device: DeviceKind, out: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this runner's executable to start the --jobs processes")?;
    let start = |run: &AloneRun| -> anyhow::Result<(PathBuf, Child)> {
        let config = out.join(format!("alone-{}.toml", run.name));
        write_file(&config, run.exp.to_toml().as_bytes())?;
        let log_path = out.join(format!("alone-{}.log", run.name));
        let log = File::create(&log_path).with_context(|| format!("creating `{}`", log_path.display()))?;
        let child = ProcessCommand::new(&exe)
            .args(["--device", device.flag(), "train", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&run.dir)
            // An alone run without results was interrupted: compare trains it again.
            .arg("--force")
            .stdin(Stdio::null())
            .stdout(log.try_clone().with_context(|| format!("sharing `{}`", log_path.display()))?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting `{} train --config {}`", exe.display(), config.display()))?;
        Ok((log_path, child))
    };
    let mut running: Vec<(&AloneRun, PathBuf, Child)> = Vec::new();
    let mut failed = Vec::new();
    let mut queue = runs.iter();
    let outcome = (|| -> anyhow::Result<()> {
        loop {
            while running.len() < jobs {
                let Some(run) = queue.next() else { break };
                let (log, child) = start(run)?;
                running.push((run, log, child));
            }
            if running.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
            let mut i = 0;
            while i < running.len() {
                let waited = running[i].2.try_wait();
                match waited.with_context(|| format!("waiting for the alone run `{}`", running[i].0.name))? {
                    Some(status) => {
                        let (run, log, _) = running.swap_remove(i);
                        if !status.success() {
                            failed.push(format!("`{}` ({status}; see `{}`)", run.name, log.display()));
                        }
                    }
                    None => i += 1,
                }
            }
        }
    })();
    if outcome.is_err() {
        // No orphans: the runs still going are stopped; a later call trains them again.
        for (_, _, child) in &mut running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    outcome?;
    anyhow::ensure!(failed.is_empty(), "alone runs failed: {}", failed.join(", "));
    Ok(())
}

/// `compare`: trains (or reuses) the sorted run, trains the sample alone, evaluates naive
/// slicing of the alone-trained full model and writes `compare.json` / `compare.md`.
///
/// # Errors
/// Config, data, checkpoint or report errors, each naming its file.
pub fn compare_cmd<B: AutodiffBackend>(
    args: &CompareArgs,
    device_kind: DeviceKind,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(args.alone >= 2, "--alone must be at least 2 (the smallest and the full model)");
    anyhow::ensure!(args.jobs >= 1, "--jobs must be at least 1");
    let mut exp = Experiment::from_file(&args.config)?;
    if let Some(steps) = args.steps {
        anyhow::ensure!(steps > 0, "--steps must be at least 1");
        exp.config.train.steps = steps;
    }
    // Fails early (before any training) for families that cannot be trained alone.
    alone_experiment(&exp, &exp.space.largest())?;
    let out = args.out.clone().unwrap_or_else(|| new_run_dir(&format!("{}-compare", exp.config.name)));
    std::fs::create_dir_all(&out).with_context(|| format!("creating `{}`", out.display()))?;
    // compare's own folders without results were interrupted: they are trained again.
    let options = TrainOptions { resume: false, stop_after: None, quiet: ctx.quiet, force: true, distributed: None };

    let sorted_dir = match &args.sorted {
        Some(dir) => {
            let (saved, _) = crate::config::load_run(dir)?;
            anyhow::ensure!(
                saved.config == exp.config,
                "`--sorted {}` was trained with a different config than `{}` (compare its config.toml; \
                 --steps must match too)",
                dir.display(),
                args.config.display()
            );
            dir.clone()
        }
        None => out.join("sorted"),
    };
    if !sorted_dir.join("results.json").exists() {
        // A `--sorted` folder is the user's: never replaced.
        let options = TrainOptions { force: args.sorted.is_none(), ..options.clone() };
        train_experiment::<B>(&exp, &sorted_dir, &options, device, ctx)?;
    }
    let sorted = RunReport::read(&sorted_dir)?;

    let sample = pick_sample(&sorted, args.alone);
    let full = exp.space.largest();
    let alone_dir = |name: &str| out.join(format!("alone-{name}"));
    let mut pending = Vec::new();
    for name in &sample {
        let sub = exp.space.parse_sub_model(name).expect("a sub-model of the sorted run's own space");
        let dir = alone_dir(name);
        if !dir.join("results.json").exists() {
            pending.push(AloneRun { name: name.clone(), exp: alone_experiment(&exp, &sub)?, dir });
        }
    }
    if args.jobs > 1 && pending.len() > 1 {
        train_in_processes(&pending, args.jobs, device_kind, &out)?;
    } else {
        for run in &pending {
            train_experiment::<B>(&run.exp, &run.dir, &options, device, ctx)?;
        }
    }
    let alone = sample
        .iter()
        .map(|name| Ok((name.clone(), RunReport::read(&alone_dir(name))?)))
        .collect::<anyhow::Result<Vec<(String, RunReport)>>>()?;

    // Naive slicing: the sorted model's allocation, loaded with the alone-trained full model.
    let naive_dir = out.join("naive");
    if !naive_dir.join("results.json").exists() {
        let full_dir = alone_dir(&full.to_string());
        let mut naive_exp = exp.clone();
        naive_exp.config.name = format!("{}-naive", exp.config.name);
        naive_exp.config.model = alone_experiment(&exp, &full)?.config.model;
        // The alone full model has every block in flat order; the sorted space keeps its own.
        if let (ModelConfig::Resnet(naive), ModelConfig::Resnet(sorted)) =
            (&mut naive_exp.config.model, &exp.config.model)
        {
            naive.depth_order = sorted.depth_order;
        }
        let data = crate::data::load(&naive_exp)?;
        let started = Instant::now();
        std::fs::create_dir_all(&naive_dir).with_context(|| format!("creating `{}`", naive_dir.display()))?;
        write_file(&naive_dir.join("config.toml"), naive_exp.to_toml().as_bytes())?;
        let full_checkpoint = crate::run_folder::open_checkpoint(&full_dir)?;
        let visitor = Report::<B::InnerBackend> {
            exp: &naive_exp,
            data: &data,
            device,
            target: ReportTarget {
                run_dir: &naive_dir,
                // Naive slicing trains nothing: its own training time is 0.
                state: &sorted_sched::TrainState { train_seconds: 0.0, ..full_checkpoint.state().clone() },
                status: None,
                ctx,
            },
        };
        crate::trained_model::visit_trained::<B::InnerBackend, _>(
            &naive_exp,
            &data,
            &full_checkpoint,
            device,
            visitor,
        )?;
        if !ctx.quiet {
            eprintln!("naive slicing evaluated in {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    let naive = RunReport::read(&naive_dir)?;

    let full_flops = sorted.results.iter().map(|r| r.flops).max().unwrap_or(1).max(1);
    let find = |report: &RunReport, name: &str| report.results.iter().find(|r| r.sub_model == name).cloned();
    let mut rows = Vec::new();
    for (name, alone_report) in &alone {
        let s = find(&sorted, name).expect("picked from the sorted results");
        let a = alone_report.results.first().with_context(|| format!("the alone run of `{name}` has no results"))?;
        let n = find(&naive, name).with_context(|| format!("naive results lack `{name}`"))?;
        rows.push(CompareRow {
            sub_model: name.clone(),
            flops: s.flops,
            flops_ratio: s.flops as f64 / full_flops as f64,
            params: s.params,
            sorted: s.accuracy,
            alone: a.accuracy,
            naive: n.accuracy,
            alone_train_seconds: alone_report.meta.train_seconds,
        });
    }
    let alone_full = rows.iter().find(|r| r.sub_model == full.to_string()).map_or(0.0, |r| r.alone);
    let min_ratio = sorted
        .results
        .iter()
        .filter(|r| r.relative >= sorted.threshold)
        .map(|r| r.flops as f64 / full_flops as f64)
        .fold(f64::INFINITY, f64::min);
    let compared = CompareReport {
        config: args.config.display().to_string(),
        command: ctx.command.clone(),
        commit: ctx.commit.clone(),
        machine: machine(),
        device: ctx.device_name.clone(),
        steps: exp.config.train.steps,
        threshold: sorted.threshold,
        sorted_full: sorted.full_accuracy,
        sorted_at_threshold: sorted.n_at_threshold,
        n_sub_models: sorted.n_sub_models,
        sorted_min_flops_ratio_at_threshold: if min_ratio.is_finite() { min_ratio } else { 1.0 },
        sorted_train_seconds: sorted.meta.train_seconds,
        alone_full,
        naive_at_threshold: naive.n_at_threshold,
        rows,
    };
    write_file(&out.join("compare.json"), &serde_json::to_vec_pretty(&compared).expect("report serialises"))?;
    let md = compared.markdown();
    write_file(&out.join("compare.md"), md.as_bytes())?;
    if !ctx.quiet {
        println!("{md}");
        println!("wrote {}/{{compare.json, compare.md, sorted/, alone-*/, naive/}}", out.display());
    }
    Ok(out)
}
