//! The most accurate sub-model under a budget, and why: [`select`] with each index turned into
//! the sub-model's figures, ready to print or serialise.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Budget, Candidate, CostAxis, DeployError, select};

/// One candidate as a [`BudgetChoice`] reports it.
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

impl SelectedSubModel {
    /// `candidate`'s figures, its accuracy relative to `full_accuracy` (0 when that is not
    /// positive).
    pub fn new(candidate: &Candidate, full_accuracy: f64) -> Self {
        Self {
            sub_model: candidate.name.clone(),
            accuracy: candidate.accuracy,
            relative: if full_accuracy > 0.0 { candidate.accuracy / full_accuracy } else { 0.0 },
            latency_ms: candidate.latency_ms,
            params: candidate.params,
            flops: candidate.flops,
        }
    }

    fn describe(&self) -> String {
        let mut t = format!(
            "accuracy {:.2}% ({:.1}% of the full model), {} params, {:.3} MFLOPs",
            100.0 * self.accuracy,
            100.0 * self.relative,
            self.params,
            self.flops as f64 / 1e6
        );
        if let Some(ms) = self.latency_ms {
            let _ = write!(t, ", {ms:.4} ms");
        }
        t
    }
}

/// The most accurate sub-model within a budget, the front point the budget ruled out, and how
/// many sub-models fit: what a deployment picks for one device, with its reason.
///
/// ```
/// use sorted_zoo::deploy::{Budget, BudgetChoice, Candidate};
///
/// let c = |name: &str, accuracy, flops| Candidate { name: name.into(), accuracy, latency_ms: None, params: 0, flops };
/// let all = [c("4", 0.80, 10), c("8", 0.90, 20), c("16", 0.95, 40)];
/// let choice = BudgetChoice::new(&all, Budget::flops(25), 0.95, None)?;
/// assert_eq!(choice.chosen.sub_model, "8");
/// assert_eq!(choice.next_better.as_ref().map(|s| s.sub_model.as_str()), Some("16"));
/// assert!(choice.explain().starts_with("best under FLOPs <= 25: 8\n"));
/// # Ok::<(), sorted_zoo::deploy::DeployError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetChoice {
    /// The budget.
    pub budget: Budget,
    /// Where the latencies were measured, as the caller describes it (`None` for parameter and
    /// FLOPs budgets).
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

impl BudgetChoice {
    /// Picks the most accurate of `candidates` within `budget` ([`select`]); `full_accuracy`
    /// is what the relative accuracies are shares of, `latency_source` is kept as given.
    ///
    /// # Errors
    /// As [`select`]: no candidates, bad costs or accuracies, or nothing fits.
    pub fn new(
        candidates: &[Candidate],
        budget: Budget,
        full_accuracy: f64,
        latency_source: Option<String>,
    ) -> Result<Self, DeployError> {
        let selection = select(candidates, budget)?;
        let view = |i: usize| SelectedSubModel::new(&candidates[i], full_accuracy);
        Ok(Self {
            budget,
            latency_source,
            chosen: view(selection.chosen),
            next_better: selection.next_better.map(view),
            n_fitting: selection.n_fitting,
            n_sub_models: candidates.len(),
            front_len: selection.front.len(),
        })
    }

    /// The choice and its reason as lines of text, each ending in a newline: the chosen
    /// sub-model and its figures, the next better front point and what it needs (or that the
    /// budget is not binding), and how many sub-models fit.
    pub fn explain(&self) -> String {
        let axis = self.budget.axis;
        let mut s = format!("best under {}: {}\n", self.budget, self.chosen.sub_model);
        if let Some(src) = &self.latency_source {
            let _ = writeln!(s, "  latencies: {src}");
        }
        let _ = writeln!(s, "  {}", self.chosen.describe());
        match &self.next_better {
            Some(n) => {
                let cost = match axis {
                    CostAxis::LatencyMs => n.latency_ms.unwrap_or(f64::NAN),
                    CostAxis::Params => n.params as f64,
                    CostAxis::Flops => n.flops as f64,
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
        s
    }
}
