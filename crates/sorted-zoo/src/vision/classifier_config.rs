//! `[model.<kind>]` of an image experiment: which sorted classifier, its options, the checks
//! against the space it is trained over, and its construction, in one place.
//!
//! ```
//! use burn::backend::Flex;
//! use sorted_nn::{NestingSpace, NestingSpaceConfig};
//! use sorted_zoo::{AnyClassifier, ClassifierConfig};
//!
//! let space = NestingSpace::new(NestingSpaceConfig {
//!     depths: vec![1, 2],
//!     widths: Some(vec![8, 16]),
//!     block_widths: None,
//!     tie_widths: false,
//! })?;
//! let config: ClassifierConfig = toml::from_str("[cnn]\nstrides = [2, 2]")?;
//! config.validate(&space)?;
//! let model = config.init::<Flex>(&space, [1, 28, 28], 10, &Default::default());
//! assert!(matches!(model, AnyClassifier::Cnn(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use burn::module::AutodiffModule;
use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use sorted_nn::NestingSpace;

use crate::sorting::{DEFAULT_SORT_BATCHES, ImportanceScore, check_sort_keys};

use crate::vision::classifier::check_widths;
use crate::{
    DepthOrder, SortedClassifier, SortedCnn, SortedCnnConfig, SortedMlp, SortedMlpConfig, SortedMobileNetV2,
    SortedMobileNetV2Config, SortedResNet, SortedResNetConfig, StagedNetworkConfig,
};

/// The keys of every `[model.<kind>]` for how training starts (`init_from`, `sort_by`,
/// `sort_batches`), declared once by `options_with_start_keys!`.
trait StartKeys {
    /// `init_from`, `sort_by` and `sort_batches`.
    fn start(&self) -> (Option<&str>, Option<ImportanceScore>, Option<usize>);

    /// Unsets all three.
    fn clear_start(&mut self);
}

/// Declares a `[model.<kind>]` options struct: its own fields, then the start keys every family
/// shares (written once here; `#[serde(flatten)]` would not go with `deny_unknown_fields`, and
/// the keys stay flat beside the family's own), and `StartKeys` for it.
macro_rules! options_with_start_keys {
    ($(#[$attr:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            $($fields)*
            /// Start from the weights of an earlier image run (`"runs/<run>"`): its newest
            /// verified checkpoint, which must have been trained with the same `[model.<kind>]`
            /// (these start keys aside), `[space]` and dataset. Unset: a random initialisation.
            /// A resumed run loads its own checkpoint instead.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub init_from: Option<String>,
            /// Sort the model's units, most important first, once before the first step of a
            /// fresh run (issue 31, [`crate::sorting`]): `magnitude`, `activation` or `taylor`,
            /// scored on the full model over the first `sort_batches` training batches
            /// (BatchNorm on batch statistics). Meant for a model started with `init_from`; the
            /// MLP has `magnitude` only, and a model with switchable BatchNorm is refused.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sort_by: Option<ImportanceScore>,
            /// Training batches the `sort_by` scores are summed over (default
            /// [`DEFAULT_SORT_BATCHES`]; needs `sort_by`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sort_batches: Option<usize>,
        }

        impl StartKeys for $name {
            fn start(&self) -> (Option<&str>, Option<ImportanceScore>, Option<usize>) {
                (self.init_from.as_deref(), self.sort_by, self.sort_batches)
            }

            fn clear_start(&mut self) {
                (self.init_from, self.sort_by, self.sort_batches) = (None, None, None);
            }
        }
    };
}

options_with_start_keys! {
    /// `[model.mlp]`: a sorted MLP; its hidden widths come from `[space]`.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MlpOptions {}
}

/// How a convolutional model's BatchNorm statistics are kept per sub-model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchNormStats {
    /// Recalibrate statistics for each evaluated sub-model after training (the default).
    #[default]
    Recalibrate,
    /// Private running statistics per channel option, updated in training.
    Switchable,
}

