//! In-place distillation: sampled sub-models learn from the largest sub-model's predictions.
//! The loss lives here, below the scheduler and the model zoo, so both can use it
//! (`sorted_sched::distillation_loss` re-exports it).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// `KL(teacher || student)`, averaged over the batch: the distillation term of in-place
/// distillation (US-Nets, Yu & Huang 2019), where the largest sub-model of a step is the
/// teacher of the others on the same batch. `teacher_log_probs` are the teacher's
/// log-probabilities (`log_softmax` of its logits, computed without gradient); the gradient
/// reaches only the student. Temperature 1, as in US-Nets.
///
/// The value is 0 exactly when the student predicts the teacher's distribution; its gradient
/// with respect to the student's logits is `(softmax(student) - teacher) / batch`, as for the
/// cross-entropy against soft labels (the two differ by the teacher's entropy, a constant).
///
/// # Shapes
/// - student_logits: `[batch, classes]`
/// - teacher_log_probs: `[batch, classes]`
/// - output: `[1]`
///
/// # Example
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use burn::tensor::activation::log_softmax;
/// use sorted_nn::distillation_loss;
///
/// let device = Default::default();
/// let teacher = Tensor::<Flex, 2>::from_floats([[2.0, 0.0, -1.0]], &device);
/// let same = distillation_loss(teacher.clone(), log_softmax(teacher.clone(), 1));
/// assert!(same.into_scalar().abs() < 1e-6);
/// let student = Tensor::<Flex, 2>::from_floats([[0.0, 0.0, 0.0]], &device);
/// assert!(distillation_loss(student, log_softmax(teacher, 1)).into_scalar() > 0.1);
/// ```
pub fn distillation_loss<B: Backend>(student_logits: Tensor<B, 2>, teacher_log_probs: Tensor<B, 2>) -> Tensor<B, 1> {
    let student = log_softmax(student_logits, 1);
    let teacher = teacher_log_probs.detach();
    let p = teacher.clone().exp();
    (p * (teacher - student)).sum_dim(1).mean()
}
