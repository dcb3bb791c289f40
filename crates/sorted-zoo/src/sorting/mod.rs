//! Importance sorting of a pretrained model before sorted fine-tuning (issue 31).
//!
//! Every nested axis of the zoo is a prefix: a sub-model keeps the first `k` heads, FFN units or
//! hidden units. A pretrained model's units are in arbitrary order, so its prefixes are random
//! subsets. This module scores every unit ([`ImportanceScore`]) and reorders the units so that
//! the most important come first, permuting every tensor that writes the axis (the columns and
//! biases of the layer producing it) and every tensor that reads it (the rows of the layer
//! consuming it) with the same permutation. The **full model computes the same function** (up to
//! floating-point summation order); only which units each prefix holds changes.
//!
//! Per family:
//! - BERT ([`sort_bert`]): per layer, the attention heads (query/key/value output columns in
//!   blocks of `head_dim`, the output projection's input rows) and the FFN units (intermediate
//!   columns and bias, output rows).
//! - LLaMA ([`sort_llama`]): per layer, the SwiGLU units (gate and up columns, down rows) and
//!   the query heads **within each KV group** (query columns, output rows): query heads are
//!   nested per group (see [`SortedLlama`](crate::llama::SortedLlama)), so a head never leaves
//!   the group whose key/value head it reads. RoPE acts inside a head, so moving whole heads
//!   keeps it exact. The KV heads themselves are not nested and keep their order.
//! - MLP ([`sort_mlp`]): the hidden units of every block (the block's columns and bias, the
//!   next block's or the head's rows).
//! - CNN ([`sort_cnn`]): every convolution's output channels (filters, BatchNorm scale and
//!   shift, the next convolution's input slices or the head's rows).
//! - ResNet ([`sort_resnet`]): each basic block's inner channels (first convolution and
//!   BatchNorm, second convolution's inputs); the residual stream keeps its order.
//! - MobileNetV2 ([`sort_mobilenet_v2`]): each inverted residual block's hidden channels
//!   (expansion, depthwise convolution and their BatchNorms, the projection's inputs).
//!
//! The convolutional families score channels through their BatchNorms (see `channels.rs`):
//! magnitude is `|gamma|` times the norm of the weights reading the channel, activation the mean
//! post-activation on a calibration batch, and Taylor is read from the gradients of the
//! BatchNorm's scale and shift after one backward pass through the model's own forward.
//!
//! # Scores
//! [`ImportanceScore::Magnitude`] needs the weights only; [`ImportanceScore::Activation`] and
//! [`ImportanceScore::Taylor`] run a calibration batch. Both re-run the layer math of the full
//! model in this module (no dropout, no hooks in the models) with a **gate** of ones multiplying
//! every unit's output (a head's attention output before the output projection, an FFN unit's
//! activation before the down projection): the activation score is the mean `|activation|` over
//! the real tokens, and the Taylor score is `|dL/dgate|`, which equals `|sum over the batch of
//! activation x gradient|` (DynaBERT's head-mask importance). Scores of several batches add up
//! with [`TransformerScores::accumulate`].
//!
//! # Example
//! ```
//! use burn::backend::Flex;
//! use sorted_zoo::SortedBertConfig;
//! use sorted_zoo::sorting::{magnitude_bert, sort_bert};
//!
//! let device = Default::default();
//! let model = SortedBertConfig::tiny().init::<Flex>(&device);
//! let scores = magnitude_bert(&model);
//! let sorted = sort_bert(model, &scores)?;
//! assert_eq!(sorted.layers.len(), 3);
//! # Ok::<(), sorted_zoo::sorting::SortError>(())
//! ```

mod bert;
mod calibrated;
mod channels;
mod cnn;
mod llama;
mod llama_gguf;
mod mlp;
mod mobilenet_v2;
mod permutation;
mod probe;
mod resnet;

use serde::{Deserialize, Serialize};

use crate::ModelConfigError;

