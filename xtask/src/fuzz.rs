//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/` (issue 27).
//!
//! - `--replay` runs every seed of `fuzz/seeds/<target>/` through its target's function on
//!   stable (`cargo test -p sorted-runner --test integration fuzz_replay`), as CI does;
//! - `--minutes N [TARGET...]` fuzzes each target in turn (all of `fuzz/fuzz_targets/` when
//!   none is named) for `N` minutes with `cargo +nightly fuzz run`, starting from its seeds
//!   (new inputs go to the ignored `fuzz/corpus/<target>/`), with libFuzzer's memory limits
//!   at 2 GiB and a 10 s limit per input, and prints a table of target, seconds, executions
//!   and crashes. Crash inputs land in `fuzz/artifacts/<target>/`:
//!   fix the parser, then copy the input into `fuzz/seeds/<target>/`.
//!
//! Fuzzing needs the nightly toolchain and `cargo install cargo-fuzz`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

/// Options of `cargo xtask fuzz`.
#[derive(Args)]
pub struct FuzzArgs {
    /// Replay the seed corpus on stable (the CI check) instead of fuzzing.
    #[arg(long, conflicts_with_all = ["minutes", "targets"])]
    replay: bool,
    /// Minutes of fuzzing per target.
    #[arg(long, default_value_t = 5)]
    minutes: u64,
    /// The targets to fuzz (file names in `fuzz/fuzz_targets/` without `.rs`); all if none.
    targets: Vec<String>,
}

/// What one fuzzing run did.
struct RunStats {
    target: String,
    seconds: f64,
    executions: Option<u64>,
    crashes: usize,
}

/// Runs `cargo xtask fuzz`.
pub fn run(args: FuzzArgs) -> Result<()> {
    let root = crate::workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if args.replay {
        let status = Command::new(&cargo)
            .current_dir(&root)
            .args(["test", "-p", "sorted-runner", "--test", "integration", "fuzz_replay"])
            .status()
            .context("running cargo test")?;
        if !status.success() {
            bail!("the fuzz seed replay failed ({status})");
        }
        return Ok(());
    }
    let all = fuzz_targets(&root)?;
    let targets = if args.targets.is_empty() { all.clone() } else { args.targets.clone() };
    if let Some(unknown) = targets.iter().find(|t| !all.contains(t)) {
        bail!("unknown fuzz target `{unknown}`: expected one of {}", all.join(", "));
    }
    let mut stats = Vec::new();
    for target in &targets {
        stats.push(fuzz_one(&root, target, args.minutes)?);
    }
    println!("\n| target | seconds | executions | crashes |\n|---|---:|---:|---:|");
    for s in &stats {
        let executions = s.executions.map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!("| {} | {:.0} | {executions} | {} |", s.target, s.seconds, s.crashes);
    }
    let crashed: Vec<&str> = stats.iter().filter(|s| s.crashes > 0).map(|s| s.target.as_str()).collect();
    if !crashed.is_empty() {
        bail!("crashes in {}: the inputs are in fuzz/artifacts/<target>/", crashed.join(", "));
    }
    Ok(())
}

/// The targets of `fuzz/fuzz_targets/`, sorted.
fn fuzz_targets(root: &std::path::Path) -> Result<Vec<String>> {
    let dir = root.join("fuzz/fuzz_targets");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Fuzzes `target` for `minutes`, echoing libFuzzer's output, and reads its final statistics.
fn fuzz_one(root: &std::path::Path, target: &str, minutes: u64) -> Result<RunStats> {
    let seeds = format!("fuzz/seeds/{target}");
    // libFuzzer adds the inputs it finds to the first folder: the ignored fuzz/corpus, so
    // the committed seeds stay as they are.
    let corpus = format!("fuzz/corpus/{target}");
    std::fs::create_dir_all(root.join(&corpus)).with_context(|| format!("creating {corpus}"))?;
    let max_time = format!("-max_total_time={}", minutes * 60);
    eprintln!("fuzzing {target} for {minutes} min from {seeds}");
    let start = Instant::now();
    let mut child = Command::new("cargo")
        .current_dir(root)
        .args(["+nightly", "fuzz", "run", target, &corpus, &seeds, "--"])
        .args([&max_time, "-rss_limit_mb=2048", "-malloc_limit_mb=2048", "-timeout=10", "-print_final_stats=1"])
        .stderr(Stdio::piped())
        .spawn()
        .context("running `cargo +nightly fuzz` (rustup toolchain install nightly; cargo install cargo-fuzz)")?;
    let (mut executions, mut crashes) = (None, 0);
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading libFuzzer's output")?;
            eprintln!("{line}");
            if let Some(n) = executed_units(&line) {
                executions = Some(n);
            }
            if line.contains("Test unit written to") {
                crashes += 1;
            }
        }
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    if !status.success() && crashes == 0 {
        // A build failure, or libFuzzer died without writing an input.
        crashes = 1;
    }
    Ok(RunStats { target: target.to_owned(), seconds: start.elapsed().as_secs_f64(), executions, crashes })
}

/// The executions a libFuzzer line reports: `stat::number_of_executed_units: N`, or the count
/// of a status line `#N\tDONE ...` (or any `#N\t...` progress line).
fn executed_units(line: &str) -> Option<u64> {
    if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
        return n.trim().parse().ok();
    }
    let rest = line.strip_prefix('#')?;
    let (n, _) = rest.split_once(|c: char| c.is_whitespace())?;
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::executed_units;

    #[test]
    fn libfuzzer_execution_counts_are_read() {
        assert_eq!(executed_units("stat::number_of_executed_units: 123456"), Some(123_456));
        assert_eq!(executed_units("#4096\tpulse  cov: 12 ft: 30 corp: 5/60b exec/s: 2048 rss: 40Mb"), Some(4096));
        assert_eq!(executed_units("#98765\tDONE   cov: 12 ft: 30 corp: 5/60b exec/s: 329 rss: 60Mb"), Some(98_765));
        assert_eq!(executed_units("INFO: Seed: 1"), None);
    }
}
