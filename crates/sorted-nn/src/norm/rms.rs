//! RMSNorm (LLaMA's normalisation): root-mean-square normalisation with a learned scale. Its
//! active width follows the input (the first `d` entries of the scale are not sliced here: a
//! sorted LLaMA nests only heads and FFN units, never the hidden width).

use burn::module::{Module, Param};
use burn::prelude::*;

/// Root-mean-square normalisation with a learned scale (no shift, no mean subtraction).
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    /// The scale, `[d]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Added to the mean square.
    pub epsilon: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// `x / sqrt(mean(x^2) + eps) * weight` over the last dimension.
    ///
    /// # Shapes
    /// - input and output: `[..., d]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.forward_with(x, self.weight.val())
    }

    /// [`RmsNorm::forward`] with `weight` in place of the parameter (e.g. detached).
    pub fn forward_with<const D: usize>(&self, x: Tensor<B, D>, weight: Tensor<B, 1>) -> Tensor<B, D> {
        let rms = x.clone().powi_scalar(2).mean_dim(D - 1).add_scalar(self.epsilon).sqrt();
        x.div(rms).mul(weight.unsqueeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn rms_norm_divides_by_the_root_mean_square_and_scales() {
        let device = Default::default();
        let norm =
            RmsNorm::<Flex> { weight: Param::from_tensor(Tensor::from_floats([1.0, 2.0], &device)), epsilon: 0.0 };
        let out =
            norm.forward(Tensor::<Flex, 2>::from_floats([[3.0, 4.0]], &device)).into_data().to_vec::<f32>().unwrap();
        let rms = (12.5f32).sqrt();
        assert!((out[0] - 3.0 / rms).abs() < 1e-6 && (out[1] - 8.0 / rms).abs() < 1e-6, "{out:?}");
    }
}
