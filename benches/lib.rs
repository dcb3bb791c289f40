//! Shared setup of the `sorted-bench` criterion targets.
//!
//! # Which backend
//!
//! The benches run on whichever backend feature of this package is switched on: Flex (burn's CPU
//! backend, the default feature `flex`), `ndarray`, `wgpu` or `cuda`. Because `flex` is a default
//! feature, naming another one keeps Flex compiled in; the most specific one wins, in the order
//! `cuda`, `wgpu`, `ndarray`, `flex`. [`DEVICE`] names the one in use, and every criterion group
//! is called `"{DEVICE}/{case}"` ([`group_name`]), so results of different backends never mix in
//! `target/criterion`.
//!
//! ```text
//! cargo bench -p sorted-bench                       # Flex
//! cargo bench -p sorted-bench --features cuda       # CUDA
//! cargo xtask bench                                 # Flex, plus the ratio report
//! ```
//!
//! # Timing
//!
//! GPU backends queue work asynchronously, so the benches time with criterion's `iter_custom`
//! through [`time_iters`], which calls [`sync`] before it reads the clock at either end.
//!
//! # Report coupling
//!
//! `cargo xtask bench` (`xtask/src/bench.rs`) reads criterion's estimates by group and benchmark
//! id. The case names, ids and sizes below and in the bench files are part of that contract:
//! change them in both places.

#![deny(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use burn::backend::Autodiff;
use burn::module::Param;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::{Distribution, Tolerance};
use sorted_nn::{NestingSpace, NestingSpaceConfig};
use sorted_sched::{SamplerConfig, UniformOver, UniformSamplerConfig};
use sorted_zoo::{DenseCnn, DenseMlp};

#[cfg(not(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda")))]
compile_error!("sorted-bench needs a backend feature: `flex` (the default), `ndarray`, `wgpu` or `cuda`");

/// The backend the benches run on (here: CUDA, feature `cuda`).
#[cfg(feature = "cuda")]
pub type Bench = burn::backend::Cuda;
/// The name of the device the benches run on, the first part of every group name.
#[cfg(feature = "cuda")]
pub const DEVICE: &str = "cuda";

/// The backend the benches run on (here: wgpu, feature `wgpu`).
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type Bench = burn::backend::Wgpu;
/// The name of the device the benches run on, the first part of every group name.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub const DEVICE: &str = "wgpu";

/// The backend the benches run on (here: NdArray, feature `ndarray`).
#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "cuda"))))]
pub type Bench = burn::backend::NdArray;
/// The name of the device the benches run on, the first part of every group name.
#[cfg(all(feature = "ndarray", not(any(feature = "wgpu", feature = "cuda"))))]
pub const DEVICE: &str = "ndarray";

/// The backend the benches run on (here: Flex, the default feature `flex`).
#[cfg(all(feature = "flex", not(any(feature = "ndarray", feature = "wgpu", feature = "cuda"))))]
pub type Bench = burn::backend::Flex;
/// The name of the device the benches run on, the first part of every group name.
#[cfg(all(feature = "flex", not(any(feature = "ndarray", feature = "wgpu", feature = "cuda"))))]
pub const DEVICE: &str = "flex";

/// [`Bench`] with automatic differentiation, for training steps.
pub type BenchAutodiff = Autodiff<Bench>;

/// The device of [`Bench`] (and of [`BenchAutodiff`]).
pub type BenchDevice = <Bench as burn::tensor::backend::BackendTypes>::Device;

/// The group name for the sampler, which runs on the host whatever the backend.
pub const HOST: &str = "host";

/// Default warm-up time of every bench: short, so the whole suite runs in a few minutes on 2
/// cores. Criterion's command-line options (`--warm-up-time`, `--quick`, ...) override these.
pub const WARM_UP: Duration = Duration::from_secs(1);
/// Default measurement time of every bench.
pub const MEASUREMENT: Duration = Duration::from_secs(3);
/// Default samples per bench (criterion's minimum is 10).
pub const SAMPLES: usize = 20;

/// The suite's criterion settings ([`WARM_UP`], [`MEASUREMENT`], [`SAMPLES`]); command-line
/// options (`--quick`, `--measurement-time`, ...) still win.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(SAMPLES)
        .configure_from_args()
}

