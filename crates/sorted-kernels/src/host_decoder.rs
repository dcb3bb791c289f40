//! A LLaMA decoding step computed on the host in one pass per layer: RMSNorm, the projections
//! ([`HostMatrix`]), RoPE on adjacent pairs, grouped-query attention over a [`HostKvCache`]
//! that grows in place, SwiGLU, for any nested sub-model (a prefix of the layers, the first
//! query heads of every KV group, the first SwiGLU units).
//!
//! Decoding runs a handful of rows (one new token, or a draft to verify) through every layer.
//! Done as tensor operations that is about 30 small operations a layer, each with its own
//! dispatch, allocation and copy (the KV cache concatenation copies the whole cache every
//! token); here the only passes over memory are the weight products, which read each weight
//! once.

use std::sync::Arc;

use crate::host_kv_cache::{HostKvCache, LayerKv};
use crate::host_matrix::{HostMatrix, join_columns};
use crate::spinning_partner::{Partner, with_partner};

/// Layers whose SwiGLU matrices hold fewer weights than this run on one thread (the hand-overs
/// would cost more than they save).
const PARTNER_MIN_ELEMENTS: usize = 200_000;

/// The sizes of a [`HostDecoder`] that are not in its matrices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostDecoderShape {
    /// Hidden width.
    pub hidden: usize,
    /// Query heads allocated per layer.
    pub heads: usize,
    /// Key/value heads per layer (divides `heads`).
    pub kv_heads: usize,
    /// Features per head (even: RoPE rotates pairs).
    pub head_dim: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
}

/// One pre-norm decoder layer's weights, each projection `[out, in]`.
///
/// The query heads are **head-major**: rows `(j * kv_heads + g) * head_dim..` of `query` (and
/// the same columns of `output`) belong to query head `j` of KV group `g`, so a sub-model with
/// the first `k` heads of every group uses the first `k * kv_heads` heads, a prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct HostLayer {
    /// RMSNorm weight before attention, `[hidden]`.
    pub attention_norm: Vec<f32>,
    /// `[heads * head_dim, hidden]`, head-major.
    pub query: HostMatrix,
    /// `[kv_heads * head_dim, hidden]`.
    pub key: HostMatrix,
    /// `[kv_heads * head_dim, hidden]`.
    pub value: HostMatrix,
    /// `[hidden, heads * head_dim]`, head-major columns.
    pub output: HostMatrix,
    /// RMSNorm weight before the FFN, `[hidden]`.
    pub ffn_norm: Vec<f32>,
    /// SwiGLU gate, `[ffn, hidden]`.
    pub gate: HostMatrix,
    /// SwiGLU up, `[ffn, hidden]`.
    pub up: HostMatrix,
    /// SwiGLU down, `[hidden, ffn]`.
    pub down: HostMatrix,
}

/// A whole decoder on the host: token embeddings, layers, the final RMSNorm shared by every
/// exit and the (tied) head. Hidden states are row-major `[rows, hidden]` vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct HostDecoder {
    shape: HostDecoderShape,
    /// `[vocab, hidden]`, for looking tokens up.
    embedding: std::sync::Arc<[f32]>,
    /// `[vocab, hidden]`: logits are `norm(h) · headᵀ`.
    head: HostMatrix,
    norm: Vec<f32>,
    layers: Vec<HostLayer>,
    /// RoPE's `theta^(-2i / head_dim)` for each pair `i`.
    frequencies: Vec<f64>,
}

