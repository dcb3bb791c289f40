//! Channels of convolution + BatchNorm layers: their permutation, magnitude and Taylor scores,
//! shared by the CNN, ResNet and MobileNetV2 sorts.
//!
//! A channel produced by a convolution and normalised by a BatchNorm is written by the
//! convolution's output filter (weight dim 0, its bias) and the BatchNorm's scale and shift, and
//! read by the next convolution's input slice (weight dim 1; for a depthwise convolution the
//! channel's own filter, dim 0) or a linear head's row.
//!
//! **Taylor without hooks.** A channel's post-activation `h = act(gamma * x_hat + beta)` scaled
//! by a gate `g` is `act(g * (gamma * x_hat + beta))` for a ReLU (positively homogeneous), so
//! `dL/dg` at `g = 1` is `gamma * dL/dgamma + beta * dL/dbeta`: the first-order Taylor score
//! `|sum(h * dL/dh)|` is read from the gradients of the BatchNorm's own parameters after one
//! ordinary backward pass through the model's forward. For ReLU6 it is the gradient of scaling
//! the normalised pre-activation, which differs from `sum(h * dL/dh)` only where it saturates.

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::{NormPass, SortedBatchNorm, SortedConv2d, SubModel};

use super::permutation::permute_param;
use super::probe::{cross_entropy, to_vec};
use super::{ChannelScores, ImportanceScore, SortError};
use crate::SortedClassifier;

/// `conv` with its output channels (filters, bias) reordered by `order`; a depthwise
/// convolution's filters are its input channels too.
pub(crate) fn permute_conv_outputs<B: Backend>(conv: SortedConv2d<B>, order: &[usize]) -> SortedConv2d<B> {
    SortedConv2d {
        weight: permute_param(conv.weight, 0, order),
        bias: conv.bias.map(|b| permute_param(b, 0, order)),
        ..conv
    }
}

/// `conv` with its input channels (weight dim 1) reordered by `order`.
///
/// # Panics
/// If `conv` is depthwise (its inputs are its outputs: use [`permute_conv_outputs`]).
pub(crate) fn permute_conv_inputs<B: Backend>(conv: SortedConv2d<B>, order: &[usize]) -> SortedConv2d<B> {
    assert!(!conv.depthwise, "permute_conv_inputs: a depthwise convolution reads its channels through dim 0");
    SortedConv2d { weight: permute_param(conv.weight, 1, order), ..conv }
}

/// `norm` with its channels (scale, shift) reordered by `order`.
///
/// # Errors
/// [`SortError::Switchable`] if the BatchNorm keeps private statistics per width: they were
/// gathered for the old prefixes and would describe other channels after the sort.
pub(crate) fn permute_norm<B: Backend>(
    norm: SortedBatchNorm<B>,
    order: &[usize],
    layer: &str,
) -> Result<SortedBatchNorm<B>, SortError> {
    if !norm.widths.is_empty() {
        return Err(SortError::Switchable { layer: layer.to_string(), widths: norm.widths.clone() });
    }
    Ok(SortedBatchNorm { gamma: permute_param(norm.gamma, 0, order), beta: permute_param(norm.beta, 0, order), ..norm })
}

/// The squared L2 norm of every output filter of `conv` (`[c_out]`).
pub(crate) fn filter_sq<B: Backend>(conv: &SortedConv2d<B>) -> Tensor<B, 1> {
    let w = conv.weight.val();
    let c = w.dims()[0];
    w.clone().mul(w).sum_dim(3).sum_dim(2).sum_dim(1).reshape([c])
}

/// The squared L2 norm of every input slice of `conv` (`[c_in]`); for a depthwise convolution,
/// its filters.
pub(crate) fn input_sq<B: Backend>(conv: &SortedConv2d<B>) -> Tensor<B, 1> {
    if conv.depthwise {
        return filter_sq(conv);
    }
    let w = conv.weight.val();
    let c = w.dims()[1];
    w.clone().mul(w).sum_dim(3).sum_dim(2).sum_dim(0).reshape([c])
}

/// The magnitude score of the channels a BatchNorm normalises, read by weights whose squared
/// input norms are `reader_sq`: `|gamma| * ||reader slice||`. The filter that writes a channel
/// is left out: BatchNorm divides its scale away, and `|gamma|` is what the channel carries
/// (the "network slimming" criterion), times how strongly it is read.
pub(crate) fn magnitude_channels<B: Backend>(norm: &SortedBatchNorm<B>, reader_sq: Tensor<B, 1>) -> Vec<f32> {
    to_vec(norm.gamma.val().abs().mul(reader_sq.sqrt()))
}

