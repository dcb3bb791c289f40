//! Run reports: `results.json`, `results.csv`, `summary.md`, the terminal table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sorted_sched::write_atomic;

use crate::eval::SubModelResult;

/// How a run was produced (provenance for `docs/results/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Experiment name.
    pub name: String,
    /// The config file the run was started from.
    pub config: String,
    /// The command line.
    pub command: String,
    /// `git rev-parse HEAD` of the working tree, or `unknown`.
    pub commit: String,
    /// CPU model and logical cores of this machine.
    pub machine: String,
    /// The backend/device.
    pub device: String,
    /// The run seed.
    pub seed: u64,
    /// The sampler kind.
    pub sampler: String,
    /// Sub-models per step.
    pub k: usize,
    /// Optimizer steps trained.
    pub steps: u64,
    /// Training wall time, seconds.
    pub train_seconds: f64,
    /// Evaluation wall time, seconds.
    pub eval_seconds: f64,
    /// Training / test images.
    pub data: String,
    /// Set when the evaluated weights are not those of a finished run: unfinished, or failed
    /// (with the step and the reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Everything `results.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Provenance.
    pub meta: RunMeta,
    /// The full model's accuracy.
    pub full_accuracy: f64,
    /// The share of the full model's accuracy that counts (0.96 in the paper).
    pub threshold: f64,
    /// Number of sub-models evaluated.
    pub n_sub_models: usize,
    /// How many reach `threshold` of the full model.
    pub n_at_threshold: usize,
    /// FLOPs of the smallest sub-model / FLOPs of the full model.
    pub min_flops_ratio: f64,
    /// With switchable BatchNorm statistics instead of recalibrated ones (switchable runs
    /// only): the full model's accuracy and how many sub-models reach `threshold` of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchable: Option<(f64, usize)>,
    /// Every sub-model, in the space's enumeration order.
    pub results: Vec<SubModelResult>,
}

impl RunReport {
    /// Builds the report from evaluated rows (the full model is the row with relative 1 and the
    /// most FLOPs).
    pub fn new(meta: RunMeta, threshold: f64, results: Vec<SubModelResult>) -> Self {
        let full = results.iter().max_by_key(|r| r.flops).cloned();
        let full_accuracy = full.as_ref().map_or(0.0, |f| f.accuracy);
        let full_flops = full.as_ref().map_or(1, |f| f.flops.max(1));
        let min_flops = results.iter().map(|r| r.flops).min().unwrap_or(0);
        let switchable = full.as_ref().and_then(|f| f.accuracy_switchable).map(|full_sw| {
            let n = results.iter().filter(|r| r.accuracy_switchable.is_some_and(|a| a >= threshold * full_sw)).count();
            (full_sw, n)
        });
        Self {
            switchable,
            meta,
            full_accuracy,
            threshold,
            n_sub_models: results.len(),
            n_at_threshold: results.iter().filter(|r| r.relative >= threshold).count(),
            min_flops_ratio: min_flops as f64 / full_flops as f64,
            results,
        }
    }

    /// One line: full accuracy and the headline count (and the switchable-statistics
    /// comparison when the run has it).
    pub fn headline(&self) -> String {
        let mut line = self.recalibrated_headline();
        if let Some((full, n)) = self.switchable {
            line.push_str(&format!(
                "; with switchable BN statistics instead: full model {:.2}%, {} of {} reach >= {:.0}% of it",
                100.0 * full,
                n,
                self.n_sub_models,
                100.0 * self.threshold
            ));
        }
        line
    }

    fn recalibrated_headline(&self) -> String {
        format!(
            "full model: {:.2}% test accuracy; {} of {} sub-models ({:.1}%) reach >= {:.0}% of it; FLOPs span {:.1}x",
            100.0 * self.full_accuracy,
            self.n_at_threshold,
            self.n_sub_models,
            100.0 * self.n_at_threshold as f64 / self.n_sub_models.max(1) as f64,
            100.0 * self.threshold,
            1.0 / self.min_flops_ratio.max(1e-12)
        )
    }

