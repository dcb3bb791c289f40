//! Importance sorting of an image classifier of any family (issue 31): what the `[model.<kind>]
//! sort_by` key of an image experiment does before the first step. The scores and the
//! permutations are [`crate::sorting`]'s; this file picks the family's functions and sums the
//! scores over the calibration batches.
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use burn::prelude::*;
//! use sorted_nn::{NestingSpace, NestingSpaceConfig};
//! use sorted_zoo::sorting::ImportanceScore;
//! use sorted_zoo::{ClassifierConfig, sort_classifier};
//!
//! type B = Autodiff<Flex>;
//! let space = NestingSpace::new(NestingSpaceConfig {
//!     depths: vec![1, 2],
//!     widths: Some(vec![2, 4]),
//!     block_widths: None,
//!     tie_widths: false,
//! })?;
//! let config: ClassifierConfig = toml::from_str("[cnn]\nstrides = [2, 2]\nsort_by = \"taylor\"")?;
//! config.validate(&space)?;
//! let device = Default::default();
//! let model = config.init::<B>(&space, [1, 28, 28], 10, &device);
//! let images = Tensor::<B, 4>::random([4, 1, 28, 28], burn::tensor::Distribution::Default, &device);
//! let labels = Tensor::<B, 1, Int>::from_ints([0, 1, 2, 3], &device);
//! let sorted = sort_classifier(model, &space.largest(), ImportanceScore::Taylor, [(images, labels)])?;
//! assert_eq!((sorted.blocks.len(), sorted.batches), (2, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use sorted_nn::SubModel;

use crate::AnyClassifier;
use crate::sorting::{
    ChannelScores, ImportanceScore, SortError, importance_channels, magnitude_cnn, magnitude_mlp,
    magnitude_mobilenet_v2, magnitude_resnet, sort_cnn, sort_mlp, sort_mobilenet_v2, sort_resnet,
};

/// What [`sort_classifier`] did.
#[derive(Debug)]
pub struct ClassifierSort<B: Backend> {
    /// The sorted model (the same function in its full sub-model).
    pub model: AnyClassifier<B>,
    /// Per block, the scores of the units the sort reordered, in the order of the weights
    /// **before** sorting (an MLP's hidden units, a CNN's convolution channels, a ResNet's
    /// inner channels, a MobileNetV2's hidden channels: see [`crate::sorting`]).
    pub blocks: Vec<Vec<f32>>,
    /// Calibration batches the scores are summed over (0 for `magnitude`, which reads the
    /// weights only).
    pub batches: usize,
}

