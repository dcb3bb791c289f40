use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::Distribution;
use sorted_nn::test_util::{assert_matches_dense, assert_prefix_shared, assert_zero_grad_outside};
use sorted_nn::{NormCalibrator, SortedBatchNormConfig, SortedConv2dConfig, SortedLayerNormConfig, SortedLinearConfig};

type B = Autodiff<Flex>;

fn seeded() -> <B as burn::tensor::backend::BackendTypes>::Device {
    let device = Default::default();
    B::seed(&device, 7);
    device
}

#[test]
fn linear_zero_grad_outside_active_block() {
    let device = seeded();
    let layer = SortedLinearConfig::new(12, 9).init::<B>(&device);
    let x = Tensor::<B, 2>::random([5, 7], Distribution::Normal(0.0, 1.0), &device);
    let grads = layer.forward(x, 4).powi_scalar(2).sum().backward();
    assert_zero_grad_outside("linear.weight", &layer.weight, &grads, [0..7, 0..4]);
    assert_zero_grad_outside("linear.bias", layer.bias.as_ref().unwrap(), &grads, [0..4]);
}

#[test]
fn linear_sub_forward_equals_dense() {
    let device = seeded();
    let layer = SortedLinearConfig::new(12, 9).init::<Flex>(&device);
    for (d_in, d_out) in [(1, 1), (5, 3), (12, 9), (12, 2)] {
        let x = Tensor::<Flex, 3>::random([2, 3, d_in], Distribution::Normal(0.0, 1.0), &device);
        assert_matches_dense(layer.forward(x.clone(), d_out), layer.to_dense(d_in, d_out).forward(x), 1e-5);
        assert_prefix_shared("linear.weight", layer.to_dense(d_in, d_out).weight.val(), layer.weight.val());
    }
}

#[test]
fn conv_zero_grad_outside_active_filters() {
    let device = seeded();
    let conv = SortedConv2dConfig::new([6, 8], [3, 3]).with_padding([1, 1]).init::<B>(&device);
    let x = Tensor::<B, 4>::random([2, 4, 5, 5], Distribution::Normal(0.0, 1.0), &device);
    let grads = conv.forward(x, 3).powi_scalar(2).sum().backward();
    assert_zero_grad_outside("conv.weight", &conv.weight, &grads, [0..3, 0..4, 0..3, 0..3]);
    assert_zero_grad_outside("conv.bias", conv.bias.as_ref().unwrap(), &grads, [0..3]);
}

#[test]
fn conv_sub_forward_equals_dense_including_stride_and_depthwise() {
    let device = seeded();
    let conv = SortedConv2dConfig::new([6, 8], [3, 3]).with_stride([2, 2]).with_padding([1, 1]).init::<Flex>(&device);
    let x = Tensor::<Flex, 4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &device);
    let y = conv.forward(x.clone(), 5);
    assert_eq!(y.dims(), [2, 5, 5, 5]);
    assert_matches_dense(y, conv.to_dense(4, 5).forward(x), 1e-5);

    let dw = SortedConv2dConfig::new([8, 8], [3, 3]).with_padding([1, 1]).with_depthwise(true).init::<Flex>(&device);
    let x = Tensor::<Flex, 4>::random([2, 5, 6, 6], Distribution::Normal(0.0, 1.0), &device);
    assert_matches_dense(dw.forward(x.clone(), 5), dw.to_dense(5, 5).forward(x), 1e-5);
}

