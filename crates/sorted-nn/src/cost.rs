//! Analytic parameter and FLOP counts.

use std::ops::{Add, AddAssign};

use serde::Serialize;

/// The analytic cost of a (sub-)model or layer for one input sample.
///
/// `flops` counts a multiply-add as 2 FLOPs and covers the linear and convolution layers
/// (weights and biases); activations, normalisation and pooling are not counted, as is usual
/// for FLOP tables in the nested-training literature.
///
/// ```
/// use sorted_nn::Cost;
/// let a = Cost::linear(784, 64, true);
/// assert_eq!(a.params, 784 * 64 + 64);
/// assert_eq!(a.flops, 2 * 784 * 64 + 64);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Cost {
    /// Trainable parameters used by the sub-model.
    pub params: u64,
    /// Floating-point operations per input sample.
    pub flops: u64,
}

impl Cost {
    /// A dense `d_in -> d_out` linear layer.
    pub fn linear(d_in: usize, d_out: usize, bias: bool) -> Self {
        let (d_in, d_out) = (d_in as u64, d_out as u64);
        let b = if bias { d_out } else { 0 };
        Self { params: d_in * d_out + b, flops: 2 * d_in * d_out + b }
    }

    /// A `k x k` convolution from `c_in` to `c_out` channels producing `h_out x w_out` outputs.
    pub fn conv2d(c_in: usize, c_out: usize, kernel: [usize; 2], out_hw: [usize; 2], bias: bool) -> Self {
        let taps = (c_in * kernel[0] * kernel[1]) as u64;
        let c_out = c_out as u64;
        let positions = (out_hw[0] * out_hw[1]) as u64;
        let b = if bias { c_out } else { 0 };
        Self { params: taps * c_out + b, flops: (2 * taps * c_out + b) * positions }
    }

    /// A normalisation layer with affine parameters over `d` features (parameters only).
    pub fn norm(d: usize) -> Self {
        Self { params: 2 * d as u64, flops: 0 }
    }
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, rhs: Cost) -> Cost {
        Cost { params: self.params + rhs.params, flops: self.flops + rhs.flops }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, rhs: Cost) {
        *self = *self + rhs;
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::default(), Add::add)
    }
}
