//! The sorted LLaMA decoder: RMSNorm, RoPE on adjacent pairs, grouped-query attention, SwiGLU,
//! tied embeddings, a KV cache; nested depth (exits sharing the final norm and LM head), nested
//! FFN width and nested query heads per KV group.

use burn::config::Config;
use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};
use sorted_nn::{RmsNorm, SortedLinear, SortedLinearConfig, SpecError, TransformerSpace, TransformerSubModel, rope};

use super::row_product::matmul_by_transposed;
use super::sub_models::LlamaSubModels;

/// Configuration of a [`SortedLlama`]: the allocated sizes.
#[derive(Config, Debug)]
pub struct SortedLlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads per layer.
    pub num_heads: usize,
    /// Key/value heads per layer (grouped-query attention; divides `num_heads`).
    pub num_kv_heads: usize,
    /// Features per head.
    pub head_dim: usize,
    /// SwiGLU inner width.
    pub intermediate_size: usize,
    /// RoPE base.
    #[config(default = 10_000.0)]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[config(default = 1e-5)]
    pub rms_norm_eps: f64,
}

impl SortedLlamaConfig {
    /// SmolLM2-135M's sizes: 30 layers, hidden 576, 9 query / 3 KV heads of 64, SwiGLU 1536,
    /// RoPE base 100,000, vocabulary 49,152, tied embeddings.
    pub fn smollm2_135m() -> Self {
        Self::new(49_152, 576, 30, 9, 3, 64, 1536).with_rope_theta(100_000.0)
    }

    /// A tiny decoder for tests: vocabulary 50, hidden 16, 4 layers, 4 query / 2 KV heads of 4,
    /// SwiGLU 24.
    pub fn tiny() -> Self {
        Self::new(50, 16, 4, 4, 2, 4, 24)
    }

    /// Checks that every sub-model of `space` fits a decoder of these sizes, as
    /// [`SortedLlama::check_space`] checks the loaded model: without allocating it (a GGUF
    /// file's sizes are read from its metadata alone).
    ///
    /// # Errors
    /// As [`SortedLlama::check_space`].
    pub fn check_space(&self, space: &TransformerSpace) -> Result<(), SpecError> {
        let allocated = Allocation {
            layers: self.num_layers,
            ffn: self.intermediate_size,
            heads: self.num_heads,
            kv_heads: self.num_kv_heads,
            hidden: self.hidden_size,
        };
        allocated.check(space)
    }

    /// Checks the sizes.
    ///
    /// # Errors
    /// [`SpecError`] naming the field: a zero size, or `num_heads` not a multiple of
    /// `num_kv_heads`, or an odd `head_dim` (RoPE rotates pairs).
    pub fn validate(&self) -> Result<(), SpecError> {
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("intermediate_size", self.intermediate_size),
        ] {
            if v == 0 {
                return Err(SpecError::Zero { key: key.into() });
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(SpecError::Conflict {
                keys: "num_heads, num_kv_heads".into(),
                why: format!("{} query heads cannot be grouped over {} KV heads", self.num_heads, self.num_kv_heads),
            });
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(SpecError::Conflict {
                keys: "head_dim".into(),
                why: "RoPE needs an even head dimension".into(),
            });
        }
        Ok(())
    }

    /// Allocates a randomly initialised decoder (normal, std 0.02).
    ///
    /// # Panics
    /// If the config is invalid (validate user input first).
    pub fn init<B: Backend>(&self, device: &B::Device) -> SortedLlama<B> {
        self.init_as(Initializer::Normal { mean: 0.0, std: 0.02 }, device)
    }

