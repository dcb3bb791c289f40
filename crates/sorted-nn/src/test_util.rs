//! Shared checkers of nesting invariants, for this workspace's tests and for users who build
//! their own sorted models (feature `test-util`).

use std::ops::Range;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{TensorData, Tolerance};

/// Asserts that the gradient of `param` is exactly zero outside the `active` block (one range
/// per dimension) and not all zero inside it. A parameter with no gradient at all fails: use
/// [`assert_no_grad`] for blocks that a sub-model must not touch.
///
/// # Panics
/// When the invariant does not hold, naming the parameter and the offending magnitude.
#[track_caller]
pub fn assert_zero_grad_outside<B: AutodiffBackend, const D: usize>(
    name: &str,
    param: &Param<Tensor<B, D>>,
    grads: &B::Gradients,
    active: [Range<usize>; D],
) {
    let grad = param.grad(grads).unwrap_or_else(|| panic!("{name}: no gradient at all"));
    let inside = grad.clone().slice(active.clone()).abs().max().into_scalar().elem::<f64>();
    assert!(inside > 0.0, "{name}: gradient inside the active block {active:?} is all zero");
    let outside = grad.slice_fill(active.clone(), 0.0).abs().max().into_scalar().elem::<f64>();
    assert_eq!(outside, 0.0, "{name}: gradient outside the active block {active:?} has max |g| = {outside:e}");
}

/// Asserts that `param` received no gradient (a block beyond the active depth).
///
/// # Panics
/// When a gradient exists.
#[track_caller]
pub fn assert_no_grad<B: AutodiffBackend, const D: usize>(
    name: &str,
    param: &Param<Tensor<B, D>>,
    grads: &B::Gradients,
) {
    if let Some(g) = param.grad(grads) {
        let m = g.abs().max().into_scalar().elem::<f64>();
        assert_eq!(m, 0.0, "{name}: expected no gradient, got max |g| = {m:e}");
    }
}

/// Asserts that two tensors (a sliced forward and its dense equivalent) agree within an absolute
/// and relative tolerance of `tol`.
///
/// # Panics
/// When shapes differ or an element differs by more than the tolerance.
#[track_caller]
pub fn assert_matches_dense<B: Backend, const D: usize>(sorted: Tensor<B, D>, dense: Tensor<B, D>, tol: f64) {
    assert_eq!(sorted.dims(), dense.dims(), "shapes differ");
    let a: TensorData = sorted.into_data();
    let b: TensorData = dense.into_data();
    a.assert_approx_eq::<f32>(&b, Tolerance::absolute(tol).set_relative(tol));
}

/// Asserts that `small` equals the leading block of `large` (prefix sharing between two
/// extracted sub-models or between a sub-model and the allocated parameter).
///
/// # Panics
/// When `small` is larger than `large` in any dimension or the values differ.
#[track_caller]
pub fn assert_prefix_shared<B: Backend, const D: usize>(name: &str, small: Tensor<B, D>, large: Tensor<B, D>) {
    let ds = small.dims();
    let dl = large.dims();
    assert!(ds.iter().zip(dl.iter()).all(|(s, l)| s <= l), "{name}: {ds:?} is not a prefix of {dl:?}");
    let ranges: [Range<usize>; D] = std::array::from_fn(|i| 0..ds[i]);
    let prefix = large.slice(ranges);
    assert_eq!(prefix.into_data(), small.into_data(), "{name}: values differ from the prefix");
}