impl HostDecoder {
    /// A decoder from its parts.
    ///
    /// # Panics
    /// If a size disagrees with `shape` (each message names the part): what builds the parts
    /// from a checked model must not get this wrong.
    pub fn new(
        shape: HostDecoderShape,
        embedding: impl Into<std::sync::Arc<[f32]>>,
        head: HostMatrix,
        norm: Vec<f32>,
        layers: Vec<HostLayer>,
    ) -> Self {
        let embedding = embedding.into();
        let HostDecoderShape { hidden: d, heads, kv_heads, head_dim: hd, .. } = shape;
        assert!(
            d > 0 && kv_heads > 0 && heads.is_multiple_of(kv_heads) && hd.is_multiple_of(2),
            "HostDecoder: shape {shape:?}"
        );
        assert!(embedding.len().is_multiple_of(d), "HostDecoder: embedding of {} values, hidden {d}", embedding.len());
        assert_eq!(head.cols(), d, "HostDecoder: head columns");
        assert_eq!(norm.len(), d, "HostDecoder: final norm");
        for (i, l) in layers.iter().enumerate() {
            let shapes = [
                ("query", &l.query, heads * hd, d),
                ("key", &l.key, kv_heads * hd, d),
                ("value", &l.value, kv_heads * hd, d),
                ("output", &l.output, d, heads * hd),
                ("gate", &l.gate, l.gate.rows(), d),
                ("up", &l.up, l.gate.rows(), d),
                ("down", &l.down, d, l.gate.rows()),
            ];
            for (name, m, rows, cols) in shapes {
                assert_eq!((m.rows(), m.cols()), (rows, cols), "HostDecoder: layer {i} {name}");
            }
            assert_eq!((l.attention_norm.len(), l.ffn_norm.len()), (d, d), "HostDecoder: layer {i} norms");
        }
        let frequencies = (0..hd / 2).map(|i| shape.rope_theta.powf(-(2.0 * i as f64) / hd as f64)).collect();
        Self { shape, embedding, head, norm, layers, frequencies }
    }

    /// The sizes.
    pub fn shape(&self) -> HostDecoderShape {
        self.shape
    }

