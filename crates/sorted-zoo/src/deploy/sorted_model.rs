//! [`SortedModel`]: one weight set serving any sub-model per call.

use std::collections::HashMap;
use std::sync::OnceLock;

use burn::prelude::*;
use sorted_nn::{NestingSpace, NormCalibrator, NormPass, SubModel, SubModelNormStats};

use super::latency::{sync, time_once};
use super::weight_layout::Relayout;
use super::{DeployError, Latency, LatencyOptions, WeightLayout};
use crate::{DenseClassifier, SortedClassifier};

/// A trained sorted classifier ready to serve: one set of weights, its space, and the BatchNorm
/// statistics of each sub-model it may serve. The sub-model is chosen per call, so a server can
/// switch between sub-models (for load, battery or a latency budget) without copying weights.
///
/// BatchNorm models serve only sub-models whose statistics were calibrated
/// ([`SortedModel::calibrate`]) or inserted from a run's `norm_stats.json`
/// ([`SortedModel::insert_norm_stats`]): a narrow sub-model is never run with another
/// sub-model's statistics.
///
/// # Example: pick the sub-model that fits a latency budget measured at start-up
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use sorted_nn::{NestingSpace, NestingSpaceConfig};
/// use sorted_zoo::SortedMlpConfig;
/// use sorted_zoo::deploy::{Budget, Candidate, LatencyOptions, SortedModel, select};
///
/// let space = NestingSpace::new(NestingSpaceConfig {
///     depths: vec![1, 2],
///     widths: Some(vec![16, 256]),
///     block_widths: None,
///     tie_widths: true,
/// })?;
/// let device = Default::default();
/// let mlp = SortedMlpConfig::for_space(784, 10, &space).init::<Flex>(&device);
/// let model = SortedModel::new(mlp, space)?;
///
/// // Measure every sub-model on this device, at the batch size we will serve.
/// let probe = Tensor::<Flex, 4>::zeros([1, 1, 28, 28], &device);
/// let subs: Vec<_> = model.space().iter().collect();
/// let latencies = model.profile(&probe, &subs, LatencyOptions { warmup: 2, repeats: 5 })?;
///
/// // Accuracies come from evaluating the trained model (a run's results.json); here, a stand-in
/// // that grows with size, as a trained sorted model's does.
/// let candidates: Vec<Candidate> = subs
///     .iter()
///     .zip(&latencies)
///     .map(|(sub, latency)| {
///         let cost = model.cost(sub);
///         Candidate {
///             name: sub.to_string(),
///             accuracy: (cost.flops as f64).ln(),
///             latency_ms: Some(latency.median_ms),
///             params: cost.params,
///             flops: cost.flops,
///         }
///     })
///     .collect();
/// // A budget every sub-model meets here: the largest is chosen.
/// let choice = select(&candidates, Budget::latency_ms(1e3))?;
/// let sub = model.space().parse_sub_model(&candidates[choice.chosen].name)?;
/// assert_eq!(sub, model.space().largest());
///
/// // Serve with it; switch per call when the budget changes.
/// let images = Tensor::<Flex, 4>::zeros([8, 1, 28, 28], &device);
/// let logits = model.forward(images.clone(), &sub)?;
/// assert_eq!(logits.dims(), [8, 10]);
/// let small = model.forward(images, &model.space().smallest())?;
/// assert_eq!(small.dims(), [8, 10]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Views, layout and pinning
/// Serving never copies a weight. For each sub-model it serves, the handle keeps a *view*: the
/// sub-model's layers built over slices of the shared weights on its first call (a few tensor
/// handles, no weight memory). [`SortedModel::forward`] runs the view, so later calls pay no
/// slicing, and switching sub-models costs nothing.
///
/// A narrow slice of a wide layer is still strided in memory. On CPU backends at batch 1 that
/// makes a small sub-model's pass up to ~1.5x slower (median 1.13x) than the same sub-model
/// stored densely in the training layout. [`SortedModel::with_weight_layout`] with
/// [`WeightLayout::OutputMajor`] stores the weights so that the first layer's slices are
/// contiguous: at batch 1 the views then run within 5 % of the exported dense models, or faster,
/// for 334 of the default MLP's 340 sub-models (each one's median over four profiling rounds;
/// `docs/results/deploy-mnist.md`).
/// [`SortedModel::pin`] trades memory for the rest: it keeps a dense copy of a sub-model you
/// serve often, and `forward` uses it.
#[derive(Debug)]
pub struct SortedModel<B: Backend, M: SortedClassifier<B>> {
    model: M,
    space: NestingSpace,
    norm_stats: HashMap<SubModel, SubModelNormStats<B>>,
    layout: WeightLayout,
    /// One cell per sub-model of the space, filled on its first call.
    views: HashMap<SubModel, OnceLock<M::Dense>>,
    pinned: HashMap<SubModel, M::Dense>,
}

