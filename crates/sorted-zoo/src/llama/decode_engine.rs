//! What the decoding algorithms (greedy, self-speculative, early exit) need from a decoder,
//! and the two decoders that provide it: Burn tensors on the model's device, or one fused pass
//! per layer on the host CPU ([`sorted_kernels::HostDecoder`]).

use burn::prelude::*;
use sorted_kernels::{HostDecoder, HostKvCache};
use sorted_nn::TransformerSubModel;

use super::model::{DecodeWeights, KvCache, SortedLlama};

/// The steps of decoding: embed tokens, run a range of layers through a KV cache, and read
/// tokens off hidden states. Hidden states hold one row per position.
pub(crate) trait DecodeEngine {
    /// Hidden states of a few positions.
    type Hidden: Clone;
    /// A KV cache.
    type Cache;

    /// An empty cache.
    fn new_cache(&self) -> Self::Cache;
    /// Positions cached in layer `layer`.
    fn cached(&self, cache: &Self::Cache, layer: usize) -> usize;
    /// Drops every position from `len` on.
    fn truncate(&self, cache: &mut Self::Cache, len: usize);
    /// The embeddings of `tokens`.
    fn embed(&self, tokens: &[u32]) -> Self::Hidden;
    /// Layers `from..to` at the widths of `sub` (its query heads and SwiGLU units), each
    /// continuing from its cache length.
    fn run_layers(
        &self,
        x: Self::Hidden,
        from: usize,
        to: usize,
        sub: &TransformerSubModel,
        cache: &mut Self::Cache,
    ) -> Self::Hidden;
    /// Hidden states of several calls, in order.
    fn cat(&self, parts: Vec<Self::Hidden>) -> Self::Hidden;
    /// The most likely token after the last position (over the first `vocab` tokens, or all).
    fn last_argmax(&self, h: Self::Hidden, vocab: Option<usize>) -> u32;
    /// The most likely token after every position.
    fn argmax_all(&self, h: Self::Hidden) -> Vec<u32>;
    /// The softmax probability of the most likely token after the last position, and that
    /// token.
    fn top(&self, h: Self::Hidden) -> (f32, u32);
    /// Keys and values of `x` appended to layer `layer`'s cache without running the layer.
    fn append_kv(&self, x: &Self::Hidden, layer: usize, cache: &mut Self::Cache);
}

/// Decoding with Burn tensors: the model, and optionally its decoding-layout weights.
pub(crate) struct BurnEngine<'a, B: Backend> {
    pub(crate) model: &'a SortedLlama<B>,
    pub(crate) weights: Option<&'a DecodeWeights<B>>,
}

impl<B: Backend> BurnEngine<'_, B> {
    /// Logits from hidden states (over the first `vocab` tokens, or all).
    fn head(&self, hidden: Tensor<B, 3>, vocab: Option<usize>) -> Tensor<B, 3> {
        match vocab {
            Some(n) => self.model.head_prefix(hidden, n),
            None => self.model.head(hidden),
        }
    }
}

