//! Greedy decoding with a KV cache, and lossless self-speculative decoding in which a shallow
//! sub-model of the same weights drafts tokens for the full model.

use burn::prelude::*;
use sorted_nn::TransformerSubModel;

use sorted_kernels::HostDecoder;

use super::decode_engine::{BurnEngine, DecodeEngine};
use super::host_decode::HostWeights;
use super::model::{DecodeWeights, SortedLlama};

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
    /// Plain full-model steps taken instead of a speculative cycle (speculative decoding with
    /// [`SpeculativeConfig::fallback_probe`] only; also counted in `full_passes`).
    pub greedy_steps: usize,
    /// Wall time spent drafting, the bonus token's pass of the draft layers included
    /// (speculative decoding only).
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

/// A model ready to decode: the model, and optionally its projections copied into the decoding
/// layout ([`SortedLlama::decode_weights`]), which makes the few-row products of decoding
/// faster on Flex at the cost of a second copy of the layer weights. Both give the same tokens
/// (up to floating-point near-ties; the free functions [`greedy`], [`speculative_greedy`] and
/// [`early_exit_greedy`] use the model's own layout).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use sorted_zoo::llama::{LlamaDecoder, LlamaSubModels, SortedLlamaConfig, SpeculativeConfig};
///
/// let model = SortedLlamaConfig::tiny().init::<Flex>(&Default::default());
/// let full = LlamaSubModels::of(&model).full()?;
/// let decoder = LlamaDecoder::with_decode_layout(&model);
/// let (plain, _) = decoder.greedy(&full, &[1, 2, 3], 8, None);
/// let config = SpeculativeConfig {
///     draft_depth: 2,
///     initial_draft: 3,
///     max_draft: 6,
///     adaptive: true,
///     draft_vocab: None,
///     bonus_token: true,
///     fallback_probe: None,
/// };
/// let (fast, stats) = decoder.speculative_greedy(&full, &config, &[1, 2, 3], 8, None);
/// assert_eq!(fast, plain);
/// assert!(stats.accepted <= stats.proposed);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Debug)]
pub struct LlamaDecoder<'a, B: Backend> {
    model: &'a SortedLlama<B>,
    weights: Option<DecodeWeights<B>>,
    host: Option<HostDecoder>,
}

impl<'a, B: Backend> LlamaDecoder<'a, B> {
    /// Decodes with the model's own weights and layout.
    pub fn new(model: &'a SortedLlama<B>) -> Self {
        Self { model, weights: None, host: None }
    }

    /// Decodes with the projections copied into the decoding layout (built once here).
    pub fn with_decode_layout(model: &'a SortedLlama<B>) -> Self {
        Self { model, weights: Some(model.decode_weights()), host: None }
    }

    /// Decodes with the projections and the tied head in 8-bit blocks on the host: the same as
    /// [`LlamaDecoder::on_host`] with [`HostWeights::Q8`]. Lossy: compare its tokens with
    /// [`LlamaDecoder::new`]'s.
    pub fn with_q8_decode_layout(model: &'a SortedLlama<B>) -> Self {
        Self::on_host(model, HostWeights::Q8)
    }

    /// Decodes on the host CPU with a copy of the model's weights in `format`
    /// ([`SortedLlama::host_decoder`], built once here): each layer of a decoding step is one
    /// fused pass (norms, projections, RoPE, attention over a KV cache that grows in place), with
    /// none of the per-operation cost of tensors. The fastest way to decode on a CPU; on a GPU
    /// backend it leaves the GPU idle.
    pub fn on_host(model: &'a SortedLlama<B>, format: HostWeights) -> Self {
        Self { model, weights: None, host: Some(model.host_decoder(format)) }
    }