/// `SortedLinear` case: allocated `[d_in, d_out]`.
pub const LINEAR_ALLOCATED: usize = 1024;
/// `SortedLinear` case: active sizes (square `[a, a]` blocks).
pub const LINEAR_ACTIVE: [usize; 3] = [256, 512, 1024];
/// `SortedLinear` case: batch size.
pub const LINEAR_BATCH: usize = 128;

/// `SortedConv2d` case: allocated `[c_in, c_out]`, 3x3 kernel, padding 1.
pub const CONV_ALLOCATED: [usize; 2] = [64, 128];
/// `SortedConv2d` case: active output channels; the active input channels are half of each.
pub const CONV_ACTIVE_OUT: [usize; 3] = [32, 64, 128];
/// `SortedConv2d` case: input height and width.
pub const CONV_HW: usize = 32;
/// `SortedConv2d` case: batch size.
pub const CONV_BATCH: usize = 32;

/// `SortedBatchNorm` case: allocated channels.
pub const BN_ALLOCATED: usize = 64;
/// `SortedBatchNorm` case: active channels.
pub const BN_ACTIVE: [usize; 3] = [16, 32, 64];
/// `SortedBatchNorm` case: input height and width (the ResNet's first stage on 28x28 inputs).
pub const BN_HW: usize = 14;
/// `SortedBatchNorm` case: batch size.
pub const BN_BATCH: usize = 128;

/// Training-step case: batch size (the default experiment's).
pub const TRAIN_BATCH: usize = 128;
/// Training-step case: sub-models per sorted step (the default experiment's `k`).
pub const TRAIN_K: usize = 4;

/// Deploy case: batch sizes (one request, and a batch).
pub const DEPLOY_BATCHES: [usize; 2] = [1, 64];
/// Deploy case: sub-models of the default MLP space, smallest to full.
pub const DEPLOY_MLP_SUB_MODELS: [&str; 4] = ["32", "128-64", "256-256", "256-256-256-256"];
/// Deploy case: sub-models of the CNN space ([`cnn_space`]), smallest to full.
pub const DEPLOY_CNN_SUB_MODELS: [&str; 3] = ["8", "16-16-8", "32-32-32-32"];

/// The space of `configs/mnist-cnn.toml`: depth 1-4, channels 8/16/24/32 per block, untied.
pub fn cnn_space() -> NestingSpace {
    NestingSpace::new(NestingSpaceConfig {
        depths: vec![1, 2, 3, 4],
        widths: Some(vec![8, 16, 24, 32]),
        block_widths: None,
        tie_widths: false,
    })
    .expect("the CNN space is valid")
}

/// The full name of a criterion group: `"{DEVICE}/{case}"`.
pub fn group_name(case: &str) -> String {
    format!("{DEVICE}/{case}")
}

/// The default device of [`Bench`], seeded so that inputs are the same from run to run.
pub fn device() -> BenchDevice {
    let device = BenchDevice::default();
    Bench::seed(&device, 0);
    device
}

/// Waits until the work queued on `device` has finished (a no-op on the CPU backends).
///
/// # Panics
/// If the backend reports an execution error: a benchmark cannot go on after one.
pub fn sync<B: Backend>(device: &B::Device) {
    B::sync(device).expect("the backend failed to finish its queued work");
}

/// Runs `f` `iters` times and returns the elapsed time, with [`sync`] before reading the clock at
/// the start and at the end: the body of criterion's `iter_custom`.
pub fn time_iters<B: Backend, R>(device: &B::Device, iters: u64, mut f: impl FnMut() -> R) -> Duration {
    sync::<B>(device);
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    sync::<B>(device);
    start.elapsed()
}

/// Like [`time_iters`], but runs `partner` once between consecutive calls of `target` (before
/// it on even iterations, after it on odd ones) and returns the time of the `target` calls only.
///
/// Two benches that time each side of a comparison this way see the same cache contents and
/// the same machine load, call by call, as `SortedModel::compare_with_dense` does: on a shared
/// VM, two sequential criterion windows drift apart by more than the few percent being
/// compared.
pub fn time_interleaved<B: Backend, R, P>(
    device: &B::Device,
    iters: u64,
    mut target: impl FnMut() -> R,
    mut partner: impl FnMut() -> P,
) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        if i % 2 == 0 {
            black_box(partner());
        }
        sync::<B>(device);
        let start = Instant::now();
        black_box(target());
        sync::<B>(device);
        total += start.elapsed();
        if i % 2 == 1 {
            black_box(partner());
        }
    }
    total
}

