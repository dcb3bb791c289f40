//! Decoder LMs from GGUF files, one file per command: `generate` (plain greedy vs lossless
//! self-speculative decoding, with a benchmark mode), `perplexity` (per exit, on held-out
//! Shakespeare), `soft` (sorted fine-tuning) and `sort` (a decoder importance-sorted, as GGUF).
//! This file loads the decoder they share.

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
mod sort;

pub(crate) use export::{LmSource, export_lm};
pub use generate::{BENCH_PROMPTS, DecodeRow, generate_cmd};
pub use perplexity::perplexity_cmd;
pub use soft::{soft_cmd, soft_experiment};
pub use sort::sort_cmd;

/// A loaded decoder: model, tokenizer, the full sub-model and the bounds of its sub-models.
struct Lm<B: Backend> {
    model: SortedLlama<B>,
    bpe: ByteLevelBpe,
    full: TransformerSubModel,
    bounds: LlamaSubModels,
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
    let bounds = LlamaSubModels::of(&model);
    let full = bounds.full()?;
    Ok(Lm { model, bpe, full, bounds })
}

/// The query-head options `--heads` asks for (default: every head), checked against the model:
/// each a multiple of its KV heads (query heads are nested per KV group), at most its heads.
///
/// # Errors
/// An option that does not fit, naming `--heads` and what fits.
fn query_head_options(requested: &[usize], bounds: &LlamaSubModels) -> anyhow::Result<Vec<usize>> {
    let (nh, nkv) = (bounds.heads, bounds.kv_heads);
    let mut heads = if requested.is_empty() { vec![nh] } else { requested.to_vec() };
    heads.sort_unstable();
    heads.dedup();
    let fits = bounds.query_heads();
    anyhow::ensure!(
        heads.iter().all(|h| fits.contains(h)),
        "--heads {requested:?}: this model has {nh} query heads over {nkv} KV heads, and query heads are \
         nested per KV group, so expected multiples of {nkv} up to {nh}"
    );
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use sorted_zoo::llama::LlamaSubModels;

    #[test]
    fn query_head_options_are_the_multiples_of_the_kv_heads_up_to_every_head() {
        let bounds = LlamaSubModels { n_layers: 30, heads: 9, ffn: 1536, kv_heads: 3, hidden: 576 };
        assert_eq!(super::query_head_options(&[], &bounds).unwrap(), [9]);
        assert_eq!(super::query_head_options(&[9, 3, 6, 3], &bounds).unwrap(), [3, 6, 9]);
        for bad in [[0], [4], [12]] {
            let err = super::query_head_options(&bad, &bounds).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "--heads {bad:?}: this model has 9 query heads over 3 KV heads, and query heads are nested per KV \
                     group, so expected multiples of 3 up to 9"
                )
            );
        }
    }
}