    /// Allocates a decoder whose matrices start as `init` (zeros for one about to be
    /// overwritten by loaded weights: no random numbers drawn for nothing).
    ///
    /// # Panics
    /// If the config is invalid (validate user input first).
    pub(crate) fn init_as<B: Backend>(&self, init: Initializer, device: &B::Device) -> SortedLlama<B> {
        self.validate().expect("valid LLaMA config");
        let linear = |i, o| SortedLinearConfig::new(i, o).with_bias(false).with_initializer(init.clone()).init(device);
        let (d, f, hd) = (self.hidden_size, self.intermediate_size, self.head_dim);
        let norm = || RmsNorm { weight: Param::from_tensor(Tensor::ones([d], device)), epsilon: self.rms_norm_eps };
        let layers = (0..self.num_layers)
            .map(|_| SortedLlamaLayer {
                attention_norm: norm(),
                query: linear(d, self.num_heads * hd),
                key: linear(d, self.num_kv_heads * hd),
                value: linear(d, self.num_kv_heads * hd),
                output: linear(self.num_heads * hd, d),
                ffn_norm: norm(),
                gate: linear(d, f),
                up: linear(d, f),
                down: linear(f, d),
                num_heads: self.num_heads,
                num_kv_heads: self.num_kv_heads,
                head_dim: hd,
            })
            .collect();
        let model = SortedLlama {
            embedding: init.init_with([self.vocab_size, d], None, None, device),
            layers,
            norm: norm(),
            rope_theta: self.rope_theta,
        };
        let _ = model.devices();
        model
    }
}

/// The keys and values of one layer for the positions seen so far, `[batch, kv_heads, t,
/// head_dim]`.
#[derive(Clone, Debug)]
pub struct LayerCache<B: Backend> {
    /// Cached keys (after RoPE).
    pub keys: Tensor<B, 4>,
    /// Cached values.
    pub values: Tensor<B, 4>,
}

/// The KV cache of a decoder: one entry per layer that has run, and the number of positions.
#[derive(Clone, Debug, Default)]
pub struct KvCache<B: Backend> {
    /// Per layer (only layers that have run hold an entry).
    pub layers: Vec<Option<LayerCache<B>>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache.
    pub fn new() -> Self {
        Self { layers: Vec::new() }
    }

    /// Positions cached in layer `layer` (0 if it has not run).
    pub fn len_of(&self, layer: usize) -> usize {
        self.layers.get(layer).and_then(Option::as_ref).map_or(0, |c| c.keys.dims()[2])
    }

    /// Drops every cached position from `len` on, in every layer (rejected draft tokens).
    pub fn truncate(&mut self, len: usize) {
        for entry in self.layers.iter_mut().flatten() {
            let [b, h, t, d] = entry.keys.dims();
            if t > len {
                entry.keys = entry.keys.clone().slice([0..b, 0..h, 0..len, 0..d]);
                entry.values = entry.values.clone().slice([0..b, 0..h, 0..len, 0..d]);
            }
        }
    }
}

/// One pre-norm decoder layer with a nested SwiGLU width.
#[derive(Module, Debug)]
pub struct SortedLlamaLayer<B: Backend> {
    /// RMSNorm before attention (GGUF `attn_norm`).
    pub attention_norm: RmsNorm<B>,
    /// Query projection, `[d, heads * head_dim]` (GGUF `attn_q`).
    pub query: SortedLinear<B>,
    /// Key projection, `[d, kv_heads * head_dim]` (`attn_k`).
    pub key: SortedLinear<B>,
    /// Value projection (`attn_v`).
    pub value: SortedLinear<B>,
    /// Output projection, `[heads * head_dim, d]` (`attn_output`).
    pub output: SortedLinear<B>,
    /// RMSNorm before the FFN (`ffn_norm`).
    pub ffn_norm: RmsNorm<B>,
    /// SwiGLU gate, `[d, ffn]` (`ffn_gate`).
    pub gate: SortedLinear<B>,
    /// SwiGLU up, `[d, ffn]` (`ffn_up`).
    pub up: SortedLinear<B>,
    /// SwiGLU down, `[ffn, d]` (`ffn_down`).
    pub down: SortedLinear<B>,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Features per head.
    pub head_dim: usize,
}

