//! `select`: the most accurate sub-model under a budget, and why.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use sorted_zoo::deploy::{Budget, Candidate, WeightLayout, select};

use crate::cli::SelectArgs;
use crate::device::DeviceKind;
use crate::profile::{ProfileReport, profile_dir};
use crate::provenance::RunContext;
use crate::report::RunReport;

/// One candidate as `select` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SelectedSubModel {
    /// The sub-model (widths joined by `-`).
    pub sub_model: String,
    /// Test accuracy.
    pub accuracy: f64,
    /// Accuracy as a share of the full model's.
    pub relative: f64,
    /// Measured median latency, ms (when the budget is a latency).
    pub latency_ms: Option<f64>,
    /// Parameters.
    pub params: u64,
    /// FLOPs per sample.
    pub flops: u64,
}

/// What `select` found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SelectOutcome {
    /// The budget.
    pub budget: Budget,
    /// Where the latencies were measured (`None` for parameter and FLOPs budgets).
    pub latency_source: Option<String>,
    /// The most accurate sub-model within the budget.
    pub chosen: SelectedSubModel,
    /// The next point of the Pareto front, more accurate but over the budget.
    pub next_better: Option<SelectedSubModel>,
    /// Sub-models that fit the budget.
    pub n_fitting: usize,
    /// Sub-models considered.
    pub n_sub_models: usize,
    /// Points on the Pareto front of the budget's axis.
    pub front_len: usize,
}

impl SelectOutcome {
    /// The explanation printed by the command.
    pub fn explain(&self, run: &std::path::Path) -> String {
        let axis = self.budget.axis;
        let describe = |s: &SelectedSubModel| {
            let mut t = format!(
                "accuracy {:.2}% ({:.1}% of the full model), {} params, {:.3} MFLOPs",
                100.0 * s.accuracy,
                100.0 * s.relative,
                s.params,
                s.flops as f64 / 1e6
            );
            if let Some(ms) = s.latency_ms {
                let _ = write!(t, ", {ms:.4} ms");
            }
            t
        };
        let mut s = format!("best under {}: {}\n", self.budget, self.chosen.sub_model);
        if let Some(src) = &self.latency_source {
            let _ = writeln!(s, "  latencies: {src}");
        }
        let _ = writeln!(s, "  {}", describe(&self.chosen));
        match &self.next_better {
            Some(n) => {
                let cost = match axis {
                    sorted_zoo::deploy::CostAxis::LatencyMs => n.latency_ms.unwrap_or(f64::NAN),
                    sorted_zoo::deploy::CostAxis::Params => n.params as f64,
                    sorted_zoo::deploy::CostAxis::Flops => n.flops as f64,
                };
                let _ = writeln!(
                    s,
                    "  next better on the front: {} ({:.2}%), needs {}: over the budget",
                    n.sub_model,
                    100.0 * n.accuracy,
                    axis.format(cost)
                );
            }
            None => {
                let _ = writeln!(s, "  nothing is more accurate: the budget is not binding");
            }
        }
        let _ = writeln!(
            s,
            "  {} of {} sub-models fit; the {} front has {} points",
            self.n_fitting,
            self.n_sub_models,
            axis.name(),
            self.front_len
        );
        let _ = write!(
            s,
            "  export it: sorted-runner export --run {} --sub-model {}",
            run.display(),
            self.chosen.sub_model
        );
        s
    }
}

/// `select`: reads the run's accuracies (and, for a latency budget, its profile for `device`)
/// and picks the most accurate sub-model within the budget.
///
/// # Errors
/// A run without results or profile (naming the command that makes it), or no sub-model fits.
pub fn select_cmd(args: &SelectArgs, device: DeviceKind, ctx: &RunContext) -> anyhow::Result<SelectOutcome> {
    let budget = match (args.max_latency_ms, args.max_params, args.max_flops) {
        (Some(ms), None, None) => {
            anyhow::ensure!(ms.is_finite() && ms > 0.0, "--max-latency-ms must be a positive number, got {ms}");
            Budget::latency_ms(ms)
        }
        (None, Some(n), None) => Budget::params(n),
        (None, None, Some(f)) => Budget::flops(f),
        _ => anyhow::bail!("give exactly one of --max-latency-ms, --max-params, --max-flops"),
    };
    let results = RunReport::read(&args.run).with_context(|| {
        format!("`select` needs the accuracies of `{0}`: run `sorted-runner eval --run {0}` first", args.run.display())
    })?;
    let full_accuracy = results.full_accuracy;
    let (candidates, latency_source): (Vec<Candidate>, Option<String>) = if args.max_latency_ms.is_some() {
        let layout: WeightLayout = args.weight_layout.into();
        let dir: PathBuf =
            args.profile.clone().unwrap_or_else(|| profile_dir(&args.run, device, args.batch_size, layout));
        let profile = ProfileReport::read(&dir).with_context(|| {
            format!(
                "no latency profile for {} at batch {} ({} weights) in `{}`: run `sorted-runner --device {} profile \
                 --run {} --batch-size {} --weight-layout {}` first",
                device.name(),
                args.batch_size,
                layout,
                dir.display(),
                device.flag(),
                args.run.display(),
                args.batch_size,
                layout
            )
        })?;
        let m = &profile.meta;
        let source = format!(
            "median of {} passes on {} at batch {}, {} weights ({}, commit {})",
            m.options.repeats,
            m.device,
            m.batch_size,
            m.weight_layout,
            dir.display(),
            m.commit
        );
        (profile.profile.candidates(), Some(source))
    } else {
        let c = results
            .results
            .iter()
            .map(|r| Candidate {
                name: r.sub_model.clone(),
                accuracy: r.accuracy,
                latency_ms: None,
                params: r.params,
                flops: r.flops,
            })
            .collect();
        (c, None)
    };
    let selection = select(&candidates, budget)?;
    let view = |i: usize| {
        let c = &candidates[i];
        SelectedSubModel {
            sub_model: c.name.clone(),
            accuracy: c.accuracy,
            relative: if full_accuracy > 0.0 { c.accuracy / full_accuracy } else { 0.0 },
            latency_ms: c.latency_ms,
            params: c.params,
            flops: c.flops,
        }
    };
    let outcome = SelectOutcome {
        budget,
        latency_source,
        chosen: view(selection.chosen),
        next_better: selection.next_better.map(view),
        n_fitting: selection.n_fitting,
        n_sub_models: candidates.len(),
        front_len: selection.front.len(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome).expect("outcome serialises"));
    } else if !ctx.quiet {
        println!("{}", outcome.explain(&args.run));
    }
    Ok(outcome)
}