    /// Decoder layers.
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.embedding.len() / self.shape.hidden
    }

    /// Bytes of the layer projections and the head that one decoding step of the full model
    /// streams.
    pub fn bytes(&self) -> usize {
        let layer = |l: &HostLayer| {
            [&l.query, &l.key, &l.value, &l.output, &l.gate, &l.up, &l.down].iter().map(|m| m.bytes()).sum::<usize>()
        };
        self.layers.iter().map(layer).sum::<usize>() + self.head.bytes()
    }

    /// An empty cache for this decoder.
    pub fn new_cache(&self) -> HostKvCache {
        HostKvCache::new(self.layers.len(), self.shape.kv_heads * self.shape.head_dim)
    }

    /// The embeddings of `tokens`, `[tokens.len(), hidden]`.
    ///
    /// # Panics
    /// If a token is outside the vocabulary.
    pub fn embed(&self, tokens: &[u32]) -> Vec<f32> {
        let d = self.shape.hidden;
        let vocab = self.vocab();
        let mut out = Vec::with_capacity(tokens.len() * d);
        for &t in tokens {
            let t = t as usize;
            assert!(t < vocab, "HostDecoder::embed: token {t} outside the {vocab}-token vocabulary");
            out.extend_from_slice(&self.embedding[t * d..(t + 1) * d]);
        }
        out
    }

    /// Runs layers `from..to` on the hidden states `x` (`[rows, hidden]`), whose first
    /// position in each layer is that layer's cache length, with the first `heads` query heads
    /// (a multiple of the KV heads: the first `heads / kv_heads` of every group) and the first
    /// `ffn` SwiGLU units; appends the new keys and values to `cache`.
    ///
    /// # Panics
    /// If `x` is not whole hidden states, `to` is past the layers, or the widths do not fit.
    pub fn run_layers(
        &self,
        x: Vec<f32>,
        from: usize,
        to: usize,
        heads: usize,
        ffn: usize,
        cache: &mut HostKvCache,
    ) -> Vec<f32> {
        // Sharing a layer pays from about SmolLM2's size on (a 1536 x 576 SwiGLU matrix).
        let shared = ffn * self.shape.hidden >= PARTNER_MIN_ELEMENTS;
        self.run_layers_sharing(x, from, to, (heads, ffn), cache, shared)
    }

    /// [`HostDecoder::run_layers`] with the layers' products shared with a second thread or
    /// not, whatever their size: the same values either way (each output is computed whole by
    /// one thread), which the tests check.
    #[doc(hidden)]
    pub fn run_layers_sharing(
        &self,
        mut x: Vec<f32>,
        from: usize,
        to: usize,
        (heads, ffn): (usize, usize),
        cache: &mut HostKvCache,
        shared: bool,
    ) -> Vec<f32> {
        let s = self.shape;
        let rows = self.rows("run_layers", &x);
        assert!(to <= self.layers.len(), "HostDecoder::run_layers: layers {from}..{to} of {}", self.layers.len());
        assert!(
            heads >= s.kv_heads && heads <= s.heads && heads.is_multiple_of(s.kv_heads),
            "HostDecoder::run_layers: {heads} query heads with {} KV heads of {} allocated",
            s.kv_heads,
            s.heads
        );
        for layer in self.layers.iter().take(to).skip(from) {
            assert!(ffn >= 1 && ffn <= layer.gate.rows(), "HostDecoder::run_layers: SwiGLU width {ffn}");
        }
        with_partner(shared, |partner| {
            for (i, layer) in self.layers.iter().enumerate().take(to).skip(from) {
                self.layer(partner, layer, &mut x, rows, heads, ffn, cache.layer_mut(i));
            }
        });
        x
    }

    /// Logits over the first `vocab` tokens of the hidden states `hidden` (`[rows, hidden]`),
    /// through the final RMSNorm and the head: `[rows, vocab]`.
    ///
    /// # Panics
    /// If `hidden` is not whole hidden states or `vocab` is 0 or above the vocabulary.
    pub fn logits(&self, hidden: &[f32], vocab: usize) -> Vec<f32> {
        let d = self.shape.hidden;
        let rows = self.rows("logits", hidden);
        assert!(vocab >= 1 && vocab <= self.head.rows(), "HostDecoder::logits: {vocab} of {} tokens", self.head.rows());
        let h = rms_norm(hidden, &self.norm, self.shape.norm_eps);
        self.head.times_transposed(&h, rows, vocab, d)
    }

    /// Computes the keys and values of the hidden states `x` (`[rows, hidden]`) for layer
    /// `layer` and appends them to its cache, without running the layer: how an early-exited
    /// token leaves keys and values for the layers it skipped.
    ///
    /// # Panics
    /// If `x` is not whole hidden states or `layer` is out of range.
    pub fn append_kv(&self, layer: usize, x: &[f32], cache: &mut HostKvCache) {
        let rows = self.rows("append_kv", x);
        let l = &self.layers[layer];
        let h = rms_norm(x, &l.attention_norm, self.shape.norm_eps);
        let (k, v) = self.keys_and_values(l, &h, rows);
        self.push_kv(k, v, rows, cache.layer_mut(layer));
    }

    /// The number of hidden states in `x`.
    ///
    /// # Panics
    /// If `x` is empty or not a whole number of them.
    fn rows(&self, what: &str, x: &[f32]) -> usize {
        let d = self.shape.hidden;
        assert!(
            !x.is_empty() && x.len().is_multiple_of(d),
            "HostDecoder::{what}: {} values are not rows of {d}",
            x.len()
        );
        x.len() / d
    }

    /// Keys and values of the normalised rows `h` (each product on one thread).
    fn keys_and_values(&self, l: &HostLayer, h: &[f32], rows: usize) -> (Vec<f32>, Vec<f32>) {
        let s = self.shape;
        let width = s.kv_heads * s.head_dim;
        (l.key.rows_times(h, rows, 0..width, s.hidden), l.value.rows_times(h, rows, 0..width, s.hidden))
    }

    /// Keys `k` (rotated here) and values `v` of `rows` new positions appended to `cache`;
    /// returns the position of the first.
    fn push_kv(&self, mut k: Vec<f32>, v: Vec<f32>, rows: usize, cache: &mut LayerKv) -> usize {
        let start = cache.keys.len() / (self.shape.kv_heads * self.shape.head_dim);
        self.rope(&mut k, rows, self.shape.kv_heads, start);
        cache.keys.extend_from_slice(&k);
        cache.values.extend_from_slice(&v);
        start
    }

    /// One layer on `x` in place. Every product runs on both cores: the query here and the
    /// keys and values on the partner, the gate here and the up projection there, and the
    /// output and down projections in halves (four hand-overs a layer).
    #[allow(clippy::too_many_arguments)]
    fn layer<'w>(
        &self,
        partner: &Partner<'w>,
        l: &'w HostLayer,
        x: &mut [f32],
        rows: usize,
        heads: usize,
        ffn: usize,
        cache: &mut LayerKv,
    ) {
        let s = self.shape;
        let (d, hd, width) = (s.hidden, s.head_dim, s.kv_heads * s.head_dim);
        let h: Arc<[f32]> = rms_norm(x, &l.attention_norm, s.norm_eps).into();
        let theirs = h.clone();
        let (mut q, mut k) = partner.join(
            || l.query.rows_times(&h, rows, 0..heads * hd, d),
            Box::new(move || {
                let mut kv = l.key.rows_times(&theirs, rows, 0..width, d);
                kv.extend(l.value.rows_times(&theirs, rows, 0..width, d));
                kv
            }),
        );
        let v = k.split_off(rows * width);
        let start = self.push_kv(k, v, rows, cache);
        self.rope(&mut q, rows, heads, start);
        let attended = attend(&q, rows, heads, start, cache, s.kv_heads, hd);
        let o = in_halves(partner, &l.output, attended.into(), rows, d, heads * hd);
        add_into(x, &o);
        let h: Arc<[f32]> = rms_norm(x, &l.ffn_norm, s.norm_eps).into();
        let theirs = h.clone();
        let (gate, up) = partner.join(
            || l.gate.rows_times(&h, rows, 0..ffn, d),
            Box::new(move || l.up.rows_times(&theirs, rows, 0..ffn, d)),
        );
        let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
        let down = in_halves(partner, &l.down, act.into(), rows, d, ffn);
        add_into(x, &down);
    }

    /// Rotates the adjacent feature pairs of every head of `rows` rows (`[rows, heads *
    /// head_dim]`), row `r` at position `start + r`.
    fn rope(&self, x: &mut [f32], rows: usize, heads: usize, start: usize) {
        let hd = self.shape.head_dim;
        let mut cos = vec![0.0f32; hd / 2];
        let mut sin = vec![0.0f32; hd / 2];
        for (r, row) in x.chunks_exact_mut(heads * hd).take(rows).enumerate() {
            let position = (start + r) as f64;
            for (i, f) in self.frequencies.iter().enumerate() {
                let angle = position * f;
                cos[i] = angle.cos() as f32;
                sin[i] = angle.sin() as f32;
            }
            for head in row.chunks_exact_mut(hd) {
                for (i, pair) in head.chunks_exact_mut(2).enumerate() {
                    let (even, odd) = (pair[0], pair[1]);
                    pair[0] = even * cos[i] - odd * sin[i];
                    pair[1] = even * sin[i] + odd * cos[i];
                }
            }
        }
    }
}

