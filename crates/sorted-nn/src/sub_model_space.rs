//! [`SubModelSpace`]: what every space of sub-models offers the samplers (sorted-sched), written
//! beside the spaces themselves ([`NestingSpace`], [`TransformerSpace`]).

use std::fmt::Debug;

use crate::{NestingSpace, SpecError, SubModel, TransformerSpace, TransformerSubModel};

/// An enumerable set of sub-models with a largest and a smallest member, drawable axis by axis.
///
/// Drawing "uniformly over the axes" is one loop for every space: while
/// [`SubModelSpace::next_axis_options`] names a next axis, pick one of its options; then
/// [`SubModelSpace::sub_model_from_axes`] builds the sub-model. (sorted-sched's samplers draw the
/// indices from their seeded streams.)
///
/// ```
/// use sorted_nn::{NestingSpace, NestingSpaceConfig, SubModelSpace};
///
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1, 2],
///     widths: Some(vec![8, 16]),
///     block_widths: None,
///     tie_widths: false,
/// })?;
/// // Depth option 1 (2 blocks), then a width option for each of the two blocks.
/// assert_eq!(space.next_axis_options(&[]), Some(2));
/// assert_eq!(space.next_axis_options(&[1]), Some(2));
/// assert_eq!(space.next_axis_options(&[1, 0, 1]), None);
/// assert_eq!(space.sub_model_from_axes(&[1, 0, 1]).to_string(), "8-16");
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
pub trait SubModelSpace: Clone + Debug + Send + Sync + 'static {
    /// The sub-model type.
    type SubModel: Clone + Debug + Send + Sync + 'static;
    /// The number of sub-models.
    fn count(&self) -> usize;
    /// The `index`-th sub-model in the space's enumeration order.
    fn nth_sub_model(&self, index: usize) -> Self::SubModel;
    /// The full model.
    fn largest_sub_model(&self) -> Self::SubModel;
    /// The smallest sub-model.
    fn smallest_sub_model(&self) -> Self::SubModel;
    /// The number of options of the next axis to draw after the option indices `drawn`, or
    /// `None` when `drawn` determines a sub-model.
    fn next_axis_options(&self, drawn: &[usize]) -> Option<usize>;
    /// The sub-model of option indices drawn axis by axis (`drawn` complete, each index below
    /// its axis's option count).
    ///
    /// # Panics
    /// If `drawn` is not a complete, in-range draw (a bug in the caller).
    fn sub_model_from_axes(&self, drawn: &[usize]) -> Self::SubModel;
    /// Reads a sub-model from its text form.
    ///
    /// # Errors
    /// [`SpecError`] when the text names no member of the space.
    fn parse(&self, text: &str) -> Result<Self::SubModel, SpecError>;
}

/// Axes: the depth option, then a width option per active block (one shared option when widths
/// are tied).
impl SubModelSpace for NestingSpace {
    type SubModel = SubModel;
    fn count(&self) -> usize {
        self.len()
    }
    fn nth_sub_model(&self, index: usize) -> SubModel {
        self.nth(index)
    }
    fn largest_sub_model(&self) -> SubModel {
        self.largest()
    }
    fn smallest_sub_model(&self) -> SubModel {
        self.smallest()
    }
    fn next_axis_options(&self, drawn: &[usize]) -> Option<usize> {
        let Some(&depth_index) = drawn.first() else { return Some(self.depths().len()) };
        let depth = self.depths()[depth_index];
        let block = drawn.len() - 1;
        let last_axis = if self.tie_widths() { 1 } else { depth };
        (block < last_axis).then(|| self.block_widths(block).len())
    }
    fn sub_model_from_axes(&self, drawn: &[usize]) -> SubModel {
        let depth = self.depths()[drawn[0]];
        let indices: Vec<usize> = if self.tie_widths() { vec![drawn[1]; depth] } else { drawn[1..].to_vec() };
        self.sub_model_from_indices(&indices).expect("indices drawn in range")
    }
    fn parse(&self, text: &str) -> Result<SubModel, SpecError> {
        self.parse_sub_model(text)
    }
}

/// Axes: depth, heads, FFN width, hidden width.
impl SubModelSpace for TransformerSpace {
    type SubModel = TransformerSubModel;
    fn count(&self) -> usize {
        self.len()
    }
    fn nth_sub_model(&self, index: usize) -> TransformerSubModel {
        self.nth(index)
    }
    fn largest_sub_model(&self) -> TransformerSubModel {
        self.largest()
    }
    fn smallest_sub_model(&self) -> TransformerSubModel {
        self.smallest()
    }
    fn next_axis_options(&self, drawn: &[usize]) -> Option<usize> {
        [self.depths().len(), self.heads().len(), self.ffn().len(), self.hidden().len()].get(drawn.len()).copied()
    }
    fn sub_model_from_axes(&self, drawn: &[usize]) -> TransformerSubModel {
        let indices: [usize; 4] = drawn.try_into().expect("four axes drawn");
        self.sub_model_from_indices(indices).expect("indices drawn in range")
    }
    fn parse(&self, text: &str) -> Result<TransformerSubModel, SpecError> {
        self.parse_sub_model(text)
    }
}
