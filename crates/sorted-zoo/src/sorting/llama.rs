//! Scores and sorting of [`SortedLlama`]: SwiGLU units, and query heads within each KV group,
//! per layer.

use burn::module::{AutodiffModule, Module};
use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::rope;

use super::permutation::{descending_order, expand_blocks, grouped_order, permute_inputs, permute_outputs};
use super::probe::{
    LayerGates, block_sums, col_sq, cross_entropy, gate_scores, layer_gates, mean_scores, row_sq, to_vec,
};
use super::{ImportanceScore, LayerScores, SortError, TransformerScores, check_layer_scores};
use crate::llama::{SortedLlama, SortedLlamaLayer};

/// The magnitude score of every query head and SwiGLU unit: the L2 norm of a head's query
/// columns and output-projection rows (its KV head is shared by its group, so it is left out),
/// and of a unit's gate and up columns and down row.
pub fn magnitude_llama<B: Backend>(model: &SortedLlama<B>) -> TransformerScores {
    let layers = model
        .layers
        .iter()
        .map(|l| {
            let heads = col_sq(l.query.weight.val()) + row_sq(l.output.weight.val());
            let ffn = col_sq(l.gate.weight.val()) + col_sq(l.up.weight.val()) + row_sq(l.down.weight.val());
            LayerScores { heads: to_vec(block_sums(heads, l.head_dim).sqrt()), ffn: to_vec(ffn.sqrt()) }
        })
        .collect();
    TransformerScores { layers }
}

/// Scores every query head and SwiGLU unit of the full model with `score` on the token batch
/// `ids` (`[batch, seq]`, from position 0; see the [module docs](super) for how activation and
/// Taylor scores are measured; Taylor's loss is the next-token cross-entropy). Magnitude
/// ignores the batch. The model is not changed.
///
/// # Errors
/// [`SortError::Calibration`] for an empty batch, or a batch of fewer than 2 tokens per row for
/// Taylor (there is no next token to predict).
pub fn importance_llama<B: AutodiffBackend>(
    model: &SortedLlama<B>,
    ids: Tensor<B, 2, Int>,
    score: ImportanceScore,
) -> Result<TransformerScores, SortError> {
    let [n, s] = ids.dims();
    let min_len = if score == ImportanceScore::Taylor { 2 } else { 1 };
    if n == 0 || s < min_len {
        return Err(SortError::Calibration {
            what: "ids",
            expected: format!("[batch >= 1, seq >= {min_len}]"),
            got: vec![n, s],
        });
    }
    match score {
        ImportanceScore::Magnitude => Ok(magnitude_llama(model)),
        ImportanceScore::Activation => {
            let model = model.valid();
            let gates = unit_gates(&model, false);
            let (_, means) = probe(&model, ids.inner(), &gates);
            Ok(mean_scores(means))
        }
        ImportanceScore::Taylor => {
            let model = model.clone().no_grad();
            let gates = unit_gates(&model, true);
            let (logits, _) = probe(&model, ids.clone(), &gates);
            let v = logits.dims()[2];
            let logits = logits.slice(s![.., 0..s - 1, ..]).reshape([n * (s - 1), v]);
            let targets = ids.slice(s![.., 1..s]).reshape([n * (s - 1)]);
            Ok(gate_scores(&gates, &cross_entropy(logits, targets).backward()))
        }
    }
}

/// A (head, FFN unit) gate of ones per layer; tracked by autodiff when `track`.
fn unit_gates<B: Backend>(model: &SortedLlama<B>, track: bool) -> Vec<LayerGates<B>> {
    layer_gates(model.layers.iter().map(|l| (l.num_heads, l.gate.d_output_max())), track, &model.embedding.device())
}

