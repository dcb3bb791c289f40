//! A [`SortedLlama`] copied into a [`HostDecoder`]: decoding on the host CPU in one fused pass
//! per layer, with f32 or 8-bit weights.

use burn::prelude::*;
use sorted_kernels::{HostDecoder, HostDecoderShape, HostLayer, HostMatrix};
use sorted_nn::SortedLinear;

use super::model::{SortedLlama, SortedLlamaLayer};

/// The number format of a [`HostDecoder`]'s weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostWeights {
    /// f32, as the model holds them: the same tokens as decoding with Burn up to float
    /// summation order.
    F32,
    /// 8-bit blocks (ggml's Q8_0 scheme), projections and tied head: 1.125 bytes per weight,
    /// multiplied with f32 activations. Lossy: each weight moves by at most half a step of its
    /// block's `max |w| / 127`.
    Q8,
    /// [`HostWeights::Q8`], each product's activations quantized to 8-bit blocks too and the
    /// blocks' dot products summed in integers, as llama.cpp multiplies Q8_0 weights: fewer
    /// instructions per weight, for a second rounding (of the activations).
    Q8Int8,
}

/// `t`'s values, row-major.
fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 values")
}

/// `[rows, cols]` `t` as a host matrix in `format`.
fn matrix<B: Backend>(t: Tensor<B, 2>, format: HostWeights) -> HostMatrix {
    let [rows, cols] = t.dims();
    let data = values(t);
    match format {
        HostWeights::F32 => HostMatrix::f32(data, rows, cols),
        HostWeights::Q8 => HostMatrix::q8(&data, rows, cols, false),
        HostWeights::Q8Int8 => HostMatrix::q8(&data, rows, cols, true),
    }
}

impl<B: Backend> SortedLlamaLayer<B> {
    /// This layer's weights on the host: projections `[out, in]`, query heads head-major.
    fn host_layer(&self, format: HostWeights) -> HostLayer {
        let t = |l: &SortedLinear<B>| matrix(l.weight.val().transpose(), format);
        let (nkv, hd) = (self.num_kv_heads, self.head_dim);
        let rep = self.num_heads / nkv;
        let d = self.query.d_input_max();
        // Query rows (group g, head j) -> position j * nkv + g; the output's columns likewise.
        let query = self.query.weight.val().transpose().reshape([nkv, rep, hd, d]).swap_dims(0, 1);
        let output = self.output.weight.val().transpose().reshape([d, nkv, rep, hd]).swap_dims(1, 2);
        HostLayer {
            attention_norm: values(self.attention_norm.weight.val()),
            query: matrix(query.reshape([nkv * rep * hd, d]), format),
            key: t(&self.key),
            value: t(&self.value),
            output: matrix(output.reshape([d, nkv * rep * hd]), format),
            ffn_norm: values(self.ffn_norm.weight.val()),
            gate: t(&self.gate),
            up: t(&self.up),
            down: t(&self.down),
        }
    }
}

impl<B: Backend> SortedLlama<B> {
    /// A copy of this model on the host, its weights in `format`, for decoding
    /// ([`super::LlamaDecoder::on_host`]). Rebuild after changing the model.
    pub fn host_decoder(&self, format: HostWeights) -> HostDecoder {
        let l0 = &self.layers[0];
        let [vocab, d] = self.embedding.dims();
        let shape = HostDecoderShape {
            hidden: d,
            heads: l0.num_heads,
            kv_heads: l0.num_kv_heads,
            head_dim: l0.head_dim,
            rope_theta: self.rope_theta,
            norm_eps: self.norm.epsilon as f32,
        };
        let embedding: std::sync::Arc<[f32]> = values(self.embedding.val()).into();
        let head = match format {
            HostWeights::F32 => HostMatrix::f32(embedding.clone(), vocab, d),
            HostWeights::Q8 => HostMatrix::q8(&embedding, vocab, d, false),
            HostWeights::Q8Int8 => HostMatrix::q8(&embedding, vocab, d, true),
        };
        let layers = self.layers.iter().map(|l| l.host_layer(format)).collect();
        HostDecoder::new(shape, embedding, head, values(self.norm.weight.val()), layers)
    }
}
