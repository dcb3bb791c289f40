//! Does serving a sub-model from the sorted weights cost more than serving its exported dense
//! copy? Forward (inference) latency of sub-models of the default experiment's MLP
//! (784-[256 x 4]-10, `configs/mnist-mlp.toml`) and of the CNN of `configs/mnist-cnn.toml`
//! (channels 8/16/24/32, strides 1,2,2,1, recalibrated BatchNorm). The ways of serving:
//!
//! - *export*: the sub-model extracted into plain burn-nn layers with their own contiguous
//!   weights, in burn-nn's `[d_in, d_out]` layout (what `sorted-runner export` writes and
//!   `load_export` loads);
//! - *view*: served by a `SortedModel` from its view of the shared weights, which stay in the
//!   training layout (`WeightLayout::InputMajor`);
//! - *output-major view* and *output-major dense copy*: the same with the linear weights stored
//!   `[d_out, d_in]` (`WeightLayout::OutputMajor`), the dense copy being what `SortedModel::pin`
//!   keeps in that layout;
//! - *per call*: the sorted model's own forward pass, slicing the weights on every call (as
//!   training does).
//!
//! Each comparison is a pair of benches timed interleaved ([`sorted_bench::time_interleaved`]):
//! `sliced/` (view) with `dense/` (export); `sliced-output-major/` with `dense-output-major/`;
//! `cross-sliced/` (output-major view) with `cross-dense/` (export). `per-call/` runs alone.
//! Group `{device}/deploy`; ids `<way>/<model>:<sub-model>_b<batch>`; `cargo xtask bench`
//! reports the ratios.

use burn::prelude::*;
use criterion::{BenchmarkId, Criterion, criterion_main};
use sorted_bench::{
    Bench, DEPLOY_BATCHES, DEPLOY_CNN_SUB_MODELS, DEPLOY_MLP_SUB_MODELS, assert_same, cnn_space, default_space, device,
    group_name, own_cnn, own_mlp, time_interleaved, time_iters,
};
use sorted_nn::{NormCalibrator, NormPass, SubModel};
use sorted_zoo::deploy::{SortedModel, WeightLayout};
use sorted_zoo::{DenseClassifier, SortedClassifier, SortedCnnConfig, SortedMlpConfig};

fn images(batch: usize, device: &<Bench as burn::tensor::backend::BackendTypes>::Device) -> Tensor<Bench, 4> {
    Tensor::random([batch, 1, 28, 28], burn::tensor::Distribution::Uniform(0.0, 1.0), device)
}

/// Benches the five ways of serving `sub` of `model` (both handles serve the same weights).
fn serve<M: SortedClassifier<Bench>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    sub: &SubModel,
    x: &Tensor<Bench, 4>,
    export: &M::Dense,
    input_major: &SortedModel<Bench, M>,
    output_major: &SortedModel<Bench, M>,
) {
    let device = x.device();
    let dense_output_major = output_major.dense_copy(sub).expect("a servable sub-model");
    let reference = export.forward(x.clone());
    assert_same(input_major.forward(x.clone(), sub).expect("servable"), reference.clone());
    let close = |out: Tensor<Bench, 2>| {
        out.into_data()
            .assert_approx_eq::<f32>(&reference.clone().into_data(), burn::tensor::Tolerance::absolute(1e-4));
    };
    close(output_major.forward(x.clone(), sub).expect("servable"));
    close(dense_output_major.forward(x.clone()));
    let export = || export.forward(x.clone());
    let view = || input_major.forward(x.clone(), sub);
    let dense_om = || dense_output_major.forward(x.clone());
    let view_om = || output_major.forward(x.clone(), sub);
    pair(group, ("sliced", "dense"), id, &device, view, export);
    pair(group, ("sliced-output-major", "dense-output-major"), id, &device, view_om, dense_om);
    pair(group, ("cross-sliced", "cross-dense"), id, &device, view_om, export);
    group.bench_function(BenchmarkId::new("per-call", id), |b| {
        b.iter_custom(|iters| time_iters::<Bench, _>(&device, iters, || input_major.forward_sliced(x.clone(), sub)));
    });
}

/// Benches `sorted` and `dense` as `<names.0>/<id>` and `<names.1>/<id>`, each timed with the
/// other interleaved.
fn pair<R, P>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    names: (&str, &str),
    id: &str,
    device: &<Bench as burn::tensor::backend::BackendTypes>::Device,
    sorted: impl Fn() -> R,
    dense: impl Fn() -> P,
) {
    group.bench_function(BenchmarkId::new(names.0, id), |b| {
        b.iter_custom(|iters| time_interleaved::<Bench, _, _>(device, iters, &sorted, &dense));
    });
    group.bench_function(BenchmarkId::new(names.1, id), |b| {
        b.iter_custom(|iters| time_interleaved::<Bench, _, _>(device, iters, &dense, &sorted));
    });
}

fn deploy(c: &mut Criterion) {
    let device = device();
    let mut group = c.benchmark_group(group_name("deploy"));
    // Each paired bench also runs its partner: shorter windows keep the group's wall time near
    // the other groups'.
    group.measurement_time(std::time::Duration::from_secs(2));

    let space = default_space();
    let mlp = SortedMlpConfig::for_space(784, 10, &space).init::<Bench>(&device);
    let input_major = SortedModel::new(mlp.clone(), space.clone()).expect("the MLP fits its space");
    let output_major = SortedModel::new(mlp.clone(), space.clone())
        .expect("the MLP fits its space")
        .with_weight_layout(WeightLayout::OutputMajor);
    for name in DEPLOY_MLP_SUB_MODELS {
        let sub = space.parse_sub_model(name).expect("a sub-model of the default space");
        let export = own_mlp(mlp.extract(&sub, None));
        let probe = images(2, &device);
        assert_same(mlp.forward(probe.clone(), &sub, &mut NormPass::Batch), export.forward(probe));
        for batch in DEPLOY_BATCHES {
            let x = images(batch, &device);
            serve(&mut group, &format!("mlp:{name}_b{batch}"), &sub, &x, &export, &input_major, &output_major);
        }
    }

    let space = cnn_space();
    let cnn = SortedCnnConfig::for_space(1, [28, 28], 10, &space, vec![1, 2, 2, 1]).init::<Bench>(&device);
    let mut input_major = SortedModel::new(cnn.clone(), space.clone()).expect("the CNN fits its space");
    let mut output_major = SortedModel::new(cnn.clone(), space.clone())
        .expect("the CNN fits its space")
        .with_weight_layout(WeightLayout::OutputMajor);
    for name in DEPLOY_CNN_SUB_MODELS {
        let sub = space.parse_sub_model(name).expect("a sub-model of the CNN space");
        let mut calibrator = NormCalibrator::new();
        let mut seen = Vec::new();
        let _ = cnn.forward(images(64, &device), &sub, &mut NormPass::Observe(&mut seen));
        calibrator.add(seen);
        let stats = calibrator.finish().expect("one batch observed");
        let export = own_cnn(cnn.extract(&sub, Some(&stats)));
        input_major.insert_norm_stats(&sub, stats.clone()).expect("in the space");
        output_major.insert_norm_stats(&sub, stats).expect("in the space");
        for batch in DEPLOY_BATCHES {
            let x = images(batch, &device);
            serve(&mut group, &format!("cnn:{name}_b{batch}"), &sub, &x, &export, &input_major, &output_major);
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
