use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::prelude::*;
use sorted_nn::test_util::{assert_matches_dense, assert_no_grad, assert_zero_grad_outside};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::llama::{KvCache, SortedLlama, SortedLlamaConfig, rope};

type F = Flex;

/// 1, 2 or 4 layers; 1 or 2 query heads per KV group (2 KV heads); 8 or 24 SwiGLU units.
pub(crate) fn space() -> TransformerSpace {
    TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![1, 2, 4], heads: vec![2, 4], ffn: vec![8, 24], hidden: None },
        16,
    )
    .unwrap()
}

/// A SoFT term of the test space.
fn term(sub: &str, weight: f64) -> sorted_zoo::llama::SoftTerm {
    sorted_zoo::llama::SoftTerm { sub: space().parse_sub_model(sub).unwrap(), weight }
}

pub(crate) fn model(seed: u64) -> SortedLlama<F> {
    let device = Default::default();
    F::seed(&device, seed);
    SortedLlamaConfig::tiny().init::<F>(&device)
}

fn ids(values: &[i32]) -> Tensor<F, 2, Int> {
    Tensor::<F, 1, Int>::from_ints(values, &Default::default()).reshape([1, values.len()])
}

const TOKENS: [i32; 7] = [3, 17, 42, 8, 8, 29, 1];

