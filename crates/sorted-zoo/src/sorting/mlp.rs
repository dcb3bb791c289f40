//! Scores and sorting of [`SortedMlp`]: the hidden units of every block.
//!
//! Only the full model's function is preserved. The head is shared by every depth and reads the
//! last active block's units through its first rows; the sort permutes those rows with the
//! **last** block's units, so an exit at a shallower depth (whose units meet the same rows)
//! computes something else afterwards. For a model trained dense those exits were never trained
//! anyway.

use burn::prelude::*;
use sorted_nn::SortedLinear;

use super::permutation::{extend_identity, permute_inputs, permute_outputs};
use super::probe::{col_sq, row_sq, to_vec};
use super::{MlpScores, SortError, block_orders};
use crate::SortedMlp;

/// The magnitude score of every hidden unit: the L2 norm of its column (the weights that write
/// it) and its row in the next block or, for the last block, the head (the weights that read
/// it).
pub fn magnitude_mlp<B: Backend>(model: &SortedMlp<B>) -> MlpScores {
    let blocks = model
        .blocks
        .iter()
        .enumerate()
        .map(|(i, block)| {
            let w = block.d_output_max();
            let reader = model.blocks.get(i + 1).unwrap_or(&model.head);
            let rows = row_sq(reader.weight.val()).slice(s![0..w]);
            to_vec((col_sq(block.weight.val()) + rows).sqrt())
        })
        .collect();
    MlpScores { blocks }
}

/// Reorders every block's hidden units by descending score (stable): the block's weight
/// columns and bias, and the rows of the layer that reads them (the next block, or the head's
/// first rows for the last block). The full model's outputs are unchanged; parameter ids are
/// kept. A shallower exit, whose block's units meet the same head rows, computes something else
/// afterwards (for a model trained dense those exits were never trained anyway).
///
/// # Errors
/// [`SortError::LayerCount`] if `scores` has another number of blocks,
/// [`SortError::ScoreLength`] naming the block whose vector does not have one score per
/// allocated unit, [`SortError::NonFinite`] for a NaN or infinite score.
pub fn sort_mlp<B: Backend>(model: SortedMlp<B>, scores: &MlpScores) -> Result<SortedMlp<B>, SortError> {
    let orders = block_orders("units", model.blocks.iter().map(|b| b.d_output_max()), &scores.blocks)?;
    let blocks: Vec<SortedLinear<B>> = model
        .blocks
        .into_iter()
        .enumerate()
        .map(|(i, block)| {
            let block = permute_outputs(block, &orders[i]);
            // A block reads the previous block's units through its rows.
            if i == 0 { block } else { permute_inputs(block, &orders[i - 1]) }
        })
        .collect();
    let last = orders.last().expect("an MLP has at least one block");
    let rows = model.head.d_input_max();
    let head = permute_inputs(model.head, &extend_identity(last, rows));
    Ok(SortedMlp { blocks, head })
}
