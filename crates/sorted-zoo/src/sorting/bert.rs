//! Scores and sorting of [`SortedBert`]: attention heads and FFN units, per layer.

use burn::module::{AutodiffModule, Module};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::{PaddingMask, SortedMultiHeadAttention};

use super::permutation::{descending_order, expand_blocks, permute_inputs, permute_outputs};
use super::probe::{
    LayerGates, block_sums, col_sq, cross_entropy, gate_scores, layer_gates, mean_scores, row_sq, to_vec,
};
use super::{ImportanceScore, LayerScores, SortError, TransformerScores, check_layer_scores};
use crate::{SortedBert, SortedBertLayer};

/// A labelled calibration batch for [`importance_bert`] (inputs as in [`SortedBert::forward`]).
#[derive(Clone, Debug)]
pub struct BertCalibration<B: Backend> {
    /// Token ids, `[batch, seq]`.
    pub input_ids: Tensor<B, 2, Int>,
    /// Token types, `[batch, seq]` (`None`: all type 0).
    pub token_type_ids: Option<Tensor<B, 2, Int>>,
    /// `1.0` for real tokens, `0.0` for padding, `[batch, seq]`.
    pub attention_mask: Tensor<B, 2>,
    /// Class labels, `[batch]` (used by the Taylor score only).
    pub labels: Tensor<B, 1, Int>,
}

impl<B: AutodiffBackend> BertCalibration<B> {
    fn inner(&self) -> BertCalibration<B::InnerBackend> {
        BertCalibration {
            input_ids: self.input_ids.clone().inner(),
            token_type_ids: self.token_type_ids.clone().map(Tensor::inner),
            attention_mask: self.attention_mask.clone().inner(),
            labels: self.labels.clone().inner(),
        }
    }
}

impl<B: Backend> BertCalibration<B> {
    fn check(&self, model: &SortedBert<B>) -> Result<(), SortError> {
        let [n, s] = self.input_ids.dims();
        let shape = |what, expected: &[usize], got: Vec<usize>| {
            if got == expected {
                Ok(())
            } else {
                Err(SortError::Calibration { what, expected: format!("{expected:?}"), got })
            }
        };
        shape("attention_mask", &[n, s], self.attention_mask.dims().to_vec())?;
        shape("labels", &[n], self.labels.dims().to_vec())?;
        if let Some(types) = &self.token_type_ids {
            shape("token_type_ids", &[n, s], types.dims().to_vec())?;
        }
        let positions = model.position_embeddings.n_embedding();
        if n == 0 || s == 0 || s > positions {
            return Err(SortError::Calibration {
                what: "input_ids",
                expected: format!("[batch >= 1, 1..={positions} tokens]"),
                got: vec![n, s],
            });
        }
        Ok(())
    }
}

/// The magnitude score of every head and FFN unit: the L2 norm of a head's query, key and value
/// columns and output-projection rows, and of an FFN unit's intermediate column and output row.
pub fn magnitude_bert<B: Backend>(model: &SortedBert<B>) -> TransformerScores {
    let layers = model
        .layers
        .iter()
        .map(|layer| {
            let a = &layer.attention;
            let per_feature = col_sq(a.query.weight.val())
                + col_sq(a.key.weight.val())
                + col_sq(a.value.weight.val())
                + row_sq(a.output.weight.val());
            let ffn = col_sq(layer.intermediate.weight.val()) + row_sq(layer.output.weight.val());
            LayerScores { heads: to_vec(block_sums(per_feature, a.head_dim).sqrt()), ffn: to_vec(ffn.sqrt()) }
        })
        .collect();
    TransformerScores { layers }
}

