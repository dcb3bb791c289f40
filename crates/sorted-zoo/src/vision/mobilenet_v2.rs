//! A sorted MobileNetV2: inverted residual blocks with nested channels and depth.

use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sorted_nn::{
    BatchStatistics, Cost, NestingSpace, NormPass, SortedLinear, SortedLinearConfig, SpecError, SubModel,
    SubModelNormStats,
};

use crate::StagedNetworkConfig;
use crate::vision::classifier::{DenseClassifier, SortedClassifier};
use crate::vision::conv_norm::{DenseConvNorm, SortedConvNorm};
use crate::vision::depth_order::DepthOrder;
use crate::vision::residual::add_prefix;
use crate::vision::scaling::proportional;
use crate::vision::staged_body::{StagedBody, check_block_widths, staged_block, stem_width};
use crate::vision::staged_network::staged_config;

/// ReLU6, MobileNetV2's activation.
fn relu6<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.clamp(0.0, 6.0)
}

/// One row `(t, c, n, s)` of MobileNetV2's table: `blocks` inverted residual blocks that expand
/// by `expansion` and output `channels`, the first with `stride`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MobileNetV2Stage {
    /// Expansion factor `t`: the hidden width is `t` times the block's input width.
    pub expansion: usize,
    /// Allocated output channels `c` of every block of the stage.
    pub channels: usize,
    /// Number of blocks `n`.
    pub blocks: usize,
    /// Stride `s` of the stage's first block (the others have stride 1).
    pub stride: usize,
}

/// Configuration of a [`SortedMobileNetV2`]: the geometry, the `(t, c, n, s)` table with
/// allocated channels, and the last 1x1 convolution.
///
/// Blocks are numbered in flat order across the stages. Which of them a sub-model of depth `d`
/// runs is set by [`DepthOrder`]: by default ([`DepthOrder::Flat`]) the first `d`, and block `b`
/// of the model is block `b` of the [`NestingSpace`]; with [`DepthOrder::PerStage`] (elastic
/// depth as in Once-for-All) the first `j` blocks of every stage, and the space lists blocks in
/// that activation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortedMobileNetV2Config {
    /// Input channels (1 for MNIST, 3 for CIFAR).
    pub in_channels: usize,
    /// Input height and width (used for FLOP counts).
    pub input_hw: [usize; 2],
    /// Number of classes.
    pub n_classes: usize,
    /// Allocated output channels of the 3x3 stem convolution. Its active width follows the first
    /// block's: `ceil(stem_channels * w0 / c0)` for active width `w0` of a block allocated at
    /// `c0`.
    pub stem_channels: usize,
    /// Stride of the stem (1 for 32x32 or 28x28 inputs, 2 for ImageNet-sized ones).
    pub stem_stride: usize,
    /// The `(t, c, n, s)` table.
    pub stages: Vec<MobileNetV2Stage>,
    /// Output channels of the last 1x1 convolution (before pooling and the head).
    pub last_channels: usize,
    /// When false (the default, as in MobileNetV2's width multiplier below 1 and in US-Nets),
    /// every sub-model runs the last convolution at all `last_channels` outputs, reading the
    /// last active block's active channels. When true its width scales with the last active
    /// block's: `ceil(last_channels * w / c)` for active width `w` of a block allocated at `c`.
    #[serde(default)]
    pub scale_last_conv: bool,
    /// Channel options per block (flat order) that get private ("switchable") BatchNorm
    /// statistics; empty for the default, recalibrated statistics. The expansion and depthwise
    /// BatchNorms get the widths that follow from the previous block's options, the stem's and
    /// the last convolution's follow as well.
    #[serde(default)]
    pub switchable_widths: Vec<Vec<usize>>,
    /// Which blocks a sub-model of depth `d` runs (default: the first `d` in flat order).
    #[serde(default)]
    pub depth_order: DepthOrder,
}

