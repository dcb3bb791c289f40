//! Timing decoding modes on a prompt set against plain greedy decoding: greedy by the full model
//! or a sub-model, lossless self-speculative decoding (drafted by the model's own first layers,
//! with its acceptance statistics) and lossy early exit, each as one [`DecodeRow`] of a report.

use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;
use sorted_nn::TransformerSubModel;

use super::{DecodeStats, EarlyExitConfig, LlamaDecoder, SpeculativeConfig};

/// One decoding mode over a prompt set: its outputs, summed statistics and wall time.
#[derive(Clone, Debug, Default)]
pub struct DecodeRun {
    /// The generated ids of each prompt, in order.
    pub outputs: Vec<Vec<u32>>,
    /// Statistics summed over the prompts (times included).
    pub stats: DecodeStats,
    /// Wall time over all prompts, seconds.
    pub seconds: f64,
}

impl DecodeRun {
    /// Generated tokens per second over all prompts.
    pub fn tokens_per_second(&self) -> f64 {
        self.stats.generated as f64 / self.seconds.max(1e-9)
    }

    /// Whether every prompt decoded to `other`'s tokens, token for token.
    pub fn identical_to(&self, other: &DecodeRun) -> bool {
        self.outputs == other.outputs
    }

    /// How many prompts decoded exactly as in `other`.
    pub fn same_outputs(&self, other: &DecodeRun) -> usize {
        self.outputs.iter().zip(&other.outputs).filter(|(a, b)| a == b).count()
    }

    /// Tokens, summed over prompts, that agree with `other`'s before the first difference.
    pub fn agreeing_tokens(&self, other: &DecodeRun) -> usize {
        self.outputs.iter().zip(&other.outputs).map(|(a, b)| agreeing_prefix(a, b)).sum()
    }
}

/// The length of the common prefix of `a` and `b`.
fn agreeing_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Decodes every prompt of `prompts` (token ids, each non-empty) with `sub` of `decoder`: plain
/// greedy decoding, or self-speculative decoding with `speculative`; at most `max_new` tokens
/// each, stopping at `stop`. Times the whole set.
///
/// # Panics
/// An empty prompt, or a speculative configuration `sub` cannot run (see
/// [`LlamaDecoder::speculative_greedy`]).
pub fn time_decoding<B: Backend>(
    decoder: &LlamaDecoder<B>,
    sub: &TransformerSubModel,
    prompts: &[Vec<u32>],
    max_new: usize,
    stop: Option<u32>,
    speculative: Option<&SpeculativeConfig>,
) -> DecodeRun {
    let mut outputs = Vec::with_capacity(prompts.len());
    let mut total = DecodeStats::default();
    let started = Instant::now();
    for ids in prompts {
        let (out, stats) = match speculative {
            None => decoder.greedy(sub, ids, max_new, stop),
            Some(config) => decoder.speculative_greedy(sub, config, ids, max_new, stop),
        };
        total.generated += stats.generated;
        total.proposed += stats.proposed;
        total.accepted += stats.accepted;
        total.full_passes += stats.full_passes;
        total.draft_passes += stats.draft_passes;
        total.greedy_steps += stats.greedy_steps;
        total.draft_time += stats.draft_time;
        total.verify_time += stats.verify_time;
        outputs.push(out);
    }
    DecodeRun { outputs, stats: total, seconds: started.elapsed().as_secs_f64() }
}

/// Lossy early-exit decoding over a prompt set, compared with plain greedy decoding.
#[derive(Clone, Debug, Default)]
pub struct EarlyExitRun {
    /// Prompts decoded.
    pub prompts: usize,
    /// Tokens generated over all prompts.
    pub generated: usize,
    /// Layers run over all prompts (see [`super::EarlyExitStats::layers_run`]).
    pub layers_run: usize,
    /// Tokens, summed over prompts, that agree with greedy's before the first difference.
    pub agreeing_tokens: usize,
    /// Whether every output equals greedy's.
    pub identical: bool,
    /// Wall time over all prompts, seconds.
    pub seconds: f64,
}

