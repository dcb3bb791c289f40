//! Learning-rate schedules: pure functions of the step.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// How the learning rate decays after warm-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    /// No decay.
    Constant,
    /// Half-cosine from the base rate to `base * final_ratio`.
    #[default]
    Cosine,
    /// Linear from the base rate to `base * final_ratio`.
    Linear,
}

/// `[lr]`: base learning rate, linear warm-up, then decay.
///
/// ```
/// use sorted_sched::{Decay, LrSchedule};
/// let s = LrSchedule { base: 1.0, warmup_steps: 10, decay: Decay::Cosine, final_ratio: 0.0 };
/// assert_eq!(s.lr(0, 110), 0.1);   // warm-up: (step + 1) / warmup_steps
/// assert_eq!(s.lr(10, 110), 1.0);  // decay starts at the base rate
/// assert!(s.lr(109, 110) < 1e-3);  // and ends near base * final_ratio
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    /// The base (peak) learning rate.
    pub base: f64,
    /// Linear warm-up steps.
    #[serde(default)]
    pub warmup_steps: u64,
    /// Decay after warm-up.
    #[serde(default)]
    pub decay: Decay,
    /// The final learning rate as a fraction of `base`.
    #[serde(default)]
    pub final_ratio: f64,
}

impl LrSchedule {
    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError`] for a non-positive base rate or a `final_ratio` outside `[0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.base > 0.0 && self.base.is_finite()) {
            return Err(ConfigError::new("lr.base", "a finite learning rate > 0", self.base));
        }
        if !(0.0..=1.0).contains(&self.final_ratio) {
            return Err(ConfigError::new("lr.final_ratio", "a value in [0, 1]", self.final_ratio));
        }
        Ok(())
    }

    /// The learning rate of `step` (0-based) in a run of `total_steps`.
    pub fn lr(&self, step: u64, total_steps: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let end = self.base * self.final_ratio;
        match self.decay {
            Decay::Constant => self.base,
            Decay::Linear => self.base + (end - self.base) * t,
            Decay::Cosine => end + (self.base - end) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
        }
    }
}
