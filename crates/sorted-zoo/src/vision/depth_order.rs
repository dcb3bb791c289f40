//! Which blocks a sub-model of a staged model runs: the activation order of nested depth.

use serde::{Deserialize, Serialize};

/// Which blocks of a staged model ([`SortedResNet`](crate::SortedResNet),
/// [`SortedMobileNetV2`](crate::SortedMobileNetV2)) a sub-model of depth `d` runs: the first `d` blocks of
/// the model's *activation order*. Block `r` of the
/// [`NestingSpace`](sorted_nn::NestingSpace) is the `r`-th block of that
/// order, so the space's per-block widths follow it too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepthOrder {
    /// The blocks in flat order across the stages: a shallow sub-model drops whole later
    /// stages (depth 1 is the stem and one block of the first stage).
    #[default]
    Flat,
    /// Blocks per stage: the first block of every stage, then the second block of every stage
    /// that has one, and so on, stages in order within a round. From depth = the number of
    /// stages on, every sub-model runs every stage (all strides, projections and the widest
    /// features the head reads); depth `n_stages * j` runs the first `j` blocks of each stage.
    PerStage,
}

/// The activation order of `blocks_per_stage` under `order`: entry `r` is the flat index of the
/// `r`-th block to activate. Block 0 always comes first.
///
/// ```
/// use sorted_zoo::{DepthOrder, activation_order};
///
/// assert_eq!(activation_order(&[2, 1, 2], DepthOrder::Flat), [0, 1, 2, 3, 4]);
/// // Round 1: the first block of each stage (0, 2, 3); round 2: the second ones (1, 4).
/// assert_eq!(activation_order(&[2, 1, 2], DepthOrder::PerStage), [0, 2, 3, 1, 4]);
/// ```
pub fn activation_order(blocks_per_stage: &[usize], order: DepthOrder) -> Vec<usize> {
    let n: usize = blocks_per_stage.iter().sum();
    match order {
        DepthOrder::Flat => (0..n).collect(),
        DepthOrder::PerStage => {
            let starts: Vec<usize> = blocks_per_stage
                .iter()
                .scan(0, |first, &b| {
                    let start = *first;
                    *first += b;
                    Some(start)
                })
                .collect();
            let rounds = blocks_per_stage.iter().copied().max().unwrap_or(0);
            (0..rounds)
                .flat_map(|j| {
                    blocks_per_stage.iter().zip(&starts).filter(move |(b, _)| j < **b).map(move |(_, s)| s + j)
                })
                .collect()
        }
    }
}

/// The blocks a sub-model of `widths` (one per active block, in activation order) runs under
/// `order` (see [`activation_order`]): `(flat index, active width)` pairs in flat (forward) order.
pub(crate) fn active_in_flat_order(order: &[usize], widths: &[usize]) -> Vec<(usize, usize)> {
    let mut active: Vec<(usize, usize)> = order.iter().copied().zip(widths.iter().copied()).collect();
    active.sort_unstable_by_key(|&(b, _)| b);
    active
}

/// Per block in flat order, the width options `space` (which numbers blocks in `order`) gives
/// it; empty for blocks the space never runs.
pub(crate) fn widths_in_flat_order(order: &[usize], space: &sorted_nn::NestingSpace) -> Vec<Vec<usize>> {
    let mut widths = vec![Vec::new(); order.len()];
    for (r, &b) in order.iter().enumerate().take(space.n_blocks()) {
        widths[b] = space.block_widths(r).to_vec();
    }
    widths
}
