//! Dot products of 8-bit weight blocks with 8-bit activation blocks: each block of 32 summed
//! in integers and scaled once by the product of the two blocks' scales (ggml's
//! `vec_dot_q8_0_q8_0`, written here for any view and up to 8 activation rows at a time).

use crate::q8_rows::{Q8_BLOCK, Q8Matrix};

/// Dot products of weight rows `first..first + out.len() / M` of `w` (their first `cols`
/// values) with the `M` activation rows `x_first..x_first + M` of `x` (quantized, `cols` wide):
/// `out[j * M + r]`.
pub(crate) struct Int8Dots<'a, const M: usize> {
    pub w: &'a Q8Matrix,
    pub first: usize,
    pub cols: usize,
    pub x: &'a Q8Matrix,
    pub x_first: usize,
    pub out: &'a mut [f32],
}

impl<const M: usize> Int8Dots<'_, M> {
    /// Weight row `i`'s values and scales.
    fn weight_row(&self, i: usize) -> (&[i8], &[f32]) {
        let per_row = self.w.cols.div_ceil(Q8_BLOCK);
        (&self.w.quants[i * self.w.cols..i * self.w.cols + self.cols], &self.w.scales[i * per_row..(i + 1) * per_row])
    }

    /// Activation row `r` (of these `M`): values and scales.
    fn activation_row(&self, r: usize) -> (&[i8], &[f32]) {
        let i = self.x_first + r;
        let per_row = self.cols.div_ceil(Q8_BLOCK);
        (&self.x.quants[i * self.cols..(i + 1) * self.cols], &self.x.scales[i * per_row..(i + 1) * per_row])
    }

    /// The partial last block (columns `whole * 32..cols`) of weight row `w` with activation
    /// row `x`.
    fn tail(&self, (wq, ws): (&[i8], &[f32]), (xq, xs): (&[i8], &[f32])) -> f32 {
        let whole = self.cols / Q8_BLOCK;
        let sum: i32 = (whole * Q8_BLOCK..self.cols).map(|c| i32::from(wq[c]) * i32::from(xq[c])).sum();
        if sum == 0 { 0.0 } else { sum as f32 * ws[whole] * xs[whole] }
    }

    /// Plain Rust (what CPUs without AVX2 run; the compiler vectorises the integer sums).
    pub fn portable(self) {
        let whole = self.cols / Q8_BLOCK;
        let mut results = vec![0.0f32; self.out.len()];
        for (j, dots) in results.chunks_exact_mut(M).enumerate() {
            let w = self.weight_row(self.first + j);
            for (r, dot) in dots.iter_mut().enumerate() {
                let x = self.activation_row(r);
                let mut acc = 0.0f32;
                for b in 0..whole {
                    let block = b * Q8_BLOCK..(b + 1) * Q8_BLOCK;
                    let sum: i32 =
                        w.0[block.clone()].iter().zip(&x.0[block]).map(|(a, b)| i32::from(*a) * i32::from(*b)).sum();
                    acc += sum as f32 * (w.1[b] * x.1[b]);
                }
                *dot = acc + self.tail(w, x);
            }
        }
        self.out.copy_from_slice(&results);
    }

    /// AVX2: a block's 32 products in one `vpmaddubsw` (|w| times x with w's sign) and one
    /// `vpmaddwd`, converted to f32 and scaled in one fused multiply-add.
    #[cfg(target_arch = "x86_64")]
    pub fn avx2(self, simd: pulp::x86::V3) {
        struct Run<'a, const M: usize>(pulp::x86::V3, Int8Dots<'a, M>);
        impl<const M: usize> pulp::WithSimd for Run<'_, M> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) {
                let Run(simd, dots) = self;
                dots.avx2_body(simd);
            }
        }
        pulp::Simd::vectorize(simd, Run(simd, self));
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2_body(self, simd: pulp::x86::V3) {
        use std::arch::x86_64::{__m256, __m256i};
        let load = |bytes: &[i8]| -> __m256i {
            let bytes: [i8; Q8_BLOCK] = bytes.try_into().expect("a whole block");
            pulp::bytemuck::cast(bytes)
        };
        let whole = self.cols / Q8_BLOCK;
        let ones = simd.avx._mm256_set1_epi16(1);
        let xs: [(&[i8], &[f32]); M] = std::array::from_fn(|r| self.activation_row(r));
        let n = self.out.len() / M;
        let mut results = vec![0.0f32; self.out.len()];
        for j in 0..n {
            let w = self.weight_row(self.first + j);
            let mut acc: [__m256; M] = [simd.avx._mm256_setzero_ps(); M];
            for b in 0..whole {
                let wv = load(&w.0[b * Q8_BLOCK..(b + 1) * Q8_BLOCK]);
                let magnitude = simd.avx2._mm256_sign_epi8(wv, wv);
                for r in 0..M {
                    let xv = load(&xs[r].0[b * Q8_BLOCK..(b + 1) * Q8_BLOCK]);
                    let signed = simd.avx2._mm256_sign_epi8(xv, wv);
                    let pairs = simd.avx2._mm256_maddubs_epi16(magnitude, signed);
                    let sums = simd.avx._mm256_cvtepi32_ps(simd.avx2._mm256_madd_epi16(pairs, ones));
                    let scale = simd.avx._mm256_set1_ps(w.1[b] * xs[r].1[b]);
                    acc[r] = simd.fma._mm256_fmadd_ps(sums, scale, acc[r]);
                }
            }
            for r in 0..M {
                let lanes: [f32; 8] = pulp::bytemuck::cast(acc[r]);
                results[j * M + r] = lanes.iter().sum::<f32>() + self.tail(w, xs[r]);
            }
        }
        self.out.copy_from_slice(&results);
    }
}
