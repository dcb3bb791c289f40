//! Importance sorting (issue 31): sorting keeps the full model's function, the highest-scoring
//! units move to the front, and the scores follow the units.

use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use sorted_nn::test_util::assert_matches_dense;
use sorted_nn::{NormPass, SortedLinear, SubModel, TransformerSpace, TransformerSpaceConfig};
use sorted_zoo::llama::{KvCache, SortedLlama, SortedLlamaConfig};
use sorted_zoo::sorting::{
    BertCalibration, ChannelScores, ImportanceScore, LayerScores, MlpScores, SortError, TransformerScores,
    importance_bert, importance_channels, importance_llama, magnitude_bert, magnitude_cnn, magnitude_llama,
    magnitude_mlp, magnitude_mobilenet_v2, sort_bert, sort_cnn, sort_llama, sort_mlp, sort_mobilenet_v2, sort_resnet,
};
use sorted_zoo::{
    Pooling, SortedBert, SortedBertConfig, SortedClassifier, SortedCnnConfig, SortedMlpConfig, SortedMobileNetV2Config,
    SortedResNetConfig,
};

use crate::checks::mixed_space;

type F = Flex;
type B = Autodiff<Flex>;

/// Scores that move every unit: a fixed scramble of `0..n` (3 is coprime with the sizes used).
fn scrambled(n: usize, salt: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 3 + salt) % n) as f32 + 0.5 * (i % 2) as f32).collect()
}

fn transformer_scores(layers: usize, heads: usize, ffn: usize) -> TransformerScores {
    TransformerScores {
        layers: (0..layers)
            .map(|l| LayerScores { heads: scrambled(heads, l + 1), ffn: scrambled(ffn, l + 2) })
            .collect(),
    }
}

/// `layer` with the columns `cols` (or, for `rows`, the rows) of its weight multiplied by
/// `factor`.
fn scale<BB: Backend>(
    layer: &mut SortedLinear<BB>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    factor: f64,
) {
    let w = layer.weight.val();
    let block = w.clone().slice(s![rows.clone(), cols.clone()]).mul_scalar(factor);
    layer.weight = Param::from_tensor(w.slice_assign(s![rows, cols], block).detach());
}

fn all<BB: Backend>(layer: &SortedLinear<BB>) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    (0..layer.d_input_max(), 0..layer.d_output_max())
}

fn assert_descending(what: &str, scores: &[f32]) {
    for (i, w) in scores.windows(2).enumerate() {
        assert!(w[0] >= w[1] * (1.0 - 1e-4) - 1e-7, "{what}: score {i} ({}) < score {} ({})", w[0], i + 1, w[1]);
    }
}

fn assert_close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}");
    // Relative to each value, plus a floor relative to the largest score: a near-zero score is
    // a sum whose rounding depends on the order of its terms, which sorting changes.
    let scale = a.iter().chain(b).fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= 1e-4 * x.abs().max(y.abs()) + 1e-6 * scale + 1e-7, "{what}[{i}]: {x} vs {y}");
    }
}

// ---------------------------------------------------------------- BERT

fn bert<BB: Backend>(pooling: Pooling, seed: u64) -> SortedBert<BB> {
    let device = Default::default();
    BB::seed(&device, seed);
    let mut model = SortedBertConfig::tiny().with_pooling(pooling).init::<BB>(&device);
    // BERT's std 0.02 leaves attention almost uniform, where a wrong head order would hide:
    // sharpen it so that every permuted tensor matters.
    for layer in &mut model.layers {
        for l in [&mut layer.attention.query, &mut layer.attention.key] {
            let (r, c) = all(l);
            scale(l, r, c, 25.0);
        }
    }
    model
}

fn bert_full() -> TransformerSpace {
    TransformerSpace::new(TransformerSpaceConfig { depths: vec![3], heads: vec![4], ffn: vec![32], hidden: None }, 16)
        .unwrap()
}

fn bert_batch<BB: Backend>() -> BertCalibration<BB> {
    let device = Default::default();
    BertCalibration {
        input_ids: Tensor::from_ints([[2, 9, 17, 33, 3], [2, 40, 3, 0, 0], [2, 5, 6, 7, 3]], &device),
        token_type_ids: None,
        attention_mask: Tensor::from_floats(
            [[1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]],
            &device,
        ),
        labels: Tensor::from_ints([0, 1, 1], &device),
    }
}

