//! `perplexity`: the perplexity of every exit (x FFN widths x query heads) on held-out plays;
//! the scoring is `sorted_zoo::llama::exit_perplexity`, this file its flags and report.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use burn::prelude::*;
use sorted_data::{LmChunks, Shakespeare};
use sorted_nn::TransformerSubModel;
use sorted_zoo::llama::exit_perplexity;

use crate::cli::PerplexityArgs;
use crate::provenance::RunContext;
use crate::provenance::{machine, write_file};

use super::{load_lm_with, query_head_options};

/// `perplexity`: per-exit perplexity (through the shared final norm and head) on the
/// held-out Shakespeare works, from one forward pass per window.
///
/// # Errors
/// A missing model or corpus file.
pub fn perplexity_cmd<B: Backend>(args: &PerplexityArgs, device: &B::Device, ctx: &RunContext) -> anyhow::Result<()> {
    let lm = load_lm_with::<B>(&args.gguf, args.weights.as_deref(), device)?;
    let corpus = Shakespeare::from_dir(&args.shakespeare)
        .with_context(|| "`cargo xtask data shakespeare` fetches the corpus")?;
    let mut ids = lm.bpe.encode(&corpus.heldout_text());
    ids.truncate(args.tokens + 1);
    let chunks = LmChunks::new(ids, args.seq_len);
    anyhow::ensure!(!chunks.is_empty(), "--tokens {} gives no window of --seq-len {}", args.tokens, args.seq_len);
    let mut exits: Vec<usize> = if args.exits.is_empty() {
        (1..=lm.bounds.n_layers / 6).map(|i| i * 6).chain([lm.bounds.n_layers]).collect()
    } else {
        args.exits.clone()
    };
    exits.sort_unstable();
    exits.dedup();
    anyhow::ensure!(
        exits.iter().all(|&e| (1..=lm.bounds.n_layers).contains(&e)),
        "--exits {exits:?}: expected depths in 1..={}",
        lm.bounds.n_layers
    );
    let mut ffn_widths = if args.ffn.is_empty() { vec![lm.full.ffn] } else { args.ffn.clone() };
    ffn_widths.sort_unstable();
    ffn_widths.dedup();
    anyhow::ensure!(
        ffn_widths.iter().all(|&f| (1..=lm.full.ffn).contains(&f)),
        "--ffn {ffn_widths:?}: expected SwiGLU widths in 1..={}",
        lm.full.ffn
    );
    let heads = query_head_options(&args.heads, &lm.bounds)?;
    // The full model narrowed to each width (query heads x SwiGLU units); the exits give the
    // depths.
    let full = lm.full;
    let widths: Vec<TransformerSubModel> = heads
        .iter()
        .flat_map(|&heads| {
            ffn_widths.iter().map(move |&ffn| {
                let mut width = full;
                (width.heads, width.ffn) = (heads, ffn);
                width
            })
        })
        .collect();
    let started = Instant::now();
    let scores = exit_perplexity(&lm.model, &chunks, &exits, &widths, device)?;
    let count = scores.tokens;
    // The query-heads column only when heads were narrowed (earlier reports have none).
    let with_heads = widths.iter().any(|w| w.heads != lm.full.heads);
    let mut table = String::from(if with_heads {
        "| exit (layers) | query heads | FFN width | perplexity | NLL/token | top-1 agrees with the full model |\n|---:|---:|---:|---:|---:|---:|\n"
    } else {
        "| exit (layers) | FFN width | perplexity | NLL/token | top-1 agrees with the full model |\n|---:|---:|---:|---:|---:|\n"
    });
    for (w, width) in widths.iter().enumerate() {
        for (e, &depth) in exits.iter().enumerate() {
            let mean = scores.nll_per_token(w, e);
            let agreed = scores.agreement_percent(w, e);
            let heads = if with_heads { format!(" {} |", width.heads) } else { String::new() };
            let _ =
                writeln!(table, "| {depth} |{heads} {} | {:.2} | {mean:.4} | {agreed:.1} % |", width.ffn, mean.exp());
        }
    }
    if !ctx.quiet {
        println!(
            "held-out Shakespeare ({}): {count} tokens in windows of {}, {:.1} s\n{table}",
            sorted_data::SHAKESPEARE_HELDOUT_WORKS.join(", "),
            args.seq_len,
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(out) = &args.out {
        let md = format!(
            "# Per-exit perplexity\n\n| | |\n|---|---|\n| command | `{}` |\n| commit | `{}` |\n| machine | `{}` |\n| model | `{}` |\n| weights | {} |\n| tokens | {count} (held-out works: {}) |\n| wall time | {:.1} s |\n\n{table}",
            ctx.command,
            ctx.commit,
            machine(),
            args.gguf.display(),
            args.weights.as_ref().map_or("the GGUF's (not fine-tuned)".to_string(), |w| format!("`{}`", w.display())),
            sorted_data::SHAKESPEARE_HELDOUT_WORKS.join(", "),
            started.elapsed().as_secs_f64()
        );
        write_file(out, md.as_bytes())?;
    }
    Ok(())
}
