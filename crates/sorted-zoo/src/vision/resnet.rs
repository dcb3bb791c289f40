//! A sorted CIFAR-style ResNet: basic residual blocks with nested channels and depth.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use sorted_nn::{
    BatchStatistics, Cost, NestingSpace, NormPass, SortedBatchNorm, SortedConv2d, SortedLinear, SortedLinearConfig,
    SpecError, SubModel, SubModelNormStats,
};

use crate::StagedNetworkConfig;
use crate::vision::classifier::{DenseClassifier, SortedClassifier};
use crate::vision::conv_norm::{DenseConvNorm, SortedConvNorm};
use crate::vision::depth_order::{DepthOrder, activation_order};
use crate::vision::residual::add_prefix;
use crate::vision::scaling::proportional;
use crate::vision::staged_body::{StagedBody, check_block_widths, staged_block, stem_width};
use crate::vision::staged_network::staged_config;

/// One stage of a [`SortedResNetConfig`]: `blocks` basic blocks of the same allocated width.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetStage {
    /// Allocated output channels of every block of the stage.
    pub channels: usize,
    /// Number of basic blocks.
    pub blocks: usize,
    /// Stride of the stage's first block (the others have stride 1).
    pub stride: usize,
}

/// Configuration of a [`SortedResNet`]: the fixed geometry and the allocated channels per stage.
///
/// Blocks are numbered in flat order across the stages. Which of them a sub-model of depth `d`
/// runs is set by [`DepthOrder`]: by default ([`DepthOrder::Flat`]) the first `d`, whichever
/// stages they belong to, and block `b` of the model is block `b` of the [`NestingSpace`].
///
/// ```toml
/// in_channels = 1
/// input_hw = [28, 28]
/// n_classes = 10
/// stem_channels = 16
/// stages = [
///     { channels = 16, blocks = 3, stride = 1 },
///     { channels = 32, blocks = 3, stride = 2 },
///     { channels = 64, blocks = 3, stride = 2 },
/// ]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortedResNetConfig {
    /// Input channels (1 for MNIST, 3 for CIFAR).
    pub in_channels: usize,
    /// Input height and width (used for FLOP counts).
    pub input_hw: [usize; 2],
    /// Number of classes.
    pub n_classes: usize,
    /// Allocated output channels of the 3x3 stem convolution. Its active width follows the
    /// first block's: `ceil(stem_channels * w0 / c0)` for active width `w0` of a block
    /// allocated at `c0` (so `w0` itself when `stem_channels == c0`, as in the presets).
    pub stem_channels: usize,
    /// The stages, in order.
    pub stages: Vec<ResNetStage>,
    /// Channel options per block (flat order) that get private ("switchable") BatchNorm
    /// statistics; empty for the default, recalibrated statistics.
    #[serde(default)]
    pub switchable_widths: Vec<Vec<usize>>,
    /// Which blocks a sub-model of depth `d` runs (default: the first `d` in flat order).
    #[serde(default)]
    pub depth_order: DepthOrder,
}