    /// The table of every sub-model, as Markdown.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| sub-model | depth | params | MFLOPs | accuracy % | % of full | us/sample |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.results {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.3} | {:.2} | {:.1} | {:.2} |",
                r.sub_model,
                r.depth,
                r.params,
                r.flops as f64 / 1e6,
                100.0 * r.accuracy,
                100.0 * r.relative,
                r.us_per_sample
            );
        }
        s
    }

    /// Writes `results.json`, `results.csv` and `summary.md` into `dir`, atomically.
    ///
    /// # Errors
    /// When a file cannot be written (the error names it).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("report serialises");
        write_file(&dir.join("results.json"), &json)?;
        let mut csv =
            String::from("sub_model,depth,widths,params,flops,accuracy,relative,us_per_sample,accuracy_switchable\n");
        for r in &self.results {
            let widths: Vec<String> = r.widths.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{:.6},{:.6},{:.4},{}",
                r.sub_model,
                r.depth,
                widths.join(" "),
                r.params,
                r.flops,
                r.accuracy,
                r.relative,
                r.us_per_sample,
                r.accuracy_switchable.map_or(String::new(), |a| format!("{a:.6}"))
            );
        }
        write_file(&dir.join("results.csv"), csv.as_bytes())?;
        write_file(&dir.join("summary.md"), self.markdown().as_bytes())
    }

    fn markdown(&self) -> String {
        let m = &self.meta;
        let mut s = format!("# {} \n\n{}\n\n", m.name, self.headline());
        if let Some(status) = &m.status {
            let _ = writeln!(s, "**{status}**\n");
        }
        let _ = writeln!(s, "| | |\n|---|---|");
        for (k, v) in [
            ("command", m.command.clone()),
            ("config", m.config.clone()),
            ("commit", m.commit.clone()),
            ("machine", m.machine.clone()),
            ("device", m.device.clone()),
            ("data", m.data.clone()),
            ("seed", m.seed.to_string()),
            ("sampler", format!("{} (k = {})", m.sampler, m.k)),
            ("steps", m.steps.to_string()),
            ("train wall time", format!("{:.1} s", m.train_seconds)),
            ("eval wall time", format!("{:.1} s", m.eval_seconds)),
        ] {
            let _ = writeln!(s, "| {k} | `{v}` |");
        }
        let _ = writeln!(s, "\nAccuracy vs FLOPs: `plot.svg`. Every sub-model:\n\n{}", self.table());
        s
    }

    /// Writes the report files and `plot.svg` into the run folder and, unless `quiet`, prints
    /// the table, the headline and what was written (`extra_files`: more names for that line,
    /// e.g. `", norm_stats.json"`).
    ///
    /// # Errors
    /// When a file cannot be written (the error names it).
    pub fn publish(&self, run_dir: &Path, quiet: bool, extra_files: &str) -> anyhow::Result<()> {
        self.write(run_dir)?;
        crate::plot::write_plot(self, &run_dir.join("plot.svg"))?;
        if !quiet {
            println!("{}", self.table());
            println!("{}", self.headline());
            println!(
                "wrote {}/{{config.toml, checkpoint/, results.json, results.csv, summary.md, plot.svg{extra_files}}}",
                run_dir.display()
            );
        }
        Ok(())
    }

    /// Reads `results.json` from a run folder.
    ///
    /// # Errors
    /// When the file is missing or not a report.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("results.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing `{}`", path.display()))
    }
}

/// Writes one file atomically, naming it on failure.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, bytes).with_context(|| format!("writing `{}`", path.display()))
}

/// The commit of the working tree the binary runs in. Outside a git checkout (a binary carried
/// to another machine), the commit it was built from, if the build set `SORTED_BUILD_COMMIT`
/// (`SORTED_BUILD_COMMIT=$(git rev-parse --short=12 HEAD) cargo build --release ...`); else
/// `unknown`.
pub fn git_commit() -> String {
    let tree = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    commit_or_build(tree, option_env!("SORTED_BUILD_COMMIT"))
}

/// The working tree's commit, else the build's (marked as such), else `unknown`.
fn commit_or_build(tree: Option<String>, build: Option<&str>) -> String {
    match (tree, build.map(str::trim)) {
        (Some(tree), _) if !tree.is_empty() => tree,
        (_, Some(build)) if !build.is_empty() => format!("{build} (the binary's build; no git checkout here)"),
        _ => "unknown".into(),
    }
}

/// `args` as one line a POSIX shell runs as the same command: arguments of only plain characters
/// as they are, others single-quoted, and those with a line break, another control character or a
/// `|` in `$'...'` with escapes, so the line also fits in one Markdown table cell (a multi-line
/// `--prompt` would otherwise break a report's table).
pub fn command_line<I: IntoIterator<Item = String>>(args: I) -> String {
    args.into_iter().map(|a| shell_quote(&a)).collect::<Vec<_>>().join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return arg.to_string();
    }
    if !arg.chars().any(|c| c.is_control() || c == '|') {
        return format!("'{}'", arg.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in arg.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\r' => out.push_str(r"\r"),
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            '|' => out.push_str(r"\x7c"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The CPU model and logical core count.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} logical cores")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_falls_back_to_the_build_commit_then_unknown() {
        assert_eq!(commit_or_build(Some("abc123".into()), Some("def456")), "abc123");
        assert_eq!(commit_or_build(None, Some("def456")), "def456 (the binary's build; no git checkout here)");
        assert_eq!(commit_or_build(Some(String::new()), Some(" ")), "unknown");
        assert_eq!(commit_or_build(None, None), "unknown");
    }

    #[test]
    fn the_command_line_quotes_what_a_shell_or_a_table_would_split() {
        let line = |args: &[&str]| command_line(args.iter().map(|a| a.to_string()));
        assert_eq!(
            line(&["sorted-runner", "soft", "--lr", "2e-4", "--out=runs/a"]),
            "sorted-runner soft --lr 2e-4 --out=runs/a"
        );
        assert_eq!(line(&["--prompt", "What is it?", ""]), "--prompt 'What is it?' ''");
        assert_eq!(line(&["--prompt", "don't"]), r"--prompt 'don'\''t'");
        assert_eq!(
            line(&["--prompt", "LEONTES.\n  I say\t'no' | \\ \u{1}"]),
            r"--prompt $'LEONTES.\n  I say\t\'no\' \x7c \\ \u0001'"
        );
        assert!(!line(&["a\nb\r"]).contains(['\n', '\r']));
    }
}
