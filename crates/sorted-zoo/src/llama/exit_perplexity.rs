//! The perplexity of every exit × width of a decoder on held-out text, from one forward pass per
//! window and width (the exits share the final norm and LM head), with each exit's top-1
//! agreement with the full model: the rate at which greedy self-speculative decoding would accept
//! that exit's drafts on this text.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use sorted_data::LmChunks;

use sorted_nn::TransformerSubModel;

use super::SortedLlama;

/// Why [`exit_perplexity`] refused its inputs.
#[derive(Debug, thiserror::Error)]
pub enum ExitPerplexityError {
    /// An exit outside `1..=n_layers`.
    #[error("exit {exit}: expected depths in 1..={n_layers}")]
    Exit {
        /// The exit asked for.
        exit: usize,
        /// The model's layers.
        n_layers: usize,
    },
    /// A width the model does not have (query heads not a multiple of the KV heads, or more
    /// heads or SwiGLU units than allocated).
    #[error(
        "width {heads} query heads x {ffn} SwiGLU units: the model has {max_heads} query heads over {kv_heads} KV \
         heads and {max_ffn} SwiGLU units"
    )]
    Width {
        /// Query heads asked for.
        heads: usize,
        /// SwiGLU units asked for.
        ffn: usize,
        /// The model's query heads.
        max_heads: usize,
        /// The model's KV heads.
        kv_heads: usize,
        /// The model's SwiGLU units.
        max_ffn: usize,
    },
    /// No exit, no width, or no window of text.
    #[error("nothing to score: {0}")]
    Empty(&'static str),
}

/// Summed losses of every exit × width over the windows [`exit_perplexity`] scored.
#[derive(Clone, Debug, PartialEq)]
pub struct ExitPerplexity {
    /// The exits (layers run), ascending.
    pub exits: Vec<usize>,
    /// The widths, in the order given: sub-models whose query heads and SwiGLU units are
    /// scored at every exit (their depths are not used; [`Self::exits`] are).
    pub widths: Vec<TransformerSubModel>,
    /// Target tokens scored (every exit × width scores the same ones).
    pub tokens: usize,
    /// Summed negative log-likelihood, `[width][exit]`, nats.
    pub nll: Vec<Vec<f64>>,
    /// Positions where the exit's most likely next token is the full model's, `[width][exit]`.
    pub agree: Vec<Vec<usize>>,
}

impl ExitPerplexity {
    /// Mean negative log-likelihood per token of width `w` at exit `e` (indices into
    /// [`Self::widths`] and [`Self::exits`]).
    pub fn nll_per_token(&self, w: usize, e: usize) -> f64 {
        self.nll[w][e] / self.tokens as f64
    }

    /// Perplexity of width `w` at exit `e`: `exp` of [`Self::nll_per_token`].
    pub fn perplexity(&self, w: usize, e: usize) -> f64 {
        self.nll_per_token(w, e).exp()
    }

    /// Percentage of positions where width `w` at exit `e` picks the full model's top-1 token.
    pub fn agreement_percent(&self, w: usize, e: usize) -> f64 {
        100.0 * self.agree[w][e] as f64 / self.tokens as f64
    }
}

