//! The nested LayerNorm: gamma and beta sliced to the active width.

use burn::config::Config;
use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;

/// Configuration of a [`SortedLayerNorm`].
#[derive(Config, Debug)]
pub struct SortedLayerNormConfig {
    /// Allocated number of features.
    pub d_model: usize,
    /// Added to the variance for numerical stability.
    #[config(default = 1e-5)]
    pub epsilon: f64,
}

/// LayerNorm over the active prefix of the last dimension: statistics are computed over the
/// active features only, and the first `d` entries of `gamma`/`beta` are applied.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::SortedLayerNormConfig;
///
/// let device = Default::default();
/// let norm = SortedLayerNormConfig::new(8).init::<Flex>(&device);
/// let x = Tensor::<Flex, 2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let y = norm.forward(x.clone());
/// y.into_data().assert_approx_eq::<f32>(&norm.to_dense(3).forward(x).into_data(), Default::default());
/// ```
#[derive(Module, Debug)]
pub struct SortedLayerNorm<B: Backend> {
    /// Allocated scale, `[d_model]`.
    pub gamma: Param<Tensor<B, 1>>,
    /// Allocated shift, `[d_model]`.
    pub beta: Param<Tensor<B, 1>>,
    /// Added to the variance for numerical stability.
    pub epsilon: f64,
}

impl SortedLayerNormConfig {
    /// Allocates the layer (gamma ones, beta zeros).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedLayerNorm<B> {
        SortedLayerNorm {
            gamma: Param::from_tensor(Tensor::ones([self.d_model], device)),
            beta: Param::from_tensor(Tensor::zeros([self.d_model], device)),
            epsilon: self.epsilon,
        }
    }
}

impl<B: Backend> SortedLayerNorm<B> {
    /// The allocated number of features.
    pub fn d_model_max(&self) -> usize {
        self.gamma.dims()[0]
    }

    /// Normalises over the active last dimension.
    ///
    /// # Shapes
    /// - input: `[..., d]`, `d <= d_model_max()`
    /// - output: `[..., d]`
    ///
    /// # Panics
    /// If `d` exceeds the allocation.
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let d = input.dims()[D - 1];
        assert!(d <= self.d_model_max(), "SortedLayerNorm: active width {d} > allocated {}", self.d_model_max());
        let (var, mean) = input.clone().var_mean_bias(D - 1);
        let x = input.sub(mean).div(var.add_scalar(self.epsilon).sqrt());
        let gamma = self.gamma.val().slice(s![0..d]);
        let beta = self.beta.val().slice(s![0..d]);
        x.mul(gamma.unsqueeze()).add(beta.unsqueeze())
    }

    /// Copies the active prefix into an ordinary `burn::nn::LayerNorm`.
    ///
    /// # Panics
    /// If `d` exceeds the allocation.
    pub fn to_dense(&self, d: usize) -> LayerNorm<B> {
        assert!(d <= self.d_model_max(), "SortedLayerNorm: width {d} > allocated {}", self.d_model_max());
        let mut dense = LayerNormConfig::new(d).with_epsilon(self.epsilon).init(&self.gamma.device());
        dense.gamma = Param::from_tensor(self.gamma.val().slice(s![0..d]).detach());
        dense.beta = Some(Param::from_tensor(self.beta.val().slice(s![0..d]).detach()));
        dense
    }
}
