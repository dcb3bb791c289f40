//! Widths that follow other widths, and width options scaled from an allocation.
//!
//! Several layers of the residual models have no width option of their own: the stem follows
//! the first block, MobileNetV2's expansion follows its block's input. The rules live here so
//! the sliced forward, the cost and the extraction share one definition.

use sorted_nn::{NestingSpace, NestingSpaceConfig, SpecError};

/// `ceil(allocated_to * active / allocated_from)`, clamped to `1..=allocated_to`: the width of a
/// layer allocated at `allocated_to` that scales with another layer's active width `active` of
/// `allocated_from`. Equal allocations give `active` itself.
pub(crate) fn proportional(active: usize, allocated_from: usize, allocated_to: usize) -> usize {
    (allocated_to * active).div_ceil(allocated_from).clamp(1, allocated_to)
}

/// The space whose block `b` has the `n_widths` options `ceil(allocated[b] * k / n_widths)`,
/// `k = 1..=n_widths` (so the last option is the allocation).
///
/// # Errors
/// [`SpecError::Allocation`] when the deepest option exceeds the allocated blocks,
/// [`SpecError::Zero`] for `n_widths == 0`, and the errors of [`NestingSpace::new`] (for example
/// when a block has fewer channels than `n_widths`, so two options coincide).
pub(crate) fn scaled_space(
    allocated: &[usize],
    depths: Vec<usize>,
    n_widths: usize,
    tie_widths: bool,
) -> Result<NestingSpace, SpecError> {
    if n_widths == 0 {
        return Err(SpecError::Zero { key: "n_widths".into() });
    }
    let n_blocks = depths.last().copied().unwrap_or(0);
    if n_blocks > allocated.len() {
        return Err(SpecError::Allocation { what: "depth".into(), allocated: allocated.len(), needed: n_blocks });
    }
    let block_widths =
        allocated[..n_blocks].iter().map(|&c| (1..=n_widths).map(|k| (c * k).div_ceil(n_widths)).collect()).collect();
    NestingSpace::new(NestingSpaceConfig { depths, widths: None, block_widths: Some(block_widths), tie_widths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_widths() {
        assert_eq!(proportional(3, 4, 4), 3);
        assert_eq!(proportional(2, 3, 4), 3);
        assert_eq!(proportional(1, 16, 4), 1);
        assert_eq!(proportional(16, 16, 32), 32);
    }

    #[test]
    fn scaled_space_options() {
        let space = scaled_space(&[16, 32], vec![1, 2], 4, true).unwrap();
        assert_eq!(space.block_widths(0), &[4, 8, 12, 16]);
        assert_eq!(space.block_widths(1), &[8, 16, 24, 32]);
        assert_eq!(space.len(), 8);
        assert!(scaled_space(&[3], vec![1], 4, false).is_err());
        assert!(scaled_space(&[8], vec![1, 2], 2, false).is_err());
    }
}
