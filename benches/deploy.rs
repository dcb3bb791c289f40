//! Does serving a sub-model from the sorted weights cost more than serving its exported dense
//! copy? Forward (inference) latency of sub-models of the default experiment's MLP
//! (784-[256 x 4]-10, `configs/mnist-mlp.toml`) and of the CNN of `configs/mnist-cnn.toml`
//! (channels 8/16/24/32, strides 1,2,2,1, recalibrated BatchNorm), sliced from the allocated
//! weights against the same sub-model extracted into plain burn-nn layers with their own
//! contiguous weights (what `sorted-runner export` writes).
//!
//! Group `{device}/deploy`; ids `sliced/<model>:<sub-model>_b<batch>` and
//! `dense/<model>:<sub-model>_b<batch>`; `cargo xtask bench` reports sliced / dense.

use burn::prelude::*;
use criterion::{BenchmarkId, Criterion, criterion_main};
use sorted_bench::{
    Bench, DEPLOY_BATCHES, DEPLOY_CNN_SUB_MODELS, DEPLOY_MLP_SUB_MODELS, assert_same, cnn_space, default_space, device,
    group_name, own_cnn, own_mlp, time_iters,
};
use sorted_nn::{NormCalibrator, NormPass};
use sorted_zoo::{DenseClassifier, SortedClassifier, SortedCnnConfig, SortedMlpConfig};

fn images(batch: usize, device: &<Bench as burn::tensor::backend::BackendTypes>::Device) -> Tensor<Bench, 4> {
    Tensor::random([batch, 1, 28, 28], burn::tensor::Distribution::Uniform(0.0, 1.0), device)
}

fn deploy(c: &mut Criterion) {
    let device = device();
    let mut group = c.benchmark_group(group_name("deploy"));

    let space = default_space();
    let mlp = SortedMlpConfig::for_space(784, 10, &space).init::<Bench>(&device);
    for name in DEPLOY_MLP_SUB_MODELS {
        let sub = space.parse_sub_model(name).expect("a sub-model of the default space");
        let dense = own_mlp(mlp.extract(&sub, None));
        for batch in DEPLOY_BATCHES {
            let x = images(batch, &device);
            assert_same(mlp.forward(x.clone(), &sub, &mut NormPass::Batch), dense.forward(x.clone()));
            let id = format!("mlp:{name}_b{batch}");
            group.bench_function(BenchmarkId::new("sliced", &id), |b| {
                b.iter_custom(|iters| {
                    time_iters::<Bench, _>(&device, iters, || mlp.forward(x.clone(), &sub, &mut NormPass::Batch))
                });
            });
            group.bench_function(BenchmarkId::new("dense", &id), |b| {
                b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || dense.forward(x.clone())));
            });
        }
    }

    let space = cnn_space();
    let cnn = SortedCnnConfig::for_space(1, [28, 28], 10, &space, vec![1, 2, 2, 1]).init::<Bench>(&device);
    for name in DEPLOY_CNN_SUB_MODELS {
        let sub = space.parse_sub_model(name).expect("a sub-model of the CNN space");
        let mut calibrator = NormCalibrator::new();
        let mut seen = Vec::new();
        let _ = cnn.forward(images(64, &device), &sub, &mut NormPass::Observe(&mut seen));
        calibrator.add(seen);
        let stats = calibrator.finish().expect("one batch observed");
        let dense = own_cnn(cnn.extract(&sub, Some(&stats)));
        for batch in DEPLOY_BATCHES {
            let x = images(batch, &device);
            assert_same(cnn.forward(x.clone(), &sub, &mut NormPass::Calibrated(&stats)), dense.forward(x.clone()));
            let id = format!("cnn:{name}_b{batch}");
            group.bench_function(BenchmarkId::new("sliced", &id), |b| {
                b.iter_custom(|iters| {
                    time_iters::<Bench, _>(&device, iters, || {
                        cnn.forward(x.clone(), &sub, &mut NormPass::Calibrated(&stats))
                    })
                });
            });
            group.bench_function(BenchmarkId::new("dense", &id), |b| {
                b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || dense.forward(x.clone())));
            });
        }
    }
    group.finish();
}

/// Runs this file's group with the suite's settings ([`sorted_bench::criterion`]).
fn benches() {
    let mut c = sorted_bench::criterion();
    deploy(&mut c);
}

criterion_main!(benches);
