//! `cargo xtask bench --peer`: sortednet-rs against a PyTorch replica of the same experiment,
//! run alternately on this machine (issue 29, item 1).
//!
//! ```text
//! cargo xtask bench --peer --install-torch     # first time: venv with torch in target/peer-venv
//! cargo xtask bench --peer                     # 3 pairs of the default experiment, release build
//! cargo xtask bench --peer --pairs 5 --steps 500 --profile dev
//! cargo xtask bench --peer --train-steps --pairs 2   # only the zoo families' steps (peer_steps.rs)
//! ```
//!
//! Each pair runs `sorted-runner train --config configs/mnist-mlp.toml` and then
//! `benches/peer/mnist_mlp.py` (its docstring lists what it replicates and how it differs), so
//! drifts in the machine's load hit both sides alike. For every run it records the wall time, the
//! 1-minute load average before it, and the CPU utilisation `(user + sys) / wall` of the child,
//! read from this process's `cutime`/`cstime` in `/proc/self/stat` around the wait (no unsafe
//! `getrusage`). The report, with medians and the ratio ours / PyTorch, goes to stdout,
//! `target/bench-peer.md` and `docs/results/bench-peer.md`; a section of one training step per
//! zoo family already there (`--train-steps`, `peer_steps.rs`) is carried over.
//!
//! The venv is never a CI requirement: without `--install-torch` a missing venv is an error
//! that says how to make it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::bench::{commit, load_average, machine, target_dir, utc_now, write_atomic};
use crate::workspace_root;

/// The replica of the default experiment, relative to the workspace root.
const REPLICA: &str = "benches/peer/mnist_mlp.py";
/// The default experiment's config, relative to the workspace root.
const CONFIG: &str = "configs/mnist-mlp.toml";

/// Options of the peer comparison (the `--peer` flags of `cargo xtask bench`).
pub struct PeerOptions {
    /// Pairs of runs (ours, then PyTorch's).
    pub pairs: usize,
    /// Override `train.steps` on both sides.
    pub steps: Option<u64>,
    /// Cargo profile of sorted-runner (`release` or `dev`).
    pub profile: String,
    /// Create the venv and `pip install torch` into it when it is missing.
    pub install_torch: bool,
    /// torch threads (`None`: torch's default, every core).
    pub torch_threads: Option<usize>,
    /// Also compare SmolLM2 greedy decoding.
    pub decode: bool,
    /// Instead of the default experiment: one training step of each zoo family against
    /// `benches/peer/train_steps.py` ([`crate::peer_steps`]), spliced into the report.
    pub train_steps: bool,
}

/// One timed child process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timed {
    wall: f64,
    cpu: f64,
    /// The 1-minute load average before the run.
    pub load: f64,
    /// The training loop's own time, as the program reports it (seconds).
    train: f64,
}

impl Timed {
    /// `(user + sys) / wall` of the child.
    pub fn utilisation(&self) -> f64 {
        self.cpu / self.wall
    }
}

