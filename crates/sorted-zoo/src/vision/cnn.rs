//! A small sorted CNN: conv-BatchNorm-ReLU blocks with nested channels and depth.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use sorted_nn::{
    Cost, NestingSpace, NormPass, SortedBatchNorm, SortedBatchNormConfig, SortedConv2d, SortedConv2dConfig,
    SortedLinear, SortedLinearConfig, SpecError, SubModel, SubModelNormStats,
};

use crate::vision::classifier::{DenseClassifier, SortedClassifier, check_widths};

/// Configuration of a [`SortedCnn`]: allocated channels and the fixed geometry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortedCnnConfig {
    /// Input channels (1 for MNIST).
    pub in_channels: usize,
    /// Input height and width (used for FLOP counts).
    pub input_hw: [usize; 2],
    /// Number of classes.
    pub n_classes: usize,
    /// Allocated output channels of each block.
    pub channels: Vec<usize>,
    /// Stride of each block (same length as `channels`).
    pub strides: Vec<usize>,
    /// Square kernel size (padding keeps `same` size at stride 1).
    pub kernel_size: usize,
    /// Channel options per block that get private ("switchable") BatchNorm statistics; empty
    /// for the default, recalibrated statistics.
    #[serde(default)]
    pub switchable_widths: Vec<Vec<usize>>,
}

impl SortedCnnConfig {
    /// The allocation that fits `space` (each block's largest channel option), with `strides`.
    pub fn for_space(
        in_channels: usize,
        input_hw: [usize; 2],
        n_classes: usize,
        space: &NestingSpace,
        strides: Vec<usize>,
    ) -> Self {
        Self {
            in_channels,
            input_hw,
            n_classes,
            channels: space.allocated_widths(),
            strides,
            kernel_size: 3,
            switchable_widths: Vec::new(),
        }
    }

    /// Gives every BatchNorm private statistics for each channel option of `space`.
    pub fn with_switchable_bn(mut self, space: &NestingSpace) -> Self {
        self.switchable_widths = (0..space.n_blocks()).map(|b| space.block_widths(b).to_vec()).collect();
        self
    }

    /// A tiny preset for tests: 1x8x8 inputs, 3 classes, blocks of 4 and 6 channels.
    pub fn tiny() -> Self {
        Self {
            in_channels: 1,
            input_hw: [8, 8],
            n_classes: 3,
            channels: vec![4, 6],
            strides: vec![1, 2],
            kernel_size: 3,
            switchable_widths: Vec::new(),
        }
    }

    /// Allocates the model.
    ///
    /// # Panics
    /// If `channels` is empty or `strides` has another length.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedCnn<B> {
        assert!(!self.channels.is_empty(), "SortedCnnConfig: `channels` is empty");
        assert_eq!(self.channels.len(), self.strides.len(), "SortedCnnConfig: `strides` needs one entry per block");
        let k = self.kernel_size;
        let mut c_in = self.in_channels;
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        for (b, (&c, &s)) in self.channels.iter().zip(&self.strides).enumerate() {
            convs.push(
                SortedConv2dConfig::new([c_in, c], [k, k])
                    .with_stride([s, s])
                    .with_padding([k / 2, k / 2])
                    .with_bias(false)
                    .init(device),
            );
            let switchable = self.switchable_widths.get(b).cloned().unwrap_or_default();
            norms.push(SortedBatchNormConfig::new(c).with_switchable_widths(switchable).init(device));
            c_in = c;
        }
        let d_head = *self.channels.iter().max().expect("non-empty");
        SortedCnn {
            convs,
            norms,
            head: SortedLinearConfig::new(d_head, self.n_classes).init(device),
            input_hw: self.input_hw,
        }
    }
}

