//! One weight matrix of a host-side decoder, in f32 or in 8-bit blocks, with the product every
//! decoding step needs: `x · vᵀ` for a few rows `x` and a sub-model's view `v` (its first rows
//! and first columns).

use std::sync::Arc;

use crate::few_rows::{FEW_ROWS_MAX, PARALLEL_MIN_ELEMENTS, RowMatrix, few_rows_times_transposed_on};
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
    Q8 {
        /// The blocks.
        matrix: Arc<Q8Matrix>,
        /// Multiply with the activations quantized to 8-bit blocks too, in integers
        /// ([`Q8Matrix::times_quantized_transposed`]), instead of in f32
        /// ([`Q8Matrix::times_transposed`]).
        int8_activations: bool,
    },
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
    /// ([`Q8Matrix::quantize`]), multiplied with f32 activations, or with activations quantized
    /// too when `int8_activations`.
    ///
    /// # Panics
    /// As [`Q8Matrix::quantize`].
    pub fn q8(data: &[f32], rows: usize, cols: usize, int8_activations: bool) -> Self {
        Self::Q8 { matrix: Arc::new(Q8Matrix::quantize(data, rows, cols)), int8_activations }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        match self {
            Self::F32 { rows, .. } => *rows,
            Self::Q8 { matrix, .. } => matrix.rows(),
        }
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        match self {
            Self::F32 { cols, .. } => *cols,
            Self::Q8 { matrix, .. } => matrix.cols(),
        }
    }

    /// Bytes one product over the whole matrix streams (f32: 4 per weight; 8-bit: 1.125).
    pub fn bytes(&self) -> usize {
        match self {
            Self::F32 { data, .. } => 4 * data.len(),
            Self::Q8 { matrix, .. } => matrix.bytes(),
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
        self.check(x, m, out, cols);
        if out >= 2 && out * cols >= PARALLEL_MIN_ELEMENTS {
            self.times_split(x, m, out, cols)
        } else {
            self.rows_times(x, m, 0..out, cols)
        }
    }

    /// [`HostMatrix::times_transposed`] with the view's rows always split in two halves over
    /// two threads (rayon's pool), each half on one thread.
    pub(crate) fn times_split(&self, x: &[f32], m: usize, out: usize, cols: usize) -> Vec<f32> {
        self.check(x, m, out, cols);
        if out < 2 {
            return self.rows_times(x, m, 0..out, cols);
        }
        let half = out / 2;
        let (a, b) = rayon::join(|| self.rows_times(x, m, 0..half, cols), || self.rows_times(x, m, half..out, cols));
        join_columns(a, b, m)
    }

    /// `[m, rows.len()]`: `x` times weight rows `rows` (their first `cols` values), on the
    /// calling thread.
    pub(crate) fn rows_times(&self, x: &[f32], m: usize, rows: std::ops::Range<usize>, cols: usize) -> Vec<f32> {
        if m > FEW_ROWS_MAX && cols > 0 && !rows.is_empty() {
            return self.many_rows_times(x, m, rows, cols);
        }
        match self {
            Self::Q8 { matrix, int8_activations } => matrix.rows_times_transposed(x, m, rows, cols, *int8_activations),
            Self::F32 { data, rows: all, cols: width } => {
                let view = RowMatrix::new(data, *all, cols, *width).rows_in(rows);
                let mut result = Vec::with_capacity(m * view.rows());
                for group in x.chunks(FEW_ROWS_MAX * cols.max(1)) {
                    result.extend(few_rows_times_transposed_on(group, group.len() / cols.max(1), view, false));
                }
                result
            }
        }
    }

    /// [`HostMatrix::rows_times`] for more rows than the few-row kernels take (a prompt): a
    /// blocked matrix product (matrixmultiply's, through ndarray), 8-bit weights expanded to
    /// f32 [`Self::EXPANDED_ROWS`] rows at a time into a buffer that stays in the cache. The
    /// activations stay f32 here, also with [`HostMatrix::Q8`]'s `int8_activations`.
    fn many_rows_times(&self, x: &[f32], m: usize, rows: std::ops::Range<usize>, cols: usize) -> Vec<f32> {
        use ndarray::{ArrayView2, ArrayViewMut2, Axis, ShapeBuilder, Slice};
        let n = rows.len();
        let x = ArrayView2::from_shape((m, cols), x).expect("x is m rows of cols");
        let mut result = vec![0.0f32; m * n];
        let mut out = ArrayViewMut2::from_shape((m, n), &mut result).expect("m x n");
        match self {
            Self::F32 { data, cols: width, .. } => {
                let start = rows.start * width;
                let w = ArrayView2::from_shape(
                    (n, cols).strides((*width, 1)),
                    &data[start..start + (n - 1) * width + cols],
                )
                .expect("a view inside the matrix");
                ndarray::linalg::general_mat_mul(1.0, &x, &w.t(), 0.0, &mut out);
            }
            Self::Q8 { matrix, .. } => {
                let mut buffer = vec![0.0f32; Self::EXPANDED_ROWS * cols];
                for first in rows.clone().step_by(Self::EXPANDED_ROWS) {
                    let count = (rows.end - first).min(Self::EXPANDED_ROWS);
                    for (j, row) in buffer.chunks_exact_mut(cols).take(count).enumerate() {
                        matrix.expand_row(first + j, cols, row);
                    }
                    let w = ArrayView2::from_shape((count, cols), &buffer[..count * cols]).expect("expanded rows");
                    let offset = first - rows.start;
                    let mut part = out.slice_axis_mut(Axis(1), Slice::from(offset..offset + count));
                    ndarray::linalg::general_mat_mul(1.0, &x, &w.t(), 0.0, &mut part);
                }
            }
        }
        result
    }

    /// 8-bit weight rows expanded to f32 at a time by [`HostMatrix::many_rows_times`].
    const EXPANDED_ROWS: usize = 64;

    /// # Panics
    /// If `m` is 0, the view does not fit the matrix, or `x.len() != m * cols`.
    fn check(&self, x: &[f32], m: usize, out: usize, cols: usize) {
        assert!(m > 0, "HostMatrix::times_transposed: no rows");
        assert!(
            out <= self.rows() && cols <= self.cols(),
            "HostMatrix::times_transposed: a {out} x {cols} view of a {} x {} matrix",
            self.rows(),
            self.cols()
        );
        assert_eq!(x.len(), m * cols, "HostMatrix::times_transposed: x has {} values, expected {m} x {cols}", x.len());
    }
}

/// The `[m, a + b]` rows made of `a`'s (`[m, a]`) and then `b`'s (`[m, b]`) columns.
pub(crate) fn join_columns(a: Vec<f32>, b: Vec<f32>, m: usize) -> Vec<f32> {
    if m == 1 {
        return [a, b].concat();
    }
    let (left, right) = (a.len() / m, b.len() / m);
    let mut result = Vec::with_capacity(a.len() + b.len());
    for r in 0..m {
        result.extend_from_slice(&a[r * left..(r + 1) * left]);
        result.extend_from_slice(&b[r * right..(r + 1) * right]);
    }
    result
}
