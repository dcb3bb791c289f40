//! A dense image sub-model exported to a folder (`model.safetensors` in PyTorch layout,
//! `model.mpk` the burn record, `manifest.json`), loaded back without the run it came from: the
//! dense skeleton is rebuilt from the classifier config, the space and the manifest's sub-model,
//! and every tensor of the weight file must fit it.
//!
//! `sorted-runner export` writes such folders; its `manifest.json` holds a
//! [`DenseExportManifest`] together with the run's provenance and config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{DefaultRecorder, Recorder, RecorderError};
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore, SafetensorsStoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sorted_data::ImageBatch;
use sorted_nn::{NestingSpace, SpecError, SubModel};

use crate::vision::classifier::{DenseClassifier, SortedClassifier};
use crate::vision::classifier_config::{AnyClassifier, ClassifierConfig, ModelConfigError};
use crate::vision::evaluate::calibrate_sub_model;
use crate::{DenseCnn, DenseMlp, DenseMobileNetV2, DenseResNet};

/// The format tag of the `manifest.json` files of dense image exports this version writes and
/// reads.
pub const EXPORT_FORMAT: &str = "sortednet-rs dense sub-model v1";

/// What a dense image export's `manifest.json` says about the model: enough, with the
/// classifier config and space, to rebuild it and check its weight files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseExportManifest {
    /// Format tag ([`EXPORT_FORMAT`]).
    pub format: String,
    /// The model family (`mlp`, `cnn`, `resnet`, `mobilenet_v2`).
    pub model: String,
    /// Input shape `[channels, height, width]` the model expects (normalised images).
    pub input_shape: [usize; 3],
    /// Per-channel `(mean, std)` the input pixels (scaled to 0..1) are normalised with.
    pub input_normalisation: Vec<(f32, f32)>,
    /// Number of classes.
    pub n_classes: usize,
    /// The sub-model (widths joined by `-`).
    pub sub_model: String,
    /// Active width per block.
    pub widths: Vec<usize>,
    /// The SHA-256 of each weight file: [`load_dense_export`] refuses a damaged or swapped file
    /// (absent in exports written before it existed, which load unverified).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sha256: BTreeMap<String, String>,
}

/// A loaded export: the dense model of its family.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one value per loaded model; boxing buys nothing
pub enum ExportedModel<B: Backend> {
    /// A dense MLP.
    Mlp(DenseMlp<B>),
    /// A dense CNN.
    Cnn(DenseCnn<B>),
    /// A dense ResNet.
    ResNet(DenseResNet<B>),
    /// A dense MobileNetV2.
    MobileNetV2(DenseMobileNetV2<B>),
}

impl<B: Backend> ExportedModel<B> {
    /// Class logits, `[batch, n_classes]`, for normalised images `[batch, channels, height,
    /// width]` (see the manifest's `input_normalisation`).
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            ExportedModel::Mlp(m) => m.forward(images),
            ExportedModel::Cnn(m) => m.forward(images),
            ExportedModel::ResNet(m) => m.forward(images),
            ExportedModel::MobileNetV2(m) => m.forward(images),
        }
    }
}

/// Which weight file of an export folder to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportWeights {
    /// `model.safetensors`, PyTorch layout (what other frameworks read).
    Safetensors,
    /// `model.mpk`, the burn record.
    BurnRecord,
}

impl ExportWeights {
    /// The file name in the export folder.
    pub fn file_name(self) -> &'static str {
        match self {
            ExportWeights::Safetensors => "model.safetensors",
            ExportWeights::BurnRecord => "model.mpk",
        }
    }
}

