//! `x · wᵀ` for a few rows `x`: the products of KV-cached decoding.
//!
//! A decoding step multiplies 1 to 8 rows (the new positions) by every weight matrix. On the
//! Flex backend, burn's matmul calls `gemm` 0.19, which takes a matrix-vector path only for a
//! single row and from two rows on runs packed kernels whose cost barely changes from 2 to 6
//! rows: verifying 3 drafted tokens cost 2.1x one greedy step. [`matmul_by_transposed`] hands
//! such products to `sorted_kernels::few_rows_times_transposed`, which streams each weight row
//! once against all the rows of `x`, so a few rows cost about what one does. Measured on a
//! 2-core AMD EPYC (Zen 3): `docs/results/smollm2-soft.md`, "Few-row products".
//!
//! Every other backend, and Flex outside the few-row case, uses burn's matmul: the result is
//! the same product either way (up to float summation order).

use burn::prelude::*;

/// Most rows the few-row kernel takes; more go to burn's matmul (prefill, scoring).
pub const FEW_ROWS_MAX: usize = 8;

/// A single row takes the kernel only for matrices of at least this many elements (4 Mi: the
/// tied head, not the layers): there the product is bound by memory bandwidth and the
/// kernel's two threads help (6.4 against 4.5 ms for SmolLM2's head, criterion). Single rows
/// of the layer matrices were faster in `gemm`'s matrix-vector path, both alone (0.022 against
/// 0.030 ms at `576 x 576`) and over 30 streamed layers (35-36 against 39-44 ms per step).
pub const SINGLE_ROW_MIN_ELEMENTS: usize = 1 << 22;

/// `x · wᵀ` (`[m, n]`) for `x` `[m, k]` and `w` `[n, k]`, e.g. hidden states times a weight
/// matrix stored as `[out, in]`, or times the tied embedding for logits. `w` may be a view of
/// a larger matrix (its first rows and columns).
///
/// On Flex with f32 data (the `flex` feature) and at most [`FEW_ROWS_MAX`] rows, a few-row
/// kernel computes it (see the module docs); otherwise burn's matmul does. Autodiff tensors
/// always take burn's matmul, so gradients are unaffected.
///
/// # Panics
/// If the inner dimensions differ.
///
/// # Example
///
/// ```
/// use burn::prelude::*;
/// use burn_flex::Flex;
/// use sorted_zoo::llama::matmul_by_transposed;
///
/// let device = Default::default();
/// let x = Tensor::<Flex, 2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
/// let w = Tensor::<Flex, 2>::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], &device);
/// let y = matmul_by_transposed(x, w);
/// assert_eq!(y.into_data().to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
/// ```
pub fn matmul_by_transposed<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    let ([m, k], [n, kw]) = (x.dims(), w.dims());
    assert_eq!(k, kw, "matmul_by_transposed: x is [{m}, {k}] but w is [{n}, {kw}]");
    match few_row_product(&x, &w) {
        Some(y) => y,
        None => w.matmul(x.transpose()).transpose(),
    }
}

/// The few-row kernel of [`matmul_by_transposed`] alone: `Some(x · wᵀ)` when it applies
/// (Flex, f32, 2 to [`FEW_ROWS_MAX`] rows or one row of a matrix of at least
/// [`SINGLE_ROW_MIN_ELEMENTS`], each row of `w` contiguous in memory), `None` otherwise (then
/// use burn's matmul), and always `None` without the `flex` feature.
///
/// # Example
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::prelude::*;
/// use sorted_zoo::llama::few_row_product;
///
/// let device = Default::default();
/// let x = Tensor::<Flex, 2>::ones([3, 16], &device);
/// let w = Tensor::<Flex, 2>::ones([5, 16], &device);
/// assert!(few_row_product(&x, &w).is_some());
/// // Autodiff tensors are left to burn's matmul.
/// let xa = Tensor::<Autodiff<Flex>, 2>::ones([3, 16], &device);
/// let wa = Tensor::<Autodiff<Flex>, 2>::ones([5, 16], &device);
/// assert!(few_row_product(&xa, &wa).is_none());
/// ```
pub fn few_row_product<B: Backend>(x: &Tensor<B, 2>, w: &Tensor<B, 2>) -> Option<Tensor<B, 2>> {
    if x.dims()[1] != w.dims()[1] {
        return None;
    }
    #[cfg(feature = "flex")]
    return flex::few_rows(x, w);
    #[cfg(not(feature = "flex"))]
    None
}

#[cfg(feature = "flex")]
mod flex {
    use std::any::Any;

    use burn::prelude::*;
    use burn::tensor::{DType, TensorData, TensorPrimitive};
    use burn_flex::FlexTensor;
    use sorted_kernels::{RowMatrix, few_rows_times_transposed};

    use super::{FEW_ROWS_MAX, SINGLE_ROW_MIN_ELEMENTS};

    const _: () = assert!(FEW_ROWS_MAX == sorted_kernels::FEW_ROWS_MAX);

    /// The Flex tensor behind `t`, if `B` is Flex.
    fn flex_of<B: Backend>(t: &Tensor<B, 2>) -> Option<FlexTensor> {
        match t.clone().into_primitive() {
            TensorPrimitive::Float(p) => (&p as &dyn Any).downcast_ref::<FlexTensor>().cloned(),
            TensorPrimitive::QFloat(_) => None,
        }
    }

    /// `x · wᵀ` through the kernel, or `None` when this is not a few-row f32 product on Flex.
    pub(super) fn few_rows<B: Backend>(x: &Tensor<B, 2>, w: &Tensor<B, 2>) -> Option<Tensor<B, 2>> {
        let ([m, k], [n, _]) = (x.dims(), w.dims());
        if m == 0 || m > FEW_ROWS_MAX || k == 0 || n == 0 || (m == 1 && n * k < SINGLE_ROW_MIN_ELEMENTS) {
            return None;
        }
        let (xf, wf) = (flex_of(x)?, flex_of(w)?);
        if xf.dtype() != DType::F32 || wf.dtype() != DType::F32 {
            return None;
        }
        // Each row of `w` must be contiguous (a view of a larger matrix's first columns is).
        let layout = wf.layout();
        let strides = layout.strides();
        if strides[1] != 1 || strides[0] < k as isize {
            return None;
        }
        let (row_stride, start) = (strides[0] as usize, layout.start_offset());
        let storage = wf.storage::<f32>();
        if start + (n - 1) * row_stride + k > storage.len() {
            return None;
        }
        let w = RowMatrix::new(&storage[start..], n, k, row_stride);
        let xf = if xf.is_contiguous() { xf } else { xf.to_contiguous() };
        let y = few_rows_times_transposed(xf.as_slice::<f32>()?, m, w);
        let boxed: Box<dyn Any> = Box::new(FlexTensor::from_data(TensorData::new(y, [m, n])));
        let p = *boxed.downcast::<B::FloatTensorPrimitive>().ok()?;
        Some(Tensor::from_primitive(TensorPrimitive::Float(p)))
    }
}