#[test]
fn rope_rotates_adjacent_pairs_by_hand_computed_angles() {
    let _rng = crate::rng_guard();
    let x = Tensor::<F, 1>::from_floats([1.0, 2.0, 3.0, 4.0], &Default::default()).reshape([1, 1, 1, 4]);
    let y = rope(x, 1, 10_000.0).into_data().to_vec::<f32>().unwrap();
    // Pair 0 turns by 1 rad, pair 1 by 1 * 10000^(-2/4) = 0.01 rad.
    let (c1, s1, c2, s2) = (1f32.cos(), 1f32.sin(), 0.01f32.cos(), 0.01f32.sin());
    let want = [c1 - 2.0 * s1, s1 + 2.0 * c1, 3.0 * c2 - 4.0 * s2, 3.0 * s2 + 4.0 * c2];
    for (g, w) in y.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{y:?} vs {want:?}");
    }
    // Position 0 is the identity.
    let x = Tensor::<F, 1>::from_floats([1.0, 2.0, 3.0, 4.0], &Default::default()).reshape([1, 1, 1, 4]);
    assert_eq!(rope(x, 0, 10_000.0).into_data().to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn kv_cached_decoding_equals_the_uncached_forward_for_every_sub_model() {
    let _rng = crate::rng_guard();
    let m = model(1);
    for sub in space().iter() {
        let full = m.forward(ids(&TOKENS), &sub, &mut KvCache::new());
        // A prompt of 3, then one token at a time through the cache.
        let mut cache = KvCache::new();
        let mut parts = vec![m.forward(ids(&TOKENS[..3]), &sub, &mut cache)];
        for t in 3..TOKENS.len() {
            parts.push(m.forward(ids(&TOKENS[t..t + 1]), &sub, &mut cache));
        }
        assert_eq!(cache.len_of(0), TOKENS.len());
        assert_eq!(cache.len_of(sub.depth), 0, "layers beyond the sub-model must not run");
        assert_matches_dense(Tensor::cat(parts, 1), full, 1e-5);
    }
}

#[test]
fn a_truncated_cache_continues_like_a_fresh_one() {
    let _rng = crate::rng_guard();
    let m = model(2);
    let sub = space().largest();
    let mut cache = KvCache::new();
    let _ = m.forward(ids(&TOKENS[..5]), &sub, &mut cache);
    cache.truncate(3);
    let continued = m.forward(ids(&[11, 12]), &sub, &mut cache);
    let fresh = m.forward(ids(&[TOKENS[0], TOKENS[1], TOKENS[2], 11, 12]), &sub, &mut KvCache::new());
    assert_matches_dense(continued, fresh.slice(s![.., 3..5, ..]), 1e-5);
}

#[test]
fn grouped_query_attention_equals_attention_with_duplicated_kv_heads() {
    let _rng = crate::rng_guard();
    // The same layer with 4 KV heads whose weights repeat the 2 KV heads of the GQA layer
    // (query heads 0,1 read KV head 0; 2,3 read KV head 1).
    let gqa = model(3);
    let device = Default::default();
    let mut config = SortedLlamaConfig::tiny();
    config.num_kv_heads = 4;
    let mut mha = config.init::<F>(&device);
    mha.embedding = gqa.embedding.clone();
    for (a, b) in mha.layers.iter_mut().zip(&gqa.layers) {
        let dup = |w: &Param<Tensor<F, 2>>| {
            let w = w.val();
            let hd = 4;
            let cols: Vec<_> = [0, 0, 1, 1].iter().map(|&h| w.clone().slice(s![.., h * hd..(h + 1) * hd])).collect();
            Param::from_tensor(Tensor::cat(cols, 1))
        };
        a.key.weight = dup(&b.key.weight);
        a.value.weight = dup(&b.value.weight);
        a.query = b.query.clone();
        a.output = b.output.clone();
        a.gate = b.gate.clone();
        a.up = b.up.clone();
        a.down = b.down.clone();
    }
    let sub = space().largest();
    assert_matches_dense(
        mha.forward(ids(&TOKENS), &sub, &mut KvCache::new()),
        gqa.forward(ids(&TOKENS), &sub, &mut KvCache::new()),
        1e-5,
    );
}

#[test]
fn one_pass_gives_every_exit_as_its_own_forward_would() {
    let _rng = crate::rng_guard();
    let m = model(4);
    for heads in [2, 4] {
        let width = space().parse_sub_model(&format!("L4-H{heads}-F24")).unwrap();
        let exits = m.forward_exits(ids(&TOKENS), &[1, 2, 4], &width);
        for (logits, depth) in exits.into_iter().zip([1, 2, 4]) {
            let sub = space().parse_sub_model(&format!("L{depth}-H{heads}-F24")).unwrap();
            assert_matches_dense(logits, m.forward(ids(&TOKENS), &sub, &mut KvCache::new()), 1e-6);
        }
    }
}

#[test]
fn gradients_stay_in_the_active_ffn_slice_and_depth() {
    let _rng = crate::rng_guard();
    type B = Autodiff<Flex>;
    let device = Default::default();
    B::seed(&device, 5);
    let m = SortedLlamaConfig::tiny().init::<B>(&device);
    let sub: TransformerSubModel = space().parse_sub_model("L2-F8").unwrap();
    let x = Tensor::<B, 1, Int>::from_ints(TOKENS, &device).reshape([1, TOKENS.len()]);
    let grads = m.forward(x, &sub, &mut KvCache::new()).powi_scalar(2).sum().backward();
    for layer in &m.layers[..2] {
        assert_zero_grad_outside("gate", &layer.gate.weight, &grads, [0..16, 0..8]);
        assert_zero_grad_outside("up", &layer.up.weight, &grads, [0..16, 0..8]);
        assert_zero_grad_outside("down", &layer.down.weight, &grads, [0..8, 0..16]);
        assert_zero_grad_outside("query", &layer.query.weight, &grads, [0..16, 0..16]);
    }
    assert_no_grad("layer 3 gate", &m.layers[2].gate.weight, &grads);
    assert_zero_grad_outside("norm", &m.norm.weight, &grads, [0..16]);
}

#[test]
fn narrow_query_heads_equal_a_dense_model_holding_only_those_heads() {
    let _rng = crate::rng_guard();
    // The tiny model has 4 query heads of 4 features over 2 KV heads: heads 0, 1 read KV head
    // 0 and heads 2, 3 read KV head 1. One head per group keeps heads 0 and 2 (not 0 and 1,
    // which would leave KV head 1 unread).
    let m = model(21);
    let device = Default::default();
    let mut config = SortedLlamaConfig::tiny();
    config.num_heads = 2;
    let mut dense = config.init::<F>(&device);
    dense.embedding = m.embedding.clone();
    dense.norm = m.norm.clone();
    let hd = 4;
    let kept = [0usize, 2];
    for (a, b) in dense.layers.iter_mut().zip(&m.layers) {
        let q = b.query.weight.val();
        let o = b.output.weight.val();
        let q_cols = kept.iter().map(|&h| q.clone().slice(s![.., h * hd..(h + 1) * hd])).collect();
        let o_rows = kept.iter().map(|&h| o.clone().slice(s![h * hd..(h + 1) * hd, ..])).collect();
        a.query.weight = Param::from_tensor(Tensor::cat(q_cols, 1));
        a.output.weight = Param::from_tensor(Tensor::cat(o_rows, 0));
        a.attention_norm = b.attention_norm.clone();
        a.key = b.key.clone();
        a.value = b.value.clone();
        a.ffn_norm = b.ffn_norm.clone();
        a.gate = b.gate.clone();
        a.up = b.up.clone();
        a.down = b.down.clone();
    }
    let dense_space = TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![1, 2, 4], heads: vec![2], ffn: vec![8, 24], hidden: None },
        16,
    )
    .unwrap();
    let weights = m.decode_weights();
    for name in ["L1-H2-F24", "L2-H2-F8", "L4-H2-F24"] {
        let sub = space().parse_sub_model(name).unwrap();
        let want = dense.forward(ids(&TOKENS), &dense_space.parse_sub_model(name).unwrap(), &mut KvCache::new());
        assert_matches_dense(m.forward(ids(&TOKENS), &sub, &mut KvCache::new()), want.clone(), 1e-5);
        // The decoding layout selects the same heads.
        let x = burn::tensor::module::embedding(m.embedding.val(), ids(&TOKENS));
        let h = m.run_layers_with(x, 0, sub.depth, &sub, &mut KvCache::new(), Some(&weights));
        assert_matches_dense(m.head(h), want, 1e-5);
    }
    // Fewer heads is a different function (the test above is not vacuous).
    let full = m.forward(ids(&TOKENS), &space().parse_sub_model("L4-F24").unwrap(), &mut KvCache::new());
    let narrow = m.forward(ids(&TOKENS), &space().parse_sub_model("L4-H2-F24").unwrap(), &mut KvCache::new());
    assert!((full - narrow).abs().max().into_scalar().elem::<f32>() > 1e-4);
}

