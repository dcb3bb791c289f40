//! The accuracy/cost Pareto front and the best sub-model under a budget.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DeployError;

/// One sub-model as the selector sees it: its name, accuracy and costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The sub-model (widths joined by `-`).
    pub name: String,
    /// Accuracy (or any quality score where higher is better).
    pub accuracy: f64,
    /// Measured latency in milliseconds, when profiled.
    pub latency_ms: Option<f64>,
    /// Trainable parameters.
    pub params: u64,
    /// FLOPs per sample.
    pub flops: u64,
}

/// What a budget limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostAxis {
    /// Measured latency, milliseconds.
    LatencyMs,
    /// Parameters.
    Params,
    /// FLOPs per sample.
    Flops,
}

impl CostAxis {
    /// The axis' name in messages (`latency`, `params`, `FLOPs`).
    pub fn name(self) -> &'static str {
        match self {
            CostAxis::LatencyMs => "latency",
            CostAxis::Params => "params",
            CostAxis::Flops => "FLOPs",
        }
    }

    /// A candidate's cost on this axis.
    ///
    /// # Errors
    /// [`DeployError::BadCost`] when the latency is missing or not a finite, non-negative number.
    pub fn cost(self, c: &Candidate) -> Result<f64, DeployError> {
        let value = match self {
            CostAxis::LatencyMs => c.latency_ms.ok_or_else(|| DeployError::BadCost {
                name: c.name.clone(),
                axis: self.name(),
                what: "missing (profile the model first)".into(),
            })?,
            CostAxis::Params => c.params as f64,
            CostAxis::Flops => c.flops as f64,
        };
        if !value.is_finite() || value < 0.0 {
            return Err(DeployError::BadCost { name: c.name.clone(), axis: self.name(), what: format!("{value}") });
        }
        Ok(value)
    }

    /// A cost on this axis as text (`1.234 ms`, `12.3k params`, `4.56M FLOPs`).
    pub fn format(self, value: f64) -> String {
        match self {
            CostAxis::LatencyMs => format!("{value:.4} ms"),
            CostAxis::Params => format!("{} params", si(value)),
            CostAxis::Flops => format!("{} FLOPs", si(value)),
        }
    }
}

fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.3}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// An upper limit on one cost axis.
///
/// ```
/// use sorted_zoo::deploy::{Budget, CostAxis};
///
/// let b = Budget::latency_ms(2.5);
/// assert_eq!(b.axis, CostAxis::LatencyMs);
/// assert_eq!(b.to_string(), "latency <= 2.5000 ms");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// What is limited.
    pub axis: CostAxis,
    /// The largest accepted cost (inclusive).
    pub max: f64,
}

impl Budget {
    /// At most `ms` milliseconds of measured latency.
    pub fn latency_ms(ms: f64) -> Self {
        Self { axis: CostAxis::LatencyMs, max: ms }
    }

    /// At most `n` parameters.
    pub fn params(n: u64) -> Self {
        Self { axis: CostAxis::Params, max: n as f64 }
    }

    /// At most `n` FLOPs per sample.
    pub fn flops(n: u64) -> Self {
        Self { axis: CostAxis::Flops, max: n as f64 }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.axis {
            CostAxis::LatencyMs => write!(f, "latency <= {:.4} ms", self.max),
            CostAxis::Params => write!(f, "params <= {}", si(self.max)),
            CostAxis::Flops => write!(f, "FLOPs <= {}", si(self.max)),
        }
    }
}

/// The result of [`select`]: indices into the candidate slice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The most accurate candidate within the budget (the cheapest such one on ties).
    pub chosen: usize,
    /// The next point of the front: more accurate, but over the budget (`None` when the chosen
    /// one is the most accurate of all).
    pub next_better: Option<usize>,
    /// The Pareto front on the budget's axis, cheapest first.
    pub front: Vec<usize>,
    /// How many candidates fit the budget.
    pub n_fitting: usize,
}

