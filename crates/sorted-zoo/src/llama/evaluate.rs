//! Next-token accuracy and perplexity of a sorted decoder's sub-models on held-out text, with
//! each one's cost at the window length and the time the scoring took.

use std::time::Instant;

use burn::prelude::*;
use sorted_data::LmChunks;
use sorted_nn::TransformerSubModel;

use super::model::SortedLlama;

/// One sub-model's score from [`evaluate_llama_sub_models`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LlamaSubModelScore {
    /// The sub-model.
    pub sub: TransformerSubModel,
    /// Parameters it uses.
    pub params: u64,
    /// FLOPs per window of the evaluated length.
    pub flops: u64,
    /// Next-token top-1 accuracy, in `[0, 1]`.
    pub accuracy: f64,
    /// Perplexity on the text.
    pub perplexity: f64,
}

/// The scores of [`evaluate_llama_sub_models`], and what scoring took.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaEvaluation {
    /// One score a sub-model, in the given order.
    pub scores: Vec<LlamaSubModelScore>,
    /// Tokens each sub-model predicted (0 without sub-models).
    pub tokens: usize,
    /// Wall-clock seconds the scoring of all sub-models took.
    pub seconds: f64,
}

/// Scores each of `subs` of `model` on the windows of `text` ([`SortedLlama::score`]: one
/// forward pass per distinct width), with its cost on windows of `seq_len` tokens.
pub fn evaluate_llama_sub_models<B: Backend>(
    model: &SortedLlama<B>,
    text: &LmChunks,
    subs: &[TransformerSubModel],
    seq_len: usize,
    device: &B::Device,
) -> LlamaEvaluation {
    let started = Instant::now();
    let scores = model.score(text, subs, device);
    let seconds = started.elapsed().as_secs_f64();
    let tokens = scores.first().map_or(0, |s| s.tokens);
    let scores = subs
        .iter()
        .zip(&scores)
        .map(|(sub, score)| {
            let cost = model.cost(sub, seq_len);
            LlamaSubModelScore {
                sub: *sub,
                params: cost.params,
                flops: cost.flops,
                accuracy: score.accuracy,
                perplexity: score.perplexity(),
            }
        })
        .collect();
    LlamaEvaluation { scores, tokens, seconds }
}
