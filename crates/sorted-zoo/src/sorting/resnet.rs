//! Scores and sorting of [`SortedResNet`]: the inner channels of every basic block.
//!
//! A basic block's first convolution writes channels that only its second convolution reads:
//! they can be reordered freely. The channels of the residual stream (the stem's, each block's
//! second convolution's and the projection shortcuts') are summed across blocks, so a
//! permutation there would have to be shared by a whole stage and its shortcut's zero-padding;
//! they keep their order. Every sub-model runs a prefix of the inner channels at its block width,
//! so the sort decides which inner channels the narrow sub-models keep. The full model's
//! function is preserved.

use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::NormPass;

use super::channels::{
    ChannelImportance, input_sq, magnitude_channels, mean_abs_channels, permute_conv_inputs, permute_conv_outputs,
    permute_norm, taylor_channels,
};
use super::{ChannelScores, SortError, block_orders};
use crate::{SortedBasicBlock, SortedResNet};

/// The magnitude score of every block's inner channels: `|gamma|` of the first BatchNorm times
/// the L2 norm of the second convolution's input slice.
pub fn magnitude_resnet<B: Backend>(model: &SortedResNet<B>) -> ChannelScores {
    let blocks = model.blocks.iter().map(|b| magnitude_channels(&b.norm1, input_sq(&b.conv2))).collect();
    ChannelScores { blocks }
}

/// Activation: the mean post-ReLU activation of every block's inner channels after the first
/// BatchNorm; Taylor: see [`ChannelImportance::taylor`].
impl<B: AutodiffBackend> ChannelImportance<B> for SortedResNet<B> {
    fn in_channels(&self) -> usize {
        self.stem.conv.c_in_max()
    }

    fn magnitude(&self) -> ChannelScores {
        magnitude_resnet(self)
    }

    fn activation(model: &SortedResNet<B::InnerBackend>, images: Tensor<B::InnerBackend, 4>) -> Vec<Vec<f32>> {
        let mut pass = NormPass::Batch;
        let mut x = relu(model.stem.forward(images, model.stem.conv.c_out_max(), &mut pass, 0));
        let mut blocks = Vec::new();
        // The full model runs every block in flat order.
        for block in &model.blocks {
            let c = block.conv1.c_out_max();
            let inner = relu(block.norm1.forward_batch(block.conv1.forward(x.clone(), c)).0);
            blocks.push(mean_abs_channels(inner));
            x = block.forward(x, c, &mut pass, 0);
        }
        blocks
    }

    fn taylor(&self, grads: &B::Gradients) -> Vec<Vec<f32>> {
        self.blocks.iter().map(|b| taylor_channels(&b.norm1, grads)).collect()
    }
}

/// Reorders every block's inner channels by descending score (stable): the first
/// convolution's filters, the first BatchNorm's scale and shift, the second convolution's input
/// slices. The full model's outputs are unchanged; parameter ids are kept.
///
/// # Errors
/// [`SortError::LayerCount`], [`SortError::ScoreLength`] or [`SortError::NonFinite`] for
/// scores that do not fit; [`SortError::Switchable`] for a model with switchable BatchNorm.
pub fn sort_resnet<B: Backend>(
    mut model: SortedResNet<B>,
    scores: &ChannelScores,
) -> Result<SortedResNet<B>, SortError> {
    let orders = block_orders("channels", model.blocks.iter().map(|b| b.conv1.c_out_max()), &scores.blocks)?;
    model.blocks = std::mem::take(&mut model.blocks)
        .into_iter()
        .zip(orders)
        .enumerate()
        .map(|(b, (block, order))| {
            Ok(SortedBasicBlock {
                conv1: permute_conv_outputs(block.conv1, &order),
                norm1: permute_norm(block.norm1, &order, &format!("blocks[{b}].norm1"))?,
                conv2: permute_conv_inputs(block.conv2, &order),
                ..block
            })
        })
        .collect::<Result<Vec<_>, SortError>>()?;
    Ok(model)
}