fn bert_logits(model: &SortedBert<F>, space: &TransformerSpace, sub: usize) -> Tensor<F, 2> {
    let batch = bert_batch::<F>();
    model.forward(batch.input_ids, None, batch.attention_mask, &space.nth(sub))
}

#[test]
fn sorting_bert_keeps_the_full_model() {
    let _rng = crate::rng_guard();
    for pooling in [Pooling::Mean, Pooling::Cls] {
        let model = bert::<F>(pooling, 1);
        let before = bert_logits(&model, &bert_full(), 0);
        let sorted = sort_bert(model.clone(), &transformer_scores(3, 4, 32)).unwrap();
        assert_matches_dense(bert_logits(&sorted, &bert_full(), 0), before, 1e-5);
        // It did move the units: a prefix sub-model now computes something else.
        let narrow = TransformerSpace::new(
            TransformerSpaceConfig { depths: vec![3], heads: vec![2], ffn: vec![8], hidden: None },
            16,
        )
        .unwrap();
        let diff = (bert_logits(&sorted, &narrow, 0) - bert_logits(&model, &narrow, 0)).abs().max().into_scalar();
        assert!(diff > 1e-4, "{pooling:?}: the narrow sub-model did not change ({diff})");
    }
}

#[test]
fn sorting_bert_by_magnitude_puts_the_dominant_head_and_unit_first() {
    let _rng = crate::rng_guard();
    let mut model = bert::<F>(Pooling::Mean, 2);
    let layer = &mut model.layers[1];
    // Head 2 (columns 8..12) and FFN unit 5 become by far the largest.
    for l in [&mut layer.attention.query, &mut layer.attention.key, &mut layer.attention.value] {
        scale(l, 0..16, 8..12, 50.0);
    }
    scale(&mut layer.attention.output, 8..12, 0..16, 50.0);
    scale(&mut layer.intermediate, 0..16, 5..6, 50.0);
    scale(&mut layer.output, 5..6, 0..16, 50.0);
    let original_query = model.layers[1].attention.query.weight.val();
    let original_ffn = model.layers[1].intermediate.weight.val();
    let scores = magnitude_bert(&model);
    let sorted = sort_bert(model, &scores).unwrap();
    // The prefix of one head holds the old head 2, the first FFN unit the old unit 5.
    assert_matches_dense(
        sorted.layers[1].attention.query.weight.val().slice(s![.., 0..4]),
        original_query.slice(s![.., 8..12]),
        0.0,
    );
    assert_matches_dense(
        sorted.layers[1].intermediate.weight.val().slice(s![.., 0..1]),
        original_ffn.slice(s![.., 5..6]),
        0.0,
    );
    // And every layer's magnitudes are now descending.
    for (i, layer) in magnitude_bert(&sorted).layers.iter().enumerate() {
        assert_descending(&format!("layer {i} heads"), &layer.heads);
        assert_descending(&format!("layer {i} ffn"), &layer.ffn);
    }
}

/// Sorting moves the units with their function, so re-scoring the sorted model gives the same
/// scores in descending order (for every score, data-based ones included).
#[test]
fn bert_scores_follow_the_units_when_sorted() {
    let _rng = crate::rng_guard();
    let model = bert::<B>(Pooling::Mean, 3);
    let batch = bert_batch::<B>();
    for score in [ImportanceScore::Magnitude, ImportanceScore::Activation, ImportanceScore::Taylor] {
        let scores = importance_bert(&model, &batch, score).unwrap();
        assert_eq!(scores.layers.len(), 3);
        let sorted = sort_bert(model.clone(), &scores).unwrap();
        // The sorted weights are the same trainable parameters (ids kept for the optimizer).
        let (old, new) = (&model.layers[0].intermediate.weight, &sorted.layers[0].intermediate.weight);
        assert_eq!(old.id, new.id);
        assert!(new.val().is_require_grad());
        let again = importance_bert(&sorted, &batch, score).unwrap();
        for (i, (a, b)) in scores.layers.iter().zip(&again.layers).enumerate() {
            assert_eq!((a.heads.len(), a.ffn.len()), (4, 32));
            assert!(a.heads.iter().chain(&a.ffn).all(|s| s.is_finite() && *s >= 0.0), "{score:?}: {a:?}");
            assert!(a.ffn.iter().any(|s| *s > 0.0), "{score:?} layer {i}: all zero");
            let mut expected = a.clone();
            expected.heads.sort_by(|x, y| y.total_cmp(x));
            expected.ffn.sort_by(|x, y| y.total_cmp(x));
            assert_close(&format!("{score:?} layer {i} heads"), &b.heads, &expected.heads);
            assert_close(&format!("{score:?} layer {i} ffn"), &b.ffn, &expected.ffn);
        }
    }
}