impl EarlyExitRun {
    /// Generated tokens per second over all prompts.
    pub fn tokens_per_second(&self) -> f64 {
        self.generated as f64 / self.seconds.max(1e-9)
    }

    /// Percentage of the layers the `depth`-layer model would have run for the same tokens (each
    /// prompt's first token comes from the prompt's full pass, which is not counted).
    pub fn layers_percent(&self, depth: usize) -> f64 {
        let full_layers = self.generated.saturating_sub(self.prompts) * depth;
        100.0 * self.layers_run as f64 / full_layers.max(1) as f64
    }
}

/// Decodes every prompt with early exit (`config`) from `full` of `decoder`, comparing each
/// output with greedy's (`greedy`, the same prompts' plain decoding). Times the whole set.
///
/// # Panics
/// An empty prompt, or exits `full` cannot run (see [`LlamaDecoder::early_exit_greedy`]).
pub fn time_early_exit<B: Backend>(
    decoder: &LlamaDecoder<B>,
    full: &TransformerSubModel,
    config: &EarlyExitConfig,
    prompts: &[Vec<u32>],
    greedy: &DecodeRun,
    max_new: usize,
    stop: Option<u32>,
) -> EarlyExitRun {
    let started = Instant::now();
    let mut run = EarlyExitRun { prompts: prompts.len(), identical: true, ..Default::default() };
    for (ids, reference) in prompts.iter().zip(&greedy.outputs) {
        let (out, stats) = decoder.early_exit_greedy(full, config, ids, max_new, stop);
        run.generated += stats.generated;
        run.layers_run += stats.layers_run;
        run.agreeing_tokens += agreeing_prefix(&out, reference);
        run.identical &= out == *reference;
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

/// One decoding mode on one prompt set, as a decoding benchmark reports it.
#[derive(Clone, Debug, Serialize)]
pub struct DecodeRow {
    /// `greedy` or `speculative (draft depth N)`.
    pub mode: String,
    /// Draft depth (0 for plain greedy).
    pub draft_depth: usize,
    /// Tokens generated over all prompts.
    pub tokens: usize,
    /// Wall time over all prompts, seconds.
    pub seconds: f64,
    /// Tokens per second.
    pub tokens_per_second: f64,
    /// Speed-up over plain greedy (same run).
    pub speedup: f64,
    /// Accepted / proposed draft tokens.
    pub acceptance_rate: f64,
    /// Tokens emitted per full-model (verification) pass.
    pub tokens_per_full_pass: f64,
    /// Whether every output equals plain greedy's token for token.
    pub identical: bool,
    /// A row of another model, timed for comparison (the full model when `--sub-model` picks
    /// a smaller one): its outputs are not expected to equal greedy's.
    pub reference: bool,
    /// Mean milliseconds per drafted token (speculative only; 0 otherwise).
    pub ms_per_draft_token: f64,
    /// Mean milliseconds per verification pass (speculative only; 0 otherwise).
    pub ms_per_verification: f64,
    /// Mean drafted tokens per verification pass (speculative only; 0 otherwise).
    pub drafted_per_verification: f64,
    /// Plain full-model steps the greedy fallback took instead of speculative cycles
    /// (speculative with `--fallback-probe` only; 0 otherwise).
    pub greedy_steps: usize,
}

impl DecodeRow {
    /// A row without a drafter (greedy or early exit): speed-up against `plain_tps`.
    pub fn undrafted(
        mode: String,
        tokens: usize,
        seconds: f64,
        plain_tps: f64,
        tokens_per_full_pass: f64,
        identical: bool,
    ) -> Self {
        let tokens_per_second = tokens as f64 / seconds.max(1e-9);
        DecodeRow {
            mode,
            draft_depth: 0,
            tokens,
            seconds,
            tokens_per_second,
            speedup: tokens_per_second / plain_tps.max(1e-12),
            acceptance_rate: 0.0,
            tokens_per_full_pass,
            identical,
            reference: false,
            ms_per_draft_token: 0.0,
            ms_per_verification: 0.0,
            drafted_per_verification: 0.0,
            greedy_steps: 0,
        }
    }

    /// A greedy row of `run` against plain greedy decoding `plain`; `reference`: another model's
    /// (or weights') tokens, not expected to equal greedy's.
    pub fn greedy(mode: String, run: &DecodeRun, plain: &DecodeRun, reference: bool) -> Self {
        let mut row = Self::undrafted(
            mode,
            run.stats.generated,
            run.seconds,
            plain.tokens_per_second(),
            run.stats.tokens_per_pass(),
            run.identical_to(plain),
        );
        row.reference = reference;
        row
    }

    /// A self-speculative row of `run` (drafted by the first `draft_depth` layers) against plain
    /// greedy decoding `plain` of the same prompts, with the acceptance statistics and the mean
    /// cost of a drafted token and of a verification pass.
    pub fn speculative(mode: String, draft_depth: usize, run: &DecodeRun, plain: &DecodeRun) -> Self {
        let stats = &run.stats;
        let tps = run.tokens_per_second();
        // Every prompt's first pass runs the whole model on the prompt; the rest verify, or are
        // the greedy fallback's steps.
        let verifications = stats.full_passes.saturating_sub(run.outputs.len() + stats.greedy_steps);
        DecodeRow {
            mode,
            draft_depth,
            tokens: stats.generated,
            seconds: run.seconds,
            tokens_per_second: tps,
            speedup: tps / plain.tokens_per_second().max(1e-12),
            acceptance_rate: stats.acceptance_rate(),
            tokens_per_full_pass: stats.tokens_per_pass(),
            identical: run.identical_to(plain),
            reference: false,
            ms_per_draft_token: 1e3 * stats.draft_time.as_secs_f64() / stats.draft_passes.max(1) as f64,
            ms_per_verification: 1e3 * stats.verify_time.as_secs_f64() / verifications.max(1) as f64,
            drafted_per_verification: stats.proposed as f64 / verifications.max(1) as f64,
            greedy_steps: stats.greedy_steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::{DecodeRow, time_decoding};
    use crate::llama::{LlamaDecoder, LlamaSubModels, SortedLlamaConfig, SpeculativeConfig};

    #[test]
    fn speculative_decoding_times_identical_to_greedy_with_its_acceptance() {
        let device = Default::default();
        let model = SortedLlamaConfig::tiny().init::<Flex>(&device);
        let full = LlamaSubModels::of(&model).full().unwrap();
        let decoder = LlamaDecoder::new(&model);
        let prompts = vec![vec![1, 2, 3], vec![7, 8]];
        let plain = time_decoding(&decoder, &full, &prompts, 6, None, None);
        assert_eq!(plain.outputs.len(), 2);
        let config = SpeculativeConfig {
            draft_depth: 2,
            initial_draft: 2,
            max_draft: 4,
            adaptive: true,
            draft_vocab: None,
            bonus_token: false,
            fallback_probe: None,
        };
        let spec = time_decoding(&decoder, &full, &prompts, 6, None, Some(&config));
        assert!(spec.identical_to(&plain), "lossless");
        assert_eq!(spec.agreeing_tokens(&plain), plain.stats.generated);
        let row = DecodeRow::speculative("speculative".into(), 2, &spec, &plain);
        assert!(row.identical && row.draft_depth == 2 && row.tokens == plain.stats.generated);
        assert!((0.0..=1.0).contains(&row.acceptance_rate));
        let greedy = DecodeRow::greedy("greedy".into(), &plain, &plain, false);
        assert!(greedy.identical && (greedy.speedup - 1.0).abs() < 1e-9);
    }
}
