//! A nested convolution followed by its BatchNorm: the unit the residual models are built from.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use sorted_nn::{
    BatchStatistics, Cost, NormPass, SortedBatchNorm, SortedBatchNormConfig, SortedConv2d, SortedConv2dConfig,
};

/// A [`SortedConv2d`] followed by a [`SortedBatchNorm`] over its active output channels (no
/// activation: the caller applies ReLU or ReLU6).
#[derive(Module, Debug)]
pub struct SortedConvNorm<B: Backend> {
    /// The convolution (no bias: the BatchNorm's shift replaces it).
    pub conv: SortedConv2d<B>,
    /// The BatchNorm over the convolution's output channels.
    pub norm: SortedBatchNorm<B>,
}

impl<B: Backend> SortedConvNorm<B> {
    /// Allocates a bias-free `k x k` convolution with `same` padding at stride 1, its BatchNorm
    /// with private statistics for `switchable_widths` (empty: none).
    pub(crate) fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        depthwise: bool,
        switchable_widths: Vec<usize>,
        device: &B::Device,
    ) -> Self {
        let conv = SortedConv2dConfig::new(channels, [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding([kernel / 2, kernel / 2])
            .with_depthwise(depthwise)
            .with_bias(false)
            .init(device);
        let norm = SortedBatchNormConfig::new(channels[1]).with_switchable_widths(switchable_widths).init(device);
        Self { conv, norm }
    }

    /// Convolves to `c_out` active channels and normalises them as the `index`-th BatchNorm of
    /// `norm`'s pass; the active input width is read from `x`.
    ///
    /// # Shapes
    /// - x: `[batch, c_in, h, w]`
    /// - output: `[batch, c_out, h', w']`
    ///
    /// # Panics
    /// If a width exceeds the allocation, or `norm` lacks statistics it needs.
    pub fn forward(&self, x: Tensor<B, 4>, c_out: usize, norm: &mut NormPass<'_, B>, index: usize) -> Tensor<B, 4> {
        norm.apply(&self.norm, index, self.conv.forward(x, c_out))
    }

    /// The analytic cost (convolution and BatchNorm parameters) at input size `hw`.
    pub fn cost(&self, c_in: usize, c_out: usize, hw: [usize; 2]) -> Cost {
        self.conv.cost(c_in, c_out, hw) + Cost::norm(c_out)
    }

    /// Copies the active slices into a [`DenseConvNorm`] with `stats` as running statistics.
    ///
    /// # Panics
    /// If the widths exceed the allocation or `stats` does not have `c_out` channels.
    pub fn to_dense(&self, c_in: usize, c_out: usize, stats: &BatchStatistics<B>) -> DenseConvNorm<B> {
        assert_eq!(stats.mean.dims()[0], c_out, "SortedConvNorm::to_dense: statistics do not match c_out {c_out}");
        DenseConvNorm { conv: self.conv.to_dense(c_in, c_out), norm: self.norm.to_dense(stats) }
    }
}

/// A [`SortedConvNorm`] at fixed widths: `burn::nn` convolution and BatchNorm.
#[derive(Module, Debug)]
pub struct DenseConvNorm<B: Backend> {
    /// The convolution.
    pub conv: Conv2d<B>,
    /// The BatchNorm.
    pub norm: BatchNorm<B>,
}

impl<B: Backend> DenseConvNorm<B> {
    /// Convolution, then BatchNorm.
    ///
    /// # Shapes
    /// - x: `[batch, c_in, h, w]`
    /// - output: `[batch, c_out, h', w']`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        sorted_nn::dense_batch_norm_forward(&self.norm, self.conv.forward(x))
    }
}
