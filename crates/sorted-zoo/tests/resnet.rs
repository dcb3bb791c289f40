//! Nesting invariants of the sorted ResNet.

use std::collections::BTreeSet;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::activation::relu;
use sorted_nn::test_util::{assert_matches_dense, assert_no_grad, assert_zero_grad_outside};
use sorted_nn::{NestingSpace, NormPass, SortedBatchNorm, SortedConv2d, SpecError, SubModel};
use sorted_zoo::StagedNetworkConfig;
use sorted_zoo::{DepthOrder, ResNetStage, SortedClassifier, SortedResNet, SortedResNetConfig, activation_order};

use crate::checks::{
    NamedNorms, assert_every_sub_model_matches_dense, assert_statistics_change_only_for, images, mask, mixed_space,
};

type A = Autodiff<Flex>;

/// The tiny preset's space: stage 1 has blocks 0 and 1 (identity shortcuts, 4 channels
/// allocated) with different options, so consecutive active widths differ (2 -> 3 pads the
/// shortcut, 4 -> 3 truncates it); blocks 2 and 3 start stride-2 stages (projections).
fn space() -> NestingSpace {
    mixed_space(&[&[2, 4], &[3, 4], &[3, 6], &[5, 8]])
}

fn model<B: Backend>(device: &B::Device) -> SortedResNet<B> {
    B::seed(device, 7);
    SortedResNetConfig::tiny().init(device)
}

/// The BatchNorm widths a sub-model of the tiny ResNet runs, in forward order.
fn norm_widths(sub: &SubModel) -> Vec<usize> {
    // Stem allocated 4 = block 0's allocation: the stem follows block 0's width.
    let mut widths = vec![sub.widths()[0]];
    for (b, &w) in sub.widths().iter().enumerate() {
        // Blocks 2 and 3 have projections (stride 2, new width).
        widths.extend(std::iter::repeat_n(w, if b >= 2 { 3 } else { 2 }));
    }
    widths
}

#[test]
fn resnet_every_sub_model_of_a_mixed_space_equals_dense() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let model = model::<A>(&device).valid();
    let space = space();
    model.check_space(&space).unwrap();
    assert_eq!(space.len(), 2 + 4 + 8 + 16);
    assert_every_sub_model_matches_dense(&model, &space, [1, 8, 8], norm_widths);
}

/// The sub-model computed the long way: every layer at its full allocated width, with the
/// channels beyond the active widths set to zero after each layer.
fn masked_reference(model: &SortedResNet<Flex>, x: Tensor<Flex, 4>, sub: &SubModel) -> Tensor<Flex, 2> {
    let active: Vec<(usize, usize)> = sub.widths().iter().copied().enumerate().collect();
    masked_reference_of_blocks(model, x, &active)
}

/// As [`masked_reference`] for explicit `(flat block index, width)` pairs in forward order.
fn masked_reference_of_blocks(
    model: &SortedResNet<Flex>,
    x: Tensor<Flex, 4>,
    active: &[(usize, usize)],
) -> Tensor<Flex, 2> {
    let bn = |n: &SortedBatchNorm<Flex>, y: Tensor<Flex, 4>| n.forward_batch(y).0;
    let full = |c: &SortedConv2d<Flex>, y: Tensor<Flex, 4>| c.forward(y, c.c_out_max());
    let mut h = mask(relu(bn(&model.stem.norm, full(&model.stem.conv, x))), active[0].1);
    for &(b, w) in active {
        let block = &model.blocks[b];
        let a = mask(relu(bn(&block.norm1, full(&block.conv1, h.clone()))), w);
        let main = mask(bn(&block.norm2, full(&block.conv2, a)), w);
        let shortcut = match &block.shortcut {
            Some(p) => mask(bn(&p.norm, full(&p.conv, h)), w),
            // Full width: channels beyond the input's active width are already zero.
            None => h,
        };
        h = mask(relu(main + shortcut), w);
    }
    let pooled: Tensor<Flex, 2> = h.mean_dim(3).mean_dim(2).flatten(1, 3);
    model.head.forward(pooled, model.head.d_output_max())
}

