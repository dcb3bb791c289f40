//! The sub-model vocabulary: nested axes, the space of sub-models, and one sub-model.
//!
//! This module is pure data: no tensors, no I/O. A [`NestingSpace`] is validated once, when it is
//! built from its file-shaped [`NestingSpaceConfig`]; a [`SubModel`] can only be made through a
//! space, so every `SubModel` value fits the space it came from and forward passes never see bad
//! sizes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// The file-shaped description of a nesting space, as it appears in a TOML experiment config
/// (`[space]`).
///
/// Validate it into a [`NestingSpace`] with [`NestingSpace::new`] (or `TryFrom`).
///
/// ```toml
/// [space]
/// depths = [1, 2, 3, 4]          # ascending; the last is the number of allocated blocks
/// widths = [32, 64, 128, 256]    # ascending width options, the same for every block
/// tie_widths = false             # false: each active block picks its own width
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestingSpaceConfig {
    /// Ascending depth options (number of active blocks); the last one is the allocated depth.
    pub depths: Vec<usize>,
    /// Ascending width options shared by every block. Give this or `block_widths`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// Ascending width options per allocated block (one list per block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_widths: Option<Vec<Vec<usize>>>,
    /// When true, all active blocks use the same option index (one width choice per sub-model);
    /// when false, each active block chooses its own width.
    #[serde(default)]
    pub tie_widths: bool,
}

/// A validated space of nested sub-models: depth options times width options per block.
///
/// Sub-models are enumerated in a stable order: by depth (ascending), then by the width option
/// indices of the active blocks, the first block varying slowest.
///
/// # Example
/// ```
/// use sorted_nn::{NestingSpace, NestingSpaceConfig};
///
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1, 2],
///     widths: Some(vec![8, 16]),
///     block_widths: None,
///     tie_widths: false,
/// })?;
/// // depth 1: 2 choices; depth 2: 2 x 2 choices.
/// assert_eq!(space.len(), 6);
/// assert_eq!(space.largest().widths(), &[16, 16]);
/// assert_eq!(space.smallest().widths(), &[8]);
/// let all: Vec<_> = space.iter().collect();
/// assert_eq!(all[0], space.smallest());
/// assert_eq!(all[5], space.largest());
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestingSpace {
    depths: Vec<usize>,
    block_widths: Vec<Vec<usize>>,
    tie_widths: bool,
}

/// One sub-model: the active depth and the active width of each active block.
///
/// Only a [`NestingSpace`] builds one ([`NestingSpace::sub_model`], [`NestingSpace::iter`], ...),
/// so a value always fits its space. It displays as its widths joined by `-` (for example
/// `64-128-32`), which [`NestingSpace::parse_sub_model`] reads back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SubModel {
    widths: Vec<usize>,
}

impl SubModel {
    /// The number of active blocks.
    pub fn depth(&self) -> usize {
        self.widths.len()
    }

    /// The active width of each active block (`widths().len() == depth()`).
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// The active width of the last active block (what the shared head reads).
    pub fn last_width(&self) -> usize {
        *self.widths.last().expect("a sub-model has at least one block")
    }
}

impl fmt::Display for SubModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.widths.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            write!(f, "{w}")?;
        }
        Ok(())
    }
}

pub(crate) fn check_ascending(key: &str, values: &[usize]) -> Result<(), SpecError> {
    if values.is_empty() {
        return Err(SpecError::Empty { key: key.to_string() });
    }
    for (i, &v) in values.iter().enumerate() {
        if v == 0 {
            return Err(SpecError::Zero { key: format!("{key}[{i}]") });
        }
        if i > 0 && v <= values[i - 1] {
            return Err(SpecError::NotAscending { key: format!("{key}[{i}]"), previous: values[i - 1], got: v });
        }
    }
    Ok(())
}

/// The most blocks a space may allocate: far beyond any real network, small enough that a
/// mistyped depth is an error instead of an allocation that aborts.
pub const MAX_BLOCKS: usize = 4096;

