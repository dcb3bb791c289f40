//! Nesting invariants of the sorted MobileNetV2.

use std::collections::BTreeSet;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use sorted_nn::test_util::{assert_matches_dense, assert_no_grad, assert_zero_grad_outside};
use sorted_nn::{NestingSpace, NormPass, SortedBatchNorm, SortedConv2d, SubModel};
use sorted_zoo::StagedNetworkConfig;
use sorted_zoo::{DepthOrder, SortedClassifier, SortedMobileNetV2, SortedMobileNetV2Config};

use crate::checks::{
    NamedNorms, assert_every_sub_model_matches_dense, assert_statistics_change_only_for, images, mask, mixed_space,
};

type A = Autodiff<Flex>;

/// The tiny preset's space. Block 0 (t = 1, 3 channels) follows the stem (4 channels), block 1
/// (t = 2, stride 2) changes the allocated width, block 2 (t = 2, 4 -> 4, stride 1) has the
/// residual sum with different active widths (2 -> 3 pads, 4 -> 3 truncates), block 3 widens.
fn space() -> NestingSpace {
    mixed_space(&[&[2, 3], &[2, 4], &[3, 4], &[4, 6]])
}

fn config(scale_last_conv: bool) -> SortedMobileNetV2Config {
    SortedMobileNetV2Config::tiny().with_scale_last_conv(scale_last_conv)
}

fn model<B: Backend>(scale_last_conv: bool, device: &B::Device) -> SortedMobileNetV2<B> {
    B::seed(device, 11);
    config(scale_last_conv).init(device)
}

/// The allocated output channels of the tiny preset's blocks.
const ALLOCATED: [usize; 4] = [3, 4, 4, 6];
/// The tiny preset's expansion factors.
const EXPANSION: [usize; 4] = [1, 2, 2, 2];

/// The active blocks of `sub` in flat order, `(flat index, width)`, for the flat depth order.
fn flat_blocks(sub: &SubModel) -> Vec<(usize, usize)> {
    sub.widths().iter().copied().enumerate().collect()
}

/// The same for [`DepthOrder::PerStage`] on the tiny preset (activation order 0, 1, 3, 2).
fn per_stage_blocks(sub: &SubModel) -> Vec<(usize, usize)> {
    let mut active: Vec<(usize, usize)> = [0, 1, 3, 2].into_iter().zip(sub.widths().iter().copied()).collect();
    active.sort_unstable();
    active
}

fn stem_width(active: &[(usize, usize)]) -> usize {
    (4 * active[0].1).div_ceil(3)
}

fn last_width(active: &[(usize, usize)], scale: bool) -> usize {
    let &(b, w) = active.last().unwrap();
    if scale { (8 * w).div_ceil(ALLOCATED[b]) } else { 8 }
}

/// The BatchNorm widths of the active blocks `active` (flat order), in forward order.
fn norm_widths_of(active: &[(usize, usize)], scale: bool) -> Vec<usize> {
    let mut widths = vec![stem_width(active)];
    let mut c_in = stem_width(active);
    for &(b, w) in active {
        let hidden = EXPANSION[b] * c_in;
        if EXPANSION[b] != 1 {
            widths.push(hidden);
        }
        widths.extend([hidden, w]);
        c_in = w;
    }
    widths.push(last_width(active, scale));
    widths
}

/// The BatchNorm widths a sub-model runs, in forward order.
fn norm_widths(sub: &SubModel, scale: bool) -> Vec<usize> {
    norm_widths_of(&flat_blocks(sub), scale)
}

#[test]
fn mobilenet_every_sub_model_of_a_mixed_space_equals_dense() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let space = space();
    for scale in [false, true] {
        let model = model::<A>(scale, &device).valid();
        model.check_space(&space).unwrap();
        assert_every_sub_model_matches_dense(&model, &space, [1, 8, 8], |sub| norm_widths(sub, scale));
    }
}

/// The sub-model computed the long way: every layer at its full allocated width, with the
/// channels beyond the active widths set to zero after each layer.
fn masked_reference(model: &SortedMobileNetV2<Flex>, x: Tensor<Flex, 4>, sub: &SubModel) -> Tensor<Flex, 2> {
    masked_reference_of_blocks(model, x, &flat_blocks(sub))
}