impl SortedResNetConfig {
    /// The allocation that fits `space`: stages of `blocks_per_stage` blocks with strides
    /// `1, 2, 2, ...`, each stage allocated at the largest width option of its blocks, and a
    /// stem as wide as the first stage.
    ///
    /// ```
    /// use sorted_nn::{NestingSpace, NestingSpaceConfig};
    /// use sorted_zoo::{SortedResNetConfig, StagedNetworkConfig};
    ///
    /// // Two stages of two blocks; each block chooses its own width.
    /// let space = NestingSpace::new(NestingSpaceConfig {
    ///     depths: vec![2, 3, 4],
    ///     widths: None,
    ///     block_widths: Some(vec![vec![4, 8], vec![6, 8], vec![8, 16], vec![12, 16]]),
    ///     tie_widths: false,
    /// })?;
    /// let config = SortedResNetConfig::for_space(1, [28, 28], 10, &space, &[2, 2])?;
    /// assert_eq!(config.allocated_widths(), [8, 8, 16, 16]);
    /// assert_eq!((config.stem_channels, config.stages[1].stride), (8, 2));
    /// # Ok::<(), sorted_nn::SpecError>(())
    /// ```
    ///
    /// # Errors
    /// [`SpecError::Empty`] or [`SpecError::Zero`] for an empty list or a stage without blocks,
    /// [`SpecError::BlockCount`] when the stages do not hold exactly `space.n_blocks()` blocks.
    pub fn for_space(
        in_channels: usize,
        input_hw: [usize; 2],
        n_classes: usize,
        space: &NestingSpace,
        blocks_per_stage: &[usize],
    ) -> Result<Self, SpecError> {
        Self::for_space_ordered(in_channels, input_hw, n_classes, space, blocks_per_stage, DepthOrder::Flat)
    }