/// The widest option a space may give a block (units, channels or FFN width); whether the whole
/// model fits in memory is checked where the model's shape is known.
pub const MAX_WIDTH: usize = 1 << 24;

impl TryFrom<NestingSpaceConfig> for NestingSpace {
    type Error = SpecError;

    fn try_from(config: NestingSpaceConfig) -> Result<Self, SpecError> {
        Self::new(config)
    }
}

impl NestingSpace {
    /// Validates a config into a space.
    ///
    /// # Errors
    /// [`SpecError`] naming the key (`depths[2]`, `block_widths[1][0]`, ...) when a list is empty,
    /// holds a zero, is not strictly ascending, when both or neither of `widths` and
    /// `block_widths` are given, when `block_widths` does not have one list per allocated block,
    /// or when `tie_widths` is set but the blocks have different numbers of options.
    pub fn new(config: NestingSpaceConfig) -> Result<Self, SpecError> {
        check_ascending("depths", &config.depths)?;
        let n_blocks = *config.depths.last().expect("checked non-empty");
        if n_blocks > MAX_BLOCKS {
            return Err(SpecError::TooLarge {
                key: format!("depths[{}]", config.depths.len() - 1),
                max: MAX_BLOCKS,
                got: n_blocks,
            });
        }
        let all_widths = config.widths.iter().chain(config.block_widths.iter().flatten());
        if let Some(&w) = all_widths.flatten().find(|&&w| w > MAX_WIDTH) {
            let key = if config.widths.is_some() { "widths" } else { "block_widths" };
            return Err(SpecError::TooLarge { key: key.into(), max: MAX_WIDTH, got: w });
        }
        let block_widths = match (config.widths, config.block_widths) {
            (Some(_), Some(_)) => {
                return Err(SpecError::Conflict {
                    keys: "widths, block_widths".into(),
                    why: "give one of them, not both".into(),
                });
            }
            (None, None) => {
                return Err(SpecError::Missing { key: "widths (or block_widths)".into() });
            }
            (Some(widths), None) => {
                check_ascending("widths", &widths)?;
                vec![widths; n_blocks]
            }
            (None, Some(blocks)) => {
                if blocks.len() != n_blocks {
                    return Err(SpecError::BlockCount {
                        key: "block_widths".into(),
                        expected: n_blocks,
                        got: blocks.len(),
                    });
                }
                for (b, widths) in blocks.iter().enumerate() {
                    check_ascending(&format!("block_widths[{b}]"), widths)?;
                }
                blocks
            }
        };
        if config.tie_widths {
            let n = block_widths[0].len();
            if let Some(b) = block_widths.iter().position(|w| w.len() != n) {
                return Err(SpecError::Conflict {
                    keys: format!("tie_widths, block_widths[{b}]"),
                    why: format!(
                        "tied widths need the same number of options in every block ({n} in block 0, {} in block {b})",
                        block_widths[b].len()
                    ),
                });
            }
        }
        Ok(Self { depths: config.depths, block_widths, tie_widths: config.tie_widths })
    }

    /// The file-shaped form of this space (round-trips through [`NestingSpace::new`]).
    pub fn to_config(&self) -> NestingSpaceConfig {
        let first = &self.block_widths[0];
        let shared = self.block_widths.iter().all(|w| w == first);
        NestingSpaceConfig {
            depths: self.depths.clone(),
            widths: shared.then(|| first.clone()),
            block_widths: (!shared).then(|| self.block_widths.clone()),
            tie_widths: self.tie_widths,
        }
    }

    /// The ascending depth options.
    pub fn depths(&self) -> &[usize] {
        &self.depths
    }

    /// The ascending width options of allocated block `block`.
    ///
    /// # Panics
    /// If `block >= self.n_blocks()`.
    pub fn block_widths(&self, block: usize) -> &[usize] {
        &self.block_widths[block]
    }

    /// Whether all active blocks share one width option index.
    pub fn tie_widths(&self) -> bool {
        self.tie_widths
    }

    /// The number of allocated blocks (the largest depth option).
    pub fn n_blocks(&self) -> usize {
        *self.depths.last().expect("validated non-empty")
    }

