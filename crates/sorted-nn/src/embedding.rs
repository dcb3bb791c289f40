//! The nested embedding table: a sub-model reads the first `d` coordinates of every row.

use burn::config::Config;
use burn::module::{Initializer, Param};
use burn::nn::Embedding;
use burn::prelude::*;
use burn::tensor::module::embedding;

/// Configuration of a [`SortedEmbedding`].
#[derive(Config, Debug)]
pub struct SortedEmbeddingConfig {
    /// Number of rows (vocabulary or positions).
    pub n_embedding: usize,
    /// Allocated width.
    pub d_model: usize,
    /// Initializer (burn-nn's default: standard normal).
    #[config(default = "Initializer::Normal{mean:0.0, std:1.0}")]
    pub initializer: Initializer,
}

/// A lookup table whose sub-models use the first `d` columns (the nested embedding width).
/// Field name and layout match `burn::nn::Embedding` (`weight: [n_embedding, d_model]`).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::SortedEmbeddingConfig;
///
/// let device = Default::default();
/// let table = SortedEmbeddingConfig::new(10, 8).init::<Flex>(&device);
/// let ids = Tensor::<Flex, 2, Int>::from_ints([[1, 2, 3]], &device);
/// assert_eq!(table.forward(ids.clone(), 4).dims(), [1, 3, 4]);
/// assert_eq!(table.forward(ids.clone(), 4).into_data(), table.to_dense(4).forward(ids).into_data());
/// ```
#[derive(Module, Debug)]
pub struct SortedEmbedding<B: Backend> {
    /// The allocated table, `[n_embedding, d_model]`.
    pub weight: Param<Tensor<B, 2>>,
}

impl SortedEmbeddingConfig {
    /// Allocates the table (parameters materialised).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedEmbedding<B> {
        let weight = self.initializer.init_with([self.n_embedding, self.d_model], None, None, device);
        let table = SortedEmbedding { weight };
        let _ = table.devices();
        table
    }
}

impl<B: Backend> SortedEmbedding<B> {
    /// The allocated width.
    pub fn d_model_max(&self) -> usize {
        self.weight.dims()[1]
    }

    /// The number of rows.
    pub fn n_embedding(&self) -> usize {
        self.weight.dims()[0]
    }

    fn active(&self, d: usize) -> Tensor<B, 2> {
        assert!(
            (1..=self.d_model_max()).contains(&d),
            "SortedEmbedding: active width {d} outside the allocated 1..={}",
            self.d_model_max()
        );
        if d == self.d_model_max() { self.weight.val() } else { self.weight.val().slice(s![.., 0..d]) }
    }

    /// Looks up `ids` (`[batch, seq]`, each below `n_embedding()`) and returns the first `d`
    /// coordinates, `[batch, seq, d]`.
    ///
    /// # Panics
    /// If `d` is 0 or exceeds the allocation.
    pub fn forward(&self, ids: Tensor<B, 2, Int>, d: usize) -> Tensor<B, 3> {
        embedding(self.active(d), ids)
    }

    /// Copies the first `d` columns into an ordinary `burn::nn::Embedding`.
    ///
    /// # Panics
    /// If `d` is 0 or exceeds the allocation.
    pub fn to_dense(&self, d: usize) -> Embedding<B> {
        Embedding { weight: Param::from_tensor(self.active(d).detach()) }
    }
}
