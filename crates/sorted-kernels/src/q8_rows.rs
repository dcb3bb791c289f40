//! `x · wᵀ` for a few rows `x` and a weight matrix kept in 8-bit blocks (ggml's Q8_0 scheme:
//! 32 signed bytes and one scale per block), read once per product.
//!
//! Decoding a small language model is bound by memory traffic: every token reads every weight
//! once. In f32 that is 4 bytes per weight; here it is 1 byte plus a 4-byte scale per 32
//! (1.125 bytes), so a product streams 3.6x fewer bytes. Each weight row is expanded to f32 in
//! a buffer that stays in the L1 cache and multiplied with all the rows of `x` (fused
//! multiply-adds in the widest SIMD the CPU has), so activations stay f32: the only rounding
//! is the weights' (at most half a step of `max |w| / 127` per block).

use pulp::{Simd, WithSimd};

use crate::few_rows::{
    FEW_ROWS_MAX, PARALLEL_MIN_ELEMENTS, RowsKernel, fill_by_row, row_dots, run_for_rows, transpose_by_row,
};
use crate::q8_int8_dots::Int8Dots;

/// What multiplies the weights: f32 activations, or activations quantized to 8-bit blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    F32Activations,
    Int8Activations,
}

/// Up to [`FEW_ROWS_MAX`] rows of `x`, with 8-bit activations all of `x` quantized and the
/// index of the first of these rows in it, and the weight rows to multiply them with.
#[derive(Clone)]
struct Rows<'a> {
    x: &'a [f32],
    quantized: Option<(&'a Q8Matrix, usize)>,
    weights: std::ops::Range<usize>,
}

/// Weights per block (one scale each), as in ggml's Q8_0.
pub const Q8_BLOCK: usize = 32;

/// A `rows x cols` matrix in 8-bit blocks along its rows: row `i`, block `b` holds
/// `scale[i, b] * q[i, 32 b + j]` for `j < 32` (the last block of a row may be partial).
#[derive(Clone, Debug, PartialEq)]
pub struct Q8Matrix {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    /// `rows * blocks_per_row` scales.
    pub(crate) scales: Vec<f32>,
    /// `rows * cols` quantized values.
    pub(crate) quants: Vec<i8>,
}

impl Q8Matrix {
    /// Quantizes the row-major `rows x cols` matrix `data` block by block as ggml's reference
    /// Q8_0 does: `scale = max |w| / 127`, `q = round(w / scale)`.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`, or a value is not finite.
    ///
    /// # Example
    /// ```
    /// use sorted_kernels::Q8Matrix;
    ///
    /// // Scales 1 and 2: these values are on the grid, so they come back exactly.
    /// let w = Q8Matrix::quantize(&[127.0, -64.0, 254.0, 2.0], 2, 2);
    /// assert_eq!(w.dequantize(), vec![127.0, -64.0, 254.0, 2.0]);
    /// ```
    pub fn quantize(data: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "Q8Matrix: {rows} x {cols} is not {} values", data.len());
        let per_row = cols.div_ceil(Q8_BLOCK);
        let mut scales = Vec::with_capacity(rows * per_row);
        let mut quants = Vec::with_capacity(rows * cols);
        for row in data.chunks_exact(cols.max(1)).take(rows) {
            for block in row.chunks(Q8_BLOCK) {
                assert!(block.iter().all(|v| v.is_finite()), "Q8Matrix: a weight is not finite");
                let max = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let scale = max / 127.0;
                let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
                scales.push(scale);
                quants.extend(block.iter().map(|v| (v * inverse).round().clamp(-127.0, 127.0) as i8));
            }
        }
        Self { rows, cols, scales, quants }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the matrix holds (values and scales): what one product streams.
    pub fn bytes(&self) -> usize {
        self.quants.len() + 4 * self.scales.len()
    }

