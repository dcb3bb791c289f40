//! `select`: the most accurate sub-model under a budget, and why.

use std::path::{Path, PathBuf};

use anyhow::Context;
pub use sorted_zoo::deploy::BudgetChoice as SelectOutcome;
use sorted_zoo::deploy::{Budget, Candidate, WeightLayout};

use crate::cli::SelectArgs;
use crate::device::DeviceKind;
use crate::profile::{ProfileReport, profile_dir};
use crate::provenance::RunContext;
use crate::report::RunReport;

/// The explanation printed by the command: the zoo's [`SelectOutcome::explain`] and the
/// command that exports the chosen sub-model of `run`.
pub fn explain(outcome: &SelectOutcome, run: &Path) -> String {
    format!(
        "{}  export it: sorted-runner export --run {} --sub-model {}",
        outcome.explain(),
        run.display(),
        outcome.chosen.sub_model
    )
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
    let outcome = SelectOutcome::new(&candidates, budget, full_accuracy, latency_source)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome).expect("outcome serialises"));
    } else if !ctx.quiet {
        println!("{}", explain(&outcome, &args.run));
    }
    Ok(outcome)
}