/// `v` rounded to a multiple of 8, at least 8 and not below 90% of `v` (MobileNetV2's rule).
fn make_divisible(v: f64) -> usize {
    let rounded = (((v + 4.0) / 8.0).floor() as usize * 8).max(8);
    if (rounded as f64) < 0.9 * v { rounded + 8 } else { rounded }
}

impl SortedMobileNetV2Config {
    /// MobileNetV2 for CIFAR-sized inputs (3x32x32, 10 classes; change with
    /// [`SortedMobileNetV2Config::with_input`]), channels scaled by `width_multiplier` and rounded
    /// to multiples of 8: stem 32; `(t, c, n, s)` = (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2),
    /// (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1); last convolution
    /// `1280 * max(1, width_multiplier)`. The stem and the second stage have stride 1 instead of
    /// ImageNet's 2, so 32x32 inputs end at 4x4 and 28x28 ones at 4x4 as well. 17 blocks.
    ///
    /// ```
    /// use sorted_zoo::{SortedMobileNetV2Config, StagedNetworkConfig};
    ///
    /// let config = SortedMobileNetV2Config::cifar(0.5).with_input(1, [28, 28], 10);
    /// assert_eq!((config.n_blocks(), config.stages[0].channels), (17, 8));
    /// // The first stage's 8 channels allow at most 8 distinct width fractions.
    /// assert!(config.scaled_space((1..=17).collect(), 10, true).is_err());
    /// let space = config.scaled_space((1..=17).collect(), 8, true)?;
    /// assert_eq!(space.len(), 17 * 8);
    /// # Ok::<(), sorted_nn::SpecError>(())
    /// ```
    ///
    /// # Panics
    /// If `width_multiplier` is not positive and finite.
    pub fn cifar(width_multiplier: f64) -> Self {
        assert!(
            width_multiplier.is_finite() && width_multiplier > 0.0,
            "SortedMobileNetV2Config::cifar: width multiplier {width_multiplier} must be positive"
        );
        let table =
            [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];
        Self {
            in_channels: 3,
            input_hw: [32, 32],
            n_classes: 10,
            stem_channels: make_divisible(32.0 * width_multiplier),
            stem_stride: 1,
            stages: table
                .into_iter()
                .map(|(expansion, c, blocks, stride)| MobileNetV2Stage {
                    expansion,
                    channels: make_divisible(f64::from(c) * width_multiplier),
                    blocks,
                    stride,
                })
                .collect(),
            last_channels: make_divisible(1280.0 * width_multiplier.max(1.0)),
            scale_last_conv: false,
            switchable_widths: Vec::new(),
            depth_order: DepthOrder::Flat,
        }
    }

    /// A tiny preset for tests: 1x8x8 inputs, 3 classes, stem 4, `(t, c, n, s)` = (1, 3, 1, 1),
    /// (2, 4, 2, 2), (2, 6, 1, 1), last convolution 8.
    pub fn tiny() -> Self {
        Self {
            in_channels: 1,
            input_hw: [8, 8],
            n_classes: 3,
            stem_channels: 4,
            stem_stride: 1,
            stages: vec![
                MobileNetV2Stage { expansion: 1, channels: 3, blocks: 1, stride: 1 },
                MobileNetV2Stage { expansion: 2, channels: 4, blocks: 2, stride: 2 },
                MobileNetV2Stage { expansion: 2, channels: 6, blocks: 1, stride: 1 },
            ],
            last_channels: 8,
            scale_last_conv: false,
            switchable_widths: Vec::new(),
            depth_order: DepthOrder::Flat,
        }
    }

    /// Sets [`SortedMobileNetV2Config::scale_last_conv`].
    pub fn with_scale_last_conv(mut self, scale: bool) -> Self {
        self.scale_last_conv = scale;
        self
    }

    /// Sets [`SortedMobileNetV2Config::depth_order`].
    pub fn with_depth_order(mut self, order: DepthOrder) -> Self {
        self.depth_order = order;
        self
    }

