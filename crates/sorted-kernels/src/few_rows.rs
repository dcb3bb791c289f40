//! `x · wᵀ` for a few rows `x`, streaming each row of `w` once.

use pulp::{Simd, WithSimd};

/// Most rows of `x` the kernel takes (one accumulator register per row and SIMD lane group).
pub const FEW_ROWS_MAX: usize = 8;

/// Matrices `w` with at least this many elements are split between two threads: below it the
/// work is too short to pay for the hand-over (measured on a 2-core AMD EPYC: a `576 x 576`
/// product is about as fast on one thread, a `1536 x 576` one 1.1-1.5x faster on two).
pub const PARALLEL_MIN_ELEMENTS: usize = 600_000;

/// A read-only row-major matrix whose rows may be strided: row `i` is
/// `data[i * row_stride..i * row_stride + cols]`. A view of a larger matrix's first rows and
/// columns is one (`row_stride` = the larger matrix's width).
#[derive(Clone, Copy, Debug)]
pub struct RowMatrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> RowMatrix<'a> {
    /// The `rows x cols` matrix in `data` with consecutive rows `row_stride` elements apart.
    ///
    /// # Panics
    /// If `row_stride < cols`, or `data` is too short for the last row.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(row_stride >= cols, "RowMatrix: row stride {row_stride} is below the {cols} columns");
        let needed = if rows == 0 { 0 } else { (rows - 1) * row_stride + cols };
        assert!(
            data.len() >= needed,
            "RowMatrix: {rows} rows of {cols} (stride {row_stride}) need {needed} elements, the slice has {}",
            data.len()
        );
        Self { data, rows, cols, row_stride }
    }

    /// A contiguous `rows x cols` matrix.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    pub fn contiguous(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "RowMatrix: {rows} x {cols} is not {} elements", data.len());
        Self::new(data, rows, cols, cols)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Rows `rows` of this matrix.
    ///
    /// # Panics
    /// If `rows` reaches past the last row.
    pub(crate) fn rows_in(&self, rows: std::ops::Range<usize>) -> Self {
        assert!(rows.start <= rows.end && rows.end <= self.rows, "RowMatrix: rows {rows:?} of {}", self.rows);
        Self { data: &self.data[(rows.start * self.row_stride).min(self.data.len())..], rows: rows.len(), ..*self }
    }

    fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.row_stride..i * self.row_stride + self.cols]
    }
}

/// `x · wᵀ` as a row-major `[m, n]` vector, for `x` the contiguous `[m, k]` rows and `w` a
/// `[n, k]` matrix (a weight stored `[out, in]`, or an embedding table for tied logits).
///
/// Each row of `w` is read once and multiplied with all `m` rows of `x` (fused multiply-adds
/// in the widest SIMD the CPU has, found at run time), so the cost is close to one pass over
/// `w` for any `m <= FEW_ROWS_MAX`; the rows of `w` are split over two threads (rayon's pool)
/// when `w` has at least [`PARALLEL_MIN_ELEMENTS`] elements. The sums run in a different order
/// than a blocked matrix multiply, so results agree with one to float rounding.
///
/// # Panics
/// If `m` is 0 or above [`FEW_ROWS_MAX`], or `x.len() != m * w.cols()`.
///
/// # Example
///
/// ```
/// use sorted_kernels::{RowMatrix, few_rows_times_transposed};
///
/// // Two rows times a 3 x 2 matrix transposed.
/// let x = [1.0, 2.0, 3.0, 4.0];
/// let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
/// let y = few_rows_times_transposed(&x, 2, RowMatrix::contiguous(&w, 3, 2));
/// assert_eq!(y, vec![1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
/// ```
pub fn few_rows_times_transposed(x: &[f32], m: usize, w: RowMatrix<'_>) -> Vec<f32> {
    few_rows_times_transposed_on(x, m, w, w.rows >= 2 && w.rows * w.cols >= PARALLEL_MIN_ELEMENTS)
}

/// [`few_rows_times_transposed`], the rows of `w` split over two threads only when `parallel`.
pub(crate) fn few_rows_times_transposed_on(x: &[f32], m: usize, w: RowMatrix<'_>, parallel: bool) -> Vec<f32> {
    assert!((1..=FEW_ROWS_MAX).contains(&m), "few_rows_times_transposed: {m} rows, expected 1 to {FEW_ROWS_MAX}");
    let (n, k) = (w.rows, w.cols);
    assert_eq!(x.len(), m * k, "few_rows_times_transposed: x has {} elements, expected {m} rows of {k}", x.len());
    let mut by_row = vec![0.0f32; n * m];
    let parallel = parallel && n >= 2;
    run_for_rows(m, Run { w, x, by_row: &mut by_row, parallel });
    if m == 1 {
        return by_row;
    }
    let mut out = vec![0.0f32; m * n];
    transpose_by_row(&by_row, m, &mut out);
    out
}

