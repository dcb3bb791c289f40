//! Does the few-row kernel (`sorted_zoo::llama::matmul_by_transposed`, which hands products of
//! up to 8 rows to `sorted_kernels`) beat burn's matmul on the products of a decoding step?
//! SmolLM2-135M's shapes, weights stored `[out, in]` (the decoding layout): the tied head
//! (`49152 x 576`), gate/up (`1536 x 576`), down (`576 x 1536`), query/output (`576 x 576`) and
//! key/value (`192 x 576`), each times 1, 2, 4 and 8 rows. On Flex both run in this one
//! process, so their ratio is measured in one run; on other backends the two ids run the same
//! code (the kernel is Flex-only).
//!
//! Group `{device}/few_rows`; ids `burn_matmul/<out>x<in>/m<rows>` and
//! `kernel/<out>x<in>/m<rows>`. Not part of `cargo xtask bench`'s report; run
//! `cargo bench -p sorted-bench --bench few_rows`.

use std::time::Duration;

use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{BenchmarkId, Criterion, criterion_main};
use sorted_bench::{Bench, device, group_name, time_iters};
use sorted_zoo::llama::matmul_by_transposed;

fn few_rows(c: &mut Criterion) {
    let device = device();
    let mut group = c.benchmark_group(group_name("few_rows"));
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for (out, inp) in [(49_152usize, 576usize), (1536, 576), (576, 1536), (576, 576), (192, 576)] {
        let w = Tensor::<Bench, 2>::random([out, inp], Distribution::Default, &device);
        for rows in [1usize, 2, 4, 8] {
            let x = Tensor::<Bench, 2>::random([rows, inp], Distribution::Default, &device);
            let burn = || w.clone().matmul(x.clone().transpose()).transpose();
            let kernel = || matmul_by_transposed(x.clone(), w.clone());
            let diff = burn().sub(kernel()).abs().max().into_scalar().elem::<f32>();
            assert!(diff < 1e-3, "{out}x{inp}, {rows} rows: the kernel differs from burn's matmul by {diff}");
            let id = format!("{out}x{inp}/m{rows}");
            group.bench_function(BenchmarkId::new("burn_matmul", &id), |b| {
                b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, burn));
            });
            group.bench_function(BenchmarkId::new("kernel", &id), |b| {
                b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, kernel));
            });
        }
    }
    group.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    few_rows(&mut c);
}

criterion_main!(benches);
