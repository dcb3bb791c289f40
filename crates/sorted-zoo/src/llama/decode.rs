//! Greedy decoding with a KV cache, and lossless self-speculative decoding in which a shallow
//! sub-model of the same weights drafts tokens for the full model.

use burn::prelude::*;
use sorted_nn::TransformerSubModel;

use super::model::{DecodeWeights, KvCache, LlamaWidth, SortedLlama};

/// What a decoding call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Tokens generated.
    pub generated: usize,
    /// Draft tokens proposed (speculative decoding only).
    pub proposed: usize,
    /// Draft tokens the full model accepted.
    pub accepted: usize,
    /// Verification passes of the full model's remaining layers (speculative) or full-model
    /// passes (greedy).
    pub full_passes: usize,
    /// Single-token passes of the draft.
    pub draft_passes: usize,
    /// Wall time spent drafting (speculative decoding only).
    pub draft_time: std::time::Duration,
    /// Wall time spent in verification passes (speculative decoding only).
    pub verify_time: std::time::Duration,
}

impl DecodeStats {
    /// Accepted / proposed draft tokens (0 when nothing was proposed).
    pub fn acceptance_rate(&self) -> f64 {
        if self.proposed == 0 { 0.0 } else { self.accepted as f64 / self.proposed as f64 }
    }

    /// Mean tokens emitted per verification pass.
    pub fn tokens_per_pass(&self) -> f64 {
        if self.full_passes == 0 { 0.0 } else { self.generated as f64 / self.full_passes as f64 }
    }
}

fn last_argmax<B: Backend>(logits: Tensor<B, 3>) -> u32 {
    let [_, s, v] = logits.dims();
    let last = logits.slice(s![0..1, s - 1..s, ..]).reshape([v]);
    last.argmax(0).into_scalar().elem::<i64>() as u32
}

fn argmax_all<B: Backend>(logits: Tensor<B, 3>) -> Vec<u32> {
    let [_, s, v] = logits.dims();
    logits.reshape([s, v]).argmax(1).into_data().iter::<i64>().map(|t| t as u32).collect()
}

fn ids<B: Backend>(tokens: &[u32], device: &B::Device) -> Tensor<B, 2, Int> {
    let values: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::<B, 1, Int>::from_data(TensorData::new(values, [tokens.len()]), device).reshape([1, tokens.len()])
}

/// A model ready to decode: the model, and optionally its projections copied into the decoding
/// layout ([`SortedLlama::decode_weights`]), which makes the few-row products of decoding
/// faster on Flex at the cost of a second copy of the layer weights. Both give the same tokens
/// (up to floating-point near-ties; the free functions [`greedy`], [`speculative_greedy`] and
/// [`early_exit_greedy`] use the model's own layout).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
/// use sorted_zoo::llama::{LlamaDecoder, SortedLlamaConfig, SpeculativeConfig};
///
/// let model = SortedLlamaConfig::tiny().init::<Flex>(&Default::default());
/// let space = TransformerSpace::new(
///     TransformerSpaceConfig { depths: vec![4], heads: vec![4], ffn: vec![24], hidden: None },
///     16,
/// )?;
/// let full = space.largest();
/// let decoder = LlamaDecoder::with_decode_layout(&model);
/// let (plain, _) = decoder.greedy(&full, &[1, 2, 3], 8, None);
/// let config = SpeculativeConfig { draft_depth: 2, initial_draft: 3, max_draft: 6, adaptive: true, draft_vocab: None };
/// let (fast, stats) = decoder.speculative_greedy(&full, &config, &[1, 2, 3], 8, None);
/// assert_eq!(fast, plain);
/// assert!(stats.accepted <= stats.proposed);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Debug)]
pub struct LlamaDecoder<'a, B: Backend> {
    model: &'a SortedLlama<B>,
    weights: Option<DecodeWeights<B>>,
}

impl<'a, B: Backend> LlamaDecoder<'a, B> {
    /// Decodes with the model's own weights and layout.
    pub fn new(model: &'a SortedLlama<B>) -> Self {
        Self { model, weights: None }
    }

    /// Decodes with the projections copied into the decoding layout (built once here).
    pub fn with_decode_layout(model: &'a SortedLlama<B>) -> Self {
        Self { model, weights: Some(model.decode_weights()) }
    }

