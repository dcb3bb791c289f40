//! Decoder LMs from GGUF files, one file per command: `generate` (plain greedy vs lossless
//! self-speculative decoding, with a benchmark mode), `perplexity` (per exit, on held-out
//! Shakespeare) and `soft` (sorted fine-tuning). This file loads the decoder they share.

use std::path::Path;

use anyhow::Context;
use burn::prelude::*;
use sorted_data::ByteLevelBpe;
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::llama::{GgufFile, SortedLlama};

mod generate;
mod perplexity;
mod soft;

pub use generate::{BENCH_PROMPTS, DecodeRow, generate_cmd};
pub use perplexity::perplexity_cmd;
pub use soft::{GradientProbe, SoftReport, TermLoss, soft_cmd};

/// A loaded decoder: model, tokenizer and the full sub-model.
struct Lm<B: Backend> {
    model: SortedLlama<B>,
    bpe: ByteLevelBpe,
    full: TransformerSubModel,
    n_layers: usize,
}

fn load_lm<B: Backend>(path: &Path, device: &B::Device) -> anyhow::Result<Lm<B>> {
    load_lm_with(path, None, device)
}

/// The GGUF's decoder and tokenizer, with the parameters of `weights` (a `soft` output) when
/// given.
fn load_lm_with<B: Backend>(path: &Path, weights: Option<&Path>, device: &B::Device) -> anyhow::Result<Lm<B>> {
    use burn::record::{DefaultRecorder, Recorder};
    let file = GgufFile::read(path).with_context(|| "`cargo xtask data smollm2` fetches SmolLM2-135M-Instruct")?;
    let bpe = ByteLevelBpe::from_gguf(&file)?;
    let mut model = SortedLlama::<B>::from_gguf(&file, device)?;
    let rows = model.embedding.dims()[0];
    anyhow::ensure!(
        bpe.vocab_size() == rows,
        "`{}`: the tokenizer has {} tokens (tokenizer.ggml.tokens) but the model's embedding has {rows} rows \
         (llama.vocab_size): the file is inconsistent, its output could not be decoded",
        path.display(),
        bpe.vocab_size()
    );
    if let Some(w) = weights {
        let record = DefaultRecorder::new()
            .load(w.to_path_buf(), device)
            .with_context(|| format!("reading fine-tuned weights `{}`", w.display()))?;
        model = sorted_sched::load_record_checked(model, record, w)?;
    }
    let n_layers = model.layers.len();
    let space = TransformerSpace::new(
        TransformerSpaceConfig {
            depths: vec![n_layers],
            heads: vec![model.layers[0].num_heads],
            ffn: vec![model.layers[0].gate.d_output_max()],
            hidden: None,
        },
        model.embedding.dims()[1],
    )?;
    Ok(Lm { model, bpe, full: space.largest(), n_layers })
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
