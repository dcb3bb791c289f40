//! Decoder LMs from GGUF files, one file per command: `generate` (plain greedy vs lossless
//! self-speculative decoding, with a benchmark mode), `perplexity` (per exit, on held-out
//! Shakespeare) and `soft` (sorted fine-tuning). This file loads the decoder they share.

use std::path::Path;

use anyhow::Context;
use burn::prelude::*;
use sorted_data::ByteLevelBpe;
use sorted_nn::TransformerSubModel;
use sorted_zoo::llama::{LlamaSubModels, SortedLlama};

mod export;
mod generate;
mod perplexity;
mod soft;

pub(crate) use export::{LmSource, export_lm};
pub use generate::{BENCH_PROMPTS, DecodeRow, generate_cmd};
pub use perplexity::perplexity_cmd;
pub use soft::{soft_cmd, soft_experiment};

/// A loaded decoder: model, tokenizer and the full sub-model.
struct Lm<B: Backend> {
    model: SortedLlama<B>,
    bpe: ByteLevelBpe,
    full: TransformerSubModel,
    n_layers: usize,
}

/// The GGUF's decoder and tokenizer, with the parameters of `weights` when given: a run
/// folder of `soft` or of a `[model.llama]` experiment (its newest checkpoint, verified), or a
/// `model.mpk` record.
fn load_lm_with<B: Backend>(path: &Path, weights: Option<&Path>, device: &B::Device) -> anyhow::Result<Lm<B>> {
    use burn::record::{DefaultRecorder, Recorder};
    let (mut model, bpe) = sorted_zoo::llama::load_gguf::<B>(path, device).with_context(|| {
        format!("loading `{}` (`cargo xtask data smollm2` fetches SmolLM2-135M-Instruct)", path.display())
    })?;
    match weights {
        Some(dir) if dir.is_dir() => {
            model = crate::run_folder::open_checkpoint(dir)?.load_model(model, device)?;
        }
        Some(w) => {
            let record = DefaultRecorder::new()
                .load(w.to_path_buf(), device)
                .with_context(|| format!("reading fine-tuned weights `{}`", w.display()))?;
            model = sorted_sched::load_record_checked(model, record, w)?;
        }
        None => {}
    }
    let n_layers = model.layers.len();
    let full = LlamaSubModels::of(&model).full()?;
    Ok(Lm { model, bpe, full, n_layers })
}

/// The query-head options `--heads` asks for (default: every head), checked against the model:
/// each a multiple of its KV heads (query heads are nested per KV group), at most its heads.
///
/// # Errors
/// An option that does not fit, naming `--heads` and what fits.
fn query_head_options<B: Backend>(requested: &[usize], lm: &Lm<B>) -> anyhow::Result<Vec<usize>> {
    let l0 = &lm.model.layers[0];
    let (nh, nkv) = (l0.num_heads, l0.num_kv_heads);
    let mut heads = if requested.is_empty() { vec![nh] } else { requested.to_vec() };
    heads.sort_unstable();
    heads.dedup();
    anyhow::ensure!(
        heads.iter().all(|&h| h >= nkv && h <= nh && h.is_multiple_of(nkv)),
        "--heads {requested:?}: this model has {nh} query heads over {nkv} KV heads, and query heads are \
         nested per KV group, so expected multiples of {nkv} up to {nh}"
    );
    Ok(heads)
}
