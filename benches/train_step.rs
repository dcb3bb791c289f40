//! What does a sorted training step cost? One optimizer step of the default experiment's MLP
//! (784-[256, 256, 256, 256]-10, batch 128, cross-entropy, Adam) on `Autodiff<backend>`.
//!
//! Group `{device}/train_step`, five ids, all through the same plumbing
//! (`sorted_sched::accumulate`, then one `SortedOptimizer` step):
//! - `sorted_full`: the `SortedMlp`, k = 1, the largest sub-model;
//! - `dense_full`: the same network extracted into plain burn-nn layers (`DenseMlp`, its own
//!   Adam), k = 1. `sorted_full / dense_full` is the overhead of the sorted layers;
//! - `sorted_k4_axes`: the `SortedMlp`, k = 4 sub-models drawn uniformly per axis (the default
//!   experiment's sampler); `sorted_k4_submodels`: drawn uniformly over all 340 sub-models;
//! - `dense_full_x4`: forward + backward of the dense full model 4 times, then one step: training
//!   the full model alone with the same number of passes.

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use sorted_bench::{
    BenchAutodiff, TRAIN_BATCH, TRAIN_K, assert_same, default_space, device, group_name, mnist_batch, own_mlp,
    time_iters, uniform_samplers,
};
use sorted_nn::{NormPass, SubModel};
use sorted_sched::{AdamOptions, OptimizerConfig, SortedOptimizer, accumulate};
use sorted_zoo::{DenseClassifier, SortedClassifier, SortedMlpConfig};

type AB = BenchAutodiff;

/// The default experiment's base learning rate.
const LR: f64 = 1e-3;
/// The sampler's seed (the default experiment's).
const SEED: u64 = 42;

/// A model and its optimizer, stepped in place.
struct Trainer<M: AutodiffModule<AB>> {
    model: Option<M>,
    optim: SortedOptimizer<M, AB>,
}

impl<M: AutodiffModule<AB>> Trainer<M> {
    fn new(model: M) -> Self {
        let adam = OptimizerConfig::Adam(AdamOptions { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: None });
        Self { model: Some(model), optim: adam.init::<AB, M>() }
    }

    /// One optimizer step: the summed gradients of `subs`, then Adam.
    fn step(&mut self, subs: &[SubModel], loss_of: impl FnMut(&M, usize, &SubModel) -> Tensor<AB, 1>) {
        let model = self.model.take().expect("the model is put back after every step");
        let acc = accumulate(&model, subs, &[], loss_of);
        self.model = Some(self.optim.step(LR, model, acc.grads));
    }
}

fn train_step(c: &mut Criterion) {
    let device = device();
    let space = default_space();
    let largest = space.largest();
    let (images, labels) = mnist_batch::<AB>(TRAIN_BATCH, &device);
    let loss_fn = CrossEntropyLossConfig::new().init::<AB>(&device);
    let sorted = SortedMlpConfig::for_space(784, 10, &space).init::<AB>(&device);
    let dense = own_mlp(sorted.extract(&largest, None));
    assert_same(sorted.forward(images.clone(), &largest, &mut NormPass::Batch), dense.forward(images.clone()));

    let mut group = c.benchmark_group(group_name("train_step"));
    // Milliseconds per step: flat sampling keeps the run near the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(TRAIN_BATCH as u64));

    let sorted_loss = |m: &sorted_zoo::SortedMlp<AB>, _: usize, sub: &SubModel| {
        loss_fn.forward(m.forward(images.clone(), sub, &mut NormPass::Batch), labels.clone())
    };
    let dense_loss = |m: &sorted_zoo::DenseMlp<AB>, _: usize, _: &SubModel| {
        loss_fn.forward(m.forward(images.clone()), labels.clone())
    };

    let full = [largest.clone()];
    let mut trainer = Trainer::new(sorted.clone());
    group.bench_function("sorted_full", |b| {
        b.iter_custom(|iters| time_iters::<AB, _>(&device, iters, || trainer.step(&full, sorted_loss)));
    });

    let mut trainer = Trainer::new(dense.clone());
    group.bench_function("dense_full", |b| {
        b.iter_custom(|iters| time_iters::<AB, _>(&device, iters, || trainer.step(&full, dense_loss)));
    });

    for (over, config) in uniform_samplers() {
        let sampler = config.build(&space, SEED).expect("the sampler fits the default space");
        let mut trainer = Trainer::new(sorted.clone());
        let mut step = 0_u64;
        group.bench_function(format!("sorted_k{TRAIN_K}_{over}"), |b| {
            b.iter_custom(|iters| {
                time_iters::<AB, _>(&device, iters, || {
                    let subs = sampler.sample(step);
                    step += 1;
                    trainer.step(&subs, sorted_loss)
                })
            });
        });
    }

    let full_k = vec![largest; TRAIN_K];
    let mut trainer = Trainer::new(dense);
    group.bench_function(format!("dense_full_x{TRAIN_K}"), |b| {
        b.iter_custom(|iters| time_iters::<AB, _>(&device, iters, || trainer.step(&full_k, dense_loss)));
    });

    group.finish();
}

/// Runs this file's groups with the suite's settings ([`sorted_bench::criterion`]).
fn benches() {
    let mut c = sorted_bench::criterion();
    train_step(&mut c);
}

criterion_main!(benches);
