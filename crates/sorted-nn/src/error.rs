//! Typed errors of the sub-model vocabulary.

use thiserror::Error;

/// An invalid nesting space or sub-model. Every variant names the offending key or block and
/// what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpecError {
    /// A list of options is empty.
    #[error("`{key}` is empty: expected at least one option")]
    Empty {
        /// The key path, e.g. `depths`.
        key: String,
    },
    /// An option is zero.
    #[error("`{key}` is 0: sizes must be at least 1")]
    Zero {
        /// The key path, e.g. `widths[0]`.
        key: String,
    },
    /// Options are not strictly ascending.
    #[error("`{key}` = {got} is not larger than the option before it ({previous}): options must be strictly ascending")]
    NotAscending {
        /// The key path of the offending option.
        key: String,
        /// The option before it.
        previous: usize,
        /// The offending option.
        got: usize,
    },
    /// An option beyond the sizes a space supports.
    #[error("`{key}` holds {got}, more than the supported maximum of {max}")]
    TooLarge {
        /// The key path.
        key: String,
        /// The largest supported value.
        max: usize,
        /// The offending value.
        got: usize,
    },
    /// A required key is missing.
    #[error("missing `{key}`")]
    Missing {
        /// The missing key.
        key: String,
    },
    /// Two keys contradict each other.
    #[error("conflicting `{keys}`: {why}")]
    Conflict {
        /// The keys involved.
        keys: String,
        /// What is wrong.
        why: String,
    },
    /// A per-block list does not have one entry per allocated block.
    #[error("`{key}` has {got} entries, expected {expected} (one per allocated block, the largest depth)")]
    BlockCount {
        /// The key path.
        key: String,
        /// The number of allocated blocks.
        expected: usize,
        /// The number of entries given.
        got: usize,
    },
    /// A depth that is not one of the options.
    #[error("depth {depth} is not a depth option; allowed: {allowed:?}")]
    Depth {
        /// The requested depth.
        depth: usize,
        /// The depth options.
        allowed: Vec<usize>,
    },
    /// A width that is not one of its block's options.
    #[error("width {width} is not an option of block {block}; allowed: {allowed:?}")]
    NotAnOption {
        /// The block index.
        block: usize,
        /// The requested width.
        width: usize,
        /// The block's width options.
        allowed: Vec<usize>,
    },
    /// A size that is not one of a named axis's options (transformer spaces: `heads`, `ffn`,
    /// `hidden`).
    #[error("`{axis}` = {value} is not an option; allowed: {allowed:?}")]
    NotAnAxisOption {
        /// The axis name.
        axis: String,
        /// The requested size.
        value: usize,
        /// The axis's options.
        allowed: Vec<usize>,
    },
    /// A width option index out of range.
    #[error("block {block} has {n_options} width options, index {index} is out of range")]
    OptionIndex {
        /// The block index.
        block: usize,
        /// The requested option index.
        index: usize,
        /// The number of options of that block.
        n_options: usize,
    },
    /// Text that does not describe a sub-model.
    #[error("cannot read sub-model `{text}`: expected {expected}")]
    Parse {
        /// The text given.
        text: String,
        /// What was expected.
        expected: String,
    },
    /// A space that does not fit a model's allocation.
    #[error("{what}: the model allocates {allocated}, the space needs {needed}")]
    Allocation {
        /// What does not fit, e.g. `block 2 width`.
        what: String,
        /// The allocated size.
        allocated: usize,
        /// The size the space needs.
        needed: usize,
    },
}
