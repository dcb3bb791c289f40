//! Importance sorting before training (issue 31): the `[model.bert]` / `[model.llama]`
//! `sort_by` keys of a fresh run. The scores and the permutations are `sorted_zoo::sorting`'s;
//! this file only picks the calibration batches (the run's own first training batches) and
//! records the scores beside the run.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use sorted_data::{EpochOrder, LmChunks, TextBatcher, TokenizedDataset};
use sorted_zoo::SortedBert;
use sorted_zoo::llama::SortedLlama;
use sorted_zoo::sorting::{
    BertCalibration, ImportanceScore, LayerScores, TransformerScores, importance_bert, importance_llama,
    magnitude_bert, magnitude_llama, sort_bert, sort_llama,
};

use crate::provenance::write_file;

/// The scores a sorted run was sorted by, written into its folder.
pub const SORT_SCORES_FILE: &str = "sort_scores.json";

/// The content of [`SORT_SCORES_FILE`].
#[derive(Serialize)]
struct ScoresFile<'a> {
    /// The importance score.
    score: ImportanceScore,
    /// Calibration batches summed (0 for `magnitude`, which reads the weights only).
    batches: usize,
    /// Per layer, the unit scores in the order of the weights **before** sorting.
    layers: &'a [LayerScores],
}

/// What sorting a model did: the scores, and how many batches they were summed over.
pub(crate) struct Sorted<M> {
    pub model: M,
    pub scores: TransformerScores,
    pub batches: usize,
}

/// Scores `model` with `score` on the first `n_batches` batches of `order` over `train` (summed)
/// and sorts its heads and FFN units.
///
/// # Errors
/// A batch that does not fit the model, or scores that cannot be applied.
pub(crate) fn sort_bert_on<B: AutodiffBackend>(
    model: SortedBert<B>,
    score: ImportanceScore,
    n_batches: usize,
    train: &TokenizedDataset,
    order: &EpochOrder,
    batcher: &TextBatcher,
    device: &B::Device,
) -> anyhow::Result<Sorted<SortedBert<B>>> {
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
            let s = importance_bert(&model, &calibration, score)?;
            add(&mut total, s)?;
        }
        (total.expect("at least one calibration batch (validated)"), n_batches)
    };
    let model = sort_bert(model, &scores)?;
    Ok(Sorted { model, scores, batches })
}

/// Scores `model` with `score` on the first `n_batches` batches of training windows in `order`
/// (next-token loss over each whole window, summed) and sorts its SwiGLU units and query heads.
///
/// # Errors
/// A batch that does not fit the model, or scores that cannot be applied.
pub(crate) fn sort_llama_on<B: AutodiffBackend>(
    model: SortedLlama<B>,
    score: ImportanceScore,
    n_batches: usize,
    chunks: &LmChunks,
    order: &EpochOrder,
    device: &B::Device,
) -> anyhow::Result<Sorted<SortedLlama<B>>> {
    let (scores, batches) = if score == ImportanceScore::Magnitude {
        (magnitude_llama(&model), 0)
    } else {
        let mut total: Option<TransformerScores> = None;
        for b in 0..n_batches as u64 {
            let indices = order.batch_indices(b);
            // A whole window (`seq_len + 1` ids): every id but the first is a next-token target.
            let windows: Vec<&[u32]> = indices.iter().filter_map(|&i| chunks.chunk(i)).collect();
            let width = windows.first().map_or(0, |w| w.len());
            let ids: Vec<i64> = windows.iter().flat_map(|w| w.iter().map(|&id| i64::from(id))).collect();
            let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [windows.len(), width]), device);
            add(&mut total, importance_llama(&model, ids, score)?)?;
        }
        (total.expect("at least one calibration batch (validated)"), n_batches)
    };
    let model = sort_llama(model, &scores)?;
    Ok(Sorted { model, scores, batches })
}

fn add(total: &mut Option<TransformerScores>, scores: TransformerScores) -> anyhow::Result<()> {
    match total {
        Some(t) => t.accumulate(&scores)?,
        None => *total = Some(scores),
    }
    Ok(())
}

/// Writes [`SORT_SCORES_FILE`] into `dir` and, unless `quiet`, says what was sorted.
///
/// # Errors
/// The write, naming the file.
pub(crate) fn record_sort<M>(
    dir: &Path,
    what: &str,
    score: ImportanceScore,
    sorted: &Sorted<M>,
    quiet: bool,
) -> anyhow::Result<()> {
    let file = ScoresFile { score, batches: sorted.batches, layers: &sorted.scores.layers };
    let path = dir.join(SORT_SCORES_FILE);
    write_file(&path, serde_json::to_string_pretty(&file).expect("scores serialise").as_bytes())?;
    if !quiet {
        let on = if sorted.batches == 0 {
            "the weights".to_string()
        } else {
            format!("{} training batches", sorted.batches)
        };
        eprintln!(
            "sorted {what} of {} layers by {} on {on} -> {}",
            sorted.scores.layers.len(),
            score_name(score),
            path.display()
        );
    }
    Ok(())
}

fn score_name(score: ImportanceScore) -> &'static str {
    match score {
        ImportanceScore::Magnitude => "magnitude",
        ImportanceScore::Activation => "activation",
        ImportanceScore::Taylor => "taylor",
    }
}
