//! Linear probes of a sorted BERT's sub-models: how much of a task each sub-model's frozen
//! sentence features hold before any fine-tuning. This is the zero-shot quality of a prefix,
//! and so of the unit order that importance sorting chooses (`crate::sorting`).
//!
//! The probe is multinomial logistic regression on the mean-pooled token states of the
//! sub-model's last layer. The features are standardised with the training set's mean and spread,
//! then fitted by full-batch gradient descent from zero weights. It is deterministic and needs no
//! Burn: features in, a probe out.

use burn::prelude::*;
use sorted_data::{TextBatcher, TokenizedDataset};
use sorted_nn::TransformerSubModel;

use super::model::SortedBert;

/// The mean-pooled last-layer states of sub-model `sub` for every sentence of `set`, in the
/// set's order: one `hidden`-long row per sentence. Sentences are cut to `max_len` tokens and
/// run in consecutive batches of `batch_size`.
///
/// # Panics
/// If `sub` does not fit `model` (check with [`SortedBert::check_space`]) or `batch_size` is 0.
pub fn sentence_features<B: Backend>(
    model: &SortedBert<B>,
    set: &TokenizedDataset,
    sub: &TransformerSubModel,
    max_len: usize,
    batch_size: usize,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let batcher = TextBatcher::new(max_len);
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut rows = Vec::with_capacity(set.len());
    for chunk in indices.chunks(batch_size) {
        let batch = batcher.batch::<B>(set, chunk, device);
        let states = model.encode(batch.input_ids, None, batch.attention_mask.clone(), sub);
        let pooled = SortedBert::mean_pool(states, batch.attention_mask);
        let [n, d] = pooled.dims();
        let values = pooled.into_data().to_vec::<f32>().expect("f32 features");
        rows.extend((0..n).map(|i| values[i * d..(i + 1) * d].to_vec()));
    }
    rows
}

/// How a [`LinearProbe`] is fitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeOptions {
    /// Full-batch gradient steps.
    pub epochs: usize,
    /// Step size (the features are standardised, so about 1 suits most tasks).
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the biases).
    pub l2: f64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self { epochs: 300, learning_rate: 0.5, l2: 1e-3 }
    }
}

/// Why a probe could not be fitted or scored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProbeError {
    /// No training rows, or rows of width 0.
    #[error("a linear probe needs at least one training row of at least one feature")]
    Empty,
    /// Features and labels differ in count.
    #[error("{features} feature rows but {labels} labels")]
    Count {
        /// Feature rows.
        features: usize,
        /// Labels.
        labels: usize,
    },
    /// A row of another width than the first.
    #[error("feature row {row} has {got} values, the first row {expected}")]
    Width {
        /// The row.
        row: usize,
        /// The first row's width.
        expected: usize,
        /// This row's width.
        got: usize,
    },
    /// A label outside `0..n_classes`.
    #[error("label {label} of row {row} is not below the {n_classes} classes")]
    Label {
        /// The row.
        row: usize,
        /// Its label.
        label: u8,
        /// The number of classes.
        n_classes: usize,
    },
}

/// Multinomial logistic regression on standardised features.
///
/// # Example
/// ```
/// use sorted_zoo::{LinearProbe, ProbeOptions};
///
/// let x = vec![vec![0.0, 1.0], vec![0.1, 0.9], vec![1.0, 0.0], vec![0.9, 0.2]];
/// let y = [0u8, 0, 1, 1];
/// let probe = LinearProbe::fit(&x, &y, 2, ProbeOptions::default())?;
/// assert_eq!(probe.accuracy(&x, &y)?, 1.0);
/// # Ok::<(), sorted_zoo::ProbeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LinearProbe {
    n_classes: usize,
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// `[n_classes][d]`, row-major.
    weights: Vec<f64>,
    bias: Vec<f64>,
}

