//! The few-row kernel against a plain triple loop, compiled as one integration binary.

use sorted_kernels::{FEW_ROWS_MAX, PARALLEL_MIN_ELEMENTS, RowMatrix, few_rows_times_transposed};

/// Deterministic values in [-1, 1) (a linear congruential sequence).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `x · wᵀ` by the definition, in f64.
fn naive(x: &[f32], m: usize, w: &[f32], n: usize, k: usize, stride: usize) -> Vec<f32> {
    let mut out = vec![0.0; m * n];
    for r in 0..m {
        for o in 0..n {
            let dot: f64 = (0..k).map(|i| x[r * k + i] as f64 * w[o * stride + i] as f64).sum();
            out[r * n + o] = dot as f32;
        }
    }
    out
}

#[track_caller]
fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "element {i}: {a} vs {b}");
    }
}

#[test]
fn every_row_count_and_odd_widths_equal_the_definition() {
    // Widths below, at and across every SIMD width (4, 8, 16 lanes), plus a ragged tail.
    for k in [1, 3, 4, 8, 15, 16, 17, 37, 64, 100] {
        for n in [1, 2, 7, 33] {
            let w = values(n * k, (n * 1000 + k) as u64);
            for m in 1..=FEW_ROWS_MAX {
                let x = values(m * k, m as u64);
                let got = few_rows_times_transposed(&x, m, RowMatrix::contiguous(&w, n, k));
                assert_close(&got, &naive(&x, m, &w, n, k, k));
            }
        }
    }
}

#[test]
fn a_strided_view_reads_only_its_rows_and_columns() {
    // The first 9 rows and 13 columns of a 12 x 20 matrix; the rest would change the result.
    let (n, k, stride) = (9, 13, 20);
    let full = values(12 * stride, 7);
    let x = values(3 * k, 8);
    let got = few_rows_times_transposed(&x, 3, RowMatrix::new(&full, n, k, stride));
    assert_close(&got, &naive(&x, 3, &full, n, k, stride));
}

#[test]
fn large_matrices_split_over_two_threads_give_the_same_result() {
    // An odd row count, so the two halves differ in size.
    let (n, k) = (PARALLEL_MIN_ELEMENTS / 64 + 1, 64);
    let w = values(n * k, 9);
    for m in [1, 5] {
        let x = values(m * k, 10 + m as u64);
        let got = few_rows_times_transposed(&x, m, RowMatrix::contiguous(&w, n, k));
        assert_close(&got, &naive(&x, m, &w, n, k, k));
    }
}

#[test]
#[should_panic(expected = "9 rows, expected 1 to 8")]
fn more_rows_than_the_kernel_takes_are_refused() {
    let w = values(4, 1);
    few_rows_times_transposed(&values(18, 2), 9, RowMatrix::contiguous(&w, 2, 2));
}

#[test]
#[should_panic(expected = "need 25 elements, the slice has 24")]
fn a_view_past_the_end_of_its_slice_is_refused() {
    let data = values(24, 1);
    RowMatrix::new(&data, 3, 5, 10);
}

mod q8 {
    use sorted_kernels::{FEW_ROWS_MAX, PARALLEL_MIN_ELEMENTS, Q8_BLOCK, Q8Matrix};

    use super::{assert_close, naive, values};

    #[test]
    fn quantization_rounds_each_weight_within_half_a_step_of_its_block() {
        let (rows, cols) = (5, 3 * Q8_BLOCK + 7);
        let w = values(rows * cols, 11);
        let q = Q8Matrix::quantize(&w, rows, cols);
        let back = q.dequantize();
        for (r, (row, back)) in w.chunks(cols).zip(back.chunks(cols)).enumerate() {
            for (b, (block, back)) in row.chunks(Q8_BLOCK).zip(back.chunks(Q8_BLOCK)).enumerate() {
                let step = block.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                for (v, d) in block.iter().zip(back) {
                    assert!((v - d).abs() <= 0.5 * step + 1e-7, "row {r} block {b}: {v} became {d}");
                }
            }
        }
        assert_eq!(q.bytes(), rows * cols + 4 * rows * cols.div_ceil(Q8_BLOCK));
        // A block of zeros stays zeros (no division by a zero scale).
        assert_eq!(Q8Matrix::quantize(&[0.0; 40], 1, 40).dequantize(), vec![0.0; 40]);
    }

    #[test]
    fn the_product_is_the_dequantized_matrix_times_x_for_every_view_and_row_count() {
        let (rows, cols) = (37, 2 * Q8_BLOCK + 9);
        let w = Q8Matrix::quantize(&values(rows * cols, 3), rows, cols);
        let dense = w.dequantize();
        // Whole matrix, row prefixes, column prefixes inside and across blocks, and more rows
        // of x than one pass takes.
        for (out, k) in [(rows, cols), (20, cols), (rows, Q8_BLOCK), (9, 40), (1, 1), (rows, 5)] {
            for m in [1, 2, 3, FEW_ROWS_MAX, FEW_ROWS_MAX + 1, 3 * FEW_ROWS_MAX + 2] {
                let x = values(m * k, (m * 100 + k) as u64);
                let want = naive(&x, m, &dense, out, k, cols);
                assert_close(&w.times_transposed(&x, m, out, k), &want);
                // The code CPUs without AVX2 run.
                assert_close(&w.times_transposed_portable(&x, m, out, k), &want);
            }
        }
    }