    /// Allocates the model, parameters materialised.
    ///
    /// # Panics
    /// If [`SortedMobileNetV2Config::validate`] fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedMobileNetV2<B> {
        if let Err(e) = self.validate() {
            panic!("SortedMobileNetV2Config: {e}");
        }
        let follow = |widths: &[usize], from: usize, to: usize| {
            let mut out: Vec<usize> = widths.iter().map(|&w| proportional(w, from, to)).collect();
            out.sort_unstable();
            out.dedup();
            out
        };
        let c0 = self.stages[0].channels;
        let mut in_widths = follow(&self.switchable(0), c0, self.stem_channels);
        let stem = SortedConvNorm::new(
            [self.in_channels, self.stem_channels],
            3,
            self.stem_stride,
            false,
            in_widths.clone(),
            device,
        );
        let mut blocks = Vec::with_capacity(self.n_blocks());
        let mut last_widths = Vec::new();
        let mut c_in = self.stem_channels;
        for (s, stage) in self.stages.iter().enumerate() {
            if self.depth_order == DepthOrder::PerStage && s > 0 {
                // The stage's first block may follow any active block of the previous stage.
                let previous = blocks.len() - self.stages[s - 1].blocks;
                let mut union: Vec<usize> = (previous..blocks.len()).flat_map(|b| self.switchable(b)).collect();
                union.sort_unstable();
                union.dedup();
                in_widths = union;
            }
            for i in 0..stage.blocks {
                let (t, c, widths) = (stage.expansion, stage.channels, self.switchable(blocks.len()));
                let stride = if i == 0 { stage.stride } else { 1 };
                let hidden = t * c_in;
                let hidden_widths: Vec<usize> = in_widths.iter().map(|&w| t * w).collect();
                let expand =
                    (t != 1).then(|| SortedConvNorm::new([c_in, hidden], 1, 1, false, hidden_widths.clone(), device));
                blocks.push(SortedInvertedResidual {
                    expand,
                    depthwise: SortedConvNorm::new([hidden, hidden], 3, stride, true, hidden_widths, device),
                    project: SortedConvNorm::new([hidden, c], 1, 1, false, widths.clone(), device),
                    residual: stride == 1 && c_in == c,
                });
                let last = if self.scale_last_conv { follow(&widths, c, self.last_channels) } else { Vec::new() };
                last_widths.extend(last);
                (c_in, in_widths) = (c, widths);
            }
        }
        if !self.scale_last_conv && !self.switchable_widths.is_empty() {
            last_widths.push(self.last_channels);
        }
        last_widths.sort_unstable();
        last_widths.dedup();
        let d_last_in = self.stages.iter().map(|s| s.channels).max().expect("validated non-empty");
        SortedMobileNetV2 {
            stem,
            blocks,
            last: SortedConvNorm::new([d_last_in, self.last_channels], 1, 1, false, last_widths, device),
            head: SortedLinearConfig::new(self.last_channels, self.n_classes).init(device),
            scale_last_conv: self.scale_last_conv,
            input_hw: self.input_hw,
            order: self.activation_order(),
        }
    }
}

// `with_input`, `with_switchable_bn`, `validate` and `StagedNetworkConfig`, written once for both
// staged configs in `staged_network.rs`.
staged_config!(
    SortedMobileNetV2Config,
    sizes: [in_channels, n_classes, stem_channels, stem_stride, last_channels],
    stage_sizes: [expansion, channels, blocks, stride]
);