/// Scores every attention head and FFN unit of the full model with `score` on `batch` (see the
/// [module docs](super) for how activation and Taylor scores are measured). Magnitude ignores
/// the batch. Dropout is off in the calibration pass; the model is not changed.
///
/// # Errors
/// [`SortError::Calibration`] if the batch's shapes disagree or it is longer than the learned
/// positions.
pub fn importance_bert<B: AutodiffBackend>(
    model: &SortedBert<B>,
    batch: &BertCalibration<B>,
    score: ImportanceScore,
) -> Result<TransformerScores, SortError> {
    batch.check(model)?;
    match score {
        ImportanceScore::Magnitude => Ok(magnitude_bert(model)),
        ImportanceScore::Activation => {
            let model = model.valid();
            let gates = unit_gates(&model, false);
            let (_, means) = probe(&model, &batch.inner(), &gates);
            Ok(mean_scores(means))
        }
        ImportanceScore::Taylor => {
            // Only the gates need gradients: the weights' would be computed and thrown away.
            let model = model.clone().no_grad();
            let gates = unit_gates(&model, true);
            let (logits, _) = probe(&model, batch, &gates);
            Ok(gate_scores(&gates, &cross_entropy(logits, batch.labels.clone()).backward()))
        }
    }
}

/// A (head, FFN unit) gate of ones per layer; tracked by autodiff when `track`.
fn unit_gates<B: Backend>(model: &SortedBert<B>, track: bool) -> Vec<LayerGates<B>> {
    layer_gates(
        model.layers.iter().map(|l| (l.attention.n_heads, l.intermediate.d_output_max())),
        track,
        &model.classifier.weight.device(),
    )
}

/// The full model's logits with every head's attention output and every FFN activation
/// multiplied by its gate, and per layer the mean `|activation|` of every head and FFN unit
/// over the real tokens. The same math as [`SortedBert::forward`] at full size without dropout
/// (checked by the test below).
#[allow(clippy::type_complexity)]
fn probe<B: Backend>(
    model: &SortedBert<B>,
    batch: &BertCalibration<B>,
    gates: &[LayerGates<B>],
) -> (Tensor<B, 2>, Vec<(Tensor<B, 1>, Tensor<B, 1>)>) {
    let [n, s] = batch.input_ids.dims();
    let d = model.hidden_size();
    let device = batch.input_ids.device();
    let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device).reshape([1, s]).repeat_dim(0, n);
    let types = batch.token_type_ids.clone().unwrap_or_else(|| Tensor::zeros([n, s], &device));
    let x = model.word_embeddings.forward(batch.input_ids.clone(), d)
        + model.position_embeddings.forward(positions, d)
        + model.token_type_embeddings.forward(types, d);
    let mut x = model.embedding_norm.forward(x);
    let mask = PaddingMask::from_attention_mask(batch.attention_mask.clone());
    let weights = batch.attention_mask.clone();
    let count = weights.clone().sum();
    let mut means = Vec::with_capacity(model.layers.len());
    for (layer, (head_gate, ffn_gate)) in model.layers.iter().zip(gates) {
        let a = &layer.attention;
        let (nh, hd) = (a.n_heads, a.head_dim);
        let ctx = attention_context(a, x.clone(), &mask).mul(head_gate.clone().reshape([1, nh, 1, 1]));
        let head_mean = ctx
            .clone()
            .abs()
            .mean_dim(3)
            .mul(weights.clone().reshape([n, 1, s, 1]))
            .sum_dim(0)
            .sum_dim(2)
            .reshape([nh])
            .div(count.clone());
        let ctx = ctx.swap_dims(1, 2).reshape([n, s, nh * hd]);
        x = layer.attention_norm.forward(x.clone().add(a.output.forward(ctx, d)));
        let f = layer.intermediate.d_output_max();
        let act = gelu(layer.intermediate.forward(x.clone(), f)).mul(ffn_gate.clone().reshape([1, 1, f]));
        let ffn_mean = act
            .clone()
            .abs()
            .mul(weights.clone().reshape([n, s, 1]))
            .sum_dim(0)
            .sum_dim(1)
            .reshape([f])
            .div(count.clone());
        x = layer.output_norm.forward(x.clone().add(layer.output.forward(act, d)));
        means.push((head_mean, ffn_mean));
    }
    let pooled = match &model.pooler {
        Some(pooler) => pooler.forward(x.slice(s![.., 0..1, ..]).reshape([n, d]), d).tanh(),
        None => SortedBert::mean_pool(x, batch.attention_mask.clone()),
    };
    (model.classifier.forward(pooled, model.num_classes), means)
}