impl<B: Backend, M: SortedClassifier<B>> SortedModel<B, M> {
    /// Wraps a trained model and the space it serves, its weights in the layout they are in
    /// (a freshly trained or loaded model: [`WeightLayout::InputMajor`]).
    ///
    /// # Errors
    /// [`DeployError::Spec`] when a sub-model of `space` does not fit the model.
    pub fn new(model: M, space: NestingSpace) -> Result<Self, DeployError> {
        model.check_space(&space)?;
        let views = space.iter().map(|sub| (sub, OnceLock::new())).collect();
        Ok(Self {
            model,
            space,
            norm_stats: HashMap::new(),
            layout: WeightLayout::InputMajor,
            views,
            pinned: HashMap::new(),
        })
    }

    /// Stores the weights in `layout` (one copy of the model's linear weights, made once; the
    /// old memory is freed when nothing else holds it) and rebuilds the views and pinned copies
    /// over it. Outputs do not change beyond float rounding of the matrix products. A no-op when
    /// the handle is in `layout` already.
    pub fn with_weight_layout(mut self, layout: WeightLayout) -> Self {
        if layout == self.layout {
            return self;
        }
        self.model = self.model.map(&mut Relayout { layout, copy_all: false });
        self.layout = layout;
        for cell in self.views.values_mut() {
            cell.take();
        }
        let pinned: Vec<SubModel> = self.pinned.keys().cloned().collect();
        for sub in pinned {
            if let Ok(dense) = self.dense_copy(&sub) {
                self.pinned.insert(sub, dense);
            }
        }
        self
    }

    /// The layout the weights are stored in.
    pub fn weight_layout(&self) -> WeightLayout {
        self.layout
    }

    /// The served space.
    pub fn space(&self) -> &NestingSpace {
        &self.space
    }

    /// The wrapped model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Unwraps the model.
    pub fn into_model(self) -> M {
        self.model
    }

    /// Analytic parameters and FLOPs per sample of `sub`.
    pub fn cost(&self, sub: &SubModel) -> sorted_nn::Cost {
        self.model.cost(sub)
    }

    /// Whether `sub` can be served now (in the space, and calibrated if the model has
    /// BatchNorm).
    pub fn is_ready(&self, sub: &SubModel) -> bool {
        self.space.contains(sub) && (!self.model.has_batch_norm() || self.norm_stats.contains_key(sub))
    }

    /// Uses `stats` (for example read from a run's `norm_stats.json`) as the BatchNorm
    /// statistics of `sub`.
    ///
    /// # Errors
    /// [`DeployError::NotInSpace`].
    pub fn insert_norm_stats(&mut self, sub: &SubModel, stats: SubModelNormStats<B>) -> Result<(), DeployError> {
        self.check_in_space(sub)?;
        self.norm_stats.insert(sub.clone(), stats);
        self.pinned.remove(sub);
        self.forget_view(sub);
        Ok(())
    }

    /// Recalibrates the BatchNorm statistics of `sub` on `batches` (a few hundred training
    /// images, in batches of the training batch size) and keeps them. A no-op for models
    /// without BatchNorm.
    ///
    /// # Errors
    /// [`DeployError::NotInSpace`], or [`DeployError::NoCalibrationData`] for no batches.
    pub fn calibrate(&mut self, sub: &SubModel, batches: &[Tensor<B, 4>]) -> Result<(), DeployError> {
        self.check_in_space(sub)?;
        if !self.model.has_batch_norm() {
            return Ok(());
        }
        let mut calibrator = NormCalibrator::new();
        for images in batches {
            let mut seen = Vec::new();
            let _ = self.model.forward(images.clone(), sub, &mut NormPass::Observe(&mut seen));
            calibrator.add(seen);
        }
        let stats = calibrator.finish().ok_or_else(|| DeployError::NoCalibrationData { sub_model: sub.to_string() })?;
        self.norm_stats.insert(sub.clone(), stats);
        // A pinned copy and the view hold the old statistics.
        self.pinned.remove(sub);
        self.forget_view(sub);
        Ok(())
    }