/// A unit whose output weights are zero changes nothing: its Taylor score is exactly 0 while
/// it is still active.
#[test]
fn bert_taylor_scores_a_unit_without_output_weights_zero() {
    let _rng = crate::rng_guard();
    let mut model = bert::<B>(Pooling::Mean, 4);
    scale(&mut model.layers[0].output, 3..4, 0..16, 0.0);
    scale(&mut model.layers[2].attention.output, 4..8, 0..16, 0.0);
    let batch = bert_batch::<B>();
    let taylor = importance_bert(&model, &batch, ImportanceScore::Taylor).unwrap();
    let activation = importance_bert(&model, &batch, ImportanceScore::Activation).unwrap();
    assert_eq!(taylor.layers[0].ffn[3], 0.0);
    assert_eq!(taylor.layers[2].heads[1], 0.0);
    assert!(activation.layers[0].ffn[3] > 0.0 && activation.layers[2].heads[1] > 0.0);
    assert!(taylor.layers[0].ffn[4] > 0.0 && taylor.layers[2].heads[0] > 0.0);
}

#[test]
fn wrong_scores_name_the_layer_and_axis() {
    let _rng = crate::rng_guard();
    let model = bert::<F>(Pooling::Mean, 5);
    let mut scores = transformer_scores(3, 4, 32);
    scores.layers[1].ffn.pop();
    match sort_bert(model.clone(), &scores) {
        Err(SortError::ScoreLength { axis: "ffn", layer: 1, expected: 32, got: 31 }) => {}
        other => panic!("expected a length error, got {:?}", other.map(|_| ())),
    }
    let mut scores = transformer_scores(3, 4, 32);
    scores.layers[2].heads[3] = f32::NAN;
    assert!(matches!(
        sort_bert(model.clone(), &scores),
        Err(SortError::NonFinite { axis: "heads", layer: 2, unit: 3, .. })
    ));
    let scores = transformer_scores(2, 4, 32);
    let err = sort_bert(model, &scores).expect_err("two layers of scores for three layers");
    assert_eq!(err.to_string(), "scores for 2 layers, the model has 3");
    let mut batch = bert_batch::<B>();
    batch.labels = Tensor::from_ints([0, 1], &Default::default());
    let err = importance_bert(&bert::<B>(Pooling::Mean, 5), &batch, ImportanceScore::Taylor).unwrap_err();
    assert!(matches!(err, SortError::Calibration { what: "labels", .. }), "{err}");
}

// ---------------------------------------------------------------- LLaMA

fn llama<BB: Backend>(seed: u64) -> SortedLlama<BB> {
    let device = Default::default();
    BB::seed(&device, seed);
    let mut model = SortedLlamaConfig::tiny().init::<BB>(&device);
    for layer in &mut model.layers {
        for l in [&mut layer.query, &mut layer.key] {
            let (r, c) = all(l);
            scale(l, r, c, 25.0);
        }
    }
    model
}

fn llama_ids<BB: Backend>() -> Tensor<BB, 2, Int> {
    Tensor::from_ints([[1, 5, 9, 3, 7, 2], [4, 4, 2, 8, 0, 11]], &Default::default())
}

fn llama_space(heads: usize, ffn: usize) -> TransformerSpace {
    TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![4], heads: vec![heads], ffn: vec![ffn], hidden: None },
        16,
    )
    .unwrap()
}

