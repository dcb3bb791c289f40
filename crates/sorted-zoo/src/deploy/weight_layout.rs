//! [`WeightLayout`]: the memory order a served model keeps its linear weights in.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How a [`super::SortedModel`] stores its 2-D (linear) weights in memory. Values and shapes
/// are the same either way (a weight is always the `[d_in, d_out]` tensor the layers multiply
/// by); only the order of the floats in memory differs, and with it how fast a sub-model's
/// slice is read.
///
/// Measured on 2 CPU cores with Flex on the default MNIST MLP's 340 sub-models
/// (`docs/results/deploy-mnist.md`): at batch 1, [`WeightLayout::OutputMajor`] serves them in
/// 0.78x the time of [`WeightLayout::InputMajor`] (median; 0.43x for the narrowest), and within
/// 5 % of their exported dense models for 334 of 340 (median of four profiling rounds). At batch 64 it is no better overall
/// (0.5x-2.5x, median 0.99; the full model 1.46x slower), because the matrix product then reads a
/// transposed operand: serve batches in the training layout.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{NestingSpace, NestingSpaceConfig};
/// use sorted_zoo::SortedMlpConfig;
/// use sorted_zoo::deploy::{SortedModel, WeightLayout};
///
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1, 2],
///     widths: Some(vec![16, 64]),
///     block_widths: None,
///     tie_widths: true,
/// })?;
/// let device = Default::default();
/// let mlp = SortedMlpConfig::for_space(784, 10, &space).init::<Flex>(&device);
/// let batched = SortedModel::new(mlp.clone(), space.clone())?;
/// // For one request at a time: same outputs, read in a faster order.
/// let per_request = SortedModel::new(mlp, space)?.with_weight_layout(WeightLayout::OutputMajor);
///
/// let image = Tensor::<Flex, 4>::ones([1, 1, 28, 28], &device);
/// let sub = batched.space().smallest();
/// let a = batched.forward(image.clone(), &sub)?;
/// let b = per_request.forward(image, &sub)?;
/// a.into_data().assert_approx_eq::<f32>(&b.into_data(), Default::default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightLayout {
    /// `[d_in, d_out]` row-major: the layout training uses and burn-nn's `Linear` keeps. Best
    /// for batches of tens of rows. A narrow output slice of a wide layer is strided: each of
    /// its `d_in` rows is a short run of floats.
    #[default]
    InputMajor,
    /// `[d_out, d_in]` row-major (PyTorch's): each output unit's weights are one contiguous
    /// run, so the first layer's output slice (all inputs, the first `d_out` units) is one
    /// block, and a product with a few rows reads whole runs. Best at batch 1 on CPU.
    OutputMajor,
}

impl WeightLayout {
    /// The name used on the command line and in reports (`input-major`, `output-major`).
    pub fn name(self) -> &'static str {
        match self {
            Self::InputMajor => "input-major",
            Self::OutputMajor => "output-major",
        }
    }
}

impl std::fmt::Display for WeightLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Copies 2-D parameters into fresh memory in `layout` and, with `copy_all`, every other
/// parameter into fresh contiguous memory too (a pinned copy owns all of its memory).
pub(crate) struct Relayout {
    pub(crate) layout: WeightLayout,
    pub(crate) copy_all: bool,
}

impl<B: Backend> ModuleMapper<B> for Relayout {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if D != 2 && !self.copy_all {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let device = tensor.device();
        let tensor = match (D, self.layout) {
            (2, WeightLayout::OutputMajor) => {
                // Fresh `[d_out, d_in]` memory, seen through a transposed (zero-copy) view.
                Tensor::<B, D>::from_data(tensor.swap_dims(0, 1).into_data(), &device).swap_dims(0, 1)
            }
            _ => Tensor::from_data(tensor.into_data(), &device),
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}