    #[test]
    fn with_8_bit_activations_the_product_is_both_dequantized_matrices_multiplied() {
        // Several whole blocks and a partial one.
        let (rows, cols) = (37, 5 * Q8_BLOCK + 9);
        let w = Q8Matrix::quantize(&values(rows * cols, 3), rows, cols);
        let dense = w.dequantize();
        for (out, k) in [(rows, cols), (20, cols), (rows, Q8_BLOCK), (rows, 4 * Q8_BLOCK), (9, 40), (1, 1), (rows, 5)] {
            for m in [1, 2, 3, FEW_ROWS_MAX, FEW_ROWS_MAX + 1, 3 * FEW_ROWS_MAX + 2] {
                let x = values(m * k, (m * 100 + k) as u64);
                // The activations as the product sees them: their own 8-bit blocks.
                let x8 = Q8Matrix::quantize(&x, m, k).dequantize();
                let want = naive(&x8, m, &dense, out, k, cols);
                assert_close(&w.times_quantized_transposed(&x, m, out, k), &want);
                assert_close(&w.times_quantized_transposed_portable(&x, m, out, k), &want);
            }
        }
        // Large enough for two threads.
        let (rows, cols) = (1536, 576);
        let w = Q8Matrix::quantize(&values(rows * cols, 5), rows, cols);
        let x = values(2 * cols, 6);
        let want = naive(&Q8Matrix::quantize(&x, 2, cols).dequantize(), 2, &w.dequantize(), rows, cols, cols);
        assert_close(&w.times_quantized_transposed(&x, 2, rows, cols), &want);
    }

    #[test]
    fn a_large_view_split_over_two_threads_gives_the_same_product() {
        let (rows, cols) = (1536, 576);
        assert!(rows * cols >= PARALLEL_MIN_ELEMENTS);
        let w = Q8Matrix::quantize(&values(rows * cols, 5), rows, cols);
        let dense = w.dequantize();
        let x = values(3 * cols, 9);
        assert_close(&w.times_transposed(&x, 3, rows, cols), &naive(&x, 3, &dense, rows, cols, cols));
        assert_close(&w.times_transposed_portable(&x, 3, rows, cols), &naive(&x, 3, &dense, rows, cols, cols));
        // An odd number of rows splits unevenly.
        assert_close(&w.times_transposed(&x, 3, rows - 1, cols), &naive(&x, 3, &dense, rows - 1, cols, cols));
    }

    #[test]
    #[should_panic(expected = "view of a")]
    fn a_view_larger_than_the_matrix_is_refused() {
        let w = Q8Matrix::quantize(&[1.0; 64], 2, 32);
        let _ = w.times_transposed(&[1.0; 33], 1, 2, 33);
    }
}

mod host {
    use sorted_kernels::{FEW_ROWS_MAX, HostDecoder, HostDecoderShape, HostLayer, HostMatrix, Q8Matrix};

    use super::{assert_close, naive, values};

    #[test]
    fn an_f32_host_matrix_takes_any_row_count_and_view() {
        let (rows, cols) = (21, 19);
        let data = values(rows * cols, 4);
        let w = HostMatrix::f32(data.clone(), rows, cols);
        for (out, k) in [(rows, cols), (7, 19), (21, 5)] {
            for m in [1, FEW_ROWS_MAX, FEW_ROWS_MAX + 1, 3 * FEW_ROWS_MAX + 2] {
                let x = values(m * k, (m + k) as u64);
                assert_close(&w.times_transposed(&x, m, out, k), &naive(&x, m, &data, out, k, cols));
            }
        }
        assert_eq!(w.bytes(), 4 * rows * cols);
        // The 8-bit form multiplies as its own dequantized matrix does, any row count (a prompt
        // of more rows than the few-row kernels take goes through a blocked product) and view.
        let dense = Q8Matrix::quantize(&data, rows, cols).dequantize();
        for int8 in [false, true] {
            let q = HostMatrix::q8(&data, rows, cols, int8);
            for (out, k) in [(rows, cols), (7, 19), (21, 5)] {
                for m in [2, FEW_ROWS_MAX + 3, 9 * FEW_ROWS_MAX] {
                    let x = values(m * k, (m * 3 + k) as u64);
                    // With 8-bit activations only the few-row kernel quantizes them.
                    let x_seen =
                        if int8 && m <= FEW_ROWS_MAX { Q8Matrix::quantize(&x, m, k).dequantize() } else { x.clone() };
                    assert_close(&q.times_transposed(&x, m, out, k), &naive(&x_seen, m, &dense, out, k, cols));
                }
            }
        }
    }

