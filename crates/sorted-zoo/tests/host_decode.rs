//! The host decoder (`sorted_kernels::HostDecoder`, one fused pass per layer) against the Burn
//! model it was copied from: the same layers, logits and tokens with f32 weights; near them with
//! 8-bit weights, and lossless self-speculative decoding either way.

use burn::backend::Flex;
use burn::prelude::*;
use sorted_zoo::llama::{EarlyExitConfig, HostWeights, KvCache, LlamaDecoder, SortedLlama, SpeculativeConfig};

use crate::llama::decoding::{drafted_by, prompts};
use crate::llama::{model, space};

type F = Flex;

fn embed(m: &SortedLlama<F>, tokens: &[u32]) -> Tensor<F, 3> {
    let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
    let ids = Tensor::<F, 1, Int>::from_ints(ids.as_slice(), &Default::default()).reshape([1, tokens.len()]);
    burn::tensor::module::embedding(m.embedding.val(), ids)
}

fn host_values(t: Tensor<F, 3>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// Largest difference relative to the largest value of `want`.
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

const PROMPT: [u32; 7] = [3, 17, 42, 8, 8, 29, 1];

#[test]
fn host_layers_and_logits_equal_burns_for_every_sub_model_prompt_and_cached_steps() {
    let _rng = crate::rng_guard();
    let m = model(21);
    let host = m.host_decoder(HostWeights::F32);
    for sub in space().iter() {
        let mut burn_cache = KvCache::new();
        let mut host_cache = host.new_cache();
        // The prompt, then two single steps through the caches.
        for tokens in [&PROMPT[..], &[4], &[33]] {
            let want = m.run_layers(embed(&m, tokens), 0, sub.depth, &sub, &mut burn_cache);
            let got = host.run_layers(host.embed(tokens), 0, sub.depth, sub.heads, sub.ffn, &mut host_cache);
            let error = relative_error(&got, &host_values(want.clone()));
            assert!(error < 1e-5, "{sub}: layers off by {error}");
            let logits = host.logits(&got, host.vocab());
            let error = relative_error(&logits, &host_values(m.head(want)));
            assert!(error < 1e-5, "{sub}: logits off by {error}");
        }
        assert_eq!(host_cache.len_of(0), PROMPT.len() + 2);
        assert_eq!(host_cache.len_of(sub.depth), 0, "layers beyond the sub-model must not run");
    }
}

#[test]
fn a_truncated_host_cache_continues_like_a_fresh_one() {
    let _rng = crate::rng_guard();
    let m = model(22);
    let host = m.host_decoder(HostWeights::F32);
    let (heads, ffn) = (4, 24);
    let mut cache = host.new_cache();
    let _ = host.run_layers(host.embed(&PROMPT[..5]), 0, 4, heads, ffn, &mut cache);
    cache.truncate(3);
    let continued = host.run_layers(host.embed(&[11, 12]), 0, 4, heads, ffn, &mut cache);
    let fresh = host.run_layers(host.embed(&[3, 17, 42, 11, 12]), 0, 4, heads, ffn, &mut host.new_cache());
    assert!(relative_error(&continued, &fresh[3 * 16..]) < 1e-6);
}

#[test]
fn host_decoding_gives_burns_tokens_greedy_speculative_and_early_exit() {
    let _rng = crate::rng_guard();
    let m = model(23);
    let (burn, host) = (LlamaDecoder::new(&m), LlamaDecoder::on_host(&m, HostWeights::F32));
    for full in [space().largest(), space().parse_sub_model("L4-H2-F8").unwrap()] {
        for prompt in prompts() {
            let plain = burn.greedy(&full, &prompt, 10, None).0;
            assert_eq!(host.greedy(&full, &prompt, 10, None).0, plain, "{full}, prompt {prompt:?}");
            for bonus_token in [false, true] {
                let config = drafted_by(2, bonus_token);
                let (spec, stats) = host.speculative_greedy(&full, &config, &prompt, 10, None);
                assert_eq!(spec, plain, "{full}, prompt {prompt:?}, bonus token {bonus_token}");
                assert!(stats.accepted <= stats.proposed);
            }
            let exits = EarlyExitConfig { exits: vec![1, 2], thresholds: vec![0.2, 0.1] };
            let want = burn.early_exit_greedy(&full, &exits, &prompt, 10, None);
            assert_eq!(host.early_exit_greedy(&full, &exits, &prompt, 10, None), want, "{full}, prompt {prompt:?}");
        }
    }
}

#[test]
fn drafting_over_a_vocabulary_prefix_on_the_host_stays_lossless() {
    let _rng = crate::rng_guard();
    let m = model(24);
    let host = LlamaDecoder::on_host(&m, HostWeights::F32);
    let full = space().largest();
    for prompt in prompts() {
        let plain = host.greedy(&full, &prompt, 10, None).0;
        let config = SpeculativeConfig { draft_vocab: Some(20), ..drafted_by(1, true) };
        assert_eq!(host.speculative_greedy(&full, &config, &prompt, 10, None).0, plain, "prompt {prompt:?}");
    }
}

#[test]
fn issue_29_8_bit_host_weights_stay_near_f32_and_draft_losslessly_for_themselves() {
    let _rng = crate::rng_guard();
    let m = model(13);
    let (f32_host, q8_host) = (m.host_decoder(HostWeights::F32), m.host_decoder(HostWeights::Q8));
    // A byte per weight plus a scale per block, against 4 (the tiny model's rows of 16 and 24
    // are partial blocks: at most 1.25 bytes per weight).
    assert!(q8_host.bytes() * 16 <= f32_host.bytes() * 5);
    let int8_host = m.host_decoder(HostWeights::Q8Int8);
    for sub in space().iter() {
        // One token, so that the 8-bit activations' few-row kernel runs (prompts of more rows
        // than it takes are multiplied with f32 activations).
        let run = |host: &sorted_kernels::HostDecoder| {
            host.run_layers(host.embed(&PROMPT[..1]), 0, sub.depth, sub.heads, sub.ffn, &mut host.new_cache())
        };
        let error = relative_error(&run(&q8_host), &run(&f32_host));
        assert!(error < 0.02, "{sub}: 8-bit layers off by {error} of the largest value");
        let error = relative_error(&run(&int8_host), &run(&f32_host));
        assert!(error < 0.04, "{sub}: 8-bit layers with 8-bit activations off by {error} of the largest value");
    }
    for format in [HostWeights::Q8, HostWeights::Q8Int8] {
        let decoder = LlamaDecoder::on_host(&m, format);
        for full in [space().largest(), space().parse_sub_model("L4-H2-F24").unwrap()] {
            for bonus_token in [false, true] {
                let config = drafted_by(2, bonus_token);
                for prompt in prompts() {
                    let greedy_q8 = decoder.greedy(&full, &prompt, 10, None).0;
                    let spec = decoder.speculative_greedy(&full, &config, &prompt, 10, None).0;
                    assert_eq!(spec, greedy_q8, "{format:?} {full}, prompt {prompt:?}, bonus token {bonus_token}");
                }
            }
        }
    }
}