/// The projection weights of one layer transposed to `[out, in]` and made contiguous: the
/// layout in which Flex's gemm multiplies the few rows of a decoding step (1-8 new tokens)
/// fastest. The query heads are also reordered **head-major** (the first head of every KV
/// group, then the second of every group, ...), in the query's rows and the output's columns,
/// so that a sub-model keeping the first `k` heads per group uses a prefix of both instead of
/// a gathered copy. Build them with [`SortedLlama::decode_weights`] after training; they are a
/// copy, not a view, so they go stale if the model changes.
#[derive(Clone, Debug)]
pub struct DecodeLayerWeights<B: Backend> {
    query: DecodeMatrix<B>,
    key: DecodeMatrix<B>,
    value: DecodeMatrix<B>,
    output: DecodeMatrix<B>,
    gate: DecodeMatrix<B>,
    up: DecodeMatrix<B>,
    down: DecodeMatrix<B>,
}

/// One projection `[out, in]` in the decoding layout: a contiguous copy on the model's device.
#[derive(Clone, Debug)]
struct DecodeMatrix<B: Backend>(Tensor<B, 2>);

impl<B: Backend> DecodeMatrix<B> {
    /// `t` (`[out, in]`, any strides) copied out once into a contiguous tensor.
    fn new(t: Tensor<B, 2>) -> Self {
        let device = t.device();
        Self(Tensor::from_data(t.into_data(), &device))
    }
}

/// [`DecodeLayerWeights`] for every layer of a [`SortedLlama`].
#[derive(Clone, Debug)]
pub struct DecodeWeights<B: Backend> {
    layers: Vec<DecodeLayerWeights<B>>,
}

impl<B: Backend> DecodeWeights<B> {
    /// Bytes of the projection weights one decoding step streams at full size (4 per weight).
    pub fn bytes(&self) -> usize {
        let matrix = |m: &DecodeMatrix<B>| 4 * m.0.dims().iter().product::<usize>();
        self.layers
            .iter()
            .map(|l| {
                [&l.query, &l.key, &l.value, &l.output, &l.gate, &l.up, &l.down].into_iter().map(matrix).sum::<usize>()
            })
            .sum()
    }
}

/// `x @ W` for `x` `[b, s, active_in]` and `W` given transposed (`[out_max, in_max]`), using
/// its first `out` rows and first `active_in` columns.
fn project_transposed<B: Backend>(x: Tensor<B, 3>, weight_t: &DecodeMatrix<B>, out: usize) -> Tensor<B, 3> {
    let [b, s, i] = x.dims();
    let w = weight_t.0.clone().slice([0..out, 0..i]);
    matmul_by_transposed(x.reshape([b * s, i]), w).reshape([b, s, out])
}

/// The rows of `w` (`[groups * block, c]`) holding the first `keep` rows of each of the
/// `groups` equal blocks, in order: the weights of the first query heads of every KV group
/// when the rows are heads.
fn group_rows<B: Backend>(w: Tensor<B, 2>, groups: usize, keep: usize) -> Tensor<B, 2> {
    let [r, c] = w.dims();
    w.reshape([groups, r / groups, c]).slice([0..groups, 0..keep, 0..c]).reshape([groups * keep, c])
}

/// [`group_rows`] over the columns of `w` (`[r, groups * block]`).
fn group_cols<B: Backend>(w: Tensor<B, 2>, groups: usize, keep: usize) -> Tensor<B, 2> {
    let [r, c] = w.dims();
    w.reshape([r, groups, c / groups]).slice([0..r, 0..groups, 0..keep]).reshape([r, groups * keep])
}

/// `x @ w` for `x` `[b, s, i]` and `w` `[i, o]`.
fn matmul3<B: Backend>(x: Tensor<B, 3>, w: Tensor<B, 2>) -> Tensor<B, 3> {
    let [b, s, i] = x.dims();
    let o = w.dims()[1];
    x.reshape([b * s, i]).matmul(w).reshape([b, s, o])
}