    /// The matrix back in f32 (row-major), as the product sees it.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.rows * self.cols];
        for (i, row) in out.chunks_exact_mut(self.cols.max(1)).take(self.rows).enumerate() {
            self.expand_row(i, self.cols, row);
        }
        out
    }

    /// The first `cols` values of row `i` in f32, into `out[..cols]`. Whole blocks go through
    /// fixed-size arrays, which the compiler turns into vector conversions (8 or 16 lanes
    /// inside the SIMD dispatch).
    #[inline(always)]
    pub(crate) fn expand_row(&self, i: usize, cols: usize, out: &mut [f32]) {
        let per_row = self.cols.div_ceil(Q8_BLOCK);
        let quants = &self.quants[i * self.cols..i * self.cols + cols];
        let scales = &self.scales[i * per_row..(i + 1) * per_row];
        let whole = cols / Q8_BLOCK;
        let (out_whole, out_tail) = out[..cols].split_at_mut(whole * Q8_BLOCK);
        let (q_whole, q_tail) = quants.split_at(whole * Q8_BLOCK);
        for ((o, q), scale) in out_whole.chunks_exact_mut(Q8_BLOCK).zip(q_whole.chunks_exact(Q8_BLOCK)).zip(scales) {
            let o: &mut [f32; Q8_BLOCK] = o.try_into().expect("a whole block");
            let q: &[i8; Q8_BLOCK] = q.try_into().expect("a whole block");
            for j in 0..Q8_BLOCK {
                o[j] = f32::from(q[j]) * scale;
            }
        }
        if !q_tail.is_empty() {
            let scale = scales[whole];
            for (o, q) in out_tail.iter_mut().zip(q_tail) {
                *o = f32::from(*q) * scale;
            }
        }
    }

    /// `x · vᵀ` as a row-major `[m, out]` vector, for `x` the contiguous `[m, cols]` rows and
    /// `v` the first `out` rows and first `cols` columns of this matrix (a sub-model's view).
    /// Rows of `x` are taken [`FEW_ROWS_MAX`] at a time (each group streams the matrix once);
    /// the matrix rows are split over two threads when the view has at least
    /// [`PARALLEL_MIN_ELEMENTS`] weights.
    ///
    /// # Panics
    /// If `m` is 0, `out > rows`, `cols > self.cols()` or `x.len() != m * cols`.
    ///
    /// # Example
    /// ```
    /// use sorted_kernels::Q8Matrix;
    ///
    /// let w = Q8Matrix::quantize(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3, 2);
    /// // Two rows times all of w, then times its first 2 rows and first column.
    /// assert_eq!(w.times_transposed(&[1.0, 2.0, 3.0, 4.0], 2, 3, 2), vec![1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
    /// assert_eq!(w.times_transposed(&[5.0], 1, 2, 1), vec![5.0, 0.0]);
    /// ```
    pub fn times_transposed(&self, x: &[f32], m: usize, out: usize, cols: usize) -> Vec<f32> {
        self.product(x, m, 0..out, cols, Kernel::F32Activations, false, None)
    }

    /// [`Q8Matrix::times_transposed`] with the rows of `x` quantized to 8-bit blocks as well
    /// (the same scheme, a scale per 32 values of a row), each block's dot product summed in
    /// integers and scaled once, as llama.cpp multiplies Q8_0 weights: about half the
    /// instructions per weight of the f32-activation product, for a second rounding (of the
    /// activations, at most half a step of their block's `max |x| / 127`).
    ///
    /// Activations that are not all finite are multiplied in f32 (as
    /// [`Q8Matrix::times_transposed`] does), so that NaN and infinity propagate.
    ///
    /// # Panics
    /// As [`Q8Matrix::times_transposed`].
    ///
    /// # Example
    /// ```
    /// use sorted_kernels::Q8Matrix;
    ///
    /// // Values on both grids multiply exactly.
    /// let w = Q8Matrix::quantize(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3, 2);
    /// assert_eq!(w.times_quantized_transposed(&[2.0, 254.0], 1, 3, 2), vec![2.0, 254.0, 256.0]);
    /// ```
    pub fn times_quantized_transposed(&self, x: &[f32], m: usize, out: usize, cols: usize) -> Vec<f32> {
        self.product(x, m, 0..out, cols, Kernel::Int8Activations, false, None)
    }

    /// [`Q8Matrix::times_quantized_transposed`] without the AVX2 path, so that it is tested on
    /// x86-64 too.
    #[doc(hidden)]
    pub fn times_quantized_transposed_portable(&self, x: &[f32], m: usize, out: usize, cols: usize) -> Vec<f32> {
        self.product(x, m, 0..out, cols, Kernel::Int8Activations, true, None)
    }

    /// [`Q8Matrix::times_transposed`] without the AVX2 path: the portable code other CPUs
    /// run (expanding each weight row to f32, then pulp's SIMD dispatch), so that it is tested
    /// on x86-64 too.
    #[doc(hidden)]
    pub fn times_transposed_portable(&self, x: &[f32], m: usize, out: usize, cols: usize) -> Vec<f32> {
        self.product(x, m, 0..out, cols, Kernel::F32Activations, true, None)
    }

    /// [`Q8Matrix::times_transposed`] (or with 8-bit activations when `int8`) over weight rows
    /// `rows` only, `[m, rows.len()]`, on the calling thread: for callers that share the work
    /// between threads themselves.
    pub(crate) fn rows_times_transposed(
        &self,
        x: &[f32],
        m: usize,
        rows: std::ops::Range<usize>,
        cols: usize,
        int8: bool,
    ) -> Vec<f32> {
        let kernel = if int8 { Kernel::Int8Activations } else { Kernel::F32Activations };
        self.product(x, m, rows, cols, kernel, false, Some(false))
    }

    /// `[m, rows.len()]`: `x` times weight rows `rows` (their first `cols` values), in two
    /// halves on two threads when `parallel` (default: for views of at least
    /// [`PARALLEL_MIN_ELEMENTS`] weights).
    #[allow(clippy::too_many_arguments)]
    fn product(
        &self,
        x: &[f32],
        m: usize,
        rows: std::ops::Range<usize>,
        cols: usize,
        kernel: Kernel,
        portable: bool,
        parallel: Option<bool>,
    ) -> Vec<f32> {
        assert!(m > 0, "Q8Matrix::times_transposed: no rows");
        assert!(
            rows.end <= self.rows && rows.start <= rows.end && cols <= self.cols,
            "Q8Matrix::times_transposed: rows {rows:?} by {cols} columns are not a view of a {} x {} matrix",
            self.rows,
            self.cols
        );
        assert_eq!(x.len(), m * cols, "Q8Matrix::times_transposed: x has {} values, expected {m} x {cols}", x.len());
        let (row0, out) = (rows.start, rows.len());
        let mut result = vec![0.0f32; m * out];
        let parallel = parallel.unwrap_or(out * cols >= PARALLEL_MIN_ELEMENTS) && out >= 2;
        // Activations that are not finite (a diverged model) stay f32, so that they propagate
        // as they would in f32 instead of failing the quantization.
        let int8 = kernel == Kernel::Int8Activations && x.iter().all(|v| v.is_finite());
        let quantized = int8.then(|| Q8Matrix::quantize(x, m, cols));
        let mut first = 0;
        while first < m {
            let rows = (m - first).min(FEW_ROWS_MAX);
            let xs = Rows {
                x: &x[first * cols..(first + rows) * cols],
                quantized: quantized.as_ref().map(|q| (q, first)),
                weights: row0..row0 + out,
            };
            let mut by_row = vec![0.0f32; out * rows];
            run_for_rows(rows, Run { w: self, rows: xs, cols, by_row: &mut by_row, parallel, portable });
            transpose_by_row(&by_row, rows, &mut result[first * out..(first + rows) * out]);
            first += rows;
        }
        result
    }
}