/// [`masked_reference`] over the blocks `active` (`(flat index, width)`, flat order).
fn masked_reference_of_blocks(
    model: &SortedMobileNetV2<Flex>,
    x: Tensor<Flex, 4>,
    active: &[(usize, usize)],
) -> Tensor<Flex, 2> {
    let bn = |n: &SortedBatchNorm<Flex>, y: Tensor<Flex, 4>| n.forward_batch(y).0;
    let full = |c: &SortedConv2d<Flex>, y: Tensor<Flex, 4>| c.forward(y, c.c_out_max());
    let relu6 = |y: Tensor<Flex, 4>| y.clamp(0.0, 6.0);
    let mut h = mask(relu6(bn(&model.stem.norm, full(&model.stem.conv, x))), stem_width(active));
    let mut c_in = stem_width(active);
    for &(b, w) in active {
        let block = &model.blocks[b];
        let hidden = EXPANSION[b] * c_in;
        let e = match &block.expand {
            Some(e) => mask(relu6(bn(&e.norm, full(&e.conv, h.clone()))), hidden),
            None => h.clone(),
        };
        let d = mask(relu6(bn(&block.depthwise.norm, full(&block.depthwise.conv, e))), hidden);
        let out = mask(bn(&block.project.norm, full(&block.project.conv, d)), w);
        // Full width: channels beyond the input's active width are already zero.
        h = if block.residual { mask(out + h, w) } else { out };
        c_in = w;
    }
    let h = mask(relu6(bn(&model.last.norm, full(&model.last.conv, h))), last_width(active, model.scale_last_conv));
    let pooled: Tensor<Flex, 2> = h.mean_dim(3).mean_dim(2).flatten(1, 3);
    model.head.forward(pooled, model.head.d_output_max())
}

#[test]
fn mobilenet_residuals_and_expansion_at_mixed_widths_match_a_masked_full_width_model() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let x = images::<Flex>(6, [1, 8, 8], &device);
    for scale in [false, true] {
        let model = model::<Flex>(scale, &device);
        assert_eq!(model.blocks.iter().map(|b| b.residual).collect::<Vec<_>>(), [false, false, true, false]);
        for sub in space().iter() {
            let sliced = model.forward(x.clone(), &sub, &mut NormPass::Batch);
            assert_matches_dense(sliced, masked_reference(&model, x.clone(), &sub), 1e-4);
        }
    }
}

#[test]
fn mobilenet_zero_grad_outside_active_slices_and_no_grad_beyond_depth() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let model = model::<A>(false, &device);
    let space = space();
    // Stem 3 of 4 (follows block 0 at 2 of 3); block 1 at 2 of 4 with hidden 2 * 2 of 2 * 3;
    // block 2 at 3 of 4 with hidden 2 * 2 of 2 * 4 and the residual padding 2 -> 3.
    let sub = space.parse_sub_model("2-2-3").unwrap();
    let x = images::<A>(4, [1, 8, 8], &device);
    let grads = model.forward(x, &sub, &mut NormPass::Batch).powi_scalar(2).sum().backward();
    let [b0, b1, b2, b3] = [0, 1, 2, 3].map(|b| &model.blocks[b]);
    assert_zero_grad_outside("stem.conv", &model.stem.conv.weight, &grads, [0..3, 0..1, 0..3, 0..3]);
    assert_zero_grad_outside("b0.depthwise", &b0.depthwise.conv.weight, &grads, [0..3, 0..1, 0..3, 0..3]);
    assert_zero_grad_outside("b0.depthwise.gamma", &b0.depthwise.norm.gamma, &grads, [0..3]);
    assert_zero_grad_outside("b0.project", &b0.project.conv.weight, &grads, [0..2, 0..3, 0..1, 0..1]);
    let e1 = b1.expand.as_ref().unwrap();
    assert_zero_grad_outside("b1.expand", &e1.conv.weight, &grads, [0..4, 0..2, 0..1, 0..1]);
    assert_zero_grad_outside("b1.expand.beta", &e1.norm.beta, &grads, [0..4]);
    assert_zero_grad_outside("b1.depthwise", &b1.depthwise.conv.weight, &grads, [0..4, 0..1, 0..3, 0..3]);
    assert_zero_grad_outside("b1.project", &b1.project.conv.weight, &grads, [0..2, 0..4, 0..1, 0..1]);
    let e2 = b2.expand.as_ref().unwrap();
    assert_zero_grad_outside("b2.expand", &e2.conv.weight, &grads, [0..4, 0..2, 0..1, 0..1]);
    assert_zero_grad_outside("b2.project", &b2.project.conv.weight, &grads, [0..3, 0..4, 0..1, 0..1]);
    assert_zero_grad_outside("b2.project.gamma", &b2.project.norm.gamma, &grads, [0..3]);
    assert_zero_grad_outside("last.conv", &model.last.conv.weight, &grads, [0..8, 0..3, 0..1, 0..1]);
    assert_zero_grad_outside("head.weight", &model.head.weight, &grads, [0..8, 0..3]);
    assert_no_grad("b3.expand", &b3.expand.as_ref().unwrap().conv.weight, &grads);
    assert_no_grad("b3.depthwise", &b3.depthwise.conv.weight, &grads);
    assert_no_grad("b3.project.gamma", &b3.project.norm.gamma, &grads);
}