options_with_start_keys! {
    /// `[model.cnn]`: a sorted CNN; its channels come from `[space]`.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CnnOptions {
        /// Stride of each block (one per allocated block).
        pub strides: Vec<usize>,
        /// How BatchNorm statistics are kept.
        #[serde(default)]
        pub batch_norm: BatchNormStats,
    }
}

options_with_start_keys! {
    /// `[model.resnet]`: a sorted CIFAR-style ResNet (basic blocks); each block of `[space]` is one
    /// residual block, in flat order across the stages or, with `depth_order = "per_stage"`, in
    /// the order blocks per stage activate (see [`DepthOrder`]); each stage is allocated at the
    /// largest width option of its blocks.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResNetOptions {
        /// Blocks per stage (their sum is the space's number of blocks), e.g. `[5, 5, 5]` for
        /// ResNet-32.
        pub blocks_per_stage: Vec<usize>,
        /// Stride of each stage (default `1, 2, 2, ...`).
        #[serde(default)]
        pub strides: Vec<usize>,
        /// How BatchNorm statistics are kept.
        #[serde(default)]
        pub batch_norm: BatchNormStats,
        /// Which blocks depth `d` runs: `"flat"` (default; the first `d` blocks across stages) or
        /// `"per_stage"` (one block of every stage first, then the second of every stage, ...).
        #[serde(default)]
        pub depth_order: DepthOrder,
    }
}

options_with_start_keys! {
    /// `[model.mobilenet_v2]`: a sorted MobileNetV2 (CIFAR-style strides unless `stem_stride` says
    /// otherwise), its 17 inverted residual blocks the blocks of `[space]`.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MobileNetV2Options {
        /// Width multiplier of the allocation (1.0: 16 ... 320 channels, last conv 1280).
        #[serde(default = "one")]
        pub width_multiplier: f64,
        /// Scale the last 1x1 convolution with the last block's width fraction (default: it stays
        /// full width, as in US-Nets).
        #[serde(default)]
        pub scale_last_conv: bool,
        /// How BatchNorm statistics are kept.
        #[serde(default)]
        pub batch_norm: BatchNormStats,
        /// Stride of the stem convolution (default 1, CIFAR-style). 2 halves every feature map,
        /// which cuts a step's cost about 4x on 28x28 inputs.
        #[serde(default = "default_stem_stride")]
        pub stem_stride: usize,
        /// Which blocks depth `d` runs: `"flat"` (default; the first `d` blocks across stages) or
        /// `"per_stage"` (the first block of each of the 7 stages, then the second of each stage
        /// that has one, ...: elastic depth as in Once-for-All). The space lists blocks in that
        /// order.
        #[serde(default)]
        pub depth_order: DepthOrder,
    }
}

/// An importance score as configs write it.
pub(crate) fn score_name(score: ImportanceScore) -> &'static str {
    match score {
        ImportanceScore::Magnitude => "magnitude",
        ImportanceScore::Activation => "activation",
        ImportanceScore::Taylor => "taylor",
    }
}

fn default_stem_stride() -> usize {
    1
}

fn one() -> f64 {
    1.0
}

/// `[model.<kind>]`: the sorted image classifier of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ClassifierConfig {
    /// A sorted MLP.
    Mlp(MlpOptions),
    /// A sorted CNN.
    Cnn(CnnOptions),
    /// A sorted ResNet.
    Resnet(ResNetOptions),
    /// A sorted MobileNetV2.
    MobilenetV2(MobileNetV2Options),
}

/// A `[model.*]` value that does not fit its space. Names the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}`: expected {expected}, got {got}")]
pub struct ModelConfigError {
    /// The key path, e.g. `model.resnet.strides[1]`.
    pub key: String,
    /// What was expected.
    pub expected: String,
    /// What was given.
    pub got: String,
}