    /// The allocated width of every block (the last option of each).
    pub fn allocated_widths(&self) -> Vec<usize> {
        self.block_widths.iter().map(|w| *w.last().expect("validated non-empty")).collect()
    }

    /// The number of sub-models at depth `depth` (0 when `depth` is not a depth option).
    pub fn len_at_depth(&self, depth: usize) -> usize {
        if !self.depths.contains(&depth) {
            return 0;
        }
        if self.tie_widths {
            self.block_widths[0].len()
        } else {
            self.block_widths[..depth].iter().map(Vec::len).fold(1usize, usize::saturating_mul)
        }
    }

    /// The number of sub-models in the space (saturating at `usize::MAX` for astronomically
    /// large per-block spaces).
    pub fn len(&self) -> usize {
        self.depths.iter().map(|&d| self.len_at_depth(d)).fold(0usize, usize::saturating_add)
    }

    /// Always false: a validated space holds at least one sub-model.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The full model: largest depth, largest width of every block.
    pub fn largest(&self) -> SubModel {
        SubModel { widths: self.allocated_widths() }
    }

    /// The smallest sub-model: smallest depth, smallest width of every active block.
    pub fn smallest(&self) -> SubModel {
        let depth = self.depths[0];
        SubModel { widths: self.block_widths[..depth].iter().map(|w| w[0]).collect() }
    }

    /// Builds the sub-model with the given width option *indices* for its active blocks
    /// (`indices.len()` is the depth).
    ///
    /// # Errors
    /// [`SpecError`] when the depth is not an option, an index is out of range, or the indices
    /// differ while widths are tied.
    pub fn sub_model_from_indices(&self, indices: &[usize]) -> Result<SubModel, SpecError> {
        let depth = indices.len();
        self.check_depth(depth)?;
        if self.tie_widths && indices.iter().any(|&i| i != indices[0]) {
            return Err(SpecError::Conflict {
                keys: "tie_widths".into(),
                why: format!("widths are tied but the option indices differ: {indices:?}"),
            });
        }
        let mut widths = Vec::with_capacity(depth);
        for (b, &i) in indices.iter().enumerate() {
            let options = &self.block_widths[b];
            let w = *options.get(i).ok_or(SpecError::OptionIndex { block: b, index: i, n_options: options.len() })?;
            widths.push(w);
        }
        Ok(SubModel { widths })
    }

    /// Builds the sub-model with the given active widths (`widths.len()` is the depth).
    ///
    /// # Errors
    /// [`SpecError::NotAnOption`] naming the block and the allowed widths when a width is not an
    /// option of its block, and the errors of [`NestingSpace::sub_model_from_indices`].
    pub fn sub_model(&self, widths: &[usize]) -> Result<SubModel, SpecError> {
        self.check_depth(widths.len())?;
        let mut indices = Vec::with_capacity(widths.len());
        for (b, &w) in widths.iter().enumerate() {
            let options = &self.block_widths[b];
            let i = options.iter().position(|&o| o == w).ok_or_else(|| SpecError::NotAnOption {
                block: b,
                width: w,
                allowed: options.clone(),
            })?;
            indices.push(i);
        }
        self.sub_model_from_indices(&indices)
    }