#[test]
fn gradients_stay_in_the_active_query_heads_of_every_kv_group() {
    let _rng = crate::rng_guard();
    type B = Autodiff<Flex>;
    let device = Default::default();
    B::seed(&device, 22);
    let m = SortedLlamaConfig::tiny().init::<B>(&device);
    let sub = space().parse_sub_model("L4-H2-F24").unwrap();
    let x = Tensor::<B, 1, Int>::from_ints(TOKENS, &device).reshape([1, TOKENS.len()]);
    let grads = m.forward(x, &sub, &mut KvCache::new()).powi_scalar(2).sum().backward();
    let mass = |g: &Tensor<Flex, 2>, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
        g.clone().slice([rows, cols]).abs().sum().into_scalar().elem::<f32>()
    };
    for (i, layer) in m.layers.iter().enumerate() {
        // Query columns and output rows of head h are h * 4..(h + 1) * 4; heads 0 and 2 are on.
        let q = layer.query.weight.grad(&grads).expect("query gradient");
        let o = layer.output.weight.grad(&grads).expect("output gradient");
        for h in [1, 3] {
            assert_eq!(mass(&q, 0..16, h * 4..h * 4 + 4), 0.0, "layer {i}: query of inactive head {h}");
            assert_eq!(mass(&o, h * 4..h * 4 + 4, 0..16), 0.0, "layer {i}: output of inactive head {h}");
        }
        for h in [0, 2] {
            assert!(mass(&q, 0..16, h * 4..h * 4 + 4) > 0.0, "layer {i}: query of active head {h}");
            assert!(mass(&o, h * 4..h * 4 + 4, 0..16) > 0.0, "layer {i}: output of active head {h}");
        }
        // Both KV heads are still read.
        let k = layer.key.weight.grad(&grads).expect("key gradient");
        for g in 0..2 {
            assert!(mass(&k, 0..16, g * 4..g * 4 + 4) > 0.0, "layer {i}: KV head {g}");
        }
    }
}

#[test]
fn spaces_the_model_cannot_hold_are_refused() {
    let _rng = crate::rng_guard();
    let m = model(6);
    let space_of = |depths: Vec<usize>, heads: Vec<usize>, hidden: Option<Vec<usize>>| {
        TransformerSpace::new(TransformerSpaceConfig { depths, heads, ffn: vec![24], hidden }, 16).unwrap()
    };
    m.check_space(&space()).unwrap();
    // 3 query heads cannot keep the same number in each of the 2 KV groups; 8 is over 4.
    for heads in [vec![3, 4], vec![2, 8]] {
        let err = m.check_space(&space_of(vec![2], heads.clone(), None)).unwrap_err().to_string();
        assert!(err.contains("heads"), "{heads:?}: {err}");
    }
    let err = m.check_space(&space_of(vec![2], vec![4], Some(vec![8, 16]))).unwrap_err().to_string();
    assert!(err.contains("hidden"), "{err}");
    let deep = TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![5], heads: vec![4], ffn: vec![24], hidden: None },
        16,
    )
    .unwrap();
    assert!(m.check_space(&deep).unwrap_err().to_string().contains("depth"));
}

pub(crate) mod decoding {
    use super::*;
    use sorted_zoo::llama::{SpeculativeConfig, greedy, speculative_greedy};

    /// Drafted by the first `draft_depth` layers: first draft 3, at most 6, adaptive, whole
    /// vocabulary, no greedy fallback.
    pub(crate) fn drafted_by(draft_depth: usize, bonus_token: bool) -> SpeculativeConfig {
        SpeculativeConfig {
            draft_depth,
            initial_draft: 3,
            max_draft: 6,
            adaptive: true,
            draft_vocab: None,
            bonus_token,
            fallback_probe: None,
        }
    }

