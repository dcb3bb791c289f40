//! One weight matrix of a host-side decoder, in f32 or in 8-bit blocks, with the product every
//! decoding step needs: `x · vᵀ` for a few rows `x` and a sub-model's view `v` (its first rows
//! and first columns).

use std::sync::Arc;

use crate::few_rows::{FEW_ROWS_MAX, RowMatrix, few_rows_times_transposed};
use crate::q8_rows::Q8Matrix;

/// A row-major `[out, in]` weight matrix (a projection stored transposed, or an embedding table
/// used as a tied head), shared cheaply between decoders (`Arc`).
#[derive(Clone, Debug, PartialEq)]
pub enum HostMatrix {
    /// f32 values, `rows x cols`, row-major.
    F32 {
        /// The values.
        data: Arc<[f32]>,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// 8-bit blocks ([`Q8Matrix`]).
    Q8(Arc<Q8Matrix>),
}

impl HostMatrix {
    /// The row-major `rows x cols` matrix `data` in f32.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    pub fn f32(data: impl Into<Arc<[f32]>>, rows: usize, cols: usize) -> Self {
        let data = data.into();
        assert_eq!(data.len(), rows * cols, "HostMatrix: {rows} x {cols} is not {} values", data.len());
        Self::F32 { data, rows, cols }
    }

    /// The row-major `rows x cols` matrix `data` quantized to 8-bit blocks
    /// ([`Q8Matrix::quantize`]).
    ///
    /// # Panics
    /// As [`Q8Matrix::quantize`].
    pub fn q8(data: &[f32], rows: usize, cols: usize) -> Self {
        Self::Q8(Arc::new(Q8Matrix::quantize(data, rows, cols)))
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        match self {
            Self::F32 { rows, .. } => *rows,
            Self::Q8(q) => q.rows(),
        }
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        match self {
            Self::F32 { cols, .. } => *cols,
            Self::Q8(q) => q.cols(),
        }
    }

    /// Bytes one product over the whole matrix streams (f32: 4 per weight; 8-bit: 1.125).
    pub fn bytes(&self) -> usize {
        match self {
            Self::F32 { data, .. } => 4 * data.len(),
            Self::Q8(q) => q.bytes(),
        }
    }

    /// `x · vᵀ` as a row-major `[m, out]` vector, for `x` the contiguous `[m, cols]` rows and
    /// `v` the first `out` rows and first `cols` columns of this matrix. Any `m`: rows are
    /// taken [`FEW_ROWS_MAX`] at a time, each group streaming the view once.
    ///
    /// # Panics
    /// If `m` is 0, the view does not fit the matrix, or `x.len() != m * cols`.
    ///
    /// # Example
    /// ```
    /// use sorted_kernels::HostMatrix;
    ///
    /// let w = HostMatrix::f32(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3, 2);
    /// assert_eq!(w.times_transposed(&[1.0, 2.0], 1, 3, 2), vec![1.0, 2.0, 3.0]);
    /// // The first 2 rows and the first column.
    /// assert_eq!(w.times_transposed(&[5.0], 1, 2, 1), vec![5.0, 0.0]);
    /// ```
    pub fn times_transposed(&self, x: &[f32], m: usize, out: usize, cols: usize) -> Vec<f32> {
        match self {
            Self::Q8(q) => q.times_transposed(x, m, out, cols),
            Self::F32 { data, rows, cols: width } => {
                assert!(m > 0, "HostMatrix::times_transposed: no rows");
                assert!(
                    out <= *rows && cols <= *width,
                    "HostMatrix::times_transposed: a {out} x {cols} view of a {rows} x {width} matrix"
                );
                assert_eq!(
                    x.len(),
                    m * cols,
                    "HostMatrix::times_transposed: x has {} values, expected {m} x {cols}",
                    x.len()
                );
                let view = RowMatrix::new(data, out, cols, *width);
                if m <= FEW_ROWS_MAX {
                    return few_rows_times_transposed(x, m, view);
                }
                let mut result = Vec::with_capacity(m * out);
                for group in x.chunks(FEW_ROWS_MAX * cols) {
                    result.extend(few_rows_times_transposed(group, group.len() / cols, view));
                }
                result
            }
        }
    }
}