    /// The model.
    pub fn model(&self) -> &'a SortedLlama<B> {
        self.model
    }

    /// The decoding-layout weights, if any (Burn decoding).
    pub fn decode_weights(&self) -> Option<&DecodeWeights<B>> {
        self.weights.as_ref()
    }

    /// Bytes of weights one decoding step of the full model streams, in the decoding layout or
    /// on the host (`None` with the model's own layout).
    pub fn bytes_per_step(&self) -> Option<usize> {
        match (&self.host, &self.weights) {
            (Some(host), _) => Some(host.bytes()),
            (None, Some(weights)) => Some(weights.bytes()),
            (None, None) => None,
        }
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
        match &self.host {
            Some(host) => greedy_on(host, sub, prompt, max_new, stop),
            None => greedy_on(&self.burn(), sub, prompt, max_new, stop),
        }
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
        match &self.host {
            Some(host) => speculative_greedy_on(host, full, config, prompt, max_new, stop),
            None => speculative_greedy_on(&self.burn(), full, config, prompt, max_new, stop),
        }
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
        match &self.host {
            Some(host) => early_exit_greedy_on(host, full, config, prompt, max_new, stop),
            None => early_exit_greedy_on(&self.burn(), full, config, prompt, max_new, stop),
        }
    }

    /// The Burn decoder (the model's layout, or the decoding layout).
    fn burn(&self) -> BurnEngine<'_, B> {
        BurnEngine { model: self.model, weights: self.weights.as_ref() }
    }
}

/// [`LlamaDecoder::greedy`] on `engine`.
fn greedy_on<E: DecodeEngine>(
    engine: &E,
    sub: &TransformerSubModel,
    prompt: &[u32],
    max_new: usize,
    stop: Option<u32>,
) -> (Vec<u32>, DecodeStats) {
    assert!(!prompt.is_empty(), "greedy: empty prompt");
    let mut cache = engine.new_cache();
    let mut stats = DecodeStats::default();
    let mut out = Vec::with_capacity(max_new);
    if max_new == 0 {
        return (out, stats);
    }
    let forward = |tokens: &[u32], cache: &mut E::Cache| {
        let h = engine.run_layers(engine.embed(tokens), 0, sub.depth, sub, cache);
        engine.last_argmax(h, None)
    };
    let mut next = forward(prompt, &mut cache);
    stats.full_passes += 1;
    loop {
        out.push(next);
        if out.len() == max_new || Some(next) == stop {
            break;
        }
        next = forward(&[next], &mut cache);
        stats.full_passes += 1;
    }
    stats.generated = out.len();
    (out, stats)
}

