//! Scores and sorting of [`SortedMobileNetV2`]: the hidden (expanded) channels of every inverted
//! residual block.
//!
//! A block's expansion writes hidden channels that the depthwise convolution transforms one by
//! one and the projection reads: they can be reordered freely (the expansion's filters and
//! BatchNorm, the depthwise filters and BatchNorm, the projection's input slices). A block
//! without expansion (factor 1) runs on its input channels, which belong to the stream between
//! blocks; it has nothing to sort and takes an empty score vector. Every sub-model runs a prefix
//! of the hidden channels, so the sort decides which of them the narrow sub-models keep. The
//! full model's function is preserved.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::NormPass;

use super::channels::{
    ChannelImportance, input_sq, magnitude_channels, mean_abs_channels, permute_conv_inputs, permute_conv_outputs,
    permute_norm, taylor_channels,
};
use super::{ChannelScores, SortError, block_orders};
use crate::{SortedConvNorm, SortedInvertedResidual, SortedMobileNetV2};

/// The number of hidden channels the sort reorders in `block` (0 without expansion).
fn hidden<B: Backend>(block: &SortedInvertedResidual<B>) -> usize {
    block.expand.as_ref().map_or(0, |e| e.conv.c_out_max())
}

/// The magnitude score of every block's hidden channels: `|gamma|` of the depthwise BatchNorm
/// (what the channel carries into the projection) times the L2 norm of the projection's input
/// slice. Blocks without expansion get an empty vector.
pub fn magnitude_mobilenet_v2<B: Backend>(model: &SortedMobileNetV2<B>) -> ChannelScores {
    let blocks = model
        .blocks
        .iter()
        .map(|b| match b.expand {
            Some(_) => magnitude_channels(&b.depthwise.norm, input_sq(&b.project.conv)),
            None => Vec::new(),
        })
        .collect();
    ChannelScores { blocks }
}

/// Activation: the mean ReLU6 activation of every block's hidden channels after the depthwise
/// convolution (what the projection reads); Taylor: see [`ChannelImportance::taylor`], summed over
/// the expansion's and the depthwise BatchNorms of the channel. Blocks without expansion get an
/// empty vector.
impl<B: AutodiffBackend> ChannelImportance<B> for SortedMobileNetV2<B> {
    fn in_channels(&self) -> usize {
        self.stem.conv.c_in_max()
    }

    fn magnitude(&self) -> ChannelScores {
        magnitude_mobilenet_v2(self)
    }

    fn activation(model: &SortedMobileNetV2<B::InnerBackend>, images: Tensor<B::InnerBackend, 4>) -> Vec<Vec<f32>> {
        let mut pass = NormPass::Batch;
        let relu6 = |x: Tensor<B::InnerBackend, 4>| x.clamp(0.0, 6.0);
        let mut x = relu6(model.stem.forward(images, model.stem.conv.c_out_max(), &mut pass, 0));
        let mut blocks = Vec::new();
        // The full model runs every block in flat order.
        for block in &model.blocks {
            let c = block.project.conv.c_out_max();
            blocks.push(match &block.expand {
                Some(e) => {
                    let h = relu6(e.forward(x.clone(), hidden(block), &mut pass, 0));
                    mean_abs_channels(relu6(block.depthwise.forward(h, hidden(block), &mut pass, 0)))
                }
                None => Vec::new(),
            });
            x = block.forward(x, c, &mut pass, 0);
        }
        blocks
    }

    fn taylor(&self, grads: &B::Gradients) -> Vec<Vec<f32>> {
        let taylor = |e: &SortedConvNorm<B>, d: &SortedConvNorm<B>| {
            let (a, b) = (taylor_channels(&e.norm, grads), taylor_channels(&d.norm, grads));
            a.iter().zip(&b).map(|(x, y)| x + y).collect()
        };
        self.blocks.iter().map(|b| b.expand.as_ref().map_or(Vec::new(), |e| taylor(e, &b.depthwise))).collect()
    }
}

/// Reorders every expanding block's hidden channels by descending score (stable). The full
/// model's outputs are unchanged; parameter ids are kept.
///
/// # Errors
/// [`SortError::LayerCount`], [`SortError::ScoreLength`] (an expanding block needs one score per
/// hidden channel, a block without expansion an empty vector) or [`SortError::NonFinite`] for
/// scores that do not fit; [`SortError::Switchable`] for a model with switchable BatchNorm.
pub fn sort_mobilenet_v2<B: Backend>(
    mut model: SortedMobileNetV2<B>,
    scores: &ChannelScores,
) -> Result<SortedMobileNetV2<B>, SortError> {
    let orders = block_orders("channels", model.blocks.iter().map(hidden), &scores.blocks)?;
    model.blocks = std::mem::take(&mut model.blocks)
        .into_iter()
        .zip(orders)
        .enumerate()
        .map(|(b, (block, order))| {
            let Some(expand) = block.expand else { return Ok(block) };
            let norm = |n, what: &str| permute_norm(n, &order, &format!("blocks[{b}].{what}.norm"));
            let expand =
                SortedConvNorm { conv: permute_conv_outputs(expand.conv, &order), norm: norm(expand.norm, "expand")? };
            let depthwise = SortedConvNorm {
                conv: permute_conv_outputs(block.depthwise.conv, &order),
                norm: norm(block.depthwise.norm, "depthwise")?,
            };
            let project = SortedConvNorm { conv: permute_conv_inputs(block.project.conv, &order), ..block.project };
            Ok(SortedInvertedResidual { expand: Some(expand), depthwise, project, residual: block.residual })
        })
        .collect::<Result<Vec<_>, SortError>>()?;
    Ok(model)
}