/// Runs the comparison and writes the report.
///
/// # Errors
/// A failed build or run, a missing venv (without `--install-torch`), or a failed write.
pub fn run(opts: &PeerOptions) -> Result<()> {
    ensure!(opts.pairs >= 1, "--pairs must be at least 1");
    let root = workspace_root();
    let target = target_dir(&root);
    let python = venv_python(&target, opts.install_torch)?;

    let mut build = vec!["build".to_string(), "-p".into(), "sorted-runner".into()];
    let profile_dir = if opts.profile == "dev" { "debug" } else { opts.profile.as_str() };
    if opts.profile != "dev" {
        build.extend(["--profile".into(), opts.profile.clone()]);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building: cargo {}", build.join(" "));
    let status = Command::new(&cargo).args(&build).current_dir(&root).status().context("starting cargo build")?;
    ensure!(status.success(), "`cargo {}` failed ({status})", build.join(" "));
    let runner = target.join(profile_dir).join("sorted-runner");

    let scratch = tempfile::Builder::new().prefix("peer-").tempdir_in(&target).context("creating a scratch folder")?;
    let docs = root.join("docs").join("results").join("bench-peer.md");
    let old = fs::read_to_string(&docs).unwrap_or_default();
    if opts.train_steps {
        let section = crate::peer_steps::section(opts, &root, &runner, &python, scratch.path())?;
        print!("{section}");
        write_atomic(&target.join("bench-peer-steps.md"), section.as_bytes())?;
        write_atomic(&docs, crate::peer_steps::splice(&old, &section).as_bytes())?;
        eprintln!("wrote {} and {}", target.join("bench-peer-steps.md").display(), docs.display());
        return Ok(());
    }
    let steps: Vec<String> = opts.steps.map(|s| vec!["--steps".into(), s.to_string()]).unwrap_or_default();
    let mut ours_cmd = vec!["train".to_string(), "--config".into(), CONFIG.into()];
    ours_cmd.extend(steps.iter().cloned());
    let mut peer_cmd = vec![REPLICA.to_string()];
    peer_cmd.extend(steps.iter().cloned());
    if let Some(t) = opts.torch_threads {
        peer_cmd.extend(["--threads".into(), t.to_string()]);
    }

    let mut ours = Vec::new();
    let mut peer = Vec::new();
    let mut peer_json = String::new();
    for pair in 0..opts.pairs {
        let out = scratch.path().join(format!("run-{pair}"));
        let mut args = ours_cmd.clone();
        args.extend(["--out".into(), out.display().to_string()]);
        eprintln!("pair {}/{}: sorted-runner {}", pair + 1, opts.pairs, args.join(" "));
        let (mut t, _, stderr) = timed(Command::new(&runner).args(&args).current_dir(&root))?;
        t.train = ours_train_seconds(&stderr).context("no `step N/N ... (X s)` progress line from sorted-runner")?;
        eprintln!(
            "  {:.2} s ({:.2} s training), utilisation {:.2}, load {:.2}",
            t.wall,
            t.train,
            t.utilisation(),
            t.load
        );
        ours.push(t);
        eprintln!("pair {}/{}: {} {}", pair + 1, opts.pairs, python.display(), peer_cmd.join(" "));
        let (mut t, stdout, _) = timed(Command::new(&python).args(&peer_cmd).current_dir(&root))?;
        let json: serde_json::Value = serde_json::from_str(stdout.trim()).context("parsing the replica's JSON line")?;
        t.train = json["train_seconds"].as_f64().context("no train_seconds in the replica's output")?;
        eprintln!("  {:.2} s, utilisation {:.2}, load {:.2}: {}", t.wall, t.utilisation(), t.load, stdout.trim());
        peer.push(t);
        peer_json = stdout.trim().to_string();
    }

    let command = format!(
        "cargo xtask bench --peer --pairs {}{} --profile {}{}",
        opts.pairs,
        opts.steps.map(|s| format!(" --steps {s}")).unwrap_or_default(),
        opts.profile,
        opts.torch_threads.map(|t| format!(" --torch-threads {t}")).unwrap_or_default()
    ) + if opts.decode { " --decode" } else { "" };
    let mut report =
        render(&command, &ours, &peer, &peer_json, &format!("{} {}", runner.display(), ours_cmd.join(" ")));
    if opts.decode {
        report.push_str(&decode_section(opts, &root, &runner, &python, scratch.path())?);
    }
    if let Some(steps) = crate::peer_steps::existing(&old) {
        report = crate::peer_steps::splice(&report, steps);
    }
    print!("{report}");
    for path in [target.join("bench-peer.md"), docs] {
        write_atomic(&path, report.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The decoded model, relative to the workspace root (`cargo xtask data smollm2`).
const SMOLLM2: &str = "data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The decoding peer, relative to the workspace root.
const DECODE_PEER: &str = "benches/peer/smollm2_decode.py";
/// New tokens per prompt on both sides.
const DECODE_MAX_NEW: usize = 32;

/// SmolLM2 greedy decoding on the peer script's 20 prompts, alternated `opts.pairs` times:
/// `sorted-runner generate --q8` (which also decodes with f32 weights) against transformers on
/// the f32 export of the same model; a Markdown section with tokens/s, ratios and the bound
/// `copy bandwidth / weight bytes per token`.
fn decode_section(opts: &PeerOptions, root: &Path, runner: &Path, python: &Path, scratch: &Path) -> Result<String> {
    let gguf = root.join(SMOLLM2);
    ensure!(gguf.exists(), "--decode needs {}: run `cargo xtask data smollm2`", gguf.display());
    let export = target_dir(root).join("peer-smollm2");
    if !export.join("hf").join("config.json").exists() {
        let args = ["export", "--gguf", SMOLLM2, "--sub-model", "L30-H9-F1536", "--out"];
        eprintln!("exporting the f32 model for transformers: sorted-runner {} {}", args.join(" "), export.display());
        timed(Command::new(runner).args(args).arg(&export).current_dir(root))?;
    }
    let (_, prompts, _) = timed(Command::new(python).args([DECODE_PEER, "--print-prompts"]).current_dir(root))?;
    let mut ours_args = vec!["generate".to_string(), "--q8".into(), "--max-new".into(), DECODE_MAX_NEW.to_string()];
    for p in prompts.lines().filter(|l| !l.is_empty()) {
        ours_args.extend(["--prompt".into(), p.to_string()]);
    }
    let threads = opts.torch_threads.unwrap_or(2).to_string();
    let hf = export.join("hf").display().to_string();
    let (mut q8, mut f32s, mut torch, mut bandwidth, mut mb) = (Vec::new(), Vec::new(), Vec::new(), f64::NAN, f64::NAN);
    for pair in 0..opts.pairs {
        let bench = scratch.join(format!("decode-{pair}"));
        eprintln!(
            "decode pair {}/{}: sorted-runner generate --q8 ({} prompts)",
            pair + 1,
            opts.pairs,
            ours_args.len() / 2 - 2
        );
        let (_, _, stderr) = timed(Command::new(runner).args(&ours_args).arg("--bench").arg(&bench).current_dir(root))?;
        mb = stderr
            .lines()
            .find_map(|l| l.strip_prefix("decoding weights: ")?.split_once(" MB")?.0.parse().ok())
            .unwrap_or(f64::NAN);
        let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(bench.join("decode.json"))?)?;
        let rows = report["rows"].as_array().context("no rows in decode.json")?;
        let speed = |prefix: &str| {
            rows.iter()
                .find(|r| r["mode"].as_str().is_some_and(|m| m.starts_with(prefix)))
                .and_then(|r| r["tokens_per_second"].as_f64())
                .with_context(|| format!("no `{prefix}` row in decode.json"))
        };
        q8.push(speed("greedy (8-bit")?);
        // The fastest f32 decoder of the device: on a CPU the host decoder.
        f32s.push(speed("greedy (f32 weights, host").or_else(|_| speed("greedy (f32 weights, decoding layout"))?);
        let mut args = vec![DECODE_PEER.to_string(), "--hf".into(), hf.clone(), "--max-new".into()];
        args.extend([DECODE_MAX_NEW.to_string(), "--threads".into(), threads.clone()]);
        if pair == 0 {
            args.push("--bandwidth".into());
        }
        eprintln!("decode pair {}/{}: {} {}", pair + 1, opts.pairs, python.display(), args.join(" "));
        let (_, stdout, _) = timed(Command::new(python).args(&args).current_dir(root))?;
        let json: serde_json::Value =
            serde_json::from_str(stdout.trim()).context("parsing the decoding peer's JSON")?;
        torch.push(json["tokens_per_second"].as_f64().context("no tokens_per_second from the decoding peer")?);
        if let Some(b) = json["copy_bandwidth_gb_s"].as_f64() {
            bandwidth = b;
        }
    }
    let (q, f, t) = (median(q8), median(f32s), median(torch));
    let mut s = String::new();
    let _ = writeln!(s, "\n## SmolLM2-135M greedy decoding\n");
    let _ = writeln!(
        s,
        "`{SMOLLM2}`, the 20 prompts of `benches/peer/greedy_prompts.py` in ChatML, at most {DECODE_MAX_NEW} new \
         tokens each, {} pairs alternated: `sorted-runner generate --q8 --bench` (8-bit weights, then the same \
         prompts with f32 weights) and `python {DECODE_PEER}` (transformers, f32, {threads} torch threads) on \
         the f32 export of the same model. Tokens/s include each prompt's prefill. Copy bandwidth (numpy): \
         {bandwidth:.1} GB/s; the bound is that bandwidth over the weight bytes each token reads.\n",
        opts.pairs
    );
    let _ = writeln!(s, "| decoding | tokens/s (median) | ratio to PyTorch | weight MB per token | bound tokens/s |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    let f32_mb = mb * 4.0 / 1.125;
    let bound = |mb: f64| bandwidth * 1e3 / mb;
    let _ = writeln!(s, "| ours, 8-bit weights | {q:.2} | **{:.2}** | {mb:.0} | {:.0} |", q / t, bound(mb));
    let _ = writeln!(s, "| ours, f32 weights | {f:.2} | **{:.2}** | {f32_mb:.0} | {:.0} |", f / t, bound(f32_mb));
    let _ = writeln!(s, "| PyTorch (transformers), f32 | {t:.2} | 1.00 | {f32_mb:.0} | {:.0} |", bound(f32_mb));
    Ok(s)
}

/// The venv's python, creating the venv and installing torch when asked.
fn venv_python(target: &Path, install: bool) -> Result<PathBuf> {
    let venv = target.join("peer-venv");
    let python = venv.join("bin").join("python");
    let has_torch = |python: &Path| {
        Command::new(python).args(["-c", "import torch"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if python.exists() && has_torch(&python) {
        return Ok(python);
    }
    if !install {
        bail!(
            "no torch in {}: run `cargo xtask bench --peer --install-torch` once (python3 -m venv + pip install torch)",
            venv.display()
        );
    }
    let run = |program: &Path, args: &[&str]| -> Result<()> {
        eprintln!("running {} {}", program.display(), args.join(" "));
        let status =
            Command::new(program).args(args).status().with_context(|| format!("starting {}", program.display()))?;
        ensure!(status.success(), "`{} {}` failed ({status})", program.display(), args.join(" "));
        Ok(())
    };
    run(Path::new("python3"), &["-m", "venv", &venv.display().to_string()])?;
    run(&venv.join("bin").join("pip"), &["install", "--quiet", "torch", "numpy"])?;
    ensure!(has_torch(&python), "torch still does not import in {}", venv.display());
    Ok(python)
}

/// Runs `cmd` to completion; its wall time, the CPU time it and its children used, the load
/// average before it (`train` left 0), its stdout and its stderr.
pub(crate) fn timed(cmd: &mut Command) -> Result<(Timed, String, String)> {
    let load = load_average().parse::<f64>().unwrap_or(f64::NAN);
    let before = children_cpu_seconds()?;
    let clock = Instant::now();
    let output = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    let wall = clock.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds()? - before;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    ensure!(output.status.success(), "{cmd:?} failed ({}): {stderr}", output.status);
    Ok((Timed { wall, cpu, load, train: 0.0 }, String::from_utf8_lossy(&output.stdout).into_owned(), stderr))
}

/// The seconds of sorted-runner's last progress line `step N/N loss .. lr .. (X s)`: the
/// training loop alone, without start-up and the evaluation of every sub-model that follows.
fn ours_train_seconds(stderr: &str) -> Option<f64> {
    let line = stderr.lines().rev().find(|l| l.starts_with("step ") && l.ends_with(" s)"))?;
    line.rsplit_once('(')?.1.strip_suffix(" s)")?.parse().ok()
}

/// User + system CPU seconds of this process's waited-for children (`cutime + cstime` of
/// `/proc/self/stat`, in clock ticks of `getconf CLK_TCK`).
fn children_cpu_seconds() -> Result<f64> {
    let stat = fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let ticks = parse_children_ticks(&stat).context("parsing /proc/self/stat")?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// `cutime + cstime` (fields 16 and 17) of a `/proc/<pid>/stat` line.
fn parse_children_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field n is fields[n - 3].
    Some(fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

fn render(command: &str, ours: &[Timed], peer: &[Timed], peer_json: &str, ours_cmd: &str) -> String {
    let root = workspace_root();
    let mut s = String::new();
    let _ = writeln!(s, "# Peer benchmark: sortednet-rs against PyTorch\n");
    let _ = writeln!(s, "Written by `{command}` on {}. Commit {}. Machine: {}.\n", utc_now(), commit(&root), machine());
    let _ = writeln!(
        s,
        "Ours: `{ours_cmd} --out <scratch>`; PyTorch: `python {REPLICA}` (last output: `{peer_json}`). \
         Runs alternate ours, PyTorch, ours, ... \"Training loop\" is each program's own timing of \
         its steps (ours: the last `step N/N .. (X s)` progress line; the replica: `train_seconds`). \
         \"Whole process\" also counts start-up (importing torch takes seconds), data decoding and, \
         for ours, checkpoint writes and the evaluation of all 340 sub-models on the 2,000 test \
         images that `train` ends with. Utilisation is (user + sys) / wall of the whole child \
         process; load is the 1-minute load average before the run.\n"
    );
    let med = |xs: &[Timed], f: fn(&Timed) -> f64| median(xs.iter().map(f).collect());
    let _ = writeln!(s, "| workload | ours (median s) | PyTorch (median s) | ratio ours / PyTorch |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    let (ot, pt) = (med(ours, |t| t.train), med(peer, |t| t.train));
    let _ = writeln!(s, "| default experiment, training loop | {ot:.2} | {pt:.2} | **{:.2}** |", ot / pt);
    let (o, p) = (med(ours, |t| t.wall), med(peer, |t| t.wall));
    let _ = writeln!(s, "| default experiment, whole process | {o:.2} | {p:.2} | {:.2} |\n", o / p);
    let _ = writeln!(
        s,
        "CPU utilisation (median): ours {:.2}, PyTorch {:.2} cores.\n",
        med(ours, Timed::utilisation),
        med(peer, Timed::utilisation)
    );
    let _ = writeln!(s, "Every run:\n");
    let _ = writeln!(
        s,
        "| pair | ours s | ours loop s | ours util. | load before | PyTorch s | PyTorch loop s | PyTorch util. | load before |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, (a, b)) in ours.iter().zip(peer).enumerate() {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            i + 1,
            a.wall,
            a.train,
            a.utilisation(),
            a.load,
            b.wall,
            b.train,
            b.utilisation(),
            b.load
        );
    }
    let _ = writeln!(
        s,
        "\nThe replica's differences from ours (random streams, no checkpoints or final evaluation) \
         are listed in the docstring of `{REPLICA}`; none changes the work of the training loop."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_ticks_are_fields_16_and_17() {
        // A real line's shape, with a command name holding a space and a parenthesis.
        let line = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194304 100 0 0 0 7 3 250 31 20 0 1 0 99 1000 50";
        assert_eq!(parse_children_ticks(line), Some(281));
        assert_eq!(parse_children_ticks("garbage"), None);
    }

    #[test]
    fn ours_training_time_is_the_last_progress_line() {
        let stderr = "training\nstep 100/200 loss 0.5 lr 1.00e-3 (1.2 s)\nstep 200/200 loss 0.2 lr 1.00e-5 (10.5 s)\nevaluating\n";
        assert_eq!(ours_train_seconds(stderr), Some(10.5));
        assert_eq!(ours_train_seconds("nothing"), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn this_process_reads_its_children_cpu() {
        let before = children_cpu_seconds().expect("readable");
        let (t, out, _) = timed(Command::new("sh").args(["-c", "echo hi"])).expect("sh runs");
        assert_eq!(out.trim(), "hi");
        assert!(t.wall > 0.0 && t.cpu >= 0.0);
        assert!(children_cpu_seconds().expect("readable") >= before);
    }
}
