//! One SoFT training step over sampled sub-models: each weighted by its exit's weight, sharing
//! one forward pass per width, with every term's losses read back as plain numbers (a log line).

use burn::prelude::*;
use serde::Serialize;
use sorted_data::LmBatch;
use sorted_nn::{TransformerSpace, TransformerSubModel};

use super::model::SortedLlama;
use super::model_config::LlamaModelConfig;
use super::soft::{SoftOptions, SoftTerm, soft_loss_with};

/// One sub-model's losses in one step of [`soft_step_loss`].
#[derive(Clone, Debug, Serialize)]
pub struct SoftTermLoss {
    /// The sub-model.
    #[serde(flatten)]
    pub sub: TransformerSubModel,
    /// Its cross-entropy on the step's windows.
    pub loss: f64,
    /// Its KL divergence from the full model (distillation on; absent for the full model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
}

/// The loss of a SoFT step ([`soft_step_loss`]).
#[derive(Clone, Debug)]
pub struct SoftStepLoss<B: Backend> {
    /// The weighted mean to differentiate ([`super::SoftLoss::total`]).
    pub total: Tensor<B, 1>,
    /// Each sub-model's losses, in the order of the step's sub-models.
    pub terms: Vec<SoftTermLoss>,
}

/// The SoFT loss of `subs` on next-token prediction of `batch`'s windows, the term of `subs[i]` weighted by `weights[i]` times its exit's
/// weight in `config` ([`LlamaModelConfig::exit_weight`] in `space`).
///
/// # Panics
/// As [`soft_loss_with`]: no sub-models, a weight that is not positive and finite, or a
/// sub-model that does not fit the model.
pub fn soft_step_loss<B: Backend>(
    model: &SortedLlama<B>,
    config: &LlamaModelConfig,
    space: &TransformerSpace,
    batch: &LmBatch<B>,
    subs: &[TransformerSubModel],
    weights: &[f64],
    options: SoftOptions,
) -> SoftStepLoss<B> {
    let terms: Vec<SoftTerm> = subs
        .iter()
        .zip(weights)
        .map(|(sub, w)| SoftTerm { sub: *sub, weight: w * config.exit_weight(space, sub.depth) })
        .collect();
    let loss = soft_loss_with(model, batch.inputs.clone(), batch.targets.clone(), &terms, options);
    let scalar = |t: &Tensor<B, 1>| t.clone().into_scalar().elem::<f64>();
    let terms = terms
        .iter()
        .zip(loss.terms.iter().zip(&loss.distill_terms))
        .map(|(t, (l, kl))| SoftTermLoss { sub: t.sub, loss: scalar(l), kl: kl.as_ref().map(scalar) })
        .collect();
    SoftStepLoss { total: loss.total, terms }
}
