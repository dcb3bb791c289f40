//! Rotary position embeddings (RoPE) on adjacent feature pairs, as LLaMA's GGUF files lay them
//! out.

use burn::prelude::*;

/// Rotates adjacent feature pairs `(2i, 2i + 1)` of `x` (`[batch, heads, seq, head_dim]`) by
/// `position * theta^(-2i / head_dim)`, positions starting at `start` (the GGUF convention:
/// llama.cpp's converter permuted Q and K so that pairs are adjacent).
pub fn rope<B: Backend>(x: Tensor<B, 4>, start: usize, theta: f64) -> Tensor<B, 4> {
    let [b, h, s, hd] = x.dims();
    let device = x.device();
    let half = hd / 2;
    let mut cos = Vec::with_capacity(s * half);
    let mut sin = Vec::with_capacity(s * half);
    for p in start..start + s {
        for i in 0..half {
            let angle = p as f64 * theta.powf(-(2.0 * i as f64) / hd as f64);
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    let cos = Tensor::<B, 1>::from_floats(cos.as_slice(), &device).reshape([1, 1, s, half, 1]);
    let sin = Tensor::<B, 1>::from_floats(sin.as_slice(), &device).reshape([1, 1, s, half, 1]);
    let pairs = x.reshape([b, h, s, half, 2]);
    let even = pairs.clone().slice(s![.., .., .., .., 0..1]);
    let odd = pairs.slice(s![.., .., .., .., 1..2]);
    let new_even = even.clone().mul(cos.clone()).sub(odd.clone().mul(sin.clone()));
    let new_odd = even.mul(sin).add(odd.mul(cos));
    Tensor::cat(vec![new_even, new_odd], 4).reshape([b, h, s, hd])
}