    /// The model.
    pub fn model(&self) -> &'a SortedLlama<B> {
        self.model
    }

    fn run_layers(
        &self,
        x: Tensor<B, 3>,
        from: usize,
        to: usize,
        width: LlamaWidth,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        self.model.run_layers_with(x, from, to, width, cache, self.weights.as_ref())
    }

    fn forward(&self, ids: Tensor<B, 2, Int>, sub: &TransformerSubModel, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let x = burn::tensor::module::embedding(self.model.embedding.val(), ids);
        self.model.head(self.run_layers(x, 0, sub.depth, sub.into(), cache))
    }

    /// Greedy decoding of sub-model `sub`: feeds `prompt` (at least one token) once, then one
    /// token per step through the KV cache, until `max_new` tokens or `stop` is produced (the stop
    /// token is included in the output).
    ///
    /// # Panics
    /// If `prompt` is empty.
    pub fn greedy(
        &self,
        sub: &TransformerSubModel,
        prompt: &[u32],
        max_new: usize,
        stop: Option<u32>,
    ) -> (Vec<u32>, DecodeStats) {
        assert!(!prompt.is_empty(), "greedy: empty prompt");
        let device = self.model.embedding.device();
        let mut cache = KvCache::new();
        let mut stats = DecodeStats::default();
        let mut out = Vec::with_capacity(max_new);
        if max_new == 0 {
            return (out, stats);
        }
        let mut next = last_argmax(self.forward(ids::<B>(prompt, &device), sub, &mut cache));
        stats.full_passes += 1;
        loop {
            out.push(next);
            if out.len() == max_new || Some(next) == stop {
                break;
            }
            next = last_argmax(self.forward(ids::<B>(&[next], &device), sub, &mut cache));
            stats.full_passes += 1;
        }
        stats.generated = out.len();
        (out, stats)
    }

    /// Self-speculative greedy decoding of `full` (usually the whole model; any sub-model works,
    /// its drafter then being its own first layers at its widths): the first `draft_depth`
    /// layers (through the shared final norm and head) propose up to `n` tokens one at a time; the full model's
    /// remaining layers then check all of them in one pass, starting from the draft's hidden
    /// states (the shared layers are computed once and their KV cache is the full model's). The
    /// longest agreeing prefix is kept plus the full model's own next token, so the output is
    /// token for token the full model's greedy output (up to floating-point near-ties between a
    /// batched and a one-token pass). Rejected positions are dropped from the cache.
    ///
    /// # Panics
    /// If `prompt` is empty, `draft_depth` is not below `full.depth`, or `full`'s widths do not
    /// fit the model.
    pub fn speculative_greedy(
        &self,
        full: &TransformerSubModel,
        config: &SpeculativeConfig,
        prompt: &[u32],
        max_new: usize,
        stop: Option<u32>,
    ) -> (Vec<u32>, DecodeStats) {
        assert!(!prompt.is_empty(), "speculative_greedy: empty prompt");
        let (d, depth, width) = (config.draft_depth, full.depth, LlamaWidth::from(full));
        assert!(d >= 1 && d < depth, "speculative_greedy: draft depth {d} must be in 1..{depth}");
        let device = self.model.embedding.device();
        let mut cache = KvCache::new();
        let mut stats = DecodeStats::default();
        let mut out: Vec<u32> = Vec::with_capacity(max_new);
        if max_new == 0 {
            return (out, stats);
        }
        let embed =
            |tokens: &[u32]| burn::tensor::module::embedding(self.model.embedding.val(), ids::<B>(tokens, &device));
        // The prompt through every layer; the full model's prediction is the first token.
        let h = self.run_layers(embed(prompt), 0, depth, width, &mut cache);
        let mut pending = last_argmax(self.model.head(h));
        stats.full_passes += 1;
        out.push(pending);
        let mut n = config.initial_draft.clamp(1, config.max_draft.max(1));
        while out.len() < max_new && Some(pending) != stop {
            let n_now = n.min(max_new - out.len());
            let start = cache.len_of(0);
            // Draft: feed `pending`, then each drafted token, through the shared layers.
            let mut inputs = vec![pending];
            let mut hidden = Vec::with_capacity(n_now);
            let mut drafted = Vec::with_capacity(n_now);
            let drafting = std::time::Instant::now();
            for i in 0..n_now {
                let h = self.run_layers(embed(&inputs[i..i + 1]), 0, d, width, &mut cache);
                let logits = match config.draft_vocab {
                    Some(n) => self.model.head_prefix(h.clone(), n),
                    None => self.model.head(h.clone()),
                };
                let token = last_argmax(logits);
                stats.draft_passes += 1;
                hidden.push(h);
                drafted.push(token);
                if i + 1 < n_now {
                    inputs.push(token);
                }
            }
            stats.draft_time += drafting.elapsed();
            // Verify: the remaining layers on the draft's hidden states, all positions at once.
            let verifying = std::time::Instant::now();
            let h = self.run_layers(Tensor::cat(hidden, 1), d, depth, width, &mut cache);
            let verified = argmax_all(self.model.head(h));
            stats.verify_time += verifying.elapsed();
            stats.full_passes += 1;
            stats.proposed += n_now;
            let agree = drafted.iter().zip(&verified).take_while(|(a, b)| a == b).count();
            stats.accepted += agree;
            let mut emitted: Vec<u32> = drafted[..agree].to_vec();
            if agree < n_now {
                emitted.push(verified[agree]);
            }
            // Inputs `start..start + agree + 1` were correct tokens; the rest are dropped.
            cache.truncate(start + (agree + 1).min(n_now));
            for &token in &emitted {
                if out.len() == max_new {
                    break;
                }
                out.push(token);
                pending = token;
                if Some(token) == stop {
                    break;
                }
            }
            if config.adaptive {
                n = if agree == n_now { (n + 1).min(config.max_draft.max(1)) } else { n.saturating_sub(1).max(1) };
            }
        }
        stats.generated = out.len();
        (out, stats)
    }

    /// Confidence-based early exit, a **lossy** mode: each new token runs the layers up to the
    /// first exit whose top softmax probability reaches its threshold (else the whole model) and is
    /// emitted there; the layers it skipped get keys and values computed from its exit state, so
    /// later tokens can attend to it. Unlike [`speculative_greedy`], the output can differ from the
    /// full model's.
    ///
    /// # Panics
    /// If `prompt` is empty, the exits are not ascending and below `full.depth`, or the
    /// thresholds do not match the exits (validate user input first).
    pub fn early_exit_greedy(
        &self,
        full: &TransformerSubModel,
        config: &EarlyExitConfig,
        prompt: &[u32],
        max_new: usize,
        stop: Option<u32>,
    ) -> (Vec<u32>, EarlyExitStats) {
        assert!(!prompt.is_empty(), "early_exit_greedy: empty prompt");
        assert_eq!(config.exits.len(), config.thresholds.len(), "early_exit_greedy: one threshold per exit");
        assert!(
            config.exits.windows(2).all(|w| w[0] < w[1]) && config.exits.iter().all(|&e| e >= 1 && e < full.depth),
            "early_exit_greedy: exits {:?} must ascend within 1..{}",
            config.exits,
            full.depth
        );
        let device = self.model.embedding.device();
        let (depth, width) = (full.depth, LlamaWidth::from(full));
        let mut cache = KvCache::new();
        let mut stats = EarlyExitStats { emitted_at: vec![0; config.exits.len() + 1], ..Default::default() };
        let mut out = Vec::with_capacity(max_new);
        if max_new == 0 {
            return (out, stats);
        }
        let mut next = last_argmax(self.forward(ids::<B>(prompt, &device), full, &mut cache));
        loop {
            out.push(next);
            if out.len() == max_new || Some(next) == stop {
                break;
            }
            let position = cache.len_of(0);
            let mut x = burn::tensor::module::embedding(self.model.embedding.val(), ids::<B>(&[next], &device));
            let mut done = 0;
            let mut chosen = None;
            for (e, (&exit, &threshold)) in config.exits.iter().zip(&config.thresholds).enumerate() {
                x = self.run_layers(x, done, exit, width, &mut cache);
                stats.layers_run += exit - done;
                done = exit;
                let logits = self.model.head(x.clone());
                let v = logits.dims()[2];
                let probs = burn::tensor::activation::softmax(logits.reshape([1, v]), 1);
                let top = probs.clone().max().into_scalar().elem::<f32>();
                if top >= threshold {
                    chosen = Some((e, probs.argmax(1).into_scalar().elem::<i64>() as u32));
                    break;
                }
            }
            next = match chosen {
                Some((e, token)) => {
                    // The skipped layers still need this position's keys and values.
                    for layer in done..depth {
                        self.model.layers[layer].append_kv(
                            x.clone(),
                            position,
                            self.model.rope_theta,
                            &mut cache.layers[layer],
                        );
                    }
                    stats.emitted_at[e] += 1;
                    token
                }
                None => {
                    let h = self.run_layers(x, done, depth, width, &mut cache);
                    stats.layers_run += depth - done;
                    stats.emitted_at[config.exits.len()] += 1;
                    last_argmax(self.model.head(h))
                }
            };
        }
        stats.generated = out.len();
        (out, stats)
    }
}

