//! The sorted BERT encoder and its sequence classifier.

use burn::config::Config;
use burn::module::Initializer;
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use serde::{Deserialize, Serialize};
use sorted_nn::{
    Cost, PaddingMask, SortedEmbedding, SortedEmbeddingConfig, SortedLayerNorm, SortedLayerNormConfig, SortedLinear,
    SortedLinearConfig, SortedMultiHeadAttention, SortedMultiHeadAttentionConfig, SpecError, TransformerSpace,
    TransformerSubModel,
};

/// How the classifier reads one vector out of the encoder's token states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean of the real (unpadded) tokens' states: what sentence-transformers models such
    /// as all-MiniLM-L6-v2 were trained with.
    #[default]
    Mean,
    /// BERT's pooler: `tanh(dense(state of [CLS]))`.
    Cls,
}

/// Configuration of a [`SortedBert`]: the allocated (pretrained) sizes and the head.
#[derive(Config, Debug)]
pub struct SortedBertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Attention heads per layer.
    pub num_heads: usize,
    /// FFN inner width.
    pub intermediate_size: usize,
    /// Learned positions.
    #[config(default = 512)]
    pub max_position_embeddings: usize,
    /// Token types (segments).
    #[config(default = 2)]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[config(default = 1e-12)]
    pub layer_norm_eps: f64,
    /// Dropout on embeddings, attention output and FFN output during training.
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Classes of the classification head.
    #[config(default = 2)]
    pub num_classes: usize,
    /// How token states are pooled for the head.
    #[config(default = "Pooling::Mean")]
    pub pooling: Pooling,
}

impl SortedBertConfig {
    /// all-MiniLM-L6-v2's sizes: 6 layers, hidden 384, 12 heads of 32, FFN 1536, vocabulary
    /// 30,522.
    pub fn minilm_l6() -> Self {
        Self::new(30_522, 384, 6, 12, 1536)
    }

    /// A tiny BERT for tests: vocabulary 64, hidden 16, 3 layers, 4 heads of 4, FFN 32, 32
    /// positions.
    pub fn tiny() -> Self {
        Self::new(64, 16, 3, 4, 32).with_max_position_embeddings(32)
    }

    /// Features per head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Checks the sizes: all positive, `hidden_size` divisible by `num_heads`, dropout in
    /// `[0, 1)`.
    ///
    /// # Errors
    /// [`SpecError::Conflict`] naming the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        let fields = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
            ("num_classes", self.num_classes),
        ];
        if let Some((key, _)) = fields.iter().find(|(_, v)| *v == 0) {
            return Err(SpecError::Zero { key: key.to_string() });
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(SpecError::Conflict {
                keys: "hidden_size, num_heads".into(),
                why: format!("hidden_size {} is not a multiple of num_heads {}", self.hidden_size, self.num_heads),
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(SpecError::Conflict {
                keys: "dropout".into(),
                why: format!("{} is not in [0, 1)", self.dropout),
            });
        }
        Ok(())
    }

    /// Allocates a randomly initialised model (BERT's initializer: normal, std 0.02; zero
    /// biases).
    ///
    /// # Panics
    /// If the config is invalid (call [`SortedBertConfig::validate`] on user input first).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedBert<B> {
        self.validate().expect("valid BERT config");
        let init = Initializer::Normal { mean: 0.0, std: 0.02 };
        let (d, f) = (self.hidden_size, self.intermediate_size);
        let linear = |i, o| SortedLinearConfig::new(i, o).with_initializer(init.clone()).init(device);
        let norm = || SortedLayerNormConfig::new(d).with_epsilon(self.layer_norm_eps).init(device);
        let table = |n| SortedEmbeddingConfig::new(n, d).with_initializer(init.clone()).init(device);
        let layers = (0..self.num_layers)
            .map(|_| SortedBertLayer {
                attention: SortedMultiHeadAttentionConfig::new(d, self.num_heads, self.head_dim())
                    .with_initializer(init.clone())
                    .init(device),
                attention_norm: norm(),
                intermediate: linear(d, f),
                output: linear(f, d),
                output_norm: norm(),
                dropout: DropoutConfig::new(self.dropout).init(),
            })
            .collect();
        let model = SortedBert {
            word_embeddings: table(self.vocab_size),
            position_embeddings: table(self.max_position_embeddings),
            token_type_embeddings: table(self.type_vocab_size),
            embedding_norm: norm(),
            layers,
            pooler: (self.pooling == Pooling::Cls).then(|| linear(d, d)),
            classifier: linear(d, self.num_classes),
            dropout: DropoutConfig::new(self.dropout).init(),
            num_classes: self.num_classes,
        };
        let _ = model.devices();
        model
    }
}