    /// As [`SortedResNetConfig::for_space`], with the space's blocks in `order`'s activation
    /// order (block `r` of `space` is the `r`-th block to activate, see [`activation_order`]).
    ///
    /// ```
    /// use sorted_nn::{NestingSpace, NestingSpaceConfig};
    /// use sorted_zoo::{DepthOrder, SortedResNetConfig, StagedNetworkConfig};
    ///
    /// // Two stages of two blocks, blocks per stage: the space lists stage 1, stage 2, stage 1,
    /// // stage 2. Depth 2 runs one block of each stage.
    /// let space = NestingSpace::new(NestingSpaceConfig {
    ///     depths: vec![2, 3, 4],
    ///     widths: None,
    ///     block_widths: Some(vec![vec![4, 8], vec![8, 16], vec![4, 8], vec![8, 16]]),
    ///     tie_widths: true,
    /// })?;
    /// let config = SortedResNetConfig::for_space_ordered(1, [28, 28], 10, &space, &[2, 2], DepthOrder::PerStage)?;
    /// assert_eq!(config.stages[0].channels, 8);
    /// assert_eq!(config.stages[1].channels, 16);
    /// assert_eq!(config.allocated_widths(), [8, 16, 8, 16]);
    /// # Ok::<(), sorted_nn::SpecError>(())
    /// ```
    ///
    /// # Errors
    /// As [`SortedResNetConfig::for_space`].
    pub fn for_space_ordered(
        in_channels: usize,
        input_hw: [usize; 2],
        n_classes: usize,
        space: &NestingSpace,
        blocks_per_stage: &[usize],
        depth_order: DepthOrder,
    ) -> Result<Self, SpecError> {
        if blocks_per_stage.is_empty() {
            return Err(SpecError::Empty { key: "blocks_per_stage".into() });
        }
        if let Some(i) = blocks_per_stage.iter().position(|&n| n == 0) {
            return Err(SpecError::Zero { key: format!("blocks_per_stage[{i}]") });
        }
        let total: usize = blocks_per_stage.iter().sum();
        if total != space.n_blocks() {
            return Err(SpecError::BlockCount {
                key: "blocks_per_stage (sum)".into(),
                expected: space.n_blocks(),
                got: total,
            });
        }
        let in_space_order = space.allocated_widths();
        let mut allocated = vec![0; total];
        for (r, b) in activation_order(blocks_per_stage, depth_order).into_iter().enumerate() {
            allocated[b] = in_space_order[r];
        }
        let mut first = 0;
        let stages: Vec<ResNetStage> = blocks_per_stage
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let channels = *allocated[first..first + n].iter().max().expect("n > 0");
                first += n;
                ResNetStage { channels, blocks: n, stride: if i == 0 { 1 } else { 2 } }
            })
            .collect();
        Ok(Self {
            in_channels,
            input_hw,
            n_classes,
            stem_channels: stages[0].channels,
            stages,
            switchable_widths: Vec::new(),
            depth_order,
        })
    }

    fn cifar(blocks: usize, channels: [usize; 3]) -> Self {
        Self {
            in_channels: 3,
            input_hw: [32, 32],
            n_classes: 10,
            stem_channels: channels[0],
            stages: channels
                .iter()
                .zip([1, 2, 2])
                .map(|(&channels, stride)| ResNetStage { channels, blocks, stride })
                .collect(),
            switchable_widths: Vec::new(),
            depth_order: DepthOrder::Flat,
        }
    }

    /// ResNet-20 (He et al. 2016, CIFAR): stem 16, three stages of 3 blocks at 16/32/64
    /// channels, for 3x32x32 inputs and 10 classes (change with
    /// [`SortedResNetConfig::with_input`]).
    pub fn resnet20() -> Self {
        Self::cifar(3, [16, 32, 64])
    }

    /// ResNet-32 (CIFAR): as [`SortedResNetConfig::resnet20`] with 5 blocks per stage (15
    /// blocks).
    pub fn resnet32() -> Self {
        Self::cifar(5, [16, 32, 64])
    }

    /// ResNet-56 (CIFAR): as [`SortedResNetConfig::resnet20`] with 9 blocks per stage.
    pub fn resnet56() -> Self {
        Self::cifar(9, [16, 32, 64])
    }

    /// The wide variant: ResNet-18 in its CIFAR form (3x3 stem of 64 channels, no max-pool), four
    /// stages of 2 basic blocks at 64/128/256/512 channels with strides 1/2/2/2. About 11M
    /// parameters; 4x (first stage) to 8x (last stage) the width of ResNet-20.
    pub fn wide() -> Self {
        Self {
            in_channels: 3,
            input_hw: [32, 32],
            n_classes: 10,
            stem_channels: 64,
            stages: [(64, 1), (128, 2), (256, 2), (512, 2)]
                .into_iter()
                .map(|(channels, stride)| ResNetStage { channels, blocks: 2, stride })
                .collect(),
            switchable_widths: Vec::new(),
            depth_order: DepthOrder::Flat,
        }
    }

    /// A tiny preset for tests: 1x8x8 inputs, 3 classes, stem 4, stages of 2 blocks at 4
    /// channels (stride 1), 1 block at 6 (stride 2) and 1 block at 8 (stride 2).
    pub fn tiny() -> Self {
        Self {
            in_channels: 1,
            input_hw: [8, 8],
            n_classes: 3,
            stem_channels: 4,
            stages: vec![
                ResNetStage { channels: 4, blocks: 2, stride: 1 },
                ResNetStage { channels: 6, blocks: 1, stride: 2 },
                ResNetStage { channels: 8, blocks: 1, stride: 2 },
            ],
            switchable_widths: Vec::new(),
            depth_order: DepthOrder::Flat,
        }
    }

    /// Allocates the model, parameters materialised.
    ///
    /// # Panics
    /// If [`SortedResNetConfig::validate`] fails.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedResNet<B> {
        if let Err(e) = self.validate() {
            panic!("SortedResNetConfig: {e}");
        }
        let conv_norm = |c_in: usize, c: usize, k: usize, stride: usize, widths: Vec<usize>| {
            SortedConvNorm::new([c_in, c], k, stride, false, widths, device)
        };
        let c0 = self.stages[0].channels;
        let mut stem_widths: Vec<usize> =
            self.switchable(0).iter().map(|&w| proportional(w, c0, self.stem_channels)).collect();
        stem_widths.dedup();
        let stem = conv_norm(self.in_channels, self.stem_channels, 3, 1, stem_widths);
        let mut blocks = Vec::with_capacity(self.n_blocks());
        let mut c_in = self.stem_channels;
        for stage in &self.stages {
            for i in 0..stage.blocks {
                let (c, widths) = (stage.channels, self.switchable(blocks.len()));
                let stride = if i == 0 { stage.stride } else { 1 };
                let first = conv_norm(c_in, c, 3, stride, widths.clone());
                let second = conv_norm(c, c, 3, 1, widths.clone());
                let shortcut = (stride != 1 || c_in != c).then(|| conv_norm(c_in, c, 1, stride, widths));
                blocks.push(SortedBasicBlock {
                    conv1: first.conv,
                    norm1: first.norm,
                    conv2: second.conv,
                    norm2: second.norm,
                    shortcut,
                });
                c_in = c;
            }
        }
        let d_head = self.stages.iter().map(|s| s.channels).max().expect("validated non-empty");
        SortedResNet {
            stem,
            blocks,
            head: SortedLinearConfig::new(d_head, self.n_classes).init(device),
            input_hw: self.input_hw,
            order: self.activation_order(),
        }
    }
}

