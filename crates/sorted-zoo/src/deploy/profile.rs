//! Profiling every sub-model of a served model: its latency (optionally beside its dense copy)
//! and costs, joined with its accuracy into rows, and what the rows say together (latency
//! against FLOPs, the latency/accuracy Pareto front).

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sorted_nn::{Cost, SubModel};

use super::{
    Candidate, CostAxis, DeployError, Latency, LatencyFit, LatencyOptions, RatioSummary, SortedModel, median_of_sorted,
    pareto_front, spearman,
};
use crate::SortedClassifier;

/// A ratio of ratios outside `[1 / OUTLIER_FACTOR, OUTLIER_FACTOR]` is listed as an outlier.
pub const OUTLIER_FACTOR: f64 = 2.0;

/// One sub-model as measured by [`SortedModel::time_sub_models`], before its accuracy is known.
#[derive(Clone, Debug, PartialEq)]
pub struct SubModelTiming {
    /// The sub-model.
    pub sub: SubModel,
    /// Its analytic parameters and FLOPs per sample.
    pub cost: Cost,
    /// Measured latency of one forward pass.
    pub latency: Latency,
    /// Latency of its dense copy, timed interleaved with `latency` (when asked for).
    pub dense_latency: Option<Latency>,
    /// Peak bytes allocated during one forward pass, where the caller measured them (the
    /// library cannot: it needs a counting global allocator).
    pub peak_bytes: Option<u64>,
}

impl<B: Backend, M: SortedClassifier<B>> SortedModel<B, M> {
    /// Times every sub-model of `subs` on `images` ([`SortedModel::profile`]), or, with
    /// `compare_dense`, each beside its dense copy ([`SortedModel::compare_with_dense`]), in the
    /// order of `subs`. `peak_bytes` is left empty.
    ///
    /// # Errors
    /// As [`SortedModel::profile`] and [`SortedModel::compare_with_dense`].
    pub fn time_sub_models(
        &self,
        images: &Tensor<B, 4>,
        subs: &[SubModel],
        options: LatencyOptions,
        compare_dense: bool,
    ) -> Result<Vec<SubModelTiming>, DeployError> {
        let (latencies, dense): (Vec<Latency>, Vec<Option<Latency>>) = if compare_dense {
            self.compare_with_dense(images, subs, options)?.into_iter().map(|(s, d)| (s, Some(d))).unzip()
        } else {
            (self.profile(images, subs, options)?, vec![None; subs.len()])
        };
        Ok(subs
            .iter()
            .zip(latencies)
            .zip(dense)
            .map(|((sub, latency), dense_latency)| SubModelTiming {
                sub: sub.clone(),
                cost: self.cost(sub),
                latency,
                dense_latency,
                peak_bytes: None,
            })
            .collect())
    }

    /// The peak bytes one forward pass of `sub` on `images` holds, as the caller's meter
    /// `peak_during` reports them: it runs the pass it is given (the forward and a device sync)
    /// and returns the peak above the level at its start. The output is dropped only after the
    /// meter returns, so it counts. The library has no meter of its own: a heap meter needs a
    /// counting global allocator, which only a binary can install (`sorted-runner`'s `heap.rs`).
    ///
    /// # Errors
    /// As [`SortedModel::forward`]: a sub-model outside the space or not calibrated;
    /// [`DeployError::NotMetered`] when `peak_during` did not run the pass.
    pub fn peak_bytes(
        &self,
        images: &Tensor<B, 4>,
        sub: &SubModel,
        peak_during: impl FnOnce(&mut dyn FnMut()) -> u64,
    ) -> Result<u64, DeployError> {
        let device = images.device();
        let mut input = Some(images.clone());
        let mut out = None;
        let _ = B::sync(&device);
        let peak = peak_during(&mut || {
            if let Some(input) = input.take() {
                out = Some(self.forward(input, sub));
                let _ = B::sync(&device);
            }
        });
        let out = out.ok_or_else(|| DeployError::NotMetered { sub_model: sub.to_string() })?;
        drop(out?);
        Ok(peak)
    }

    /// Fills `peak_bytes` of every timing with [`SortedModel::peak_bytes`], in order.
    ///
    /// # Errors
    /// As [`SortedModel::peak_bytes`].
    pub fn measure_peak_bytes(
        &self,
        images: &Tensor<B, 4>,
        timings: &mut [SubModelTiming],
        mut peak_during: impl FnMut(&mut dyn FnMut()) -> u64,
    ) -> Result<(), DeployError> {
        for t in timings {
            t.peak_bytes = Some(self.peak_bytes(images, &t.sub, &mut peak_during)?);
        }
        Ok(())
    }
}

/// One profiled sub-model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    /// The sub-model (widths joined by `-`).
    pub sub_model: String,
    /// Active blocks.
    pub depth: usize,
    /// Parameters used.
    pub params: u64,
    /// FLOPs per sample.
    pub flops: u64,
    /// Test accuracy (a run's `results.json`).
    pub accuracy: f64,
    /// Measured latency of one forward pass of `batch_size` images.
    pub latency: Latency,
    /// Peak heap bytes allocated during one forward pass, above what was allocated before it
    /// (activations, sliced weight copies, outputs); `None` where not measured.
    pub peak_bytes: Option<u64>,
    /// Bytes of the parameters the sub-model uses (f32), what an exported copy holds.
    pub param_bytes: u64,
    /// latency / the full model's latency.
    pub latency_ratio: f64,
    /// FLOPs / the full model's FLOPs.
    pub flops_ratio: f64,
    /// `latency_ratio / flops_ratio`: 1 when latency scales exactly with FLOPs; above 1 when a
    /// small sub-model is slower than its FLOPs suggest (fixed per-call overheads).
    pub ratio_of_ratios: f64,
    /// Whether it is on the latency/accuracy Pareto front.
    pub on_front: bool,
    /// Latency of its dense copy, timed interleaved with `latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense_latency: Option<Latency>,
}