impl ModelConfigError {
    pub(crate) fn new(key: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Self {
        Self { key: key.into(), expected: expected.into(), got: got.to_string() }
    }
}

/// Checks every stride of `key` is in `1..=4`.
fn check_strides(key: &str, strides: &[usize]) -> Result<(), ModelConfigError> {
    match strides.iter().position(|&s| s == 0 || s > 4) {
        Some(i) => Err(ModelConfigError::new(format!("{key}[{i}]"), "a stride in 1..=4", strides[i])),
        None => Ok(()),
    }
}

impl ClassifierConfig {
    /// The family's name (`mlp`, `cnn`, `resnet`, `mobilenet_v2`), as in configs and exports.
    pub fn kind(&self) -> &'static str {
        match self {
            ClassifierConfig::Mlp(_) => "mlp",
            ClassifierConfig::Cnn(_) => "cnn",
            ClassifierConfig::Resnet(_) => "resnet",
            ClassifierConfig::MobilenetV2(_) => "mobilenet_v2",
        }
    }

    /// How the model keeps BatchNorm statistics (`None` for models without BatchNorm).
    pub fn batch_norm(&self) -> Option<BatchNormStats> {
        match self {
            ClassifierConfig::Mlp(_) => None,
            ClassifierConfig::Cnn(o) => Some(o.batch_norm),
            ClassifierConfig::Resnet(o) => Some(o.batch_norm),
            ClassifierConfig::MobilenetV2(o) => Some(o.batch_norm),
        }
    }

    /// The keys every family shares for how training starts: `init_from`, `sort_by`,
    /// `sort_batches`.
    fn start(&self) -> (Option<&str>, Option<ImportanceScore>, Option<usize>) {
        match self {
            ClassifierConfig::Mlp(o) => o.start(),
            ClassifierConfig::Cnn(o) => o.start(),
            ClassifierConfig::Resnet(o) => o.start(),
            ClassifierConfig::MobilenetV2(o) => o.start(),
        }
    }

    /// The earlier run whose weights a fresh run starts from (`init_from`), if any.
    pub fn init_from(&self) -> Option<&str> {
        self.start().0
    }

    /// The importance score and calibration batches to sort the model with before training
    /// (`sort_by`, `sort_batches` with its default), if any.
    pub fn sorting(&self) -> Option<(ImportanceScore, usize)> {
        let (_, sort_by, sort_batches) = self.start();
        sort_by.map(|score| (score, sort_batches.unwrap_or(DEFAULT_SORT_BATCHES)))
    }

    /// The config without the start keys (`init_from`, `sort_by`, `sort_batches`): what the
    /// weights of a run depend on, to compare with the run an `init_from` names.
    pub fn architecture(&self) -> ClassifierConfig {
        let mut config = self.clone();
        match &mut config {
            ClassifierConfig::Mlp(o) => o.clear_start(),
            ClassifierConfig::Cnn(o) => o.clear_start(),
            ClassifierConfig::Resnet(o) => o.clear_start(),
            ClassifierConfig::MobilenetV2(o) => o.clear_start(),
        }
        config
    }

