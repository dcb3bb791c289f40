//! `export` of a decoder sub-model (`L..-H..-F..`): a Hugging Face `LlamaForCausalLM` folder
//! (`hf/`) and GGUF files in F16 and Q8_0, from a language-model run's newest checkpoint or
//! from a GGUF file as it is.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::*;
use sorted_zoo::llama::{GgmlType, LlamaExportOptions, export_llama_gguf, export_llama_hf};

use super::generate::decode_target;
use super::load_lm_with;
use crate::provenance::RunContext;

/// Where the decoder comes from.
pub(crate) enum LmSource<'a> {
    /// A `[model.llama]` run folder (its config names the GGUF; its checkpoint, opened and
    /// verified once by the caller, the weights) and its experiment.
    Run(&'a Path, &'a crate::lm::LmExperiment, &'a sorted_sched::Checkpoint),
    /// A GGUF file, not fine-tuned.
    Gguf(&'a Path),
}

/// Exports `sub_model` of the decoder into `out` (default: `<run>/export/<sub-model>`, or
/// `export/<sub-model>` beside a bare GGUF): `hf/`, `model-f16.gguf`, `model-q8_0.gguf`.
///
/// # Errors
/// An unreadable run or GGUF file, a sub-model the decoder cannot run, an unwritable output.
pub(crate) fn export_lm<E: Backend>(
    source: LmSource<'_>,
    sub_model: &str,
    out: Option<&Path>,
    device: &E::Device,
    ctx: &RunContext,
) -> anyhow::Result<PathBuf> {
    let (gguf, checkpoint, default_parent) = match source {
        LmSource::Run(run, exp, checkpoint) => {
            let gguf = exp.llama().gguf.clone().ok_or_else(|| {
                anyhow::anyhow!("`{}`: a [model.llama.random] run has no tokenizer to export", run.display())
            })?;
            (PathBuf::from(gguf), Some(checkpoint), run.join("export"))
        }
        LmSource::Gguf(path) => (path.to_path_buf(), None, PathBuf::from("export")),
    };
    let mut lm = load_lm_with::<E>(&gguf, None, device)?;
    if let Some(checkpoint) = checkpoint {
        lm.model = checkpoint.load_model(lm.model, device)?;
    }
    let sub = decode_target(sub_model, &lm.bounds)?;
    let out = out.map_or_else(|| default_parent.join(sub.to_string()), Path::to_path_buf);
    std::fs::create_dir_all(&out).with_context(|| format!("creating `{}`", out.display()))?;
    let name = gguf.file_stem().map_or_else(|| "llama".into(), |s| s.to_string_lossy().into_owned());
    let options = LlamaExportOptions { tokenizer: Some(&lm.bpe), name: format!("{name} {sub}"), ..Default::default() };
    export_llama_hf(&lm.model, &sub, &options, out.join("hf"))
        .with_context(|| format!("exporting {sub} to `{}`", out.display()))?;
    for (ty, file) in [(GgmlType::F16, "model-f16.gguf"), (GgmlType::Q8_0, "model-q8_0.gguf")] {
        export_llama_gguf(&lm.model, &sub, &options, ty, out.join(file))
            .with_context(|| format!("writing `{}`", out.join(file).display()))?;
    }
    if !ctx.quiet {
        println!("exported {sub} to {}/{{hf/, model-f16.gguf, model-q8_0.gguf}}", out.display());
    }
    Ok(out)
}
