//! Statistics of measured latencies across the sub-models of a space: a least-squares line
//! through (FLOPs, latency), summaries of per-sub-model ratios (sliced against dense, say), and
//! Spearman's rank correlation (does FLOPs order sub-models as latency does?).

use serde::{Deserialize, Serialize};

/// A least-squares line through (FLOPs, median latency) of every sub-model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyFit {
    /// Intercept: the latency of a forward pass with no FLOPs (dispatch, allocation, slicing
    /// views), ms.
    pub fixed_ms: f64,
    /// Slope: milliseconds per million FLOPs.
    pub ms_per_mflop: f64,
    /// Coefficient of determination of the fit.
    pub r_squared: f64,
    /// `fixed_ms` as a share of the full model's latency.
    pub fixed_share_of_full: f64,
}

impl LatencyFit {
    /// Fits `latency_ms = fixed + slope * flops / 1e6`; `full_ms` scales the fixed share.
    pub fn new(flops: &[f64], latency_ms: &[f64], full_ms: f64) -> Self {
        let n = flops.len() as f64;
        let x: Vec<f64> = flops.iter().map(|f| f / 1e6).collect();
        let (mx, my) = (x.iter().sum::<f64>() / n, latency_ms.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(latency_ms).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let syy: f64 = latency_ms.iter().map(|b| (b - my).powi(2)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let fixed = my - slope * mx;
        let r_squared = if sxx > 0.0 && syy > 0.0 { sxy * sxy / (sxx * syy) } else { f64::NAN };
        Self { fixed_ms: fixed, ms_per_mflop: slope, r_squared, fixed_share_of_full: fixed / full_ms }
    }
}

/// A distribution of per-sub-model ratios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatioSummary {
    /// The median ratio.
    pub median: f64,
    /// The 10th and 90th percentiles (nearest rank).
    pub p10: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The largest ratio and its sub-model.
    pub max: (f64, String),
    /// How many ratios are at most 1.05.
    pub within_5_percent: usize,
    /// How many ratios there are.
    pub n: usize,
}

impl RatioSummary {
    /// Summarises `(sub-model, ratio)` pairs; `None` when empty.
    pub fn new(ratios: &[(String, f64)]) -> Option<Self> {
        if ratios.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = ratios.iter().map(|r| r.1).collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let rank = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        let max = ratios.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("non-empty");
        Some(Self {
            median: median_of_sorted(&v),
            p10: rank(0.1),
            p90: rank(0.9),
            max: (max.1, max.0.clone()),
            within_5_percent: v.iter().filter(|&&r| r <= 1.05).count(),
            n,
        })
    }
}

/// The median of sorted values (the mean of the middle two for an even count; NaN when empty).
pub fn median_of_sorted(v: &[f64]) -> f64 {
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Average ranks (ties share the mean rank).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (Pearson correlation of the average ranks).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 { f64::NAN } else { cov / (va * vb).sqrt() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_monotone_and_reversed_data() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[10.0, 20.0, 25.0, 100.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), [2.5, 1.0, 2.5]);
    }

    #[test]
    fn the_latency_fit_recovers_a_line() {
        let flops = [1e6, 2e6, 4e6];
        let fit = LatencyFit::new(&flops, &[0.5, 0.7, 1.1], 1.1);
        assert!((fit.fixed_ms - 0.3).abs() < 1e-12 && (fit.ms_per_mflop - 0.2).abs() < 1e-12);
        assert!((fit.r_squared - 1.0).abs() < 1e-12 && (fit.fixed_share_of_full - 0.3 / 1.1).abs() < 1e-12);
    }
}
