use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::Distribution;
use sorted_nn::test_util::assert_matches_dense;
use sorted_zoo::llama::{FEW_ROWS_MAX, few_row_product, matmul_by_transposed};

type F = Flex;

fn random(shape: [usize; 2], seed: u64) -> Tensor<F, 2> {
    let device = Default::default();
    F::seed(&device, seed);
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &device)
}

/// The kernel against burn's matmul: float summation order differs, values agree to 1e-4.
#[track_caller]
fn assert_close(got: Tensor<F, 2>, want: Tensor<F, 2>) {
    assert_matches_dense(got, want, 1e-4);
}

#[test]
fn the_few_row_kernel_equals_burns_matmul_for_every_row_count_and_odd_shapes() {
    let _rng = crate::rng_guard();
    // k = 5, 19 and 37 leave a tail after the SIMD lanes (4, 8 or 16 wide); 64 leaves none.
    for (n, k) in [(3, 5), (130, 37), (64, 64), (257, 19)] {
        let w = random([n, k], n as u64);
        for m in 1..=FEW_ROWS_MAX + 1 {
            let x = random([m, k], 100 + m as u64);
            let want = x.clone().matmul(w.clone().transpose());
            let kernel = few_row_product(&x, &w);
            // Single rows of small matrices and more than FEW_ROWS_MAX rows stay with gemm.
            assert_eq!(kernel.is_some(), (2..=FEW_ROWS_MAX).contains(&m), "n {n}, k {k}, m {m}");
            if let Some(y) = kernel {
                assert_close(y, want.clone());
            }
            assert_close(matmul_by_transposed(x, w.clone()), want);
        }
    }
}

#[test]
fn the_kernel_reads_a_view_of_a_larger_matrix_and_a_transposed_x() {
    let _rng = crate::rng_guard();
    // The decoding layout slices `[out_max, in_max]` to the active `[out, in]`: rows strided.
    let full = random([40, 50], 1);
    let w = full.slice([0..33, 0..21]);
    let dense = Tensor::<F, 2>::from_data(w.to_data(), &Default::default());
    let x = random([21, 3], 2).transpose();
    let y = few_row_product(&x, &w).expect("a strided view still takes the kernel");
    assert_close(y, x.clone().matmul(dense.transpose()));
}

#[test]
fn one_row_of_a_large_matrix_takes_the_kernel_on_two_threads() {
    let _rng = crate::rng_guard();
    // 4,100 x 1,024 elements: above the single-row and the two-thread thresholds (the tied
    // head of SmolLM2 is 49,152 x 576).
    let w = random([4_100, 1_024], 3);
    let x = random([1, 1_024], 4);
    let y = few_row_product(&x, &w).expect("a large single-row product takes the kernel");
    assert_close(y, x.matmul(w.transpose()));
}

#[test]
fn autodiff_tensors_keep_burns_matmul_and_its_gradients() {
    let _rng = crate::rng_guard();
    type A = Autodiff<F>;
    let device = Default::default();
    let x = Tensor::<A, 2>::from_data(random([3, 7], 5).into_data(), &device).require_grad();
    let w = Tensor::<A, 2>::from_data(random([4, 7], 6).into_data(), &device).require_grad();
    assert!(few_row_product(&x, &w).is_none());
    let grads = matmul_by_transposed(x.clone(), w.clone()).sum().backward();
    // d sum(x wᵀ) / d w = 1ᵀ x: every row of the gradient is the column sums of x.
    let gw = w.grad(&grads).unwrap();
    let want = x.inner().sum_dim(0).repeat_dim(0, 4);
    assert_close(gw, want);
}