fn llama_logits(model: &SortedLlama<F>, heads: usize, ffn: usize) -> Tensor<F, 3> {
    model.forward(llama_ids(), &llama_space(heads, ffn).largest(), &mut KvCache::new())
}

#[test]
fn sorting_llama_keeps_the_full_model() {
    let _rng = crate::rng_guard();
    let model = llama::<F>(6);
    // Heads [0.1, 0.2, 0.9, 0.8] in two KV groups: a global sort would move heads 2, 3 into
    // group 0; per group, only group 0 swaps.
    let mut scores = transformer_scores(4, 4, 24);
    scores.layers[0].heads = vec![0.1, 0.2, 0.9, 0.8];
    let sorted = sort_llama(model.clone(), &scores).unwrap();
    assert_matches_dense(llama_logits(&sorted, 4, 24), llama_logits(&model, 4, 24), 1e-5);
    let diff = (llama_logits(&sorted, 2, 12) - llama_logits(&model, 2, 12)).abs().max().into_scalar();
    assert!(diff > 1e-4, "the narrow sub-model did not change ({diff})");
}

#[test]
fn sorting_llama_by_magnitude_keeps_the_dominant_heads_in_their_group() {
    let _rng = crate::rng_guard();
    let mut model = llama::<F>(7);
    let layer = &mut model.layers[2];
    // Query head 3 (the second of KV group 1, columns 12..16) and SwiGLU unit 17 dominate.
    scale(&mut layer.query, 0..16, 12..16, 50.0);
    scale(&mut layer.output, 12..16, 0..16, 50.0);
    for l in [&mut layer.gate, &mut layer.up] {
        scale(l, 0..16, 17..18, 50.0);
    }
    scale(&mut layer.down, 17..18, 0..16, 50.0);
    let original_query = model.layers[2].query.weight.val();
    let original_gate = model.layers[2].gate.weight.val();
    let scores = magnitude_llama(&model);
    let sorted = sort_llama(model.clone(), &scores).unwrap();
    // Head 3 is now the first head of group 1 (head 2, columns 8..12): the one-head-per-group
    // sub-model keeps it. It did not jump to group 0.
    assert_matches_dense(
        sorted.layers[2].query.weight.val().slice(s![.., 8..12]),
        original_query.slice(s![.., 12..16]),
        0.0,
    );
    assert_matches_dense(
        sorted.layers[2].gate.weight.val().slice(s![.., 0..1]),
        original_gate.slice(s![.., 17..18]),
        0.0,
    );
    for (i, layer) in magnitude_llama(&sorted).layers.iter().enumerate() {
        assert_descending(&format!("layer {i} heads, group 0"), &layer.heads[..2]);
        assert_descending(&format!("layer {i} heads, group 1"), &layer.heads[2..]);
        assert_descending(&format!("layer {i} ffn"), &layer.ffn);
    }
    assert_matches_dense(llama_logits(&sorted, 4, 24), llama_logits(&model, 4, 24), 1e-5);
}

#[test]
fn llama_scores_follow_the_units_when_sorted() {
    let _rng = crate::rng_guard();
    let model = llama::<B>(8);
    for score in [ImportanceScore::Magnitude, ImportanceScore::Activation, ImportanceScore::Taylor] {
        let scores = importance_llama(&model, llama_ids(), score).unwrap();
        let sorted = sort_llama(model.clone(), &scores).unwrap();
        let again = importance_llama(&sorted, llama_ids(), score).unwrap();
        for (i, (a, b)) in scores.layers.iter().zip(&again.layers).enumerate() {
            assert_eq!((a.heads.len(), a.ffn.len()), (4, 24));
            assert!(a.heads.iter().chain(&a.ffn).all(|s| s.is_finite() && *s >= 0.0), "{score:?}: {a:?}");
            assert!(a.heads.iter().any(|s| *s > 0.0), "{score:?} layer {i}: all zero");
            let mut heads = a.heads.clone();
            for group in heads.chunks_mut(2) {
                group.sort_by(|x, y| y.total_cmp(x));
            }
            let mut ffn = a.ffn.clone();
            ffn.sort_by(|x, y| y.total_cmp(x));
            assert_close(&format!("{score:?} layer {i} heads"), &b.heads, &heads);
            assert_close(&format!("{score:?} layer {i} ffn"), &b.ffn, &ffn);
        }
    }
}

