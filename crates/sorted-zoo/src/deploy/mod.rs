//! Serving a sorted model: one weight set, any sub-model per call, latency measured on the
//! device it runs on, and the best sub-model under a budget.
//!
//! - [`SortedModel`]: the handle (runtime switching, BatchNorm statistics per sub-model), and
//!   [`WeightLayout`], the memory order it keeps its linear weights in.
//! - [`LatencyOptions`], [`Latency`], [`time_forward`]: timing forward passes on a backend.
//! - [`Candidate`], [`Budget`], [`pareto_front`], [`select`]: the accuracy/cost front and
//!   budget selection; [`BudgetChoice`], the choice with its reason.
//! - [`SortedModel::time_sub_models`], [`LatencyProfile`]: every sub-model profiled, with its
//!   accuracy, against FLOPs and on the latency/accuracy front.

mod budget;
mod choice;
mod error;
mod latency;
mod latency_stats;
mod profile;
mod sorted_model;
mod weight_layout;

pub use budget::{Budget, Candidate, CostAxis, Selection, pareto_front, select};
pub use choice::{BudgetChoice, SelectedSubModel};
pub use error::DeployError;
pub use latency::{Latency, LatencyOptions, time_forward};
pub use latency_stats::{LatencyFit, RatioSummary, median_of_sorted, spearman};
pub use profile::{LatencyProfile, OUTLIER_FACTOR, ProfileRow, SubModelTiming};
pub use sorted_model::SortedModel;
pub use weight_layout::WeightLayout;
