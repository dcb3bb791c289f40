//! `generate`: greedy decoding of prompts by the full model or a sub-model, and lossless
//! self-speculative decoding drafted by its own first layers, with a benchmark report. The
//! timing and the rows are `sorted_zoo::llama`'s (`time_decoding`, `DecodeRow`); this file
//! reads the flags, prints, and writes `decode.json` and `decode.md`.

use std::fmt::Write as _;

use anyhow::Context;
use burn::prelude::*;
use serde::Serialize;
use sorted_data::chatml_prompt;
use sorted_nn::TransformerSubModel;
pub use sorted_zoo::llama::DecodeRow;
use sorted_zoo::llama::{
    DecodeRun, EarlyExitConfig, HostWeights, LlamaDecoder, LlamaSubModelError, LlamaSubModels, SpeculativeConfig,
    time_decoding, time_early_exit,
};

use crate::cli::GenerateArgs;
use crate::device::DeviceKind;
use crate::provenance::RunContext;
use crate::provenance::{machine, write_file};

use super::load_lm_with;

/// The prompts of `generate --bench` when none are given.
pub const BENCH_PROMPTS: [&str; 8] = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain what a neural network is in two sentences.",
    "List three fruits that are red.",
    "How many days are there in a leap year?",
    "Give me a tip for learning a new language.",
    "What does a bee make?",
    "Translate 'good morning' into French.",
];

#[derive(Serialize)]
struct BenchReport {
    command: String,
    commit: String,
    machine: String,
    device: String,
    model: String,
    /// The decoded sub-model (`L30-H9-F1536`: SmolLM2's full model).
    sub_model: String,
    prompts: Vec<String>,
    max_new: usize,
    rows: Vec<DecodeRow>,
}