/// An inverted residual block with nested channels: 1x1 expansion-BN-ReLU6 (absent when the
/// expansion factor is 1), 3x3 depthwise-BN-ReLU6 (with the block's stride), 1x1 projection-BN,
/// and the residual sum when the allocated block keeps its shape (stride 1, equal allocated input
/// and output channels).
///
/// The block's active width is its output channels. The hidden (expanded) width is not an axis
/// of its own: it is `t` times the active input width, the first `t * c_in` of the `t * c_in_max`
/// allocated hidden channels. A residual sum whose active input width differs from the block's
/// active width adds the input into the first `min(c_in, c_out)` channels (zero-padding a
/// narrower input, truncating a wider one), exactly what the allocated block computes when
/// inactive channels are zero.
#[derive(Module, Debug)]
pub struct SortedInvertedResidual<B: Backend> {
    /// The 1x1 expansion, `None` when the expansion factor is 1.
    pub expand: Option<SortedConvNorm<B>>,
    /// The 3x3 depthwise convolution over the hidden channels.
    pub depthwise: SortedConvNorm<B>,
    /// The 1x1 projection to the block's output channels (no activation).
    pub project: SortedConvNorm<B>,
    /// Whether the block adds its input to its output.
    pub residual: bool,
}

impl<B: Backend> SortedInvertedResidual<B> {
    /// The expansion factor `t`.
    pub fn expansion(&self) -> usize {
        self.expand.as_ref().map_or(1, |e| e.conv.c_out_max() / e.conv.c_in_max())
    }

    /// The hidden (expanded) width for active input width `c_in`: `t * c_in`.
    pub fn hidden_width(&self, c_in: usize) -> usize {
        self.expansion() * c_in
    }

    /// The number of BatchNorm layers the block runs (2, or 3 with an expansion).
    pub fn n_norm_layers(&self) -> usize {
        2 + usize::from(self.expand.is_some())
    }

    /// The block's output for active width `c_out`; the active input width is read from `x`.
    /// The BatchNorms are the `first_norm`-th and following of `norm`'s pass, in forward order
    /// (expansion, depthwise, projection).
    ///
    /// # Shapes
    /// - x: `[batch, c_in, h, w]`
    /// - output: `[batch, c_out, h / stride, w / stride]`
    ///
    /// # Panics
    /// If a width exceeds the allocation, or `norm` lacks statistics it needs.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        c_out: usize,
        norm: &mut NormPass<'_, B>,
        first_norm: usize,
    ) -> Tensor<B, 4> {
        let hidden = self.hidden_width(x.dims()[1]);
        let mut index = first_norm;
        let h = match &self.expand {
            Some(e) => {
                index += 1;
                relu6(e.forward(x.clone(), hidden, norm, index - 1))
            }
            None => x.clone(),
        };
        let h = relu6(self.depthwise.forward(h, hidden, norm, index));
        let out = self.project.forward(h, c_out, norm, index + 1);
        if self.residual { add_prefix(out, x) } else { out }
    }

    /// The analytic cost for active widths `c_in -> c_out` at input size `hw`, and the output size.
    pub fn cost(&self, c_in: usize, c_out: usize, hw: [usize; 2]) -> (Cost, [usize; 2]) {
        let hidden = self.hidden_width(c_in);
        let out_hw = self.depthwise.conv.output_size(hw);
        let expand = self.expand.as_ref().map(|e| e.cost(c_in, hidden, hw)).unwrap_or_default();
        let cost = expand + self.depthwise.cost(hidden, hidden, hw) + self.project.cost(hidden, c_out, out_hw);
        (cost, out_hw)
    }

    /// Copies the active slices into a [`DenseInvertedResidual`], with `stats` (one per
    /// BatchNorm, in forward order) as running statistics.
    ///
    /// # Panics
    /// If the widths exceed the allocation or `stats` has fewer than
    /// [`SortedInvertedResidual::n_norm_layers`] entries.
    pub fn to_dense(&self, c_in: usize, c_out: usize, stats: &[BatchStatistics<B>]) -> DenseInvertedResidual<B> {
        let hidden = self.hidden_width(c_in);
        let offset = usize::from(self.expand.is_some());
        DenseInvertedResidual {
            expand: self.expand.as_ref().map(|e| e.to_dense(c_in, hidden, &stats[0])),
            depthwise: self.depthwise.to_dense(hidden, hidden, &stats[offset]),
            project: self.project.to_dense(hidden, c_out, &stats[offset + 1]),
            residual: self.residual,
        }
    }
}

