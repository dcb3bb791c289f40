//! Training an image classifier's sub-models: the batches of a step (augmented; one shared or one
//! per sampled sub-model; one peer's shard in data-parallel training) and one sub-model's loss on
//! them (label cross-entropy, mixed with in-place distillation from the largest sub-model).
//!
//! [`ClassifierTraining`] is the image experiments' part of sorted-sched's training loop without
//! naming the loop (this crate does not depend on sorted-sched): a two-method adapter makes it a
//! `TrainTask` (`prepare` is [`ClassifierTraining::prepare`], `loss` is
//! [`ClassifierTraining::loss`]), which is all `sorted-runner train` adds.

use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use sorted_data::{Augmentation, EpochOrder, ImageBatch, ImageData, ImageDataConfig};
use sorted_nn::{NormPass, SubModel, distillation_loss};

use super::classifier::SortedClassifier;

/// The data order's seed is derived from the run seed so that it never shares ChaCha streams
/// with the sampler (which uses the run seed itself): the order's seed is `seed ^ DATA_SEED_SALT`.
pub const DATA_SEED_SALT: u64 = 0x5eed_da7a_0000_0001;

/// The augmentation seed, likewise derived from the run seed: `seed ^ AUGMENT_SEED_SALT`.
pub const AUGMENT_SEED_SALT: u64 = 0x5eed_a06e_0000_0003;

/// An image classifier that trains: a [`SortedClassifier`] with autodiff whose inner module
/// (evaluation, the distillation teacher) is one too. Every such model is one (blanket impl).
pub trait TrainableClassifier<B: AutodiffBackend>:
    SortedClassifier<B> + AutodiffModule<B, InnerModule: SortedClassifier<B::InnerBackend>>
{
}

impl<B, M> TrainableClassifier<B> for M
where
    B: AutodiffBackend,
    M: SortedClassifier<B> + AutodiffModule<B, InnerModule: SortedClassifier<B::InnerBackend>>,
{
}

/// What [`ClassifierTraining::prepare`] builds for one step: its batches, and the teacher's
/// log-probabilities when distilling.
#[derive(Debug)]
pub struct ClassifierStep<B: AutodiffBackend> {
    /// One batch shared by every sub-model, or one per sampled sub-model (fresh batches).
    pub batches: Vec<ImageBatch<B>>,
    /// The largest sub-model's log-probabilities on the first batch, `[batch, classes]`, when
    /// distilling into a step that samples a smaller sub-model.
    pub teacher: Option<Tensor<B, 2>>,
}

/// The image experiments' part of a training step: which images a step trains on and the loss of
/// one sub-model on them. Batch `b` of the run (`step`, or `step * k + i` with fresh batches) is
/// batch `b` of the seeded [`EpochOrder`] and gets augmentation stream `b`, so a resumed run sees
/// the same augmented images as an uninterrupted one.
#[derive(Debug)]
pub struct ClassifierTraining<'a, B: AutodiffBackend> {
    data: &'a ImageData,
    order: EpochOrder,
    augmentation: Augmentation,
    augment: bool,
    fresh_batches: Option<u64>,
    distill: f64,
    largest: SubModel,
    loss_fn: CrossEntropyLoss<B>,
    device: B::Device,
    shard: Option<(usize, usize)>,
}

impl<'a, B: AutodiffBackend> ClassifierTraining<'a, B> {
    /// Training on `data`'s training split with `config`'s batch size and augmentation, the data
    /// order and augmentation seeded from the run's `seed` ([`DATA_SEED_SALT`],
    /// [`AUGMENT_SEED_SALT`]); `largest` is the space's largest sub-model (the distillation
    /// teacher). One shared batch per step, no distillation, the whole batch: see
    /// [`fresh_batches`](Self::fresh_batches), [`distill`](Self::distill) and
    /// [`shard`](Self::shard).
    pub fn new(
        data: &'a ImageData,
        config: &ImageDataConfig,
        seed: u64,
        largest: SubModel,
        device: &B::Device,
    ) -> Self {
        Self {
            data,
            order: EpochOrder::new(data.train.len(), config.batch_size, seed ^ DATA_SEED_SALT),
            augmentation: config.augment.init(seed ^ AUGMENT_SEED_SALT),
            augment: !config.augment.is_identity(),
            fresh_batches: None,
            distill: 0.0,
            largest,
            loss_fn: CrossEntropyLossConfig::new().init(device),
            device: device.clone(),
            shard: None,
        }
    }

