use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use sorted_sched::distillation_loss;

type A = Autodiff<Flex>;

#[test]
fn distillation_loss_is_the_kl_divergence_with_the_soft_label_gradient() {
    let device = Default::default();
    let student = [[1.0f32, -0.5, 0.25], [0.0, 2.0, -1.0]];
    let teacher = [[0.5f32, 0.5, -2.0], [3.0, 0.0, 0.0]];
    // By hand: KL(p || q) = sum p (log p - log q), averaged over the two rows.
    let log_sm = |z: [f32; 3]| {
        let m = z.iter().copied().fold(f32::MIN, f32::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
        z.map(|v| v - lse)
    };
    let expected: f32 = (0..2)
        .map(|r| {
            let (lp, lq) = (log_sm(teacher[r]), log_sm(student[r]));
            (0..3).map(|c| lp[c].exp() * (lp[c] - lq[c])).sum::<f32>()
        })
        .sum::<f32>()
        / 2.0;

    let z = Tensor::<A, 2>::from_floats(student, &device).require_grad();
    let t = Tensor::<A, 2>::from_floats(teacher, &device).require_grad();
    let loss = distillation_loss(z.clone(), log_softmax(t.clone(), 1));
    let value = loss.clone().into_scalar();
    assert!((value - expected).abs() < 1e-6, "{value} vs {expected}");
    let grads = loss.backward();
    // d/dz = (softmax(z) - p) / batch; the teacher gets no gradient.
    let expected_grad = (softmax(z.clone().inner(), 1) - softmax(t.clone().inner(), 1)).div_scalar(2.0);
    z.grad(&grads).unwrap().into_data().assert_approx_eq::<f32>(&expected_grad.into_data(), Default::default());
    assert!(t.grad(&grads).is_none(), "the teacher must not receive a gradient");

    // Zero when the student predicts the teacher's distribution (logits shifted by a constant).
    let same = distillation_loss(
        Tensor::<Flex, 2>::from_floats(teacher, &device).add_scalar(5.0),
        log_softmax(Tensor::<Flex, 2>::from_floats(teacher, &device), 1),
    );
    assert!(same.into_scalar().abs() < 1e-6);
}