/// Greedy decoding of sub-model `sub` with the model's own layout: see
/// [`LlamaDecoder::greedy`].
///
/// # Panics
/// If `prompt` is empty.
pub fn greedy<B: Backend>(
    model: &SortedLlama<B>,
    sub: &TransformerSubModel,
    prompt: &[u32],
    max_new: usize,
    stop: Option<u32>,
) -> (Vec<u32>, DecodeStats) {
    LlamaDecoder::new(model).greedy(sub, prompt, max_new, stop)
}

/// How [`speculative_greedy`] drafts.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeculativeConfig {
    /// Layers of the draft (a prefix of the full model's, at full FFN width, so the verifier
    /// reuses the draft's KV cache and hidden states for them).
    pub draft_depth: usize,
    /// First draft length.
    pub initial_draft: usize,
    /// Longest draft.
    pub max_draft: usize,
    /// Adapt the draft length to acceptance: one longer after a fully accepted draft, one
    /// shorter (at least 1) after a rejection.
    pub adaptive: bool,
    /// Draft over the first `n` tokens of the vocabulary only (a nested vocabulary, see
    /// [`SortedLlama::head_prefix`]), which makes each drafted token's head `vocab / n` times
    /// cheaper. Still lossless: the verifier scores the whole vocabulary. `None`: the whole
    /// vocabulary.
    pub draft_vocab: Option<usize>,
}

