//! What the staged vision networks (ResNet, MobileNetV2) share: stages of blocks of one
//! allocated width each, activated in a [`DepthOrder`], from which the block order, the
//! allocation per block and a scaled space of sub-models follow.

use sorted_nn::{NestingSpace, SpecError};

use crate::DepthOrder;
use crate::vision::depth_order::activation_order;
use crate::vision::scaling::scaled_space;

/// A network config made of stages of blocks (`SortedResNetConfig`, `SortedMobileNetV2Config`).
/// Implementors give their stages' shapes and depth order; the rest is provided.
///
/// ```
/// use sorted_zoo::{SortedResNetConfig, StagedNetworkConfig};
///
/// let config = SortedResNetConfig::resnet20();
/// assert_eq!((config.n_blocks(), config.blocks_per_stage()), (9, vec![3, 3, 3]));
/// let space = config.scaled_space(vec![3, 6, 9], 4, true)?;
/// assert_eq!(space.len(), 3 * 4);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
pub trait StagedNetworkConfig {
    /// `(blocks, allocated channels)` of every stage, in order.
    fn stage_shapes(&self) -> Vec<(usize, usize)>;

    /// The order in which deeper sub-models activate blocks.
    fn block_order(&self) -> DepthOrder;

    /// The blocks per stage.
    fn blocks_per_stage(&self) -> Vec<usize> {
        self.stage_shapes().into_iter().map(|(blocks, _)| blocks).collect()
    }

    /// Entry `r` is the flat index of the `r`-th block a deeper sub-model adds (see
    /// [`activation_order`](crate::activation_order)).
    fn activation_order(&self) -> Vec<usize> {
        activation_order(&self.blocks_per_stage(), self.block_order())
    }

    /// The number of blocks (the largest depth a space may have).
    fn n_blocks(&self) -> usize {
        self.stage_shapes().into_iter().map(|(blocks, _)| blocks).sum()
    }

    /// The allocated output channels of every block, in activation order (the order of the
    /// space's blocks; flat order by default).
    fn allocated_widths(&self) -> Vec<usize> {
        let flat: Vec<usize> = self
            .stage_shapes()
            .into_iter()
            .flat_map(|(blocks, channels)| std::iter::repeat_n(channels, blocks))
            .collect();
        self.activation_order().into_iter().map(|b| flat[b]).collect()
    }

    /// The space of `depths` (ascending numbers of active blocks) times `n_widths` width options
    /// per block, `ceil(c * k / n_widths)` for `k = 1..=n_widths` of each block's allocation
    /// `c` (blocks in activation order); with `tie_widths`, option `k` means the same fraction
    /// in every block.
    ///
    /// # Errors
    /// [`SpecError`] when the deepest option exceeds [`Self::n_blocks`], `n_widths` is 0, a
    /// block has fewer channels than `n_widths` (two options would coincide), or `depths` is
    /// not a valid depth list.
    fn scaled_space(&self, depths: Vec<usize>, n_widths: usize, tie_widths: bool) -> Result<NestingSpace, SpecError> {
        scaled_space(&self.allocated_widths(), depths, n_widths, tie_widths)
    }
}

