//! Seeded sub-model samplers: pure functions of `(seed, step)`.

use std::fmt::Debug;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sorted_nn::{NestingSpace, SubModel};

use crate::ConfigError;

/// Draws the sub-models trained at one optimizer step.
///
/// Every implementation is a pure function of its seed and `step` (a ChaCha8 stream per step), so
/// sampling needs no mutable state, a resumed run continues the same sequence, and
/// `sample(step)` may be called from `&self` contexts such as Burn's `TrainStep`.
pub trait Sampler: Debug + Send + Sync {
    /// The sub-models of step `step`, in the order they are trained.
    fn sample(&self, step: u64) -> Vec<SubModel>;
    /// How many sub-models each step draws.
    fn k(&self) -> usize;
}

fn rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step);
    rng
}

/// What "uniform" is uniform over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniformOver {
    /// Every sub-model of the space equally likely (so depths with more width combinations are
    /// drawn more often).
    #[default]
    SubModels,
    /// Each axis independently: a uniform depth option, then a uniform width option per active
    /// block (or one tied option).
    Axes,
}

/// `[sampler.uniform]`: SortedNet's sampler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniformSamplerConfig {
    /// Sub-models per optimizer step.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Always train the full model as one of the `k`.
    #[serde(default)]
    pub include_full: bool,
    /// Uniform over sub-models or over axes.
    #[serde(default)]
    pub over: UniformOver,
}

/// `[sampler.sandwich]`: the largest, the smallest and `k - 2` uniform sub-models (US-Nets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandwichSamplerConfig {
    /// Sub-models per optimizer step (at least 2).
    #[serde(default = "default_k")]
    pub k: usize,
    /// What the random middle sub-models are uniform over.
    #[serde(default)]
    pub over: UniformOver,
}

/// `[sampler.weighted]`: per-option probabilities along each axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedSamplerConfig {
    /// Sub-models per optimizer step.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Relative weight of each depth option.
    pub depth_weights: Vec<f64>,
    /// Relative weight of each width option (every block must have this many options).
    pub width_weights: Vec<f64>,
    /// Always train the full model as one of the `k`.
    #[serde(default)]
    pub include_full: bool,
}

/// `[sampler.all]`: every sub-model of the space at every step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllSamplerConfig {}

/// `[sampler.full]`: only the full model (ordinary training, the baseline).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullSamplerConfig {}

fn default_k() -> usize {
    4
}

/// The sampler of an experiment (`[sampler.<kind>]` in TOML, externally tagged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SamplerConfig {
    /// [`UniformSampler`].
    Uniform(UniformSamplerConfig),
    /// [`SandwichSampler`].
    Sandwich(SandwichSamplerConfig),
    /// [`WeightedSampler`].
    Weighted(WeightedSamplerConfig),
    /// [`AllSampler`].
    All(AllSamplerConfig),
    /// [`FullSampler`].
    Full(FullSamplerConfig),
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig::Uniform(UniformSamplerConfig {
            k: default_k(),
            include_full: false,
            over: UniformOver::SubModels,
        })
    }
}

impl SamplerConfig {
    /// The kind's name as written in configs (`uniform`, `sandwich`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            SamplerConfig::Uniform(_) => "uniform",
            SamplerConfig::Sandwich(_) => "sandwich",
            SamplerConfig::Weighted(_) => "weighted",
            SamplerConfig::All(_) => "all",
            SamplerConfig::Full(_) => "full",
        }
    }

    /// Validates the config against `space` and builds the sampler.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key (`sampler.uniform.k`, `sampler.weighted.depth_weights`, ...)
    /// when `k` is 0 (or below 2 for sandwich), or weights have the wrong length, are negative,
    /// or sum to zero.
    pub fn build(&self, space: &NestingSpace, seed: u64) -> Result<Box<dyn Sampler>, ConfigError> {
        let check_k = |key: &str, k: usize, min: usize| {
            if k < min { Err(ConfigError::new(key, format!("at least {min}"), k)) } else { Ok(()) }
        };
        Ok(match self {
            SamplerConfig::Uniform(c) => {
                check_k("sampler.uniform.k", c.k, 1)?;
                Box::new(UniformSampler {
                    space: space.clone(),
                    seed,
                    k: c.k,
                    include_full: c.include_full,
                    over: c.over,
                })
            }
            SamplerConfig::Sandwich(c) => {
                check_k("sampler.sandwich.k", c.k, 2)?;
                Box::new(SandwichSampler { space: space.clone(), seed, k: c.k, over: c.over })
            }
            SamplerConfig::Weighted(c) => {
                check_k("sampler.weighted.k", c.k, 1)?;
                let n_width = space.block_widths(0).len();
                if let Some(b) = (0..space.n_blocks()).find(|&b| space.block_widths(b).len() != n_width) {
                    return Err(ConfigError::new(
                        "sampler.weighted.width_weights",
                        "a space whose blocks all have the same number of width options",
                        format!("block {b} has {} options, block 0 has {n_width}", space.block_widths(b).len()),
                    ));
                }
                check_weights("sampler.weighted.depth_weights", &c.depth_weights, space.depths().len())?;
                check_weights("sampler.weighted.width_weights", &c.width_weights, n_width)?;
                Box::new(WeightedSampler {
                    space: space.clone(),
                    seed,
                    k: c.k,
                    include_full: c.include_full,
                    depth_weights: c.depth_weights.clone(),
                    width_weights: c.width_weights.clone(),
                })
            }
            SamplerConfig::All(_) => Box::new(AllSampler { space: space.clone() }),
            SamplerConfig::Full(_) => Box::new(FullSampler { space: space.clone() }),
        })
    }
}