impl<B: Backend> NamedNorms<B> for SortedMobileNetV2<B> {
    fn named_norms(&self) -> Vec<(String, &SortedBatchNorm<B>)> {
        let mut norms = vec![("stem".to_string(), &self.stem.norm)];
        for (b, block) in self.blocks.iter().enumerate() {
            if let Some(e) = &block.expand {
                norms.push((format!("b{b}.expand"), &e.norm));
            }
            norms.push((format!("b{b}.depthwise"), &block.depthwise.norm));
            norms.push((format!("b{b}.project"), &block.project.norm));
        }
        norms.push(("last".to_string(), &self.last.norm));
        norms
    }
}

#[test]
fn mobilenet_statistics_change_only_for_the_evaluated_sub_model() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let space = space();
    A::seed(&device, 11);
    let model = config(true).with_switchable_bn(&space).init::<A>(&device);
    let x = images::<A>(8, [1, 8, 8], &device);
    // Stem 4 (block 0 at 3 of 3), block 1 hidden 2 * 3, block 2 hidden 2 * 2; last conv
    // ceil(8 * 3 / 4) = 6.
    let sub = space.parse_sub_model("3-2-3").unwrap();
    let used: BTreeSet<(String, usize)> = [
        ("stem", 4),
        ("b0.depthwise", 4),
        ("b0.project", 3),
        ("b1.expand", 6),
        ("b1.depthwise", 6),
        ("b1.project", 2),
        ("b2.expand", 4),
        ("b2.depthwise", 4),
        ("b2.project", 3),
        ("last", 6),
    ]
    .into_iter()
    .map(|(n, w)| (n.to_string(), w))
    .collect();

    assert_statistics_change_only_for(&model, &sub, x, &used);
    // The switchable statistics are what evaluation then uses.
    let _ = model.valid().forward(images::<Flex>(2, [1, 8, 8], &device), &sub, &mut NormPass::Switchable);
}

#[test]
fn mobilenet_presets_costs_and_config_files() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let config = SortedMobileNetV2Config::cifar(1.0);
    assert_eq!(config.n_blocks(), 17);
    assert_eq!(config.allocated_widths()[..4], [16, 24, 24, 32]);
    let half = SortedMobileNetV2Config::cifar(0.5);
    assert_eq!((half.stem_channels, half.stages[0].channels, half.stages[6].channels), (16, 8, 160));
    assert_eq!(half.last_channels, 1280);
    // MobileNetV2 (1.0) for CIFAR: 2.2 M parameters with the 10-class head.
    let model = config.init::<Flex>(&device);
    let space = config.scaled_space(vec![17], 1, true).unwrap();
    let full = model.cost(&space.largest());
    assert_eq!(full.params, model.num_params() as u64);
    assert!((2_200_000..2_300_000).contains(&full.params), "{}", full.params);
    // Scaling the last convolution saves FLOPs only for narrow sub-models.
    let tiny = SortedMobileNetV2Config::tiny();
    let (fixed, scaled) = (tiny.init::<Flex>(&device), tiny.clone().with_scale_last_conv(true).init::<Flex>(&device));
    let space = mixed_space(&[&[2, 3]]);
    assert!(scaled.cost(&space.smallest()).flops < fixed.cost(&space.smallest()).flops);
    assert_eq!(scaled.cost(&space.largest()), fixed.cost(&space.largest()));

    let text = toml::to_string(&SortedMobileNetV2Config::tiny()).unwrap();
    assert_eq!(toml::from_str::<SortedMobileNetV2Config>(&text).unwrap(), SortedMobileNetV2Config::tiny());
    let typo = format!("{text}\nlast_channel = 3\n");
    assert!(toml::from_str::<SortedMobileNetV2Config>(&typo).unwrap_err().to_string().contains("last_channel"));
    let mut bad = SortedMobileNetV2Config::tiny();
    bad.stages[2].expansion = 0;
    assert!(bad.validate().unwrap_err().to_string().contains("stages[2].expansion"));
}

/// The tiny preset with depth per stage: activation order 0, 1, 3, 2 (the first block of each of
/// the three stages, then stage 2's residual block). The space lists blocks in that order.
fn per_stage(scale_last_conv: bool) -> (SortedMobileNetV2Config, NestingSpace) {
    let config = config(scale_last_conv).with_depth_order(DepthOrder::PerStage);
    (config, mixed_space(&[&[2, 3], &[2, 4], &[4, 6], &[3, 4]]))
}