    /// Parses a sub-model written as its widths joined by `-` or `,` (`64-128-32`, the
    /// [`Display`](fmt::Display) form), or one of the words `full`/`largest` and `smallest`.
    ///
    /// # Errors
    /// [`SpecError::Parse`] for text that is not a list of numbers, and the errors of
    /// [`NestingSpace::sub_model`].
    pub fn parse_sub_model(&self, text: &str) -> Result<SubModel, SpecError> {
        let text = text.trim();
        match text {
            "full" | "largest" => return Ok(self.largest()),
            "smallest" => return Ok(self.smallest()),
            _ => {}
        }
        let widths =
            text.split(['-', ',']).map(|part| part.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>().map_err(
                |_| SpecError::Parse {
                    text: text.to_string(),
                    expected: "widths joined by '-' (e.g. 64-128-32), 'full' or 'smallest'".into(),
                },
            )?;
        self.sub_model(&widths)
    }

    /// The width option indices of `sub` (one per active block).
    ///
    /// # Panics
    /// If `sub` does not come from this space (a bug).
    pub fn indices_of(&self, sub: &SubModel) -> Vec<usize> {
        sub.widths
            .iter()
            .enumerate()
            .map(|(b, w)| {
                self.block_widths[b]
                    .iter()
                    .position(|o| o == w)
                    .unwrap_or_else(|| panic!("sub-model {sub} is not in this space (block {b})"))
            })
            .collect()
    }

    /// The `index`-th sub-model in enumeration order (see [`NestingSpace::iter`]).
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn nth(&self, index: usize) -> SubModel {
        let mut rest = index;
        for &depth in &self.depths {
            let n = self.len_at_depth(depth);
            if rest < n {
                let indices = if self.tie_widths {
                    vec![rest; depth]
                } else {
                    // Mixed radix, the first block varying slowest.
                    let mut indices = vec![0; depth];
                    for b in (0..depth).rev() {
                        let radix = self.block_widths[b].len();
                        indices[b] = rest % radix;
                        rest /= radix;
                    }
                    indices
                };
                return self.sub_model_from_indices(&indices).expect("indices in range");
            }
            rest -= n;
        }
        panic!("sub-model index {index} out of range for a space of {}", self.len())
    }

    /// Every sub-model, in the stable enumeration order.
    pub fn iter(&self) -> impl Iterator<Item = SubModel> + '_ {
        (0..self.len()).map(|i| self.nth(i))
    }

    /// Whether `sub` is a member of this space.
    pub fn contains(&self, sub: &SubModel) -> bool {
        self.sub_model(&sub.widths).is_ok()
    }

    fn check_depth(&self, depth: usize) -> Result<(), SpecError> {
        if self.depths.contains(&depth) {
            Ok(())
        } else {
            Err(SpecError::Depth { depth, allowed: self.depths.clone() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(depths: &[usize], widths: &[usize], tie: bool) -> NestingSpace {
        NestingSpace::new(NestingSpaceConfig {
            depths: depths.to_vec(),
            widths: Some(widths.to_vec()),
            block_widths: None,
            tie_widths: tie,
        })
        .unwrap()
    }

    #[test]
    fn counts_per_block_and_tied() {
        assert_eq!(space(&[1, 2, 3, 4], &[32, 64, 128, 256], false).len(), 4 + 16 + 64 + 256);
        assert_eq!(space(&[1, 2, 3, 4], &[32, 64, 128, 256], true).len(), 16);
    }

    #[test]
    fn nth_enumerates_every_sub_model_once_and_round_trips() {
        let s = space(&[1, 3], &[4, 8, 12], false);
        let all: Vec<_> = s.iter().collect();
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        assert_eq!(all.len(), 3 + 27);
        for sub in &all {
            assert_eq!(&s.parse_sub_model(&sub.to_string()).unwrap(), sub);
            assert!(s.contains(sub));
        }
        assert_eq!(all[3].widths(), &[4, 4, 4]);
        assert_eq!(all[4].widths(), &[4, 4, 8]);
    }

    #[test]
    fn rejects_bad_configs_naming_the_key() {
        let err = NestingSpace::new(NestingSpaceConfig {
            depths: vec![1, 3, 2],
            widths: Some(vec![8]),
            block_widths: None,
            tie_widths: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("depths[2]"), "{err}");
        let err = NestingSpace::new(NestingSpaceConfig {
            depths: vec![2],
            widths: None,
            block_widths: Some(vec![vec![8, 16], vec![16, 16]]),
            tie_widths: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("block_widths[1][1]"), "{err}");
    }

    #[test]
    fn rejects_sub_models_outside_the_space() {
        let s = space(&[1, 2], &[8, 16], false);
        assert!(s.sub_model(&[8, 16, 16]).unwrap_err().to_string().contains("depth 3"));
        assert!(s.sub_model(&[12]).unwrap_err().to_string().contains("12"));
        assert!(s.parse_sub_model("8-x").is_err());
    }
}
