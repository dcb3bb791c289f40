//! Nested multi-head self-attention: a sub-model uses the first `h` heads (the head dimension is
//! fixed) on the first `d` hidden features.

use burn::config::Config;
use burn::module::Initializer;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::{Cost, SortedLinear, SortedLinearConfig};

/// The additive bias that hides padded key positions, built once per batch and shared by every
/// layer: `0` for a real token, `-1e9` for padding, shaped `[batch, 1, 1, seq]`.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::PaddingMask;
///
/// let device = Default::default();
/// // Two sequences of length 3; the second has one padded position.
/// let mask = Tensor::<Flex, 2>::from_floats([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], &device);
/// let pad = PaddingMask::from_attention_mask(mask);
/// assert_eq!(pad.bias().dims(), [2, 1, 1, 3]);
/// ```
#[derive(Clone, Debug)]
pub struct PaddingMask<B: Backend> {
    bias: Tensor<B, 4>,
}

/// The bias added to the scores of padded keys (large and finite: a row never becomes NaN).
const PAD_BIAS: f32 = -1e9;

impl<B: Backend> PaddingMask<B> {
    /// From an attention mask `[batch, seq]` holding `1.0` for real tokens and `0.0` for
    /// padding (the Hugging Face convention).
    pub fn from_attention_mask(mask: Tensor<B, 2>) -> Self {
        let [n, s] = mask.dims();
        let bias = mask.neg().add_scalar(1.0).mul_scalar(PAD_BIAS).reshape([n, 1, 1, s]);
        Self { bias }
    }

    /// The additive bias, `[batch, 1, 1, seq]`.
    pub fn bias(&self) -> &Tensor<B, 4> {
        &self.bias
    }
}

/// Configuration of a [`SortedMultiHeadAttention`]: the allocated sizes.
#[derive(Config, Debug)]
pub struct SortedMultiHeadAttentionConfig {
    /// Allocated hidden width (input and output features).
    pub d_model: usize,
    /// Allocated number of heads.
    pub n_heads: usize,
    /// Features per head (fixed for every sub-model).
    pub head_dim: usize,
    /// Initializer of the four projections.
    #[config(default = "Initializer::KaimingUniform{gain:0.577_350_269_189_625_8, fan_out_only:false}")]
    pub initializer: Initializer,
}

/// Multi-head self-attention whose sub-models use the first `h` heads and the first `d` hidden
/// features of one shared set of projections.
///
/// Head `i` owns columns `i * head_dim .. (i + 1) * head_dim` of the query, key and value
/// projections and the same rows of the output projection, so `h` heads are a prefix of every
/// weight and the head dimension never changes (the softmax scale stays `1 / sqrt(head_dim)`).
/// Weight layout matches `burn::nn::Linear` (`[d_in, d_out]`); the Hugging Face BERT tensors
/// `attention.self.{query,key,value}` and `attention.output.dense` map onto the four fields
/// after a transpose.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::SortedMultiHeadAttentionConfig;
///
/// let device = Default::default();
/// let attn = SortedMultiHeadAttentionConfig::new(16, 4, 4).init::<Flex>(&device);
/// let x = Tensor::<Flex, 3>::ones([2, 5, 16], &device);
/// let y = attn.forward(x.clone(), 2, None); // the first 2 of 4 heads
/// assert_eq!(y.dims(), [2, 5, 16]);
/// // The extracted dense attention computes the same numbers.
/// let dense = attn.to_dense(16, 2);
/// y.into_data().assert_approx_eq::<f32>(&dense.forward(x, None).into_data(), Default::default());
/// ```
#[derive(Module, Debug)]
pub struct SortedMultiHeadAttention<B: Backend> {
    /// Query projection, `[d_model, n_heads * head_dim]`.
    pub query: SortedLinear<B>,
    /// Key projection, `[d_model, n_heads * head_dim]`.
    pub key: SortedLinear<B>,
    /// Value projection, `[d_model, n_heads * head_dim]`.
    pub value: SortedLinear<B>,
    /// Output projection, `[n_heads * head_dim, d_model]`.
    pub output: SortedLinear<B>,
    /// Allocated number of heads.
    pub n_heads: usize,
    /// Features per head.
    pub head_dim: usize,
}

impl SortedMultiHeadAttentionConfig {
    /// Allocates the attention on `device` (parameters materialised).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedMultiHeadAttention<B> {
        let inner = self.n_heads * self.head_dim;
        let linear = |i, o| SortedLinearConfig::new(i, o).with_initializer(self.initializer.clone()).init(device);
        SortedMultiHeadAttention {
            query: linear(self.d_model, inner),
            key: linear(self.d_model, inner),
            value: linear(self.d_model, inner),
            output: linear(inner, self.d_model),
            n_heads: self.n_heads,
            head_dim: self.head_dim,
        }
    }
}