    pub(crate) fn prompts() -> Vec<Vec<u32>> {
        (0..20u32).map(|i| (0..1 + i % 5).map(|j| (i * 7 + j * 13 + 1) % 50).collect()).collect()
    }

    #[test]
    fn self_speculative_output_equals_plain_greedy_on_20_prompts() {
        let _rng = crate::rng_guard();
        let m = model(7);
        let full = space().largest();
        for depth in [1, 2] {
            for adaptive in [false, true] {
                for bonus_token in [false, true] {
                    let config = SpeculativeConfig { adaptive, ..drafted_by(depth, bonus_token) };
                    let mut proposed = 0;
                    for prompt in prompts() {
                        let (plain, _) = greedy(&m, &full, &prompt, 12, None);
                        let (spec, stats) = speculative_greedy(&m, &full, &config, &prompt, 12, None);
                        assert_eq!(spec, plain, "prompt {prompt:?}, {config:?}");
                        assert_eq!(stats.generated, 12);
                        assert!(stats.accepted <= stats.proposed);
                        proposed += stats.proposed;
                    }
                    assert!(proposed > 0);
                }
            }
        }
    }

    #[test]
    fn falling_back_to_greedy_steps_stays_lossless() {
        let _rng = crate::rng_guard();
        // Probing after every cycle makes both modes run whatever the timings are.
        let m = model(7);
        let full = space().largest();
        for bonus_token in [false, true] {
            let config = SpeculativeConfig { fallback_probe: Some(1), ..drafted_by(2, bonus_token) };
            for prompt in prompts() {
                let (plain, _) = greedy(&m, &full, &prompt, 12, None);
                let (spec, stats) = speculative_greedy(&m, &full, &config, &prompt, 12, None);
                assert_eq!(spec, plain, "prompt {prompt:?}, {config:?}");
                assert!(stats.greedy_steps >= 1 && stats.proposed >= 1, "{stats:?}");
                assert!(stats.full_passes > stats.greedy_steps);
            }
        }
    }

    #[test]
    fn drafting_over_a_vocabulary_prefix_stays_lossless() {
        let _rng = crate::rng_guard();
        let m = model(11);
        let full = space().largest();
        let mut rejected_outside = 0;
        for draft_vocab in [1, 20, 50] {
            let config = SpeculativeConfig { draft_vocab: Some(draft_vocab), ..drafted_by(2, draft_vocab == 20) };
            for prompt in prompts() {
                let (plain, _) = greedy(&m, &full, &prompt, 10, None);
                let (spec, stats) = speculative_greedy(&m, &full, &config, &prompt, 10, None);
                assert_eq!(spec, plain, "prompt {prompt:?}, draft vocabulary {draft_vocab}");
                if draft_vocab == 20 {
                    rejected_outside += plain.iter().filter(|&&t| t >= 20).count();
                }
                assert!(stats.accepted <= stats.proposed);
            }
        }
        // The greedy outputs do use tokens the 20-token drafter cannot propose.
        assert!(rejected_outside > 0);
    }

    #[test]
    fn the_decoding_layout_gives_the_same_layers_and_tokens() {
        let _rng = crate::rng_guard();
        use sorted_zoo::llama::LlamaDecoder;
        let m = model(13);
        let weights = m.decode_weights();
        // Every sub-model's layers (narrow FFN included), prompt and cached steps.
        for sub in space().iter() {
            let x = burn::tensor::module::embedding(m.embedding.val(), ids(&TOKENS));
            let (mut a, mut b) = (KvCache::new(), KvCache::new());
            let plain = m.run_layers(x.clone(), 0, sub.depth, &sub, &mut a);
            let fast = m.run_layers_with(x, 0, sub.depth, &sub, &mut b, Some(&weights));
            assert_matches_dense(fast, plain, 1e-5);
            let step = burn::tensor::module::embedding(m.embedding.val(), ids(&[4]));
            let plain = m.run_layers(step.clone(), 0, sub.depth, &sub, &mut a);
            let fast = m.run_layers_with(step, 0, sub.depth, &sub, &mut b, Some(&weights));
            assert_matches_dense(fast, plain, 1e-5);
        }
        let decoder = LlamaDecoder::with_decode_layout(&m);
        // The whole model, and a sub-model with one query head per KV group decoded as its own
        // "full" model (drafted by its first 2 layers at the same widths).
        for full in [space().largest(), space().parse_sub_model("L4-H2-F24").unwrap()] {
            for bonus_token in [false, true] {
                let config = drafted_by(2, bonus_token);
                for prompt in prompts() {
                    let (plain, _) = greedy(&m, &full, &prompt, 10, None);
                    let spec = decoder.speculative_greedy(&full, &config, &prompt, 10, None).0;
                    assert_eq!(decoder.greedy(&full, &prompt, 10, None).0, plain, "{full:?}, prompt {prompt:?}");
                    assert_eq!(spec, plain, "{full:?}, prompt {prompt:?}, bonus token {bonus_token}");
                }
            }
        }
    }

