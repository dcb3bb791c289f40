//! The sorted multi-layer perceptron.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};
use sorted_nn::{
    Cost, NestingSpace, NormPass, SortedLinear, SortedLinearConfig, SpecError, SubModel, SubModelNormStats,
};

use crate::vision::classifier::{DenseClassifier, SortedClassifier, check_widths};

/// Configuration of a [`SortedMlp`]: allocated sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortedMlpConfig {
    /// Input features (pixels).
    pub d_input: usize,
    /// Number of classes (the shared head's outputs).
    pub n_classes: usize,
    /// Allocated width of each hidden block.
    pub hidden: Vec<usize>,
}

impl SortedMlpConfig {
    /// The allocation that fits `space` exactly (each block's largest width option).
    pub fn for_space(d_input: usize, n_classes: usize, space: &NestingSpace) -> Self {
        Self { d_input, n_classes, hidden: space.allocated_widths() }
    }

    /// A tiny preset for tests: 16 inputs, 3 classes, two blocks of 8.
    pub fn tiny() -> Self {
        Self { d_input: 16, n_classes: 3, hidden: vec![8, 8] }
    }

    /// Allocates the model.
    ///
    /// # Panics
    /// If `hidden` is empty or a size is zero.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedMlp<B> {
        assert!(!self.hidden.is_empty(), "SortedMlpConfig: `hidden` is empty");
        let mut d_in = self.d_input;
        let blocks = self
            .hidden
            .iter()
            .map(|&w| {
                let layer = SortedLinearConfig::new(d_in, w).init(device);
                d_in = w;
                layer
            })
            .collect();
        let d_head = *self.hidden.iter().max().expect("non-empty");
        SortedMlp { blocks, head: SortedLinearConfig::new(d_head, self.n_classes).init(device) }
    }
}

/// A sorted MLP: `depth` hidden blocks (linear + ReLU) of nested widths, then one head shared by
/// every sub-model, reading the last active block's active units.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{NestingSpace, NestingSpaceConfig, NormPass};
/// use sorted_zoo::{SortedClassifier, SortedMlpConfig};
///
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1, 2],
///     widths: Some(vec![4, 8]),
///     block_widths: None,
///     tie_widths: false,
/// })?;
/// let device = Default::default();
/// let model = SortedMlpConfig::for_space(16, 3, &space).init::<Flex>(&device);
/// let images = Tensor::<Flex, 4>::ones([2, 1, 4, 4], &device);
/// for sub in space.iter() {
///     let logits = model.forward(images.clone(), &sub, &mut NormPass::Batch);
///     assert_eq!(logits.dims(), [2, 3]);
/// }
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Module, Debug)]
pub struct SortedMlp<B: Backend> {
    /// Hidden blocks, allocated at full width.
    pub blocks: Vec<SortedLinear<B>>,
    /// The shared classifier head.
    pub head: SortedLinear<B>,
}

impl<B: Backend> SortedMlp<B> {
    fn n_classes(&self) -> usize {
        self.head.d_output_max()
    }
}

impl<B: Backend> SortedClassifier<B> for SortedMlp<B> {
    type Dense = DenseMlp<B>;

    fn forward(&self, images: Tensor<B, 4>, sub: &SubModel, _norm: &mut NormPass<'_, B>) -> Tensor<B, 2> {
        let mut x: Tensor<B, 2> = images.flatten(1, 3);
        assert!(sub.depth() <= self.blocks.len(), "SortedMlp: depth {} > allocated {}", sub.depth(), self.blocks.len());
        for (block, &w) in self.blocks.iter().zip(sub.widths()) {
            x = relu(block.forward(x, w));
        }
        self.head.forward(x, self.n_classes())
    }

    fn cost(&self, sub: &SubModel) -> Cost {
        let mut d_in = self.blocks[0].d_input_max();
        let mut cost = Cost::default();
        for (block, &w) in self.blocks.iter().zip(sub.widths()) {
            cost += block.cost(d_in, w);
            d_in = w;
        }
        cost + self.head.cost(d_in, self.n_classes())
    }

    fn has_batch_norm(&self) -> bool {
        false
    }

    fn check_space(&self, space: &NestingSpace) -> Result<(), SpecError> {
        let allocated: Vec<usize> = self.blocks.iter().map(SortedLinear::d_output_max).collect();
        check_widths(space, &allocated)
    }

    fn extract(&self, sub: &SubModel, _stats: Option<&SubModelNormStats<B>>) -> DenseMlp<B> {
        let mut d_in = self.blocks[0].d_input_max();
        let mut layers = Vec::with_capacity(sub.depth());
        for (block, &w) in self.blocks.iter().zip(sub.widths()) {
            layers.push(block.to_dense(d_in, w));
            d_in = w;
        }
        DenseMlp { layers, head: self.head.to_dense(d_in, self.n_classes()) }
    }
}

/// A sub-model of a [`SortedMlp`] as ordinary `burn::nn::Linear` layers.
#[derive(Module, Debug)]
pub struct DenseMlp<B: Backend> {
    /// Hidden layers (each followed by ReLU).
    pub layers: Vec<Linear<B>>,
    /// The classifier head.
    pub head: Linear<B>,
}

impl<B: Backend> DenseClassifier<B> for DenseMlp<B> {
    fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x: Tensor<B, 2> = images.flatten(1, 3);
        for layer in &self.layers {
            x = relu(layer.forward(x));
        }
        self.head.forward(x)
    }
}