#[test]
fn llama_taylor_scores_a_unit_without_output_weights_zero() {
    let _rng = crate::rng_guard();
    let mut model = llama::<B>(9);
    scale(&mut model.layers[1].down, 7..8, 0..16, 0.0);
    scale(&mut model.layers[3].output, 0..4, 0..16, 0.0);
    let taylor = importance_llama(&model, llama_ids(), ImportanceScore::Taylor).unwrap();
    assert_eq!(taylor.layers[1].ffn[7], 0.0);
    assert_eq!(taylor.layers[3].heads[0], 0.0);
    assert!(taylor.layers[1].ffn[6] > 0.0 && taylor.layers[3].heads[1] > 0.0);
    let one_token = Tensor::<B, 2, Int>::from_ints([[3]], &Default::default());
    assert!(matches!(
        importance_llama(&model, one_token, ImportanceScore::Taylor),
        Err(SortError::Calibration { what: "ids", .. })
    ));
}

// ---------------------------------------------------------------- MLP

#[test]
fn sorting_the_mlp_keeps_the_full_model_and_puts_the_dominant_unit_first() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    F::seed(&device, 10);
    // The last block is narrower than the head's allocation: only its rows move.
    let config = SortedMlpConfig { d_input: 16, n_classes: 3, hidden: vec![8, 6] };
    let mut model = config.init::<F>(&device);
    let space = mixed_space(&[&[8], &[6]]);
    let full = space.largest();
    let x = Tensor::<F, 4>::random([5, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let before = model.forward(x.clone(), &full, &mut NormPass::Batch);
    let scrambled_scores = MlpScores { blocks: vec![scrambled(8, 1), scrambled(6, 2)] };
    let sorted = sort_mlp(model.clone(), &scrambled_scores).unwrap();
    assert_matches_dense(sorted.forward(x.clone(), &full, &mut NormPass::Batch), before, 1e-5);

    scale(&mut model.blocks[0], 0..16, 5..6, 50.0);
    scale(&mut model.blocks[1], 5..6, 0..6, 50.0);
    let original = model.blocks[0].weight.val();
    let before = model.forward(x.clone(), &full, &mut NormPass::Batch);
    let sorted = sort_mlp(model.clone(), &magnitude_mlp(&model)).unwrap();
    assert_matches_dense(sorted.blocks[0].weight.val().slice(s![.., 0..1]), original.slice(s![.., 5..6]), 0.0);
    assert_matches_dense(sorted.forward(x, &full, &mut NormPass::Batch), before, 1e-5);
    for (i, block) in magnitude_mlp(&sorted).blocks.iter().enumerate() {
        assert_descending(&format!("block {i}"), block);
    }
    let short = MlpScores { blocks: vec![scrambled(8, 1)] };
    assert!(matches!(sort_mlp(model, &short), Err(SortError::LayerCount { what: "blocks", expected: 2, got: 1 })));
}

// ---------------------------------------------------------------- convolutional families

/// A seeded calibration batch of `n` 1x8x8 images and labels of 3 classes.
fn calibration<BB: Backend>(n: usize) -> (Tensor<BB, 4>, Tensor<BB, 1, Int>) {
    let device = Default::default();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    (crate::checks::images(n, [1, 8, 8], &device), Tensor::from_data(TensorData::new(labels, [n]), &device))
}

/// Random channel scores of the shape `like` (a model's own magnitude scores).
fn scrambled_channels(like: &ChannelScores) -> ChannelScores {
    ChannelScores { blocks: like.blocks.iter().enumerate().map(|(b, s)| scrambled(s.len(), b + 1)).collect() }
}

/// Sorting by scrambled scores and by each importance score keeps the full model's logits
/// (BatchNorm on batch statistics), the re-scored sorted model's scores descend, and wrong
/// scores are refused naming the block.
fn check_channel_sort<M: SortedClassifier<B> + Clone>(
    model: M,
    full: &SubModel,
    importance: impl Fn(&M, Tensor<B, 4>, Tensor<B, 1, Int>, ImportanceScore) -> Result<ChannelScores, SortError>,
    sort: impl Fn(M, &ChannelScores) -> Result<M, SortError>,
) {
    let (images, labels) = calibration::<B>(6);
    let logits = |m: &M| m.forward(images.clone(), full, &mut NormPass::Batch).inner();
    let before = logits(&model);
    let magnitude = importance(&model, images.clone(), labels.clone(), ImportanceScore::Magnitude).unwrap();
    let sorted = sort(model.clone(), &scrambled_channels(&magnitude)).unwrap();
    assert_matches_dense(logits(&sorted), before.clone(), 1e-5);
    for score in [ImportanceScore::Magnitude, ImportanceScore::Activation, ImportanceScore::Taylor] {
        let scores = importance(&model, images.clone(), labels.clone(), score).unwrap();
        assert_eq!(
            scores.blocks.iter().map(Vec::len).collect::<Vec<_>>(),
            magnitude.blocks.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert!(scores.blocks.iter().flatten().any(|&s| s > 0.0), "{score:?}: all scores zero");
        let sorted = sort(model.clone(), &scores).unwrap();
        assert_matches_dense(logits(&sorted), before.clone(), 1e-5);
        let again = importance(&sorted, images.clone(), labels.clone(), score).unwrap();
        for (b, block) in again.blocks.iter().enumerate() {
            let mut expected = scores.blocks[b].clone();
            expected.sort_by(|a, b| b.total_cmp(a));
            assert_close(&format!("{score:?} block {b}"), block, &expected);
        }
    }
    let mut short = magnitude.clone();
    let b = short.blocks.iter().position(|s| !s.is_empty()).unwrap();
    short.blocks[b].pop();
    let err = sort(model.clone(), &short).err().unwrap();
    assert!(matches!(err, SortError::ScoreLength { axis: "channels", layer, .. } if layer == b), "{err:?}");
    let (one, one_label) = calibration::<B>(1);
    assert!(matches!(
        importance(&model, one, one_label, ImportanceScore::Activation),
        Err(SortError::Calibration { what: "images", .. })
    ));
}

#[test]
fn sorting_the_cnn_keeps_the_full_model_and_the_scores_follow() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    B::seed(&device, 21);
    let space = mixed_space(&[&[2, 4], &[3, 6], &[4, 5]]);
    let config = SortedCnnConfig::for_space(1, [8, 8], 3, &space, vec![1, 2, 1]);
    check_channel_sort(
        config.init::<B>(&device),
        &space.largest(),
        |m, x, y, s| importance_channels(m, &space.largest(), x, y, s),
        sort_cnn,
    );
    let switchable = config.with_switchable_bn(&space).init::<B>(&device);
    let scores = magnitude_cnn(&switchable);
    let err = sort_cnn(switchable, &scores).err().unwrap();
    assert_eq!(
        err.to_string(),
        "norms[0] keeps switchable BatchNorm statistics for widths [2, 4]; sort a model without them"
    );
}

#[test]
fn sorting_the_resnet_keeps_the_full_model_and_the_scores_follow() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    B::seed(&device, 22);
    let space = mixed_space(&[&[2, 4], &[3, 4], &[3, 6], &[5, 8]]);
    check_channel_sort(
        SortedResNetConfig::tiny().init::<B>(&device),
        &space.largest(),
        |m, x, y, s| importance_channels(m, &space.largest(), x, y, s),
        sort_resnet,
    );
}

#[test]
fn sorting_the_mobilenet_v2_keeps_the_full_model_and_the_scores_follow() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    B::seed(&device, 23);
    let space = mixed_space(&[&[2, 3], &[2, 4], &[3, 4], &[4, 6]]);
    let model = SortedMobileNetV2Config::tiny().init::<B>(&device);
    // Block 0 has expansion 1: nothing to sort there.
    assert!(magnitude_mobilenet_v2(&model).blocks[0].is_empty());
    check_channel_sort(
        model,
        &space.largest(),
        |m, x, y, s| importance_channels(m, &space.largest(), x, y, s),
        sort_mobilenet_v2,
    );
}