#[test]
fn resnet_identity_and_projection_shortcuts_at_mixed_widths_match_a_masked_full_width_model() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let model = model::<Flex>(&device);
    let x = images::<Flex>(6, [1, 8, 8], &device);
    for sub in space().iter() {
        let sliced = model.forward(x.clone(), &sub, &mut NormPass::Batch);
        assert_matches_dense(sliced, masked_reference(&model, x.clone(), &sub), 1e-4);
    }
}

#[test]
fn resnet_zero_grad_outside_active_slices_and_no_grad_beyond_depth() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let model = model::<A>(&device);
    let space = space();
    // Block 0 at 2 of 4, block 1 at 3 (identity shortcut pads 2 -> 3), block 2 at 3 of 6
    // (projection, stride 2); block 3 inactive.
    let sub = space.parse_sub_model("2-3-3").unwrap();
    let x = images::<A>(4, [1, 8, 8], &device);
    let grads = model.forward(x, &sub, &mut NormPass::Batch).powi_scalar(2).sum().backward();
    let [b0, b1, b2, b3] = [0, 1, 2, 3].map(|b| &model.blocks[b]);
    assert_zero_grad_outside("stem.conv", &model.stem.conv.weight, &grads, [0..2, 0..1, 0..3, 0..3]);
    assert_zero_grad_outside("stem.norm.gamma", &model.stem.norm.gamma, &grads, [0..2]);
    assert_zero_grad_outside("b0.conv1", &b0.conv1.weight, &grads, [0..2, 0..2, 0..3, 0..3]);
    assert_zero_grad_outside("b0.conv2", &b0.conv2.weight, &grads, [0..2, 0..2, 0..3, 0..3]);
    assert_zero_grad_outside("b0.norm2.beta", &b0.norm2.beta, &grads, [0..2]);
    assert_zero_grad_outside("b1.conv1", &b1.conv1.weight, &grads, [0..3, 0..2, 0..3, 0..3]);
    assert_zero_grad_outside("b1.conv2", &b1.conv2.weight, &grads, [0..3, 0..3, 0..3, 0..3]);
    assert_zero_grad_outside("b1.norm1.gamma", &b1.norm1.gamma, &grads, [0..3]);
    let p2 = b2.shortcut.as_ref().unwrap();
    assert_zero_grad_outside("b2.conv1", &b2.conv1.weight, &grads, [0..3, 0..3, 0..3, 0..3]);
    assert_zero_grad_outside("b2.shortcut.conv", &p2.conv.weight, &grads, [0..3, 0..3, 0..1, 0..1]);
    assert_zero_grad_outside("b2.shortcut.norm.gamma", &p2.norm.gamma, &grads, [0..3]);
    assert_zero_grad_outside("head.weight", &model.head.weight, &grads, [0..3, 0..3]);
    assert_no_grad("b3.conv1", &b3.conv1.weight, &grads);
    assert_no_grad("b3.norm2.gamma", &b3.norm2.gamma, &grads);
    assert_no_grad("b3.shortcut.conv", &b3.shortcut.as_ref().unwrap().conv.weight, &grads);
}

impl<B: Backend> NamedNorms<B> for SortedResNet<B> {
    fn named_norms(&self) -> Vec<(String, &SortedBatchNorm<B>)> {
        let mut norms = vec![("stem".to_string(), &self.stem.norm)];
        for (b, block) in self.blocks.iter().enumerate() {
            norms.push((format!("b{b}.norm1"), &block.norm1));
            norms.push((format!("b{b}.norm2"), &block.norm2));
            if let Some(p) = &block.shortcut {
                norms.push((format!("b{b}.shortcut"), &p.norm));
            }
        }
        norms
    }
}