    #[test]
    fn the_head_prefix_is_the_head_restricted_to_the_first_tokens() {
        let _rng = crate::rng_guard();
        let m = model(12);
        let h = Tensor::<F, 3>::random([1, 3, 16], burn::tensor::Distribution::Default, &Default::default());
        let whole = m.head(h.clone()).slice([0..1, 0..3, 0..20]);
        assert_matches_dense(m.head_prefix(h, 20), whole, 1e-6);
    }

    #[test]
    fn a_draft_that_agrees_is_accepted_whole_and_saves_full_passes() {
        let _rng = crate::rng_guard();
        // Zero the last layer's residual branches: it becomes the identity, so the depth-3
        // draft predicts exactly what the full model does.
        let mut m = model(8);
        let last = m.layers.last_mut().unwrap();
        last.output.weight = Param::from_tensor(last.output.weight.val().zeros_like());
        last.down.weight = Param::from_tensor(last.down.weight.val().zeros_like());
        let full = space().largest();
        let mut config = SpeculativeConfig {
            draft_depth: 3,
            initial_draft: 4,
            max_draft: 4,
            adaptive: false,
            draft_vocab: None,
            bonus_token: false,
            fallback_probe: None,
        };
        let prompt = [5u32, 9, 2];
        let (plain, plain_stats) = greedy(&m, &full, &prompt, 13, None);
        let (spec, stats) = speculative_greedy(&m, &full, &config, &prompt, 13, None);
        assert_eq!(spec, plain);
        assert_eq!(stats.acceptance_rate(), 1.0);
        // 1 prompt pass + 3 verification passes of 4 tokens, against 13 one-token passes.
        assert_eq!((stats.full_passes, plain_stats.full_passes), (4, 13));
        // With the bonus token each fully accepted draft of 4 also yields the full model's
        // next token: 1 prompt pass + 3 passes of 4 drafted + 1, 16 tokens in 4 passes.
        config.bonus_token = true;
        let (plain, _) = greedy(&m, &full, &prompt, 16, None);
        let (spec, stats) = speculative_greedy(&m, &full, &config, &prompt, 16, None);
        assert_eq!(spec, plain);
        assert_eq!((stats.full_passes, stats.proposed, stats.accepted), (4, 12, 12));
        // A budget that ends inside a cycle drafts only what it can still emit.
        let (spec, stats) = speculative_greedy(&m, &full, &config, &prompt, 13, None);
        assert_eq!(spec, plain[..13]);
        assert_eq!((stats.full_passes, stats.proposed), (4, 9));
    }

    #[test]
    fn early_exit_never_taken_is_greedy_and_always_taken_is_the_shallow_model() {
        let _rng = crate::rng_guard();
        use sorted_zoo::llama::{EarlyExitConfig, early_exit_greedy};
        let m = model(10);
        let full = space().largest();
        for prompt in prompts().into_iter().take(6) {
            let (plain, _) = greedy(&m, &full, &prompt, 8, None);
            let never = EarlyExitConfig { exits: vec![1, 2], thresholds: vec![1.1, 1.1] };
            let (out, stats) = early_exit_greedy(&m, &full, &never, &prompt, 8, None);
            assert_eq!(out, plain);
            assert_eq!((stats.emitted_at.clone(), stats.layers_run), (vec![0, 0, 7], 7 * 4));
            // Always at layer 2: after the full model's first token, the 2-layer model's greedy
            // continuation (its layers see exact keys and values; layers 3-4 are only filled).
            let always = EarlyExitConfig { exits: vec![2], thresholds: vec![0.0] };
            let (out, stats) = early_exit_greedy(&m, &full, &always, &prompt, 8, None);
            let shallow = space().parse_sub_model("L2-F24").unwrap();
            let mut longer = prompt.clone();
            longer.push(plain[0]);
            let (rest, _) = greedy(&m, &shallow, &longer, 7, None);
            assert_eq!(out[0], plain[0]);
            assert_eq!(out[1..], rest[..]);
            assert_eq!((stats.emitted_at, stats.layers_run), (vec![7, 0], 7 * 2));
        }
    }

