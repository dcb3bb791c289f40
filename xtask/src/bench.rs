//! `cargo xtask bench`: run the criterion benches of `sorted-bench`, then report sorted against
//! dense as ratios measured in that one run.
//!
//! ```text
//! cargo xtask bench                          # every bench, Flex (the default backend)
//! cargo xtask bench -- --quick               # criterion's quick mode
//! cargo xtask bench -- linear                # a criterion filter: only the rows it ran
//! cargo xtask bench --features cuda          # another backend feature of sorted-bench
//! ```
//!
//! The report goes to stdout and, written atomically, to `target/bench-report.md` and (unless a
//! filter left benches out) `docs/results/bench.md`. It reads criterion's `<criterion dir>/<group>/<id>/new/estimates.json`
//! (the mean's point estimate, in nanoseconds) and uses only files written by this run. The
//! groups, ids and sizes below mirror `benches/` (see `benches/lib.rs`): change them together.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;

use crate::workspace_root;

/// The package that holds the benches.
const PACKAGE: &str = "sorted-bench";
/// Active sizes of the `linear` case (allocated 1024x1024, batch 128).
const LINEAR_ACTIVE: [usize; 3] = [256, 512, 1024];
/// Active output channels of the `conv2d` case (allocated 64 -> 128, input channels half).
const CONV_ACTIVE_OUT: [usize; 3] = [32, 64, 128];
/// Active channels of the `batch_norm` case (allocated 64, batch 128, 14x14).
const BN_ACTIVE: [usize; 3] = [16, 32, 64];
/// Batch sizes of the `deploy` case.
const DEPLOY_BATCHES: [usize; 2] = [1, 64];
/// Sub-models of the `deploy` case, `(model, sub-model)`: the default MLP space and the CNN's.
const DEPLOY_SUB_MODELS: [(&str, &str); 7] = [
    ("mlp", "32"),
    ("mlp", "128-64"),
    ("mlp", "256-256"),
    ("mlp", "256-256-256-256"),
    ("cnn", "8"),
    ("cnn", "16-16-8"),
    ("cnn", "32-32-32-32"),
];
/// The uniform samplers of the k = 4 training step, `(id suffix, description)`.
const SAMPLERS: [(&str, &str); 2] =
    [("axes", "uniform per axis, the default experiment's"), ("submodels", "uniform over the 340 sub-models")];
/// Criterion options that take a value (so the value is not mistaken for a filter).
const VALUE_OPTIONS: [&str; 21] = [
    "-c",
    "--color",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
    "--format",
    "--logfile",
    "--test-threads",
];

/// Arguments of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Extra cargo features of sorted-bench, e.g. a backend: `ndarray`, `wgpu` or `cuda`
    /// (default: none, so Flex).
    #[arg(long)]
    features: Option<String>,
    /// Arguments for criterion, after `--`: `--quick`, a filter such as `linear`, ...
    #[arg(last = true)]
    criterion_args: Vec<String>,
    /// Instead of the criterion benches: sortednet-rs against its PyTorch replica
    /// (`benches/peer/`), alternated, written to `docs/results/bench-peer.md`.
    #[arg(long, conflicts_with_all = ["features", "criterion_args"])]
    peer: bool,
    /// With `--peer`: pairs of runs (ours, then PyTorch's).
    #[arg(long, default_value_t = 3, requires = "peer")]
    pairs: usize,
    /// With `--peer`: override `train.steps` on both sides.
    #[arg(long, requires = "peer")]
    steps: Option<u64>,
    /// With `--peer`: the cargo profile sorted-runner is built with (`release`, `dev`).
    #[arg(long, default_value = "release", requires = "peer")]
    profile: String,
    /// With `--peer`: create `target/peer-venv` and `pip install torch` into it if missing.
    #[arg(long, requires = "peer")]
    install_torch: bool,
    /// With `--peer`: torch's thread count (default: torch's own, every core).
    #[arg(long, requires = "peer")]
    torch_threads: Option<usize>,
    /// With `--peer`: also SmolLM2 greedy decoding, ours (8-bit and f32 weights) against
    /// transformers (`benches/peer/smollm2_decode.py`; needs `cargo xtask data smollm2` and
    /// transformers in the venv).
    #[arg(long, requires = "peer")]
    decode: bool,
    /// With `--peer`: instead of the default experiment, one sorted training step of each zoo
    /// family (ResNet, MobileNetV2, MiniLM) against `benches/peer/train_steps.py`, as a section
    /// of `docs/results/bench-peer.md`.
    #[arg(long, requires = "peer", conflicts_with_all = ["steps", "decode"])]
    train_steps: bool,
}