#[test]
fn resnet_statistics_change_only_for_the_evaluated_sub_model() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let space = space();
    A::seed(&device, 7);
    let model = SortedResNetConfig::tiny().with_switchable_bn(&space).init::<A>(&device);
    let x = images::<A>(8, [1, 8, 8], &device);
    let sub = space.parse_sub_model("2-4-6").unwrap();
    let used: BTreeSet<(String, usize)> = [("stem", 2), ("b0.norm1", 2), ("b0.norm2", 2), ("b1.norm1", 4)]
        .into_iter()
        .chain([("b1.norm2", 4), ("b2.norm1", 6), ("b2.norm2", 6), ("b2.shortcut", 6)])
        .map(|(n, w)| (n.to_string(), w))
        .collect();

    assert_statistics_change_only_for(&model, &sub, x, &used);
}

#[test]
fn resnet_cost_matches_a_hand_count_for_resnet20() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let config = SortedResNetConfig::resnet20();
    let model = config.init::<Flex>(&device);
    let space = config.scaled_space(vec![9], 1, true).unwrap();
    let full = model.cost(&space.largest());
    let conv = |c_in: u64, c_out: u64, k: u64, hw: u64| 2 * c_in * k * k * c_out * hw * hw;
    let stem = conv(3, 16, 3, 32);
    let stage1 = 6 * conv(16, 16, 3, 32);
    let stage2 = conv(16, 32, 3, 16) + 5 * conv(32, 32, 3, 16) + conv(16, 32, 1, 16);
    let stage3 = conv(32, 64, 3, 8) + 5 * conv(64, 64, 3, 8) + conv(32, 64, 1, 8);
    let head = 2 * 64 * 10 + 10;
    // 81.6 MFLOPs = 40.8 M multiply-adds, ResNet-20's published count.
    assert_eq!(full.flops, stem + stage1 + stage2 + stage3 + head);
    assert_eq!(full.flops, 81_626_378);
    // 0.27 M parameters (BatchNorm affine parameters included).
    assert_eq!(full.params, model.num_params() as u64);
    assert!((270_000..275_000).contains(&full.params), "{}", full.params);
}

#[test]
fn resnet_for_space_and_check_space() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let space = space();
    let config = SortedResNetConfig::for_space(1, [8, 8], 3, &space, &[2, 1, 1]).unwrap();
    let stages: Vec<_> = config.stages.iter().map(|s| (s.channels, s.blocks, s.stride)).collect();
    assert_eq!(stages, [(4, 2, 1), (6, 1, 2), (8, 1, 2)]);
    assert_eq!(config.stem_channels, 4);
    let err = SortedResNetConfig::for_space(1, [8, 8], 3, &space, &[2, 1]).unwrap_err();
    assert!(matches!(err, SpecError::BlockCount { expected: 4, got: 3, .. }), "{err}");

    let model = config.init::<Flex>(&device);
    model.check_space(&space).unwrap();
    let wide = mixed_space(&[&[2, 4], &[3, 5]]);
    let err = model.check_space(&wide).unwrap_err().to_string();
    assert!(err.contains("block 1 width") && err.contains("allocates 4") && err.contains("needs 5"), "{err}");
    let deep = mixed_space(&[&[2], &[2], &[2], &[2], &[2]]);
    assert!(model.check_space(&deep).unwrap_err().to_string().contains("depth"));
}

#[test]
fn resnet_presets_and_config_files() {
    let _rng = crate::rng_guard();
    assert_eq!(SortedResNetConfig::resnet20().n_blocks(), 9);
    assert_eq!(SortedResNetConfig::resnet56().n_blocks(), 27);
    assert_eq!(SortedResNetConfig::wide().allocated_widths(), [64, 64, 128, 128, 256, 256, 512, 512]);
    // ResNet-18 for CIFAR-10 has 11,173,962 parameters.
    let wide = SortedResNetConfig::wide().init::<Flex>(&Default::default());
    assert_eq!(
        wide.cost(&SortedResNetConfig::wide().scaled_space(vec![8], 1, true).unwrap().largest()).params,
        11_173_962
    );
    let text = r#"
        in_channels = 1
        input_hw = [28, 28]
        n_classes = 10
        stem_channels = 16
        stages = [
            { channels = 16, blocks = 3, stride = 1 },
            { channels = 32, blocks = 3, stride = 2 },
            { channels = 64, blocks = 3, stride = 2 },
        ]
    "#;
    let config: SortedResNetConfig = toml::from_str(text).unwrap();
    assert_eq!(config, SortedResNetConfig::resnet20().with_input(1, [28, 28], 10));
    assert_eq!(toml::from_str::<SortedResNetConfig>(&toml::to_string(&config).unwrap()).unwrap(), config);
    let typo = text.replace("stride = 2 }", "strides = 2 }");
    assert!(toml::from_str::<SortedResNetConfig>(&typo).unwrap_err().to_string().contains("strides"));
    let mut bad = config.clone();
    bad.stages[1] = ResNetStage { channels: 32, blocks: 0, stride: 2 };
    assert!(bad.validate().unwrap_err().to_string().contains("stages[1].blocks"));
}