impl LinearProbe {
    /// Fits a probe of `n_classes` classes to `features` (one row per example) and `labels`.
    ///
    /// # Errors
    /// [`ProbeError`] for no rows, rows of differing width, a count mismatch, or a label out of
    /// range.
    pub fn fit(
        features: &[Vec<f32>],
        labels: &[u8],
        n_classes: usize,
        options: ProbeOptions,
    ) -> Result<Self, ProbeError> {
        let d = check(features, labels, n_classes)?;
        let n = features.len() as f64;
        let mut mean = vec![0.0; d];
        for row in features {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v) / n;
            }
        }
        let mut scale = vec![0.0; d];
        for row in features {
            for ((s, &v), m) in scale.iter_mut().zip(row).zip(&mean) {
                *s += (f64::from(v) - m).powi(2) / n;
            }
        }
        let scale: Vec<f64> = scale.into_iter().map(|var| if var > 1e-12 { 1.0 / var.sqrt() } else { 0.0 }).collect();
        let mut probe = Self { n_classes, mean, scale, weights: vec![0.0; n_classes * d], bias: vec![0.0; n_classes] };
        let x: Vec<Vec<f64>> = features.iter().map(|row| probe.standardise(row)).collect();
        let mut grad_w = vec![0.0; n_classes * d];
        let mut grad_b = vec![0.0; n_classes];
        for _ in 0..options.epochs {
            grad_w.iter_mut().for_each(|g| *g = 0.0);
            grad_b.iter_mut().for_each(|g| *g = 0.0);
            for (row, &label) in x.iter().zip(labels) {
                let probs = probe.probabilities(row);
                for (c, p) in probs.iter().enumerate() {
                    let err = (p - if c == usize::from(label) { 1.0 } else { 0.0 }) / n;
                    grad_b[c] += err;
                    for (g, v) in grad_w[c * d..(c + 1) * d].iter_mut().zip(row) {
                        *g += err * v;
                    }
                }
            }
            for (w, g) in probe.weights.iter_mut().zip(&grad_w) {
                *w -= options.learning_rate * (g + options.l2 * *w);
            }
            for (b, g) in probe.bias.iter_mut().zip(&grad_b) {
                *b -= options.learning_rate * g;
            }
        }
        Ok(probe)
    }

    /// The most probable class of one feature row (as wide as the training rows).
    pub fn predict(&self, row: &[f32]) -> usize {
        let p = self.probabilities(&self.standardise(row));
        (0..self.n_classes).fold(0, |best, c| if p[c] > p[best] { c } else { best })
    }

    /// The share of `features` whose predicted class equals the label, in `[0, 1]`.
    ///
    /// # Errors
    /// As [`LinearProbe::fit`], and rows of another width than the probe's.
    pub fn accuracy(&self, features: &[Vec<f32>], labels: &[u8]) -> Result<f64, ProbeError> {
        let d = check(features, labels, self.n_classes)?;
        if d != self.mean.len() {
            return Err(ProbeError::Width { row: 0, expected: self.mean.len(), got: d });
        }
        let hits = features.iter().zip(labels).filter(|(row, label)| self.predict(row) == usize::from(**label)).count();
        Ok(hits as f64 / features.len() as f64)
    }

    fn standardise(&self, row: &[f32]) -> Vec<f64> {
        row.iter().zip(&self.mean).zip(&self.scale).map(|((&v, m), s)| (f64::from(v) - m) * s).collect()
    }

    fn probabilities(&self, x: &[f64]) -> Vec<f64> {
        let d = x.len();
        let logits: Vec<f64> = (0..self.n_classes)
            .map(|c| self.bias[c] + self.weights[c * d..(c + 1) * d].iter().zip(x).map(|(w, v)| w * v).sum::<f64>())
            .collect();
        let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
        let total: f64 = exp.iter().sum();
        exp.into_iter().map(|e| e / total).collect()
    }
}

/// The common width of `features`, after checking them against `labels` and `n_classes`.
fn check(features: &[Vec<f32>], labels: &[u8], n_classes: usize) -> Result<usize, ProbeError> {
    let d = features.first().map_or(0, Vec::len);
    if d == 0 || n_classes == 0 {
        return Err(ProbeError::Empty);
    }
    if features.len() != labels.len() {
        return Err(ProbeError::Count { features: features.len(), labels: labels.len() });
    }
    if let Some((row, r)) = features.iter().enumerate().find(|(_, r)| r.len() != d) {
        return Err(ProbeError::Width { row, expected: d, got: r.len() });
    }
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= n_classes) {
        return Err(ProbeError::Label { row, label, n_classes });
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_separates_classes_that_one_feature_separates() {
        // Feature 1 decides the class; feature 0 is noise of a larger scale.
        let x: Vec<Vec<f32>> =
            (0..40).map(|i| vec![((i * 37) % 11) as f32 * 10.0, (i % 2) as f32 + 0.01 * i as f32]).collect();
        let y: Vec<u8> = (0..40).map(|i| (i % 2) as u8).collect();
        let probe = LinearProbe::fit(&x, &y, 2, ProbeOptions::default()).unwrap();
        assert_eq!(probe.accuracy(&x, &y).unwrap(), 1.0);
        let three: Vec<u8> = (0..40).map(|i| (i % 3) as u8).collect();
        assert!(LinearProbe::fit(&x, &three, 3, ProbeOptions::default()).is_ok());
    }

    #[test]
    fn bad_probe_input_is_named() {
        let x = vec![vec![1.0, 2.0], vec![3.0]];
        assert_eq!(
            LinearProbe::fit(&x, &[0, 1], 2, ProbeOptions::default()).unwrap_err(),
            ProbeError::Width { row: 1, expected: 2, got: 1 }
        );
        let x = vec![vec![1.0], vec![2.0]];
        assert_eq!(
            LinearProbe::fit(&x, &[0], 2, ProbeOptions::default()).unwrap_err(),
            ProbeError::Count { features: 2, labels: 1 }
        );
        assert_eq!(
            LinearProbe::fit(&x, &[0, 2], 2, ProbeOptions::default()).unwrap_err(),
            ProbeError::Label { row: 1, label: 2, n_classes: 2 }
        );
        assert_eq!(LinearProbe::fit(&[], &[], 2, ProbeOptions::default()).unwrap_err(), ProbeError::Empty);
        let probe = LinearProbe::fit(&x, &[0, 1], 2, ProbeOptions::default()).unwrap();
        assert!(matches!(probe.accuracy(&[vec![1.0, 2.0]], &[0]), Err(ProbeError::Width { .. })));
    }
}