/// The full model's logits (`[batch, seq, vocab]`) with every query head's attention output
/// and every SwiGLU activation multiplied by its gate, and per layer the mean `|activation|`
/// of every head and unit. The same math as [`SortedLlama::forward`] at full width from an
/// empty cache (checked by the test below).
#[allow(clippy::type_complexity)]
fn probe<B: Backend>(
    model: &SortedLlama<B>,
    ids: Tensor<B, 2, Int>,
    gates: &[LayerGates<B>],
) -> (Tensor<B, 3>, Vec<(Tensor<B, 1>, Tensor<B, 1>)>) {
    let [b, s] = ids.dims();
    let device = ids.device();
    let mut x = burn::tensor::module::embedding(model.embedding.val(), ids);
    let d = x.dims()[2];
    let mut means = Vec::with_capacity(model.layers.len());
    for (l, (head_gate, ffn_gate)) in model.layers.iter().zip(gates) {
        let (nh, nkv, hd) = (l.num_heads, l.num_kv_heads, l.head_dim);
        let rep = nh / nkv;
        let split = |t: Tensor<B, 3>, heads| t.reshape([b, s, heads, hd]).swap_dims(1, 2);
        let h = l.attention_norm.forward(x.clone());
        let q = rope(split(l.query.forward(h.clone(), nh * hd), nh), 0, model.rope_theta);
        let k = rope(split(l.key.forward(h.clone(), nkv * hd), nkv), 0, model.rope_theta);
        let v = split(l.value.forward(h, nkv * hd), nkv);
        // Group-major: query head i reads KV head i / rep, so a group's heads are consecutive
        // and stack as `rep * s` rows against that group's keys.
        let q = q.reshape([b, nkv, rep * s, hd]);
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (hd as f64).sqrt());
        let scores = scores.add(causal_bias::<B>(s, rep, &device));
        let ctx = softmax(scores, 3).matmul(v).reshape([b, nh, s, hd]).mul(head_gate.clone().reshape([1, nh, 1, 1]));
        let head_mean = ctx.clone().abs().mean_dim(0).mean_dim(2).mean_dim(3).reshape([nh]);
        x = x.add(l.output.forward(ctx.swap_dims(1, 2).reshape([b, s, nh * hd]), d));
        let f = l.gate.d_output_max();
        let h = l.ffn_norm.forward(x.clone());
        let act = silu(l.gate.forward(h.clone(), f)).mul(l.up.forward(h, f)).mul(ffn_gate.clone().reshape([1, 1, f]));
        let ffn_mean = act.clone().abs().mean_dim(0).mean_dim(1).reshape([f]);
        x = x.add(l.down.forward(act, d));
        means.push((head_mean, ffn_mean));
    }
    (model.head(x), means)
}

/// `[1, 1, groups * s, s]`: `groups` copies of the causal mask (`-1e9` above the diagonal).
fn causal_bias<B: Backend>(s: usize, groups: usize, device: &B::Device) -> Tensor<B, 4> {
    let values: Vec<f32> =
        (0..groups * s).flat_map(|row| (0..s).map(move |j| if j > row % s { -1e9 } else { 0.0 })).collect();
    Tensor::<B, 1>::from_floats(values.as_slice(), device).reshape([1, 1, groups * s, s])
}

/// Reorders every layer's SwiGLU units by descending score and its query heads by descending
/// score **within each KV group** (stable), so that every nested width keeps the
/// highest-scoring units. The full model's outputs are unchanged; parameter ids are kept.
///
/// # Errors
/// [`SortError::LayerCount`] if `scores` has another number of layers,
/// [`SortError::ScoreLength`] naming the layer and axis whose vector does not have one score
/// per allocated query head or SwiGLU unit, [`SortError::NonFinite`] for a NaN or infinite
/// score.
pub fn sort_llama<B: Backend>(
    mut model: SortedLlama<B>,
    scores: &TransformerScores,
) -> Result<SortedLlama<B>, SortError> {
    check_layer_scores(model.layers.iter().map(|l| (l.num_heads, l.gate.d_output_max())), scores)?;
    model.layers = model.layers.into_iter().zip(&scores.layers).map(|(l, s)| sort_layer(l, s)).collect();
    Ok(model)
}

fn sort_layer<B: Backend>(layer: SortedLlamaLayer<B>, scores: &LayerScores) -> SortedLlamaLayer<B> {
    let cols = expand_blocks(&grouped_order(&scores.heads, layer.num_kv_heads), layer.head_dim);
    let ffn = descending_order(&scores.ffn);
    SortedLlamaLayer {
        query: permute_outputs(layer.query, &cols),
        output: permute_inputs(layer.output, &cols),
        gate: permute_outputs(layer.gate, &ffn),
        up: permute_outputs(layer.up, &ffn),
        down: permute_inputs(layer.down, &ffn),
        ..layer
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::prelude::*;

    use super::{probe, unit_gates};
    use crate::llama::{KvCache, LlamaSubModels, SortedLlamaConfig};

    /// The probe re-runs the model's math: its logits equal `SortedLlama::forward` of the full
    /// model.
    #[test]
    fn probe_matches_the_full_forward() {
        let device = Default::default();
        let model = SortedLlamaConfig::tiny().init::<Flex>(&device);
        let full = LlamaSubModels::of(&model).full().unwrap();
        let ids = Tensor::<Flex, 2, Int>::from_ints([[1, 5, 9, 3, 7], [4, 4, 2, 8, 0]], &device);
        let expected = model.forward(ids.clone(), &full, &mut KvCache::new());
        let (logits, _) = probe(&model, ids, &unit_gates(&model, false));
        let diff = (logits - expected).abs().max().into_scalar();
        assert!(diff < 1e-5, "probe differs from forward by {diff}");
    }
}
