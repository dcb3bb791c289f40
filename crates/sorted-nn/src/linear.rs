//! The nested linear layer.

use burn::config::Config;
use burn::module::{Initializer, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::module::linear;

use crate::Cost;

/// Configuration of a [`SortedLinear`]: the allocated (largest) sizes.
#[derive(Config, Debug)]
pub struct SortedLinearConfig {
    /// Allocated input size.
    pub d_input: usize,
    /// Allocated output size.
    pub d_output: usize,
    /// Whether the layer has a bias.
    #[config(default = true)]
    pub bias: bool,
    /// The initializer, with fan-in and fan-out of the allocated sizes (burn-nn's default).
    #[config(default = "Initializer::KaimingUniform{gain:0.577_350_269_189_625_8, fan_out_only:false}")]
    pub initializer: Initializer,
}

/// A linear layer whose every sub-model uses the top-left `[d_in, d_out]` block of one shared
/// weight. Field names and layout match `burn::nn::Linear` (`weight: [d_input, d_output]`).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::SortedLinearConfig;
///
/// let device = Default::default();
/// let layer = SortedLinearConfig::new(8, 6).init::<Flex>(&device);
/// let x = Tensor::<Flex, 2>::ones([2, 4], &device); // 4 active inputs
/// let y = layer.forward(x.clone(), 3);              // 3 active outputs
/// assert_eq!(y.dims(), [2, 3]);
/// // The same numbers come out of the extracted dense layer.
/// let dense = layer.to_dense(4, 3);
/// assert_eq!(dense.forward(x).into_data(), y.into_data());
/// ```
#[derive(Module, Debug)]
pub struct SortedLinear<B: Backend> {
    /// The allocated weight, `[d_input, d_output]`.
    pub weight: Param<Tensor<B, 2>>,
    /// The allocated bias, `[d_output]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl SortedLinearConfig {
    /// Allocates the layer on `device`, with its parameters materialised (so clones share
    /// values, see burn-notes "lazy parameter init").
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedLinear<B> {
        let (i, o) = (self.d_input, self.d_output);
        let weight = self.initializer.init_with([i, o], Some(i), Some(o), device);
        let bias = self.bias.then(|| self.initializer.init_with([o], Some(i), Some(o), device));
        let layer = SortedLinear { weight, bias };
        // Materialise the lazy parameters now, so clones share values (burn-notes pitfall 1).
        let _ = layer.devices();
        layer
    }
}

impl<B: Backend> SortedLinear<B> {
    /// The allocated input size.
    pub fn d_input_max(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The allocated output size.
    pub fn d_output_max(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Applies the active `[d_in, d_out]` block; `d_in` is read from the input.
    ///
    /// # Shapes
    /// - input: `[..., d_in]`, `d_in <= d_input_max()`
    /// - output: `[..., d_out]`
    ///
    /// # Panics
    /// If `d_in` or `d_out` exceeds the allocated size, or is zero (a bug: sub-models are
    /// validated upstream).
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>, d_out: usize) -> Tensor<B, D> {
        let d_in = input.dims()[D - 1];
        self.check(d_in, d_out);
        let (w, b) = self.active(d_in, d_out);
        linear(input, w, b)
    }

    /// The active weight and bias, as slices of the shared parameters (gradients flow back into
    /// the allocated tensors).
    fn active(&self, d_in: usize, d_out: usize) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
        let full = d_in == self.d_input_max() && d_out == self.d_output_max();
        let w = if full { self.weight.val() } else { self.weight.val().slice(s![0..d_in, 0..d_out]) };
        let b = self
            .bias
            .as_ref()
            .map(|b| if d_out == self.d_output_max() { b.val() } else { b.val().slice(s![0..d_out]) });
        (w, b)
    }

    fn check(&self, d_in: usize, d_out: usize) {
        assert!(
            (1..=self.d_input_max()).contains(&d_in) && (1..=self.d_output_max()).contains(&d_out),
            "SortedLinear: active size [{d_in}, {d_out}] outside the allocated [{}, {}]",
            self.d_input_max(),
            self.d_output_max()
        );
    }

    /// The analytic cost of the active `[d_in, d_out]` block.
    pub fn cost(&self, d_in: usize, d_out: usize) -> Cost {
        Cost::linear(d_in, d_out, self.bias.is_some())
    }

    /// Copies the active `[d_in, d_out]` block into an ordinary `burn::nn::Linear` (new
    /// parameter ids, detached from the graph): for export and equivalence tests only.
    ///
    /// # Panics
    /// If the sizes exceed the allocation.
    pub fn to_dense(&self, d_in: usize, d_out: usize) -> Linear<B> {
        self.check(d_in, d_out);
        let (w, b) = self.active(d_in, d_out);
        Linear { weight: Param::from_tensor(w.detach()), bias: b.map(|b| Param::from_tensor(b.detach())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn hand_checked_values() {
        let device = Default::default();
        let mut layer = SortedLinearConfig::new(3, 2).init::<Flex>(&device);
        layer.weight = Param::from_tensor(Tensor::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device));
        layer.bias = Some(Param::from_tensor(Tensor::from_floats([0.5, -0.5], &device)));
        // Two active inputs, one active output: 1*1 + 1*3 + 0.5.
        let y = layer.forward(Tensor::<Flex, 2>::ones([1, 2], &device), 1);
        assert_eq!(y.into_data().to_vec::<f32>().unwrap(), vec![4.5]);
    }

    #[test]
    #[should_panic(expected = "outside the allocated")]
    fn too_wide_panics_naming_the_sizes() {
        let device = Default::default();
        let layer = SortedLinearConfig::new(3, 2).init::<Flex>(&device);
        let _ = layer.forward(Tensor::<Flex, 2>::ones([1, 2], &device), 3);
    }
}
