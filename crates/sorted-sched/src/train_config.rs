//! `[train]`: how long a run trains and how each step combines its sub-models' losses.

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: u64,
    /// Draw a fresh batch for each sampled sub-model (true) or share one batch across the `k`
    /// sub-models of a step (false).
    #[serde(default)]
    pub fresh_batches: bool,
    /// Loss weight per sampled sub-model (normalised; empty = mean of the `k` losses).
    #[serde(default)]
    pub loss_weights: Vec<f64>,
    /// How the `k` weighted losses of a step combine: their weighted mean (default) or `k`
    /// times it, the sum (what US-Nets and slimmable networks do). With SGD, `sum` at learning
    /// rate `lr` and weight decay `wd` takes the same steps as `mean` at `k * lr` and `wd / k`,
    /// and a sub-model trained alone (`k = 1`) takes the same steps in both.
    #[serde(default)]
    pub loss_reduction: LossReduction,
    /// Save a checkpoint every this many steps (0 = only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// How many checkpoint generations to keep (at least 1; default 2, so that a damaged
    /// newest one leaves one to fall back to).
    #[serde(default = "default_keep_checkpoints", skip_serializing_if = "is_default_keep_checkpoints")]
    pub keep_checkpoints: usize,
    /// Worker threads over which the `k` sub-models of a step are spread
    /// ([`accumulate_parallel`](crate::accumulate_parallel)); 1 = one after another. On the Flex CPU backend a
    /// small convolution runs on one core, so 2 threads make CNN steps up to 2x faster on 2
    /// cores. Not with switchable BatchNorm (its running statistics are updated in training).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// In-place distillation weight `a` in `[0, 1]` (US-Nets): every sampled sub-model other
    /// than the largest minimises `(1 - a) * cross-entropy(labels) + a * KL(teacher || own)`,
    /// the teacher being the largest sub-model's prediction on the same batch, without
    /// gradient ([`distillation_loss`](crate::distillation_loss)). The largest keeps the label loss. 0
    /// (default) = labels only. Costs one extra forward pass of the largest sub-model per step.
    /// Image and text classification experiments (language-model runs read it as SoFT's
    /// self-distillation weight), with one batch shared by the step (`fresh_batches = false`).
    #[serde(default)]
    pub distill: f64,
    /// Data-parallel peers (one thread each): each computes the gradients of its `1 / peers`
    /// share of every batch and the gradients are averaged with Burn's collective before the
    /// one optimizer step ([`LoopOptions::peer`](crate::LoopOptions)). Unset: one peer per
    /// entry of [`devices`](Self::devices), else 1 (no data parallelism); read it with
    /// [`TrainConfig::peers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<usize>,
    /// The device of each peer, peer `i` on `devices[i]` (names such as `cpu` or `cuda:1`,
    /// which the runner parses; this crate only counts them). Empty (default): every peer on
    /// the run's device. When both are set, `peers` must equal the number of devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
}

/// `train.loss_reduction`: how the `k` losses of a step combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReduction {
    /// The weighted mean (weights normalised to sum to 1).
    #[default]
    Mean,
    /// `k` times the weighted mean: with equal weights, the plain sum of the `k` losses.
    Sum,
}

impl LossReduction {
    /// The factor on the weighted mean for `k` sampled sub-models.
    pub fn scale(self, k: usize) -> f64 {
        match self {
            LossReduction::Mean => 1.0,
            LossReduction::Sum => k as f64,
        }
    }
}

fn default_threads() -> usize {
    1
}

fn default_keep_checkpoints() -> usize {
    crate::DEFAULT_KEEP
}

fn is_default_keep_checkpoints(keep: &usize) -> bool {
    *keep == crate::DEFAULT_KEEP
}

impl TrainConfig {
    /// The data-parallel peer count: `peers` if set, else the number of `devices`, else 1.
    pub fn peers(&self) -> usize {
        match (self.peers, self.devices.len()) {
            (Some(p), _) => p,
            (None, 0) => 1,
            (None, n) => n,
        }
    }

    /// Checks the values for a sampler drawing `k` sub-models per step: positive steps,
    /// threads, peers and kept checkpoints, `peers` agreeing with `devices`, a distillation
    /// weight in `[0, 1]` (and not with fresh batches), and `k` valid loss weights or none.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first key out of range (`train.steps`, ...).
    pub fn validate(&self, k: usize) -> Result<(), ConfigError> {
        for (key, v) in [
            ("train.steps", self.steps),
            ("train.threads", self.threads as u64),
            ("train.keep_checkpoints", self.keep_checkpoints as u64),
            ("train.peers", self.peers() as u64),
        ] {
            if v == 0 {
                return Err(ConfigError::new(key, "a value >= 1", 0));
            }
        }
        if self.peers() > 256 {
            return Err(ConfigError::new("train.peers", "at most 256 peers", self.peers()));
        }
        if let Some(peers) = self.peers
            && !self.devices.is_empty()
            && peers != self.devices.len()
        {
            return Err(ConfigError::new(
                "train.peers",
                format!(
                    "{} (one peer per entry of train.devices = {:?}), or train.peers left out",
                    self.devices.len(),
                    self.devices
                ),
                peers,
            ));
        }
        if !(0.0..=1.0).contains(&self.distill) {
            return Err(ConfigError::new("train.distill", "a weight in [0, 1]", self.distill));
        }
        if self.distill > 0.0 && self.fresh_batches {
            return Err(ConfigError::new(
                "train.distill",
                "0 with `fresh_batches = true` (the teacher predicts the batch the step shares)",
                self.distill,
            ));
        }
        let weights = &self.loss_weights;
        if !weights.is_empty() {
            if weights.len() != k {
                return Err(ConfigError::new(
                    "train.loss_weights",
                    format!("{k} weights (one per sampled sub-model) or none"),
                    format!("{} weights", weights.len()),
                ));
            }
            if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || weights.iter().sum::<f64>() <= 0.0 {
                return Err(ConfigError::new(
                    "train.loss_weights",
                    "finite weights >= 0 with a positive sum",
                    format!("{weights:?}"),
                ));
            }
        }
        Ok(())
    }
}