/// The cost bounds of the proposed headline space (issue 3): at least 160 sub-models on 28x28
/// Fashion-MNIST, the smallest at most 10% of the full model's FLOPs. The numbers are the ones
/// quoted in the README's table.
#[test]
fn resnet_headline_spaces_meet_the_cost_bounds() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let fmnist = |config: SortedResNetConfig| config.with_input(1, [28, 28], 10);
    let resnet32 = fmnist(SortedResNetConfig::resnet32());
    let mut resnet32_s2 = resnet32.clone();
    resnet32_s2.stages[0].stride = 2;
    let cases = [
        // (config, depths, tied widths, sub-models, full FLOPs, smallest FLOPs)
        (fmnist(SortedResNetConfig::resnet20()), 9, 10, 90, 62_043_914, 141_170),
        (fmnist(SortedResNetConfig::resnet20()), 9, 16, 144, 62_043_914, 42_366),
        (resnet32.clone(), 15, 11, 165, 105_395_978, 141_170),
        (resnet32_s2, 15, 11, 165, 29_261_578, 58_066),
    ];
    for (config, n_depths, n_widths, n_subs, full_flops, small_flops) in cases {
        let space = config.scaled_space((1..=n_depths).collect(), n_widths, true).unwrap();
        let model = config.init::<Flex>(&device);
        model.check_space(&space).unwrap();
        let (full, small) = (model.cost(&space.largest()), model.cost(&space.smallest()));
        assert_eq!((space.len(), full.flops, small.flops), (n_subs, full_flops, small_flops));
        assert!(small.flops * 10 <= full.flops);
        // Even at full width, one block is under 13% of the full model.
        let one_block = model.cost(&space.sub_model(&[16]).unwrap());
        assert!(one_block.flops * 100 <= 13 * full.flops);
    }
}

/// The tiny preset with blocks per stage: activation order 0, 2, 3, 1 (the first block of each
/// of the three stages, then stage 1's second block). The space lists blocks in that order.
fn per_stage() -> (SortedResNetConfig, NestingSpace) {
    let mut config = SortedResNetConfig::tiny();
    config.depth_order = DepthOrder::PerStage;
    (config, mixed_space(&[&[2, 4], &[3, 6], &[5, 8], &[3, 4]]))
}

#[test]
fn resnet_activation_orders() {
    let _rng = crate::rng_guard();
    assert_eq!(activation_order(&[5, 5, 5], DepthOrder::Flat), (0..15).collect::<Vec<_>>());
    assert_eq!(activation_order(&[5, 5, 5], DepthOrder::PerStage), [0, 5, 10, 1, 6, 11, 2, 7, 12, 3, 8, 13, 4, 9, 14]);
    assert_eq!(activation_order(&[1, 3, 2], DepthOrder::PerStage), [0, 1, 4, 2, 5, 3]);
    let (config, space) = per_stage();
    assert_eq!(config.activation_order(), [0, 2, 3, 1]);
    assert_eq!(config.allocated_widths(), [4, 6, 8, 4]);
    assert_eq!(space.allocated_widths(), [4, 6, 8, 4]);
    // for_space_ordered reads the space in activation order back into stages.
    let built = SortedResNetConfig::for_space_ordered(1, [8, 8], 3, &space, &[2, 1, 1], DepthOrder::PerStage).unwrap();
    let stages: Vec<_> = built.stages.iter().map(|s| (s.channels, s.blocks)).collect();
    assert_eq!(stages, [(4, 2), (6, 1), (8, 1)]);
    assert_eq!(built.depth_order, DepthOrder::PerStage);
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("depth_order = \"per_stage\""), "{text}");
    assert_eq!(toml::from_str::<SortedResNetConfig>(&text).unwrap(), config);
}