/// `generate`: greedy decoding of the prompts by the full model (or the `--sub-model`), and
/// self-speculative decoding with each `--draft-depth`, checked token for token against greedy;
/// with `--bench DIR`, a timing report (`decode.json`, `decode.md`).
///
/// # Errors
/// A missing or malformed model file, or a speculative output that differs from greedy.
pub fn generate_cmd<B: Backend>(args: &GenerateArgs, device: &B::Device, ctx: &RunContext) -> anyhow::Result<()> {
    if let Some(i) = args.prompt.iter().position(|p| p.trim().is_empty()) {
        anyhow::bail!("--prompt number {} is empty: give it some text", i + 1);
    }
    let lm = load_lm_with::<B>(&args.gguf, args.weights.as_deref(), device)?;
    let target = match &args.sub_model {
        None => lm.full,
        Some(text) => decode_target(text, &lm.bounds)?,
    };
    let prompts: Vec<String> = if args.prompt.is_empty() {
        BENCH_PROMPTS.iter().map(|p| p.to_string()).collect()
    } else {
        args.prompt.clone()
    };
    for &d in &args.draft_depth {
        anyhow::ensure!(
            d >= 1 && d < target.depth,
            "--draft-depth {d}: expected 1..{} (the decoded model, {target}, has {} layers)",
            target.depth,
            target.depth
        );
    }
    let vocab = lm.model.embedding.dims()[0];
    for &n in &args.draft_vocab {
        anyhow::ensure!((1..=vocab).contains(&n), "--draft-vocab {n}: expected 1..={vocab} (the model's vocabulary)");
    }
    let stop = lm.bpe.token_id("<|im_end|>").or_else(|| lm.bpe.token_id("<|endoftext|>"));
    let encoded: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| if args.raw { lm.bpe.encode(p) } else { lm.bpe.encode(&chatml_prompt(&[("user", p.as_str())], true)) })
        .collect();
    if let Some(i) = encoded.iter().position(Vec::is_empty) {
        anyhow::bail!("--prompt number {} is empty: with --raw it is fed as is, so give it some text", i + 1);
    }
    // On a CPU the fused host decoder is the fastest f32 decoder; elsewhere Burn's decoding
    // layout on the device.
    let on_cpu = [DeviceKind::Cpu, DeviceKind::Ndarray].iter().any(|k| k.name() == ctx.device_name);
    let fast = if on_cpu {
        LlamaDecoder::on_host(&lm.model, HostWeights::F32)
    } else {
        LlamaDecoder::with_decode_layout(&lm.model)
    };
    let own = LlamaDecoder::new(&lm.model);
    let q8_format = if args.f32_activations { HostWeights::Q8 } else { HostWeights::Q8Int8 };
    let q8 = args.q8.then(|| LlamaDecoder::on_host(&lm.model, q8_format));
    let decoder = match (&q8, args.model_layout) {
        (Some(q8), _) => q8,
        (None, true) => &own,
        (None, false) => &fast,
    };
    if !ctx.quiet
        && let Some(bytes) = decoder.bytes_per_step()
    {
        let engine =
            if on_cpu || args.q8 { "on the host CPU, one fused pass per layer" } else { "Burn, decoding layout" };
        eprintln!("decoding weights: {:.1} MB streamed per token at full size ({engine})", bytes as f64 / 1e6);
    }
    let run_on = |target: &TransformerSubModel,
                  decoder: &LlamaDecoder<B>,
                  draft: Option<usize>,
                  vocab: Option<usize>,
                  bonus_token: bool,
                  fallback_probe: Option<usize>| {
        let config = draft.map(|d| SpeculativeConfig {
            draft_depth: d,
            initial_draft: args.draft_len,
            max_draft: args.max_draft,
            adaptive: !args.fixed_draft,
            draft_vocab: vocab,
            bonus_token,
            fallback_probe,
        });
        time_decoding(decoder, target, &encoded, args.max_new, stop, config.as_ref())
    };
    let plain = run_on(&target, decoder, None, None, false, None);
    if !ctx.quiet {
        for (prompt, out) in prompts.iter().zip(&plain.outputs) {
            println!("> {prompt}\n{}\n", lm.bpe.decode(out).trim_end_matches("<|im_end|>"));
        }
    }
    let mut rows = vec![DecodeRow::greedy(
        match (target == lm.full, args.q8) {
            (true, false) => "greedy".into(),
            (true, true) if args.f32_activations => "greedy (8-bit weights, f32 activations)".into(),
            (true, true) => "greedy (8-bit weights)".into(),
            (false, false) => format!("greedy ({target})"),
            (false, true) if args.f32_activations => format!("greedy ({target}, 8-bit weights, f32 activations)"),
            (false, true) => format!("greedy ({target}, 8-bit weights)"),
        },
        &plain,
        &plain,
        false,
    )];
    // A greedy row timed for comparison; `reference`: another model's (or weights') tokens, not
    // expected to equal greedy's.
    let greedy_row = |mode: String, run: DecodeRun, reference: bool| DecodeRow::greedy(mode, &run, &plain, reference);
    if args.q8 {
        // The same greedy decoding with f32 weights: how far the 8-bit weights move the tokens.
        let f32_run = run_on(&target, &fast, None, None, false, None);
        let (same, agree) = (f32_run.same_outputs(&plain), f32_run.agreeing_tokens(&plain));
        if !ctx.quiet {
            println!(
                "8-bit weights: {same} of {} prompts decode as with f32 weights; {agree} of {} f32 tokens agree before \
                 the first difference",
                plain.outputs.len(),
                f32_run.stats.generated
            );
        }
        rows.push(greedy_row(
            if on_cpu {
                "greedy (f32 weights, host; reference)"
            } else {
                "greedy (f32 weights, decoding layout; reference)"
            }
            .into(),
            f32_run,
            true,
        ));
    }
    if args.bench.is_some() && target != lm.full {
        // The full model's own greedy decoding: what the sub-model saves.
        let timed = run_on(&lm.full, decoder, None, None, false, None);
        rows.push(greedy_row(format!("greedy, full model {} (reference)", lm.full), timed, true));
    }
    if args.bench.is_some() && !args.model_layout {
        if on_cpu {
            // Burn's decoding layout on the same CPU, for the fused host decoder's gain.
            let burn_layout = LlamaDecoder::with_decode_layout(&lm.model);
            let timed = run_on(&target, &burn_layout, None, None, false, None);
            let mode = if args.q8 {
                "greedy (f32 weights, Burn decoding layout; reference)"
            } else {
                "greedy (Burn decoding layout)"
            };
            rows.push(greedy_row(mode.into(), timed, args.q8));
        }
        // The same greedy decoding with the model's own (training) layout, for the layout's gain.
        let timed = run_on(&target, &own, None, None, false, None);
        let mode = if args.q8 { "greedy (f32 weights, model layout; reference)" } else { "greedy (model layout)" };
        // 8-bit weights are lossy: f32 weights need not decode the same tokens.
        rows.push(greedy_row(mode.into(), timed, args.q8));
    }
    let vocabularies: Vec<Option<usize>> =
        std::iter::once(None).chain(args.draft_vocab.iter().map(|&n| Some(n))).collect();
    let probes: Vec<Option<usize>> = if args.fallback_probe.is_empty() {
        vec![None]
    } else {
        args.fallback_probe.iter().map(|&k| (k > 0).then_some(k)).collect()
    };
    let mut drafters = Vec::new();
    for &d in &args.draft_depth {
        for &vocab in &vocabularies {
            for &bonus in args.bonus_token.settings() {
                for &probe in &probes {
                    drafters.push((d, vocab, bonus, probe));
                }
            }
        }
    }
    for (d, vocab, bonus_token, fallback_probe) in drafters {
        let run = run_on(&target, decoder, Some(d), vocab, bonus_token, fallback_probe);
        let mode = format!(
            "speculative (draft depth {d}{}{}{})",
            vocab.map_or(String::new(), |n| format!(", draft vocabulary {n}")),
            if bonus_token { ", bonus token" } else { "" },
            fallback_probe.map_or(String::new(), |k| format!(", greedy fallback (probe {k})"))
        );
        rows.push(DecodeRow::speculative(mode, d, &run, &plain));
    }
    if !args.early_exit.is_empty() {
        let config = parse_early_exit(&args.early_exit, target.depth)?;
        let early = time_early_exit(decoder, &target, &config, &encoded, &plain, args.max_new, stop);
        let tps = early.tokens_per_second();
        let plain_tps = plain.tokens_per_second();
        if !ctx.quiet {
            println!(
                "early exit {:?} (lossy): {tps:.2} tokens/s ({:.2}x greedy), {:.0}% of the full model's layers run, \
                 {} of {} tokens agree with greedy before the first difference{}",
                args.early_exit,
                tps / plain_tps.max(1e-12),
                early.layers_percent(target.depth),
                early.agreeing_tokens,
                early.generated,
                if early.identical { " (all identical)" } else { "" }
            );
        }
        rows.push(DecodeRow::undrafted(
            format!("early exit {} (lossy)", args.early_exit.join(",")),
            early.generated,
            early.seconds,
            plain_tps,
            0.0,
            early.identical,
        ));
    }
    let table = decode_table(&rows);
    if !ctx.quiet {
        println!("{table}");
    }
    if let Some(dir) = &args.bench {
        std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
        let report = BenchReport {
            command: ctx.command.clone(),
            commit: ctx.commit.clone(),
            machine: machine(),
            device: ctx.device_name.clone(),
            model: args.gguf.display().to_string(),
            sub_model: target.to_string(),
            prompts: prompts.clone(),
            max_new: args.max_new,
            rows: rows.clone(),
        };
        write_file(&dir.join("decode.json"), &serde_json::to_vec_pretty(&report).expect("serialises"))?;
        let md = format!(
            "# Decoding benchmark\n\n| | |\n|---|---|\n| command | `{}` |\n| commit | `{}` |\n| machine | `{}` |\n| device | `{}` |\n| model | `{}` |\n| decoded sub-model | `{}` |\n| prompts | {} (max {} new tokens each) |\n\n{table}\n",
            report.command,
            report.commit,
            report.machine,
            report.device,
            report.model,
            report.sub_model,
            prompts.len(),
            args.max_new
        );
        write_file(&dir.join("decode.md"), md.as_bytes())?;
        if !ctx.quiet {
            println!("wrote {}/{{decode.json, decode.md}}", dir.display());
        }
    }
    if let Some(row) = rows.iter().find(|r| !r.identical && !r.reference && !r.mode.contains("lossy")) {
        anyhow::bail!("{}: the output differs from plain greedy decoding (a bug: it must be lossless)", row.mode);
    }
    Ok(())
}