fn check_weights(key: &str, weights: &[f64], n: usize) -> Result<(), ConfigError> {
    if weights.len() != n {
        return Err(ConfigError::new(
            key,
            format!("{n} weights (one per option)"),
            format!("{} weights", weights.len()),
        ));
    }
    if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
        return Err(ConfigError::new(key, "finite weights >= 0", w));
    }
    if weights.iter().sum::<f64>() <= 0.0 {
        return Err(ConfigError::new(key, "weights with a positive sum", "all zero"));
    }
    Ok(())
}

fn draw_uniform(space: &NestingSpace, over: UniformOver, rng: &mut ChaCha8Rng) -> SubModel {
    match over {
        UniformOver::SubModels => space.nth(rng.random_range(0..space.len())),
        UniformOver::Axes => {
            let depth = space.depths()[rng.random_range(0..space.depths().len())];
            let indices: Vec<usize> = if space.tie_widths() {
                vec![rng.random_range(0..space.block_widths(0).len()); depth]
            } else {
                (0..depth).map(|b| rng.random_range(0..space.block_widths(b).len())).collect()
            };
            space.sub_model_from_indices(&indices).expect("indices drawn in range")
        }
    }
}

fn draw_weighted(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.iter().rposition(|w| *w > 0.0).expect("positive sum")
}

/// SortedNet's sampler: `k` sub-models drawn uniformly (with replacement) each step, optionally
/// with the full model always first.
///
/// # Example
/// ```
/// use sorted_nn::{NestingSpace, NestingSpaceConfig};
/// use sorted_sched::{Sampler, SamplerConfig};
///
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1, 2, 3],
///     widths: Some(vec![8, 16, 32]),
///     block_widths: None,
///     tie_widths: false,
/// })?;
/// let sampler = SamplerConfig::default().build(&space, 42).unwrap();
/// assert_eq!(sampler.k(), 4);
/// // A pure function of (seed, step): the same step always gives the same sub-models.
/// assert_eq!(sampler.sample(7), sampler.sample(7));
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Clone, Debug)]
pub struct UniformSampler {
    space: NestingSpace,
    seed: u64,
    k: usize,
    include_full: bool,
    over: UniformOver,
}

impl Sampler for UniformSampler {
    fn sample(&self, step: u64) -> Vec<SubModel> {
        let mut rng = rng(self.seed, step);
        let mut out = Vec::with_capacity(self.k);
        if self.include_full {
            out.push(self.space.largest());
        }
        while out.len() < self.k {
            out.push(draw_uniform(&self.space, self.over, &mut rng));
        }
        out
    }

    fn k(&self) -> usize {
        self.k
    }
}

/// The sandwich rule: the largest and the smallest sub-model every step, plus `k - 2` uniform
/// ones.
#[derive(Clone, Debug)]
pub struct SandwichSampler {
    space: NestingSpace,
    seed: u64,
    k: usize,
    over: UniformOver,
}

impl Sampler for SandwichSampler {
    fn sample(&self, step: u64) -> Vec<SubModel> {
        let mut rng = rng(self.seed, step);
        let mut out = vec![self.space.largest(), self.space.smallest()];
        while out.len() < self.k {
            out.push(draw_uniform(&self.space, self.over, &mut rng));
        }
        out
    }

    fn k(&self) -> usize {
        self.k
    }
}

/// Per-axis weighted sampling: a depth option by `depth_weights`, then a width option per active
/// block (one tied option if widths are tied) by `width_weights`.
#[derive(Clone, Debug)]
pub struct WeightedSampler {
    space: NestingSpace,
    seed: u64,
    k: usize,
    include_full: bool,
    depth_weights: Vec<f64>,
    width_weights: Vec<f64>,
}

impl Sampler for WeightedSampler {
    fn sample(&self, step: u64) -> Vec<SubModel> {
        let mut rng = rng(self.seed, step);
        let mut out = Vec::with_capacity(self.k);
        if self.include_full {
            out.push(self.space.largest());
        }
        while out.len() < self.k {
            let depth = self.space.depths()[draw_weighted(&self.depth_weights, &mut rng)];
            let indices: Vec<usize> = if self.space.tie_widths() {
                vec![draw_weighted(&self.width_weights, &mut rng); depth]
            } else {
                (0..depth).map(|_| draw_weighted(&self.width_weights, &mut rng)).collect()
            };
            out.push(self.space.sub_model_from_indices(&indices).expect("indices in range"));
        }
        out
    }

    fn k(&self) -> usize {
        self.k
    }
}

/// Every sub-model of the space at every step, in enumeration order.
#[derive(Clone, Debug)]
pub struct AllSampler {
    space: NestingSpace,
}

impl Sampler for AllSampler {
    fn sample(&self, _step: u64) -> Vec<SubModel> {
        self.space.iter().collect()
    }

    fn k(&self) -> usize {
        self.space.len()
    }
}

/// Only the full model: ordinary (non-nested) training, the baseline to compare against.
#[derive(Clone, Debug)]
pub struct FullSampler {
    space: NestingSpace,
}

impl Sampler for FullSampler {
    fn sample(&self, _step: u64) -> Vec<SubModel> {
        vec![self.space.largest()]
    }

    fn k(&self) -> usize {
        1
    }
}
