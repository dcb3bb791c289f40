//! Does slicing cost anything? A `SortedLinear` / `SortedConv2d` forward at an active sub-size
//! against a plain burn-nn layer of exactly that size (contiguous weights of its own).
//!
//! - `{device}/linear`: allocated 1024x1024, active `[a, a]` for a = 256, 512, 1024, batch 128.
//! - `{device}/conv2d`: allocated 64 -> 128 channels, 3x3, padding 1, on 32x32 inputs, batch 32;
//!   active `c_out` = 32, 64, 128 filters over `c_out / 2` input channels.
//!
//! - `{device}/batch_norm`: allocated 64 channels, active c = 16, 32, 64, batch 128, 14x14, with
//!   fixed (recalibrated) statistics, against burn-nn's `BatchNorm` in inference mode. Our layer
//!   uses `[n, c, 1]` operands on the `[n, c, h*w]` view, which Flex runs on its SIMD broadcast
//!   path; burn-nn's `[1, c, 1, 1]` operands are not (a ratio well under 1 on Flex).
//!
//! Ids are `sorted/<active>` and `dense/<active>`; `cargo xtask bench` reports sorted/dense.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_main};
use sorted_bench::{
    BN_ACTIVE, BN_ALLOCATED, BN_BATCH, BN_HW, Bench, CONV_ACTIVE_OUT, CONV_ALLOCATED, CONV_BATCH, CONV_HW,
    LINEAR_ACTIVE, LINEAR_ALLOCATED, LINEAR_BATCH, assert_same, device, group_name, normal_input, own_conv2d,
    own_linear, time_iters,
};
use sorted_nn::{SortedBatchNormConfig, SortedConv2dConfig, SortedLinearConfig};

fn linear(c: &mut Criterion) {
    let device = device();
    let layer = SortedLinearConfig::new(LINEAR_ALLOCATED, LINEAR_ALLOCATED).init::<Bench>(&device);
    let mut group = c.benchmark_group(group_name("linear"));
    group.throughput(Throughput::Elements(LINEAR_BATCH as u64));
    for a in LINEAR_ACTIVE {
        let x = normal_input::<Bench, 2>([LINEAR_BATCH, a], &device);
        let dense = own_linear(layer.to_dense(a, a));
        assert_same(layer.forward(x.clone(), a), dense.forward(x.clone()));
        group.bench_function(BenchmarkId::new("sorted", a), |b| {
            b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || layer.forward(x.clone(), a)));
        });
        group.bench_function(BenchmarkId::new("dense", a), |b| {
            b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || dense.forward(x.clone())));
        });
    }
    group.finish();
}

fn conv2d(c: &mut Criterion) {
    let device = device();
    let conv = SortedConv2dConfig::new(CONV_ALLOCATED, [3, 3]).with_padding([1, 1]).init::<Bench>(&device);
    let mut group = c.benchmark_group(group_name("conv2d"));
    // Tens of milliseconds per call: flat sampling keeps the run near the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CONV_BATCH as u64));
    for c_out in CONV_ACTIVE_OUT {
        let c_in = c_out / 2;
        let x = normal_input::<Bench, 4>([CONV_BATCH, c_in, CONV_HW, CONV_HW], &device);
        let dense = own_conv2d(conv.to_dense(c_in, c_out));
        assert_same(conv.forward(x.clone(), c_out), dense.forward(x.clone()));
        group.bench_function(BenchmarkId::new("sorted", c_out), |b| {
            b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || conv.forward(x.clone(), c_out)));
        });
        group.bench_function(BenchmarkId::new("dense", c_out), |b| {
            b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || dense.forward(x.clone())));
        });
    }
    group.finish();
}

fn batch_norm(c: &mut Criterion) {
    let device = device();
    let bn = SortedBatchNormConfig::new(BN_ALLOCATED).init::<Bench>(&device);
    let mut group = c.benchmark_group(group_name("batch_norm"));
    group.throughput(Throughput::Elements(BN_BATCH as u64));
    for a in BN_ACTIVE {
        let x = normal_input::<Bench, 4>([BN_BATCH, a, BN_HW, BN_HW], &device);
        let (_, stats) = bn.forward_batch(x.clone());
        let dense = bn.to_dense(&stats);
        assert_same(bn.forward_with(x.clone(), &stats), dense.forward(x.clone()));
        group.bench_function(BenchmarkId::new("sorted", a), |b| {
            b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || bn.forward_with(x.clone(), &stats)));
        });
        group.bench_function(BenchmarkId::new("dense", a), |b| {
            b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || dense.forward(x.clone())));
        });
    }
    group.finish();
}

/// Runs this file's groups with the suite's settings ([`sorted_bench::criterion`]).
fn benches() {
    let mut c = sorted_bench::criterion();
    linear(&mut c);
    conv2d(&mut c);
    batch_norm(&mut c);
}

criterion_main!(benches);