/// One criterion benchmark: its group and its id inside the group.
#[derive(Clone, Debug)]
struct BenchId {
    group: String,
    id: String,
}

impl BenchId {
    fn new(group: &str, id: impl Into<String>) -> Self {
        Self { group: group.to_string(), id: id.into() }
    }

    /// `<criterion dir>/<group>/<id>/new/estimates.json`, with criterion's file-name escaping.
    fn estimates_path(&self, criterion_dir: &Path) -> PathBuf {
        let mut path = criterion_dir.join(filename_safe(&self.group));
        for part in self.id.split('/') {
            path.push(filename_safe(part));
        }
        path.join("new").join("estimates.json")
    }

    fn full_id(&self) -> String {
        format!("{}/{}", self.group, self.id)
    }
}

/// Criterion's `make_filename_safe` (criterion 0.5, on Unix).
fn filename_safe(name: &str) -> String {
    name.chars().map(|c| if "?\"/\\*<>:|^".contains(c) { '_' } else { c }).collect()
}

/// A criterion estimate of the mean time of one iteration, in nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    mean: f64,
    lower: f64,
    upper: f64,
}

/// Where estimates come from, and how strict to be about missing ones.
struct Estimates {
    criterion_dir: PathBuf,
    started: SystemTime,
    /// Whether the run was filtered: then benches it skipped are "not measured", not an error.
    filtered: bool,
    /// Every estimate read, in reading order, for the report's list.
    read: Vec<(BenchId, PathBuf, Estimate)>,
}

impl Estimates {
    /// The estimate of `bench` written by this run; `None` for a bench that a filtered run
    /// skipped.
    ///
    /// # Errors
    /// When the estimate file is missing, was not written by this run (unless the run was
    /// filtered) or cannot be parsed; the message names the file.
    fn get(&mut self, bench: &BenchId) -> Result<Option<Estimate>> {
        let path = bench.estimates_path(&self.criterion_dir);
        let modified = match fs::metadata(&path).and_then(|m| m.modified()) {
            Ok(modified) => modified,
            Err(_) if self.filtered => return Ok(None),
            Err(err) => bail!(
                "criterion's estimate file for `{}` is missing: {} ({err}). Did that bench run? \
                 Its group and id must match benches/ (see xtask/src/bench.rs)",
                bench.full_id(),
                path.display()
            ),
        };
        if modified < self.started {
            ensure!(
                self.filtered,
                "criterion's estimate file for `{}` was not written by this run (it is older than the \
                 run's start): {}",
                bench.full_id(),
                path.display()
            );
            return Ok(None);
        }
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {} as JSON", path.display()))?;
        let number = |pointer: &str| {
            json.pointer(pointer)
                .and_then(serde_json::Value::as_f64)
                .with_context(|| format!("{} has no number at `{pointer}`", path.display()))
        };
        let estimate = Estimate {
            mean: number("/mean/point_estimate")?,
            lower: number("/mean/confidence_interval/lower_bound")?,
            upper: number("/mean/confidence_interval/upper_bound")?,
        };
        ensure!(estimate.mean > 0.0, "{}: mean.point_estimate is {}, not a time", path.display(), estimate.mean);
        self.read.push((bench.clone(), path, estimate));
        Ok(Some(estimate))
    }
}

/// One sorted-against-dense comparison of the report.
struct Ratio {
    label: String,
    sorted: BenchId,
    dense: BenchId,
}