#[test]
fn layer_norm_slices_gamma_and_beta() {
    let device = seeded();
    let norm = SortedLayerNormConfig::new(10).init::<B>(&device);
    let x = Tensor::<B, 2>::random([3, 6], Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<B, 2>::random([3, 6], Distribution::Normal(0.0, 1.0), &device);
    let grads = (norm.forward(x.clone()) * w).sum().backward();
    assert_zero_grad_outside("ln.gamma", &norm.gamma, &grads, [0..6]);
    assert_zero_grad_outside("ln.beta", &norm.beta, &grads, [0..6]);
    let inner = norm.valid();
    let x = x.inner();
    assert_matches_dense(inner.forward(x.clone()), inner.to_dense(6).forward(x), 1e-5);
}

#[test]
fn batch_norm_zero_grad_outside_and_dense_with_calibrated_stats() {
    let device = seeded();
    let bn = SortedBatchNormConfig::new(8).init::<B>(&device);
    let x = Tensor::<B, 4>::random([4, 5, 3, 3], Distribution::Normal(1.0, 2.0), &device);
    let w = Tensor::<B, 4>::random([4, 5, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let grads = (bn.forward_batch(x.clone()).0 * w).sum().backward();
    assert_zero_grad_outside("bn.gamma", &bn.gamma, &grads, [0..5]);
    assert_zero_grad_outside("bn.beta", &bn.beta, &grads, [0..5]);

    // Calibrated statistics over two equal batches equal the statistics of their union.
    let inner = bn.valid();
    let x = x.inner();
    let x2 = Tensor::<Flex, 4>::random([4, 5, 3, 3], Distribution::Normal(-1.0, 0.5), &device);
    let mut calib = NormCalibrator::new();
    calib.add(vec![inner.forward_batch(x.clone()).1]);
    calib.add(vec![inner.forward_batch(x2.clone()).1]);
    let stats = calib.finish().unwrap();
    let union = Tensor::cat(vec![x.clone(), x2], 0);
    let (_, direct) = inner.forward_batch(union);
    assert_matches_dense(stats.layers[0].mean.clone(), direct.mean, 1e-5);
    assert_matches_dense(stats.layers[0].var.clone(), direct.var, 1e-4);

    // The dense BatchNorm with those statistics equals the sliced fixed-statistics forward.
    let dense = inner.to_dense(&stats.layers[0]);
    assert_matches_dense(inner.forward_with(x.clone(), &stats.layers[0]), dense.forward(x), 1e-5);
}

#[test]
fn switchable_batch_norm_updates_only_the_active_width() {
    let device = seeded();
    let bn = SortedBatchNormConfig::new(8).with_switchable_widths(vec![4, 8]).init::<B>(&device);
    let x = Tensor::<B, 4>::random([4, 4, 2, 2], Distribution::Normal(3.0, 1.0), &device);
    let _ = bn.forward_batch(x);
    let moved = bn.running_mean[0].value_sync().abs().max().into_scalar();
    let untouched = bn.running_mean[1].value_sync().abs().max().into_scalar();
    assert!(moved > 0.1, "width-4 stats should move, got {moved}");
    assert_eq!(untouched, 0.0, "width-8 stats must stay at their initial values");
}

#[test]
fn batch_norm_training_forward_and_gradients_equal_burn_batch_norm() {
    let device = seeded();
    let bn = SortedBatchNormConfig::new(8).init::<B>(&device);
    // Non-trivial affine parameters, so that gamma and beta matter.
    let mut bn = bn;
    bn.gamma = burn::module::Param::from_tensor(Tensor::random([8], Distribution::Normal(1.0, 0.5), &device));
    bn.beta = burn::module::Param::from_tensor(Tensor::random([8], Distribution::Normal(0.0, 0.5), &device));
    let x = Tensor::<B, 4>::random([6, 5, 4, 3], Distribution::Normal(1.0, 2.0), &device).require_grad();
    let w = Tensor::<B, 4>::random([6, 5, 4, 3], Distribution::Normal(0.0, 1.0), &device);
    let (y, stats) = bn.forward_batch(x.clone());
    let grads = (y.clone() * w.clone()).sum().backward();

    // burn's BatchNorm over the same 5 channels, in training mode (autodiff backend).
    let mut dense = burn::nn::BatchNormConfig::new(5).with_epsilon(bn.epsilon).init::<B>(&device);
    dense.gamma = burn::module::Param::from_tensor(bn.gamma.val().slice(s![0..5]).detach());
    dense.beta = burn::module::Param::from_tensor(bn.beta.val().slice(s![0..5]).detach());
    let x2 = x.clone().detach().require_grad();
    let y2 = dense.forward(x2.clone());
    let grads2 = (y2.clone() * w).sum().backward();
    assert_matches_dense(y.inner(), y2.inner(), 1e-5);
    let (mean, var) = (stats.mean, stats.var);
    let flat = x.clone().inner().swap_dims(0, 1).reshape([5, 6 * 4 * 3]);
    let (v, m) = flat.var_mean_bias(1);
    assert_matches_dense(mean.inner(), m.reshape([5]), 1e-5);
    assert_matches_dense(var.inner(), v.reshape([5]), 1e-4);
    assert_matches_dense(x.grad(&grads).unwrap(), x2.grad(&grads2).unwrap(), 1e-4);
    let g = bn.gamma.grad(&grads).unwrap().slice(s![0..5]);
    assert_matches_dense(g, dense.gamma.grad(&grads2).unwrap(), 1e-4);
    let b = bn.beta.grad(&grads).unwrap().slice(s![0..5]);
    assert_matches_dense(b, dense.beta.grad(&grads2).unwrap(), 1e-4);
}

#[test]
fn dense_batch_norm_forward_equals_burn_batch_norm_inference() {
    let device = seeded();
    let mut dense = burn::nn::BatchNormConfig::new(5).init::<Flex>(&device);
    dense.gamma = burn::module::Param::from_tensor(Tensor::random([5], Distribution::Normal(1.0, 0.5), &device));
    dense.beta = burn::module::Param::from_tensor(Tensor::random([5], Distribution::Normal(0.0, 0.5), &device));
    dense.running_mean = burn::module::RunningState::new(Tensor::random([5], Distribution::Normal(0.5, 1.0), &device));
    dense.running_var = burn::module::RunningState::new(Tensor::random([5], Distribution::Uniform(0.5, 2.0), &device));
    let x = Tensor::<Flex, 4>::random([3, 5, 4, 2], Distribution::Normal(1.0, 2.0), &device);
    assert_matches_dense(sorted_nn::dense_batch_norm_forward(&dense, x.clone()), dense.forward(x), 1e-5);
}
