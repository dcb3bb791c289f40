//! Seeded sub-model samplers: pure functions of `(seed, step)`.

use std::fmt::Debug;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
pub use sorted_nn::SubModelSpace;
use sorted_nn::{NestingSpace, SubModel};

use crate::ConfigError;

/// Draws the sub-models trained at one optimizer step.
///
/// Every implementation is a pure function of its seed and `step` (a ChaCha8 stream per step), so
/// sampling needs no mutable state, a resumed run continues the same sequence, and
/// `sample(step)` may be called from `&self` contexts such as Burn's `TrainStep`.
///
/// `S` is the sub-model type of the space: [`SubModel`] (per-block widths, the default) or
/// [`TransformerSubModel`](sorted_nn::TransformerSubModel) (depth x heads x FFN x hidden).
pub trait Sampler<S = SubModel>: Debug + Send + Sync {
    /// The sub-models of step `step`, in the order they are trained.
    fn sample(&self, step: u64) -> Vec<S>;
    /// How many sub-models each step draws.
    fn k(&self) -> usize;
}

/// A sub-model drawn uniformly along each axis independently ([`UniformOver::Axes`]): one loop
/// for every [`SubModelSpace`].
fn draw_per_axis<Sp: SubModelSpace>(space: &Sp, rng: &mut ChaCha8Rng) -> Sp::SubModel {
    let mut drawn = Vec::new();
    while let Some(n) = space.next_axis_options(&drawn) {
        drawn.push(rng.random_range(0..n));
    }
    space.sub_model_from_axes(&drawn)
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

/// `[sampler.fixed]`: one chosen sub-model every step (train a truncated model alone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedSamplerConfig {
    /// The sub-model, in the space's text form (`64-128-32`, `L3-H6-F768`, `smallest`, ...).
    pub sub_model: String,
}

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
    /// [`FixedSampler`].
    Fixed(FixedSamplerConfig),
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
            SamplerConfig::Fixed(_) => "fixed",
        }
    }

    /// Validates the config against `space` and builds the sampler.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key (`sampler.uniform.k`, `sampler.weighted.depth_weights`, ...)
    /// when `k` is 0 (or below 2 for sandwich) or above [`MAX_K`], or weights have the wrong length, are negative,
    /// or sum to zero.
    pub fn build(&self, space: &NestingSpace, seed: u64) -> Result<Box<dyn Sampler>, ConfigError> {
        let SamplerConfig::Weighted(c) = self else {
            return self.build_for(space, seed);
        };
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
        Ok(Box::new(WeightedSampler {
            space: space.clone(),
            seed,
            k: c.k,
            include_full: c.include_full,
            depth_weights: c.depth_weights.clone(),
            width_weights: c.width_weights.clone(),
        }))
    }

    /// Builds the sampler over any [`SubModelSpace`] (for example a
    /// [`TransformerSpace`](sorted_nn::TransformerSpace)). Every kind but `weighted`, whose
    /// per-block width weights only [`SamplerConfig::build`] understands, works on every space.
    ///
    /// # Errors
    /// As [`SamplerConfig::build`]; `weighted` is refused naming `sampler.weighted`, and a
    /// `fixed` sub-model that is not in the space names `sampler.fixed.sub_model`.
    pub fn build_for<Sp: SubModelSpace>(
        &self,
        space: &Sp,
        seed: u64,
    ) -> Result<Box<dyn Sampler<Sp::SubModel>>, ConfigError> {
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
            SamplerConfig::Weighted(_) => {
                return Err(ConfigError::new(
                    "sampler.weighted",
                    "a per-block width space (weighted sampling has depth and width weights only)",
                    "a space with other axes; use sampler.uniform with over = \"axes\"",
                ));
            }
            SamplerConfig::All(_) => Box::new(AllSampler { space: space.clone() }),
            SamplerConfig::Full(_) => Box::new(FullSampler { space: space.clone() }),
            SamplerConfig::Fixed(c) => {
                let sub = space
                    .parse(&c.sub_model)
                    .map_err(|e| ConfigError::new("sampler.fixed.sub_model", "a sub-model of the space", e))?;
                Box::new(FixedSampler { sub })
            }
        })
    }
}

/// The most sub-models a step may sample: a step runs one forward and backward pass per sampled
/// sub-model, so more is never useful, and an unbounded `k` would allocate without limit.
pub const MAX_K: usize = 1024;