impl<B: Backend> SortedLlamaLayer<B> {
    /// Checks that the widths of `sub` fit this layer (its depth is not the layer's concern).
    ///
    /// # Panics
    /// If `sub.heads` is not a positive multiple of the KV heads up to the allocated heads, or
    /// `sub.ffn` is 0 or above the allocated SwiGLU width.
    fn check_widths(&self, sub: &TransformerSubModel) {
        let (nh, nkv) = (self.num_heads, self.num_kv_heads);
        assert!(
            sub.heads >= nkv && sub.heads <= nh && sub.heads.is_multiple_of(nkv),
            "LLaMA layer: {} query heads are not a multiple of {nkv} KV heads in {nkv}..={nh}",
            sub.heads
        );
        let f = self.gate.d_output_max();
        assert!(sub.ffn >= 1 && sub.ffn <= f, "LLaMA layer: SwiGLU width {} outside 1..={f}", sub.ffn);
    }

    /// One layer on `[batch, seq, d]` for positions `start..start + seq`, attending to the
    /// cached positions and causally to the new ones; appends the new keys and values to
    /// `cache`. The layer runs the first `sub.ffn` SwiGLU units and the first `sub.heads /
    /// num_kv_heads` query heads of every KV group (`sub.depth` is ignored: the caller picks the
    /// layers).
    ///
    /// # Panics
    /// If the widths of `sub` do not fit the layer (see [`SortedLlama::check_space`]).
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        sub: &TransformerSubModel,
        start: usize,
        theta: f64,
        cache: &mut Option<LayerCache<B>>,
    ) -> Tensor<B, 3> {
        self.forward_with(x, sub, start, theta, cache, None)
    }

    /// [`SortedLlamaLayer::forward`], with the projections taken from `weights` (the decoding
    /// layout) when given: the same values up to floating-point summation order.
    pub fn forward_with(
        &self,
        x: Tensor<B, 3>,
        sub: &TransformerSubModel,
        start: usize,
        theta: f64,
        cache: &mut Option<LayerCache<B>>,
        weights: Option<&DecodeLayerWeights<B>>,
    ) -> Tensor<B, 3> {
        self.check_widths(sub);
        let [b, s, d] = x.dims();
        let (nkv, hd) = (self.num_kv_heads, self.head_dim);
        let (nh, ffn) = (sub.heads, sub.ffn);
        // Active query heads per KV group, and whether some are inactive.
        let per_group = nh / nkv;
        let narrow = nh < self.num_heads;
        let project = |which: &SortedLinear<B>, t: Option<&DecodeMatrix<B>>, x: Tensor<B, 3>, out: usize| match t {
            Some(t) => project_transposed(x, t, out),
            None => which.forward(x, out),
        };
        let h = self.attention_norm.forward(x.clone());
        // The decoding layout orders the heads head-major (see `DecodeLayerWeights`): the active
        // heads are a prefix. The model's own layout is group-major, so a narrow sub-model
        // gathers each group's first heads.
        let q = match (narrow, weights) {
            (_, Some(w)) => project_transposed(h.clone(), &w.query, nh * hd),
            (false, None) => self.query.forward(h.clone(), nh * hd),
            (true, None) => matmul3(h.clone(), group_cols(self.query.weight.val(), nkv, per_group * hd)),
        };
        let q = rope(q.reshape([b, s, nh, hd]).swap_dims(1, 2), start, theta);
        let (k, v) = self.append_kv_projected(
            project(&self.key, weights.map(|w| &w.key), h.clone(), nkv * hd),
            project(&self.value, weights.map(|w| &w.value), h, nkv * hd),
            start,
            theta,
            cache,
        );
        let t = k.dims()[2];
        // Grouped-query attention without copying keys and values: the queries of each KV
        // group's heads are stacked as `per_group * s` rows against that group's keys. Group-major
        // (the model's layout): active query head i reads KV head i / per_group, so a group's
        // heads are consecutive; head-major (the decoding layout): KV head i % nkv, so head i is
        // row group i / nkv of group i % nkv.
        let head_major = weights.is_some() && per_group > 1;
        let q = if head_major {
            q.reshape([b, per_group, nkv, s, hd]).swap_dims(1, 2)
        } else {
            q.reshape([b, nkv, per_group, s, hd])
        };
        let q = q.reshape([b, nkv, per_group * s, hd]);
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (hd as f64).sqrt());
        if s > 1 {
            scores = scores.add(causal_bias::<B>(s, t, per_group, &x.device()));
        }
        let attended = softmax(scores, 3).matmul(v).reshape([b, nkv, per_group, s, hd]);
        let attended = if head_major { attended.swap_dims(1, 2) } else { attended };
        let attended = attended.reshape([b, nh, s, hd]).swap_dims(1, 2).reshape([b, s, nh * hd]);
        let attended = match (narrow, weights) {
            (_, Some(w)) => project_transposed(attended, &w.output, d),
            (false, None) => self.output.forward(attended, d),
            (true, None) => matmul3(attended, group_rows(self.output.weight.val(), nkv, per_group * hd)),
        };
        let x = x.add(attended);
        let h = self.ffn_norm.forward(x.clone());
        let act = silu(project(&self.gate, weights.map(|w| &w.gate), h.clone(), ffn)).mul(project(
            &self.up,
            weights.map(|w| &w.up),
            h,
            ffn,
        ));
        x.add(project(&self.down, weights.map(|w| &w.down), act, d))
    }

    /// This layer's projections in the decoding layout.
    pub fn decode_weights(&self) -> DecodeLayerWeights<B> {
        let t = |l: &SortedLinear<B>| l.weight.val().transpose();
        let (nkv, hd) = (self.num_kv_heads, self.head_dim);
        let rep = self.num_heads / nkv;
        let d = self.query.d_input_max();
        // Query rows (group g, head j) -> position j * nkv + g; the output's columns likewise.
        let query = self.query.weight.val().transpose().reshape([nkv, rep, hd, d]).swap_dims(0, 1);
        let output = self.output.weight.val().transpose().reshape([d, nkv, rep, hd]).swap_dims(1, 2);
        let m = DecodeMatrix::new;
        DecodeLayerWeights {
            query: m(query.reshape([nkv * rep * hd, d])),
            key: m(t(&self.key)),
            value: m(t(&self.value)),
            output: m(output.reshape([d, nkv * rep * hd])),
            gate: m(t(&self.gate)),
            up: m(t(&self.up)),
            down: m(t(&self.down)),
        }
    }
}