staged_block!(SortedInvertedResidual, DenseInvertedResidual, |block| block.project.conv.c_out_max());

/// A sorted MobileNetV2: a 3x3 conv-BN-ReLU6 stem, inverted residual blocks
/// ([`SortedInvertedResidual`]), a last 1x1 conv-BN-ReLU6, global average pooling and one
/// linear head shared by every sub-model.
///
/// A sub-model runs the first `depth` blocks of the activation order ([`DepthOrder`]; by default
/// flat order across the table's stages), in flat order, each at its own active output width;
/// the stem's width follows the first block's, each hidden width is `t` times the block's active
/// input, and the last convolution reads the last active block's active channels (its output
/// width: see [`SortedMobileNetV2Config::scale_last_conv`]).
/// BatchNorm statistics are chosen per call through [`NormPass`], with the layers numbered in
/// forward order: the stem, per block the expansion, depthwise and projection norms, then the
/// last convolution's.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{NormCalibrator, NormPass};
/// use sorted_zoo::{DenseClassifier, SortedClassifier, SortedMobileNetV2Config, StagedNetworkConfig};
///
/// let config = SortedMobileNetV2Config::tiny();
/// // Depths 2 and 4 blocks, 2 width options per block, chosen per block.
/// let space = config.scaled_space(vec![2, 4], 2, false)?;
/// assert_eq!(space.len(), 4 + 16);
/// let device = Default::default();
/// let model = config.init::<Flex>(&device);
/// let images = Tensor::<Flex, 4>::ones([2, 1, 8, 8], &device);
/// let sub = space.parse_sub_model("2-2")?;
/// let mut seen = Vec::new();
/// let _ = model.forward(images.clone(), &sub, &mut NormPass::Observe(&mut seen));
/// let mut calibrator = NormCalibrator::new();
/// calibrator.add(seen);
/// let stats = calibrator.finish().expect("one batch");
/// let logits = model.forward(images.clone(), &sub, &mut NormPass::Calibrated(&stats));
/// let dense = model.extract(&sub, Some(&stats));
/// logits.into_data().assert_approx_eq::<f32>(&dense.forward(images).into_data(), Default::default());
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Module, Debug)]
pub struct SortedMobileNetV2<B: Backend> {
    /// The 3x3 stem convolution and its BatchNorm.
    pub stem: SortedConvNorm<B>,
    /// The inverted residual blocks in flat order across stages.
    pub blocks: Vec<SortedInvertedResidual<B>>,
    /// The last 1x1 convolution (allocated input: the widest block).
    pub last: SortedConvNorm<B>,
    /// The shared classifier head.
    pub head: SortedLinear<B>,
    /// Whether the last convolution's width scales with the last active block's.
    pub scale_last_conv: bool,
    /// Input height and width (for FLOP counts).
    pub input_hw: [usize; 2],
    /// The activation order (entry `r`: flat index of the space's block `r`); part of the
    /// architecture, set by [`SortedMobileNetV2Config::init`], not saved in records.
    #[module(skip)]
    order: Vec<usize>,
}

impl<B: Backend> SortedMobileNetV2<B> {
    /// The stem and the blocks `sub` runs.
    fn body<'a>(&'a self, sub: &'a SubModel) -> StagedBody<'a, B, SortedInvertedResidual<B>> {
        StagedBody::new("SortedMobileNetV2", &self.stem, &self.blocks, &self.order, sub)
    }

    /// The stem's active width for a first block of active width `w0`.
    pub fn stem_width(&self, w0: usize) -> usize {
        stem_width(&self.stem, &self.blocks, w0)
    }

    /// The last convolution's active width for sub-model `sub`.
    pub fn last_width(&self, sub: &SubModel) -> usize {
        let all = self.last.conv.c_out_max();
        if self.scale_last_conv {
            let (block, width) = self.body(sub).last();
            proportional(width, block.project.conv.c_out_max(), all)
        } else {
            all
        }
    }