    /// The model of sub-model `sub` trained alone, as its own dense model (the baseline of
    /// `compare`), and the width of each of its blocks in forward order (the alone run's
    /// `space.block_widths`, one width each).
    ///
    /// The active blocks are the first `sub.depth()`, or for a ResNet the first blocks of each
    /// stage in its depth order; a ResNet keeps only the stages with an active block. A
    /// MobileNetV2 keeps its allocation (it follows `width_multiplier`) and its depth order, and
    /// only ever activates the sub-model's slice: the same function, parameters and gradients as
    /// a dense model of those widths; only the initial weight scale differs (Kaiming over the
    /// allocated fan-in), which the BatchNorm after every convolution cancels. Models with
    /// BatchNorm recalibrate it, as a dense model's one width needs no per-width statistics.
    ///
    /// # Panics
    /// If `sub` is deeper than this model (a sub-model of another space).
    pub fn alone(&self, sub: &sorted_nn::SubModel) -> (ClassifierConfig, Vec<usize>) {
        let mut config = self.clone();
        let block_of = match &config {
            ClassifierConfig::Resnet(o) => crate::activation_order(&o.blocks_per_stage, o.depth_order),
            _ => (0..sub.depth()).collect(),
        };
        let mut blocks: Vec<(usize, usize)> = sub.widths().iter().enumerate().map(|(r, &w)| (block_of[r], w)).collect();
        blocks.sort_unstable();
        match &mut config {
            ClassifierConfig::Mlp(_) => {}
            ClassifierConfig::Cnn(o) => {
                o.strides.truncate(sub.depth());
                o.batch_norm = BatchNormStats::Recalibrate;
            }
            ClassifierConfig::Resnet(o) => {
                let mut first = 0;
                let mut per_stage = Vec::new();
                for &b in &o.blocks_per_stage {
                    let active = blocks.iter().filter(|&&(i, _)| (first..first + b).contains(&i)).count();
                    first += b;
                    if active == 0 {
                        break;
                    }
                    per_stage.push(active);
                }
                o.strides.truncate(per_stage.len());
                o.blocks_per_stage = per_stage;
                o.batch_norm = BatchNormStats::Recalibrate;
                o.depth_order = DepthOrder::Flat;
            }
            ClassifierConfig::MobilenetV2(o) => o.batch_norm = BatchNormStats::Recalibrate,
        }
        (config, blocks.into_iter().map(|(_, w)| w).collect())
    }

    /// Checks the start keys: a non-empty `init_from`, `sort_batches` at least 1 and only with
    /// `sort_by`, no `sort_by` but `magnitude` for the MLP (it has no calibration score) and no
    /// `sort_by` with switchable BatchNorm (its per-width statistics describe the old prefixes).
    fn validate_start(&self) -> Result<(), ModelConfigError> {
        let kind = self.kind();
        let (init_from, sort_by, sort_batches) = self.start();
        if init_from.is_some_and(|dir| dir.trim().is_empty()) {
            return Err(ModelConfigError::new(format!("model.{kind}.init_from"), "a run folder", "\"\""));
        }
        check_sort_keys(kind, sort_by, sort_batches)?;
        match sort_by {
            Some(score @ (ImportanceScore::Activation | ImportanceScore::Taylor))
                if matches!(self, ClassifierConfig::Mlp(_)) =>
            {
                Err(ModelConfigError::new(
                    "model.mlp.sort_by",
                    "\"magnitude\" (the MLP has no activation or Taylor score)",
                    score_name(score),
                ))
            }
            Some(score) if self.batch_norm() == Some(BatchNormStats::Switchable) => Err(ModelConfigError::new(
                format!("model.{kind}.sort_by"),
                format!(
                    "no sorting with `model.{kind}.batch_norm = \"switchable\"` (its per-width statistics \
                     describe the unsorted prefixes; sort a model that recalibrates)"
                ),
                score_name(score),
            )),
            _ => Ok(()),
        }
    }