fn checked_costs(candidates: &[Candidate], axis: CostAxis) -> Result<Vec<f64>, DeployError> {
    if candidates.is_empty() {
        return Err(DeployError::NoCandidates);
    }
    candidates
        .iter()
        .map(|c| {
            if !c.accuracy.is_finite() {
                return Err(DeployError::BadAccuracy { name: c.name.clone(), accuracy: c.accuracy });
            }
            axis.cost(c)
        })
        .collect()
}

/// The candidates no other candidate beats on both cost and accuracy, cheapest first.
///
/// Along the returned front, cost rises and accuracy strictly rises. Of candidates with equal
/// cost and accuracy, the first in the slice is kept.
///
/// # Errors
/// No candidates, a missing or non-finite cost, or a non-finite accuracy.
///
/// ```
/// use sorted_zoo::deploy::{Candidate, CostAxis, pareto_front};
///
/// let c = |name: &str, accuracy, flops| Candidate { name: name.into(), accuracy, latency_ms: None, params: 0, flops };
/// let all = [c("a", 0.90, 10), c("b", 0.85, 20), c("c", 0.95, 30)];
/// assert_eq!(pareto_front(&all, CostAxis::Flops)?, [0, 2]); // "b" costs more than "a" and is worse
/// # Ok::<(), sorted_zoo::deploy::DeployError>(())
/// ```
pub fn pareto_front(candidates: &[Candidate], axis: CostAxis) -> Result<Vec<usize>, DeployError> {
    let costs = checked_costs(candidates, axis)?;
    Ok(front_of(candidates, &costs))
}

fn front_of(candidates: &[Candidate], costs: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // Cheapest first; among equal costs the most accurate first; then input order.
    order.sort_by(|&a, &b| {
        costs[a].total_cmp(&costs[b]).then(candidates[b].accuracy.total_cmp(&candidates[a].accuracy)).then(a.cmp(&b))
    });
    let mut front = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in order {
        if candidates[i].accuracy > best {
            best = candidates[i].accuracy;
            front.push(i);
        }
    }
    front
}

/// The most accurate candidate whose cost on `budget.axis` is at most `budget.max`, and the
/// front point just above it (what the budget ruled out).
///
/// The chosen candidate is always on the Pareto front: a more accurate one within the budget
/// would have been chosen, and an equally accurate cheaper one too.
///
/// # Errors
/// [`DeployError::NothingFits`] naming the cheapest candidate and its cost; bad costs or
/// accuracies as in [`pareto_front`].
///
/// ```
/// use sorted_zoo::deploy::{Budget, Candidate, select};
///
/// let c = |name: &str, accuracy, ms| Candidate { name: name.into(), accuracy, latency_ms: Some(ms), params: 0, flops: 0 };
/// let all = [c("32", 0.90, 0.1), c("64", 0.93, 0.2), c("128", 0.95, 0.4), c("64-64", 0.92, 0.3)];
/// let s = select(&all, Budget::latency_ms(0.35))?;
/// assert_eq!(all[s.chosen].name, "64");
/// assert_eq!(s.next_better.map(|i| all[i].name.as_str()), Some("128"));
/// assert_eq!(s.n_fitting, 3);
/// # Ok::<(), sorted_zoo::deploy::DeployError>(())
/// ```
pub fn select(candidates: &[Candidate], budget: Budget) -> Result<Selection, DeployError> {
    let costs = checked_costs(candidates, budget.axis)?;
    let front = front_of(candidates, &costs);
    let n_fitting = costs.iter().filter(|&&c| c <= budget.max).count();
    // The front is sorted by cost with rising accuracy: the last point that fits is the best.
    let Some(pos) = front.iter().rposition(|&i| costs[i] <= budget.max) else {
        let cheapest = front[0];
        return Err(DeployError::NothingFits {
            budget: budget.to_string(),
            cheapest: candidates[cheapest].name.clone(),
            cheapest_cost: budget.axis.format(costs[cheapest]),
        });
    };
    Ok(Selection { chosen: front[pos], next_better: front.get(pos + 1).copied(), front, n_fitting })
}