    #[test]
    fn decoding_stops_at_the_stop_token() {
        let _rng = crate::rng_guard();
        let m = model(9);
        let full = space().largest();
        let (plain, _) = greedy(&m, &full, &[1, 2, 3], 10, None);
        let stop = plain[4];
        let first = plain.iter().position(|&t| t == stop).unwrap();
        let (stopped, _) = greedy(&m, &full, &[1, 2, 3], 10, Some(stop));
        assert_eq!(stopped, plain[..=first]);
        for bonus_token in [false, true] {
            let config = SpeculativeConfig { max_draft: 5, ..drafted_by(2, bonus_token) };
            let (spec, _) = speculative_greedy(&m, &full, &config, &[1, 2, 3], 10, Some(stop));
            assert_eq!(spec, stopped, "bonus token {bonus_token}");
        }
    }
}

mod smollm2 {
    use std::path::Path;

    use super::*;
    use sorted_data::{BpePreTokenizer, ByteLevelBpe, chatml_prompt};
    use sorted_zoo::llama::{GgufFile, GgufValue, greedy};

    fn tokenizer(file: &GgufFile) -> ByteLevelBpe {
        let tokens: Vec<String> =
            file.string_array("tokenizer.ggml.tokens").unwrap().into_iter().map(String::from).collect();
        let merges = file.string_array("tokenizer.ggml.merges").unwrap();
        let types: Vec<i128> = file
            .get("tokenizer.ggml.token_type")
            .and_then(GgufValue::as_array)
            .unwrap()
            .iter()
            .map(|v| v.as_i128().unwrap())
            .collect();
        let control: Vec<String> =
            tokens.iter().zip(&types).filter(|&(_, &t)| t == 3).map(|(token, _)| token.clone()).collect();
        let pre = BpePreTokenizer::from_gguf_name(file.str("tokenizer.ggml.pre").unwrap(), file.path()).unwrap();
        ByteLevelBpe::new(tokens, &merges, file.path())
            .unwrap()
            .with_pre_tokenizer(pre)
            .with_special_tokens(control)
            .unwrap()
    }

    /// SmolLM2-135M-Instruct, its tokenizer and its full sub-model; `None` (the test skips) when
    /// `cargo xtask data smollm2` has not run.
    fn smollm2() -> Option<(SortedLlama<F>, ByteLevelBpe, TransformerSubModel)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        if !path.exists() {
            eprintln!("skipped: no {} (run `cargo xtask data smollm2`)", path.display());
            return None;
        }
        let file = GgufFile::read(&path).unwrap();
        let bpe = tokenizer(&file);
        let model = SortedLlama::<F>::from_gguf(&file, &Default::default()).unwrap();
        let space = TransformerSpace::new(
            TransformerSpaceConfig { depths: vec![30], heads: vec![9], ffn: vec![1536], hidden: None },
            576,
        )
        .unwrap();
        model.check_space(&space).unwrap();
        Some((model, bpe, space.largest()))
    }

    /// The GGUF import reproduces the model: its greedy answer names Paris.
    #[test]
    fn smollm2_answers_the_capital_of_france() {
        let _rng = crate::rng_guard();
        let Some((model, bpe, full)) = smollm2() else { return };
        let prompt = chatml_prompt(&[("user", "What is the capital of France?")], true);
        let ids = bpe.encode(&prompt);
        let stop = bpe.token_id("<|im_end|>");
        let (answer, _) = greedy(&model, &full, &ids, 16, stop);
        let text = bpe.decode(&answer);
        assert!(text.contains("Paris"), "answer: {text:?}");
    }

    /// On the real model, self-speculative decoding (two drafter depths, whole and prefix
    /// vocabulary, decoding layout) reproduces plain greedy decoding token for token on 20
    /// prompts.
    #[test]
    fn smollm2_self_speculative_decoding_equals_greedy_on_20_prompts() {
        let _rng = crate::rng_guard();
        use sorted_zoo::llama::{LlamaDecoder, SpeculativeConfig};
        let Some((model, bpe, full)) = smollm2() else { return };
        let prompts = [
            "What is the capital of France?",
            "Name a primary colour.",
            "What is 2 + 3?",
            "Write one line about the moon.",
            "Who wrote Hamlet?",
            "What do cows drink?",
            "Say hello in Spanish.",
            "What colour is the sky on a clear day?",
            "Give a synonym for happy.",
            "How many legs does a spider have?",
            "What is the opposite of cold?",
            "Name a planet in the solar system.",
            "What is water made of?",
            "Complete: the early bird catches the",
            "What season comes after winter?",
            "Name a fruit that is yellow.",
            "What is the largest ocean?",
            "Spell the word cat backwards.",
            "What language is spoken in Brazil?",
            "Count from one to five.",
        ];
        let stop = bpe.token_id("<|im_end|>");
        let plain = LlamaDecoder::new(&model);
        let fast = LlamaDecoder::with_decode_layout(&model);
        // The second drafter also verifies its last token and falls back to greedy steps.
        let configs = [(10, None, false), (20, Some(4096), true)].map(|(draft_depth, draft_vocab, bonus_token)| {
            SpeculativeConfig {
                draft_depth,
                initial_draft: 3,
                max_draft: 6,
                adaptive: true,
                draft_vocab,
                bonus_token,
                fallback_probe: bonus_token.then_some(2),
            }
        });
        let mut accepted = 0;
        for prompt in prompts {
            let ids = bpe.encode(&chatml_prompt(&[("user", prompt)], true));
            let (reference, _) = plain.greedy(&full, &ids, 10, stop);
            for config in &configs {
                let (out, stats) = fast.speculative_greedy(&full, config, &ids, 10, stop);
                assert_eq!(out, reference, "{prompt:?}, {config:?}");
                accepted += stats.accepted;
            }
        }
        assert!(accepted > 0, "no draft token was ever accepted");
    }
}