    /// Checks the options against `space`: one stride per CNN block or ResNet stage (each in
    /// `1..=4`), ResNet blocks per stage summing to the space's blocks, a MobileNetV2 width
    /// multiplier in `(0, 4]` and stem stride in `1..=4` whose allocation holds the space; and
    /// the start keys (`init_from`, `sort_by`, `sort_batches`).
    ///
    /// # Errors
    /// [`ModelConfigError`] naming the first key that does not fit.
    pub fn validate(&self, space: &NestingSpace) -> Result<(), ModelConfigError> {
        self.validate_start()?;
        match self {
            ClassifierConfig::Mlp(_) => Ok(()),
            ClassifierConfig::Cnn(cnn) => {
                if cnn.strides.len() != space.n_blocks() {
                    return Err(ModelConfigError::new(
                        "model.cnn.strides",
                        format!("{} strides (one per allocated block)", space.n_blocks()),
                        cnn.strides.len(),
                    ));
                }
                check_strides("model.cnn.strides", &cnn.strides)
            }
            ClassifierConfig::Resnet(r) => {
                let total: usize = r.blocks_per_stage.iter().sum();
                if r.blocks_per_stage.is_empty() || r.blocks_per_stage.contains(&0) || total != space.n_blocks() {
                    return Err(ModelConfigError::new(
                        "model.resnet.blocks_per_stage",
                        format!("non-zero block counts summing to {} (the space's blocks)", space.n_blocks()),
                        format!("{:?}", r.blocks_per_stage),
                    ));
                }
                if !r.strides.is_empty() && r.strides.len() != r.blocks_per_stage.len() {
                    return Err(ModelConfigError::new(
                        "model.resnet.strides",
                        format!("{} strides (one per stage) or none", r.blocks_per_stage.len()),
                        r.strides.len(),
                    ));
                }
                check_strides("model.resnet.strides", &r.strides)
            }
            ClassifierConfig::MobilenetV2(m) => {
                if !(m.width_multiplier.is_finite() && m.width_multiplier > 0.0 && m.width_multiplier <= 4.0) {
                    return Err(ModelConfigError::new(
                        "model.mobilenet_v2.width_multiplier",
                        "a multiplier in (0, 4]",
                        m.width_multiplier,
                    ));
                }
                if m.stem_stride == 0 || m.stem_stride > 4 {
                    return Err(ModelConfigError::new(
                        "model.mobilenet_v2.stem_stride",
                        "a stride in 1..=4",
                        m.stem_stride,
                    ));
                }
                let allocated = SortedMobileNetV2Config::cifar(m.width_multiplier)
                    .with_depth_order(m.depth_order)
                    .allocated_widths();
                check_widths(space, &allocated).map_err(|e| match e {
                    sorted_nn::SpecError::Allocation { what, allocated, needed } => ModelConfigError::new(
                        format!("space {what}"),
                        format!("at most {allocated} (model.mobilenet_v2 at width {})", m.width_multiplier),
                        needed,
                    ),
                    other => ModelConfigError::new("space", "a space model.mobilenet_v2 allocates", other),
                })
            }
        }
    }

    /// A generous estimate of the parameters of the model over `space` for inputs of
    /// `[channels, height, width]`: each block counted as a dense layer (MLP), one 3x3
    /// convolution (CNN) or two (ResNet) from the previous block's allocated width; `None` for
    /// MobileNetV2, whose allocation is fixed by its multiplier ([`Self::validate`] bounds it).
    /// Saturates instead of overflowing, so that absurd sizes can be refused before anything is
    /// allocated.
    pub fn estimated_params(&self, space: &NestingSpace, [c, h, w]: [usize; 3], n_classes: usize) -> Option<u128> {
        let (d_input, fan) = match self {
            ClassifierConfig::Mlp(_) => (c.saturating_mul(h).saturating_mul(w), 1),
            ClassifierConfig::Cnn(_) => (c, 9),
            ClassifierConfig::Resnet(_) => (c, 18),
            ClassifierConfig::MobilenetV2(_) => return None,
        };
        let mut total: u128 = 0;
        let mut previous = d_input as u128;
        for width in space.allocated_widths() {
            total = total.saturating_add((fan as u128).saturating_mul(previous).saturating_mul(width as u128));
            previous = width as u128;
        }
        Some(total.saturating_add(previous.saturating_mul(n_classes as u128)))
    }