#[test]
fn resnet_per_stage_depth_runs_one_block_per_stage_first_and_matches_dense() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let (config, space) = per_stage();
    Flex::seed(&device, 7);
    let model = config.init::<Flex>(&device);
    model.check_space(&space).unwrap();
    // Forward order of the active blocks: flat block indices 0 (2 norms), 1 (2), 2 (3), 3 (3).
    let norm_widths = |sub: &SubModel| {
        let w = sub.widths();
        let mut widths = vec![w[0]];
        let at = |r: usize, n: usize| w.get(r).map(|&c| vec![c; n]).unwrap_or_default();
        for (r, n) in [(0, 2), (3, 2), (1, 3), (2, 3)] {
            widths.extend(at(r, n));
        }
        widths
    };
    assert_every_sub_model_matches_dense(&model, &space, [1, 8, 8], norm_widths);

    // Depth 3 runs blocks 0, 2 and 3 (one per stage) and skips block 1; depth 4 adds it back
    // between blocks 0 and 2. Both equal the masked full-width model over those blocks.
    let x = images::<Flex>(5, [1, 8, 8], &device);
    for (text, active) in [("2-3-5", vec![(0, 2), (2, 3), (3, 5)]), ("4-6-8-3", vec![(0, 4), (1, 3), (2, 6), (3, 8)])] {
        let sub = space.parse_sub_model(text).unwrap();
        let sliced = model.forward(x.clone(), &sub, &mut NormPass::Batch);
        assert_matches_dense(sliced, masked_reference_of_blocks(&model, x.clone(), &active), 1e-4);
    }
    // Block 1 costs nothing until depth 4.
    let three = model.cost(&space.parse_sub_model("4-6-8").unwrap());
    let four = model.cost(&space.parse_sub_model("4-6-8-4").unwrap());
    let block1 = model.blocks[1].cost(4, 4, [8, 8]).0;
    assert_eq!(four.flops, three.flops + block1.flops);
}

#[test]
fn resnet_per_stage_gradients_skip_inactive_blocks() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let (config, space) = per_stage();
    A::seed(&device, 7);
    let model = config.init::<A>(&device);
    let sub = space.parse_sub_model("2-3-5").unwrap();
    let x = images::<A>(4, [1, 8, 8], &device);
    let grads = model.forward(x, &sub, &mut NormPass::Batch).powi_scalar(2).sum().backward();
    assert_no_grad("b1.conv1", &model.blocks[1].conv1.weight, &grads);
    assert_no_grad("b1.norm2.gamma", &model.blocks[1].norm2.gamma, &grads);
    assert_zero_grad_outside("b0.conv1", &model.blocks[0].conv1.weight, &grads, [0..2, 0..2, 0..3, 0..3]);
    let p2 = model.blocks[2].shortcut.as_ref().unwrap();
    // Block 2 reads block 0's 2 channels directly (block 1 is skipped).
    assert_zero_grad_outside("b2.shortcut.conv", &p2.conv.weight, &grads, [0..3, 0..2, 0..1, 0..1]);
    assert_zero_grad_outside("b3.conv2", &model.blocks[3].conv2.weight, &grads, [0..5, 0..5, 0..3, 0..3]);
    // The head weight is `[d_in, classes]`.
    assert_zero_grad_outside("head.weight", &model.head.weight, &grads, [0..5, 0..3]);
}

#[test]
fn resnet_per_stage_switchable_statistics_follow_the_activation_order() {
    let _rng = crate::rng_guard();
    let (config, space) = per_stage();
    let config = config.with_switchable_bn(&space);
    // Flat block 1 is the space's block 3.
    assert_eq!(config.switchable_widths, [vec![2, 4], vec![3, 4], vec![3, 6], vec![5, 8]]);
}