/// Runs `cargo xtask bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    if args.peer {
        return crate::peer::run(&crate::peer::PeerOptions {
            pairs: args.pairs,
            steps: args.steps,
            profile: args.profile,
            install_torch: args.install_torch,
            torch_threads: args.torch_threads,
            decode: args.decode,
            train_steps: args.train_steps,
        });
    }
    let root = workspace_root();
    let target_dir = target_dir(&root);
    let criterion_dir = std::env::var_os("CRITERION_HOME").map_or_else(|| target_dir.join("criterion"), PathBuf::from);
    let backend = backend_of(args.features.as_deref());
    let filtered = has_filter(&args.criterion_args);

    let mut cargo_args: Vec<String> = vec!["bench".into(), "-p".into(), PACKAGE.into()];
    if let Some(features) = &args.features {
        cargo_args.extend(["--features".into(), features.clone()]);
    }
    if !args.criterion_args.is_empty() {
        cargo_args.push("--".into());
        cargo_args.extend(args.criterion_args.iter().cloned());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let command_line = format!("cargo {}", cargo_args.join(" "));
    eprintln!("running `{command_line}` in {}", root.display());

    // Criterion's clock resolution on file times is the file system's: step back a little so a
    // file written in the run's first instant still counts as this run's.
    let load_before = load_average();
    let started = SystemTime::now() - Duration::from_secs(1);
    let clock = Instant::now();
    let status = Command::new(&cargo)
        .args(&cargo_args)
        .current_dir(&root)
        .status()
        .with_context(|| format!("starting `{command_line}`"))?;
    let wall = clock.elapsed();
    let load_after = load_average();
    ensure!(status.success(), "`{command_line}` failed ({status})");

    let mut estimates = Estimates { criterion_dir: criterion_dir.clone(), started, filtered, read: Vec::new() };
    let sections = measure(&mut estimates, backend)?;
    ensure!(
        !estimates.read.is_empty(),
        "this run wrote no estimate that the report uses (in {}); check the filter {:?}",
        criterion_dir.display(),
        args.criterion_args
    );

    let provenance = Provenance {
        command: format!("cargo xtask bench{}", xtask_args_suffix(&args)),
        cargo_command: command_line,
        commit: commit(&root),
        machine: machine(),
        load: format!("{load_before} before, {load_after} after"),
        rustc: rustc_version(),
        backend: backend.to_string(),
        date: utc_now(),
        wall,
        quick: args.criterion_args.iter().any(|a| a == "--quick"),
        filtered,
    };
    let report = render(&provenance, &sections, &estimates, &root);
    print!("{report}");

    let mut paths = vec![target_dir.join("bench-report.md")];
    let results = root.join("docs").join("results").join("bench.md");
    if filtered {
        eprintln!("a filtered run is partial: {} is left as it was", results.display());
    } else {
        paths.push(results);
    }
    for path in paths {
        write_atomic(&path, report.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A sorted and a dense estimate; `None` when a filtered run skipped either.
type Pair = Option<(Estimate, Estimate)>;

/// A row of the nested-layers table.
struct LayerRow {
    case: String,
    active: String,
    pair: Pair,
}

/// One sub-model at one batch size of the serving table: criterion means of the five ways of
/// serving it (`benches/deploy.rs`); `None` where a filtered run skipped one.
struct DeployRow {
    model: String,
    label: String,
    /// In the order of [`DEPLOY_WAYS`].
    ways: [Option<Estimate>; 7],
}

/// The bench ids of [`DeployRow::ways`]: three interleaved pairs (export and view; output-major
/// dense copy and view; export and output-major view) and per-call slicing.
const DEPLOY_WAYS: [&str; 7] =
    ["dense", "sliced", "dense-output-major", "sliced-output-major", "cross-dense", "cross-sliced", "per-call"];

/// The measured rows, grouped into the report's sections.
struct Sections {
    layers: Vec<LayerRow>,
    train: Vec<(String, Pair)>,
    deploy: Vec<DeployRow>,
    sampler: Vec<(String, Option<Estimate>)>,
}

fn measure(estimates: &mut Estimates, backend: &str) -> Result<Sections> {
    let pair = |estimates: &mut Estimates, ratio: &Ratio| -> Result<Pair> {
        let sorted = estimates.get(&ratio.sorted)?;
        let dense = estimates.get(&ratio.dense)?;
        Ok(sorted.zip(dense))
    };
    let train = format!("{backend}/train_step");

    // The nested-layer groups: `(group, case, [(active id, label)])`, each id `sorted/<id>` and
    // `dense/<id>`.
    let layer_groups = [
        (
            "linear",
            "linear 1024x1024, batch 128",
            LINEAR_ACTIVE.iter().map(|&a| (a, format!("{a}x{a}"))).collect::<Vec<_>>(),
        ),
        (
            "conv2d",
            "conv2d 64 -> 128, 3x3, 32x32, batch 32",
            CONV_ACTIVE_OUT.iter().map(|&c| (c, format!("{} -> {c}", c / 2))).collect(),
        ),
        (
            "batch_norm",
            "batch norm (fixed statistics) 64, 14x14, batch 128, vs burn-nn BatchNorm",
            BN_ACTIVE.iter().map(|&c| (c, c.to_string())).collect(),
        ),
    ];
    let mut layers = Vec::new();
    for (group, case, actives) in layer_groups {
        let group = format!("{backend}/{group}");
        for (id, label) in actives {
            let ratio = Ratio {
                label,
                sorted: BenchId::new(&group, format!("sorted/{id}")),
                dense: BenchId::new(&group, format!("dense/{id}")),
            };
            layers.push(LayerRow { case: case.into(), active: ratio.label.clone(), pair: pair(estimates, &ratio)? });
        }
    }

    let train_ratios = [Ratio {
        label: "largest sub-model step (k = 1) / dense full-model step".into(),
        sorted: BenchId::new(&train, "sorted_full"),
        dense: BenchId::new(&train, "dense_full"),
    }];
    let mut train_rows = Vec::new();
    for ratio in &train_ratios {
        train_rows.push((ratio.label.clone(), pair(estimates, ratio)?));
    }
    for (over, sampler) in SAMPLERS {
        for (dense, against) in
            [("dense_full", "dense full-model step"), ("dense_full_x4", "dense full model, 4 passes + 1 step")]
        {
            let ratio = Ratio {
                label: format!("sorted k = 4 step ({sampler}) / {against}"),
                sorted: BenchId::new(&train, format!("sorted_k4_{over}")),
                dense: BenchId::new(&train, dense),
            };
            train_rows.push((ratio.label.clone(), pair(estimates, &ratio)?));
        }
    }

    let deploy_group = format!("{backend}/deploy");
    let mut deploy = Vec::new();
    for (model, sub) in DEPLOY_SUB_MODELS {
        for batch in DEPLOY_BATCHES {
            let id = format!("{model}:{sub}_b{batch}");
            let mut ways = [None; 7];
            for (way, estimate) in DEPLOY_WAYS.iter().zip(&mut ways) {
                *estimate = estimates.get(&BenchId::new(&deploy_group, format!("{way}/{id}")))?;
            }
            deploy.push(DeployRow { model: model.to_string(), label: format!("{sub}, batch {batch}"), ways });
        }
    }

    let mut sampler = Vec::new();
    for id in ["uniform_k4_axes", "uniform_k4_submodels", "sandwich_k4"] {
        sampler.push((id.to_string(), estimates.get(&BenchId::new("host/sampler", id))?));
    }
    Ok(Sections { layers, train: train_rows, deploy, sampler })
}

/// Where the report says it came from.
struct Provenance {
    command: String,
    cargo_command: String,
    commit: String,
    machine: String,
    load: String,
    rustc: String,
    backend: String,
    date: String,
    wall: Duration,
    quick: bool,
    filtered: bool,
}

fn render(p: &Provenance, s: &Sections, estimates: &Estimates, root: &Path) -> String {
    let mut out = String::new();
    let ratio = |m: &Pair| match m {
        Some((sorted, dense)) => {
            (fmt_ns(sorted.mean), fmt_ns(dense.mean), format!("**{:.3}**", sorted.mean / dense.mean))
        }
        None => ("not measured".into(), "not measured".into(), "-".into()),
    };
    // Writing into a String cannot fail.
    let _ = writeln!(out, "# Benchmarks: sorted against dense\n");
    let _ = writeln!(
        out,
        "Generated by `cargo xtask bench`. Every ratio is sorted time / dense time, both criterion \
         means measured in this one run, in the same process on the same device (below 1: the \
         sorted side is faster).\n"
    );
    let _ = writeln!(out, "## Provenance\n");
    let _ = writeln!(out, "- command: `{}` (ran `{}`)", p.command, p.cargo_command);
    let _ = writeln!(out, "- commit: {}", p.commit);
    let _ = writeln!(out, "- machine: {}", p.machine);
    let _ = writeln!(out, "- load average (1 min; other processes share the cores and move the numbers): {}", p.load);
    let _ = writeln!(out, "- toolchain: {}", p.rustc);
    let _ = writeln!(out, "- backend: {}", p.backend);
    let _ = writeln!(out, "- date: {}", p.date);
    let _ = writeln!(out, "- wall time of the bench run (build included): {:.1} s", p.wall.as_secs_f64());
    if p.quick {
        let _ = writeln!(out, "- criterion ran in `--quick` mode: fewer samples, wider intervals");
    }
    if p.filtered {
        let _ = writeln!(out, "- the run was filtered: rows it skipped read \"not measured\"");
    }

    let _ = writeln!(out, "\n## Nested layers, forward (`nested_layers.rs`)\n");
    let _ = writeln!(out, "| layer (allocated) | active | sorted | dense | sorted / dense |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for LayerRow { case, active, pair } in &s.layers {
        let (sorted, dense, r) = ratio(pair);
        let _ = writeln!(out, "| {case} | {active} | {sorted} | {dense} | {r} |");
    }

    let _ = writeln!(out, "\n## Training step, MLP 784-[256 x 4]-10, batch 128, Adam (`train_step.rs`)\n");
    let _ = writeln!(out, "| comparison | sorted | dense | ratio |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (label, m) in &s.train {
        let (sorted, dense, r) = ratio(m);
        let _ = writeln!(out, "| {label} | {sorted} | {dense} | {r} |");
    }

    let _ = writeln!(
        out,
        "\n## Serving a sub-model: sliced from the sorted weights / its exported dense copy, forward (`deploy.rs`)\n"
    );
    let _ = writeln!(
        out,
        "MLP: the default experiment's 784-[256 x 4]-10. CNN: `configs/mnist-cnn.toml`'s 8/16/24/32 channels with \
         recalibrated BatchNorm. Inputs 1x28x28. *Export*: the sub-model's own contiguous weights in burn-nn's \
         `[d_in, d_out]` layout (`export`, `load_export`). *View*: `SortedModel::forward`, a view of the shared \
         weights built once. *Output-major*: the linear weights stored `[d_out, d_in]` \
         (`WeightLayout::OutputMajor`), for the view and for a dense copy (`SortedModel::pin`). Each ratio but \
         the last comes from a pair of benches timed interleaved, call by call (`time_interleaved`), so both \
         sides see the same cache and load. *Per call*: the sorted model's forward, slicing on every call, \
         timed alone against the first pair's export.\n"
    );
    let _ = writeln!(
        out,
        "| model | sub-model, batch | export | view | view / export | output-major: dense | view | view / dense | \
         output-major view / export | per call / export |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for DeployRow { model, label, ways } in &s.deploy {
        let time = |e: &Option<Estimate>| e.map_or_else(|| "not measured".into(), |e| fmt_ns(e.mean));
        let over = |a: &Option<Estimate>, b: &Option<Estimate>| match (a, b) {
            (Some(a), Some(b)) => format!("**{:.3}**", a.mean / b.mean),
            _ => "-".into(),
        };
        let [export, view, dense_om, view_om, cross_export, cross_view, per_call] = ways;
        let _ = writeln!(
            out,
            "| {model} | {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
            time(export),
            time(view),
            over(view, export),
            time(dense_om),
            time(view_om),
            over(view_om, dense_om),
            over(cross_view, cross_export),
            over(per_call, export)
        );
    }

    let _ = writeln!(out, "\n## Sampler, default 340-sub-model space (`sampler.rs`)\n");
    let _ = writeln!(out, "| sampler | per `sample(step)` (4 sub-models) |");
    let _ = writeln!(out, "|---|---:|");
    for (id, e) in &s.sampler {
        let time = e.map_or_else(|| "not measured".into(), |e| fmt_ns(e.mean));
        let _ = writeln!(out, "| {id} | {time} |");
    }

    let _ = writeln!(out, "\n## Criterion means\n");
    let _ = writeln!(out, "Mean time per iteration with its 95% confidence interval, from `new/estimates.json`.\n");
    let _ = writeln!(out, "| benchmark | mean | 95% interval | estimate file |");
    let _ = writeln!(out, "|---|---:|---|---|");
    let mut seen = std::collections::HashSet::new();
    for (bench, path, e) in &estimates.read {
        if !seen.insert(path.clone()) {
            continue;
        }
        let shown = path.strip_prefix(root).unwrap_or(path);
        let _ = writeln!(
            out,
            "| `{}` | {} | {} - {} | `{}` |",
            bench.full_id(),
            fmt_ns(e.mean),
            fmt_ns(e.lower),
            fmt_ns(e.upper),
            shown.display()
        );
    }
    out
}

/// A time in nanoseconds, with a unit and 3-4 significant digits.
fn fmt_ns(ns: f64) -> String {
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let decimals = if value < 10.0 {
        3
    } else if value < 100.0 {
        2
    } else {
        1
    };
    format!("{value:.decimals$} {unit}")
}

/// The backend a `--features` list selects, with `benches/lib.rs`'s precedence.
fn backend_of(features: Option<&str>) -> &'static str {
    let features: Vec<&str> =
        features.unwrap_or("").split([',', ' ']).map(|f| f.trim().trim_start_matches("sorted-bench/")).collect();
    ["cuda", "wgpu", "ndarray"].into_iter().find(|b| features.contains(b)).unwrap_or("flex")
}

/// Whether the criterion arguments hold a filter (a positional argument), so that some benches
/// may not run.
fn has_filter(args: &[String]) -> bool {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--" {
            continue;
        }
        if VALUE_OPTIONS.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return true;
        }
    }
    false
}