/// [`LlamaDecoder::speculative_greedy`] on `engine`.
fn speculative_greedy_on<E: DecodeEngine>(
    engine: &E,
    full: &TransformerSubModel,
    config: &SpeculativeConfig,
    prompt: &[u32],
    max_new: usize,
    stop: Option<u32>,
) -> (Vec<u32>, DecodeStats) {
    assert!(!prompt.is_empty(), "speculative_greedy: empty prompt");
    let (d, depth) = (config.draft_depth, full.depth);
    assert!(d >= 1 && d < depth, "speculative_greedy: draft depth {d} must be in 1..{depth}");
    let mut cache = engine.new_cache();
    let mut stats = DecodeStats::default();
    let mut out: Vec<u32> = Vec::with_capacity(max_new);
    if max_new == 0 {
        return (out, stats);
    }
    // The prompt through every layer; the full model's prediction is the first token.
    let h = engine.run_layers(engine.embed(prompt), 0, depth, full, &mut cache);
    let mut pending = engine.last_argmax(h, None);
    stats.full_passes += 1;
    out.push(pending);
    let mut n = config.initial_draft.clamp(1, config.max_draft.max(1));
    let mut clock = ModeClock::default();
    while out.len() < max_new && Some(pending) != stop {
        let cycle = std::time::Instant::now();
        if config.fallback_probe.is_some_and(|probe| clock.next_is_greedy(probe)) {
            let h = engine.run_layers(engine.embed(&[pending]), 0, depth, full, &mut cache);
            pending = engine.last_argmax(h, None);
            out.push(pending);
            stats.full_passes += 1;
            stats.greedy_steps += 1;
            clock.record(true, cycle.elapsed(), 1);
            continue;
        }
        // With the bonus token a cycle can emit one token more than it drafts.
        let bonus = usize::from(config.bonus_token);
        let n_now = n.min((max_new - out.len()).saturating_sub(bonus).max(1));
        let start = engine.cached(&cache, 0);
        // Draft: feed `pending`, then each drafted token, through the shared layers; with the
        // bonus token the last drafted one too (without the head: nothing is drafted from it).
        let mut inputs = vec![pending];
        let mut hidden = Vec::with_capacity(n_now + bonus);
        let mut drafted = Vec::with_capacity(n_now);
        let drafting = std::time::Instant::now();
        for i in 0..n_now {
            let h = engine.run_layers(engine.embed(&inputs[i..i + 1]), 0, d, full, &mut cache);
            let token = engine.last_argmax(h.clone(), config.draft_vocab);
            stats.draft_passes += 1;
            hidden.push(h);
            drafted.push(token);
            inputs.push(token);
        }
        if config.bonus_token {
            hidden.push(engine.run_layers(engine.embed(&inputs[n_now..]), 0, d, full, &mut cache));
        }
        stats.draft_time += drafting.elapsed();
        // Verify: the remaining layers on the draft's hidden states, all positions at once.
        // `verified[i]` is the full model's token after input `i`.
        let verifying = std::time::Instant::now();
        let h = engine.run_layers(engine.cat(hidden), d, depth, full, &mut cache);
        let verified = engine.argmax_all(h);
        stats.verify_time += verifying.elapsed();
        stats.full_passes += 1;
        stats.proposed += n_now;
        let agree = drafted.iter().zip(&verified).take_while(|(a, b)| a == b).count();
        stats.accepted += agree;
        let mut emitted: Vec<u32> = drafted[..agree].to_vec();
        // The full model's own token after the agreeing prefix: the correction after a
        // rejection, or (bonus token) the token after a fully accepted draft.
        if let Some(&next) = verified.get(agree) {
            emitted.push(next);
        }
        // Inputs `start..start + agree + 1` were correct tokens; the rest are dropped.
        engine.truncate(&mut cache, start + (agree + 1).min(n_now + bonus));
        let before = out.len();
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
        clock.record(false, cycle.elapsed(), out.len() - before);
        if config.adaptive {
            n = if agree == n_now { (n + 1).min(config.max_draft.max(1)) } else { n.saturating_sub(1).max(1) };
        }
    }
    stats.generated = out.len();
    (out, stats)
}

/// [`LlamaDecoder::early_exit_greedy`] on `engine`.
fn early_exit_greedy_on<E: DecodeEngine>(
    engine: &E,
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
    let depth = full.depth;
    let mut cache = engine.new_cache();
    let mut stats = EarlyExitStats { emitted_at: vec![0; config.exits.len() + 1], ..Default::default() };
    let mut out = Vec::with_capacity(max_new);
    if max_new == 0 {
        return (out, stats);
    }
    let h = engine.run_layers(engine.embed(prompt), 0, depth, full, &mut cache);
    let mut next = engine.last_argmax(h, None);
    loop {
        out.push(next);
        if out.len() == max_new || Some(next) == stop {
            break;
        }
        let mut x = engine.embed(&[next]);
        let mut done = 0;
        let mut chosen = None;
        for (e, (&exit, &threshold)) in config.exits.iter().zip(&config.thresholds).enumerate() {
            x = engine.run_layers(x, done, exit, full, &mut cache);
            stats.layers_run += exit - done;
            done = exit;
            let (top, token) = engine.top(x.clone());
            if top >= threshold {
                chosen = Some((e, token));
                break;
            }
        }
        next = match chosen {
            Some((e, token)) => {
                // The skipped layers still need this position's keys and values.
                for layer in done..depth {
                    engine.append_kv(&x, layer, &mut cache);
                }
                stats.emitted_at[e] += 1;
                token
            }
            None => {
                let h = engine.run_layers(x, done, depth, full, &mut cache);
                stats.layers_run += depth - done;
                stats.emitted_at[config.exits.len()] += 1;
                engine.last_argmax(h, None)
            }
        };
    }
    stats.generated = out.len();
    (out, stats)
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
    /// Also feed the last drafted token through the draft's layers (without the head) and
    /// verify it, so that a fully accepted draft still ends with the full model's own next
    /// token: every cycle then emits `accepted + 1` tokens (the usual speculative step) instead
    /// of `accepted` after a full acceptance. It costs one more pass of the draft's layers per
    /// cycle and one more verified position; whether that pays depends on the acceptance rate
    /// and on how the backend's cost grows with the verified positions.
    pub bonus_token: bool,
    /// `Some(k)`: take plain full-model steps instead of speculative cycles while they are
    /// measured faster per token (wall time, exponential moving averages of both modes), and
    /// try the slower mode once after every `k` (at least 1) cycles or steps of the faster
    /// one, so a change in acceptance is noticed. A drafter that does not pay then costs
    /// little more than greedy decoding. The tokens are the full model's greedy tokens either
    /// way; only which mode produces each of them depends on the timings. `None`: always
    /// speculate.
    pub fallback_probe: Option<usize>,
}