/// `--sub-model` text (`L<layers>-H<query heads>-F<SwiGLU units>`, an axis left out staying
/// full) → the sub-model of a decoder with these `bounds` (query heads must be a multiple of
/// its KV heads).
///
/// # Errors
/// Unreadable text or a size the model cannot run, naming `--sub-model` and what fits.
pub(super) fn decode_target(text: &str, bounds: &LlamaSubModels) -> anyhow::Result<TransformerSubModel> {
    bounds.parse(text).map_err(|e| match e {
        LlamaSubModelError::Space(e) => anyhow::Error::from(e),
        e => anyhow::anyhow!("--sub-model {e}"),
    })
}

/// `--early-exit 20:0.9,25:0.8` → exits and thresholds, checked against the model's depth.
fn parse_early_exit(specs: &[String], n_layers: usize) -> anyhow::Result<EarlyExitConfig> {
    let mut pairs = Vec::with_capacity(specs.len());
    for spec in specs {
        let parsed = spec
            .split_once(':')
            .and_then(|(d, t)| Some((d.trim().parse::<usize>().ok()?, t.trim().parse::<f32>().ok()?)));
        let Some((depth, threshold)) = parsed else {
            anyhow::bail!("--early-exit `{spec}`: expected <layers>:<threshold>, e.g. 20:0.9");
        };
        anyhow::ensure!(
            (1..n_layers).contains(&depth) && threshold.is_finite() && threshold >= 0.0,
            "--early-exit `{spec}`: expected layers in 1..{n_layers} and a threshold >= 0"
        );
        pairs.push((depth, threshold));
    }
    pairs.sort_by_key(|p| p.0);
    anyhow::ensure!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "--early-exit: each exit once");
    Ok(EarlyExitConfig { exits: pairs.iter().map(|p| p.0).collect(), thresholds: pairs.iter().map(|p| p.1).collect() })
}

