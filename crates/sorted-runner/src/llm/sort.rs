//! `sort`: importance-sorts a pretrained decoder and writes it out as GGUF, with its scores.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use sorted_zoo::sorting::{DEFAULT_SORT_BATCHES, ImportanceScore, sort_llama_on, write_sorted_llama_gguf};

use crate::sort::{SORT_SCORES_FILE, record_sort};

/// `sort`: loads the `[model.llama]` experiment's decoder, scores it on the experiment's first
/// training batches (`--by`, else the config's `sort_by`, else Taylor), sorts it and writes
/// `model.gguf` (F32, the full decoder with its tokenizer) and `sort_scores.json` into `--out`.
/// The sorted decoder computes the same function; its prefixes are the better sub-models.
///
/// # Errors
/// A config that is not a `[model.llama]` experiment with a GGUF model, unreadable data, an
/// unwritable output.
pub fn sort_cmd<B: AutodiffBackend>(
    args: &crate::cli::SortArgs,
    device: &B::Device,
    ctx: &crate::provenance::RunContext,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let doc = crate::config::ConfigDocument::read(&args.config)?;
    anyhow::ensure!(
        doc.model_kind() == Some("llama"),
        "`{}`: `sort` writes sorted decoders ([model.llama]); a BERT is sorted inside its run with \
         `[model.bert] sort_by`",
        args.config.display()
    );
    let exp = crate::lm::LmExperiment::from_document(doc)?;
    anyhow::ensure!(
        exp.llama().gguf.is_some(),
        "`{}`: [model.llama] has no `gguf` to sort (a random model has nothing to sort)",
        args.config.display()
    );
    let (model, data, _space) = crate::lm::run::load::<B>(&exp, device)?;
    let (config_score, n_batches) = exp.llama().sorting().unwrap_or((ImportanceScore::Taylor, DEFAULT_SORT_BATCHES));
    let score = match args.by.as_deref() {
        Some("activation") => ImportanceScore::Activation,
        Some("magnitude") => ImportanceScore::Magnitude,
        Some(_) => ImportanceScore::Taylor,
        None => config_score,
    };
    let cfg = &exp.config;
    let order = data.train.epoch_order(cfg.data.batch_size, cfg.seed);
    let sorted = sort_llama_on(model, score, n_batches, &data.train, &order, device)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating `{}`", args.out.display()))?;
    record_sort(&args.out, "query heads and SwiGLU units", score, &sorted, ctx.quiet)?;
    let gguf = Path::new(exp.llama().gguf.as_deref().expect("checked"));
    let out = args.out.join("model.gguf");
    write_sorted_llama_gguf(&sorted.model, gguf, score, &out)?;
    if !ctx.quiet {
        println!("wrote {}/{{model.gguf, {SORT_SCORES_FILE}}}", args.out.display());
    }
    Ok(())
}