#[test]
fn mobilenet_per_stage_order_and_config_file() {
    let _rng = crate::rng_guard();
    let (config, space) = per_stage(false);
    assert_eq!(config.activation_order(), [0, 1, 3, 2]);
    assert_eq!(config.allocated_widths(), [3, 4, 6, 4]);
    assert_eq!(space.allocated_widths(), [3, 4, 6, 4]);
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("depth_order = \"per_stage\""), "{text}");
    assert_eq!(toml::from_str::<SortedMobileNetV2Config>(&text).unwrap(), config);
    // The full MobileNetV2 table: one block of each of the 7 stages first.
    let cifar = SortedMobileNetV2Config::cifar(0.5).with_depth_order(DepthOrder::PerStage);
    assert_eq!(cifar.activation_order(), [0, 1, 3, 6, 10, 13, 16, 2, 4, 7, 11, 14, 5, 8, 12, 15, 9]);
    assert_eq!(cifar.allocated_widths()[..8], [8, 16, 16, 32, 48, 80, 160, 16]);
}

#[test]
fn mobilenet_per_stage_depth_skips_blocks_and_matches_dense() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    for scale in [false, true] {
        let (config, space) = per_stage(scale);
        Flex::seed(&device, 7);
        let model = config.init::<Flex>(&device);
        model.check_space(&space).unwrap();
        assert_every_sub_model_matches_dense(&model, &space, [1, 8, 8], |sub| {
            norm_widths_of(&per_stage_blocks(sub), scale)
        });
        // Depth 3 runs blocks 0, 1 and 3 (block 3 reads block 1's output: the residual block 2 is
        // skipped); depth 4 adds block 2 back between them.
        let x = images::<Flex>(5, [1, 8, 8], &device);
        for text in ["2-2-4", "3-4-6", "2-4-6-3", "3-2-4-4"] {
            let sub = space.parse_sub_model(text).unwrap();
            let sliced = model.forward(x.clone(), &sub, &mut NormPass::Batch);
            let reference = masked_reference_of_blocks(&model, x.clone(), &per_stage_blocks(&sub));
            assert_matches_dense(sliced, reference, 1e-4);
        }
        // Block 2 costs nothing until depth 4.
        let three = model.cost(&space.parse_sub_model("3-4-6").unwrap());
        let four = model.cost(&space.parse_sub_model("3-4-6-4").unwrap());
        assert_eq!(four.flops, three.flops + model.blocks[2].cost(4, 4, [4, 4]).0.flops);
    }
}

#[test]
fn mobilenet_per_stage_gradients_skip_inactive_blocks() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let (config, space) = per_stage(false);
    A::seed(&device, 7);
    let model = config.init::<A>(&device);
    let sub = space.parse_sub_model("2-2-4").unwrap();
    let x = images::<A>(4, [1, 8, 8], &device);
    let grads = model.forward(x, &sub, &mut NormPass::Batch).powi_scalar(2).sum().backward();
    let b2 = &model.blocks[2];
    assert_no_grad("b2.expand", &b2.expand.as_ref().unwrap().conv.weight, &grads);
    assert_no_grad("b2.project.gamma", &b2.project.norm.gamma, &grads);
    // Block 3 reads block 1's 2 active channels (hidden 2 * 2 of 2 * 4).
    let e3 = model.blocks[3].expand.as_ref().unwrap();
    assert_zero_grad_outside("b3.expand", &e3.conv.weight, &grads, [0..4, 0..2, 0..1, 0..1]);
    assert_zero_grad_outside("b3.project", &model.blocks[3].project.conv.weight, &grads, [0..4, 0..4, 0..1, 0..1]);
    assert_zero_grad_outside("last.conv", &model.last.conv.weight, &grads, [0..8, 0..4, 0..1, 0..1]);
}

#[test]
fn mobilenet_per_stage_switchable_statistics_follow_the_activation_order() {
    let _rng = crate::rng_guard();
    let device = Default::default();
    let (config, space) = per_stage(false);
    let config = config.with_switchable_bn(&space);
    // Flat block 2 is the space's block 3, flat block 3 its block 2.
    assert_eq!(config.switchable_widths, [vec![2, 3], vec![2, 4], vec![3, 4], vec![4, 6]]);
    // Block 3's expansion follows whichever of blocks 1 and 2 ran last: 2 * {2, 3, 4}.
    let model = config.init::<A>(&device);
    let x = images::<A>(8, [1, 8, 8], &device);
    for sub in space.iter() {
        let _ = model.forward(x.clone(), &sub, &mut NormPass::Batch);
        let _ = model.valid().forward(images::<Flex>(2, [1, 8, 8], &device), &sub, &mut NormPass::Switchable);
    }
}
