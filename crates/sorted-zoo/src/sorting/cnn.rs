//! Scores and sorting of [`SortedCnn`]: the output channels of every convolution.
//!
//! As for the MLP, only the full model's function is preserved: the head reads the last active
//! convolution's channels through its first rows, which the sort permutes with the **last**
//! convolution's channels.

use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;

use super::channels::{
    ChannelImportance, input_sq, magnitude_channels, mean_abs_channels, permute_conv_inputs, permute_conv_outputs,
    permute_norm, taylor_channels,
};
use super::permutation::{extend_identity, permute_inputs};
use super::probe::row_sq;
use super::{ChannelScores, SortError, block_orders};
use crate::SortedCnn;

/// The magnitude score of every convolution's channels: `|gamma|` of its BatchNorm times the
/// L2 norm of the weights that read the channel (the next convolution's input slice, or the
/// head's row).
pub fn magnitude_cnn<B: Backend>(model: &SortedCnn<B>) -> ChannelScores {
    let blocks = (0..model.convs.len())
        .map(|b| {
            let reader = match model.convs.get(b + 1) {
                Some(next) => input_sq(next),
                None => row_sq(model.head.weight.val()).slice(s![0..model.convs[b].c_out_max()]),
            };
            magnitude_channels(&model.norms[b], reader)
        })
        .collect();
    ChannelScores { blocks }
}

/// Activation: the mean post-ReLU activation of every convolution's channels; Taylor: see
/// [`ChannelImportance::taylor`].
impl<B: AutodiffBackend> ChannelImportance<B> for SortedCnn<B> {
    fn in_channels(&self) -> usize {
        self.convs[0].c_in_max()
    }

    fn magnitude(&self) -> ChannelScores {
        magnitude_cnn(self)
    }

    fn activation(model: &SortedCnn<B::InnerBackend>, images: Tensor<B::InnerBackend, 4>) -> Vec<Vec<f32>> {
        let mut x = images;
        let mut blocks = Vec::new();
        for (conv, norm) in model.convs.iter().zip(&model.norms) {
            x = relu(norm.forward_batch(conv.forward(x, conv.c_out_max())).0);
            blocks.push(mean_abs_channels(x.clone()));
        }
        blocks
    }

    fn taylor(&self, grads: &B::Gradients) -> Vec<Vec<f32>> {
        self.norms.iter().map(|norm| taylor_channels(norm, grads)).collect()
    }
}

/// Reorders every convolution's output channels by descending score (stable): its filters,
/// its BatchNorm's scale and shift, and the input slices of the next convolution (or the
/// head's first rows). The full model's outputs are unchanged (BatchNorm statistics are
/// per channel and move with it); parameter ids are kept.
///
/// # Errors
/// [`SortError::LayerCount`], [`SortError::ScoreLength`] or [`SortError::NonFinite`] for
/// scores that do not fit; [`SortError::Switchable`] for a model with switchable BatchNorm.
pub fn sort_cnn<B: Backend>(model: SortedCnn<B>, scores: &ChannelScores) -> Result<SortedCnn<B>, SortError> {
    let orders = block_orders("channels", model.convs.iter().map(|c| c.c_out_max()), &scores.blocks)?;
    let mut convs = Vec::with_capacity(model.convs.len());
    for (b, conv) in model.convs.into_iter().enumerate() {
        let conv = permute_conv_outputs(conv, &orders[b]);
        convs.push(if b == 0 { conv } else { permute_conv_inputs(conv, &orders[b - 1]) });
    }
    let norms = model
        .norms
        .into_iter()
        .enumerate()
        .map(|(b, norm)| permute_norm(norm, &orders[b], &format!("norms[{b}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let last = orders.last().expect("a CNN has at least one convolution");
    let rows = model.head.d_input_max();
    let head = permute_inputs(model.head, &extend_identity(last, rows));
    Ok(SortedCnn { convs, norms, head, input_hw: model.input_hw })
}