impl ProfileRow {
    /// The row as a selector candidate (its latency is the median).
    pub fn candidate(&self) -> Candidate {
        Candidate {
            name: self.sub_model.clone(),
            accuracy: self.accuracy,
            latency_ms: Some(self.latency.median_ms),
            params: self.params,
            flops: self.flops,
        }
    }
}

/// Every profiled sub-model and what the rows say together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyProfile {
    /// The full model's median latency, ms.
    pub full_latency_ms: f64,
    /// Spearman rank correlation of latency and FLOPs over all sub-models.
    pub spearman_latency_flops: f64,
    /// Median of the ratio of ratios.
    pub median_ratio_of_ratios: f64,
    /// Least-squares fit `latency = fixed + per-FLOP cost`: what explains ratio-of-ratios
    /// outliers (a fixed per-call cost weighs most on the smallest sub-models).
    pub latency_fit: LatencyFit,
    /// The latency/accuracy Pareto front, fastest first.
    pub front: Vec<String>,
    /// Sliced / dense-copy latency over all sub-models (when dense copies were timed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliced_over_dense: Option<RatioSummary>,
    /// Every sub-model, in the order measured.
    pub rows: Vec<ProfileRow>,
}

impl LatencyProfile {
    /// Joins the timings with each sub-model's accuracy (`accuracy_of`) into rows, relative to
    /// the `full` model's latency and FLOPs, and marks the latency/accuracy front.
    ///
    /// # Errors
    /// [`DeployError::NotProfiled`] when `full` is not among the timings,
    /// [`DeployError::MissingAccuracy`] when `accuracy_of` has none for a sub-model, and a
    /// non-finite latency or accuracy as in [`pareto_front`].
    pub fn new(
        timings: Vec<SubModelTiming>,
        full: &SubModel,
        accuracy_of: impl Fn(&SubModel) -> Option<f64>,
    ) -> Result<Self, DeployError> {
        let (full_ms, full_flops) = timings
            .iter()
            .find(|m| &m.sub == full)
            .map(|m| (m.latency.median_ms, m.cost.flops))
            .ok_or_else(|| DeployError::NotProfiled { sub_model: full.to_string() })?;
        let mut rows = Vec::with_capacity(timings.len());
        for m in timings {
            let accuracy =
                accuracy_of(&m.sub).ok_or_else(|| DeployError::MissingAccuracy { sub_model: m.sub.to_string() })?;
            let latency_ratio = m.latency.median_ms / full_ms.max(f64::MIN_POSITIVE);
            let flops_ratio = m.cost.flops as f64 / full_flops.max(1) as f64;
            rows.push(ProfileRow {
                sub_model: m.sub.to_string(),
                depth: m.sub.depth(),
                params: m.cost.params,
                flops: m.cost.flops,
                accuracy,
                latency: m.latency,
                peak_bytes: m.peak_bytes,
                param_bytes: 4 * m.cost.params,
                latency_ratio,
                flops_ratio,
                ratio_of_ratios: latency_ratio / flops_ratio.max(f64::MIN_POSITIVE),
                on_front: false,
                dense_latency: m.dense_latency,
            });
        }
        let candidates: Vec<Candidate> = rows.iter().map(ProfileRow::candidate).collect();
        let front = pareto_front(&candidates, CostAxis::LatencyMs)?;
        for &i in &front {
            rows[i].on_front = true;
        }
        let lat: Vec<f64> = rows.iter().map(|r| r.latency.median_ms).collect();
        let flops: Vec<f64> = rows.iter().map(|r| r.flops as f64).collect();
        let mut ror: Vec<f64> = rows.iter().map(|r| r.ratio_of_ratios).collect();
        ror.sort_by(f64::total_cmp);
        let dense_ratios: Vec<(String, f64)> = rows
            .iter()
            .filter_map(|r| r.dense_latency.as_ref().map(|d| (r.sub_model.clone(), r.latency.median_ms / d.median_ms)))
            .collect();
        Ok(Self {
            full_latency_ms: full_ms,
            spearman_latency_flops: spearman(&lat, &flops),
            median_ratio_of_ratios: median_of_sorted(&ror),
            latency_fit: LatencyFit::new(&flops, &lat, full_ms),
            front: front.iter().map(|&i| rows[i].sub_model.clone()).collect(),
            sliced_over_dense: RatioSummary::new(&dense_ratios),
            rows,
        })
    }

    /// The rows as selector candidates.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.rows.iter().map(ProfileRow::candidate).collect()
    }

    /// Rows whose ratio of ratios is outside `[1/OUTLIER_FACTOR, OUTLIER_FACTOR]`.
    pub fn outliers(&self) -> Vec<&ProfileRow> {
        self.rows
            .iter()
            .filter(|r| r.ratio_of_ratios > OUTLIER_FACTOR || r.ratio_of_ratios < 1.0 / OUTLIER_FACTOR)
            .collect()
    }
}
