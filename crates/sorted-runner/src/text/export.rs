//! `export` of a BERT sub-model (`L..-H..-F..`) of a text run: a Hugging Face folder (`hf/`,
//! [`sorted_zoo::export_bert_hf`]) and `expected_logits.json`, the sub-model's logits on the
//! run's eval sentences, which `benches/peer/check_bert_export.py` compares with transformers'.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::prelude::*;
use serde_json::json;
use sorted_data::TextBatcher;
use sorted_zoo::{BertExportOptions, export_bert_hf};

use super::config::TextExperiment;
use crate::provenance::{RunContext, write_file};

/// Sentences per forward pass when computing the expected logits.
const BATCH: usize = 64;

/// Exports `sub_model` of the text run `run` into `out` (default: `<run>/export/<sub-model>`):
/// `hf/` and `expected_logits.json` (token ids, labels and the sub-model's logits and
/// accuracy on the run's eval split).
///
/// # Errors
/// An unreadable run, checkpoint or vocabulary, a sub-model outside the run's space or one
/// that cannot be laid out as Hugging Face heads, an unwritable output.
pub(crate) fn export_text<E: Backend>(
    run: &Path,
    exp: &TextExperiment,
    checkpoint: &sorted_sched::Checkpoint,
    sub_model: &str,
    out: Option<&Path>,
    device: &E::Device,
    ctx: &RunContext,
) -> anyhow::Result<PathBuf> {
    let sub = exp.space.parse_sub_model(sub_model).with_context(|| format!("--sub-model `{sub_model}`"))?;
    let vocab_path = exp.vocab_path();
    let data =
        exp.config.data.load(&vocab_path).with_context(|| format!("loading [data] of `{}`", exp.source.display()))?;
    let model = checkpoint.load_model(super::run::bert_for(exp, &data)?.init::<E>(device), device)?;
    let out = out.map_or_else(|| run.join("export").join(sub.to_string()), Path::to_path_buf);
    std::fs::create_dir_all(&out).with_context(|| format!("creating `{}`", out.display()))?;
    let vocab = std::fs::read(&vocab_path).with_context(|| format!("reading `{}`", vocab_path.display()))?;
    let options = BertExportOptions {
        name: format!("{} {sub}", exp.config.name),
        vocab: Some(&vocab),
        model_max_length: Some(exp.config.data.max_len),
        ..Default::default()
    };
    let manifest = export_bert_hf(&model, &sub, &options, out.join("hf"))
        .with_context(|| format!("exporting {sub} to `{}`", out.join("hf").display()))?;

    // The sub-model's logits on the eval sentences, batched as `eval` batches them.
    let set = &data.eval;
    let batcher = TextBatcher::new(exp.config.data.max_len);
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut logits = Vec::with_capacity(set.len() * model.num_classes);
    let mut correct = 0usize;
    for chunk in indices.chunks(BATCH) {
        let b = batcher.batch::<E>(set, chunk, device);
        let l = model.forward(b.input_ids, None, b.attention_mask, &sub);
        let predicted = l.clone().argmax(1).flatten::<1>(0, 1);
        correct += predicted.equal(b.labels).int().sum().into_scalar().elem::<i64>() as usize;
        logits.extend(l.into_data().convert::<f32>().to_vec::<f32>().expect("f32 logits"));
    }
    let accuracy = correct as f64 / set.len().max(1) as f64;
    let expected = json!({
        "sub_model": sub.to_string(),
        "split": data.eval_split_name,
        "pooling": manifest.pooling,
        "input_ids": set.sequences,
        "labels": set.labels,
        "logits": logits,
        "accuracy": accuracy,
    });
    write_file(&out.join("expected_logits.json"), &serde_json::to_vec(&expected)?)?;
    if !ctx.quiet {
        println!(
            "exported {sub} ({}, {} of {} heads active) to {}/{{hf/, expected_logits.json}}; {} accuracy {accuracy:.4}",
            manifest.architecture,
            manifest.active_heads,
            manifest.hf_heads,
            out.display(),
            data.eval_split_name
        );
    }
    Ok(out)
}
