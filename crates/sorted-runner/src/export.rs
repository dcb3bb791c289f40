//! `export`: one sub-model as a standalone dense model.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::*;
use burn::record::{DefaultRecorder, Recorder};
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use serde::{Deserialize, Serialize};
use sorted_nn::{NormPass, SubModel};
use sorted_sched::Checkpoint;
use sorted_zoo::{
    AnyClassifier, DenseClassifier, DenseCnn, DenseMlp, DenseMobileNetV2, DenseResNet, SortedClassifier,
    calibrate_sub_model, test_batches,
};

use crate::cli::ExportArgs;
use crate::commands::{ModelVisitor, load_run, saved_or_calibrated_stats, visit_trained};
use crate::config::{Experiment, ExperimentConfig};
use crate::data::RunData;
use crate::eval::SubModelResult;
use crate::provenance::RunContext;
use crate::provenance::write_file;
use crate::report::RunReport;
use sorted_data::ImageBatch;

/// A sub-model's latency as `sorted-runner profile` measured it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfiledLatency {
    /// The device/backend.
    pub device: String,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Median latency, ms.
    pub median_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// Peak heap bytes of one forward pass, where measured.
    pub peak_bytes: Option<u64>,
    /// The profile's commit.
    pub commit: String,
}

/// The latencies of `sub` in every profile folder of `run` (none when never profiled).
fn profiled_latency(run: &Path, sub: &str) -> Vec<ProfiledLatency> {
    let Ok(entries) = std::fs::read_dir(run.join("profile")) else { return Vec::new() };
    let mut out: Vec<ProfiledLatency> = entries
        .filter_map(|e| crate::profile::ProfileReport::read(&e.ok()?.path()).ok())
        .filter_map(|p| {
            let row = p.profile.rows.iter().find(|r| r.sub_model == sub)?;
            Some(ProfiledLatency {
                device: p.meta.device.clone(),
                batch_size: p.meta.batch_size,
                median_ms: row.latency.median_ms,
                p90_ms: row.latency.p90_ms,
                peak_bytes: row.peak_bytes,
                commit: p.meta.commit.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.device, a.batch_size).cmp(&(&b.device, b.batch_size)));
    out
}

/// The format tag of `manifest.json` files this version writes and reads.
pub const EXPORT_FORMAT: &str = "sortednet-rs dense sub-model v1";

/// `manifest.json` of an exported sub-model.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportManifest {
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
    /// Trainable parameters.
    pub params: u64,
    /// FLOPs per sample.
    pub flops: u64,
    /// The run it came from.
    pub parent_run: String,
    /// SHA-256 of the parent checkpoint's `model.mpk`.
    pub parent_checkpoint_sha256: String,
    /// Training steps of the parent checkpoint.
    pub parent_step: u64,
    /// The parent experiment's config.
    pub config: ExperimentConfig,
    /// The sub-model's row of the parent run's `results.json`, if evaluated.
    pub metrics: Option<SubModelResult>,
    /// Its latencies from the parent run's `profile` folders (one per device and batch size).
    #[serde(default)]
    pub latency: Vec<ProfiledLatency>,
    /// Largest |dense - sliced| logit difference on one test batch (should be ~1e-6).
    pub max_abs_diff_vs_sliced: f64,
    /// The files written and what they hold.
    pub files: Vec<(String, String)>,
    /// The SHA-256 of each weight file: `load_export` refuses a damaged or swapped file (absent
    /// in exports written before it existed, which load unverified).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sha256: std::collections::BTreeMap<String, String>,
}

/// Exports the sub-model named in `args`; returns the output folder.
///
/// # Errors
/// When the run, the sub-model or an output file is invalid.
pub fn export_cmd<E: Backend>(args: &ExportArgs, device: &E::Device, ctx: &RunContext) -> anyhow::Result<PathBuf> {
    use crate::llm::{LmSource, export_lm};
    let run = match (&args.run, &args.gguf) {
        (_, Some(gguf)) => {
            return export_lm::<E>(LmSource::Gguf(gguf), &args.sub_model, args.out.as_deref(), device, ctx);
        }
        (Some(run), None) => run,
        (None, None) => anyhow::bail!("export needs --run or --gguf"),
    };
    let _folder = crate::run_folder::RunFolder::open(run)?;
    if crate::text::model_kind(crate::run_folder::open_checkpoint(run)?.config_toml()).as_deref() == Some("llama") {
        return export_lm::<E>(LmSource::Run(run), &args.sub_model, args.out.as_deref(), device, ctx);
    }
    if crate::text::model_kind(crate::run_folder::open_checkpoint(run)?.config_toml()).as_deref() == Some("bert") {
        return crate::text::export_text::<E>(run, &args.sub_model, args.out.as_deref(), device, ctx);
    }
    let (exp, checkpoint) = load_run(run)?;
    let sub =
        exp.space.parse_sub_model(&args.sub_model).with_context(|| format!("--sub-model `{}`", args.sub_model))?;
    let out = args.out.clone().unwrap_or_else(|| run.join("export").join(sub.to_string()));
    let data = crate::data::load(&exp)?;
    struct Export<'a, E: Backend> {
        exp: &'a Experiment,
        run: &'a Path,
        data: &'a RunData,
        sub: &'a SubModel,
        out: &'a Path,
        device: &'a E::Device,
    }
    impl<E: Backend> ModelVisitor<E> for Export<'_, E> {
        type Output = PathBuf;
        fn visit<M: SortedClassifier<E>>(self, model: M) -> anyhow::Result<PathBuf> {
            let kind = self.exp.config.model.kind();
            write_export(self.exp, self.run, self.data, &model, self.sub, kind, self.out, self.device)
        }
    }
    let visitor = Export { exp: &exp, run, data: &data, sub: &sub, out: &out, device };
    let out = visit_trained::<E, _>(&exp, &data, &checkpoint, device, visitor)?;
    if !ctx.quiet {
        println!("exported sub-model {sub} to {}/{{model.mpk, model.safetensors, manifest.json}}", out.display());
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn write_export<E: Backend, M: SortedClassifier<E>>(
    exp: &Experiment,
    run: &Path,
    data: &RunData,
    model: &M,
    sub: &SubModel,
    kind: &'static str,
    out: &Path,
    device: &E::Device,
) -> anyhow::Result<PathBuf> {
    let stats = if model.has_batch_norm() {
        saved_or_calibrated_stats(run, exp, data, model, std::slice::from_ref(sub), device)?.pop()
    } else {
        None
    };
    let dense = model.extract(sub, stats.as_ref());

    // The export must reproduce the sliced forward (design invariant 3).
    let batch = test_batches::<E>(data, 256, device).into_iter().next().context("the test set is empty")?;
    let [_, c, h, w] = batch.images.dims();
    let mut pass = match &stats {
        Some(s) => NormPass::Calibrated(s),
        None => NormPass::Batch,
    };
    let sliced = model.forward(batch.images.clone(), sub, &mut pass);
    let diff = (dense.forward(batch.images) - sliced).abs().max().into_scalar().elem::<f64>();
    anyhow::ensure!(diff < 1e-3, "the exported model differs from the sliced sub-model by {diff} (a bug)");

    let checkpoint = Checkpoint::latest(run)?;
    let parent_digest = checkpoint.model_digest()?;
    let state = checkpoint.state().clone();
    let metrics =
        RunReport::read(run).ok().and_then(|r| r.results.into_iter().find(|row| row.sub_model == sub.to_string()));
    let cost = model.cost(sub);
    let mut manifest = ExportManifest {
        format: EXPORT_FORMAT.into(),
        model: kind.into(),
        input_shape: [c, h, w],
        input_normalisation: data.normalisation(),
        n_classes: data.n_classes(),
        sub_model: sub.to_string(),
        widths: sub.widths().to_vec(),
        params: cost.params,
        flops: cost.flops,
        parent_run: run.display().to_string(),
        parent_checkpoint_sha256: parent_digest.sha256,
        parent_step: state.step,
        config: exp.config.clone(),
        metrics,
        latency: profiled_latency(run, &sub.to_string()),
        max_abs_diff_vs_sliced: diff,
        files: [
            ("model.mpk", "burn record (DefaultRecorder, full precision) of the dense model"),
            (
                "model.safetensors",
                "the same weights in PyTorch layout (Linear weight [out, in], BatchNorm weight/bias/running_*)",
            ),
            ("config.json", "the architecture alone, for loaders that look for one (see export_config_json)"),
            ("manifest.json", "this file"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
        sha256: Default::default(),
    };

    // Write everything into a temporary sibling folder, then rename it into place.
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating `{}`", parent.display()))?;
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "export".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating `{}`", tmp.display()))?;
    dense
        .clone()
        .save_file(tmp.join("model"), &DefaultRecorder::new())
        .with_context(|| format!("writing `{}`", tmp.join("model.mpk").display()))?;
    let mut store = SafetensorsStore::from_file(tmp.join("model.safetensors"))
        .with_to_adapter(BurnToPyTorchAdapter)
        // transformers and accelerate load only files tagged `pt` (burn's default: `safetensors`).
        .metadata("format", "pt")
        .metadata("sub_model", sub.to_string())
        .metadata("model", kind)
        .overwrite(true);
    dense
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("writing `{}`: {e:?}", tmp.join("model.safetensors").display()))?;
    for file in ["model.mpk", "model.safetensors"] {
        let path = tmp.join(file);
        let digest = sorted_sched::digest_file(&path).with_context(|| format!("reading `{}`", path.display()))?;
        manifest.sha256.insert(file.to_string(), digest.sha256);
    }
    let config = export_config_json(&manifest);
    write_file(&tmp.join("config.json"), &serde_json::to_vec_pretty(&config).expect("config serialises"))?;
    write_file(&tmp.join("manifest.json"), &serde_json::to_vec_pretty(&manifest).expect("manifest serialises"))?;
    // An earlier export of the same name is moved aside, not deleted, until the new one is in
    // place: a kill in between leaves one of them whole.
    let aside = parent.join(format!(".{name}.old-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &aside).with_context(|| format!("moving aside `{}`", out.display()))?;
    }
    std::fs::rename(&tmp, out).with_context(|| format!("moving the export into `{}`", out.display()))?;
    let _ = std::fs::remove_dir_all(&aside);
    Ok(out.to_path_buf())
}

/// The `config.json` of an image export: what a loader needs to rebuild the dense module (the
/// family, its `[model.<kind>]` options, the active width per block, input shape and
/// normalisation, classes), without the provenance and metrics of `manifest.json`. The keys
/// follow Hugging Face's naming where one exists (`model_type`, `num_labels`);
/// docs/export-pytorch.md builds the PyTorch modules from the same fields.
pub fn export_config_json(manifest: &ExportManifest) -> serde_json::Value {
    serde_json::json!({
        "model_type": format!("sortednet-{}", manifest.model),
        "format": EXPORT_FORMAT,
        "sub_model": manifest.sub_model,
        "widths": manifest.widths,
        "model": manifest.config.model,
        "input_shape": manifest.input_shape,
        "input_normalisation": manifest.input_normalisation,
        "num_labels": manifest.n_classes,
        "weights": "model.safetensors",
    })
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

/// Loads an export folder's weights (`model.safetensors` in PyTorch layout, or the burn record)
/// into its dense burn model: no parent run, checkpoint or data needed, only the folder.
///
/// The dense skeleton is rebuilt from the manifest's config and sub-model; every tensor of the
/// file must match it by name and shape, and no tensor may be left over.
///
/// # Errors
/// A missing or unreadable manifest, another format, a sub-model outside the config's space,
/// or tensors missing, extra or mis-shaped (each named).
pub fn load_export<B: Backend>(
    dir: &Path,
    weights: ExportWeights,
    device: &B::Device,
) -> anyhow::Result<(ExportedModel<B>, ExportManifest)> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let manifest: ExportManifest =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing `{}`", path.display()))?;
    anyhow::ensure!(
        manifest.format == EXPORT_FORMAT,
        "`{}`: format `{}`, this version reads `{EXPORT_FORMAT}`",
        path.display(),
        manifest.format
    );
    let exp = Experiment::from_config(manifest.config.clone(), &path)?;
    let sub = exp
        .space
        .parse_sub_model(&manifest.sub_model)
        .with_context(|| format!("`{}`: sub_model `{}`", path.display(), manifest.sub_model))?;
    let shape = manifest.input_shape;
    anyhow::ensure!(
        exp.config.model.kind() == manifest.model,
        "`{}`: model `{}` does not match its config's model `{}`",
        path.display(),
        manifest.model,
        exp.config.model.kind()
    );
    let model = match exp.config.model.init::<B>(&exp.space, shape, manifest.n_classes, device) {
        AnyClassifier::Mlp(m) => ExportedModel::Mlp(skeleton(m, &sub, shape, device)),
        AnyClassifier::Cnn(m) => ExportedModel::Cnn(skeleton(m, &sub, shape, device)),
        AnyClassifier::ResNet(m) => ExportedModel::ResNet(skeleton(m, &sub, shape, device)),
        AnyClassifier::MobileNetV2(m) => ExportedModel::MobileNetV2(skeleton(m, &sub, shape, device)),
    };
    let weight_file = if weights == ExportWeights::BurnRecord { "model.mpk" } else { "model.safetensors" };
    if let Some(want) = manifest.sha256.get(weight_file) {
        let path = dir.join(weight_file);
        let got = sorted_sched::digest_file(&path).with_context(|| format!("reading `{}`", path.display()))?;
        anyhow::ensure!(
            &got.sha256 == want,
            "`{}` is damaged or not this export's weights: SHA-256 {}, `{}` says {want}",
            path.display(),
            got.sha256,
            dir.join("manifest.json").display()
        );
    }
    if weights == ExportWeights::BurnRecord {
        let model = match model {
            ExportedModel::Mlp(m) => ExportedModel::Mlp(load_record_file(m, dir, device)?),
            ExportedModel::Cnn(m) => ExportedModel::Cnn(load_record_file(m, dir, device)?),
            ExportedModel::ResNet(m) => ExportedModel::ResNet(load_record_file(m, dir, device)?),
            ExportedModel::MobileNetV2(m) => ExportedModel::MobileNetV2(load_record_file(m, dir, device)?),
        };
        return Ok((model, manifest));
    }
    let file = dir.join("model.safetensors");
    let mut store = SafetensorsStore::from_file(&file).with_from_adapter(PyTorchToBurnAdapter);
    let result = match model {
        ExportedModel::Mlp(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::Mlp(m))),
        ExportedModel::Cnn(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::Cnn(m))),
        ExportedModel::ResNet(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::ResNet(m))),
        ExportedModel::MobileNetV2(mut m) => m.load_from(&mut store).map(|r| (r, ExportedModel::MobileNetV2(m))),
    };
    let (applied, model) = result.map_err(|e| anyhow::anyhow!("reading `{}`: {e}", file.display()))?;
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
    let unused: Vec<&String> = applied.unused.iter().filter(|u| !renamed(u)).collect();
    anyhow::ensure!(
        applied.errors.is_empty() && applied.missing.is_empty() && unused.is_empty(),
        "`{}` does not fit sub-model {} of its manifest: errors {:?}, missing {:?}, unexpected {:?}",
        file.display(),
        manifest.sub_model,
        applied.errors.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
        applied.missing.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        unused
    );
    Ok((model, manifest))
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
fn load_record_file<B: Backend, M: Module<B>>(model: M, dir: &Path, device: &B::Device) -> anyhow::Result<M> {
    let file = dir.join("model.mpk");
    let record: M::Record = Recorder::<B>::load(&DefaultRecorder::new(), dir.join("model"), device)
        .map_err(|e| anyhow::anyhow!("reading `{}`: {e}", file.display()))?;
    Ok(sorted_sched::load_record_checked(model, record, &file)?)
}
