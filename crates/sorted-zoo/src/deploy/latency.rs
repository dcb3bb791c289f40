//! Timing forward passes on the backend a model is served on.

use std::time::Instant;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::DeployError;

/// How forward passes are timed: `warmup` untimed passes, then `repeats` timed ones, each ended
/// by waiting for the device ([`Backend::sync`]), so asynchronous GPU backends are timed to
/// completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyOptions {
    /// Untimed passes first (caches, lazy compilation, allocator pools).
    pub warmup: usize,
    /// Timed passes; the median is the reported latency.
    pub repeats: usize,
}

impl Default for LatencyOptions {
    /// 5 warm-up passes, 30 timed ones.
    fn default() -> Self {
        Self { warmup: 5, repeats: 30 }
    }
}

impl LatencyOptions {
    /// Checks that the options can give a measurement (`repeats >= 1`).
    ///
    /// # Errors
    /// [`DeployError::Options`] naming the bad field.
    pub fn validate(&self) -> Result<(), DeployError> {
        if self.repeats == 0 {
            return Err(DeployError::Options { key: "repeats", min: 1, got: 0 });
        }
        Ok(())
    }
}

/// Measured wall time of one forward pass, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// The median of the timed passes (the number to compare).
    pub median_ms: f64,
    /// The fastest pass.
    pub min_ms: f64,
    /// The 90th percentile (nearest rank).
    pub p90_ms: f64,
    /// How many passes were timed.
    pub repeats: usize,
}

impl Latency {
    /// Summarises timed passes (milliseconds); `None` when there are none.
    ///
    /// ```
    /// use sorted_zoo::deploy::Latency;
    ///
    /// let l = Latency::from_samples(&[3.0, 1.0, 2.0, 10.0]).unwrap();
    /// assert_eq!((l.min_ms, l.median_ms, l.p90_ms, l.repeats), (1.0, 2.5, 10.0, 4));
    /// ```
    pub fn from_samples(samples_ms: &[f64]) -> Option<Self> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut s = samples_ms.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
        let p90 = s[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Self { median_ms: median, min_ms: s[0], p90_ms: p90, repeats: n })
    }
}

/// Times `forward` on `device`: `options.warmup` untimed calls, then `options.repeats` timed
/// ones, each waiting for the device before the clock stops.
///
/// Use it for any model, sorted or dense (the deploy bench compares the two with it).
///
/// # Errors
/// Bad options, or the device failing while synchronising.
///
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_zoo::deploy::{LatencyOptions, time_forward};
///
/// let device = Default::default();
/// let x = Tensor::<Flex, 2>::ones([64, 64], &device);
/// let l = time_forward::<Flex, 2>(&device, LatencyOptions { warmup: 1, repeats: 5 }, || x.clone().matmul(x.clone()))?;
/// assert!(l.min_ms <= l.median_ms && l.median_ms <= l.p90_ms);
/// # Ok::<(), sorted_zoo::deploy::DeployError>(())
/// ```
pub fn time_forward<B: Backend, const D: usize>(
    device: &B::Device,
    options: LatencyOptions,
    mut forward: impl FnMut() -> Tensor<B, D>,
) -> Result<Latency, DeployError> {
    options.validate()?;
    for _ in 0..options.warmup {
        drop(forward());
        sync::<B>(device)?;
    }
    let mut samples = Vec::with_capacity(options.repeats);
    for _ in 0..options.repeats {
        samples.push(time_once::<B, D>(device, &mut forward)?);
    }
    Ok(Latency::from_samples(&samples).expect("repeats >= 1"))
}

/// One timed call, in milliseconds (the device is idle before the clock starts).
pub(crate) fn time_once<B: Backend, const D: usize>(
    device: &B::Device,
    forward: &mut impl FnMut() -> Tensor<B, D>,
) -> Result<f64, DeployError> {
    sync::<B>(device)?;
    let start = Instant::now();
    let out = forward();
    sync::<B>(device)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    drop(out);
    Ok(ms)
}

pub(crate) fn sync<B: Backend>(device: &B::Device) -> Result<(), DeployError> {
    B::sync(device).map_err(|e| DeployError::Device(format!("{e:?}")))
}
