//! Optimizer configuration and the optimizer of a sorted run.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{Adam, AdamConfig, AdamW, AdamWConfig, GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder, RecorderError};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Checkpoints record at full precision: half precision wrecks Adam's second moments.
pub(crate) type StateRecorder = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// `[optimizer.sgd]`. Defaults follow PyTorch (burn's own default dampening is 0.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdOptions {
    /// Momentum factor (0 disables momentum).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Momentum dampening.
    #[serde(default)]
    pub dampening: f64,
    /// Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
}

/// `[optimizer.adam]` / `[optimizer.adamw]`. Defaults follow PyTorch (epsilon 1e-8; AdamW decay
/// 0.01), not burn's (1e-5; 1e-4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamOptions {
    /// First-moment decay.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Second-moment decay.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Numerical-stability term.
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Adam: L2 penalty added to the gradient; AdamW: decoupled weight decay (`None` = 0.01).
    #[serde(default)]
    pub weight_decay: Option<f64>,
}

fn default_momentum() -> f64 {
    0.9
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_epsilon() -> f64 {
    1e-8
}

/// The optimizer of an experiment (`[optimizer.<kind>]`, externally tagged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent with optional momentum.
    Sgd(SgdOptions),
    /// Adam.
    Adam(AdamOptions),
    /// AdamW (decoupled weight decay).
    Adamw(AdamOptions),
}

impl OptimizerConfig {
    /// The kind's name as written in configs.
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::Adamw(_) => "adamw",
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key for a momentum or beta outside `[0, 1)`, a negative
    /// epsilon or weight decay.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let unit = |key: &str, v: f64| {
            if (0.0..1.0).contains(&v) { Ok(()) } else { Err(ConfigError::new(key, "a value in [0, 1)", v)) }
        };
        let non_neg = |key: &str, v: f64| {
            if v >= 0.0 && v.is_finite() { Ok(()) } else { Err(ConfigError::new(key, "a finite value >= 0", v)) }
        };
        match self {
            OptimizerConfig::Sgd(o) => {
                unit("optimizer.sgd.momentum", o.momentum)?;
                unit("optimizer.sgd.dampening", o.dampening)?;
                non_neg("optimizer.sgd.weight_decay", o.weight_decay)
            }
            OptimizerConfig::Adam(o) | OptimizerConfig::Adamw(o) => {
                let k = self.kind();
                unit(&format!("optimizer.{k}.beta1"), o.beta1)?;
                unit(&format!("optimizer.{k}.beta2"), o.beta2)?;
                non_neg(&format!("optimizer.{k}.epsilon"), o.epsilon)?;
                non_neg(&format!("optimizer.{k}.weight_decay"), o.weight_decay.unwrap_or(0.0))
            }
        }
    }

    /// Builds the optimizer for model type `M`.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(&self) -> SortedOptimizer<M, B> {
        match self {
            OptimizerConfig::Sgd(o) => {
                let momentum = (o.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(o.momentum)
                        .with_dampening(o.dampening)
                        .with_nesterov(o.nesterov)
                });
                let decay = (o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay as f32));
                SortedOptimizer::Sgd(SgdConfig::new().with_momentum(momentum).with_weight_decay(decay).init())
            }
            OptimizerConfig::Adam(o) => {
                let decay = o.weight_decay.filter(|d| *d > 0.0).map(|d| WeightDecayConfig::new(d as f32));
                SortedOptimizer::Adam(
                    AdamConfig::new()
                        .with_beta_1(o.beta1 as f32)
                        .with_beta_2(o.beta2 as f32)
                        .with_epsilon(o.epsilon as f32)
                        .with_weight_decay(decay)
                        .init(),
                )
            }
            OptimizerConfig::Adamw(o) => SortedOptimizer::AdamW(
                AdamWConfig::new()
                    .with_beta_1(o.beta1 as f32)
                    .with_beta_2(o.beta2 as f32)
                    .with_epsilon(o.epsilon as f32)
                    .with_weight_decay(o.weight_decay.unwrap_or(0.01) as f32)
                    .init(),
            ),
        }
    }
}

/// The optimizer of a sorted run: one of burn's, chosen at run time from an
/// [`OptimizerConfig`], with full-precision save and load for exact resume.
#[derive(Clone)]
pub enum SortedOptimizer<M: AutodiffModule<B>, B: AutodiffBackend> {
    /// SGD.
    Sgd(OptimizerAdaptor<Sgd<B::InnerBackend>, M, B>),
    /// Adam.
    Adam(OptimizerAdaptor<Adam, M, B>),
    /// AdamW.
    AdamW(OptimizerAdaptor<AdamW, M, B>),
}

impl<M: AutodiffModule<B>, B: AutodiffBackend> SortedOptimizer<M, B> {
    /// One optimizer step with learning rate `lr`; returns the updated model.
    pub fn step(&mut self, lr: f64, model: M, grads: GradientsParams) -> M {
        match self {
            SortedOptimizer::Sgd(o) => o.step(lr, model, grads),
            SortedOptimizer::Adam(o) => o.step(lr, model, grads),
            SortedOptimizer::AdamW(o) => o.step(lr, model, grads),
        }
    }

    /// The kind's name (`sgd`, `adam`, `adamw`).
    pub fn kind(&self) -> &'static str {
        match self {
            SortedOptimizer::Sgd(_) => "sgd",
            SortedOptimizer::Adam(_) => "adam",
            SortedOptimizer::AdamW(_) => "adamw",
        }
    }

    /// The optimizer state at full precision, as named MessagePack (the bytes burn's
    /// `DefaultRecorder` would write to a `.mpk` file).
    ///
    /// # Errors
    /// The recorder's error when the state cannot be encoded.
    pub fn to_bytes(&self) -> Result<Vec<u8>, RecorderError> {
        let rec = StateRecorder::default();
        match self {
            SortedOptimizer::Sgd(o) => Recorder::<B>::record(&rec, o.to_record(), ()),
            SortedOptimizer::Adam(o) => Recorder::<B>::record(&rec, o.to_record(), ()),
            SortedOptimizer::AdamW(o) => Recorder::<B>::record(&rec, o.to_record(), ()),
        }
    }

    /// Loads optimizer state written by [`SortedOptimizer::to_bytes`] into this (fresh)
    /// optimizer.
    ///
    /// # Errors
    /// The recorder's error when the bytes are not the state of this optimizer kind.
    pub fn load_bytes(self, bytes: Vec<u8>, device: &B::Device) -> Result<Self, RecorderError> {
        let rec = StateRecorder::default();
        Ok(match self {
            SortedOptimizer::Sgd(o) => SortedOptimizer::Sgd(o.load_record(Recorder::<B>::load(&rec, bytes, device)?)),
            SortedOptimizer::Adam(o) => SortedOptimizer::Adam(o.load_record(Recorder::<B>::load(&rec, bytes, device)?)),
            SortedOptimizer::AdamW(o) => {
                SortedOptimizer::AdamW(o.load_record(Recorder::<B>::load(&rec, bytes, device)?))
            }
        })
    }
}