pub use bert::{BertCalibration, importance_bert, magnitude_bert, sort_bert};
pub use calibrated::{TransformerSort, llama_calibration_ids, sort_bert_on, sort_classifier_on, sort_llama_on};
pub use channels::{ChannelImportance, importance_channels};
pub use cnn::{magnitude_cnn, sort_cnn};
pub use llama::{importance_llama, magnitude_llama, sort_llama};
pub use llama_gguf::{SortedGgufError, write_sorted_llama_gguf};
pub use mlp::{magnitude_mlp, sort_mlp};
pub use mobilenet_v2::{magnitude_mobilenet_v2, sort_mobilenet_v2};
pub use permutation::{descending_order, expand_blocks, grouped_order, permute_axis, permute_inputs, permute_outputs};
pub use resnet::{magnitude_resnet, sort_resnet};

/// How a unit's importance is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceScore {
    /// The L2 norm of the unit's weights: the columns (and rows, for heads) that write it and the
    /// rows that read it. Biases and norms are left out. Needs no data.
    Magnitude,
    /// The mean `|activation|` of the unit over the real tokens of a calibration batch.
    Activation,
    /// First-order Taylor: `|sum over a calibration batch of activation x dL/dactivation|`
    /// (DynaBERT's choice), the loss being the model's own training loss (classification
    /// cross-entropy for BERT, next-token cross-entropy for LLaMA).
    #[default]
    Taylor,
}

impl ImportanceScore {
    /// The score's name as configs write it: `magnitude`, `activation` or `taylor`.
    pub fn name(self) -> &'static str {
        match self {
            ImportanceScore::Magnitude => "magnitude",
            ImportanceScore::Activation => "activation",
            ImportanceScore::Taylor => "taylor",
        }
    }
}

/// Calibration batches a `[model.*] sort_by` key scores on when `sort_batches` is not given.
pub const DEFAULT_SORT_BATCHES: usize = 4;

/// Checks `sort_batches` (at least 1, and only with `sort_by`) under `[model.<kind>]`.
pub(crate) fn check_sort_keys(
    kind: &str,
    sort_by: Option<ImportanceScore>,
    sort_batches: Option<usize>,
) -> Result<(), ModelConfigError> {
    match (sort_by, sort_batches) {
        (_, Some(0)) => {
            Err(ModelConfigError::new(format!("model.{kind}.sort_batches"), "at least 1 calibration batch", 0))
        }
        (None, Some(n)) => Err(ModelConfigError::new(
            format!("model.{kind}.sort_batches"),
            "`sort_by` beside it (`sort_batches` says how many batches `sort_by` scores on)",
            n,
        )),
        _ => Ok(()),
    }
}

/// The scores of one transformer layer's units, higher is more important.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerScores {
    /// One score per attention (query) head, in the layer's head order.
    pub heads: Vec<f32>,
    /// One score per FFN unit.
    pub ffn: Vec<f32>,
}

/// The unit scores of a transformer (BERT or LLaMA), one entry per layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformerScores {
    /// Per layer, in order.
    pub layers: Vec<LayerScores>,
}

impl TransformerScores {
    /// Adds `other` unit by unit (scores of several calibration batches).
    ///
    /// # Errors
    /// [`SortError::LayerCount`] or [`SortError::ScoreLength`] if the shapes differ.
    pub fn accumulate(&mut self, other: &TransformerScores) -> Result<(), SortError> {
        check_count("layers", self.layers.len(), other.layers.len())?;
        for (layer, (a, b)) in self.layers.iter_mut().zip(&other.layers).enumerate() {
            check_len("heads", layer, a.heads.len(), &b.heads)?;
            check_len("ffn", layer, a.ffn.len(), &b.ffn)?;
            a.heads.iter_mut().zip(&b.heads).for_each(|(x, y)| *x += y);
            a.ffn.iter_mut().zip(&b.ffn).for_each(|(x, y)| *x += y);
        }
        Ok(())
    }
}

/// The hidden-unit scores of an MLP, one vector per hidden block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpScores {
    /// Per block, one score per allocated unit.
    pub blocks: Vec<Vec<f32>>,
}

