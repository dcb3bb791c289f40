//! How well each sub-model of a decoder predicts a text: mean negative log-likelihood per
//! token (perplexity = its exp) and next-token top-1 accuracy, with each sub-model's cost.
//! Sub-models of one width share a forward pass (their exits are read off the way up).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use sorted_data::LmChunks;
use sorted_nn::{Cost, TransformerSubModel};

use super::SortedLlama;

/// One sub-model's score on a text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmScore {
    /// Mean negative log-likelihood per predicted token (nats).
    pub nll: f64,
    /// Share of tokens whose most likely prediction is the next token.
    pub accuracy: f64,
    /// Tokens predicted.
    pub tokens: usize,
}

impl LmScore {
    /// `exp(nll)`.
    pub fn perplexity(&self) -> f64 {
        self.nll.exp()
    }
}

impl<B: Backend> SortedLlama<B> {
    /// Scores every sub-model of `subs` on every window of `text` (one window per forward
    /// pass), in the order of `subs`.
    ///
    /// # Panics
    /// If a sub-model exceeds the allocation (check the space with
    /// [`SortedLlama::check_space`] first).
    pub fn score(&self, text: &LmChunks, subs: &[TransformerSubModel], device: &B::Device) -> Vec<LmScore> {
        let mut nll = vec![0.0f64; subs.len()];
        let mut hits = vec![0usize; subs.len()];
        let mut tokens = 0usize;
        // One forward pass per window and width: a sub-model of each distinct (heads, FFN)
        // width runs every exit of that width.
        let widths_of = |t: &TransformerSubModel| (t.heads, t.ffn);
        let mut widths: Vec<&TransformerSubModel> = subs.iter().collect();
        widths.sort_unstable_by_key(|t| widths_of(t));
        widths.dedup_by_key(|t| widths_of(t));
        for i in 0..text.len() {
            let batch = text.batch::<B>(&[i], device);
            let [_, s] = batch.targets.dims();
            let targets = batch.targets.reshape([s, 1]);
            for &width in &widths {
                let mut depths: Vec<usize> =
                    subs.iter().filter(|t| widths_of(t) == widths_of(width)).map(|t| t.depth).collect();
                depths.sort_unstable();
                depths.dedup();
                for (&depth, logits) in depths.iter().zip(self.forward_exits(batch.inputs.clone(), &depths, width)) {
                    let v = logits.dims()[2];
                    let logits = logits.reshape([s, v]);
                    let predicted = logits.clone().argmax(1);
                    let sum_nll = -log_softmax(logits, 1).gather(1, targets.clone()).sum().into_scalar().elem::<f64>();
                    let correct = predicted.equal(targets.clone()).int().sum().into_scalar().elem::<i64>() as usize;
                    for (j, sub) in subs.iter().enumerate() {
                        if sub.depth == depth && widths_of(sub) == widths_of(width) {
                            nll[j] += sum_nll;
                            hits[j] += correct;
                        }
                    }
                }
            }
            tokens += s;
        }
        let n = tokens.max(1) as f64;
        nll.iter().zip(hits).map(|(&l, h)| LmScore { nll: l / n, accuracy: h as f64 / n, tokens }).collect()
    }

    /// Parameters used by `sub` (the tied embedding counted once, the final norm included) and
    /// its FLOPs per token at a context of `seq_len` tokens (multiply-add = 2; the LM head
    /// included).
    pub fn cost(&self, sub: &TransformerSubModel, seq_len: usize) -> Cost {
        let [vocab, d] = self.embedding.dims();
        let l0 = &self.layers[0];
        let (hd, kv, heads, ffn) = (l0.head_dim as u64, l0.num_kv_heads as u64, sub.heads as u64, sub.ffn as u64);
        let d = d as u64;
        let attention = d * heads * hd * 2 + d * kv * hd * 2;
        let per_layer = attention + 3 * d * ffn + 2 * d;
        let params = vocab as u64 * d + d + sub.depth as u64 * per_layer;
        // Scores and the weighted sum: 2 products of `heads x hd` per context position.
        let attention_flops = 2 * 2 * heads * hd * seq_len as u64;
        let flops = 2 * (sub.depth as u64 * (attention + 3 * d * ffn))
            + sub.depth as u64 * attention_flops
            + 2 * vocab as u64 * d;
        Cost { params, flops }
    }
}