/// `x · vᵀ` for the `[out, cols]` view `v` of `m`, its rows in two halves: the first here, the
/// second on the partner.
fn in_halves<'w>(
    partner: &Partner<'w>,
    m: &'w HostMatrix,
    x: Arc<[f32]>,
    rows: usize,
    out: usize,
    cols: usize,
) -> Vec<f32> {
    let half = out / 2;
    if half == 0 {
        return m.rows_times(&x, rows, 0..out, cols);
    }
    let theirs = x.clone();
    let (a, b) = partner
        .join(|| m.rows_times(&x, rows, 0..half, cols), Box::new(move || m.rows_times(&theirs, rows, half..out, cols)));
    join_columns(a, b, rows)
}

/// `x / sqrt(mean(x²) + eps) * weight` for each row of `x`.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let d = weight.len();
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d) {
        let mean = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let rms = (mean + eps).sqrt();
        out.extend(row.iter().zip(weight).map(|(v, w)| v / rms * w));
    }
    out
}

fn add_into(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Eight-lane dot product (vectorised by the compiler).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, a_tail) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_tail) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum::<f32>()
}

/// Causal grouped-query attention of the `rows` new queries `q` (`[rows, heads * head_dim]`,
/// head-major: head `p` reads KV head `p % kv_heads`) at positions `start..start + rows`
/// over the cache (which already holds them): `[rows, heads * head_dim]`.
fn attend(q: &[f32], rows: usize, heads: usize, start: usize, cache: &LayerKv, kv_heads: usize, hd: usize) -> Vec<f32> {
    let scale = 1.0 / (hd as f32).sqrt();
    let width = kv_heads * hd;
    let mut out = vec![0.0f32; rows * heads * hd];
    let mut scores = Vec::with_capacity(start + rows);
    for r in 0..rows {
        let seen = start + r + 1;
        for p in 0..heads {
            let g = p % kv_heads;
            let query = &q[(r * heads + p) * hd..][..hd];
            scores.clear();
            scores.extend((0..seen).map(|j| dot(query, &cache.keys[j * width + g * hd..][..hd]) * scale));
            let max = scores.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let mut total = 0.0;
            for v in &mut scores {
                *v = (*v - max).exp();
                total += *v;
            }
            let o = &mut out[(r * heads + p) * hd..][..hd];
            for (j, weight) in scores.iter().enumerate() {
                let value = &cache.values[j * width + g * hd..][..hd];
                let w = weight / total;
                for (a, v) in o.iter_mut().zip(value) {
                    *a += w * v;
                }
            }
        }
    }
    out
}