/// The Taylor score of every channel of `norm` from the gradients of a backward pass:
/// `|gamma * dL/dgamma + beta * dL/dbeta|` (see the [module docs](self)). A BatchNorm the loss
/// did not reach scores zero.
pub(crate) fn taylor_channels<B: AutodiffBackend>(norm: &SortedBatchNorm<B>, grads: &B::Gradients) -> Vec<f32> {
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    match (gamma.grad(grads), beta.grad(grads)) {
        (Some(dg), Some(db)) => to_vec((gamma.inner().mul(dg) + beta.inner().mul(db)).abs()),
        _ => vec![0.0; gamma.dims()[0]],
    }
}

/// The mean `|activation|` of every channel of `h` (`[batch, c, h, w]` -> `c` values).
pub(crate) fn mean_abs_channels<B: Backend>(h: Tensor<B, 4>) -> Vec<f32> {
    let c = h.dims()[1];
    to_vec(h.abs().mean_dim(3).mean_dim(2).mean_dim(0).reshape([c]))
}

/// Checks a calibration batch of images (`[n, c, h, w]`, `n >= 2` so that batch statistics
/// exist) and labels (`[n]`).
pub(crate) fn check_images<B: Backend>(
    images: &Tensor<B, 4>,
    labels: &Tensor<B, 1, Int>,
    channels: usize,
) -> Result<(), SortError> {
    let [n, c, ..] = images.dims();
    if n < 2 || c != channels {
        return Err(SortError::Calibration {
            what: "images",
            expected: format!("[n >= 2, {channels}, h, w]"),
            got: images.dims().to_vec(),
        });
    }
    if labels.dims()[0] != n {
        return Err(SortError::Calibration {
            what: "labels",
            expected: format!("[{n}] (one per image)"),
            got: labels.dims().to_vec(),
        });
    }
    Ok(())
}

/// A convolutional family whose channels can be scored (implemented by
/// [`SortedCnn`](crate::SortedCnn), [`SortedResNet`](crate::SortedResNet) and
/// [`SortedMobileNetV2`](crate::SortedMobileNetV2)): its channel scores per kind, one vector per
/// block, which [`importance_channels`] picks from.
pub trait ChannelImportance<B: AutodiffBackend>: SortedClassifier<B> + AutodiffModule<B> {
    /// The input channels a calibration image must have.
    fn in_channels(&self) -> usize;

    /// The magnitude scores (weights only).
    fn magnitude(&self) -> ChannelScores;

    /// The activation scores of the model without autodiff (`valid`) on `images`, BatchNorm on
    /// batch statistics.
    fn activation(model: &Self::InnerModule, images: Tensor<B::InnerBackend, 4>) -> Vec<Vec<f32>>;

    /// The Taylor scores, read from `grads` of one backward pass through the full model: per
    /// channel `|gamma * dL/dgamma + beta * dL/dbeta|` of its BatchNorm, the first-order Taylor
    /// score `|sum(h * dL/dh)|` of its post-ReLU activation `h`, read without hooks.
    fn taylor(&self, grads: &B::Gradients) -> Vec<Vec<f32>>;
}

/// Scores every block's channels of `model`'s full sub-model `full` with `score` on a
/// calibration batch (`images` `[n, c, h, w]`, `labels` `[n]`), BatchNorm on batch statistics:
/// the family's [`ChannelImportance`] scores (what each family's channels are and how its
/// activation is read are in its implementation's docs); Taylor's loss is the classification
/// cross-entropy. The model is not changed.
///
/// # Errors
/// [`SortError::Calibration`] if the batch does not fit the model.
pub fn importance_channels<B: AutodiffBackend, M: ChannelImportance<B>>(
    model: &M,
    full: &SubModel,
    images: Tensor<B, 4>,
    labels: Tensor<B, 1, Int>,
    score: ImportanceScore,
) -> Result<ChannelScores, SortError> {
    check_images(&images, &labels, model.in_channels())?;
    let blocks = match score {
        ImportanceScore::Magnitude => return Ok(model.magnitude()),
        ImportanceScore::Activation => M::activation(&model.valid(), images.inner()),
        ImportanceScore::Taylor => {
            let logits = model.forward(images, full, &mut NormPass::Batch);
            model.taylor(&cross_entropy(logits, labels).backward())
        }
    };
    Ok(ChannelScores { blocks })
}