impl<B: Backend> SortedLlamaLayer<B> {
    /// Computes the keys and values of `x` (`[batch, seq, d]`, positions `start..`) and
    /// appends them to `cache`, without running the layer: how an early-exited token still
    /// leaves keys and values for the layers it skipped (its exit state copied upwards).
    pub fn append_kv(&self, x: Tensor<B, 3>, start: usize, theta: f64, cache: &mut Option<LayerCache<B>>) {
        let h = self.attention_norm.forward(x);
        let _ = self.append_kv_normed(h, start, theta, cache);
    }

    /// Keys and values of the normalised input, appended to `cache`; returns the whole cache.
    fn append_kv_normed(
        &self,
        h: Tensor<B, 3>,
        start: usize,
        theta: f64,
        cache: &mut Option<LayerCache<B>>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (nkv, hd) = (self.num_kv_heads, self.head_dim);
        let k = self.key.forward(h.clone(), nkv * hd);
        let v = self.value.forward(h, nkv * hd);
        self.append_kv_projected(k, v, start, theta, cache)
    }

    /// Projected keys and values (`[batch, seq, kv_heads * head_dim]`), rotated and appended to
    /// `cache`; returns the whole cache.
    fn append_kv_projected(
        &self,
        k: Tensor<B, 3>,
        v: Tensor<B, 3>,
        start: usize,
        theta: f64,
        cache: &mut Option<LayerCache<B>>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, s, _] = k.dims();
        let (nkv, hd) = (self.num_kv_heads, self.head_dim);
        let split = |t: Tensor<B, 3>| t.reshape([b, s, nkv, hd]).swap_dims(1, 2);
        let k = rope(split(k), start, theta);
        let v = split(v);
        let (k, v) = match cache.take() {
            Some(c) => (Tensor::cat(vec![c.keys, k], 2), Tensor::cat(vec![c.values, v], 2)),
            None => (k, v),
        };
        *cache = Some(LayerCache { keys: k.clone(), values: v.clone() });
        (k, v)
    }
}