/// The channel scores of a convolutional model, one vector per block: a CNN's convolutions,
/// a ResNet's basic blocks (their inner channels), a MobileNetV2's inverted residual blocks
/// (their hidden channels; empty for a block without expansion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelScores {
    /// Per block, one score per allocated channel the sort reorders.
    pub blocks: Vec<Vec<f32>>,
}

/// Why scores could not be computed or applied.
#[derive(Debug, thiserror::Error)]
pub enum SortError {
    /// The scores cover another number of layers (or blocks) than the model has.
    #[error("scores for {got} {what}, the model has {expected}")]
    LayerCount {
        /// `"layers"` or `"blocks"`.
        what: &'static str,
        /// The model's count.
        expected: usize,
        /// The scores' count.
        got: usize,
    },
    /// A layer's score vector has the wrong length.
    #[error("layer {layer}: {got} {axis} scores, expected {expected}")]
    ScoreLength {
        /// `"heads"`, `"ffn"` or `"units"`.
        axis: &'static str,
        /// The layer (or block) index.
        layer: usize,
        /// The allocated units on that axis.
        expected: usize,
        /// The scores given.
        got: usize,
    },
    /// A score is NaN or infinite.
    #[error("layer {layer}: {axis} score {unit} is {value}, not finite")]
    NonFinite {
        /// `"heads"`, `"ffn"` or `"units"`.
        axis: &'static str,
        /// The layer (or block) index.
        layer: usize,
        /// The unit index.
        unit: usize,
        /// The value.
        value: f32,
    },
    /// A BatchNorm keeps private running statistics per switchable width: they describe the
    /// old prefixes, so the model cannot be sorted (sort the dense model, then train with
    /// switchable BatchNorm).
    #[error("{layer} keeps switchable BatchNorm statistics for widths {widths:?}; sort a model without them")]
    Switchable {
        /// The BatchNorm, e.g. `blocks[3].norm1`.
        layer: String,
        /// Its switchable widths.
        widths: Vec<usize>,
    },
    /// The calibration batch does not fit the model or the score.
    #[error("calibration batch: {what} is {got:?}, expected {expected}")]
    Calibration {
        /// The tensor or property at fault.
        what: &'static str,
        /// What it should be.
        expected: String,
        /// What it is.
        got: Vec<usize>,
    },
}

/// The descending order of every block's scores, after checking there is one vector per block
/// and that block `b`'s has `lens[b]` finite scores on `axis`.
fn block_orders(
    axis: &'static str,
    lens: impl ExactSizeIterator<Item = usize>,
    scores: &[Vec<f32>],
) -> Result<Vec<Vec<usize>>, SortError> {
    check_count("blocks", lens.len(), scores.len())?;
    for (b, (len, s)) in lens.zip(scores).enumerate() {
        check_len(axis, b, len, s)?;
    }
    Ok(scores.iter().map(|s| descending_order(s)).collect())
}

/// Checks `scores` against a transformer's layers: one entry per layer, whose heads and FFN
/// units have the `(heads, units)` of `shapes` finite scores.
fn check_layer_scores(
    shapes: impl ExactSizeIterator<Item = (usize, usize)>,
    scores: &TransformerScores,
) -> Result<(), SortError> {
    check_count("layers", shapes.len(), scores.layers.len())?;
    for (i, ((heads, units), s)) in shapes.zip(&scores.layers).enumerate() {
        check_len("heads", i, heads, &s.heads)?;
        check_len("ffn", i, units, &s.ffn)?;
    }
    Ok(())
}

fn check_count(what: &'static str, expected: usize, got: usize) -> Result<(), SortError> {
    if expected == got { Ok(()) } else { Err(SortError::LayerCount { what, expected, got }) }
}

/// Checks the length and finiteness of one layer's scores on one axis.
fn check_len(axis: &'static str, layer: usize, expected: usize, scores: &[f32]) -> Result<(), SortError> {
    if scores.len() != expected {
        return Err(SortError::ScoreLength { axis, layer, expected, got: scores.len() });
    }
    match scores.iter().position(|s| !s.is_finite()) {
        Some(unit) => Err(SortError::NonFinite { axis, layer, unit, value: scores[unit] }),
        None => Ok(()),
    }
}