// `with_input`, `with_switchable_bn`, `validate` and `StagedNetworkConfig`, written once for both
// staged configs in `staged_network.rs`.
staged_config!(
    SortedResNetConfig,
    sizes: [in_channels, n_classes, stem_channels],
    stage_sizes: [channels, blocks, stride]
);

/// A basic residual block with nested channels: conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut,
/// then ReLU. Both convolutions produce the block's active width.
///
/// The shortcut is a projection (a 1x1 [`SortedConvNorm`] with the block's stride, sliced to the
/// active widths) when the allocated shapes differ (a stride or a change of allocated channels),
/// the identity otherwise. An identity shortcut whose active input width
/// differs from the block's active width adds the input into the first `min(c_in, c_out)`
/// channels: narrower inputs are zero-padded, wider ones truncated. That is exactly what the
/// allocated block computes when inactive channels are zero, and the dense extraction does the
/// same.
#[derive(Module, Debug)]
pub struct SortedBasicBlock<B: Backend> {
    /// First 3x3 convolution (carries the block's stride).
    pub conv1: SortedConv2d<B>,
    /// BatchNorm after `conv1`.
    pub norm1: SortedBatchNorm<B>,
    /// Second 3x3 convolution.
    pub conv2: SortedConv2d<B>,
    /// BatchNorm after `conv2`.
    pub norm2: SortedBatchNorm<B>,
    /// The projection shortcut, or `None` for the identity.
    pub shortcut: Option<SortedConvNorm<B>>,
}

impl<B: Backend> SortedBasicBlock<B> {
    /// The number of BatchNorm layers the block runs (2, or 3 with a projection).
    pub fn n_norm_layers(&self) -> usize {
        2 + usize::from(self.shortcut.is_some())
    }

    /// The block's output for active width `c_out`; the active input width is read from `x`.
    /// The BatchNorms are the `first_norm`-th, next and (projection) next-but-one of `norm`'s
    /// pass, in that order.
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
        let h = relu(norm.apply(&self.norm1, first_norm, self.conv1.forward(x.clone(), c_out)));
        let main = norm.apply(&self.norm2, first_norm + 1, self.conv2.forward(h, c_out));
        let shortcut = match &self.shortcut {
            Some(p) => p.forward(x, c_out, norm, first_norm + 2),
            None => x,
        };
        relu(add_prefix(main, shortcut))
    }

    /// The analytic cost for active widths `c_in -> c_out` at input size `hw`, and the output size.
    pub fn cost(&self, c_in: usize, c_out: usize, hw: [usize; 2]) -> (Cost, [usize; 2]) {
        let out_hw = self.conv1.output_size(hw);
        let mut cost = self.conv1.cost(c_in, c_out, hw)
            + Cost::norm(c_out)
            + self.conv2.cost(c_out, c_out, out_hw)
            + Cost::norm(c_out);
        if let Some(p) = &self.shortcut {
            cost += p.cost(c_in, c_out, hw);
        }
        (cost, out_hw)
    }

    /// Copies the active slices into a [`DenseBasicBlock`], with `stats` (one per BatchNorm, in
    /// forward order) as running statistics.
    ///
    /// # Panics
    /// If the widths exceed the allocation or `stats` has fewer than
    /// [`SortedBasicBlock::n_norm_layers`] entries.
    pub fn to_dense(&self, c_in: usize, c_out: usize, stats: &[BatchStatistics<B>]) -> DenseBasicBlock<B> {
        DenseBasicBlock {
            conv1: self.conv1.to_dense(c_in, c_out),
            norm1: self.norm1.to_dense(&stats[0]),
            conv2: self.conv2.to_dense(c_out, c_out),
            norm2: self.norm2.to_dense(&stats[1]),
            shortcut: self.shortcut.as_ref().map(|p| p.to_dense(c_in, c_out, &stats[2])),
        }
    }
}