/// A sorted CNN: `depth` blocks of conv (nested filters) + BatchNorm + ReLU, global average
/// pooling, and one shared linear head reading the last active block's active channels.
///
/// BatchNorm statistics are chosen per call through [`NormPass`]: batch statistics in
/// training, recalibrated per-sub-model statistics (or switchable ones) in evaluation.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{NestingSpace, NestingSpaceConfig, NormPass};
/// use sorted_zoo::{SortedClassifier, SortedCnnConfig};
///
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1, 2],
///     widths: Some(vec![2, 4]),
///     block_widths: None,
///     tie_widths: false,
/// })?;
/// let device = Default::default();
/// let model = SortedCnnConfig::for_space(1, [8, 8], 3, &space, vec![1, 2]).init::<Flex>(&device);
/// let logits = model.forward(Tensor::ones([2, 1, 8, 8], &device), &space.smallest(), &mut NormPass::Batch);
/// assert_eq!(logits.dims(), [2, 3]);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Module, Debug)]
pub struct SortedCnn<B: Backend> {
    /// Convolutions, allocated at full channels.
    pub convs: Vec<SortedConv2d<B>>,
    /// BatchNorms after each convolution.
    pub norms: Vec<SortedBatchNorm<B>>,
    /// The shared classifier head.
    pub head: SortedLinear<B>,
    /// Input height and width (for FLOP counts).
    pub input_hw: [usize; 2],
}

impl<B: Backend> SortedClassifier<B> for SortedCnn<B> {
    type Dense = DenseCnn<B>;

    fn forward(&self, images: Tensor<B, 4>, sub: &SubModel, norm: &mut NormPass<'_, B>) -> Tensor<B, 2> {
        assert!(sub.depth() <= self.convs.len(), "SortedCnn: depth {} > allocated {}", sub.depth(), self.convs.len());
        let mut x = images;
        for (b, &c) in sub.widths().iter().enumerate() {
            x = relu(norm.apply(&self.norms[b], b, self.convs[b].forward(x, c)));
        }
        let pooled: Tensor<B, 2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        self.head.forward(pooled, self.head.d_output_max())
    }

    fn cost(&self, sub: &SubModel) -> Cost {
        let mut hw = self.input_hw;
        let mut c_in = self.convs[0].c_in_max();
        let mut cost = Cost::default();
        for (b, &c) in sub.widths().iter().enumerate() {
            cost += self.convs[b].cost(c_in, c, hw) + sorted_nn::Cost::norm(c);
            hw = self.convs[b].output_size(hw);
            c_in = c;
        }
        cost + self.head.cost(c_in, self.head.d_output_max())
    }

    fn has_batch_norm(&self) -> bool {
        true
    }

    fn check_space(&self, space: &NestingSpace) -> Result<(), SpecError> {
        let allocated: Vec<usize> = self.convs.iter().map(SortedConv2d::c_out_max).collect();
        check_widths(space, &allocated)
    }

    fn extract(&self, sub: &SubModel, stats: Option<&SubModelNormStats<B>>) -> DenseCnn<B> {
        let stats = stats.expect("SortedCnn::extract needs BatchNorm statistics recalibrated for the sub-model");
        assert_eq!(stats.layers.len(), sub.depth(), "SortedCnn::extract: one statistics entry per active block");
        let mut c_in = self.convs[0].c_in_max();
        let mut convs = Vec::new();
        let mut norms = Vec::new();
        for (b, &c) in sub.widths().iter().enumerate() {
            convs.push(self.convs[b].to_dense(c_in, c));
            norms.push(self.norms[b].to_dense(&stats.layers[b]));
            c_in = c;
        }
        DenseCnn { convs, norms, head: self.head.to_dense(c_in, self.head.d_output_max()) }
    }
}

/// A sub-model of a [`SortedCnn`] as ordinary burn-nn layers (BatchNorm running statistics set
/// to the recalibrated ones). Evaluate it on a non-autodiff backend, where BatchNorm uses them.
#[derive(Module, Debug)]
pub struct DenseCnn<B: Backend> {
    /// Convolutions.
    pub convs: Vec<Conv2d<B>>,
    /// BatchNorms.
    pub norms: Vec<BatchNorm<B>>,
    /// The classifier head.
    pub head: Linear<B>,
}

impl<B: Backend> DenseClassifier<B> for DenseCnn<B> {
    fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = images;
        for (conv, norm) in self.convs.iter().zip(&self.norms) {
            x = relu(sorted_nn::dense_batch_norm_forward(norm, conv.forward(x)));
        }
        let pooled: Tensor<B, 2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        self.head.forward(pooled)
    }
}