    /// One layer, hidden 4, one head of 4, SwiGLU 2; every matrix the identity or zero.
    fn one_layer(ffn_down: f32) -> HostDecoder {
        let eye = |n: usize| {
            let mut v = vec![0.0; n * n];
            (0..n).for_each(|i| v[i * n + i] = 1.0);
            HostMatrix::f32(v, n, n)
        };
        let shape =
            HostDecoderShape { hidden: 4, heads: 1, kv_heads: 1, head_dim: 4, rope_theta: 10_000.0, norm_eps: 0.0 };
        let layer = HostLayer {
            attention_norm: vec![1.0; 4],
            query: eye(4),
            key: eye(4),
            value: eye(4),
            output: eye(4),
            ffn_norm: vec![1.0; 4],
            gate: HostMatrix::f32(vec![0.0; 8], 2, 4),
            up: HostMatrix::f32(vec![0.0; 8], 2, 4),
            down: HostMatrix::f32(vec![ffn_down; 8], 4, 2),
        };
        let embedding: Vec<f32> = (0..12).map(|i| i as f32 - 5.5).collect();
        HostDecoder::new(shape, embedding.clone(), HostMatrix::f32(embedding, 3, 4), vec![1.0; 4], vec![layer])
    }

    #[test]
    fn a_first_token_attends_only_to_itself() {
        // At position 0 attention returns the token's own value: the normalised input, which
        // the residual adds to the input; the FFN's gate is zero, so it adds nothing.
        let decoder = one_layer(1.0);
        let x = decoder.embed(&[1]);
        let rms = (x.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        let want: Vec<f32> = x.iter().map(|v| v + v / rms).collect();
        let mut cache = decoder.new_cache();
        assert_close(&decoder.run_layers(x, 0, 1, 1, 2, &mut cache), &want);
        assert_eq!(cache.len_of(0), 1);
    }

    #[test]
    fn sharing_each_layer_with_a_second_thread_gives_the_same_values() {
        // Two layers, hidden 64, 4 query heads and 2 KV heads of 16, SwiGLU 96; 8-bit weights
        // and activations, and f32.
        let (d, ffn, heads, kv, hd) = (64, 96, 4, 2, 16);
        for q8 in [false, true] {
            let m = |rows: usize, cols: usize, seed: u64| {
                let v = values(rows * cols, seed);
                if q8 { HostMatrix::q8(&v, rows, cols, true) } else { HostMatrix::f32(v, rows, cols) }
            };
            let layers = (0..2)
                .map(|l| HostLayer {
                    attention_norm: values(d, 100 + l),
                    query: m(heads * hd, d, 10 * l + 1),
                    key: m(kv * hd, d, 10 * l + 2),
                    value: m(kv * hd, d, 10 * l + 3),
                    output: m(d, heads * hd, 10 * l + 4),
                    ffn_norm: values(d, 200 + l),
                    gate: m(ffn, d, 10 * l + 5),
                    up: m(ffn, d, 10 * l + 6),
                    down: m(d, ffn, 10 * l + 7),
                })
                .collect();
            let shape =
                HostDecoderShape { hidden: d, heads, kv_heads: kv, head_dim: hd, rope_theta: 10_000.0, norm_eps: 1e-5 };
            let embedding = values(30 * d, 9);
            let decoder =
                HostDecoder::new(shape, embedding.clone(), HostMatrix::f32(embedding, 30, d), vec![1.0; d], layers);
            // A prompt of more rows than the few-row kernels take, then single steps, full and
            // narrow widths.
            for (narrow_heads, narrow_ffn) in [(4, 96), (2, 40)] {
                let (mut alone, mut shared) = (decoder.new_cache(), decoder.new_cache());
                for tokens in [&(0..12).collect::<Vec<u32>>()[..], &[5], &[7, 8]] {
                    let width = (narrow_heads, narrow_ffn);
                    let a = decoder.run_layers_sharing(decoder.embed(tokens), 0, 2, width, &mut alone, false);
                    let b = decoder.run_layers_sharing(decoder.embed(tokens), 0, 2, width, &mut shared, true);
                    assert_eq!(a, b, "q8 {q8}, width {width:?}, tokens {tokens:?}");
                }
                assert_eq!(alone, shared);
            }
        }
    }

    #[test]
    #[should_panic(expected = "layer 0 down")]
    fn parts_of_the_wrong_shape_are_refused_by_name() {
        let decoder = one_layer(1.0);
        let mut layers = vec![];
        let shape = decoder.shape();
        let eye = HostMatrix::f32(vec![1.0; 16], 4, 4);
        layers.push(HostLayer {
            attention_norm: vec![1.0; 4],
            query: eye.clone(),
            key: eye.clone(),
            value: eye.clone(),
            output: eye.clone(),
            ffn_norm: vec![1.0; 4],
            gate: HostMatrix::f32(vec![0.0; 8], 2, 4),
            up: HostMatrix::f32(vec![0.0; 8], 2, 4),
            down: eye,
        });
        HostDecoder::new(shape, vec![0.0; 12], HostMatrix::f32(vec![0.0; 12], 3, 4), vec![1.0; 4], layers);
    }
}
