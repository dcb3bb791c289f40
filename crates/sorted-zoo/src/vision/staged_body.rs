//! What the staged vision models' passes share: the stem and the active blocks of one sub-model
//! of a [`SortedResNet`](crate::SortedResNet) or a [`SortedMobileNetV2`](crate::SortedMobileNetV2),
//! run forward, costed, checked against a space and extracted the same way; each model adds its
//! own head (and the MobileNetV2 its last convolution).

use burn::prelude::*;
use sorted_nn::{BatchStatistics, Cost, NestingSpace, NormPass, SpecError, SubModel, SubModelNormStats};

use crate::vision::classifier::check_widths;
use crate::vision::conv_norm::{DenseConvNorm, SortedConvNorm};
use crate::vision::depth_order::active_in_flat_order;
use crate::vision::scaling::proportional;

/// A block of a staged model ([`SortedBasicBlock`](crate::SortedBasicBlock),
/// [`SortedInvertedResidual`](crate::SortedInvertedResidual)): what a [`StagedBody`] runs. The
/// methods are the blocks' own methods of the same names.
pub(crate) trait StagedBlock<B: Backend> {
    /// The block at fixed widths.
    type Dense;

    /// The allocated output channels (the widest active width).
    fn c_out_max(&self) -> usize;

    /// The number of BatchNorm layers the block runs.
    fn n_norm_layers(&self) -> usize;

    /// The output for active width `c_out`, the block's BatchNorms numbered from `first_norm`.
    fn forward(&self, x: Tensor<B, 4>, c_out: usize, norm: &mut NormPass<'_, B>, first_norm: usize) -> Tensor<B, 4>;

    /// The cost for active widths `c_in -> c_out` at input size `hw`, and the output size.
    fn cost(&self, c_in: usize, c_out: usize, hw: [usize; 2]) -> (Cost, [usize; 2]);

    /// The active slices at fixed widths, with `stats` (one per BatchNorm) as running statistics.
    fn to_dense(&self, c_in: usize, c_out: usize, stats: &[BatchStatistics<B>]) -> Self::Dense;
}

/// Implements [`StagedBlock`] for `$block<B>` (dense form `$dense<B>`, allocated output channels
/// `$c_out_max`) through the block's own inherent methods.
macro_rules! staged_block {
    ($block:ident, $dense:ident, |$this:ident| $c_out_max:expr) => {
        impl<B: ::burn::tensor::backend::Backend> $crate::vision::staged_body::StagedBlock<B> for $block<B> {
            type Dense = $dense<B>;

            fn c_out_max(&self) -> usize {
                let $this = self;
                $c_out_max
            }

            fn n_norm_layers(&self) -> usize {
                Self::n_norm_layers(self)
            }

            fn forward(
                &self,
                x: ::burn::tensor::Tensor<B, 4>,
                c_out: usize,
                norm: &mut ::sorted_nn::NormPass<'_, B>,
                first: usize,
            ) -> ::burn::tensor::Tensor<B, 4> {
                Self::forward(self, x, c_out, norm, first)
            }

            fn cost(&self, c_in: usize, c_out: usize, hw: [usize; 2]) -> (::sorted_nn::Cost, [usize; 2]) {
                Self::cost(self, c_in, c_out, hw)
            }

            fn to_dense(&self, c_in: usize, c_out: usize, stats: &[::sorted_nn::BatchStatistics<B>]) -> $dense<B> {
                Self::to_dense(self, c_in, c_out, stats)
            }
        }
    };
}
pub(crate) use staged_block;

/// The stem's active width for a first block of active width `w0`: the first block's fraction of
/// its allocation, rounded up, of the stem's allocation.
pub(crate) fn stem_width<B: Backend, K: StagedBlock<B>>(stem: &SortedConvNorm<B>, blocks: &[K], w0: usize) -> usize {
    proportional(w0, blocks[0].c_out_max(), stem.conv.c_out_max())
}

/// Checks `space` (blocks in activation `order`) against the allocation of `blocks` (flat order).
pub(crate) fn check_block_widths<B: Backend, K: StagedBlock<B>>(
    space: &NestingSpace,
    blocks: &[K],
    order: &[usize],
) -> Result<(), SpecError> {
    let allocated: Vec<usize> = order.iter().map(|&b| blocks[b].c_out_max()).collect();
    check_widths(space, &allocated)
}

/// The stem and the blocks one sub-model runs, in forward (flat) order with their active widths.
/// BatchNorm layers are numbered in forward order: the stem's is 0, the blocks' follow.
pub(crate) struct StagedBody<'a, B: Backend, K> {
    /// The model's name, for panics.
    model: &'static str,
    sub: &'a SubModel,
    stem: &'a SortedConvNorm<B>,
    stem_width: usize,
    active: Vec<(&'a K, usize)>,
}

/// [`StagedBody::to_dense`]'s result.
pub(crate) struct DenseBody<B: Backend, D> {
    /// The stem at its active width.
    pub stem: DenseConvNorm<B>,
    /// The active blocks.
    pub blocks: Vec<D>,
    /// The last active block's width.
    pub c_out: usize,
    /// The number of the next BatchNorm layer (after the blocks').
    pub next_norm: usize,
}

impl<'a, B: Backend, K: StagedBlock<B>> StagedBody<'a, B, K> {
    /// The part of `sub` that `stem` and `blocks` (flat order, activated in `order`) run;
    /// `model` names the model in panics.
    ///
    /// # Panics
    /// If `sub` is deeper than `blocks`.
    pub fn new(
        model: &'static str,
        stem: &'a SortedConvNorm<B>,
        blocks: &'a [K],
        order: &[usize],
        sub: &'a SubModel,
    ) -> Self {
        assert!(sub.depth() <= blocks.len(), "{model}: depth {} > allocated {}", sub.depth(), blocks.len());
        let active = active_in_flat_order(order, sub.widths()).into_iter().map(|(b, c)| (&blocks[b], c)).collect();
        Self { model, sub, stem, stem_width: stem_width(stem, blocks, sub.widths()[0]), active }
    }