/// Every head's attention output before the output projection, `[batch, heads, seq, head_dim]`
/// (the math of `sorted_nn`'s attention at full size).
fn attention_context<B: Backend>(
    a: &SortedMultiHeadAttention<B>,
    x: Tensor<B, 3>,
    mask: &PaddingMask<B>,
) -> Tensor<B, 4> {
    let [n, s, _] = x.dims();
    let (nh, hd) = (a.n_heads, a.head_dim);
    let split = |t: Tensor<B, 3>| t.reshape([n, s, nh, hd]).swap_dims(1, 2);
    let q = split(a.query.forward(x.clone(), nh * hd));
    let k = split(a.key.forward(x.clone(), nh * hd));
    let v = split(a.value.forward(x, nh * hd));
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (hd as f64).sqrt()).add(mask.bias().clone());
    softmax(scores, 3).matmul(v)
}

/// Reorders every layer's heads and FFN units by descending score (stable), so that each prefix
/// holds the highest-scoring units. The full model's outputs are unchanged; parameter ids are
/// kept.
///
/// # Errors
/// [`SortError::LayerCount`] if `scores` has another number of layers,
/// [`SortError::ScoreLength`] naming the layer and axis whose vector does not have one score
/// per allocated head or FFN unit, [`SortError::NonFinite`] for a NaN or infinite score.
pub fn sort_bert<B: Backend>(mut model: SortedBert<B>, scores: &TransformerScores) -> Result<SortedBert<B>, SortError> {
    check_layer_scores(model.layers.iter().map(|l| (l.attention.n_heads, l.intermediate.d_output_max())), scores)?;
    model.layers = model.layers.into_iter().zip(&scores.layers).map(|(l, s)| sort_layer(l, s)).collect();
    Ok(model)
}

fn sort_layer<B: Backend>(layer: SortedBertLayer<B>, scores: &LayerScores) -> SortedBertLayer<B> {
    let a = layer.attention;
    let cols = expand_blocks(&descending_order(&scores.heads), a.head_dim);
    let attention = SortedMultiHeadAttention {
        query: permute_outputs(a.query, &cols),
        key: permute_outputs(a.key, &cols),
        value: permute_outputs(a.value, &cols),
        output: permute_inputs(a.output, &cols),
        n_heads: a.n_heads,
        head_dim: a.head_dim,
    };
    let ffn = descending_order(&scores.ffn);
    SortedBertLayer {
        attention,
        intermediate: permute_outputs(layer.intermediate, &ffn),
        output: permute_inputs(layer.output, &ffn),
        ..layer
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::prelude::*;
    use sorted_nn::{TransformerSpace, TransformerSpaceConfig};

    use super::{BertCalibration, probe, unit_gates};
    use crate::{Pooling, SortedBertConfig};

    /// The probe re-runs the model's math: its logits equal `SortedBert::forward` of the full
    /// model (both poolings).
    #[test]
    fn probe_matches_the_full_forward() {
        let device = Default::default();
        for pooling in [Pooling::Mean, Pooling::Cls] {
            let config = SortedBertConfig::tiny().with_pooling(pooling);
            let model = config.init::<Flex>(&device);
            let space = TransformerSpace::new(
                TransformerSpaceConfig { depths: vec![3], heads: vec![4], ffn: vec![32], hidden: None },
                16,
            )
            .unwrap();
            let batch = BertCalibration {
                input_ids: Tensor::<Flex, 2, Int>::from_ints([[2, 9, 17, 3], [2, 40, 3, 0]], &device),
                token_type_ids: None,
                attention_mask: Tensor::from_floats([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]], &device),
                labels: Tensor::from_ints([0, 1], &device),
            };
            let expected = model.forward(batch.input_ids.clone(), None, batch.attention_mask.clone(), &space.largest());
            let (logits, _) = probe(&model, &batch, &unit_gates(&model, false));
            let diff = (logits - expected).abs().max().into_scalar();
            assert!(diff < 1e-6, "{pooling:?}: probe differs from forward by {diff}");
        }
    }
}
