//! A sorted BERT's training loss on a sentence batch: cross-entropy on the labels, optionally
//! mixed with in-place distillation from a teacher sub-model (as image experiments do).

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLoss;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use sorted_data::TextBatch;
use sorted_nn::{TransformerSubModel, distillation_loss};

use super::model::SortedBert;

/// The teacher's log-probabilities for in-place distillation: `teacher`'s on `batch`, from a
/// forward pass without autodiff (and so without dropout), `[n, n_classes]`.
pub fn bert_teacher_log_probs<B: AutodiffBackend>(
    model: &SortedBert<B>,
    batch: &TextBatch<B>,
    teacher: &TransformerSubModel,
) -> Tensor<B, 2> {
    let logits =
        model.valid().forward(batch.input_ids.clone().inner(), None, batch.attention_mask.clone().inner(), teacher);
    Tensor::from_inner(log_softmax(logits, 1))
}

/// `sub`'s loss on `batch`: `loss_fn`'s cross-entropy on the labels, or, given
/// `distill = Some((teacher_log_probs, weight))`, `(1 - weight) * cross-entropy + weight *
/// distillation loss` against the teacher ([`sorted_nn::distillation_loss`]).
pub fn bert_classification_loss<B: Backend>(
    model: &SortedBert<B>,
    batch: &TextBatch<B>,
    sub: &TransformerSubModel,
    loss_fn: &CrossEntropyLoss<B>,
    distill: Option<(&Tensor<B, 2>, f64)>,
) -> Tensor<B, 1> {
    let logits = model.forward(batch.input_ids.clone(), None, batch.attention_mask.clone(), sub);
    match distill {
        Some((teacher, weight)) => {
            let labels = loss_fn.forward(logits.clone(), batch.labels.clone());
            labels.mul_scalar(1.0 - weight) + distillation_loss(logits, teacher.clone()).mul_scalar(weight)
        }
        None => loss_fn.forward(logits, batch.labels.clone()),
    }
}