impl<B: Backend> DecodeEngine for BurnEngine<'_, B> {
    type Hidden = Tensor<B, 3>;
    type Cache = KvCache<B>;

    fn new_cache(&self) -> KvCache<B> {
        KvCache::new()
    }

    fn cached(&self, cache: &KvCache<B>, layer: usize) -> usize {
        cache.len_of(layer)
    }

    fn truncate(&self, cache: &mut KvCache<B>, len: usize) {
        cache.truncate(len);
    }

    fn embed(&self, tokens: &[u32]) -> Tensor<B, 3> {
        let device = self.model.embedding.device();
        let values: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let ids =
            Tensor::<B, 1, Int>::from_data(TensorData::new(values, [tokens.len()]), &device).reshape([1, tokens.len()]);
        burn::tensor::module::embedding(self.model.embedding.val(), ids)
    }

    fn run_layers(
        &self,
        x: Tensor<B, 3>,
        from: usize,
        to: usize,
        sub: &TransformerSubModel,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        self.model.run_layers_with(x, from, to, sub, cache, self.weights)
    }

    fn cat(&self, parts: Vec<Tensor<B, 3>>) -> Tensor<B, 3> {
        Tensor::cat(parts, 1)
    }

    fn last_argmax(&self, h: Tensor<B, 3>, vocab: Option<usize>) -> u32 {
        let logits = self.head(h, vocab);
        let [_, s, v] = logits.dims();
        let last = logits.slice(s![0..1, s - 1..s, ..]).reshape([v]);
        last.argmax(0).into_scalar().elem::<i64>() as u32
    }

    fn argmax_all(&self, h: Tensor<B, 3>) -> Vec<u32> {
        let logits = self.head(h, None);
        let [_, s, v] = logits.dims();
        logits.reshape([s, v]).argmax(1).into_data().iter::<i64>().map(|t| t as u32).collect()
    }

    fn top(&self, h: Tensor<B, 3>) -> (f32, u32) {
        let logits = self.head(h, None);
        let [_, s, v] = logits.dims();
        let last = logits.slice(s![0..1, s - 1..s, ..]).reshape([1, v]);
        let probs = burn::tensor::activation::softmax(last, 1);
        let top = probs.clone().max().into_scalar().elem::<f32>();
        (top, probs.argmax(1).into_scalar().elem::<i64>() as u32)
    }

    fn append_kv(&self, x: &Tensor<B, 3>, layer: usize, cache: &mut KvCache<B>) {
        if cache.layers.len() < self.model.layers.len() {
            cache.layers.resize_with(self.model.layers.len(), || None);
        }
        let position = cache.len_of(layer);
        self.model.layers[layer].append_kv(x.clone(), position, self.model.rope_theta, &mut cache.layers[layer]);
    }
}

/// Index of the largest value (the first of equal ones, as Burn's argmax).
fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

impl DecodeEngine for HostDecoder {
    type Hidden = Vec<f32>;
    type Cache = HostKvCache;

    fn new_cache(&self) -> HostKvCache {
        HostDecoder::new_cache(self)
    }

    fn cached(&self, cache: &HostKvCache, layer: usize) -> usize {
        cache.len_of(layer)
    }

    fn truncate(&self, cache: &mut HostKvCache, len: usize) {
        cache.truncate(len);
    }

    fn embed(&self, tokens: &[u32]) -> Vec<f32> {
        HostDecoder::embed(self, tokens)
    }

    fn run_layers(
        &self,
        x: Vec<f32>,
        from: usize,
        to: usize,
        sub: &TransformerSubModel,
        cache: &mut HostKvCache,
    ) -> Vec<f32> {
        HostDecoder::run_layers(self, x, from, to, sub.heads, sub.ffn, cache)
    }

    fn cat(&self, parts: Vec<Vec<f32>>) -> Vec<f32> {
        parts.concat()
    }

    fn last_argmax(&self, h: Vec<f32>, vocab: Option<usize>) -> u32 {
        let d = self.shape().hidden;
        let last = &h[h.len() - d..];
        argmax(&self.logits(last, vocab.unwrap_or(self.vocab())))
    }

    fn argmax_all(&self, h: Vec<f32>) -> Vec<u32> {
        let vocab = self.vocab();
        self.logits(&h, vocab).chunks_exact(vocab).map(argmax).collect()
    }

    fn top(&self, h: Vec<f32>) -> (f32, u32) {
        let d = self.shape().hidden;
        let logits = self.logits(&h[h.len() - d..], self.vocab());
        let best = argmax(&logits);
        let max = logits[best as usize];
        let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
        (1.0 / total, best)
    }

    fn append_kv(&self, x: &Vec<f32>, layer: usize, cache: &mut HostKvCache) {
        HostDecoder::append_kv(self, layer, x, cache);
    }
}
