use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::softmax;
use sorted_nn::test_util::{assert_matches_dense, assert_zero_grad_outside};
use sorted_nn::{PaddingMask, SortedEmbeddingConfig, SortedMultiHeadAttentionConfig};

type B = Autodiff<Flex>;
type F = Flex;

fn device() -> <F as burn::tensor::backend::BackendTypes>::Device {
    let device = Default::default();
    F::seed(&device, 11);
    device
}

/// Attention computed head by head with 2-D matmuls, from weights copied out of the first
/// `heads` heads: an independent reference for the batched, sliced implementation.
fn reference_attention(
    x: &Tensor<F, 3>,
    attn: &sorted_nn::SortedMultiHeadAttention<F>,
    heads: usize,
    valid_len: &[usize],
) -> Tensor<F, 3> {
    let [_, s, d] = x.dims();
    let hd = attn.head_dim;
    let w = |l: &sorted_nn::SortedLinear<F>, cols: std::ops::Range<usize>| {
        (l.weight.val().slice(s![0..d, cols.clone()]), l.bias.as_ref().unwrap().val().slice(s![cols]))
    };
    let mut outputs = Vec::new();
    for (b, &valid) in valid_len.iter().enumerate() {
        let xb: Tensor<F, 2> = x.clone().slice(s![b..b + 1, .., ..]).reshape([s, d]);
        let mut out = attn.output.bias.as_ref().unwrap().val().slice(s![0..d]).unsqueeze::<2>().repeat_dim(0, s);
        for h in 0..heads {
            let cols = h * hd..(h + 1) * hd;
            let (wq, bq) = w(&attn.query, cols.clone());
            let (wk, bk) = w(&attn.key, cols.clone());
            let (wv, bv) = w(&attn.value, cols.clone());
            let q = xb.clone().matmul(wq).add(bq.unsqueeze());
            let k = xb.clone().matmul(wk).add(bk.unsqueeze());
            let v = xb.clone().matmul(wv).add(bv.unsqueeze());
            let k = k.slice(s![0..valid, ..]);
            let v = v.slice(s![0..valid, ..]);
            let p = softmax(q.matmul(k.transpose()).div_scalar((hd as f64).sqrt()), 1);
            let wo = attn.output.weight.val().slice(s![cols, 0..d]);
            out = out.add(p.matmul(v).matmul(wo));
        }
        outputs.push(out.unsqueeze::<3>());
    }
    Tensor::cat(outputs, 0)
}

#[test]
fn attention_with_h_heads_equals_a_dense_attention_of_the_first_h_heads() {
    let device = device();
    let attn = SortedMultiHeadAttentionConfig::new(12, 4, 3).init::<F>(&device);
    let valid = [5, 3];
    let mask = Tensor::<F, 2>::from_floats([[1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0, 0.0]], &device);
    let mask = PaddingMask::from_attention_mask(mask);
    for (d, heads) in [(12, 4), (12, 1), (12, 3), (8, 2)] {
        let x = Tensor::<F, 3>::random([2, 5, d], Distribution::Normal(0.0, 1.0), &device);
        let y = attn.forward(x.clone(), heads, Some(&mask));
        assert_eq!(y.dims(), [2, 5, d]);
        assert_matches_dense(y.clone(), reference_attention(&x, &attn, heads, &valid), 1e-5);
        assert_matches_dense(y, attn.to_dense(d, heads).forward(x, Some(&mask)), 1e-6);
    }
}

#[test]
fn padding_does_not_change_the_real_positions() {
    let device = device();
    let attn = SortedMultiHeadAttentionConfig::new(8, 2, 4).init::<F>(&device);
    let x = Tensor::<F, 3>::random([1, 4, 8], Distribution::Normal(0.0, 1.0), &device);
    let short = attn.forward(x.clone().slice(s![.., 0..3, ..]), 2, None);
    let mask = PaddingMask::from_attention_mask(Tensor::<F, 2>::from_floats([[1.0, 1.0, 1.0, 0.0]], &device));
    let padded = attn.forward(x, 2, Some(&mask)).slice(s![.., 0..3, ..]);
    assert_matches_dense(padded, short, 1e-6);
}

#[test]
fn attention_gradients_are_zero_outside_the_active_heads() {
    let device = Default::default();
    B::seed(&device, 3);
    let attn = SortedMultiHeadAttentionConfig::new(12, 4, 3).init::<B>(&device);
    let x = Tensor::<B, 3>::random([2, 4, 10], Distribution::Normal(0.0, 1.0), &device);
    let grads = attn.forward(x, 2, None).powi_scalar(2).sum().backward();
    for (name, l) in [("query", &attn.query), ("key", &attn.key), ("value", &attn.value)] {
        assert_zero_grad_outside(name, &l.weight, &grads, [0..10, 0..6]);
        assert_zero_grad_outside(name, l.bias.as_ref().unwrap(), &grads, [0..6]);
    }
    assert_zero_grad_outside("output", &attn.output.weight, &grads, [0..6, 0..10]);
    assert_zero_grad_outside("output", attn.output.bias.as_ref().unwrap(), &grads, [0..10]);
}

#[test]
fn embedding_zero_grad_outside_the_active_width() {
    let device = Default::default();
    B::seed(&device, 5);
    let table = SortedEmbeddingConfig::new(9, 6).init::<B>(&device);
    let ids = Tensor::<B, 2, Int>::from_ints([[1, 4, 4], [0, 2, 8]], &device);
    let grads = table.forward(ids, 4).powi_scalar(2).sum().backward();
    assert_zero_grad_outside("embedding", &table.weight, &grads, [0..9, 0..4]);
}