/// One post-LN BERT layer with nested heads, FFN width and hidden width.
#[derive(Module, Debug)]
pub struct SortedBertLayer<B: Backend> {
    /// Self-attention (HF `attention.self` + `attention.output.dense`).
    pub attention: SortedMultiHeadAttention<B>,
    /// LayerNorm after the attention residual (HF `attention.output.LayerNorm`).
    pub attention_norm: SortedLayerNorm<B>,
    /// FFN in (HF `intermediate.dense`).
    pub intermediate: SortedLinear<B>,
    /// FFN out (HF `output.dense`).
    pub output: SortedLinear<B>,
    /// LayerNorm after the FFN residual (HF `output.LayerNorm`).
    pub output_norm: SortedLayerNorm<B>,
    /// Dropout on both residual branches (training only).
    pub dropout: Dropout,
}

impl<B: Backend> SortedBertLayer<B> {
    /// One layer on `[batch, seq, hidden]` with `heads` heads and `ffn` FFN units.
    pub fn forward(&self, x: Tensor<B, 3>, heads: usize, ffn: usize, mask: Option<&PaddingMask<B>>) -> Tensor<B, 3> {
        let d = x.dims()[2];
        let a = self.attention.forward(x.clone(), heads, mask);
        let x = self.attention_norm.forward(x.add(self.dropout.forward(a)));
        let h = gelu(self.intermediate.forward(x.clone(), ffn));
        let o = self.output.forward(h, d);
        self.output_norm.forward(x.add(self.dropout.forward(o)))
    }

    fn cost(&self, d: usize, heads: usize, ffn: usize, seq_len: usize) -> Cost {
        let s = seq_len as u64;
        let ffn_cost = self.intermediate.cost(d, ffn) + self.output.cost(ffn, d);
        self.attention.cost(d, heads, seq_len)
            + Cost { params: ffn_cost.params, flops: ffn_cost.flops * s }
            + Cost::norm(d)
            + Cost::norm(d)
    }
}

/// A BERT encoder with a classification head whose sub-models are a prefix of its layers, each
/// using its first `h` heads, `f` FFN units and `d` hidden features ([`TransformerSubModel`]).
///
/// Every sub-model reads the same head (pooling, optional pooler, classifier) from the last
/// active layer's states. Parameter names follow the Hugging Face `BertModel` tensors one to
/// one (see [`SortedBert::load_hf_safetensors`](crate::SortedBert::load_hf_safetensors)).
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
/// use sorted_zoo::SortedBertConfig;
///
/// let device = Default::default();
/// let config = SortedBertConfig::tiny();
/// let model = config.init::<Flex>(&device);
/// let space = TransformerSpace::new(
///     TransformerSpaceConfig { depths: vec![1, 3], heads: vec![2, 4], ffn: vec![16, 32], hidden: None },
///     config.hidden_size,
/// )?;
/// model.check_space(&space)?;
/// let ids = Tensor::<Flex, 2, Int>::from_ints([[2, 7, 9, 3], [2, 5, 3, 0]], &device);
/// let mask = Tensor::<Flex, 2>::from_floats([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]], &device);
/// let logits = model.forward(ids, None, mask, &space.smallest());
/// assert_eq!(logits.dims(), [2, 2]);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Module, Debug)]
pub struct SortedBert<B: Backend> {
    /// Token embeddings, `[vocab, hidden]`.
    pub word_embeddings: SortedEmbedding<B>,
    /// Learned positions, `[max_positions, hidden]`.
    pub position_embeddings: SortedEmbedding<B>,
    /// Token types, `[types, hidden]`.
    pub token_type_embeddings: SortedEmbedding<B>,
    /// LayerNorm of the summed embeddings.
    pub embedding_norm: SortedLayerNorm<B>,
    /// The encoder layers.
    pub layers: Vec<SortedBertLayer<B>>,
    /// BERT's pooler (`Pooling::Cls` only), `[hidden, hidden]`.
    pub pooler: Option<SortedLinear<B>>,
    /// The shared classifier, `[hidden, classes]`.
    pub classifier: SortedLinear<B>,
    /// Dropout on the embeddings and the pooled vector (training only).
    pub dropout: Dropout,
    /// Number of classes.
    pub num_classes: usize,
}