fn xtask_args_suffix(args: &BenchArgs) -> String {
    let mut s = String::new();
    if let Some(f) = &args.features {
        let _ = write!(s, " --features {f}");
    }
    if !args.criterion_args.is_empty() {
        let _ = write!(s, " -- {}", args.criterion_args.join(" "));
    }
    s
}

/// Cargo's target folder: `CARGO_TARGET_DIR` (relative to the workspace root) or `<root>/target`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |dir| root.join(dir))
}

/// The checked-out commit, marked when the working tree has changes.
pub(crate) fn commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(hash) => match git(&["status", "--porcelain"]) {
            Some(changes) if !changes.is_empty() => format!("`{hash}` plus uncommitted changes"),
            Some(_) => format!("`{hash}`"),
            None => format!("`{hash}` (working tree state unknown)"),
        },
        None => "unknown (`git rev-parse HEAD` failed)".into(),
    }
}

pub(crate) use sorted_provenance::machine;

/// The 1-minute load average from /proc/loadavg.
pub(crate) fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The current time in UTC, `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc_now() -> String {
    sorted_provenance::UtcTime::now().to_string()
}

pub(crate) use crate::data::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_paths_follow_criterion() {
        let bench = BenchId::new("flex/linear", "sorted/256");
        assert_eq!(
            bench.estimates_path(Path::new("t/criterion")),
            Path::new("t/criterion/flex_linear/sorted/256/new/estimates.json")
        );
    }

    #[test]
    fn filters_are_told_from_option_values() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!has_filter(&args(&["--quick"])));
        assert!(!has_filter(&args(&["--measurement-time", "5", "--quick"])));
        assert!(has_filter(&args(&["--quick", "linear"])));
    }

    #[test]
    fn backend_precedence_matches_the_benches() {
        assert_eq!(backend_of(None), "flex");
        assert_eq!(backend_of(Some("ndarray")), "ndarray");
        assert_eq!(backend_of(Some("ndarray,cuda")), "cuda");
        assert_eq!(backend_of(Some("sorted-bench/wgpu")), "wgpu");
    }

    #[test]
    fn times_get_units() {
        assert_eq!(fmt_ns(812.0), "812.0 ns");
        assert_eq!(fmt_ns(12_345.0), "12.35 µs");
        assert_eq!(fmt_ns(2_500_000.0), "2.500 ms");
    }

    #[test]
    fn missing_estimates_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut estimates = Estimates {
            criterion_dir: dir.path().to_path_buf(),
            started: SystemTime::now(),
            filtered: false,
            read: vec![],
        };
        let err = estimates.get(&BenchId::new("flex/linear", "sorted/256")).unwrap_err().to_string();
        assert!(err.contains("flex_linear/sorted/256/new/estimates.json"), "{err}");
        estimates.filtered = true;
        assert!(estimates.get(&BenchId::new("flex/linear", "sorted/256")).unwrap().is_none());
    }

    #[test]
    fn estimates_are_read_from_criterion_json() {
        let dir = tempfile::tempdir().unwrap();
        let bench = BenchId::new("flex/train_step", "sorted_k4_axes");
        let path = bench.estimates_path(dir.path());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":9.0,"upper_bound":11.0},"point_estimate":10.0,"standard_error":0.5}}"#;
        fs::write(&path, json).unwrap();
        let started = SystemTime::now() - Duration::from_secs(5);
        let mut estimates =
            Estimates { criterion_dir: dir.path().to_path_buf(), started, filtered: false, read: vec![] };
        let e = estimates.get(&bench).unwrap().unwrap();
        assert_eq!((e.mean, e.lower, e.upper), (10.0, 9.0, 11.0));
        // A file older than the run is refused.
        estimates.started = SystemTime::now() + Duration::from_secs(5);
        assert!(estimates.get(&bench).unwrap_err().to_string().contains("not written by this run"));
    }

    #[test]
    fn reports_are_written_whole_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results").join("bench.md");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        }
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file is left");
    }

    #[test]
    fn dates_are_civil() {
        let date = utc_now();
        assert_eq!(date.len(), "2025-01-01 00:00:00 UTC".len(), "{date}");
        assert!(date.starts_with("20"), "{date}");
    }
}
