//! Does the decoding layout (`SortedLlama::decode_weights`: each projection copied as a
//! contiguous `[out, in]` matrix) make decoding steps faster than the training layout? The 30
//! layers of a SmolLM2-135M-shaped decoder (random weights: the cost does not depend on the
//! values) after 100 cached positions, on 1 new position (a greedy step) and on 3 and 6 (a
//! speculative verification pass), in both layouts; and a greedy step of the sub-models that
//! keep 2 or 1 of the 3 query heads per KV group (6 or 3 of 9 heads, nested per group), in the
//! decoding layout.
//!
//! The same steps on the host decoder (`SortedLlama::host_decoder`: one fused pass per layer on
//! the CPU) with f32 weights, 8-bit weights and f32 activations, and 8-bit weights and
//! activations.
//!
//! Group `{device}/decode`; ids `model_layout/s<positions>`, `decode_layout/s<positions>`,
//! `decode_layout_heads<h>/s1` and `host_{f32,q8,q8_int8}/s<positions>`.
//! Not part of `cargo xtask bench`'s report; run `cargo bench -p sorted-bench --bench decode`.

use burn::prelude::*;
use criterion::{BenchmarkId, Criterion, criterion_main};
use sorted_bench::{Bench, assert_same, device, group_name, time_iters};
use sorted_zoo::llama::{HostWeights, KvCache, SortedLlamaConfig};

fn decode(c: &mut Criterion) {
    let device = device();
    let mut group = c.benchmark_group(group_name("decode"));
    group.sample_size(10);
    let model = SortedLlamaConfig::smollm2_135m().init::<Bench>(&device);
    let weights = model.decode_weights();
    let full = model.full_sub_model();
    let depth = full.depth;
    let prompt = Tensor::<Bench, 3>::random([1, 100, 576], burn::tensor::Distribution::Default, &device);
    let mut cache = KvCache::new();
    let _ = model.run_layers(prompt, 0, depth, &full, &mut cache);
    for positions in [1usize, 3, 6] {
        let x = Tensor::<Bench, 3>::random([1, positions, 576], burn::tensor::Distribution::Default, &device);
        assert_same(
            model.run_layers(x.clone(), 0, depth, &full, &mut cache.clone()),
            model.run_layers_with(x.clone(), 0, depth, &full, &mut cache.clone(), Some(&weights)),
        );
        let id = format!("s{positions}");
        group.bench_function(BenchmarkId::new("model_layout", &id), |b| {
            b.iter_custom(|iters| {
                time_iters::<Bench, _>(&device, iters, || {
                    model.run_layers(x.clone(), 0, depth, &full, &mut cache.clone())
                })
            });
        });
        group.bench_function(BenchmarkId::new("decode_layout", &id), |b| {
            b.iter_custom(|iters| {
                time_iters::<Bench, _>(&device, iters, || {
                    model.run_layers_with(x.clone(), 0, depth, &full, &mut cache.clone(), Some(&weights))
                })
            });
        });
    }
    let x = Tensor::<Bench, 3>::random([1, 1, 576], burn::tensor::Distribution::Default, &device);
    for heads in [6usize, 3] {
        let mut narrow = full;
        narrow.heads = heads;
        group.bench_function(BenchmarkId::new(format!("decode_layout_heads{heads}"), "s1"), |b| {
            b.iter_custom(|iters| {
                time_iters::<Bench, _>(&device, iters, || {
                    model.run_layers_with(x.clone(), 0, depth, &narrow, &mut cache.clone(), Some(&weights))
                })
            });
        });
    }
    // The host decoder after the same 100 positions.
    let tokens: Vec<u32> = (0..100).collect();
    for (name, format) in
        [("host_f32", HostWeights::F32), ("host_q8", HostWeights::Q8), ("host_q8_int8", HostWeights::Q8Int8)]
    {
        let host = model.host_decoder(format);
        let mut cache = host.new_cache();
        let _ = host.run_layers(host.embed(&tokens), 0, depth, full.heads, full.ffn, &mut cache);
        for positions in [1usize, 3, 6] {
            let x = host.embed(&tokens[..positions]);
            group.bench_function(BenchmarkId::new(name, format!("s{positions}")), |b| {
                b.iter(|| {
                    let h = host.run_layers(x.clone(), 0, depth, full.heads, full.ffn, &mut cache);
                    cache.truncate(100);
                    h
                })
            });
        }
    }
    group.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    decode(&mut c);
}

criterion_main!(benches);