/// Fills `by_row` (`[weight rows, M]`), the weight rows in two halves on two threads when
/// `parallel`; the AVX2 path where the CPU has it, unless `portable`.
struct Run<'a> {
    w: &'a Q8Matrix,
    rows: Rows<'a>,
    cols: usize,
    by_row: &'a mut [f32],
    parallel: bool,
    portable: bool,
}

impl RowsKernel for Run<'_> {
    fn run<const M: usize>(self) {
        let Run { w, rows, cols, by_row, parallel, portable } = self;
        let (x, row0) = (rows.x, rows.weights.start);
        let dots = |first: usize, out: &mut [f32]| {
            let first = row0 + first;
            if let Some((xq, x_first)) = rows.quantized {
                let dots = Int8Dots::<M> { w, first, cols, x: xq, x_first, out };
                #[cfg(target_arch = "x86_64")]
                if let Some(simd) = pulp::x86::V3::try_new().filter(|_| !portable) {
                    return dots.avx2(simd);
                }
                return dots.portable();
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(simd) = pulp::x86::V3::try_new().filter(|_| !portable) {
                return pulp::Simd::vectorize(simd, avx2::FusedQ8Dots::<M> { simd, w, first, cols, x, out });
            }
            pulp::Arch::new().dispatch(Q8Dots::<M> { w, first, cols, x, out });
        };
        fill_by_row::<M>(by_row, parallel, dots);
    }
}