/// Milliseconds per token of the two modes of [`SpeculativeConfig::fallback_probe`], and how
/// many cycles the current one has run since the other was last tried.
#[derive(Debug, Default)]
struct ModeClock {
    /// Per mode (0: speculative, 1: greedy), the moving average of ms per token.
    ms_per_token: [Option<f64>; 2],
    /// The mode of the last cycle, and how many cycles in a row it has run.
    last: bool,
    streak: usize,
}

impl ModeClock {
    /// Weight of the newest cycle in the moving averages.
    const NEWEST: f64 = 0.3;

    /// Whether the next cycle should be a plain greedy step: speculate until both modes are
    /// timed (speculative first), then the faster one, except that after `probe` cycles of one
    /// mode in a row the other is tried once.
    fn next_is_greedy(&self, probe: usize) -> bool {
        let best = match self.ms_per_token {
            [None, _] => false,
            [Some(_), None] => true,
            [Some(spec), Some(greedy)] => greedy < spec,
        };
        if self.streak >= probe.max(1) && self.last == best { !best } else { best }
    }

    /// Times one cycle of mode `greedy` that emitted `tokens` tokens.
    fn record(&mut self, greedy: bool, took: std::time::Duration, tokens: usize) {
        let ms = 1e3 * took.as_secs_f64() / tokens.max(1) as f64;
        let slot = &mut self.ms_per_token[usize::from(greedy)];
        *slot = Some(slot.map_or(ms, |old| old + Self::NEWEST * (ms - old)));
        self.streak = if self.last == greedy { self.streak + 1 } else { 1 };
        self.last = greedy;
    }
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

#[cfg(test)]
mod tests {
    use super::ModeClock;
    use std::time::Duration;

    #[test]
    fn the_mode_clock_times_both_modes_then_keeps_the_faster_and_probes_the_other() {
        let ms = Duration::from_millis;
        let mut clock = ModeClock::default();
        // Speculative first, then one greedy step to time it.
        assert!(!clock.next_is_greedy(3));
        clock.record(false, ms(90), 1);
        assert!(clock.next_is_greedy(3));
        clock.record(true, ms(60), 1);
        // Greedy is faster per token: 3 greedy steps in a row (the timing step above counts),
        // then one speculative probe.
        let mut modes = Vec::new();
        for _ in 0..8 {
            let greedy = clock.next_is_greedy(3);
            modes.push(greedy);
            clock.record(greedy, if greedy { ms(60) } else { ms(90) }, 1);
        }
        assert_eq!(modes, [true, true, false, true, true, true, false, true]);
        // The drafter gets better (3 tokens per 90 ms cycle): the first probe moves its average
        // from 90 to 72 ms per token, the second to 59.4, below greedy's 60, and it takes over;
        // greedy is then probed after every 3 speculative cycles.
        let mut modes = Vec::new();
        for _ in 0..12 {
            let greedy = clock.next_is_greedy(3);
            modes.push(greedy);
            clock.record(greedy, if greedy { ms(60) } else { ms(90) }, if greedy { 1 } else { 3 });
        }
        assert_eq!(modes, [true, true, false, true, true, true, false, false, false, true, false, false]);
    }
}