/// `k` must be in `min..=MAX_K`. A `k` above the space's number of sub-models is allowed (the
/// samplers draw with replacement); the runner warns about it.
fn check_k(key: &str, k: usize, min: usize) -> Result<(), ConfigError> {
    if k < min {
        Err(ConfigError::new(key, format!("at least {min}"), k))
    } else if k > MAX_K {
        Err(ConfigError::new(key, format!("at most {MAX_K} (one forward and backward pass each per step)"), k))
    } else {
        Ok(())
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

/// A step's `k` sub-models: `first` (those every step starts with, in order), then calls of
/// `draw` until there are `k`. `draw` is called in order, so a step's draws come from its stream
/// exactly as a loop would take them.
fn fill_up<S>(first: impl IntoIterator<Item = S>, k: usize, mut draw: impl FnMut() -> S) -> Vec<S> {
    let mut out = Vec::with_capacity(k);
    out.extend(first);
    while out.len() < k {
        out.push(draw());
    }
    out
}

fn draw_uniform<Sp: SubModelSpace>(space: &Sp, over: UniformOver, rng: &mut ChaCha8Rng) -> Sp::SubModel {
    match over {
        UniformOver::SubModels => space.nth_sub_model(rng.random_range(0..space.count())),
        UniformOver::Axes => draw_per_axis(space, rng),
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
pub struct UniformSampler<Sp: SubModelSpace = NestingSpace> {
    space: Sp,
    seed: u64,
    k: usize,
    include_full: bool,
    over: UniformOver,
}

impl<Sp: SubModelSpace> Sampler<Sp::SubModel> for UniformSampler<Sp> {
    fn sample(&self, step: u64) -> Vec<Sp::SubModel> {
        let mut rng = rng(self.seed, step);
        let full = self.include_full.then(|| self.space.largest_sub_model());
        fill_up(full, self.k, || draw_uniform(&self.space, self.over, &mut rng))
    }

    fn k(&self) -> usize {
        self.k
    }
}

/// The sandwich rule: the largest and the smallest sub-model every step, plus `k - 2` uniform
/// ones.
#[derive(Clone, Debug)]
pub struct SandwichSampler<Sp: SubModelSpace = NestingSpace> {
    space: Sp,
    seed: u64,
    k: usize,
    over: UniformOver,
}

impl<Sp: SubModelSpace> Sampler<Sp::SubModel> for SandwichSampler<Sp> {
    fn sample(&self, step: u64) -> Vec<Sp::SubModel> {
        let mut rng = rng(self.seed, step);
        let ends = [self.space.largest_sub_model(), self.space.smallest_sub_model()];
        fill_up(ends, self.k, || draw_uniform(&self.space, self.over, &mut rng))
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
        let full = self.include_full.then(|| self.space.largest_sub_model());
        fill_up(full, self.k, || {
            let depth = self.space.depths()[draw_weighted(&self.depth_weights, &mut rng)];
            let indices: Vec<usize> = if self.space.tie_widths() {
                vec![draw_weighted(&self.width_weights, &mut rng); depth]
            } else {
                (0..depth).map(|_| draw_weighted(&self.width_weights, &mut rng)).collect()
            };
            self.space.sub_model_from_indices(&indices).expect("indices in range")
        })
    }

    fn k(&self) -> usize {
        self.k
    }
}

/// Every sub-model of the space at every step, in enumeration order.
#[derive(Clone, Debug)]
pub struct AllSampler<Sp: SubModelSpace = NestingSpace> {
    space: Sp,
}

impl<Sp: SubModelSpace> Sampler<Sp::SubModel> for AllSampler<Sp> {
    fn sample(&self, _step: u64) -> Vec<Sp::SubModel> {
        (0..self.space.count()).map(|i| self.space.nth_sub_model(i)).collect()
    }

    fn k(&self) -> usize {
        self.space.count()
    }
}

/// Only the full model: ordinary (non-nested) training, the baseline to compare against.
#[derive(Clone, Debug)]
pub struct FullSampler<Sp: SubModelSpace = NestingSpace> {
    space: Sp,
}

impl<Sp: SubModelSpace> Sampler<Sp::SubModel> for FullSampler<Sp> {
    fn sample(&self, _step: u64) -> Vec<Sp::SubModel> {
        vec![self.space.largest_sub_model()]
    }

    fn k(&self) -> usize {
        1
    }
}

/// One chosen sub-model every step: trains a truncated model on its own (the "alone" baseline
/// of a space whose allocation is fixed, such as a pretrained encoder).
#[derive(Clone, Debug)]
pub struct FixedSampler<S> {
    sub: S,
}

impl<S: Clone + Debug + Send + Sync> Sampler<S> for FixedSampler<S> {
    fn sample(&self, _step: u64) -> Vec<S> {
        vec![self.sub.clone()]
    }

    fn k(&self) -> usize {
        1
    }
}