    /// Class logits of sub-model `sub`, `[batch, n_classes]`, for images
    /// `[batch, channels, height, width]`: from its pinned dense copy if it has one, else from
    /// its view of the shared weights.
    ///
    /// # Errors
    /// [`DeployError::NotInSpace`], or [`DeployError::MissingNormStats`] for an uncalibrated
    /// sub-model of a BatchNorm model.
    pub fn forward(&self, images: Tensor<B, 4>, sub: &SubModel) -> Result<Tensor<B, 2>, DeployError> {
        Ok(self.served(sub)?.forward(images))
    }

    /// Class logits of `sub` from its view of the shared weights, even when it is pinned.
    ///
    /// # Errors
    /// As [`SortedModel::forward`].
    pub fn forward_view(&self, images: Tensor<B, 4>, sub: &SubModel) -> Result<Tensor<B, 2>, DeployError> {
        Ok(self.view(sub)?.forward(images))
    }

    /// Class logits of `sub` through the sorted model's own forward pass, which slices the
    /// shared weights on every call (as training does), even when it is pinned. The reference
    /// the views and pinned copies are tested against.
    ///
    /// # Errors
    /// As [`SortedModel::forward`].
    pub fn forward_sliced(&self, images: Tensor<B, 4>, sub: &SubModel) -> Result<Tensor<B, 2>, DeployError> {
        let mut pass = self.norm_pass(sub)?;
        Ok(self.model.forward(images, sub, &mut pass))
    }

    /// Keeps a dense, contiguous copy of `sub` (its parameters' worth of memory) that
    /// [`SortedModel::forward`] serves from. BatchNorm models need `sub` calibrated first.
    ///
    /// # Errors
    /// As [`SortedModel::forward`].
    pub fn pin(&mut self, sub: &SubModel) -> Result<(), DeployError> {
        let dense = self.dense_copy(sub)?;
        self.pinned.insert(sub.clone(), dense);
        Ok(())
    }

    /// Drops the dense copy of `sub`, if any; returns whether there was one.
    pub fn unpin(&mut self, sub: &SubModel) -> bool {
        self.pinned.remove(sub).is_some()
    }

    /// Whether `sub` is served from a pinned dense copy.
    pub fn is_pinned(&self, sub: &SubModel) -> bool {
        self.pinned.contains_key(sub)
    }

    /// `sub` as a standalone dense model. Its parameters are views of the shared weights (no
    /// copy) until something copies them, as `export` does when it writes them out.
    ///
    /// # Errors
    /// As [`SortedModel::forward`].
    pub fn extract(&self, sub: &SubModel) -> Result<M::Dense, DeployError> {
        self.norm_pass(sub)?;
        Ok(self.model.extract(sub, self.norm_stats.get(sub)))
    }

    /// `sub` copied into fresh memory of its own, its linear weights in this handle's layout:
    /// what [`SortedModel::pin`] keeps.
    ///
    /// # Errors
    /// As [`SortedModel::forward`].
    pub fn dense_copy(&self, sub: &SubModel) -> Result<M::Dense, DeployError> {
        Ok(self.extract(sub)?.map(&mut Relayout { layout: self.layout, copy_all: true }))
    }

    /// Measures the latency of each of `subs` on `images`' device, as [`SortedModel::forward`]
    /// serves them (pinned ones from their dense copy).
    ///
    /// Every sub-model is warmed up first; then the timed passes go round-robin over the
    /// sub-models (each round starting one later), so a machine that slows down or speeds up
    /// during profiling shifts every sub-model alike instead of biasing the ones timed last.
    ///
    /// # Errors
    /// Bad options, a sub-model that cannot be served, or the device failing.
    pub fn profile(
        &self,
        images: &Tensor<B, 4>,
        subs: &[SubModel],
        options: LatencyOptions,
    ) -> Result<Vec<Latency>, DeployError> {
        options.validate()?;
        let device = images.device();
        for sub in subs {
            self.norm_pass(sub)?;
            for _ in 0..options.warmup {
                drop(self.forward(images.clone(), sub)?);
                sync::<B>(&device)?;
            }
        }
        let mut samples = vec![Vec::with_capacity(options.repeats); subs.len()];
        for round in 0..options.repeats {
            for k in 0..subs.len() {
                let i = (k + round) % subs.len();
                let sub = &subs[i];
                let served = self.served(sub)?;
                let ms = time_once::<B, 2>(&device, &mut || served.forward(images.clone()))?;
                samples[i].push(ms);
            }
        }
        Ok(samples.iter().map(|s| Latency::from_samples(s).expect("repeats >= 1")).collect())
    }