/// Scaled dot-product attention over `heads` heads of `head_dim` features, from projected
/// queries, keys and values `[batch, seq, heads * head_dim]`; returns the concatenated heads.
fn attend<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    head_dim: usize,
    mask: Option<&PaddingMask<B>>,
) -> Tensor<B, 3> {
    let [n, s, _] = q.dims();
    let split = |t: Tensor<B, 3>| t.reshape([n, s, heads, head_dim]).swap_dims(1, 2);
    let (q, k, v) = (split(q), split(k), split(v));
    let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (head_dim as f64).sqrt());
    if let Some(mask) = mask {
        scores = scores.add(mask.bias.clone());
    }
    let weights = softmax(scores, 3);
    weights.matmul(v).swap_dims(1, 2).reshape([n, s, heads * head_dim])
}

impl<B: Backend> SortedMultiHeadAttention<B> {
    /// The allocated hidden width.
    pub fn d_model_max(&self) -> usize {
        self.query.d_input_max()
    }

    /// Self-attention of the first `heads` heads; the hidden width `d` is read from the input
    /// and the output has the same width.
    ///
    /// # Shapes
    /// - input: `[batch, seq, d]`, `d <= d_model_max()`
    /// - mask: built from `[batch, seq]` (see [`PaddingMask`])
    /// - output: `[batch, seq, d]`
    ///
    /// # Panics
    /// If `heads` is 0 or above `n_heads`, or `d` exceeds the allocation (sub-models are
    /// validated upstream).
    pub fn forward(&self, input: Tensor<B, 3>, heads: usize, mask: Option<&PaddingMask<B>>) -> Tensor<B, 3> {
        assert!(
            (1..=self.n_heads).contains(&heads),
            "SortedMultiHeadAttention: {heads} active heads outside the allocated 1..={}",
            self.n_heads
        );
        let d = input.dims()[2];
        let inner = heads * self.head_dim;
        let q = self.query.forward(input.clone(), inner);
        let k = self.key.forward(input.clone(), inner);
        let v = self.value.forward(input, inner);
        self.output.forward(attend(q, k, v, heads, self.head_dim, mask), d)
    }

    /// The analytic cost for one sequence of `seq_len` tokens with `heads` heads on `d`
    /// features: the four projections per token plus the `QK^T` and `AV` products.
    pub fn cost(&self, d: usize, heads: usize, seq_len: usize) -> Cost {
        let inner = heads * self.head_dim;
        let per_token = self.query.cost(d, inner) + self.key.cost(d, inner) + self.value.cost(d, inner);
        let per_token = per_token + self.output.cost(inner, d);
        let s = seq_len as u64;
        Cost { params: per_token.params, flops: per_token.flops * s + 2 * 2 * s * s * inner as u64 }
    }

    /// Copies the first `heads` heads on `d` features into a [`DenseMultiHeadAttention`] of
    /// ordinary `burn::nn::Linear` layers (new parameter ids, detached).
    ///
    /// # Panics
    /// If the sizes exceed the allocation.
    pub fn to_dense(&self, d: usize, heads: usize) -> DenseMultiHeadAttention<B> {
        let inner = heads * self.head_dim;
        DenseMultiHeadAttention {
            query: self.query.to_dense(d, inner),
            key: self.key.to_dense(d, inner),
            value: self.value.to_dense(d, inner),
            output: self.output.to_dense(inner, d),
            n_heads: heads,
            head_dim: self.head_dim,
        }
    }
}

/// An ordinary multi-head self-attention (no slicing): what [`SortedMultiHeadAttention::to_dense`]
/// exports. Its projections map `d_model` to `n_heads * head_dim`, which need not equal
/// `d_model` (a sub-model keeps the head dimension and drops heads).
#[derive(Module, Debug)]
pub struct DenseMultiHeadAttention<B: Backend> {
    /// Query projection.
    pub query: Linear<B>,
    /// Key projection.
    pub key: Linear<B>,
    /// Value projection.
    pub value: Linear<B>,
    /// Output projection.
    pub output: Linear<B>,
    /// Number of heads.
    pub n_heads: usize,
    /// Features per head.
    pub head_dim: usize,
}

impl<B: Backend> DenseMultiHeadAttention<B> {
    /// Self-attention over `[batch, seq, d_model]`.
    pub fn forward(&self, input: Tensor<B, 3>, mask: Option<&PaddingMask<B>>) -> Tensor<B, 3> {
        let q = self.query.forward(input.clone());
        let k = self.key.forward(input.clone());
        let v = self.value.forward(input);
        self.output.forward(attend(q, k, v, self.n_heads, self.head_dim, mask))
    }
}
