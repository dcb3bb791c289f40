use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::Distribution;
use sorted_nn::test_util::{assert_matches_dense, assert_no_grad, assert_prefix_shared, assert_zero_grad_outside};
use sorted_nn::{NestingSpace, NestingSpaceConfig, NormCalibrator, NormPass};
use sorted_zoo::{DenseClassifier, SortedClassifier, SortedCnnConfig, SortedMlpConfig};

type B = Autodiff<Flex>;

fn space(depths: &[usize], widths: &[usize]) -> NestingSpace {
    NestingSpace::new(NestingSpaceConfig {
        depths: depths.to_vec(),
        widths: Some(widths.to_vec()),
        block_widths: None,
        tie_widths: false,
    })
    .unwrap()
}

fn device() -> burn::backend::flex::FlexDevice {
    let device = Default::default();
    B::seed(&device, 3);
    device
}

#[test]
fn mlp_every_sub_model_equals_its_dense_extraction() {
    let _rng = crate::rng_guard();
    let device = device();
    let space = space(&[1, 2, 3], &[3, 5, 8]);
    let model = SortedMlpConfig::for_space(16, 4, &space).init::<Flex>(&device);
    let x = Tensor::<Flex, 4>::random([5, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    for sub in space.iter() {
        let dense = model.extract(&sub, None);
        assert_matches_dense(model.forward(x.clone(), &sub, &mut NormPass::Batch), dense.forward(x.clone()), 1e-5);
        // The analytic parameter count is the dense model's real parameter count.
        assert_eq!(model.cost(&sub).params, dense.num_params() as u64, "params of {sub}");
    }
}

#[test]
fn mlp_sub_models_share_prefixes() {
    let _rng = crate::rng_guard();
    let device = device();
    let space = space(&[1, 2], &[3, 8]);
    let model = SortedMlpConfig::for_space(16, 4, &space).init::<Flex>(&device);
    let small = model.extract(&space.parse_sub_model("3-3").unwrap(), None);
    let large = model.extract(&space.largest(), None);
    for (i, (s, l)) in small.layers.iter().zip(&large.layers).enumerate() {
        assert_prefix_shared(&format!("layers[{i}].weight"), s.weight.val(), l.weight.val());
    }
    assert_prefix_shared("head.weight", small.head.weight.val(), large.head.weight.val());
}

#[test]
fn mlp_zero_grad_outside_active_slices_and_no_grad_beyond_depth() {
    let _rng = crate::rng_guard();
    let device = device();
    let space = space(&[1, 2, 3], &[3, 5, 8]);
    let model = SortedMlpConfig::for_space(16, 4, &space).init::<B>(&device);
    let x = Tensor::<B, 4>::random([6, 1, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let sub = space.parse_sub_model("5-3").unwrap();
    let grads = model.forward(x, &sub, &mut NormPass::Batch).powi_scalar(2).sum().backward();
    assert_zero_grad_outside("blocks[0].weight", &model.blocks[0].weight, &grads, [0..16, 0..5]);
    assert_zero_grad_outside("blocks[1].weight", &model.blocks[1].weight, &grads, [0..5, 0..3]);
    assert_zero_grad_outside("blocks[1].bias", model.blocks[1].bias.as_ref().unwrap(), &grads, [0..3]);
    assert_zero_grad_outside("head.weight", &model.head.weight, &grads, [0..3, 0..4]);
    assert_no_grad("blocks[2].weight", &model.blocks[2].weight, &grads);
    assert_no_grad("blocks[2].bias", model.blocks[2].bias.as_ref().unwrap(), &grads);
}

#[test]
fn cnn_zero_grad_outside_active_channels() {
    let _rng = crate::rng_guard();
    let device = device();
    let space = space(&[1, 2, 3], &[2, 4, 6]);
    let model = SortedCnnConfig::for_space(1, [8, 8], 3, &space, vec![1, 2, 1]).init::<B>(&device);
    let x = Tensor::<B, 4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let sub = space.parse_sub_model("4-2").unwrap();
    let grads = model.forward(x, &sub, &mut NormPass::Batch).powi_scalar(2).sum().backward();
    assert_zero_grad_outside("convs[0].weight", &model.convs[0].weight, &grads, [0..4, 0..1, 0..3, 0..3]);
    assert_zero_grad_outside("convs[1].weight", &model.convs[1].weight, &grads, [0..2, 0..4, 0..3, 0..3]);
    assert_zero_grad_outside("norms[0].gamma", &model.norms[0].gamma, &grads, [0..4]);
    assert_zero_grad_outside("norms[1].beta", &model.norms[1].beta, &grads, [0..2]);
    assert_zero_grad_outside("head.weight", &model.head.weight, &grads, [0..2, 0..3]);
    assert_no_grad("convs[2].weight", &model.convs[2].weight, &grads);
    assert_no_grad("norms[2].gamma", &model.norms[2].gamma, &grads);
}

#[test]
fn cnn_every_sub_model_with_recalibrated_stats_equals_dense() {
    let _rng = crate::rng_guard();
    let device = device();
    let space = space(&[1, 2], &[2, 4]);
    let model = SortedCnnConfig::for_space(1, [8, 8], 3, &space, vec![1, 2]).init::<B>(&device).valid();
    let calib_x = Tensor::<Flex, 4>::random([16, 1, 8, 8], Distribution::Normal(0.5, 1.0), &device);
    let x = Tensor::<Flex, 4>::random([3, 1, 8, 8], Distribution::Normal(0.5, 1.0), &device);
    for sub in space.iter() {
        let mut calib = NormCalibrator::new();
        for chunk in calib_x.clone().chunk(2, 0) {
            let mut seen = Vec::new();
            let _ = model.forward(chunk, &sub, &mut NormPass::Observe(&mut seen));
            calib.add(seen);
        }
        let stats = calib.finish().unwrap();
        assert_eq!(stats.layers.len(), sub.depth());
        let sliced = model.forward(x.clone(), &sub, &mut NormPass::Calibrated(&stats));
        let dense = model.extract(&sub, Some(&stats));
        assert_matches_dense(sliced, dense.forward(x.clone()), 1e-5);
        // burn counts BatchNorm running statistics as parameters; the cost counts trainable ones.
        let running: usize = sub.widths().iter().map(|c| 2 * c).sum();
        assert_eq!(model.cost(&sub).params, (dense.num_params() - running) as u64, "params of {sub}");
    }
}

#[test]
fn cnn_switchable_stats_are_used_in_eval() {
    let _rng = crate::rng_guard();
    let device = device();
    let space = space(&[1], &[2, 4]);
    let model = SortedCnnConfig::for_space(1, [8, 8], 3, &space, vec![1]).with_switchable_bn(&space).init::<B>(&device);
    let x = Tensor::<B, 4>::random([8, 1, 8, 8], Distribution::Normal(2.0, 1.0), &device);
    let sub = space.smallest();
    // Momentum 0.1: after 100 updates the initial statistics weigh 0.9^100 ~ 3e-5.
    for _ in 0..100 {
        let _ = model.forward(x.clone(), &sub, &mut NormPass::Batch);
    }
    let inner = model.valid();
    // After many updates on the same batch, running statistics approach the batch's own.
    let eval = inner.forward(x.clone().inner(), &sub, &mut NormPass::Switchable);
    let batch = inner.forward(x.inner(), &sub, &mut NormPass::Batch);
    assert_matches_dense(eval, batch, 1e-2);
}