/// The default experiment's nesting space (`configs/mnist-mlp.toml`): depth 1-4, each block
/// 32/64/128/256 units wide, untied: 4 + 16 + 64 + 256 = 340 sub-models.
pub fn default_space() -> NestingSpace {
    NestingSpace::new(NestingSpaceConfig {
        depths: vec![1, 2, 3, 4],
        widths: Some(vec![32, 64, 128, 256]),
        block_widths: None,
        tie_widths: false,
    })
    .expect("the default space is valid")
}

/// The uniform samplers the benches compare, `(id suffix, config)`, both k = [`TRAIN_K`]:
/// - `axes`: a uniform depth, then a uniform width per active block: the default experiment's
///   sampler (`over = "axes"` in `configs/mnist-mlp.toml`);
/// - `submodels`: uniform over all 340 sub-models (`SamplerConfig::default()`), which draws depth
///   4 three times in four and so costs more per step.
pub fn uniform_samplers() -> [(&'static str, SamplerConfig); 2] {
    let uniform = |over| SamplerConfig::Uniform(UniformSamplerConfig { k: TRAIN_K, include_full: false, over });
    [("axes", uniform(UniformOver::Axes)), ("submodels", uniform(UniformOver::SubModels))]
}

/// A standard-normal input of shape `shape`.
pub fn normal_input<B: Backend, const D: usize>(shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

/// An MNIST-shaped batch: uniform `[0, 1)` images `[batch, 1, 28, 28]` and labels `0..10`.
pub fn mnist_batch<B: Backend>(batch: usize, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
    let images = Tensor::random([batch, 1, 28, 28], Distribution::Uniform(0.0, 1.0), device);
    let labels = Tensor::arange(0..batch as i64, device).remainder_scalar(10);
    (images, labels)
}

/// Asserts that `sorted` and `dense` agree (burn's permissive tolerance): a bench setup checks
/// that both sides of a comparison compute the same thing before it times them.
///
/// # Panics
/// If the shapes or values differ.
pub fn assert_same<B: Backend, const D: usize>(sorted: Tensor<B, D>, dense: Tensor<B, D>) {
    sorted.into_data().assert_approx_eq::<f32>(&dense.into_data(), Tolerance::permissive());
}

/// A copy of `tensor` in fresh, contiguous storage.
///
/// `to_dense` slices the allocated weights, which may leave a strided view; the dense baselines
/// must own contiguous weights, as a separately trained or exported model would.
pub fn contiguous<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Tensor<B, D> {
    let device = tensor.device();
    Tensor::from_data(tensor.into_data(), &device)
}

/// `layer` with its parameters copied into fresh contiguous storage (new parameter ids).
pub fn own_linear<B: Backend>(layer: Linear<B>) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(contiguous(layer.weight.val())),
        bias: layer.bias.map(|b| Param::from_tensor(contiguous(b.val()))),
    }
}

/// `conv` with its parameters copied into fresh contiguous storage (new parameter ids).
pub fn own_conv2d<B: Backend>(mut conv: Conv2d<B>) -> Conv2d<B> {
    conv.weight = Param::from_tensor(contiguous(conv.weight.val()));
    conv.bias = conv.bias.map(|b| Param::from_tensor(contiguous(b.val())));
    conv
}

/// `cnn` with its convolutions' and head's parameters copied into fresh contiguous storage
/// (BatchNorm parameters and statistics are per-layer copies already).
pub fn own_cnn<B: Backend>(cnn: DenseCnn<B>) -> DenseCnn<B> {
    DenseCnn { convs: cnn.convs.into_iter().map(own_conv2d).collect(), norms: cnn.norms, head: own_linear(cnn.head) }
}

/// `mlp` with every layer's parameters copied into fresh contiguous storage.
pub fn own_mlp<B: Backend>(mlp: DenseMlp<B>) -> DenseMlp<B> {
    DenseMlp { layers: mlp.layers.into_iter().map(own_linear).collect(), head: own_linear(mlp.head) }
}