/// Writes `by_row` (`[n, m]`: each weight row's dots with the `m` rows of `x`) into `out` as
/// `[m, n]`, the product's row-major layout.
pub(crate) fn transpose_by_row(by_row: &[f32], m: usize, out: &mut [f32]) {
    let n = by_row.len() / m;
    for (o, dots) in by_row.chunks_exact(m).enumerate() {
        for (r, v) in dots.iter().enumerate() {
            out[r * n + o] = *v;
        }
    }
}

/// A kernel over `M` rows of `x` at once, `M` fixed at compile time (one accumulator per row).
pub(crate) trait RowsKernel {
    /// Runs the kernel with `M` rows.
    fn run<const M: usize>(self);
}

/// Runs `kernel` with `M` = `m` rows (1 to [`FEW_ROWS_MAX`]; anything above 7 runs as 8).
pub(crate) fn run_for_rows(m: usize, kernel: impl RowsKernel) {
    match m {
        1 => kernel.run::<1>(),
        2 => kernel.run::<2>(),
        3 => kernel.run::<3>(),
        4 => kernel.run::<4>(),
        5 => kernel.run::<5>(),
        6 => kernel.run::<6>(),
        7 => kernel.run::<7>(),
        _ => kernel.run::<8>(),
    }
}

/// Fills `by_row` (`[n, M]`) with `dots(first, out)`, which fills the `out.len() / M` weight
/// rows from `first`: all `n` rows at once, or in two halves on two threads when `parallel`.
pub(crate) fn fill_by_row<const M: usize>(by_row: &mut [f32], parallel: bool, dots: impl Fn(usize, &mut [f32]) + Sync) {
    if parallel {
        let half = by_row.len() / M / 2;
        let (a, b) = by_row.split_at_mut(half * M);
        rayon::join(|| dots(0, a), || dots(half, b));
    } else {
        dots(0, by_row);
    }
}

/// Fills `by_row` (`[n, M]`: each row of `w` dotted with each row of `x`), the rows of `w`
/// in two halves on two threads when `parallel`.
struct Run<'a> {
    w: RowMatrix<'a>,
    x: &'a [f32],
    by_row: &'a mut [f32],
    parallel: bool,
}

impl RowsKernel for Run<'_> {
    fn run<const M: usize>(self) {
        let Run { w, x, by_row, parallel } = self;
        let arch = pulp::Arch::new();
        fill_by_row::<M>(by_row, parallel, |first, out| arch.dispatch(Dots::<M> { w, first, x, out }));
    }
}

/// Dot products of rows `first..first + out.len() / M` of `w` with the `M` rows of `x`.
struct Dots<'a, const M: usize> {
    w: RowMatrix<'a>,
    first: usize,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl<const M: usize> WithSimd for Dots<'_, M> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Dots { w, first, x, out } = self;
        let k = w.cols;
        let rows: [(&[S::f32s], &[f32]); M] = std::array::from_fn(|r| S::as_simd_f32s(&x[r * k..(r + 1) * k]));
        for (j, dots) in out.chunks_exact_mut(M).enumerate() {
            row_dots(simd, w.row(first + j), &rows, dots);
        }
    }
}

/// `dots[r]` = `w_row` dotted with row `r` of `x` (split into its SIMD part and tail), for each
/// of the `M` rows: fused multiply-adds over the SIMD part, then the reduced sum plus the tail.
/// The f32 kernels share it (here and `Q8Dots` in `q8_rows.rs`, on an expanded weight row).
#[inline(always)]
pub(crate) fn row_dots<S: Simd, const M: usize>(
    simd: S,
    w_row: &[f32],
    rows: &[(&[S::f32s], &[f32]); M],
    dots: &mut [f32],
) {
    let (wv, wt) = S::as_simd_f32s(w_row);
    let mut acc = [simd.splat_f32s(0.0); M];
    for (c, wc) in wv.iter().enumerate() {
        for r in 0..M {
            acc[r] = simd.mul_add_f32s(*wc, rows[r].0[c], acc[r]);
        }
    }
    for r in 0..M {
        let tail: f32 = wt.iter().zip(rows[r].1).map(|(a, b)| a * b).sum();
        dots[r] = simd.reduce_sum_f32s(acc[r]) + tail;
    }
}