/// `[1, 1, groups * s, t]`: `groups` copies of the `s` rows where 0 marks the keys `j` new
/// position `i` (absolute `t - s + i`) may see and `-1e9` those after it.
fn causal_bias<B: Backend>(s: usize, t: usize, groups: usize, device: &B::Device) -> Tensor<B, 4> {
    let offset = t - s;
    let values: Vec<f32> =
        (0..groups * s).flat_map(|row| (0..t).map(move |j| if j > offset + row % s { -1e9 } else { 0.0 })).collect();
    Tensor::<B, 1>::from_floats(values.as_slice(), device).reshape([1, 1, groups * s, t])
}

/// A LLaMA decoder whose sub-models are a prefix of its layers (exits through the shared final
/// RMSNorm and the tied LM head), each using its first `f` SwiGLU units and the first `k` query
/// heads of every KV group ([`TransformerSubModel`]: `depth`, `ffn` and `heads = k *
/// num_kv_heads`; the hidden width is not nested here).
///
/// Query heads are nested **per KV group**: with `g` KV heads and `heads = k * g`, every group
/// keeps its first `k` query heads, so each KV head is still read and a narrower sub-model's
/// heads are a subset of a wider one's. In the allocated layout (GGUF's: head `h` reads KV head
/// `h / (num_heads / num_kv_heads)`) those heads are not one prefix of the query projection's
/// columns but the first `k * head_dim` columns of every group's block.
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
/// use sorted_zoo::llama::{KvCache, SortedLlamaConfig};
///
/// let device = Default::default();
/// let config = SortedLlamaConfig::tiny();
/// let model = config.init::<Flex>(&device);
/// // 2 or 4 layers, 1 or 2 query heads per KV group (2 KV heads), 12 or 24 SwiGLU units.
/// let space = TransformerSpace::new(
///     TransformerSpaceConfig { depths: vec![2, 4], heads: vec![2, 4], ffn: vec![12, 24], hidden: None },
///     16,
/// )?;
/// model.check_space(&space)?;
/// let ids = Tensor::<Flex, 2, Int>::from_ints([[1, 5, 9]], &device);
/// let mut cache = KvCache::new();
/// let logits = model.forward(ids, &space.smallest(), &mut cache);
/// assert_eq!(logits.dims(), [1, 3, 50]);
/// assert_eq!(cache.len_of(0), 3);
/// # Ok::<(), sorted_nn::SpecError>(())
/// ```
#[derive(Module, Debug)]
pub struct SortedLlama<B: Backend> {
    /// Token embeddings, `[vocab, d]`; also the LM head (tied).
    pub embedding: Param<Tensor<B, 2>>,
    /// The decoder layers.
    pub layers: Vec<SortedLlamaLayer<B>>,
    /// The final RMSNorm, shared by every exit.
    pub norm: RmsNorm<B>,
    /// RoPE base.
    pub rope_theta: f64,
}

impl<B: Backend> SortedLlama<B> {
    /// Checks that every sub-model of `space` fits: depth, FFN width, and query heads that are
    /// multiples of the KV heads up to the allocated heads; the hidden width must be the
    /// allocated one.
    ///
    /// # Errors
    /// [`SpecError::Allocation`] naming the axis.
    pub fn check_space(&self, space: &TransformerSpace) -> Result<(), SpecError> {
        let l0 = &self.layers[0];
        let allocated = Allocation {
            layers: self.layers.len(),
            ffn: l0.gate.d_output_max(),
            heads: l0.num_heads,
            kv_heads: l0.num_kv_heads,
            hidden: self.embedding.dims()[1],
        };
        allocated.check(space)
    }