/// Self-speculative greedy decoding with the model's own layout: see
/// [`LlamaDecoder::speculative_greedy`].
///
/// # Panics
/// As [`LlamaDecoder::speculative_greedy`].
pub fn speculative_greedy<B: Backend>(
    model: &SortedLlama<B>,
    full: &TransformerSubModel,
    config: &SpeculativeConfig,
    prompt: &[u32],
    max_new: usize,
    stop: Option<u32>,
) -> (Vec<u32>, DecodeStats) {
    LlamaDecoder::new(model).speculative_greedy(full, config, prompt, max_new, stop)
}

/// How [`early_exit_greedy`] exits.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyExitConfig {
    /// Exit depths, ascending, each below the full depth.
    pub exits: Vec<usize>,
    /// Per exit: the softmax probability of its top token at or above which the token is
    /// emitted there (above 1: never exit there).
    pub thresholds: Vec<f32>,
}

/// What [`early_exit_greedy`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EarlyExitStats {
    /// Tokens generated.
    pub generated: usize,
    /// Tokens emitted at each exit (same order as the config), and last the full model's.
    pub emitted_at: Vec<usize>,
    /// Decoder layers run over all generated tokens (the full model would run
    /// `generated x depth`).
    pub layers_run: usize,
}

/// Confidence-based early exit (lossy) with the model's own layout: see
/// [`LlamaDecoder::early_exit_greedy`].
///
/// # Panics
/// As [`LlamaDecoder::early_exit_greedy`].
pub fn early_exit_greedy<B: Backend>(
    model: &SortedLlama<B>,
    full: &TransformerSubModel,
    config: &EarlyExitConfig,
    prompt: &[u32],
    max_new: usize,
    stop: Option<u32>,
) -> (Vec<u32>, EarlyExitStats) {
    LlamaDecoder::new(model).early_exit_greedy(full, config, prompt, max_new, stop)
}