    /// Builds the model over `space` for inputs of `[channels, height, width]` and `n_classes`
    /// classes (the config validated with [`Self::validate`]).
    ///
    /// # Panics
    /// If the config was not validated against `space` (a ResNet whose stages do not sum to
    /// the space's blocks).
    pub fn init<B: Backend>(
        &self,
        space: &NestingSpace,
        [c, h, w]: [usize; 3],
        n_classes: usize,
        device: &B::Device,
    ) -> AnyClassifier<B> {
        match self {
            ClassifierConfig::Mlp(_) => {
                AnyClassifier::Mlp(SortedMlpConfig::for_space(c * h * w, n_classes, space).init(device))
            }
            ClassifierConfig::Cnn(opts) => {
                let mut config = SortedCnnConfig::for_space(c, [h, w], n_classes, space, opts.strides.clone());
                if opts.batch_norm == BatchNormStats::Switchable {
                    config = config.with_switchable_bn(space);
                }
                AnyClassifier::Cnn(config.init(device))
            }
            ClassifierConfig::Resnet(opts) => {
                let mut config = SortedResNetConfig::for_space_ordered(
                    c,
                    [h, w],
                    n_classes,
                    space,
                    &opts.blocks_per_stage,
                    opts.depth_order,
                )
                .expect("model.resnet was validated against the space");
                for (stage, &stride) in config.stages.iter_mut().zip(&opts.strides) {
                    stage.stride = stride;
                }
                if opts.batch_norm == BatchNormStats::Switchable {
                    config = config.with_switchable_bn(space);
                }
                AnyClassifier::ResNet(config.init(device))
            }
            ClassifierConfig::MobilenetV2(opts) => {
                let mut config = SortedMobileNetV2Config::cifar(opts.width_multiplier)
                    .with_input(c, [h, w], n_classes)
                    .with_scale_last_conv(opts.scale_last_conv)
                    .with_depth_order(opts.depth_order);
                config.stem_stride = opts.stem_stride;
                if opts.batch_norm == BatchNormStats::Switchable {
                    config = config.with_switchable_bn(space);
                }
                AnyClassifier::MobileNetV2(config.init(device))
            }
        }
    }
}

/// A sorted classifier of any family, as [`ClassifierConfig::init`] builds it. Code generic
/// over [`SortedClassifier`] takes it through [`AnyClassifier::visit`] (or
/// [`AnyClassifier::visit_trainable`] for training).
// Built once and handed on at once, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyClassifier<B: Backend> {
    /// A sorted MLP.
    Mlp(SortedMlp<B>),
    /// A sorted CNN.
    Cnn(SortedCnn<B>),
    /// A sorted ResNet.
    ResNet(SortedResNet<B>),
    /// A sorted MobileNetV2.
    MobileNetV2(SortedMobileNetV2<B>),
}

/// Work done with a classifier of any family: [`AnyClassifier::visit`] calls it with the
/// concrete model.
pub trait ClassifierVisitor<B: Backend> {
    /// What the visit returns.
    type Output;

    /// Does the work with the concrete model.
    fn visit<M: SortedClassifier<B>>(self, model: M) -> Self::Output;
}

/// A change to a classifier of any family that keeps its type (loading weights into it, for
/// one): [`AnyClassifier::try_map`] calls it with the concrete model.
pub trait ClassifierMap<B: Backend> {
    /// Why the change can fail.
    type Error;

    /// The changed model.
    ///
    /// # Errors
    /// Whatever the change fails with.
    fn map<M: SortedClassifier<B>>(&self, model: M) -> Result<M, Self::Error>;
}

/// Work that trains a classifier of any family: [`AnyClassifier::visit_trainable`] calls it
/// with the concrete model, which (and whose inner model) is a [`SortedClassifier`].
pub trait TrainableClassifierVisitor<B: AutodiffBackend> {
    /// What the visit returns.
    type Output;

    /// Does the work with the concrete model.
    fn visit<M>(self, model: M) -> Self::Output
    where
        M: SortedClassifier<B> + AutodiffModule<B>,
        M::InnerModule: SortedClassifier<B::InnerBackend>;
}

impl<B: Backend> AnyClassifier<B> {
    /// Hands the concrete model to `visitor`.
    pub fn visit<V: ClassifierVisitor<B>>(self, visitor: V) -> V::Output {
        match self {
            AnyClassifier::Mlp(m) => visitor.visit(m),
            AnyClassifier::Cnn(m) => visitor.visit(m),
            AnyClassifier::ResNet(m) => visitor.visit(m),
            AnyClassifier::MobileNetV2(m) => visitor.visit(m),
        }
    }

