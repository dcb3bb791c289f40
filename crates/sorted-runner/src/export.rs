//! `export`: one sub-model as a standalone dense model.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use sorted_nn::SubModel;
use sorted_sched::Checkpoint;
use sorted_zoo::{
    DenseExportManifest, EXPORT_FORMAT, ExportWeights, ExportedModel, SortedClassifier, extract_checked,
    load_dense_export, test_batches, write_dense_export,
};

use crate::cli::ExportArgs;
use crate::config::{ConfigDocument, Experiment, ExperimentConfig};
use crate::data::RunData;
use crate::eval::SubModelResult;
use crate::provenance::RunContext;
use crate::report::RunReport;
use crate::trained_model::{ModelVisitor, saved_or_calibrated_stats, visit_trained};

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

/// `manifest.json` of an exported image sub-model: the zoo's [`DenseExportManifest`] (what
/// loading the model needs) and the run's provenance, config, metrics and latencies.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportManifest {
    /// Format, family, input, classes, sub-model and weight digests.
    #[serde(flatten)]
    pub dense: DenseExportManifest,
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
    let checkpoint = crate::run_folder::open_checkpoint(run)?;
    let doc = ConfigDocument::parse(checkpoint.config_toml(), &checkpoint.config_path())?;
    match doc.model_kind() {
        Some("llama") => {
            let exp = crate::lm::LmExperiment::from_document(doc)?;
            let source = LmSource::Run(run, &exp, &checkpoint);
            return export_lm::<E>(source, &args.sub_model, args.out.as_deref(), device, ctx);
        }
        Some("bert") => {
            let exp = crate::text::TextExperiment::from_document(doc)?;
            return crate::text::export_text::<E>(
                run,
                &exp,
                &checkpoint,
                &args.sub_model,
                args.out.as_deref(),
                device,
                ctx,
            );
        }
        _ => {}
    }
    let exp = Experiment::from_document(doc)?;
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
    // The export must reproduce the sliced forward (design invariant 3).
    let batch = test_batches::<E>(data, 256, device).into_iter().next().context("the test set is empty")?;
    let [_, c, h, w] = batch.images.dims();
    let checked = extract_checked(model, sub, stats.as_ref(), batch.images)?;

    let checkpoint = Checkpoint::latest(run)?;
    let parent_digest = checkpoint.model_digest()?;
    let state = checkpoint.state().clone();
    let metrics =
        RunReport::read(run).ok().and_then(|r| r.results.into_iter().find(|row| row.sub_model == sub.to_string()));
    let cost = model.cost(sub);
    let dense_manifest = DenseExportManifest {
        format: EXPORT_FORMAT.into(),
        model: kind.into(),
        input_shape: [c, h, w],
        input_normalisation: data.normalisation(),
        n_classes: data.n_classes(),
        sub_model: sub.to_string(),
        widths: sub.widths().to_vec(),
        sha256: Default::default(),
    };
    let mut manifest = ExportManifest {
        dense: dense_manifest.clone(),
        params: cost.params,
        flops: cost.flops,
        parent_run: run.display().to_string(),
        parent_checkpoint_sha256: parent_digest.sha256,
        parent_step: state.step,
        config: exp.config.clone(),
        metrics,
        latency: profiled_latency(run, &sub.to_string()),
        max_abs_diff_vs_sliced: checked.max_abs_diff_vs_sliced,
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
    };
    write_dense_export(out, &checked.dense, dense_manifest, |dense| {
        manifest.dense = dense.clone();
        let config = export_config_json(&manifest);
        vec![
            ("config.json".into(), serde_json::to_vec_pretty(&config).expect("config serialises")),
            ("manifest.json".into(), serde_json::to_vec_pretty(&manifest).expect("manifest serialises")),
        ]
    })?;
    Ok(out.to_path_buf())
}

/// The `config.json` of an image export: the zoo's [`DenseExportManifest::config_json`] with
/// the run's model options.
pub fn export_config_json(manifest: &ExportManifest) -> serde_json::Value {
    manifest.dense.config_json(&manifest.config.model)
}

/// Loads an export folder's weights (`model.safetensors` in PyTorch layout, or the burn record)
/// into its dense burn model: no parent run, checkpoint or data needed, only the folder. Reads
/// `manifest.json` and hands its model part, config and space to [`load_dense_export`].
///
/// # Errors
/// A missing or unreadable manifest, or as [`load_dense_export`].
pub fn load_export<B: Backend>(
    dir: &Path,
    weights: ExportWeights,
    device: &B::Device,
) -> anyhow::Result<(ExportedModel<B>, ExportManifest)> {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
    let manifest: ExportManifest =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing `{}`", path.display()))?;
    let exp = Experiment::from_config(manifest.config.clone(), &path)?;
    let model = load_dense_export(dir, weights, &manifest.dense, &exp.config.model, &exp.space, device)?;
    Ok((model, manifest))
}