staged_block!(SortedBasicBlock, DenseBasicBlock, |block| block.conv1.c_out_max());

/// A sorted CIFAR-style ResNet: a 3x3 conv-BN-ReLU stem, basic residual blocks
/// ([`SortedBasicBlock`]) in stages, global average pooling and one linear head shared by every
/// sub-model, reading the last active block's active channels.
///
/// A sub-model runs the first `depth` blocks of the activation order ([`DepthOrder`]; by default
/// flat order across stages), each at its own active width, in flat order; the stem's width
/// follows the first block's (see [`SortedResNetConfig::stem_channels`]). BatchNorm statistics are chosen per call through
/// [`NormPass`], with the layers numbered in forward order: the stem, then per block `norm1`,
/// `norm2` and the projection's norm.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{NormCalibrator, NormPass};
/// use sorted_zoo::{DenseClassifier, SortedClassifier, SortedResNetConfig, StagedNetworkConfig};
///
/// let config = SortedResNetConfig::tiny();
/// // Depths 1..=4 blocks, 2 width options per block (half and full), tied across blocks.
/// let space = config.scaled_space(vec![1, 2, 3, 4], 2, true)?;
/// let device = Default::default();
/// let model = config.init::<Flex>(&device);
/// let images = Tensor::<Flex, 4>::ones([2, 1, 8, 8], &device);
/// let sub = space.smallest();
/// // Recalibrate BatchNorm statistics for this sub-model, then evaluate and extract it.
/// let mut seen = Vec::new();
/// let _ = model.forward(images.clone(), &sub, &mut NormPass::Observe(&mut seen));
/// let mut calibrator = NormCalibrator::new();
/// calibrator.add(seen);
/// let stats = calibrator.finish().expect("one batch");
/// let logits = model.forward(images.clone(), &sub, &mut NormPass::Calibrated(&stats));
/// assert_eq!(logits.dims(), [2, 3]);
/// let dense = model.extract(&sub, Some(&stats));
/// logits.into_data().assert_approx_eq::<f32>(&dense.forward(images).into_data(), Default::default());
/// assert!(model.cost(&sub).flops < model.cost(&space.largest()).flops);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Module, Debug)]
pub struct SortedResNet<B: Backend> {
    /// The 3x3 stem convolution and its BatchNorm.
    pub stem: SortedConvNorm<B>,
    /// The residual blocks in flat order across stages.
    pub blocks: Vec<SortedBasicBlock<B>>,
    /// The shared classifier head (allocated input: the widest stage).
    pub head: SortedLinear<B>,
    /// Input height and width (for FLOP counts).
    pub input_hw: [usize; 2],
    /// The activation order (entry `r`: flat index of the space's block `r`); part of the
    /// architecture, set by [`SortedResNetConfig::init`], not saved in records.
    #[module(skip)]
    order: Vec<usize>,
}

impl<B: Backend> SortedResNet<B> {
    /// The stem and the blocks `sub` runs.
    fn body<'a>(&'a self, sub: &'a SubModel) -> StagedBody<'a, B, SortedBasicBlock<B>> {
        StagedBody::new("SortedResNet", &self.stem, &self.blocks, &self.order, sub)
    }