#[test]
fn the_soft_loss_is_the_weighted_mean_of_each_sub_models_own_loss() {
    let _rng = crate::rng_guard();
    use burn::nn::loss::CrossEntropyLossConfig;
    use sorted_zoo::llama::soft_loss;
    let m = model(7);
    let inputs = ids(&TOKENS[..6]);
    let targets = ids(&TOKENS[1..]);
    let terms = [
        term("L4-H4-F24", 3.0),
        term("L1-H4-F8", 1.0),
        term("L2-H4-F24", 0.5),
        term("L4-H4-F8", 1.5),
        term("L2-H2-F24", 2.0),
        term("L4-H2-F8", 1.0),
    ];
    let loss = soft_loss(&m, inputs.clone(), targets.clone(), &terms);
    let ce = CrossEntropyLossConfig::new().init(&Default::default());
    let mut want = 0.0;
    for (term, got) in terms.iter().zip(&loss.terms) {
        let logits = m.forward(inputs.clone(), &term.sub, &mut KvCache::new()).reshape([6, 50]);
        let own = ce.forward(logits, targets.clone().reshape([6])).into_scalar().elem::<f64>();
        let got = got.clone().into_scalar().elem::<f64>();
        assert!((own - got).abs() < 1e-5, "{term:?}: {got} vs its own forward's {own}");
        want += term.weight * own;
    }
    want /= 9.0;
    let total = loss.total.into_scalar().elem::<f64>();
    assert!((total - want).abs() < 1e-5, "total {total} vs weighted mean {want}");
}

#[test]
fn a_soft_loss_of_narrow_shallow_terms_leaves_the_rest_untouched() {
    let _rng = crate::rng_guard();
    use sorted_zoo::llama::soft_loss;
    type B = Autodiff<Flex>;
    let device = Default::default();
    B::seed(&device, 8);
    let m = SortedLlamaConfig::tiny().init::<B>(&device);
    let x = |v: &[i32]| Tensor::<B, 1, Int>::from_ints(v, &device).reshape([1, v.len()]);
    let terms = [term("L1-H4-F8", 1.0), term("L2-H4-F8", 2.0)];
    let grads = soft_loss(&m, x(&TOKENS[..6]), x(&TOKENS[1..]), &terms).total.backward();
    for layer in &m.layers[..2] {
        assert_zero_grad_outside("gate", &layer.gate.weight, &grads, [0..16, 0..8]);
        assert_zero_grad_outside("down", &layer.down.weight, &grads, [0..8, 0..16]);
    }
    assert_no_grad("layer 3 gate", &m.layers[2].gate.weight, &grads);
    assert_no_grad("layer 4 query", &m.layers[3].query.weight, &grads);
}