    /// The number of BatchNorm layers sub-model `sub` runs (the length of its statistics).
    ///
    /// # Panics
    /// If `sub` is deeper than the model.
    pub fn n_norm_layers(&self, sub: &SubModel) -> usize {
        self.body(sub).n_norm_layers() + 1
    }
}

impl<B: Backend> SortedClassifier<B> for SortedMobileNetV2<B> {
    type Dense = DenseMobileNetV2<B>;

    fn forward(&self, images: Tensor<B, 4>, sub: &SubModel, norm: &mut NormPass<'_, B>) -> Tensor<B, 2> {
        let (x, index) = self.body(sub).forward(images, norm, relu6);
        let x = relu6(self.last.forward(x, self.last_width(sub), norm, index));
        let pooled: Tensor<B, 2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        self.head.forward(pooled, self.head.d_output_max())
    }

    fn cost(&self, sub: &SubModel) -> Cost {
        let (cost, c_out, hw) = self.body(sub).cost(self.input_hw);
        let last_width = self.last_width(sub);
        cost + self.last.cost(c_out, last_width, hw) + self.head.cost(last_width, self.head.d_output_max())
    }

    fn has_batch_norm(&self) -> bool {
        true
    }

    fn check_space(&self, space: &NestingSpace) -> Result<(), SpecError> {
        check_block_widths(space, &self.blocks, &self.order)
    }

    fn extract(&self, sub: &SubModel, stats: Option<&SubModelNormStats<B>>) -> DenseMobileNetV2<B> {
        let body = self.body(sub);
        let stats = body.norm_stats(stats, body.n_norm_layers() + 1);
        let dense = body.to_dense(stats);
        let last_width = self.last_width(sub);
        DenseMobileNetV2 {
            stem: dense.stem,
            blocks: dense.blocks,
            last: self.last.to_dense(dense.c_out, last_width, &stats[dense.next_norm]),
            head: self.head.to_dense(last_width, self.head.d_output_max()),
        }
    }
}

/// A [`SortedInvertedResidual`] at fixed widths, as ordinary burn-nn layers. The residual sum
/// adds the input into the output's first channels (zero-padding or truncating it when the
/// widths differ), exactly as in the sorted block.
#[derive(Module, Debug)]
pub struct DenseInvertedResidual<B: Backend> {
    /// The 1x1 expansion, if any.
    pub expand: Option<DenseConvNorm<B>>,
    /// The 3x3 depthwise convolution.
    pub depthwise: DenseConvNorm<B>,
    /// The 1x1 projection.
    pub project: DenseConvNorm<B>,
    /// Whether the block adds its input to its output.
    pub residual: bool,
}

impl<B: Backend> DenseInvertedResidual<B> {
    /// The block's output.
    ///
    /// # Shapes
    /// - x: `[batch, c_in, h, w]`
    /// - output: `[batch, c_out, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = match &self.expand {
            Some(e) => relu6(e.forward(x.clone())),
            None => x.clone(),
        };
        let out = self.project.forward(relu6(self.depthwise.forward(h)));
        if self.residual { add_prefix(out, x) } else { out }
    }
}

/// A sub-model of a [`SortedMobileNetV2`] as ordinary burn-nn layers (BatchNorm running
/// statistics set to the recalibrated ones). Evaluate it on a non-autodiff backend.
#[derive(Module, Debug)]
pub struct DenseMobileNetV2<B: Backend> {
    /// The stem convolution and its BatchNorm.
    pub stem: DenseConvNorm<B>,
    /// The inverted residual blocks.
    pub blocks: Vec<DenseInvertedResidual<B>>,
    /// The last 1x1 convolution and its BatchNorm.
    pub last: DenseConvNorm<B>,
    /// The classifier head.
    pub head: Linear<B>,
}

impl<B: Backend> DenseClassifier<B> for DenseMobileNetV2<B> {
    fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = relu6(self.stem.forward(images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = relu6(self.last.forward(x));
        let pooled: Tensor<B, 2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        self.head.forward(pooled)
    }
}
