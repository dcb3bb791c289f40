//! The nested 2-D convolution.

use burn::config::Config;
use burn::module::{Initializer, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use crate::Cost;

/// Configuration of a [`SortedConv2d`]: allocated channels, kernel, stride and padding.
#[derive(Config, Debug)]
pub struct SortedConv2dConfig {
    /// Allocated `[c_in, c_out]`.
    pub channels: [usize; 2],
    /// Kernel size `[kh, kw]`.
    pub kernel_size: [usize; 2],
    /// Stride.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Symmetric zero padding `[ph, pw]`.
    #[config(default = "[0, 0]")]
    pub padding: [usize; 2],
    /// Depthwise convolution (one filter per channel, `groups == c`; needs `c_in == c_out`).
    /// The active channel count then applies to input and output alike.
    #[config(default = false)]
    pub depthwise: bool,
    /// Whether the layer has a bias (off before a BatchNorm).
    #[config(default = true)]
    pub bias: bool,
    /// The initializer (burn-nn's default, with the allocated fan-in).
    #[config(default = "Initializer::KaimingUniform{gain:0.577_350_269_189_625_8, fan_out_only:false}")]
    pub initializer: Initializer,
}

/// A 2-D convolution whose sub-models use the first `c_out` filters over the first `c_in` input
/// channels of one shared weight, `[c_out_max, c_in_max, kh, kw]` (the `burn::nn::conv::Conv2d`
/// layout).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::SortedConv2dConfig;
///
/// let device = Default::default();
/// let conv = SortedConv2dConfig::new([4, 8], [3, 3]).with_padding([1, 1]).init::<Flex>(&device);
/// let x = Tensor::<Flex, 4>::ones([1, 2, 5, 5], &device); // 2 active input channels
/// let y = conv.forward(x.clone(), 3);                    // 3 active filters
/// assert_eq!(y.dims(), [1, 3, 5, 5]);
/// let dense = conv.to_dense(2, 3);
/// y.into_data().assert_approx_eq::<f32>(&dense.forward(x).into_data(), Default::default());
/// ```
#[derive(Module, Debug)]
pub struct SortedConv2d<B: Backend> {
    /// The allocated weight, `[c_out_max, c_in_max / groups, kh, kw]`.
    pub weight: Param<Tensor<B, 4>>,
    /// The allocated bias, `[c_out_max]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// Stride.
    pub stride: [usize; 2],
    /// Symmetric zero padding.
    pub padding: [usize; 2],
    /// Whether this is a depthwise convolution.
    pub depthwise: bool,
}

impl SortedConv2dConfig {
    /// Allocates the layer on `device`, parameters materialised.
    ///
    /// # Panics
    /// If `depthwise` is set with `c_in != c_out`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedConv2d<B> {
        let [c_in, c_out] = self.channels;
        assert!(!self.depthwise || c_in == c_out, "SortedConv2d: depthwise needs c_in == c_out, got {c_in} != {c_out}");
        let c_in_per_group = if self.depthwise { 1 } else { c_in };
        let [kh, kw] = self.kernel_size;
        let fan_in = c_in_per_group * kh * kw;
        let fan_out = c_out * kh * kw;
        let weight = self.initializer.init_with([c_out, c_in_per_group, kh, kw], Some(fan_in), Some(fan_out), device);
        let bias = self.bias.then(|| self.initializer.init_with([c_out], Some(fan_in), Some(fan_out), device));
        let layer =
            SortedConv2d { weight, bias, stride: self.stride, padding: self.padding, depthwise: self.depthwise };
        // Materialise the lazy parameters now, so clones share values (burn-notes pitfall 1).
        let _ = layer.devices();
        layer
    }
}

impl<B: Backend> SortedConv2d<B> {
    /// The allocated input channels.
    pub fn c_in_max(&self) -> usize {
        if self.depthwise { self.weight.dims()[0] } else { self.weight.dims()[1] }
    }

    /// The allocated output channels.
    pub fn c_out_max(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The kernel size.
    pub fn kernel_size(&self) -> [usize; 2] {
        let d = self.weight.dims();
        [d[2], d[3]]
    }

    /// The output spatial size for an input of `hw`.
    pub fn output_size(&self, hw: [usize; 2]) -> [usize; 2] {
        let k = self.kernel_size();
        [0, 1].map(|i| (hw[i] + 2 * self.padding[i] - k[i]) / self.stride[i] + 1)
    }

    /// Convolves with the active filters; `c_in` is read from the input.
    ///
    /// # Shapes
    /// - input: `[batch, c_in, h, w]`, `c_in <= c_in_max()`
    /// - output: `[batch, c_out, h', w']` (for depthwise layers `c_out` must equal `c_in`)
    ///
    /// # Panics
    /// If a size exceeds the allocation or is zero, or a depthwise layer gets `c_out != c_in`.
    pub fn forward(&self, input: Tensor<B, 4>, c_out: usize) -> Tensor<B, 4> {
        let c_in = input.dims()[1];
        self.check(c_in, c_out);
        let (w, b) = self.active(c_in, c_out);
        let groups = if self.depthwise { c_out } else { 1 };
        conv2d(input, w, b, ConvOptions::new(self.stride, self.padding, [1, 1], groups))
    }

    fn active(&self, c_in: usize, c_out: usize) -> (Tensor<B, 4>, Option<Tensor<B, 1>>) {
        let in_slice = if self.depthwise { 1 } else { c_in };
        let full = c_out == self.c_out_max() && (self.depthwise || c_in == self.c_in_max());
        let w = if full { self.weight.val() } else { self.weight.val().slice(s![0..c_out, 0..in_slice, .., ..]) };
        let b =
            self.bias.as_ref().map(|b| if c_out == self.c_out_max() { b.val() } else { b.val().slice(s![0..c_out]) });
        (w, b)
    }

    fn check(&self, c_in: usize, c_out: usize) {
        assert!(
            (1..=self.c_in_max()).contains(&c_in) && (1..=self.c_out_max()).contains(&c_out),
            "SortedConv2d: active channels [{c_in}, {c_out}] outside the allocated [{}, {}]",
            self.c_in_max(),
            self.c_out_max()
        );
        assert!(!self.depthwise || c_in == c_out, "SortedConv2d: depthwise layer got c_in {c_in} != c_out {c_out}");
    }

    /// The analytic cost of the active filters for an input of spatial size `hw`.
    pub fn cost(&self, c_in: usize, c_out: usize, hw: [usize; 2]) -> Cost {
        let c_in_eff = if self.depthwise { 1 } else { c_in };
        Cost::conv2d(c_in_eff, c_out, self.kernel_size(), self.output_size(hw), self.bias.is_some())
    }

    /// Copies the active filters into an ordinary `burn::nn::conv::Conv2d` (new parameter ids,
    /// detached): for export and equivalence tests only.
    ///
    /// # Panics
    /// If the sizes exceed the allocation.
    pub fn to_dense(&self, c_in: usize, c_out: usize) -> Conv2d<B> {
        self.check(c_in, c_out);
        let (w, b) = self.active(c_in, c_out);
        let [ph, pw] = self.padding;
        Conv2d {
            weight: Param::from_tensor(w.detach()),
            bias: b.map(|b| Param::from_tensor(b.detach())),
            stride: self.stride,
            kernel_size: self.kernel_size(),
            dilation: [1, 1],
            groups: if self.depthwise { c_out } else { 1 },
            padding: PaddingConfig2d::Explicit(ph, pw, ph, pw),
        }
    }
}
