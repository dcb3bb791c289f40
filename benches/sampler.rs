//! What does drawing the sub-models of one step cost? `Sampler::sample(step)` on the default
//! experiment's 340-sub-model space (depth 1-4, widths 32/64/128/256, untied).
//!
//! Group `host/sampler` (sampling never touches the backend):
//! - `uniform_k4_axes`: uniform per axis, k = 4 (the default experiment's sampler);
//! - `uniform_k4_submodels`: uniform over the 340 sub-models, k = 4 (`SamplerConfig::default()`);
//! - `sandwich_k4`: largest, smallest and two uniform sub-models.
//!
//! Throughput is counted in sub-models drawn.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use sorted_bench::{HOST, TRAIN_K, default_space, uniform_samplers};
use sorted_sched::{SamplerConfig, SandwichSamplerConfig, UniformOver};

/// The default experiment's seed.
const SEED: u64 = 42;

fn sampler(c: &mut Criterion) {
    let space = default_space();
    assert_eq!(space.len(), 340, "the default space has 340 sub-models");
    let sandwich = SamplerConfig::Sandwich(SandwichSamplerConfig { k: TRAIN_K, over: UniformOver::SubModels });
    let configs = uniform_samplers()
        .into_iter()
        .map(|(over, config)| (format!("uniform_k{TRAIN_K}_{over}"), config))
        .chain([(format!("sandwich_k{TRAIN_K}"), sandwich)]);
    let mut group = c.benchmark_group(format!("{HOST}/sampler"));
    group.throughput(Throughput::Elements(TRAIN_K as u64));
    for (id, config) in configs {
        let sampler = config.build(&space, SEED).expect("the sampler fits the default space");
        assert_eq!(sampler.k(), TRAIN_K);
        let mut step = 0_u64;
        group.bench_function(id, |b| {
            b.iter(|| {
                step += 1;
                black_box(sampler.sample(black_box(step)))
            });
        });
    }
    group.finish();
}

/// Runs this file's groups with the suite's settings ([`sorted_bench::criterion`]).
fn benches() {
    let mut c = sorted_bench::criterion();
    sampler(&mut c);
}

criterion_main!(benches);