/// Why an export folder could not be loaded. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DenseExportError {
    /// The manifest is of another format.
    #[error("`{path}`: format `{found}`, this version reads `{EXPORT_FORMAT}`")]
    Format {
        /// The manifest.
        path: PathBuf,
        /// Its format tag.
        found: String,
    },
    /// The classifier config does not fit the space.
    #[error("`{path}`: its model config")]
    Config {
        /// The manifest.
        path: PathBuf,
        /// The key that does not fit.
        #[source]
        source: ModelConfigError,
    },
    /// The manifest's sub-model is not one of the space.
    #[error("`{path}`: sub_model `{sub_model}`")]
    SubModel {
        /// The manifest.
        path: PathBuf,
        /// The sub-model as written.
        sub_model: String,
        /// Why it is not in the space.
        #[source]
        source: SpecError,
    },
    /// The manifest's model family is not the config's.
    #[error("`{path}`: model `{model}` does not match its config's model `{config_model}`")]
    Model {
        /// The manifest.
        path: PathBuf,
        /// The manifest's family.
        model: String,
        /// The config's family.
        config_model: String,
    },
    /// A weight file could not be read.
    #[error("reading `{path}`")]
    Read {
        /// The weight file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A weight file's SHA-256 is not the manifest's.
    #[error("`{path}` is damaged or not this export's weights: SHA-256 {found}, `{manifest}` says {expected}")]
    Digest {
        /// The weight file.
        path: PathBuf,
        /// The manifest.
        manifest: PathBuf,
        /// The manifest's digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// The burn record could not be decoded.
    #[error("reading `{path}`")]
    Record {
        /// The record file.
        path: PathBuf,
        /// Burn's error.
        #[source]
        source: RecorderError,
    },
    /// A parameter of the burn record has another shape than the sub-model's.
    #[error(
        "`{path}`: parameter `{param}` has shape {found:?}, the model built from the config has {expected:?} \
         (the config does not match these weights)"
    )]
    Shape {
        /// The record file.
        path: PathBuf,
        /// The parameter's path in the model.
        param: String,
        /// The shape the config gives.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The safetensors file could not be read.
    #[error("reading `{path}`")]
    Safetensors {
        /// The safetensors file.
        path: PathBuf,
        /// Burn's error.
        #[source]
        source: SafetensorsStoreError,
    },
    /// The safetensors file's tensors do not fit the sub-model.
    #[error(
        "`{path}` does not fit sub-model {sub_model} of its manifest: errors {errors:?}, missing {missing:?}, \
         unexpected {unexpected:?}"
    )]
    Tensors {
        /// The safetensors file.
        path: PathBuf,
        /// The manifest's sub-model.
        sub_model: String,
        /// Tensors that could not be applied.
        errors: Vec<String>,
        /// Tensors the sub-model has and the file lacks.
        missing: Vec<String>,
        /// Tensors of the file the sub-model does not have.
        unexpected: Vec<String>,
    },
}

/// Loads the weights of the export folder `dir` (`model.safetensors` in PyTorch layout, or the
/// burn record) into its dense burn model: no parent run, checkpoint or data needed, only the
/// folder's `manifest` (read by the caller), the classifier `config` and the `space` it was
/// trained over.
///
/// The dense skeleton is rebuilt from the config and the manifest's sub-model; the weight file
/// must have the manifest's SHA-256 where it lists one, and every tensor of it must match the
/// skeleton by name and shape, with none left over.
///
/// # Errors
/// [`DenseExportError`]: another format, a config that does not fit the space, a sub-model
/// outside the space, a damaged file, or tensors missing, extra or mis-shaped (each named).
pub fn load_dense_export<B: Backend>(
    dir: &Path,
    weights: ExportWeights,
    manifest: &DenseExportManifest,
    config: &ClassifierConfig,
    space: &NestingSpace,
    device: &B::Device,
) -> Result<ExportedModel<B>, DenseExportError> {
    let manifest_path = dir.join("manifest.json");
    if manifest.format != EXPORT_FORMAT {
        return Err(DenseExportError::Format { path: manifest_path, found: manifest.format.clone() });
    }
    config.validate(space).map_err(|source| DenseExportError::Config { path: manifest_path.clone(), source })?;
    let sub = space.parse_sub_model(&manifest.sub_model).map_err(|source| DenseExportError::SubModel {
        path: manifest_path.clone(),
        sub_model: manifest.sub_model.clone(),
        source,
    })?;
    if config.kind() != manifest.model {
        return Err(DenseExportError::Model {
            path: manifest_path,
            model: manifest.model.clone(),
            config_model: config.kind().to_string(),
        });
    }
    let shape = manifest.input_shape;
    let model = match config.init::<B>(space, shape, manifest.n_classes, device) {
        AnyClassifier::Mlp(m) => ExportedModel::Mlp(skeleton(m, &sub, shape, device)),
        AnyClassifier::Cnn(m) => ExportedModel::Cnn(skeleton(m, &sub, shape, device)),
        AnyClassifier::ResNet(m) => ExportedModel::ResNet(skeleton(m, &sub, shape, device)),
        AnyClassifier::MobileNetV2(m) => ExportedModel::MobileNetV2(skeleton(m, &sub, shape, device)),
    };
    let file = dir.join(weights.file_name());
    if let Some(expected) = manifest.sha256.get(weights.file_name()) {
        let found = sha256_of_file(&file).map_err(|source| DenseExportError::Read { path: file.clone(), source })?;
        if &found != expected {
            return Err(DenseExportError::Digest {
                path: file,
                manifest: manifest_path,
                expected: expected.clone(),
                found,
            });
        }
    }
    match weights {
        ExportWeights::BurnRecord => Ok(match model {
            ExportedModel::Mlp(m) => ExportedModel::Mlp(load_record_file(m, dir, device)?),
            ExportedModel::Cnn(m) => ExportedModel::Cnn(load_record_file(m, dir, device)?),
            ExportedModel::ResNet(m) => ExportedModel::ResNet(load_record_file(m, dir, device)?),
            ExportedModel::MobileNetV2(m) => ExportedModel::MobileNetV2(load_record_file(m, dir, device)?),
        }),
        ExportWeights::Safetensors => load_safetensors(model, &file, &manifest.sub_model),
    }
}