    /// The same family of model, changed by `change`.
    ///
    /// # Errors
    /// The change's error.
    pub fn try_map<F: ClassifierMap<B>>(self, change: &F) -> Result<Self, F::Error> {
        Ok(match self {
            AnyClassifier::Mlp(m) => AnyClassifier::Mlp(change.map(m)?),
            AnyClassifier::Cnn(m) => AnyClassifier::Cnn(change.map(m)?),
            AnyClassifier::ResNet(m) => AnyClassifier::ResNet(change.map(m)?),
            AnyClassifier::MobileNetV2(m) => AnyClassifier::MobileNetV2(change.map(m)?),
        })
    }
}

impl<B: AutodiffBackend> AnyClassifier<B> {
    /// Hands the concrete model to a training `visitor`.
    pub fn visit_trainable<V: TrainableClassifierVisitor<B>>(self, visitor: V) -> V::Output {
        match self {
            AnyClassifier::Mlp(m) => visitor.visit(m),
            AnyClassifier::Cnn(m) => visitor.visit(m),
            AnyClassifier::ResNet(m) => visitor.visit(m),
            AnyClassifier::MobileNetV2(m) => visitor.visit(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sorted_nn::NestingSpaceConfig;

    fn space(depths: Vec<usize>, widths: Vec<usize>) -> NestingSpace {
        NestingSpace::new(NestingSpaceConfig { depths, widths: Some(widths), block_widths: None, tie_widths: false })
            .unwrap()
    }

    #[test]
    fn options_that_do_not_fit_the_space_name_the_key() {
        let s = space(vec![1, 2], vec![8, 16]);
        let bad = |text: &str| toml::from_str::<ClassifierConfig>(text).unwrap().validate(&s).unwrap_err().key;
        assert_eq!(bad("[cnn]\nstrides = [2]"), "model.cnn.strides");
        assert_eq!(bad("[cnn]\nstrides = [2, 9]"), "model.cnn.strides[1]");
        assert_eq!(bad("[resnet]\nblocks_per_stage = [1, 2]"), "model.resnet.blocks_per_stage");
        assert_eq!(bad("[resnet]\nblocks_per_stage = [1, 1]\nstrides = [1]"), "model.resnet.strides");
        assert_eq!(bad("[mobilenet_v2]\nwidth_multiplier = 0.0"), "model.mobilenet_v2.width_multiplier");
        assert_eq!(bad("[mobilenet_v2]\nstem_stride = 5"), "model.mobilenet_v2.stem_stride");
        let wide = space(vec![1, 2], vec![8, 4096]);
        let err = toml::from_str::<ClassifierConfig>("[mobilenet_v2]").unwrap().validate(&wide).unwrap_err();
        assert!(err.key == "space block 0 width" && err.got == "4096", "{err}");
    }

    #[test]
    fn the_parameter_estimate_bounds_the_real_count_and_saturates() {
        use burn::backend::Flex;
        let s = space(vec![1, 2], vec![8, 16]);
        let device = Default::default();
        for text in ["[mlp]", "[cnn]\nstrides = [2, 2]", "[resnet]\nblocks_per_stage = [2]"] {
            let config: ClassifierConfig = toml::from_str(text).unwrap();
            let estimate = config.estimated_params(&s, [1, 28, 28], 10).unwrap();
            let real = match config.init::<Flex>(&s, [1, 28, 28], 10, &device) {
                AnyClassifier::Mlp(m) => burn::module::Module::num_params(&m),
                AnyClassifier::Cnn(m) => burn::module::Module::num_params(&m),
                AnyClassifier::ResNet(m) => burn::module::Module::num_params(&m),
                AnyClassifier::MobileNetV2(m) => burn::module::Module::num_params(&m),
            };
            assert!(estimate as usize * 2 >= real, "{text}: estimate {estimate}, real {real}");
        }
        let huge = space(vec![1, 2], vec![8, 1 << 24]);
        let mlp: ClassifierConfig = toml::from_str("[mlp]").unwrap();
        assert!(mlp.estimated_params(&huge, [3, 32, 32], 100).unwrap() > 1 << 40);
    }
}