fn decode_table(rows: &[DecodeRow]) -> String {
    let mut s = String::from(
        "| mode | tokens | tokens/s | speed-up | acceptance | tokens per full pass | drafted per verification | ms per drafted token | ms per verification | fallback greedy steps | identical to greedy |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let spec = r.draft_depth > 0;
        let cell = |v: String| if spec { v } else { "–".to_string() };
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.2}x | {} | {:.2} | {} | {} | {} | {} | {} |",
            r.mode,
            r.tokens,
            r.tokens_per_second,
            r.speedup,
            cell(format!("{:.1}%", 100.0 * r.acceptance_rate)),
            r.tokens_per_full_pass,
            cell(format!("{:.2}", r.drafted_per_verification)),
            cell(format!("{:.1}", r.ms_per_draft_token)),
            cell(format!("{:.1}", r.ms_per_verification)),
            cell(r.greedy_steps.to_string()),
            match (r.reference, r.identical) {
                (true, _) => "– (another model)",
                (false, true) => "yes",
                (false, false) => "NO",
            }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use sorted_zoo::llama::LlamaSubModels;

    #[test]
    fn generate_sub_models_parse_with_full_axes_by_default_and_refuse_what_does_not_fit() {
        let bounds = LlamaSubModels { n_layers: 30, heads: 9, ffn: 1536, kv_heads: 3, hidden: 576 };
        let parse = |text: &str| super::decode_target(text, &bounds);
        let sub = parse("L20-H6-F768").unwrap();
        assert_eq!((sub.depth, sub.heads, sub.ffn, sub.hidden), (20, 6, 768, 576));
        let sub = parse("L12").unwrap();
        assert_eq!((sub.depth, sub.heads, sub.ffn), (12, 9, 1536), "left-out axes stay full");
        assert_eq!(parse("full").unwrap(), parse("L30-H9-F1536").unwrap());
        for bad in ["L31", "L20-H4", "L20-H12", "F2000", "L0", "twenty"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("--sub-model") && err.contains(bad), "{bad}: {err}");
        }
    }
}