    /// The stem's active width for a first block of active width `w0`.
    pub fn stem_width(&self, w0: usize) -> usize {
        stem_width(&self.stem, &self.blocks, w0)
    }

    /// The number of BatchNorm layers sub-model `sub` runs (the length of its statistics).
    ///
    /// # Panics
    /// If `sub` is deeper than the model.
    pub fn n_norm_layers(&self, sub: &SubModel) -> usize {
        self.body(sub).n_norm_layers()
    }
}

impl<B: Backend> SortedClassifier<B> for SortedResNet<B> {
    type Dense = DenseResNet<B>;

    fn forward(&self, images: Tensor<B, 4>, sub: &SubModel, norm: &mut NormPass<'_, B>) -> Tensor<B, 2> {
        let (x, _) = self.body(sub).forward(images, norm, relu);
        let pooled: Tensor<B, 2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        self.head.forward(pooled, self.head.d_output_max())
    }

    fn cost(&self, sub: &SubModel) -> Cost {
        let (cost, c_out, _) = self.body(sub).cost(self.input_hw);
        cost + self.head.cost(c_out, self.head.d_output_max())
    }

    fn has_batch_norm(&self) -> bool {
        true
    }

    fn check_space(&self, space: &NestingSpace) -> Result<(), SpecError> {
        check_block_widths(space, &self.blocks, &self.order)
    }

    fn extract(&self, sub: &SubModel, stats: Option<&SubModelNormStats<B>>) -> DenseResNet<B> {
        let body = self.body(sub);
        let dense = body.to_dense(body.norm_stats(stats, body.n_norm_layers()));
        DenseResNet {
            stem: dense.stem,
            blocks: dense.blocks,
            head: self.head.to_dense(dense.c_out, self.head.d_output_max()),
        }
    }
}

/// A [`SortedBasicBlock`] at fixed widths, as ordinary burn-nn layers. Without a projection, an
/// input narrower than the output is added into the output's first channels and a wider one is
/// truncated, exactly as in the sorted block.
#[derive(Module, Debug)]
pub struct DenseBasicBlock<B: Backend> {
    /// First 3x3 convolution.
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub norm1: BatchNorm<B>,
    /// Second 3x3 convolution.
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`.
    pub norm2: BatchNorm<B>,
    /// The projection shortcut, or `None` for the identity.
    pub shortcut: Option<DenseConvNorm<B>>,
}

impl<B: Backend> DenseBasicBlock<B> {
    /// The block's output.
    ///
    /// # Shapes
    /// - x: `[batch, c_in, h, w]`
    /// - output: `[batch, c_out, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = relu(sorted_nn::dense_batch_norm_forward(&self.norm1, self.conv1.forward(x.clone())));
        let main = sorted_nn::dense_batch_norm_forward(&self.norm2, self.conv2.forward(h));
        let shortcut = match &self.shortcut {
            Some(p) => p.forward(x),
            None => x,
        };
        relu(add_prefix(main, shortcut))
    }
}

/// A sub-model of a [`SortedResNet`] as ordinary burn-nn layers (BatchNorm running statistics set
/// to the recalibrated ones). Evaluate it on a non-autodiff backend, where BatchNorm uses them.
#[derive(Module, Debug)]
pub struct DenseResNet<B: Backend> {
    /// The stem convolution and its BatchNorm.
    pub stem: DenseConvNorm<B>,
    /// The residual blocks.
    pub blocks: Vec<DenseBasicBlock<B>>,
    /// The classifier head.
    pub head: Linear<B>,
}

impl<B: Backend> DenseClassifier<B> for DenseResNet<B> {
    fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = relu(self.stem.forward(images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let pooled: Tensor<B, 2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        self.head.forward(pooled)
    }
}
