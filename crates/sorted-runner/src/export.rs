//! `export`: one sub-model as a standalone dense model.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::*;
use burn::record::DefaultRecorder;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sorted_nn::{NormPass, SubModel, SubModelNormStats};
use sorted_sched::{checkpoint_dir, load_model, read_state};
use sorted_zoo::{DenseClassifier, SortedClassifier};

use crate::cli::ExportArgs;
use crate::commands::{RunContext, cnn, load_run, mlp, read_norm_stats};
use crate::config::{Experiment, ExperimentConfig, ModelConfig};
use crate::eval::{SubModelResult, calibrate, calibration_batches, test_batches};
use crate::report::{RunReport, write_file};

/// `manifest.json` of an exported sub-model.
#[derive(Debug, Serialize)]
pub struct ExportManifest {
    /// Format tag.
    pub format: &'static str,
    /// The model family (`mlp`, `cnn`).
    pub model: &'static str,
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
    /// Largest |dense - sliced| logit difference on one test batch (should be ~1e-6).
    pub max_abs_diff_vs_sliced: f64,
    /// The files written and what they hold.
    pub files: Vec<(&'static str, &'static str)>,
}

/// Exports the sub-model named in `args`; returns the output folder.
///
/// # Errors
/// When the run, the sub-model or an output file is invalid.
pub fn export_cmd<E: Backend>(args: &ExportArgs, device: &E::Device, ctx: &RunContext) -> anyhow::Result<PathBuf> {
    let exp = load_run(&args.run)?;
    let sub =
        exp.space.parse_sub_model(&args.sub_model).with_context(|| format!("--sub-model `{}`", args.sub_model))?;
    let out = args.out.clone().unwrap_or_else(|| args.run.join("export").join(sub.to_string()));
    let data = crate::data::load(&exp.config.data)?;
    let out = match &exp.config.model {
        ModelConfig::Mlp(_) => {
            let model = load_model(&args.run, mlp::<E>(&exp, &data, device), device)?;
            write_export(&exp, &args.run, &data, &model, &sub, "mlp", &out, device)?
        }
        ModelConfig::Cnn(_) => {
            let model = load_model(&args.run, cnn::<E>(&exp, &data, device), device)?;
            write_export(&exp, &args.run, &data, &model, &sub, "cnn", &out, device)?
        }
    };
    if !ctx.quiet {
        println!("exported sub-model {sub} to {}/{{model.mpk, model.safetensors, manifest.json}}", out.display());
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn write_export<E: Backend, M: SortedClassifier<E>>(
    exp: &Experiment,
    run: &Path,
    data: &sorted_data::Mnist,
    model: &M,
    sub: &SubModel,
    kind: &'static str,
    out: &Path,
    device: &E::Device,
) -> anyhow::Result<PathBuf> {
    let stats: Option<SubModelNormStats<E>> = if model.has_batch_norm() {
        let saved = read_norm_stats(run)?.and_then(|mut all| all.remove(&sub.to_string()));
        Some(match saved {
            Some(layers) => SubModelNormStats::from_vecs(&layers, device),
            None => {
                let batches = calibration_batches::<E>(
                    data,
                    &exp.config.eval,
                    exp.config.data.batch_size,
                    exp.config.seed,
                    device,
                );
                calibrate(model, sub, &batches)
            }
        })
    } else {
        None
    };
    let dense = model.extract(sub, stats.as_ref());

    // The export must reproduce the sliced forward (design invariant 3).
    let batch = test_batches::<E>(data, 256, device).into_iter().next().context("the test set is empty")?;
    let mut pass = match &stats {
        Some(s) => NormPass::Calibrated(s),
        None => NormPass::Batch,
    };
    let sliced = model.forward(batch.images.clone(), sub, &mut pass);
    let diff = (dense.forward(batch.images) - sliced).abs().max().into_scalar().elem::<f64>();
    anyhow::ensure!(diff < 1e-3, "the exported model differs from the sliced sub-model by {diff} (a bug)");

    let parent_model = checkpoint_dir(run).join("model.mpk");
    let parent_bytes = std::fs::read(&parent_model).with_context(|| format!("reading `{}`", parent_model.display()))?;
    let state = read_state(run)?;
    let metrics =
        RunReport::read(run).ok().and_then(|r| r.results.into_iter().find(|row| row.sub_model == sub.to_string()));
    let cost = model.cost(sub);
    let manifest = ExportManifest {
        format: "sortednet-rs dense sub-model v1",
        model: kind,
        sub_model: sub.to_string(),
        widths: sub.widths().to_vec(),
        params: cost.params,
        flops: cost.flops,
        parent_run: run.display().to_string(),
        parent_checkpoint_sha256: hex(&Sha256::digest(&parent_bytes)),
        parent_step: state.step,
        config: exp.config.clone(),
        metrics,
        max_abs_diff_vs_sliced: diff,
        files: vec![
            ("model.mpk", "burn record (DefaultRecorder, full precision) of the dense model"),
            (
                "model.safetensors",
                "the same weights in PyTorch layout (Linear weight [out, in], BatchNorm weight/bias/running_*)",
            ),
            ("manifest.json", "this file"),
        ],
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
        .metadata("sub_model", sub.to_string())
        .metadata("model", kind)
        .overwrite(true);
    dense
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("writing `{}`: {e:?}", tmp.join("model.safetensors").display()))?;
    write_file(&tmp.join("manifest.json"), &serde_json::to_vec_pretty(&manifest).expect("manifest serialises"))?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("replacing `{}`", out.display()))?;
    }
    std::fs::rename(&tmp, out).with_context(|| format!("moving the export into `{}`", out.display()))?;
    Ok(out.to_path_buf())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