    /// The last active block and its active width.
    pub fn last(&self) -> (&'a K, usize) {
        *self.active.last().expect("a sub-model has a block")
    }

    /// The number of BatchNorm layers of the stem and the blocks.
    pub fn n_norm_layers(&self) -> usize {
        1 + self.active.iter().map(|(b, _)| b.n_norm_layers()).sum::<usize>()
    }

    /// The blocks' output for `images` (the stem's output passes through `activation`), and the
    /// number of the next BatchNorm layer.
    pub fn forward(
        &self,
        images: Tensor<B, 4>,
        norm: &mut NormPass<'_, B>,
        activation: fn(Tensor<B, 4>) -> Tensor<B, 4>,
    ) -> (Tensor<B, 4>, usize) {
        let mut x = activation(self.stem.forward(images, self.stem_width, norm, 0));
        let mut index = 1;
        for &(block, c) in &self.active {
            x = block.forward(x, c, norm, index);
            index += block.n_norm_layers();
        }
        (x, index)
    }

    /// The cost of the stem and the blocks for inputs of size `input_hw`, the last active width
    /// and the blocks' output size.
    pub fn cost(&self, input_hw: [usize; 2]) -> (Cost, usize, [usize; 2]) {
        let mut cost = self.stem.cost(self.stem.conv.c_in_max(), self.stem_width, input_hw);
        let mut hw = self.stem.conv.output_size(input_hw);
        let mut c_in = self.stem_width;
        for &(block, c) in &self.active {
            let (block_cost, out_hw) = block.cost(c_in, c, hw);
            cost += block_cost;
            (hw, c_in) = (out_hw, c);
        }
        (cost, c_in, hw)
    }

    /// The statistics of `stats` after checking there are `n_layers` (the whole model's).
    ///
    /// # Panics
    /// If `stats` is `None` or has another number of layers.
    pub fn norm_stats<'s>(&self, stats: Option<&'s SubModelNormStats<B>>, n_layers: usize) -> &'s [BatchStatistics<B>] {
        let model = self.model;
        let stats = stats
            .unwrap_or_else(|| panic!("{model}::extract needs BatchNorm statistics recalibrated for the sub-model"));
        assert_eq!(
            stats.layers.len(),
            n_layers,
            "{model}::extract: one statistics entry per BatchNorm layer of {}",
            self.sub
        );
        &stats.layers
    }

    /// The stem and the blocks at their active widths, with `stats` (the model's, in forward
    /// order) as running statistics.
    pub fn to_dense(&self, stats: &[BatchStatistics<B>]) -> DenseBody<B, K::Dense> {
        let mut c_in = self.stem_width;
        let mut index = 1;
        let mut blocks = Vec::with_capacity(self.active.len());
        for &(block, c) in &self.active {
            blocks.push(block.to_dense(c_in, c, &stats[index..]));
            index += block.n_norm_layers();
            c_in = c;
        }
        DenseBody {
            stem: self.stem.to_dense(self.stem.conv.c_in_max(), self.stem_width, &stats[0]),
            blocks,
            c_out: c_in,
            next_norm: index,
        }
    }
}
