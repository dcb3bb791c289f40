//! A dense image sub-model exported to a folder (`model.safetensors` in PyTorch layout,
//! `model.mpk` the burn record, `manifest.json`), loaded back without the run it came from: the
//! dense skeleton is rebuilt from the classifier config, the space and the manifest's sub-model,
//! and every tensor of the weight file must fit it.
//!
//! [`extract_checked`] builds the dense sub-model and checks it against the sliced forward;
//! [`write_dense_export`] writes the folder. `sorted-runner export` calls both; its
//! `manifest.json` holds a [`DenseExportManifest`] together with the run's provenance and config.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::record::{DefaultRecorder, Recorder, RecorderError};
use burn::store::{
    BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore, SafetensorsStoreError,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sorted_data::ImageBatch;
use sorted_nn::{NestingSpace, NormPass, SpecError, SubModel, SubModelNormStats};

use crate::export_files::{WriteFailure, publish_folder, write_synced};
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

impl DenseExportManifest {
    /// The `config.json` of an image export: what a loader needs to rebuild the dense module
    /// (the family, its classifier options `model_config`, the active width per block, input
    /// shape and normalisation, classes), without the provenance and metrics of
    /// `manifest.json`. The keys follow Hugging Face's naming where one exists (`model_type`,
    /// `num_labels`); docs/export-pytorch.md builds the PyTorch modules from the same fields.
    pub fn config_json(&self, model_config: &impl Serialize) -> serde_json::Value {
        serde_json::json!({
            "model_type": format!("sortednet-{}", self.model),
            "format": EXPORT_FORMAT,
            "sub_model": self.sub_model,
            "widths": self.widths,
            "model": model_config,
            "input_shape": self.input_shape,
            "input_normalisation": self.input_normalisation,
            "num_labels": self.n_classes,
            "weights": "model.safetensors",
        })
    }
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

/// Why a dense sub-model could not be exported, or an export folder loaded. Each variant that
/// is about a file names it.
#[derive(Debug, thiserror::Error)]
pub enum DenseExportError {
    /// The dense model does not reproduce the sliced sub-model ([`extract_checked`]).
    #[error("the exported model differs from the sliced sub-model by {diff} (a bug)")]
    Mismatch {
        /// The largest |dense - sliced| logit difference.
        diff: f64,
    },
    /// A file or folder of the export could not be written, synced or renamed.
    #[error("writing `{path}`")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The burn record could not be written.
    #[error("writing `{path}`")]
    SaveRecord {
        /// The record file.
        path: PathBuf,
        /// The recorder's error.
        #[source]
        source: RecorderError,
    },
    /// The safetensors file could not be written.
    #[error("writing `{path}`")]
    SaveSafetensors {
        /// The weight file.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: SafetensorsStoreError,
    },
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

impl From<WriteFailure> for DenseExportError {
    fn from(f: WriteFailure) -> Self {
        Self::Write { path: f.path, source: f.source }
    }
}

/// The largest |dense - sliced| logit difference [`extract_checked`] accepts.
pub const EXPORT_TOLERANCE: f64 = 1e-3;

/// A dense sub-model and how closely it reproduces the sliced one.
#[derive(Debug)]
pub struct CheckedDense<D> {
    /// The dense model.
    pub dense: D,
    /// Largest |dense - sliced| logit difference on the check images (~1e-6 in f32).
    pub max_abs_diff_vs_sliced: f64,
}

/// Copies `sub` of `model` into its dense model (BatchNorm folded from `stats` when given) and
/// checks that it reproduces the sliced forward on `images` (normalised, `[batch, c, h, w]`):
/// the sliced pass uses `stats` when given, else batch statistics.
///
/// # Errors
/// [`DenseExportError::Mismatch`] when a logit differs by [`EXPORT_TOLERANCE`] or more (a bug).
pub fn extract_checked<B: Backend, M: SortedClassifier<B>>(
    model: &M,
    sub: &SubModel,
    stats: Option<&SubModelNormStats<B>>,
    images: Tensor<B, 4>,
) -> Result<CheckedDense<M::Dense>, DenseExportError> {
    let dense = model.extract(sub, stats);
    let mut pass = match stats {
        Some(s) => NormPass::Calibrated(s),
        None => NormPass::Batch,
    };
    let sliced = model.forward(images.clone(), sub, &mut pass);
    let diff = (dense.forward(images) - sliced).abs().max().into_scalar().elem::<f64>();
    // A NaN difference is refused too (the runner's `ensure!(diff < 1e-3)` did the same).
    if diff.is_nan() || diff >= EXPORT_TOLERANCE {
        return Err(DenseExportError::Mismatch { diff });
    }
    Ok(CheckedDense { dense, max_abs_diff_vs_sliced: diff })
}

/// The weight files [`write_dense_export`] writes, in order.
pub const DENSE_WEIGHT_FILES: [&str; 2] = ["model.mpk", "model.safetensors"];

/// Writes the export folder `out`: `model.mpk` (burn record, [`DefaultRecorder`]) and
/// `model.safetensors` (PyTorch layout, tagged `format: pt` for transformers and accelerate,
/// with the sub-model and family of `manifest`), their SHA-256 into `manifest.sha256`, then the
/// files `more` makes from the finished manifest (the caller's `manifest.json`, a
/// `config.json`), in its order. Everything is written under a temporary sibling and renamed
/// into place; an earlier folder at `out` is replaced, and moved aside, not deleted, until the
/// new one is in place. Returns the finished manifest.
///
/// # Errors
/// [`DenseExportError::Write`], [`DenseExportError::SaveRecord`] or
/// [`DenseExportError::SaveSafetensors`] naming the file; nothing is left behind.
pub fn write_dense_export<B: Backend, D: Module<B>>(
    out: &Path,
    dense: &D,
    mut manifest: DenseExportManifest,
    more: impl FnOnce(&DenseExportManifest) -> Vec<(String, Vec<u8>)>,
) -> Result<DenseExportManifest, DenseExportError> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|source| DenseExportError::Write { path: parent.to_path_buf(), source })?;
    }
    let tmp = sorted_provenance::temp_sibling(out);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|source| DenseExportError::Write { path: tmp.clone(), source })?;
    let result = fill_export_folder(&tmp, dense, &mut manifest, more).and_then(|()| Ok(publish_folder(&tmp, out)?));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| manifest)
}

fn fill_export_folder<B: Backend, D: Module<B>>(
    tmp: &Path,
    dense: &D,
    manifest: &mut DenseExportManifest,
    more: impl FnOnce(&DenseExportManifest) -> Vec<(String, Vec<u8>)>,
) -> Result<(), DenseExportError> {
    dense
        .clone()
        .save_file(tmp.join("model"), &DefaultRecorder::new())
        .map_err(|source| DenseExportError::SaveRecord { path: tmp.join("model.mpk"), source })?;
    let weights = tmp.join("model.safetensors");
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter)
        // transformers and accelerate load only files tagged `pt` (burn's default: `safetensors`).
        .metadata("format", "pt")
        .metadata("sub_model", manifest.sub_model.clone())
        .metadata("model", manifest.model.clone())
        .overwrite(true);
    dense.save_into(&mut store).map_err(|source| DenseExportError::SaveSafetensors { path: weights, source })?;
    for file in DENSE_WEIGHT_FILES {
        let path = tmp.join(file);
        let digest = sha256_of_file(&path).map_err(|source| DenseExportError::Read { path, source })?;
        manifest.sha256.insert(file.to_string(), digest);
    }
    for (name, bytes) in more(manifest) {
        write_synced(&tmp.join(name), &bytes)?;
    }
    Ok(())
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
