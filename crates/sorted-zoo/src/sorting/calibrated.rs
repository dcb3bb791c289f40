//! Sorting on calibration batches drawn from a training set: the first `n` batches of an
//! [`EpochOrder`] (a run's own first training batches), scored and summed, then applied. The
//! per-batch scores are the families' own ([`importance_bert`], [`importance_llama`],
//! [`sort_classifier`]); this file only picks and builds the batches.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use sorted_data::{EpochOrder, ImageBatcher, ImageSet, LmChunks, TextBatcher, TokenizedDataset};
use sorted_nn::SubModel;

use super::{
    BertCalibration, ImportanceScore, SortError, TransformerScores, importance_bert, importance_llama, magnitude_bert,
    magnitude_llama, sort_bert, sort_llama,
};
use crate::llama::SortedLlama;
use crate::{AnyClassifier, ClassifierSort, SortedBert, sort_classifier};

/// What sorting a transformer on calibration batches did.
#[derive(Debug)]
pub struct TransformerSort<M> {
    /// The sorted model (the same function in its full sub-model).
    pub model: M,
    /// Per layer, the unit scores in the order of the weights **before** sorting.
    pub scores: TransformerScores,
    /// Calibration batches the scores are summed over (0 for `magnitude`, which reads the
    /// weights only).
    pub batches: usize,
}

/// Scores `model` with `score` on the first `n_batches` batches of `order` over `train` (summed)
/// and sorts its heads and FFN units ([`sort_bert`]). `magnitude` reads no batch.
///
/// # Errors
/// [`SortError::Calibration`] for a batch that does not fit the model, or for no batch at all
/// with a calibration score.
pub fn sort_bert_on<B: AutodiffBackend>(
    model: SortedBert<B>,
    score: ImportanceScore,
    n_batches: usize,
    train: &TokenizedDataset,
    order: &EpochOrder,
    batcher: &TextBatcher,
    device: &B::Device,
) -> Result<TransformerSort<SortedBert<B>>, SortError> {
    let (scores, batches) = if score == ImportanceScore::Magnitude {
        (magnitude_bert(&model), 0)
    } else {
        let mut total: Option<TransformerScores> = None;
        for b in 0..n_batches as u64 {
            let batch = batcher.batch::<B>(train, &order.batch_indices(b), device);
            let calibration = BertCalibration {
                input_ids: batch.input_ids,
                token_type_ids: Some(batch.token_type_ids),
                attention_mask: batch.attention_mask,
                labels: batch.labels,
            };
            add(&mut total, importance_bert(&model, &calibration, score)?)?;
        }
        (total.ok_or_else(no_batch)?, n_batches)
    };
    let model = sort_bert(model, &scores)?;
    Ok(TransformerSort { model, scores, batches })
}

/// Scores `model` with `score` on the first `n_batches` batches of training windows in `order`
/// (next-token loss over each whole window, see [`llama_calibration_ids`], summed) and sorts its
/// SwiGLU units and query heads ([`sort_llama`]). `magnitude` reads no batch.
///
/// # Errors
/// [`SortError::Calibration`] for a batch that does not fit the model, or for no batch at all
/// with a calibration score.
pub fn sort_llama_on<B: AutodiffBackend>(
    model: SortedLlama<B>,
    score: ImportanceScore,
    n_batches: usize,
    chunks: &LmChunks,
    order: &EpochOrder,
    device: &B::Device,
) -> Result<TransformerSort<SortedLlama<B>>, SortError> {
    let (scores, batches) = if score == ImportanceScore::Magnitude {
        (magnitude_llama(&model), 0)
    } else {
        let mut total: Option<TransformerScores> = None;
        for b in 0..n_batches as u64 {
            let ids = llama_calibration_ids::<B>(chunks, &order.batch_indices(b), device);
            add(&mut total, importance_llama(&model, ids, score)?)?;
        }
        (total.ok_or_else(no_batch)?, n_batches)
    };
    let model = sort_llama(model, &scores)?;
    Ok(TransformerSort { model, scores, batches })
}

/// The calibration batch of the windows `indices` of `chunks`, `[n, seq_len + 1]`: a whole
/// window each, so every id but the first is a next-token target. Indices past the end are
/// skipped.
pub fn llama_calibration_ids<B: Backend>(
    chunks: &LmChunks,
    indices: &[usize],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let windows: Vec<&[u32]> = indices.iter().filter_map(|&i| chunks.chunk(i)).collect();
    let width = windows.first().map_or(0, |w| w.len());
    let ids: Vec<i64> = windows.iter().flat_map(|w| w.iter().map(|&id| i64::from(id))).collect();
    Tensor::from_data(TensorData::new(ids, [windows.len(), width]), device)
}

/// [`sort_classifier`] on the first `n_batches` batches of `order` over `train` (un-augmented,
/// as `batcher` builds them), in the full sub-model `full`.
///
/// # Errors
/// As [`sort_classifier`].
///
/// # Panics
/// As [`sort_classifier`]: an MLP with another score than `magnitude`.
#[allow(clippy::too_many_arguments)]
pub fn sort_classifier_on<B: AutodiffBackend>(
    model: AnyClassifier<B>,
    full: &SubModel,
    score: ImportanceScore,
    n_batches: usize,
    train: &ImageSet,
    order: &EpochOrder,
    batcher: &ImageBatcher,
    device: &B::Device,
) -> Result<ClassifierSort<B>, SortError> {
    let batches = (0..n_batches as u64).map(|b| {
        let batch = batcher.batch::<B>(train, &order.batch_indices(b), device);
        (batch.images, batch.labels)
    });
    sort_classifier(model, full, score, batches)
}

fn add(total: &mut Option<TransformerScores>, scores: TransformerScores) -> Result<(), SortError> {
    match total {
        Some(t) => t.accumulate(&scores)?,
        None => *total = Some(scores),
    }
    Ok(())
}

fn no_batch() -> SortError {
    SortError::Calibration { what: "batches", expected: "at least one calibration batch".into(), got: Vec::new() }
}
