//! Errors of the deployment helpers.

use sorted_nn::SpecError;

/// Why serving, profiling or selecting a sub-model failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The sub-model or space does not fit the model (or does not parse).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The sub-model is not one of the handle's space.
    #[error("sub-model {sub_model} is not in the model's space")]
    NotInSpace {
        /// The sub-model asked for.
        sub_model: String,
    },
    /// A BatchNorm model was asked for a sub-model whose statistics were never calibrated.
    #[error(
        "sub-model {sub_model} has no BatchNorm statistics: calibrate it (SortedModel::calibrate) or insert \
         saved ones (SortedModel::insert_norm_stats); a narrow sub-model must not use the full model's statistics"
    )]
    MissingNormStats {
        /// The sub-model asked for.
        sub_model: String,
    },
    /// Calibration was given no batches.
    #[error("calibrating {sub_model}: no calibration batches were given")]
    NoCalibrationData {
        /// The sub-model being calibrated.
        sub_model: String,
    },
    /// The backend failed while waiting for a timed forward pass.
    #[error("the device failed while timing a forward pass: {0}")]
    Device(String),
    /// Timing options that cannot give a measurement.
    #[error("latency options: `{key}` must be at least {min}, got {got}")]
    Options {
        /// The bad option.
        key: &'static str,
        /// The smallest accepted value.
        min: usize,
        /// The value given.
        got: usize,
    },
    /// A profile lacks the full model its rows are relative to.
    #[error("the full model ({sub_model}) was not profiled")]
    NotProfiled {
        /// The full model.
        sub_model: String,
    },
    /// A memory meter returned without running the forward pass it was given.
    #[error("the memory meter did not run the forward pass of sub-model {sub_model}")]
    NotMetered {
        /// The sub-model.
        sub_model: String,
    },
    /// A profiled sub-model has no accuracy to join its latency with.
    #[error("sub-model {sub_model} has no accuracy")]
    MissingAccuracy {
        /// The sub-model.
        sub_model: String,
    },
    /// There is nothing to select from.
    #[error("no candidate sub-models to select from")]
    NoCandidates,
    /// A candidate lacks the cost the budget is about, or it is not a finite number.
    #[error("candidate {name}: its {axis} is {what}")]
    BadCost {
        /// The candidate.
        name: String,
        /// The cost axis.
        axis: &'static str,
        /// What is wrong with it (`missing`, `NaN`, ...).
        what: String,
    },
    /// A candidate's accuracy is not a finite number.
    #[error("candidate {name}: accuracy {accuracy} is not a finite number")]
    BadAccuracy {
        /// The candidate.
        name: String,
        /// The value.
        accuracy: f64,
    },
    /// No candidate fits the budget.
    #[error("no sub-model fits {budget}: the cheapest, {cheapest}, needs {cheapest_cost}")]
    NothingFits {
        /// The budget, as text.
        budget: String,
        /// The cheapest candidate.
        cheapest: String,
        /// Its cost on the budget's axis, as text.
        cheapest_cost: String,
    },
}