/// Loads `file` (PyTorch layout) into `model`, refusing tensors missing, extra or mis-shaped.
fn load_safetensors<B: Backend>(
    model: ExportedModel<B>,
    file: &Path,
    sub_model: &str,
) -> Result<ExportedModel<B>, DenseExportError> {
    let mut store = SafetensorsStore::from_file(file).with_from_adapter(PyTorchToBurnAdapter);
    let result = match model {
        ExportedModel::Mlp(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::Mlp(m))),
        ExportedModel::Cnn(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::Cnn(m))),
        ExportedModel::ResNet(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::ResNet(m))),
        ExportedModel::MobileNetV2(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::MobileNetV2(m))),
    };
    let (applied, model) =
        result.map_err(|source| DenseExportError::Safetensors { path: file.to_path_buf(), source })?;
    // The adapter loads a PyTorch BatchNorm's `weight`/`bias` into burn's `gamma`/`beta` but
    // still lists the PyTorch names as unused: those are not left over.
    let renamed = |path: &str| {
        let (stem, last) = path.rsplit_once('.').unwrap_or(("", path));
        let burn = match last {
            "weight" => "gamma",
            "bias" => "beta",
            _ => return false,
        };
        applied.applied.iter().any(|a| a == &format!("{stem}.{burn}"))
    };
    let unexpected: Vec<String> = applied.unused.iter().filter(|u| !renamed(u)).cloned().collect();
    if applied.errors.is_empty() && applied.missing.is_empty() && unexpected.is_empty() {
        return Ok(model);
    }
    Err(DenseExportError::Tensors {
        path: file.to_path_buf(),
        sub_model: sub_model.to_string(),
        errors: applied.errors.iter().map(|e| format!("{e:?}")).collect(),
        missing: applied.missing.iter().map(|(p, _)| p.clone()).collect(),
        unexpected,
    })
}

/// A dense model of the right shapes (weights to be overwritten): extracted from a freshly
/// initialised sorted model, with placeholder BatchNorm statistics observed on a zero batch.
fn skeleton<B: Backend, M: SortedClassifier<B>>(
    model: M,
    sub: &SubModel,
    [c, h, w]: [usize; 3],
    device: &B::Device,
) -> M::Dense {
    let stats = model.has_batch_norm().then(|| {
        let zeros = Tensor::<B, 4>::zeros([2, c, h, w], device);
        let batch = ImageBatch { images: zeros, labels: Tensor::zeros([2], device) };
        calibrate_sub_model(&model, sub, &[batch])
    });
    model.extract(sub, stats.as_ref())
}

/// Loads `dir/model.mpk` into `model`, refusing parameters of other shapes than the manifest's
/// sub-model has (burn's own loading would accept them and fail later, in `forward`).
fn load_record_file<B: Backend, M: Module<B>>(model: M, dir: &Path, device: &B::Device) -> Result<M, DenseExportError> {
    let file = dir.join(ExportWeights::BurnRecord.file_name());
    let record: M::Record = Recorder::<B>::load(&DefaultRecorder::new(), dir.join("model"), device)
        .map_err(|source| DenseExportError::Record { path: file.clone(), source })?;
    sorted_nn::load_record_same_shapes(model, record).map_err(|m| DenseExportError::Shape {
        path: file,
        param: m.param,
        expected: m.expected,
        found: m.found,
    })
}

/// The hex SHA-256 of the file at `path`, read in chunks.
fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