#[test]
fn with_the_head_trained_by_the_full_depth_only_shallow_exits_leave_norm_and_head_alone() {
    let _rng = crate::rng_guard();
    use sorted_zoo::llama::{HeadGradient, SoftOptions, soft_loss, soft_loss_with};
    type B = Autodiff<Flex>;
    let device = Default::default();
    B::seed(&device, 9);
    let full_depth_only = SoftOptions { head_gradient: HeadGradient::FullDepthOnly, ..SoftOptions::default() };
    let m = SortedLlamaConfig::tiny().init::<B>(&device);
    let x = |v: &[i32]| Tensor::<B, 1, Int>::from_ints(v, &device).reshape([1, v.len()]);
    let shallow = [term("L2-H4-F24", 1.0)];
    let grads = soft_loss_with(&m, x(&TOKENS[..6]), x(&TOKENS[1..]), &shallow, full_depth_only).total.backward();
    assert_no_grad("final norm", &m.norm.weight, &grads);
    assert_zero_grad_outside("layer 1 gate", &m.layers[0].gate.weight, &grads, [0..16, 0..24]);
    // The loss values are the same either way; with the full depth included, its term trains
    // the head.
    let both = [term("L2-H4-F24", 1.0), term("L4-H4-F24", 1.0)];
    let a = soft_loss_with(&m, x(&TOKENS[..6]), x(&TOKENS[1..]), &both, full_depth_only);
    let b = soft_loss(&m, x(&TOKENS[..6]), x(&TOKENS[1..]), &both);
    let (va, vb) = (a.total.clone().into_scalar().elem::<f64>(), b.total.into_scalar().elem::<f64>());
    assert!((va - vb).abs() < 1e-6, "{va} vs {vb}");
    let grads = a.total.backward();
    assert_zero_grad_outside("final norm", &m.norm.weight, &grads, [0..16]);
}

#[test]
fn self_distillation_mixes_the_text_loss_with_the_kl_from_the_detached_full_model() {
    let _rng = crate::rng_guard();
    use burn::tensor::activation::log_softmax;
    use sorted_zoo::llama::{SoftOptions, soft_loss, soft_loss_with};
    type B = Autodiff<Flex>;
    let device = Default::default();
    B::seed(&device, 11);
    let m = SortedLlamaConfig::tiny().init::<B>(&device);
    let x = |v: &[i32]| Tensor::<B, 1, Int>::from_ints(v, &device).reshape([1, v.len()]);
    let (inputs, targets) = (x(&TOKENS[..6]), x(&TOKENS[1..]));
    let scalar = |t: Tensor<B, 1>| t.into_scalar().elem::<f64>();
    let distill = |a: f64| SoftOptions { distill: a, ..SoftOptions::default() };
    let terms = [term("L2-H4-F24", 1.0), term("L4-H4-F24", 3.0)];
    // The KL of exit 2 from the full model, by hand from the two exits' logits.
    let logits = m.forward_exits(inputs.clone(), &[2, 4], &m.full_sub_model());
    let lp = |l: &Tensor<B, 3>| log_softmax(l.clone().reshape([6, 50]), 1);
    let (student, teacher) = (lp(&logits[0]), lp(&logits[1]));
    let kl = scalar((teacher.clone().exp() * (teacher - student)).sum_dim(1).mean());
    assert!(kl > 1e-4, "a random exit 2 disagrees with the full model: {kl}");
    let plain = soft_loss(&m, inputs.clone(), targets.clone(), &terms);
    let (ce2, ce4) = (scalar(plain.terms[0].clone()), scalar(plain.terms[1].clone()));
    assert!(plain.distill_terms.iter().all(Option::is_none));
    for a in [0.0, 0.3, 1.0] {
        let loss = soft_loss_with(&m, inputs.clone(), targets.clone(), &terms, distill(a));
        let want = ((1.0 - a) * ce2 + a * kl + 3.0 * ce4) / 4.0;
        let got = scalar(loss.total.clone());
        assert!((got - want).abs() < 1e-5, "distill {a}: {got} vs {want}");
        // The reported terms stay the cross-entropies on the text; the full model has no KL.
        assert!((scalar(loss.terms[0].clone()) - ce2).abs() < 1e-5);
        assert!(loss.distill_terms[1].is_none());
        assert_eq!(loss.distill_terms[0].is_some(), a > 0.0);
    }
    // The full model is a fixed target: exit 2 distilled alone (the teacher from an extra
    // pass) gives its layers 3-4 no gradient, and the KL matches the hand-computed one.
    let shallow = [term("L2-H4-F24", 1.0)];
    let alone = soft_loss_with(&m, inputs.clone(), targets.clone(), &shallow, distill(1.0));
    let got = scalar(alone.total.clone());
    assert!((got - kl).abs() < 1e-5, "{got} vs {kl}");
    let grads = alone.total.backward();
    assert_no_grad("layer 3 gate", &m.layers[2].gate.weight, &grads);
    assert_no_grad("layer 4 query", &m.layers[3].query.weight, &grads);
    assert_zero_grad_outside("layer 1 gate", &m.layers[0].gate.weight, &grads, [0..16, 0..24]);
    // A narrower full-depth term is not the full model: it is distilled too.
    let narrow = [term("L4-H4-F8", 1.0)];
    let loss = soft_loss_with(&m, inputs, targets, &narrow, distill(0.5));
    assert!(loss.distill_terms[0].is_some());
}