impl<B: Backend> SortedBert<B> {
    /// The allocated hidden width.
    pub fn hidden_size(&self) -> usize {
        self.embedding_norm.d_model_max()
    }

    /// Checks that every sub-model of `space` fits the allocation.
    ///
    /// # Errors
    /// [`SpecError::Allocation`] naming the axis that does not fit.
    pub fn check_space(&self, space: &TransformerSpace) -> Result<(), SpecError> {
        let full = space.largest();
        let attention = &self.layers[0].attention;
        let checks = [
            ("depth (layers)", self.layers.len(), full.depth),
            ("heads", attention.n_heads, full.heads),
            ("ffn", self.layers[0].intermediate.d_output_max(), full.ffn),
            ("hidden", self.hidden_size(), full.hidden),
        ];
        match checks.into_iter().find(|(_, allocated, needed)| needed > allocated) {
            Some((what, allocated, needed)) => Err(SpecError::Allocation { what: what.into(), allocated, needed }),
            None => Ok(()),
        }
    }

    /// The token states of sub-model `sub` after its last active layer, `[batch, seq, hidden]`.
    ///
    /// `input_ids` and `token_type_ids` (`None`: all type 0) are `[batch, seq]`;
    /// `attention_mask` is `1.0` for real tokens and `0.0` for padding.
    ///
    /// # Panics
    /// If `seq` exceeds the learned positions or `sub` does not fit the allocation (validate
    /// with [`SortedBert::check_space`]).
    pub fn encode(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        attention_mask: Tensor<B, 2>,
        sub: &TransformerSubModel,
    ) -> Tensor<B, 3> {
        let [n, s] = input_ids.dims();
        let d = sub.hidden;
        let device = input_ids.device();
        assert!(
            s <= self.position_embeddings.n_embedding(),
            "SortedBert: sequence of {s} tokens is longer than the {} learned positions",
            self.position_embeddings.n_embedding()
        );
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device).reshape([1, s]).repeat_dim(0, n);
        let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([n, s], &device));
        let x = self.word_embeddings.forward(input_ids, d)
            + self.position_embeddings.forward(positions, d)
            + self.token_type_embeddings.forward(types, d);
        let mut x = self.dropout.forward(self.embedding_norm.forward(x));
        let mask = PaddingMask::from_attention_mask(attention_mask);
        for layer in &self.layers[..sub.depth] {
            x = layer.forward(x, sub.heads, sub.ffn, Some(&mask));
        }
        x
    }

    /// Mean of the real tokens' states, `[batch, hidden]`.
    pub fn mean_pool(states: Tensor<B, 3>, attention_mask: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, s] = attention_mask.dims();
        let mask = attention_mask.reshape([n, s, 1]);
        let summed = states.mul(mask.clone()).sum_dim(1).squeeze_dim::<2>(1);
        let count = mask.sum_dim(1).squeeze_dim::<2>(1).clamp_min(1e-9);
        summed.div(count)
    }

    /// The logits of sub-model `sub`, `[batch, num_classes]` (inputs as in
    /// [`SortedBert::encode`]).
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        attention_mask: Tensor<B, 2>,
        sub: &TransformerSubModel,
    ) -> Tensor<B, 2> {
        let states = self.encode(input_ids, token_type_ids, attention_mask.clone(), sub);
        let pooled = match &self.pooler {
            Some(pooler) => {
                let [n, _, d] = states.dims();
                let cls = states.slice(s![.., 0..1, ..]).reshape([n, d]);
                pooler.forward(cls, d).tanh()
            }
            None => Self::mean_pool(states, attention_mask),
        };
        self.classifier.forward(self.dropout.forward(pooled), self.num_classes)
    }

    /// Analytic cost of sub-model `sub` for one sequence of `seq_len` tokens: the embedding
    /// rows it can read, its layers, the pooler and the classifier.
    pub fn cost(&self, sub: &TransformerSubModel, seq_len: usize) -> Cost {
        let d = sub.hidden;
        let tables = (self.word_embeddings.n_embedding()
            + self.position_embeddings.n_embedding()
            + self.token_type_embeddings.n_embedding()) as u64;
        let mut cost = Cost { params: tables * d as u64, flops: 0 } + Cost::norm(d);
        for layer in &self.layers[..sub.depth] {
            cost += layer.cost(d, sub.heads, sub.ffn, seq_len);
        }
        if let Some(pooler) = &self.pooler {
            cost += pooler.cost(d, d);
        }
        cost + self.classifier.cost(d, self.num_classes)
    }
}
