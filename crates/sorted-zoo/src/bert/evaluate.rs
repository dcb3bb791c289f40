//! Sentence-classification accuracy of a sorted BERT's sub-models on a tokenized set, with each
//! one's cost at the set's mean sentence length and its measured forward time.

use std::time::Instant;

use burn::prelude::*;
use sorted_data::{TextBatch, TextBatcher, TokenizedDataset};
use sorted_nn::TransformerSubModel;

use super::model::SortedBert;

/// One sub-model's score from [`evaluate_bert_sub_models`].
#[derive(Clone, Debug, PartialEq)]
pub struct BertSubModelScore {
    /// The sub-model.
    pub sub: TransformerSubModel,
    /// Parameters it uses.
    pub params: u64,
    /// FLOPs per sentence at the set's mean length (rounded, at least 1).
    pub flops: u64,
    /// Share of the set's sentences it labels correctly, in `[0, 1]` (0 on an empty set).
    pub accuracy: f64,
    /// Wall-clock seconds its forward passes over the whole set took.
    pub seconds: f64,
}

/// Evaluates each of `subs` of `model` on `set`: batches of `batch_size` sentences (each cut to
/// `max_len` tokens) taken in order of sentence length, so each pads little (accuracy does not
/// depend on the order); the batches are built once and shared by every sub-model.
/// `on_scored` is called after each sub-model (a progress bar, say).
pub fn evaluate_bert_sub_models<B: Backend>(
    model: &SortedBert<B>,
    set: &TokenizedDataset,
    subs: &[TransformerSubModel],
    max_len: usize,
    batch_size: usize,
    device: &B::Device,
    mut on_scored: impl FnMut(&BertSubModelScore),
) -> Vec<BertSubModelScore> {
    let mut order: Vec<usize> = (0..set.len()).collect();
    order.sort_by_key(|&i| set.sequences[i].len());
    let batcher = TextBatcher::new(max_len);
    let batches: Vec<TextBatch<B>> = order.chunks(batch_size).map(|chunk| batcher.batch(set, chunk, device)).collect();
    let mean_len =
        (set.sequences.iter().map(Vec::len).sum::<usize>() as f64 / set.len().max(1) as f64).round() as usize;
    let mut scores = Vec::with_capacity(subs.len());
    for sub in subs {
        let started = Instant::now();
        let mut correct = 0usize;
        for b in &batches {
            let logits = model.forward(b.input_ids.clone(), None, b.attention_mask.clone(), sub);
            let predicted = logits.argmax(1).flatten::<1>(0, 1);
            let hits = predicted.equal(b.labels.clone()).int().sum().into_scalar().elem::<i64>();
            correct += hits as usize;
        }
        let seconds = started.elapsed().as_secs_f64();
        let cost = model.cost(sub, mean_len.max(1));
        let score = BertSubModelScore {
            sub: *sub,
            params: cost.params,
            flops: cost.flops,
            accuracy: correct as f64 / set.len().max(1) as f64,
            seconds,
        };
        on_scored(&score);
        scores.push(score);
    }
    scores
}