/// Scores `model` on every window of `chunks` at each of `exits` (sorted and deduplicated here)
/// and the widths (query heads and SwiGLU units) of each of `widths`, whatever its depth,
/// through the shared final norm and head; one forward pass per window and width (the full
/// width also runs to the last layer, for the full model's choices).
///
/// # Errors
/// An exit outside the model's depth, a width it does not have, or nothing to score.
pub fn exit_perplexity<B: Backend>(
    model: &SortedLlama<B>,
    chunks: &LmChunks,
    exits: &[usize],
    widths: &[TransformerSubModel],
    device: &B::Device,
) -> Result<ExitPerplexity, ExitPerplexityError> {
    let n_layers = model.layers.len();
    let full = model.full_sub_model();
    let full_widths = |w: &TransformerSubModel| (w.heads, w.ffn) == (full.heads, full.ffn);
    let mut exits = exits.to_vec();
    exits.sort_unstable();
    exits.dedup();
    if let Some(&exit) = exits.iter().find(|&&e| !(1..=n_layers).contains(&e)) {
        return Err(ExitPerplexityError::Exit { exit, n_layers });
    }
    let kv_heads = model.layers.first().map_or(1, |l| l.num_kv_heads);
    if let Some(w) = widths.iter().find(|w| {
        w.heads == 0 || w.heads > full.heads || !w.heads.is_multiple_of(kv_heads) || w.ffn == 0 || w.ffn > full.ffn
    }) {
        return Err(ExitPerplexityError::Width {
            heads: w.heads,
            ffn: w.ffn,
            max_heads: full.heads,
            kv_heads,
            max_ffn: full.ffn,
        });
    }
    if exits.is_empty() {
        return Err(ExitPerplexityError::Empty("no exit"));
    }
    if widths.is_empty() {
        return Err(ExitPerplexityError::Empty("no width"));
    }
    if chunks.is_empty() {
        return Err(ExitPerplexityError::Empty("no window of text"));
    }
    let mut nll = vec![vec![0.0f64; exits.len()]; widths.len()];
    let mut agree = vec![vec![0usize; exits.len()]; widths.len()];
    let mut count = 0usize;
    for i in 0..chunks.len() {
        let batch = chunks.batch::<B>(&[i], device);
        let [_, s] = batch.targets.dims();
        let targets = batch.targets.clone().reshape([s, 1]);
        let mut full_top: Option<Tensor<B, 2, Int>> = None;
        let mut tops = Vec::with_capacity(widths.len());
        for (w, width) in widths.iter().enumerate() {
            // The full-width pass also runs to the last layer, for the full model's choices.
            let mut depths = exits.clone();
            if full_widths(width) && !depths.contains(&full.depth) {
                depths.push(full.depth);
            }
            let logits = model.forward_exits(batch.inputs.clone(), &depths, width);
            let mut top = Vec::with_capacity(exits.len());
            for (&depth, l) in depths.iter().zip(logits) {
                let [_, _, v] = l.dims();
                let l = l.reshape([s, v]);
                let argmax = l.clone().argmax(1);
                if depth == full.depth && full_widths(width) {
                    full_top = Some(argmax.clone());
                }
                if let Some(e) = exits.iter().position(|&x| x == depth) {
                    let logp = log_softmax(l, 1);
                    nll[w][e] -= logp.gather(1, targets.clone()).sum().into_scalar().elem::<f64>();
                    top.push(argmax);
                }
            }
            tops.push(top);
        }
        let full_top = match full_top {
            Some(t) => t,
            None => {
                let l = model.forward_exits(batch.inputs.clone(), &[full.depth], &full).remove(0);
                let v = l.dims()[2];
                l.reshape([s, v]).argmax(1)
            }
        };
        for (w, top) in tops.into_iter().enumerate() {
            for (e, t) in top.into_iter().enumerate() {
                agree[w][e] += t.equal(full_top.clone()).int().sum().into_scalar().elem::<i64>() as usize;
            }
        }
        count += s;
    }
    Ok(ExitPerplexity { exits, widths: widths.to_vec(), tokens: count, nll, agree })
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use sorted_data::LmChunks;

    use super::{ExitPerplexityError, exit_perplexity};
    use crate::llama::SortedLlamaConfig;

    #[test]
    fn the_full_model_agrees_with_itself_and_bad_exits_are_refused() {
        let device = Default::default();
        let config = SortedLlamaConfig::tiny();
        let model = config.init::<Flex>(&device);
        let full = model.full_sub_model();
        let n = model.layers.len();
        let ids: Vec<u32> = (0..33u32).map(|i| (i * 7) % 50).collect();
        let chunks = LmChunks::new(ids, 8);
        let mut half = full;
        half.ffn = full.ffn / 2;
        let scores = exit_perplexity(&model, &chunks, &[n, 1, 1], &[half, full], &device).unwrap();
        assert_eq!(scores.exits, [1, n], "sorted and deduplicated");
        assert_eq!(scores.tokens, chunks.n_targets());
        assert_eq!(scores.agreement_percent(1, 1), 100.0, "the full model picks its own tokens");
        assert!(scores.perplexity(0, 0).is_finite() && scores.perplexity(0, 0) > 1.0);
        let err = exit_perplexity(&model, &chunks, &[n + 1], &[full], &device).unwrap_err();
        assert!(matches!(err, ExitPerplexityError::Exit { exit, .. } if exit == n + 1));
        let mut wide = full;
        wide.ffn = full.ffn + 1;
        assert!(matches!(
            exit_perplexity(&model, &chunks, &[1], &[wide], &device),
            Err(ExitPerplexityError::Width { .. })
        ));
    }
}