/// The product on x86-64 CPUs with AVX2 and FMA: each group of 8 weights is widened from bytes
/// to f32 in registers (`vpmovsxbd`, `vcvtdq2ps`) and multiplied into every row of `x`, a block's
/// sums scaled once, with no f32 copy of the weights.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use pulp::x86::V3;
    use pulp::{Simd, WithSimd, f32x8, i8x16};

    use super::{Q8_BLOCK, Q8Matrix};

    /// [`super::Q8Dots`] for AVX2: dot products of rows `first..first + out.len() / M` of `w`
    /// (their first `cols` values) with the `M` rows of `x`.
    pub(super) struct FusedQ8Dots<'a, const M: usize> {
        pub simd: V3,
        pub w: &'a Q8Matrix,
        pub first: usize,
        pub cols: usize,
        pub x: &'a [f32],
        pub out: &'a mut [f32],
    }

    impl<const M: usize> WithSimd for FusedQ8Dots<'_, M> {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            let FusedQ8Dots { simd, w, first, cols, x, out } = self;
            let per_row = w.cols.div_ceil(Q8_BLOCK);
            let whole = cols / Q8_BLOCK;
            let rows: [&[f32x8]; M] = std::array::from_fn(|r| V3::as_simd_f32s(&x[r * cols..(r + 1) * cols]).0);
            let widen = |bytes: &[i8]| -> f32x8 {
                let mut lanes = [0i8; 16];
                lanes[..8].copy_from_slice(bytes);
                let lanes: i8x16 = pulp::bytemuck::cast(lanes);
                simd.convert_i32x8_to_f32x8(simd.convert_i8x16_to_i32x8(lanes))
            };
            for (j, dots) in out.chunks_exact_mut(M).enumerate() {
                let i = first + j;
                let quants = &w.quants[i * w.cols..i * w.cols + cols];
                let scales = &w.scales[i * per_row..(i + 1) * per_row];
                let mut acc = [simd.splat_f32x8(0.0); M];
                for b in 0..whole {
                    let block = &quants[b * Q8_BLOCK..(b + 1) * Q8_BLOCK];
                    let mut sums = [simd.splat_f32x8(0.0); M];
                    for g in 0..Q8_BLOCK / 8 {
                        let wv = widen(&block[8 * g..8 * g + 8]);
                        for r in 0..M {
                            sums[r] = simd.mul_add_f32x8(wv, rows[r][4 * b + g], sums[r]);
                        }
                    }
                    let scale = simd.splat_f32x8(scales[b]);
                    for r in 0..M {
                        acc[r] = simd.mul_add_f32x8(scale, sums[r], acc[r]);
                    }
                }
                for r in 0..M {
                    let row = &x[r * cols..(r + 1) * cols];
                    let tail: f32 = (whole * Q8_BLOCK..cols).map(|c| f32::from(quants[c]) * row[c]).sum::<f32>()
                        * scales.get(whole).copied().unwrap_or(0.0);
                    dots[r] = simd.reduce_sum_f32s(acc[r]) + tail;
                }
            }
        }
    }
}

/// Dot products of rows `first..first + out.len() / M` of `w` (their first `cols` values)
/// with the `M` rows of `x`.
struct Q8Dots<'a, const M: usize> {
    w: &'a Q8Matrix,
    first: usize,
    cols: usize,
    x: &'a [f32],
    out: &'a mut [f32],
}

impl<const M: usize> WithSimd for Q8Dots<'_, M> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Q8Dots { w, first, cols, x, out } = self;
        let rows: [(&[S::f32s], &[f32]); M] = std::array::from_fn(|r| S::as_simd_f32s(&x[r * cols..(r + 1) * cols]));
        // One weight row in f32, reused for every row: it stays in the L1 cache.
        let mut row = vec![0.0f32; cols];
        for (j, dots) in out.chunks_exact_mut(M).enumerate() {
            w.expand_row(first + j, cols, &mut row);
            row_dots(simd, &row, &rows, dots);
        }
    }
}
