//! The sub-model vocabulary of a sorted transformer encoder or decoder: depth x attention heads x
//! FFN width x hidden width, each a prefix of the allocated size, shared by every active layer.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::SpecError;
use crate::nesting_space::check_ascending;

/// The file-shaped description of a transformer nesting space (`[space]` of a transformer
/// experiment). Every axis lists ascending options; the last is the allocated size.
///
/// ```toml
/// [space]
/// depths = [2, 4, 6]        # active layers (a prefix of the stack)
/// heads = [3, 6, 9, 12]     # active attention heads per layer (the first h; head dim fixed)
/// ffn = [768, 1536]         # active FFN units per layer
/// hidden = [384]            # active hidden (embedding) width; one option = not nested
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerSpaceConfig {
    /// Ascending depth options (active layers).
    pub depths: Vec<usize>,
    /// Ascending options for the number of active attention heads.
    pub heads: Vec<usize>,
    /// Ascending options for the active FFN inner width.
    pub ffn: Vec<usize>,
    /// Ascending options for the active hidden width (default: not nested, the model's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
}

/// A validated transformer space: the cartesian product of its axes' options.
///
/// Enumeration order: depth slowest, then hidden width, heads, FFN width (fastest).
///
/// # Example
/// ```
/// use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
///
/// let space = TransformerSpace::new(
///     TransformerSpaceConfig { depths: vec![3, 6], heads: vec![6, 12], ffn: vec![768, 1536], hidden: None },
///     384,
/// )?;
/// assert_eq!(space.len(), 8);
/// let full = space.largest();
/// assert_eq!((full.depth, full.heads, full.ffn, full.hidden), (6, 12, 1536, 384));
/// assert_eq!(full.to_string(), "L6-H12-F1536");
/// assert_eq!(space.parse_sub_model("L3-H6-F768")?, space.smallest());
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformerSpace {
    depths: Vec<usize>,
    heads: Vec<usize>,
    ffn: Vec<usize>,
    hidden: Vec<usize>,
}

/// One transformer sub-model: the first `depth` layers, each with its first `heads` attention
/// heads and `ffn` FFN units, on the first `hidden` features.
///
/// Displays as `L{depth}-H{heads}-F{ffn}`, with `-D{hidden}` appended when the hidden width is
/// a nested axis ([`TransformerSpace::parse_sub_model`] reads it back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TransformerSubModel {
    /// Active layers.
    pub depth: usize,
    /// Active attention heads per layer.
    pub heads: usize,
    /// Active FFN units per layer.
    pub ffn: usize,
    /// Active hidden width.
    pub hidden: usize,
    /// Whether the hidden width is nested in its space (only changes how it displays).
    #[serde(skip)]
    show_hidden: bool,
}

impl fmt::Display for TransformerSubModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}-H{}-F{}", self.depth, self.heads, self.ffn)?;
        if self.show_hidden {
            write!(f, "-D{}", self.hidden)?;
        }
        Ok(())
    }
}

impl TransformerSpace {
    /// Validates `config` for a model whose allocated hidden width is `d_model` (the default
    /// and only `hidden` option when the config leaves it out).
    ///
    /// # Errors
    /// [`SpecError`] naming the key (`heads[1]`, ...) for an empty, zero or non-ascending list.
    pub fn new(config: TransformerSpaceConfig, d_model: usize) -> Result<Self, SpecError> {
        check_ascending("depths", &config.depths)?;
        check_ascending("heads", &config.heads)?;
        check_ascending("ffn", &config.ffn)?;
        let hidden = config.hidden.unwrap_or_else(|| vec![d_model]);
        check_ascending("hidden", &hidden)?;
        Ok(Self { depths: config.depths, heads: config.heads, ffn: config.ffn, hidden })
    }

    /// The file form of this space.
    pub fn to_config(&self) -> TransformerSpaceConfig {
        TransformerSpaceConfig {
            depths: self.depths.clone(),
            heads: self.heads.clone(),
            ffn: self.ffn.clone(),
            hidden: Some(self.hidden.clone()),
        }
    }

    /// Depth options.
    pub fn depths(&self) -> &[usize] {
        &self.depths
    }
    /// Head-count options.
    pub fn heads(&self) -> &[usize] {
        &self.heads
    }
    /// FFN width options.
    pub fn ffn(&self) -> &[usize] {
        &self.ffn
    }
    /// Hidden width options.
    pub fn hidden(&self) -> &[usize] {
        &self.hidden
    }

    /// The number of sub-models.
    pub fn len(&self) -> usize {
        self.depths.len() * self.heads.len() * self.ffn.len() * self.hidden.len()
    }