/// Scores `model`'s units with `score` in its full sub-model `full` on every calibration batch
/// of `batches` (`images` `[n, c, h, w]` with `n >= 2`, `labels` `[n]`; BatchNorm on batch
/// statistics), sums the scores and sorts the units, most important first: an MLP by
/// [`sort_mlp`], a CNN by [`sort_cnn`], a ResNet by [`sort_resnet`], a MobileNetV2 by
/// [`sort_mobilenet_v2`]. `magnitude` reads no batch.
///
/// # Errors
/// [`SortError::Calibration`] for a batch that does not fit the model (or no batch at all for a
/// calibration score), [`SortError::Switchable`] for a model with switchable BatchNorm.
///
/// # Panics
/// For an MLP with another score than `magnitude` (the MLP has no calibration score;
/// [`ClassifierConfig::validate`](crate::ClassifierConfig::validate) refuses that config).
pub fn sort_classifier<B, I>(
    model: AnyClassifier<B>,
    full: &SubModel,
    score: ImportanceScore,
    batches: I,
) -> Result<ClassifierSort<B>, SortError>
where
    B: AutodiffBackend,
    I: IntoIterator<Item = (Tensor<B, 4>, Tensor<B, 1, Int>)>,
{
    if let AnyClassifier::Mlp(mlp) = model {
        assert_eq!(score, ImportanceScore::Magnitude, "an MLP is sorted by magnitude only");
        let scores = magnitude_mlp(&mlp);
        let model = AnyClassifier::Mlp(sort_mlp(mlp, &scores)?);
        return Ok(ClassifierSort { model, blocks: scores.blocks, batches: 0 });
    }
    let (blocks, n) = if score == ImportanceScore::Magnitude {
        let scores = match &model {
            AnyClassifier::Cnn(m) => magnitude_cnn(m),
            AnyClassifier::ResNet(m) => magnitude_resnet(m),
            AnyClassifier::MobileNetV2(m) => magnitude_mobilenet_v2(m),
            AnyClassifier::Mlp(_) => unreachable!("handled above"),
        };
        (scores.blocks, 0)
    } else {
        let mut total: Option<Vec<Vec<f32>>> = None;
        let mut n = 0;
        for (images, labels) in batches {
            let scores = match &model {
                AnyClassifier::Cnn(m) => importance_channels(m, full, images, labels, score)?,
                AnyClassifier::ResNet(m) => importance_channels(m, full, images, labels, score)?,
                AnyClassifier::MobileNetV2(m) => importance_channels(m, full, images, labels, score)?,
                AnyClassifier::Mlp(_) => unreachable!("handled above"),
            };
            n += 1;
            match &mut total {
                None => total = Some(scores.blocks),
                Some(t) => t.iter_mut().flatten().zip(scores.blocks.iter().flatten()).for_each(|(a, b)| *a += b),
            }
        }
        let Some(blocks) = total else {
            return Err(SortError::Calibration {
                what: "batches",
                expected: "at least one calibration batch".into(),
                got: Vec::new(),
            });
        };
        (blocks, n)
    };
    let scores = ChannelScores { blocks };
    let model = match model {
        AnyClassifier::Cnn(m) => AnyClassifier::Cnn(sort_cnn(m, &scores)?),
        AnyClassifier::ResNet(m) => AnyClassifier::ResNet(sort_resnet(m, &scores)?),
        AnyClassifier::MobileNetV2(m) => AnyClassifier::MobileNetV2(sort_mobilenet_v2(m, &scores)?),
        AnyClassifier::Mlp(_) => unreachable!("handled above"),
    };
    Ok(ClassifierSort { model, blocks: scores.blocks, batches: n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClassifierConfig;
    use burn::backend::{Autodiff, Flex};
    use sorted_nn::{NestingSpace, NestingSpaceConfig, NormPass};

    type B = Autodiff<Flex>;

    /// Depths 1 and 2, widths 4 and 8 per block.
    fn space() -> NestingSpace {
        NestingSpace::new(NestingSpaceConfig {
            depths: vec![1, 2],
            widths: Some(vec![4, 8]),
            block_widths: None,
            tie_widths: false,
        })
        .unwrap()
    }

    fn logits(model: &AnyClassifier<B>, images: Tensor<B, 4>, full: &SubModel) -> Vec<f32> {
        use crate::SortedClassifier;
        let pass = &mut NormPass::Batch;
        let out = match model {
            AnyClassifier::Mlp(m) => m.forward(images, full, pass),
            AnyClassifier::Cnn(m) => m.forward(images, full, pass),
            AnyClassifier::ResNet(m) => m.forward(images, full, pass),
            AnyClassifier::MobileNetV2(m) => m.forward(images, full, pass),
        };
        out.into_data().convert::<f32>().to_vec().unwrap()
    }

    #[test]
    fn every_family_sorted_by_every_score_keeps_the_full_models_logits() {
        let space = space();
        let device = Default::default();
        let full = space.largest();
        let batch = || {
            let images = Tensor::<B, 4>::random([6, 1, 16, 16], burn::tensor::Distribution::Default, &device);
            (images, Tensor::<B, 1, Int>::from_ints([0, 1, 2, 3, 4, 5], &device))
        };
        let families = ["[mlp]", "[cnn]\nstrides = [2, 2]", "[resnet]\nblocks_per_stage = [1, 1]"];
        for (family, score) in families.iter().flat_map(|f| {
            let scores: &[ImportanceScore] = if f.starts_with("[mlp]") {
                &[ImportanceScore::Magnitude]
            } else {
                &[ImportanceScore::Magnitude, ImportanceScore::Activation, ImportanceScore::Taylor]
            };
            scores.iter().map(move |s| (*f, *s))
        }) {
            let config: ClassifierConfig = toml::from_str(family).unwrap();
            let model = config.init::<B>(&space, [1, 16, 16], 6, &device);
            let (images, _) = batch();
            let before = logits(&model, images.clone(), &full);
            let sorted = sort_classifier(model, &full, score, [batch(), batch()]).unwrap();
            let after = logits(&sorted.model, images, &full);
            let diff = before.iter().zip(&after).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-4, "{family} by {score:?}: {diff}");
            let expected = if score == ImportanceScore::Magnitude { 0 } else { 2 };
            assert_eq!(sorted.batches, expected, "{family} by {score:?}");
            assert_eq!(sorted.blocks.len(), 2);
        }
    }

    #[test]
    fn the_start_keys_are_checked_naming_them() {
        let space = space();
        let bad = |text: &str| toml::from_str::<ClassifierConfig>(text).unwrap().validate(&space).unwrap_err().key;
        assert_eq!(bad("[mlp]\nsort_by = \"taylor\""), "model.mlp.sort_by");
        assert_eq!(
            bad("[cnn]\nstrides = [2, 2]\nbatch_norm = \"switchable\"\nsort_by = \"taylor\""),
            "model.cnn.sort_by"
        );
        assert_eq!(bad("[resnet]\nblocks_per_stage = [2]\nsort_batches = 2"), "model.resnet.sort_batches");
        assert_eq!(
            bad("[resnet]\nblocks_per_stage = [2]\nsort_by = \"activation\"\nsort_batches = 0"),
            "model.resnet.sort_batches"
        );
        assert_eq!(bad("[cnn]\nstrides = [2, 2]\ninit_from = \"\""), "model.cnn.init_from");
        let err = toml::from_str::<ClassifierConfig>("[cnn]\nstrides = [2, 2]\nsort_by = \"tylor\"").unwrap_err();
        assert!(err.to_string().contains("tylor"), "{err}");
        let err = toml::from_str::<ClassifierConfig>("[cnn]\nstrides = [2, 2]\ninit_form = \"runs/x\"").unwrap_err();
        assert!(err.to_string().contains("init_form"), "{err}");
        let ok: ClassifierConfig =
            toml::from_str("[cnn]\nstrides = [2, 2]\ninit_from = \"runs/x\"\nsort_by = \"taylor\"").unwrap();
        ok.validate(&space).unwrap();
        assert_eq!(ok.init_from(), Some("runs/x"));
        assert_eq!(ok.sorting(), Some((ImportanceScore::Taylor, crate::sorting::DEFAULT_SORT_BATCHES)));
        assert_eq!(ok.architecture(), toml::from_str("[cnn]\nstrides = [2, 2]").unwrap());
    }
}