    /// The hidden states after the first `sub.depth` layers for tokens `ids` (`[batch, seq]`)
    /// at positions `cache.len_of(0)..`, updating the cache of those layers.
    pub fn hidden(&self, ids: Tensor<B, 2, Int>, sub: &TransformerSubModel, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let x = burn::tensor::module::embedding(self.embedding.val(), ids);
        self.run_layers(x, 0, sub.depth, sub, cache)
    }

    /// The full model as a sub-model: every layer, allocated query head and SwiGLU unit.
    ///
    /// # Panics
    /// A model without layers or with a zero size.
    pub fn full_sub_model(&self) -> TransformerSubModel {
        LlamaSubModels::of(self).full().expect("a decoder's own sizes make a sub-model")
    }

    /// Runs layers `from..to` at the widths of `sub` (its query heads and SwiGLU units; the
    /// layers run are `from..to`, not `sub.depth`) on hidden states `x` whose first position is
    /// the cache length of layer `from`.
    pub fn run_layers(
        &self,
        x: Tensor<B, 3>,
        from: usize,
        to: usize,
        sub: &TransformerSubModel,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        self.run_layers_with(x, from, to, sub, cache, None)
    }

    /// [`SortedLlama::run_layers`], with the projections in the decoding layout when `weights`
    /// is given (from [`SortedLlama::decode_weights`] of this model).
    pub fn run_layers_with(
        &self,
        mut x: Tensor<B, 3>,
        from: usize,
        to: usize,
        sub: &TransformerSubModel,
        cache: &mut KvCache<B>,
        weights: Option<&DecodeWeights<B>>,
    ) -> Tensor<B, 3> {
        if cache.layers.len() < self.layers.len() {
            cache.layers.resize_with(self.layers.len(), || None);
        }
        for (i, layer) in self.layers.iter().enumerate().take(to).skip(from) {
            let start = cache.len_of(i);
            let w = weights.map(|w| &w.layers[i]);
            x = layer.forward_with(x, sub, start, self.rope_theta, &mut cache.layers[i], w);
        }
        x
    }

    /// Every layer's projections transposed to `[out, in]` and made contiguous (a copy of the
    /// layer weights): the layout in which decoding's small matrix products run fastest on
    /// Flex (see `docs/results/smollm2-soft.md`). Rebuild after changing the model.
    pub fn decode_weights(&self) -> DecodeWeights<B> {
        DecodeWeights { layers: self.layers.iter().map(SortedLlamaLayer::decode_weights).collect() }
    }

    /// Logits from hidden states: the shared final RMSNorm, then the tied head
    /// (`[batch, seq, vocab]`).
    pub fn head(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        self.head_with(hidden, self.norm.weight.val(), self.embedding.val())
    }

    /// Logits over the first `n` tokens of the vocabulary only, `[batch, seq, n]`: the tied
    /// head's rows form a nested vocabulary (byte-level BPE ids follow merge order, so a prefix
    /// holds the most frequent tokens). A drafter whose guesses the full head verifies can
    /// use it to pay `n / vocab` of the head's cost.
    ///
    /// # Panics
    /// If `n` is 0 or above the vocabulary size.
    pub fn head_prefix(&self, hidden: Tensor<B, 3>, n: usize) -> Tensor<B, 3> {
        let [v, d] = self.embedding.dims();
        assert!(n >= 1 && n <= v, "head_prefix: {n} tokens of a {v}-token vocabulary");
        self.head_with(hidden, self.norm.weight.val(), self.embedding.val().slice([0..n, 0..d]))
    }