/// Gives a staged config (`SortedResNetConfig`, `SortedMobileNetV2Config`) what both have in the
/// same form: [`StagedNetworkConfig`] and the inherent `with_input`, `with_switchable_bn`,
/// `validate` and (private) `switchable`. `validate` checks, through [`check_staged_sizes`],
/// that none of the top-level `sizes` and, in every stage, none of the `stage_sizes` is 0; the
/// error names the key, which is the field's name. The config has the fields `in_channels`,
/// `input_hw`, `n_classes`, `stages` (each with `blocks` and `channels`), `switchable_widths`
/// and `depth_order`.
macro_rules! staged_config {
    ($config:ident, sizes: [$($size:ident),+], stage_sizes: [$($stage_size:ident),+]) => {
        impl $config {
            /// The same model for other inputs (for example `1, [28, 28], 10` for Fashion-MNIST).
            pub fn with_input(mut self, in_channels: usize, input_hw: [usize; 2], n_classes: usize) -> Self {
                self.in_channels = in_channels;
                self.input_hw = input_hw;
                self.n_classes = n_classes;
                self
            }

            #[doc = concat!(
                "Gives every BatchNorm private statistics for each channel option of `space` (which\n",
                "numbers blocks in the activation order); the other BatchNorms' options follow (see\n",
                "[`", stringify!($config), "::switchable_widths`]).",
            )]
            pub fn with_switchable_bn(mut self, space: &::sorted_nn::NestingSpace) -> Self {
                let order = $crate::StagedNetworkConfig::activation_order(&self);
                self.switchable_widths = $crate::vision::depth_order::widths_in_flat_order(&order, space);
                self
            }

            #[doc = concat!("Checks sizes that [`", stringify!($config), "::init`] relies on.")]
            ///
            /// # Errors
            /// [`SpecError`](sorted_nn::SpecError) naming the key: no stages, a zero size, or more
            /// `switchable_widths` lists than blocks.
            pub fn validate(&self) -> Result<(), ::sorted_nn::SpecError> {
                $crate::vision::staged_network::check_staged_sizes($crate::vision::staged_network::StagedSizes {
                    has_stages: !self.stages.is_empty(),
                    sizes: &[$((stringify!($size), self.$size)),+],
                    input_hw: self.input_hw,
                    stages: self.stages.iter().map(|s| vec![$((stringify!($stage_size), s.$stage_size)),+]).collect(),
                    n_blocks: $crate::StagedNetworkConfig::n_blocks(self),
                    switchable_lists: self.switchable_widths.len(),
                })
            }

            /// The switchable widths of block `b` (flat order); empty for none.
            fn switchable(&self, b: usize) -> Vec<usize> {
                self.switchable_widths.get(b).cloned().unwrap_or_default()
            }
        }

        impl $crate::StagedNetworkConfig for $config {
            fn stage_shapes(&self) -> Vec<(usize, usize)> {
                self.stages.iter().map(|s| (s.blocks, s.channels)).collect()
            }

            fn block_order(&self) -> $crate::DepthOrder {
                self.depth_order
            }
        }
    };
}
pub(crate) use staged_config;

/// The sizes a staged network's config must have, checked by [`check_staged_sizes`].
pub(crate) struct StagedSizes<'a> {
    /// Whether the config has stages.
    pub has_stages: bool,
    /// Top-level sizes that must not be 0, with their keys.
    pub sizes: &'a [(&'static str, usize)],
    /// The input height and width.
    pub input_hw: [usize; 2],
    /// Per stage, its sizes that must not be 0, with their keys (`channels`, `blocks`, ...).
    pub stages: Vec<Vec<(&'static str, usize)>>,
    /// The number of blocks.
    pub n_blocks: usize,
    /// The number of `switchable_widths` lists given.
    pub switchable_lists: usize,
}

/// Checks what `SortedResNetConfig::init` and `SortedMobileNetV2Config::init` rely on: stages
/// exist, no size is 0 (the error names the key, `stages[i].key` inside a stage), and there are
/// no more `switchable_widths` lists than blocks.
pub(crate) fn check_staged_sizes(s: StagedSizes<'_>) -> Result<(), SpecError> {
    let zero = |key: String| Err(SpecError::Zero { key });
    if !s.has_stages {
        return Err(SpecError::Empty { key: "stages".into() });
    }
    if let Some((key, _)) = s.sizes.iter().find(|(_, v)| *v == 0) {
        return zero(key.to_string());
    }
    if s.input_hw.contains(&0) {
        return zero("input_hw".into());
    }
    for (i, stage) in s.stages.iter().enumerate() {
        if let Some((key, _)) = stage.iter().find(|(_, v)| *v == 0) {
            return zero(format!("stages[{i}].{key}"));
        }
    }
    if s.switchable_lists > s.n_blocks {
        return Err(SpecError::BlockCount {
            key: "switchable_widths".into(),
            expected: s.n_blocks,
            got: s.switchable_lists,
        });
    }
    Ok(())
}