    /// Always false: a validated space has at least one sub-model.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn make(&self, depth: usize, heads: usize, ffn: usize, hidden: usize) -> TransformerSubModel {
        TransformerSubModel { depth, heads, ffn, hidden, show_hidden: self.hidden.len() > 1 }
    }

    /// The full model.
    pub fn largest(&self) -> TransformerSubModel {
        let last = |v: &[usize]| *v.last().expect("validated non-empty");
        self.make(last(&self.depths), last(&self.heads), last(&self.ffn), last(&self.hidden))
    }

    /// The smallest sub-model.
    pub fn smallest(&self) -> TransformerSubModel {
        self.make(self.depths[0], self.heads[0], self.ffn[0], self.hidden[0])
    }

    /// The sub-model with option indices `[depth, heads, ffn, hidden]`.
    ///
    /// # Errors
    /// [`SpecError::OptionIndex`] when an index is out of range (`block` is the axis number).
    pub fn sub_model_from_indices(&self, indices: [usize; 4]) -> Result<TransformerSubModel, SpecError> {
        let axes = [&self.depths, &self.heads, &self.ffn, &self.hidden];
        let mut v = [0; 4];
        for (a, (axis, &i)) in axes.iter().zip(&indices).enumerate() {
            v[a] = *axis.get(i).ok_or(SpecError::OptionIndex { block: a, index: i, n_options: axis.len() })?;
        }
        Ok(self.make(v[0], v[1], v[2], v[3]))
    }

    /// The `index`-th sub-model in enumeration order.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn nth(&self, index: usize) -> TransformerSubModel {
        assert!(index < self.len(), "sub-model index {index} out of range for a space of {}", self.len());
        let (nf, nh, nd) = (self.ffn.len(), self.heads.len(), self.hidden.len());
        let f = index % nf;
        let h = (index / nf) % nh;
        let d = (index / (nf * nh)) % nd;
        let l = index / (nf * nh * nd);
        self.sub_model_from_indices([l, h, f, d]).expect("in range")
    }

    /// Every sub-model in enumeration order.
    pub fn iter(&self) -> impl Iterator<Item = TransformerSubModel> + '_ {
        (0..self.len()).map(|i| self.nth(i))
    }

    /// The sub-model with these sizes.
    ///
    /// # Errors
    /// [`SpecError::Depth`] or [`SpecError::NotAnAxisOption`] when a size is not an option of
    /// its axis.
    pub fn sub_model(
        &self,
        depth: usize,
        heads: usize,
        ffn: usize,
        hidden: usize,
    ) -> Result<TransformerSubModel, SpecError> {
        if !self.depths.contains(&depth) {
            return Err(SpecError::Depth { depth, allowed: self.depths.clone() });
        }
        for (name, value, axis) in
            [("heads", heads, &self.heads), ("ffn", ffn, &self.ffn), ("hidden", hidden, &self.hidden)]
        {
            if !axis.contains(&value) {
                return Err(SpecError::NotAnAxisOption { axis: name.into(), value, allowed: axis.to_vec() });
            }
        }
        Ok(self.make(depth, heads, ffn, hidden))
    }

    /// Parses `L{depth}-H{heads}-F{ffn}[-D{hidden}]` (any order, case-insensitive; an axis left
    /// out takes its largest option), or `full`/`largest`/`smallest`.
    ///
    /// # Errors
    /// [`SpecError::Parse`] for unreadable text, and the errors of
    /// [`TransformerSpace::sub_model`].
    pub fn parse_sub_model(&self, text: &str) -> Result<TransformerSubModel, SpecError> {
        let text = text.trim();
        match text {
            "full" | "largest" => return Ok(self.largest()),
            "smallest" => return Ok(self.smallest()),
            _ => {}
        }
        let bad = || SpecError::Parse {
            text: text.to_string(),
            expected:
                "`L<depth>-H<heads>-F<ffn>` with an optional `-D<hidden>` (e.g. L3-H6-F768), 'full' or 'smallest'"
                    .into(),
        };
        let full = self.largest();
        let (mut l, mut h, mut f, mut d) = (full.depth, full.heads, full.ffn, full.hidden);
        for part in text.split('-') {
            let part = part.trim();
            let mut chars = part.chars();
            let key = chars.next().ok_or_else(bad)?.to_ascii_uppercase();
            let value: usize = chars.as_str().parse().map_err(|_| bad())?;
            match key {
                'L' => l = value,
                'H' => h = value,
                'F' => f = value,
                'D' => d = value,
                _ => return Err(bad()),
            }
        }
        self.sub_model(l, h, f, d)
    }

    /// Whether `sub` is a member of this space.
    pub fn contains(&self, sub: &TransformerSubModel) -> bool {
        self.sub_model(sub.depth, sub.heads, sub.ffn, sub.hidden).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> TransformerSpace {
        TransformerSpace::new(
            TransformerSpaceConfig { depths: vec![2, 4, 6], heads: vec![3, 6, 12], ffn: vec![768, 1536], hidden: None },
            384,
        )
        .unwrap()
    }

    #[test]
    fn enumerates_every_sub_model_once_and_round_trips_the_text_form() {
        let s = space();
        let all: Vec<_> = s.iter().collect();
        assert_eq!(all.len(), 18);
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 18);
        assert_eq!(all[0], s.smallest());
        assert_eq!(all[17], s.largest());
        for sub in &all {
            assert_eq!(s.parse_sub_model(&sub.to_string()).unwrap(), *sub);
        }
        assert_eq!(s.parse_sub_model("l4").unwrap().to_string(), "L4-H12-F1536");
    }

    #[test]
    fn rejects_bad_configs_and_sizes_naming_them() {
        let err = TransformerSpace::new(
            TransformerSpaceConfig { depths: vec![1], heads: vec![4, 2], ffn: vec![8], hidden: None },
            16,
        )
        .unwrap_err();
        assert!(err.to_string().contains("heads[1]"), "{err}");
        let s = space();
        assert!(s.parse_sub_model("L5").unwrap_err().to_string().contains("depth 5"));
        assert!(s.parse_sub_model("L2-H5").unwrap_err().to_string().contains("`heads` = 5"));
        assert!(s.parse_sub_model("X2").is_err());
    }
}
