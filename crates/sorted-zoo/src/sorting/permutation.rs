//! Orders from scores, and permutations applied to tensors and layers.
//!
//! An order `order` lists old unit indices in their new positions: new unit `i` is old unit
//! `order[i]`, so `permute_axis(t, dim, order)` is `t.select(dim, order)`.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;
use sorted_nn::SortedLinear;

/// The indices of `scores` from the highest score to the lowest; ties keep their original order
/// (a stable sort), so equal scores leave the units where they were.
///
/// # Example
/// ```
/// use sorted_zoo::sorting::descending_order;
///
/// assert_eq!(descending_order(&[0.1, 3.0, 0.5, 3.0]), vec![1, 3, 2, 0]);
/// ```
pub fn descending_order(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// The per-group descending order of `scores` laid out group-major (`groups` equal blocks):
/// units are sorted within their block and never leave it. This is how LLaMA's query heads are
/// sorted within their KV group.
///
/// # Panics
/// If `groups` is 0 or does not divide `scores.len()`.
///
/// # Example
/// ```
/// use sorted_zoo::sorting::grouped_order;
///
/// // Two groups of two: group 0 swaps, group 1 stays.
/// assert_eq!(grouped_order(&[1.0, 2.0, 5.0, 4.0], 2), vec![1, 0, 2, 3]);
/// ```
pub fn grouped_order(scores: &[f32], groups: usize) -> Vec<usize> {
    assert!(
        groups > 0 && scores.len().is_multiple_of(groups),
        "grouped_order: {} scores in {groups} groups",
        scores.len()
    );
    let size = scores.len() / groups;
    scores
        .chunks(size)
        .enumerate()
        .flat_map(|(g, chunk)| descending_order(chunk).into_iter().map(move |i| g * size + i))
        .collect()
}

/// Expands an order of blocks (e.g. heads) into an order of their `block` features each
/// (e.g. a head's `head_dim` columns), keeping the features inside a block in place.
///
/// # Example
/// ```
/// use sorted_zoo::sorting::expand_blocks;
///
/// assert_eq!(expand_blocks(&[1, 0], 2), vec![2, 3, 0, 1]);
/// ```
pub fn expand_blocks(order: &[usize], block: usize) -> Vec<usize> {
    order.iter().flat_map(|&b| (b * block)..(b * block + block)).collect()
}

/// `t` with its indices along `dim` reordered: position `i` holds old index `order[i]`.
///
/// # Panics
/// If `order` is not a permutation of `0..t.dims()[dim]` (a bug: orders are built from
/// validated scores).
pub fn permute_axis<B: Backend, const D: usize>(t: Tensor<B, D>, dim: usize, order: &[usize]) -> Tensor<B, D> {
    let n = t.dims()[dim];
    assert!(is_permutation(order, n), "permute_axis: {order:?} is not a permutation of 0..{n} (dim {dim})");
    let indices: Vec<i64> = order.iter().map(|&i| i as i64).collect();
    let indices = Tensor::<B, 1, Int>::from_data(TensorData::new(indices, [n]), &t.device());
    t.select(dim, indices)
}

fn is_permutation(order: &[usize], n: usize) -> bool {
    let mut seen = vec![false; n];
    order.len() == n && order.iter().all(|&i| i < n && !std::mem::replace(&mut seen[i], true))
}

/// A parameter with its values permuted along `dim`, keeping its id (so a checkpoint or an
/// optimizer still knows it) and its require-grad flag; the new value is a fresh leaf.
pub(crate) fn permute_param<B: Backend, const D: usize>(
    p: Param<Tensor<B, D>>,
    dim: usize,
    order: &[usize],
) -> Param<Tensor<B, D>> {
    p.map(|t| {
        let require_grad = t.is_require_grad();
        let out = permute_axis(t, dim, order).detach();
        if require_grad { out.require_grad() } else { out }
    })
}

/// `layer` with its output units (weight columns and bias) reordered by `order`.
///
/// # Panics
/// If `order` is not a permutation of the layer's outputs.
pub fn permute_outputs<B: Backend>(layer: SortedLinear<B>, order: &[usize]) -> SortedLinear<B> {
    SortedLinear { weight: permute_param(layer.weight, 1, order), bias: layer.bias.map(|b| permute_param(b, 0, order)) }
}

/// `layer` with its input features (weight rows) reordered by `order`; the bias is untouched.
///
/// # Panics
/// If `order` is not a permutation of the layer's inputs.
pub fn permute_inputs<B: Backend>(layer: SortedLinear<B>, order: &[usize]) -> SortedLinear<B> {
    SortedLinear { weight: permute_param(layer.weight, 0, order), bias: layer.bias }
}

/// `order` extended with the identity up to `n`: permutes the first `order.len()` indices only.
pub(crate) fn extend_identity(order: &[usize], n: usize) -> Vec<usize> {
    order.iter().copied().chain(order.len()..n).collect()
}
