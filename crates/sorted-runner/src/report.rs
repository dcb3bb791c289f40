//! Run reports: `results.json`, `results.csv`, `summary.md`, the terminal table and `plot.svg`
//! (accuracy vs FLOPs).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::SubModelResult;
use crate::provenance::RunContext;
/// Provenance helpers, also reachable here for earlier callers.
pub use crate::provenance::{command_line, git_commit, machine, write_file};

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
    /// The CPU model and its core counts (`sorted_provenance::machine`).
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

/// Where a run's report goes and what it says of the evaluated weights: the run folder, where
/// training stands, why the run is not a finished one (if so) and the command's context. Every
/// flow's report takes one.
#[derive(Clone, Debug)]
pub struct ReportTarget<'a> {
    /// The run folder the reports are written into.
    pub run_dir: &'a Path,
    /// Where training stands for the evaluated weights.
    pub state: &'a sorted_sched::TrainState,
    /// Set when the weights are not those of a finished run.
    pub status: Option<String>,
    /// The command that evaluates them.
    pub ctx: &'a RunContext,
}

impl ReportTarget<'_> {
    /// Writes the report of `rows` for a run of `cfg` (any flow; read from `config`, a sampler
    /// drawing `k` per step), evaluated in `eval_seconds`: `results.json`, `results.csv`,
    /// `summary.md`, `plot.svg` and the table ([`RunReport::publish`], which names `extra_files`).
    ///
    /// # Errors
    /// When a report cannot be written.
    pub fn publish<D, M, S>(
        self,
        cfg: &crate::config::ExperimentConfig<D, M, S>,
        (config, k): (&Path, usize),
        eval_seconds: f64,
        data: String,
        rows: Vec<SubModelResult>,
        extra_files: &str,
    ) -> anyhow::Result<()> {
        let (run_dir, quiet) = (self.run_dir, self.ctx.quiet);
        let meta = RunMeta::new(self, cfg, config, k, eval_seconds, data);
        RunReport::new(meta, cfg.eval.threshold, rows).publish(run_dir, quiet, extra_files)
    }
}

impl RunMeta {
    /// The provenance of a run of `cfg` (any flow; read from `config`, a sampler drawing `k`
    /// per step), evaluated in `eval_seconds` for `target` on this machine; `data` describes
    /// the data.
    pub fn new<D, M, S>(
        target: ReportTarget<'_>,
        cfg: &crate::config::ExperimentConfig<D, M, S>,
        config: &Path,
        k: usize,
        eval_seconds: f64,
        data: String,
    ) -> Self {
        let ReportTarget { state, status, ctx, .. } = target;
        Self {
            name: cfg.name.clone(),
            config: config.display().to_string(),
            command: ctx.command.clone(),
            commit: ctx.commit.clone(),
            machine: machine(),
            device: ctx.device_name.clone(),
            seed: cfg.seed,
            sampler: cfg.sampler.kind().to_string(),
            k,
            steps: state.step,
            train_seconds: state.train_seconds,
            eval_seconds,
            data,
            status,
        }
    }
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
        // Language-model runs add their perplexity.
        let lm = self.results.iter().any(|r| r.perplexity.is_some());
        let mut s = String::from("| sub-model | depth | params | MFLOPs | accuracy % | % of full | us/sample |");
        s.push_str(if lm {
            " perplexity |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
        } else {
            "\n|---|---:|---:|---:|---:|---:|---:|\n"
        });
        for r in &self.results {
            let _ = write!(
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
            match r.perplexity.filter(|_| lm) {
                Some(p) => {
                    let _ = writeln!(s, " {p:.2} |");
                }
                None => s.push('\n'),
            }
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
        write_plot(self, &run_dir.join("plot.svg"))?;
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

/// Draws every sub-model's accuracy against its FLOPs (log scale), one colour per depth, the
/// full model's threshold line dashed, and writes `plot.svg` atomically.
///
/// # Errors
/// When drawing or writing fails.
pub fn write_plot(report: &RunReport, path: &Path) -> anyhow::Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        let rows = &report.results;
        let fmin = rows.iter().map(|r| r.flops).min().unwrap_or(1).max(1) as f64;
        let fmax = rows.iter().map(|r| r.flops).max().unwrap_or(1).max(1) as f64;
        let amin = rows.iter().map(|r| r.accuracy).fold(1.0, f64::min);
        let lo = (amin * 100.0 - 2.0).max(0.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: test accuracy vs FLOPs ({} sub-models)", report.meta.name, rows.len()),
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d((fmin * 0.8..fmax * 1.25).log_scale(), lo..100.0)
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(8)
            .x_label_formatter(&|v| if *v >= 1e6 { format!("{:.1}M", v / 1e6) } else { format!("{:.0}k", v / 1e3) })
            .x_desc("FLOPs per sample (log scale)")
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        let threshold = 100.0 * report.full_accuracy * report.threshold;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(fmin * 0.8, threshold), (fmax * 1.25, threshold)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?
            .label(format!("{:.0}% of the full model", 100.0 * report.threshold))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        let max_depth = rows.iter().map(|r| r.depth).max().unwrap_or(1);
        for depth in 1..=max_depth {
            let colour = Palette99::pick(depth - 1).to_rgba();
            let points: Vec<(f64, f64)> =
                rows.iter().filter(|r| r.depth == depth).map(|r| (r.flops.max(1) as f64, 100.0 * r.accuracy)).collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
                .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?
                .label(format!("depth {depth}"))
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("drawing the plot: {e}"))?;
    }
    write_file(path, svg.as_bytes())
}