    /// With `fresh`, each of the `k` sub-models sampled per step trains on a batch of its own
    /// (batches `step * k .. (step + 1) * k`); without, all share batch `step`.
    pub fn fresh_batches(mut self, fresh: bool, k: usize) -> Self {
        self.fresh_batches = fresh.then_some(k as u64);
        self
    }

    /// Every sub-model but the largest learns `(1 - distill) * label loss + distill *
    /// KL(teacher || sub-model)` ([`distillation_loss`]), the teacher being the largest
    /// sub-model on the step's first batch; 0 trains on labels only.
    pub fn distill(mut self, distill: f64) -> Self {
        self.distill = distill;
        self
    }

    /// Trains on the `rank`-th of `parts` equal parts of every batch only (one peer's shard in
    /// data-parallel training; a remainder goes to nobody), as sorted-sched's `Peer::shard` splits.
    pub fn shard(mut self, rank: usize, parts: usize) -> Self {
        self.shard = Some((rank, parts));
        self
    }

    /// Batch `b` of the run (this trainer's shard of it), augmented with stream `b`.
    pub fn batch(&self, b: u64) -> ImageBatch<B> {
        let indices = self.order.batch_indices(b);
        let indices = match self.shard {
            Some((rank, parts)) => {
                let per = indices.len() / parts.max(1);
                indices[rank * per..(rank + 1) * per].to_vec()
            }
            None => indices,
        };
        let batcher = &self.data.batcher;
        if self.augment {
            batcher.batch_augmented(&self.data.train, &indices, &self.augmentation, b, &self.device)
        } else {
            batcher.batch(&self.data.train, &indices, &self.device)
        }
    }

    /// Step `step`'s batches for the sampled `subs`, and (when distilling and some sub-model is
    /// not the largest) the teacher's log-probabilities: the largest sub-model on the first batch,
    /// from a forward pass without autodiff (training-mode BatchNorm, as its own loss sees).
    pub fn prepare<M: TrainableClassifier<B>>(&self, model: &M, step: u64, subs: &[SubModel]) -> ClassifierStep<B> {
        let batches: Vec<ImageBatch<B>> = match self.fresh_batches {
            Some(k) => (0..k).map(|i| self.batch(step * k + i)).collect(),
            None => vec![self.batch(step)],
        };
        let teacher = (self.distill > 0.0 && subs.iter().any(|s| *s != self.largest)).then(|| {
            let images = batches[0].images.clone().inner();
            let logits = model.valid().forward(images, &self.largest, &mut NormPass::Batch);
            Tensor::from_inner(log_softmax(logits, 1))
        });
        ClassifierStep { batches, teacher }
    }

    /// The loss of `sub`, the `index`-th sampled sub-model, on `step`: cross-entropy on its batch
    /// (the shared one, or its own), mixed with the distillation loss when `step` has a teacher
    /// and `sub` is not the largest.
    pub fn loss<M: TrainableClassifier<B>>(
        &self,
        step: &ClassifierStep<B>,
        model: &M,
        index: usize,
        sub: &SubModel,
    ) -> Tensor<B, 1> {
        let batch = &step.batches[index.min(step.batches.len() - 1)];
        let logits = model.forward(batch.images.clone(), sub, &mut NormPass::Batch);
        match &step.teacher {
            Some(t) if *sub != self.largest => {
                let labels = self.loss_fn.forward(logits.clone(), batch.labels.clone());
                labels.mul_scalar(1.0 - self.distill) + distillation_loss(logits, t.clone()).mul_scalar(self.distill)
            }
            _ => self.loss_fn.forward(logits, batch.labels.clone()),
        }
    }
}