    /// Measures each of `subs` twice: from its view of the shared weights, and from a dense copy
    /// in fresh memory in the same layout ([`SortedModel::dense_copy`], what
    /// [`SortedModel::pin`] serves). Returns `(view, dense)` per sub-model: the ratio says what
    /// slicing costs, and what pinning would buy, on this device.
    ///
    /// Each sub-model is measured on its own, its sliced and dense passes alternating (which
    /// goes first alternates too), so both see equally warm caches and the same machine load.
    /// (A round-robin over sub-models, as in [`SortedModel::profile`], would favour the sliced
    /// side: its weights are shared by every sub-model and stay cached.) Dense copies exist only
    /// while their sub-model is measured.
    ///
    /// # Errors
    /// As [`SortedModel::profile`].
    pub fn compare_with_dense(
        &self,
        images: &Tensor<B, 4>,
        subs: &[SubModel],
        options: LatencyOptions,
    ) -> Result<Vec<(Latency, Latency)>, DeployError> {
        options.validate()?;
        let device = images.device();
        let mut out = Vec::with_capacity(subs.len());
        for sub in subs {
            let dense = self.dense_copy(sub)?;
            let view = self.view(sub)?;
            let mut sliced = || view.forward(images.clone());
            let mut copied = || dense.forward(images.clone());
            for _ in 0..options.warmup {
                drop(sliced());
                drop(copied());
                sync::<B>(&device)?;
            }
            let (mut s, mut d) = (Vec::with_capacity(options.repeats), Vec::with_capacity(options.repeats));
            for round in 0..options.repeats {
                if round % 2 == 0 {
                    s.push(time_once::<B, 2>(&device, &mut sliced)?);
                    d.push(time_once::<B, 2>(&device, &mut copied)?);
                } else {
                    d.push(time_once::<B, 2>(&device, &mut copied)?);
                    s.push(time_once::<B, 2>(&device, &mut sliced)?);
                }
            }
            out.push((
                Latency::from_samples(&s).expect("repeats >= 1"),
                Latency::from_samples(&d).expect("repeats >= 1"),
            ));
        }
        Ok(out)
    }

    /// What [`SortedModel::forward`] runs for `sub`: its pinned copy, else its view.
    fn served(&self, sub: &SubModel) -> Result<&M::Dense, DeployError> {
        match self.pinned.get(sub) {
            Some(dense) => Ok(dense),
            None => self.view(sub),
        }
    }

    /// The view of `sub`, built on its first call.
    fn view(&self, sub: &SubModel) -> Result<&M::Dense, DeployError> {
        // The cells are exactly the space's sub-models, and a built view had its statistics.
        let cell = self.views.get(sub).ok_or_else(|| DeployError::NotInSpace { sub_model: sub.to_string() })?;
        if let Some(view) = cell.get() {
            return Ok(view);
        }
        self.norm_pass(sub)?;
        Ok(cell.get_or_init(|| self.model.extract(sub, self.norm_stats.get(sub))))
    }

    /// Drops the view of `sub` (its statistics changed); the next call builds a new one.
    fn forget_view(&mut self, sub: &SubModel) {
        if let Some(cell) = self.views.get_mut(sub) {
            cell.take();
        }
    }

    fn check_in_space(&self, sub: &SubModel) -> Result<(), DeployError> {
        if self.space.contains(sub) { Ok(()) } else { Err(DeployError::NotInSpace { sub_model: sub.to_string() }) }
    }

    fn norm_pass(&self, sub: &SubModel) -> Result<NormPass<'_, B>, DeployError> {
        self.check_in_space(sub)?;
        if !self.model.has_batch_norm() {
            return Ok(NormPass::Batch);
        }
        self.norm_stats
            .get(sub)
            .map(NormPass::Calibrated)
            .ok_or_else(|| DeployError::MissingNormStats { sub_model: sub.to_string() })
    }
}