    /// [`SortedLlama::head`] with the given norm scale and embedding (e.g. detached).
    pub(crate) fn head_with(&self, hidden: Tensor<B, 3>, norm: Tensor<B, 1>, embedding: Tensor<B, 2>) -> Tensor<B, 3> {
        let [b, s, d] = hidden.dims();
        let h = self.norm.forward_with(hidden, norm).reshape([b * s, d]);
        let v = embedding.dims()[0];
        matmul_by_transposed(h, embedding).reshape([b, s, v])
    }

    /// Logits of sub-model `sub` for `ids`, continuing from `cache` (empty: from position 0).
    pub fn forward(&self, ids: Tensor<B, 2, Int>, sub: &TransformerSubModel, cache: &mut KvCache<B>) -> Tensor<B, 3> {
        let h = self.hidden(ids, sub, cache);
        self.head(h)
    }

    /// The logits of every exit in `depths` (ascending) from one forward pass, through the
    /// shared norm and head, every layer at the widths of `sub` (its query heads and SwiGLU
    /// units; the exits are `depths`, not `sub.depth`): what SoFT's multi-exit loss needs.
    pub fn forward_exits(
        &self,
        ids: Tensor<B, 2, Int>,
        depths: &[usize],
        sub: &TransformerSubModel,
    ) -> Vec<Tensor<B, 3>> {
        self.forward_exits_with(ids, depths, sub, |_, x| self.head(x))
    }

    /// [`SortedLlama::forward_exits`] with `head(depth, hidden)` turning each exit's hidden
    /// states into logits.
    pub(crate) fn forward_exits_with(
        &self,
        ids: Tensor<B, 2, Int>,
        depths: &[usize],
        sub: &TransformerSubModel,
        head: impl Fn(usize, Tensor<B, 3>) -> Tensor<B, 3>,
    ) -> Vec<Tensor<B, 3>> {
        let mut cache = KvCache::new();
        let mut x = burn::tensor::module::embedding(self.embedding.val(), ids);
        let mut done = 0;
        let mut out = Vec::with_capacity(depths.len());
        for &depth in depths {
            x = self.run_layers(x, done, depth, sub, &mut cache);
            done = depth;
            out.push(head(depth, x.clone()));
        }
        out
    }
}

/// What a decoder allocates along each axis of a [`TransformerSpace`], from a loaded model
/// ([`SortedLlama::check_space`]) or from its sizes ([`SortedLlamaConfig::check_space`]).
struct Allocation {
    layers: usize,
    ffn: usize,
    heads: usize,
    kv_heads: usize,
    hidden: usize,
}

impl Allocation {
    /// Every sub-model of `space` fits: depth, FFN width, query heads that are multiples of the
    /// KV heads up to the allocated heads, and the allocated hidden width.
    fn check(&self, space: &TransformerSpace) -> Result<(), SpecError> {
        let d = self.hidden;
        let full = space.largest();
        if full.depth > self.layers {
            return Err(SpecError::Allocation {
                what: "depth (layers)".into(),
                allocated: self.layers,
                needed: full.depth,
            });
        }
        if full.ffn > self.ffn {
            return Err(SpecError::Allocation { what: "ffn".into(), allocated: self.ffn, needed: full.ffn });
        }
        let nkv = self.kv_heads;
        if let Some(&bad) = space.heads().iter().find(|h| !h.is_multiple_of(nkv)) {
            return Err(SpecError::Conflict {
                keys: "heads".into(),
                why: format!(
                    "{bad} query heads cannot be spread over {nkv} KV groups: LLaMA nests query heads per KV \
                     group, so every option must be a multiple of {nkv}"
                ),
            });
        }
        if let Some(&max) = space.heads().iter().max().filter(|&&h| h > self.heads) {
            return Err(SpecError::Allocation { what: "heads".into(), allocated: self.heads, needed: max });
        }
        if space.hidden() != [d] {
            return Err(SpecError::Allocation {
                what: "hidden (not nested in LLaMA)".into(),
                allocated: d,
                needed: space.hidden()[0],
            });
        }
        Ok(())
    }
}
