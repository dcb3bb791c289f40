//! Decoder LMs from GGUF files: `generate` (plain greedy vs lossless self-speculative decoding,
//! with a benchmark mode) and `perplexity` (per exit, on held-out Shakespeare).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::Serialize;
use sorted_data::{ByteLevelBpe, LmChunks, Shakespeare, chatml_prompt};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::llama::{
    DecodeStats, EarlyExitConfig, GgufFile, HeadGradient, LlamaDecoder, LlamaWidth, SoftOptions, SoftTerm, SortedLlama,
    SpeculativeConfig, soft_loss_with,
};

use crate::cli::{GenerateArgs, PerplexityArgs};
use crate::commands::RunContext;
use crate::report::{machine, write_file};

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

/// One decoding mode on one prompt set, as `generate --bench` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct DecodeRow {
    /// `greedy` or `speculative (draft depth N)`.
    pub mode: String,
    /// Draft depth (0 for plain greedy).
    pub draft_depth: usize,
    /// Tokens generated over all prompts.
    pub tokens: usize,
    /// Wall time over all prompts, seconds.
    pub seconds: f64,
    /// Tokens per second.
    pub tokens_per_second: f64,
    /// Speed-up over plain greedy (same run).
    pub speedup: f64,
    /// Accepted / proposed draft tokens.
    pub acceptance_rate: f64,
    /// Tokens emitted per full-model (verification) pass.
    pub tokens_per_full_pass: f64,
    /// Whether every output equals plain greedy's token for token.
    pub identical: bool,
    /// A row of another model, timed for comparison (the full model when `--sub-model` picks
    /// a smaller one): its outputs are not expected to equal greedy's.
    pub reference: bool,
    /// Mean milliseconds per drafted token (speculative only; 0 otherwise).
    pub ms_per_draft_token: f64,
    /// Mean milliseconds per verification pass (speculative only; 0 otherwise).
    pub ms_per_verification: f64,
    /// Mean drafted tokens per verification pass (speculative only; 0 otherwise).
    pub drafted_per_verification: f64,
    /// Plain full-model steps the greedy fallback took instead of speculative cycles
    /// (speculative with `--fallback-probe` only; 0 otherwise).
    pub greedy_steps: usize,
}

impl DecodeRow {
    /// A row without a drafter (greedy or early exit): speed-up against `plain_tps`.
    fn undrafted(
        mode: String,
        tokens: usize,
        seconds: f64,
        plain_tps: f64,
        tokens_per_full_pass: f64,
        identical: bool,
    ) -> Self {
        let tokens_per_second = tokens as f64 / seconds.max(1e-9);
        DecodeRow {
            mode,
            draft_depth: 0,
            tokens,
            seconds,
            tokens_per_second,
            speedup: tokens_per_second / plain_tps.max(1e-12),
            acceptance_rate: 0.0,
            tokens_per_full_pass,
            identical,
            reference: false,
            ms_per_draft_token: 0.0,
            ms_per_verification: 0.0,
            drafted_per_verification: 0.0,
            greedy_steps: 0,
        }
    }
}

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
    let l0 = &lm.model.layers[0];
    let target = match &args.sub_model {
        None => lm.full,
        Some(text) => decode_target(text, lm.n_layers, lm.model.full_width(), l0.num_kv_heads, lm.full.hidden)?,
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
    let fast = LlamaDecoder::with_decode_layout(&lm.model);
    let own = LlamaDecoder::new(&lm.model);
    let decoder = if args.model_layout { &own } else { &fast };
    let run_on = |target: &TransformerSubModel,
                  decoder: &LlamaDecoder<B>,
                  draft: Option<usize>,
                  vocab: Option<usize>,
                  bonus_token: bool,
                  fallback_probe: Option<usize>| {
        let mut outputs = Vec::new();
        let mut total = DecodeStats::default();
        let started = Instant::now();
        for ids in &encoded {
            let (out, stats) = match draft {
                None => decoder.greedy(target, ids, args.max_new, stop),
                Some(d) => {
                    let config = SpeculativeConfig {
                        draft_depth: d,
                        initial_draft: args.draft_len,
                        max_draft: args.max_draft,
                        adaptive: !args.fixed_draft,
                        draft_vocab: vocab,
                        bonus_token,
                        fallback_probe,
                    };
                    decoder.speculative_greedy(target, &config, ids, args.max_new, stop)
                }
            };
            total.generated += stats.generated;
            total.proposed += stats.proposed;
            total.accepted += stats.accepted;
            total.full_passes += stats.full_passes;
            total.draft_passes += stats.draft_passes;
            total.greedy_steps += stats.greedy_steps;
            total.draft_time += stats.draft_time;
            total.verify_time += stats.verify_time;
            outputs.push(out);
        }
        (outputs, total, started.elapsed().as_secs_f64())
    };
    let (plain, plain_stats, plain_seconds) = run_on(&target, decoder, None, None, false, None);
    if !ctx.quiet {
        for (prompt, out) in prompts.iter().zip(&plain) {
            println!("> {prompt}\n{}\n", lm.bpe.decode(out).trim_end_matches("<|im_end|>"));
        }
    }
    let plain_tps = plain_stats.generated as f64 / plain_seconds.max(1e-9);
    let mut rows = vec![DecodeRow::undrafted(
        if target == lm.full { "greedy".into() } else { format!("greedy ({target})") },
        plain_stats.generated,
        plain_seconds,
        plain_tps,
        plain_stats.tokens_per_pass(),
        true,
    )];
    if args.bench.is_some() && target != lm.full {
        // The full model's own greedy decoding: what the sub-model saves.
        let (outputs, stats, seconds) = run_on(&lm.full, decoder, None, None, false, None);
        let mut row = DecodeRow::undrafted(
            format!("greedy, full model {} (reference)", lm.full),
            stats.generated,
            seconds,
            plain_tps,
            stats.tokens_per_pass(),
            outputs == plain,
        );
        row.reference = true;
        rows.push(row);
    }
    if args.bench.is_some() && !args.model_layout {
        // The same greedy decoding with the model's own (training) layout, for the layout's gain.
        let (outputs, stats, seconds) = run_on(&target, &own, None, None, false, None);
        rows.push(DecodeRow::undrafted(
            "greedy (model layout)".into(),
            stats.generated,
            seconds,
            plain_tps,
            stats.tokens_per_pass(),
            outputs == plain,
        ));
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
        let (outputs, stats, seconds) = run_on(&target, decoder, Some(d), vocab, bonus_token, fallback_probe);
        let identical = outputs == plain;
        let tps = stats.generated as f64 / seconds.max(1e-9);
        // Every prompt's first pass runs the whole model on the prompt; the rest verify, or are
        // the greedy fallback's steps.
        let verifications = stats.full_passes.saturating_sub(encoded.len() + stats.greedy_steps);
        rows.push(DecodeRow {
            mode: format!(
                "speculative (draft depth {d}{}{}{})",
                vocab.map_or(String::new(), |n| format!(", draft vocabulary {n}")),
                if bonus_token { ", bonus token" } else { "" },
                fallback_probe.map_or(String::new(), |k| format!(", greedy fallback (probe {k})"))
            ),
            draft_depth: d,
            tokens: stats.generated,
            seconds,
            tokens_per_second: tps,
            speedup: tps / plain_tps.max(1e-12),
            acceptance_rate: stats.acceptance_rate(),
            tokens_per_full_pass: stats.tokens_per_pass(),
            identical,
            reference: false,
            ms_per_draft_token: 1e3 * stats.draft_time.as_secs_f64() / stats.draft_passes.max(1) as f64,
            ms_per_verification: 1e3 * stats.verify_time.as_secs_f64() / verifications.max(1) as f64,
            drafted_per_verification: stats.proposed as f64 / verifications.max(1) as f64,
            greedy_steps: stats.greedy_steps,
        });
    }
    if !args.early_exit.is_empty() {
        let config = parse_early_exit(&args.early_exit, target.depth)?;
        let started = Instant::now();
        let (mut generated, mut same, mut layers) = (0usize, 0usize, 0usize);
        let mut identical = true;
        for (ids, reference) in encoded.iter().zip(&plain) {
            let (out, stats) = decoder.early_exit_greedy(&target, &config, ids, args.max_new, stop);
            generated += stats.generated;
            layers += stats.layers_run;
            same += out.iter().zip(reference).take_while(|(a, b)| a == b).count();
            identical &= out == *reference;
        }
        let seconds = started.elapsed().as_secs_f64();
        let tps = generated as f64 / seconds.max(1e-9);
        let full_layers = generated.saturating_sub(encoded.len()) * target.depth;
        if !ctx.quiet {
            println!(
                "early exit {:?} (lossy): {tps:.2} tokens/s ({:.2}x greedy), {:.0}% of the full model's layers run, \
                 {same} of {generated} tokens agree with greedy before the first difference{}",
                args.early_exit,
                tps / plain_tps.max(1e-12),
                100.0 * layers as f64 / full_layers.max(1) as f64,
                if identical { " (all identical)" } else { "" }
            );
        }
        rows.push(DecodeRow::undrafted(
            format!("early exit {} (lossy)", args.early_exit.join(",")),
            generated,
            seconds,
            plain_tps,
            0.0,
            identical,
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
/// full) → the sub-model of a decoder with `n_layers` layers, `full` widths and `kv_heads` KV
/// heads (query heads must be a multiple of them).
///
/// # Errors
/// Unreadable text or a size the model cannot run, naming `--sub-model` and what fits.
fn decode_target(
    text: &str,
    n_layers: usize,
    full: LlamaWidth,
    kv_heads: usize,
    hidden: usize,
) -> anyhow::Result<TransformerSubModel> {
    let heads: Vec<usize> = (1..=full.heads / kv_heads).map(|k| k * kv_heads).collect();
    let fits = format!(
        "this model runs 1..={n_layers} layers, query heads {heads:?} (multiples of its {kv_heads} KV heads) and \
         1..={} SwiGLU units",
        full.ffn
    );
    // The space's own parser reads the text; its error would list every SwiGLU width, so a
    // refusal says what fits instead.
    let space = TransformerSpace::new(
        TransformerSpaceConfig {
            depths: (1..=n_layers).collect(),
            heads: heads.clone(),
            ffn: (1..=full.ffn).collect(),
            hidden: None,
        },
        hidden,
    )?;
    space.parse_sub_model(text).map_err(|e| match e {
        sorted_nn::SpecError::Parse { .. } => anyhow::anyhow!(
            "--sub-model `{text}`: expected `L<layers>-H<query heads>-F<SwiGLU units>` (any axis may be left out), \
             e.g. L20-H6-F768"
        ),
        _ => anyhow::anyhow!("--sub-model `{text}`: {fits}"),
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
        (1..=lm.n_layers / 6).map(|i| i * 6).chain([lm.n_layers]).collect()
    } else {
        args.exits.clone()
    };
    exits.sort_unstable();
    exits.dedup();
    anyhow::ensure!(
        exits.iter().all(|&e| (1..=lm.n_layers).contains(&e)),
        "--exits {exits:?}: expected depths in 1..={}",
        lm.n_layers
    );
    let mut ffn_widths = if args.ffn.is_empty() { vec![lm.full.ffn] } else { args.ffn.clone() };
    ffn_widths.sort_unstable();
    ffn_widths.dedup();
    anyhow::ensure!(
        ffn_widths.iter().all(|&f| (1..=lm.full.ffn).contains(&f)),
        "--ffn {ffn_widths:?}: expected SwiGLU widths in 1..={}",
        lm.full.ffn
    );
    let heads = query_head_options(&args.heads, &lm)?;
    let widths: Vec<LlamaWidth> =
        heads.iter().flat_map(|&heads| ffn_widths.iter().map(move |&ffn| LlamaWidth { heads, ffn })).collect();
    let started = Instant::now();
    let mut nll = vec![vec![0.0f64; exits.len()]; widths.len()];
    // Positions where each exit's most likely next token is the full model's: the rate at which
    // greedy self-speculative decoding would accept that exit's drafts on this text.
    let mut agree = vec![vec![0usize; exits.len()]; widths.len()];
    let mut count = 0usize;
    let full = (lm.n_layers, lm.model.full_width());
    for i in 0..chunks.len() {
        let batch = chunks.batch::<B>(&[i], device);
        let [_, s] = batch.targets.dims();
        let targets = batch.targets.clone().reshape([s, 1]);
        let mut full_top: Option<Tensor<B, 2, Int>> = None;
        let mut tops = Vec::with_capacity(widths.len());
        for (w, &width) in widths.iter().enumerate() {
            // The full-width pass also runs to the last layer, for the full model's choices.
            let mut depths = exits.clone();
            if width == full.1 && !depths.contains(&full.0) {
                depths.push(full.0);
            }
            let logits = lm.model.forward_exits(batch.inputs.clone(), &depths, width);
            let mut top = Vec::with_capacity(exits.len());
            for (&depth, l) in depths.iter().zip(logits) {
                let [_, _, v] = l.dims();
                let l = l.reshape([s, v]);
                let argmax = l.clone().argmax(1);
                if (depth, width) == full {
                    full_top = Some(argmax.clone());
                }
                if let Some(e) = exits.iter().position(|&x| x == depth) {
                    let logp = log_softmax(l, 1);
                    nll[w][e] -= logp.gather(1, targets.clone()).sum().into_scalar().elem::<f64>();
                    top.push(argmax);
                }
            }
            tops.push(top);
        }
        let full_top = match full_top {
            Some(t) => t,
            None => {
                let l = lm.model.forward_exits(batch.inputs.clone(), &[full.0], full.1).remove(0);
                let v = l.dims()[2];
                l.reshape([s, v]).argmax(1)
            }
        };
        for (w, top) in tops.into_iter().enumerate() {
            for (e, t) in top.into_iter().enumerate() {
                agree[w][e] += t.equal(full_top.clone()).int().sum().into_scalar().elem::<i64>() as usize;
            }
        }
        count += s;
    }
    // The query-heads column only when heads were narrowed (earlier reports have none).
    let with_heads = widths.iter().any(|w| w.heads != full.1.heads);
    let mut table = String::from(if with_heads {
        "| exit (layers) | query heads | FFN width | perplexity | NLL/token | top-1 agrees with the full model |\n|---:|---:|---:|---:|---:|---:|\n"
    } else {
        "| exit (layers) | FFN width | perplexity | NLL/token | top-1 agrees with the full model |\n|---:|---:|---:|---:|---:|\n"
    });
    for (w, width) in widths.iter().enumerate() {
        for (e, &depth) in exits.iter().enumerate() {
            let mean = nll[w][e] / count as f64;
            let agreed = 100.0 * agree[w][e] as f64 / count as f64;
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

/// What `soft` writes beside the weights (`soft.json`).
#[derive(Clone, Debug, Serialize)]
pub struct SoftReport {
    /// The command line.
    pub command: String,
    /// `git rev-parse HEAD` at start.
    pub commit: String,
    /// CPU and cores.
    pub machine: String,
    /// The device.
    pub device: String,
    /// The base model.
    pub model: String,
    /// Exits trained (the loss is their weighted mean); one exit = plain fine-tuning.
    pub exits: Vec<usize>,
    /// Loss weight of each exit (same order).
    pub exit_weights: Vec<f64>,
    /// SwiGLU widths sampled (SortedNet sampling over depth x heads x FFN); empty: every exit
    /// at full width every step.
    pub sampled_ffn: Vec<usize>,
    /// Query-head options sampled (multiples of the KV heads); empty: no sampling.
    pub sampled_heads: Vec<usize>,
    /// Sub-models per step when sampling.
    pub samples: Option<usize>,
    /// Whether only the full-depth exit trained the final norm and head.
    pub head_from_full_only: bool,
    /// Self-distillation weight (`--distill`; 0: none).
    pub distill: f64,
    /// `--probe-gradients`: each term's gradient norms on the first batch, before training.
    pub gradient_probe: Vec<GradientProbe>,
    /// Each step's sub-models and their own losses.
    pub term_losses: Vec<Vec<TermLoss>>,
    /// Optimizer steps.
    pub steps: usize,
    /// Windows per step.
    pub batch_size: usize,
    /// Tokens per window.
    pub seq_len: usize,
    /// Peak learning rate (AdamW, linear warm-up over the first 10% of steps, linear decay).
    pub lr: f64,
    /// Training loss (mean over exits) every step.
    pub losses: Vec<f64>,
    /// Training wall time, seconds.
    pub train_seconds: f64,
    /// Training tokens per second.
    pub tokens_per_second: f64,
}

/// One sub-model's loss in one `soft` step.
#[derive(Clone, Debug, Serialize)]
pub struct TermLoss {
    /// Exit depth.
    pub depth: usize,
    /// Query heads.
    pub heads: usize,
    /// SwiGLU width.
    pub ffn: usize,
    /// Its cross-entropy on the text.
    pub loss: f64,
    /// Its KL divergence from the full model (`--distill`; absent for the full model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
}

/// One term's gradient on the first batch (`soft --probe-gradients`): how hard it pulls on the
/// layers every exit shares and on the shared norm and head.
#[derive(Clone, Debug, Serialize)]
pub struct GradientProbe {
    /// Exit depth.
    pub depth: usize,
    /// Query heads.
    pub heads: usize,
    /// SwiGLU width.
    pub ffn: usize,
    /// Its cross-entropy.
    pub loss: f64,
    /// Layers shared by every term (the shallowest term's depth).
    pub shared_layers: usize,
    /// L2 norm of its gradient over those layers' parameters.
    pub shared_layers_norm: f64,
    /// L2 norm of its gradient over the final norm and the tied embedding/head.
    pub head_norm: f64,
}

/// Each term of `terms` alone: its loss and the L2 norms of its gradient over the layers every
/// term shares and over the final norm + embedding.
fn probe_gradients<B: burn::tensor::backend::AutodiffBackend>(
    model: &SortedLlama<B>,
    batch: &sorted_data::LmBatch<B>,
    terms: &[SoftTerm],
    options: SoftOptions,
) -> Vec<GradientProbe> {
    use burn::module::Param;
    let shared = terms.iter().map(|t| t.depth).min().unwrap_or(0);
    fn sq<B: burn::tensor::backend::AutodiffBackend, const D: usize>(p: &Param<Tensor<B, D>>, g: &B::Gradients) -> f64 {
        p.grad(g).map_or(0.0, |g| g.powi_scalar(2).sum().into_scalar().elem::<f64>())
    }
    terms
        .iter()
        .map(|term| {
            let loss =
                soft_loss_with(model, batch.inputs.clone(), batch.targets.clone(), std::slice::from_ref(term), options);
            let value = loss.total.clone().into_scalar().elem::<f64>();
            let grads = loss.total.backward();
            let mut layers = 0.0;
            for layer in &model.layers[..shared] {
                for w in [
                    &layer.query.weight,
                    &layer.key.weight,
                    &layer.value.weight,
                    &layer.output.weight,
                    &layer.gate.weight,
                    &layer.up.weight,
                    &layer.down.weight,
                ] {
                    layers += sq(w, &grads);
                }
                layers += sq(&layer.attention_norm.weight, &grads) + sq(&layer.ffn_norm.weight, &grads);
            }
            let head = sq(&model.embedding, &grads) + sq(&model.norm.weight, &grads);
            GradientProbe {
                depth: term.depth,
                heads: term.heads,
                ffn: term.ffn,
                loss: value,
                shared_layers: shared,
                shared_layers_norm: layers.sqrt(),
                head_norm: head.sqrt(),
            }
        })
        .collect()
}

/// What each `soft` step trains: every exit at full width with its weight, or (with `--ffn`
/// and/or `--heads`) sub-models sampled over exits x query heads x SwiGLU widths, each weighted
/// by its exit's weight.
struct SoftPlan {
    exits: Vec<usize>,
    weights: Vec<f64>,
    full: LlamaWidth,
    space: Option<TransformerSpace>,
    sampler: Option<Box<dyn sorted_sched::Sampler<TransformerSubModel>>>,
    options: SoftOptions,
}

impl SoftPlan {
    /// `full`: the model's widths; `kv_heads`: its KV heads (query-head options must be
    /// multiples); `d`: its hidden width.
    fn new(
        args: &crate::cli::SoftArgs,
        n_layers: usize,
        full: LlamaWidth,
        kv_heads: usize,
        d: usize,
    ) -> anyhow::Result<Self> {
        use sorted_sched::{SamplerConfig, UniformOver, UniformSamplerConfig};
        anyhow::ensure!(
            !args.exits.is_empty() && args.exits.iter().all(|&e| (1..=n_layers).contains(&e)),
            "--exits {:?}: expected depths in 1..={n_layers}",
            args.exits
        );
        let weights =
            if args.exit_weights.is_empty() { vec![1.0; args.exits.len()] } else { args.exit_weights.clone() };
        anyhow::ensure!(
            weights.len() == args.exits.len(),
            "--exit-weights has {} values for {} exits (--exits {:?}); give one per exit",
            weights.len(),
            args.exits.len(),
            args.exits
        );
        anyhow::ensure!(
            weights.iter().all(|w| w.is_finite() && *w > 0.0),
            "--exit-weights {weights:?}: every weight must be positive"
        );
        let mut pairs: Vec<(usize, f64)> = args.exits.iter().copied().zip(weights).collect();
        pairs.sort_by_key(|p| p.0);
        anyhow::ensure!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "--exits {:?}: an exit is repeated", args.exits);
        let (exits, weights): (Vec<usize>, Vec<f64>) = pairs.into_iter().unzip();
        let full_ffn = full.ffn;
        let (space, sampler) = if args.ffn.is_empty() && args.heads.is_empty() {
            (None, None)
        } else {
            let mut ffn = if args.ffn.is_empty() { vec![full_ffn] } else { args.ffn.clone() };
            ffn.sort_unstable();
            anyhow::ensure!(
                ffn.windows(2).all(|w| w[0] < w[1]) && ffn.iter().all(|&f| (1..=full_ffn).contains(&f)),
                "--ffn {:?}: expected distinct SwiGLU widths in 1..={full_ffn}",
                args.ffn
            );
            let mut heads = if args.heads.is_empty() { vec![full.heads] } else { args.heads.clone() };
            heads.sort_unstable();
            anyhow::ensure!(
                heads.windows(2).all(|w| w[0] < w[1])
                    && heads.iter().all(|&h| h >= kv_heads && h <= full.heads && h.is_multiple_of(kv_heads)),
                "--heads {:?}: expected distinct multiples of the {kv_heads} KV heads up to {} (query heads are \
                 nested per KV group)",
                args.heads,
                full.heads
            );
            let space =
                TransformerSpace::new(TransformerSpaceConfig { depths: exits.clone(), heads, ffn, hidden: None }, d)?;
            let sampler = SamplerConfig::Uniform(UniformSamplerConfig {
                k: args.samples,
                include_full: args.include_full,
                over: UniformOver::Axes,
            })
            .build_for(&space, args.seed)
            .map_err(|e| anyhow::anyhow!("--samples: {e}"))?;
            (Some(space), Some(sampler))
        };
        let head_gradient = if args.head_from_full_only { HeadGradient::FullDepthOnly } else { HeadGradient::AllExits };
        anyhow::ensure!(
            (0.0..=1.0).contains(&args.distill),
            "--distill {}: expected a weight in [0, 1] (0: no distillation)",
            args.distill
        );
        let options = SoftOptions { head_gradient, distill: args.distill };
        Ok(Self { exits, weights, full, space, sampler, options })
    }

    fn weight_of(&self, depth: usize) -> f64 {
        self.exits.iter().position(|&e| e == depth).map_or(1.0, |i| self.weights[i])
    }

    fn terms(&self, step: u64) -> Vec<SoftTerm> {
        match &self.sampler {
            None => self
                .exits
                .iter()
                .zip(&self.weights)
                .map(|(&depth, &weight)| SoftTerm { depth, heads: self.full.heads, ffn: self.full.ffn, weight })
                .collect(),
            Some(sampler) => sampler
                .sample(step)
                .into_iter()
                .map(|sub| SoftTerm {
                    depth: sub.depth,
                    heads: sub.heads,
                    ffn: sub.ffn,
                    weight: self.weight_of(sub.depth),
                })
                .collect(),
        }
    }

    fn sampled_ffn(&self) -> Vec<usize> {
        self.space.as_ref().map_or_else(Vec::new, |s| s.ffn().to_vec())
    }

    fn sampled_heads(&self) -> Vec<usize> {
        self.space.as_ref().map_or_else(Vec::new, |s| s.heads().to_vec())
    }
}

/// `soft`: sorted fine-tuning (SoFT) of a GGUF decoder on the Shakespeare training works: every
/// step one forward pass gives the logits of every exit through the shared final norm and
/// head, the loss is the (`--exit-weights`-weighted) mean of their cross-entropies, and AdamW
/// updates the shared weights. With `--ffn` and/or `--heads` each step instead trains
/// `--samples` sub-models drawn over exits x query heads x SwiGLU widths (SortedNet sampling). With `--exits 30` alone it is plain
/// fine-tuning, the baseline. Writes `model.mpk` (full
/// precision; `generate --weights` and `perplexity --weights` read it) and `soft.json`.
///
/// # Errors
/// A missing model or corpus, or an unwritable output folder.
pub fn soft_cmd<B: burn::tensor::backend::AutodiffBackend>(
    args: &crate::cli::SoftArgs,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<()> {
    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::record::{DefaultRecorder, Recorder};
    use sorted_sched::{AdamOptions, OptimizerConfig, SortedOptimizer};

    B::seed(device, args.seed);
    let lm = load_lm::<B>(&args.gguf, device)?;
    let plan = SoftPlan::new(
        args,
        lm.n_layers,
        lm.model.full_width(),
        lm.model.layers[0].num_kv_heads,
        lm.model.embedding.dims()[1],
    )?;
    let corpus = Shakespeare::from_dir(&args.shakespeare)
        .with_context(|| "`cargo xtask data shakespeare` fetches the corpus")?;
    let chunks = LmChunks::new(lm.bpe.encode(&corpus.train_text()), args.seq_len);
    anyhow::ensure!(chunks.len() >= args.batch_size, "the training text gives fewer windows than --batch-size");
    let order = chunks.epoch_order(args.batch_size, args.seed);
    let adamw =
        OptimizerConfig::Adamw(AdamOptions { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: Some(0.0) });
    let mut optim: SortedOptimizer<SortedLlama<B>, B> = adamw.init();
    let mut model = lm.model;
    let probe = if args.probe_gradients {
        let batch = chunks.batch::<B>(&order.batch_indices(0), device);
        let probe = probe_gradients(&model, &batch, &plan.terms(0), plan.options);
        if !ctx.quiet {
            for p in &probe {
                eprintln!(
                    "gradient norm of L{}-H{}-F{} (loss {:.3}): layers 1-{} (shared by every exit) {:.4e}, final norm + embedding {:.4e}",
                    p.depth, p.heads, p.ffn, p.loss, p.shared_layers, p.shared_layers_norm, p.head_norm
                );
            }
        }
        probe
    } else {
        Vec::new()
    };
    let warmup = (args.steps / 10).max(1);
    let started = Instant::now();
    let mut losses = Vec::with_capacity(args.steps);
    let mut term_losses = Vec::with_capacity(args.steps);
    for step in 0..args.steps {
        let batch = chunks.batch::<B>(&order.batch_indices(step as u64), device);
        let terms = plan.terms(step as u64);
        let loss = soft_loss_with(&model, batch.inputs, batch.targets, &terms, plan.options);
        let value = loss.total.clone().into_scalar().elem::<f64>();
        anyhow::ensure!(value.is_finite(), "the loss became {value} at step {step}; lower --lr");
        let logged: Vec<TermLoss> = terms
            .iter()
            .zip(loss.terms.iter().zip(&loss.distill_terms))
            .map(|(t, (l, kl))| TermLoss {
                depth: t.depth,
                heads: t.heads,
                ffn: t.ffn,
                loss: l.clone().into_scalar().elem::<f64>(),
                kl: kl.as_ref().map(|kl| kl.clone().into_scalar().elem::<f64>()),
            })
            .collect();
        let grads = GradientsParams::from_grads(loss.total.backward(), &model);
        let lr = if step < warmup {
            args.lr * (step + 1) as f64 / warmup as f64
        } else {
            args.lr * (args.steps - step) as f64 / (args.steps - warmup) as f64
        };
        model = optim.step(lr, model, grads);
        losses.push(value);
        if !ctx.quiet {
            let per: Vec<String> = logged
                .iter()
                .map(|t| match t.kl {
                    Some(kl) => format!("L{}-H{}-F{} {:.3} (KL {kl:.3})", t.depth, t.heads, t.ffn, t.loss),
                    None => format!("L{}-H{}-F{} {:.3}", t.depth, t.heads, t.ffn, t.loss),
                })
                .collect();
            eprintln!(
                "step {}/{} loss {value:.4} [{}] lr {lr:.2e} ({:.1} s)",
                step + 1,
                args.steps,
                per.join(", "),
                started.elapsed().as_secs_f64()
            );
        }
        term_losses.push(logged);
    }
    let train_seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating `{}`", args.out.display()))?;
    // The recorder appends `.mpk`; write a sibling, then rename it over `model.mpk`.
    let tmp = args.out.join("model-partial");
    DefaultRecorder::new()
        .record(model.into_record(), tmp.clone())
        .with_context(|| format!("writing `{}`", tmp.display()))?;
    std::fs::rename(args.out.join("model-partial.mpk"), args.out.join("model.mpk"))
        .with_context(|| format!("moving the weights into `{}`", args.out.display()))?;
    let report = SoftReport {
        command: ctx.command.clone(),
        commit: ctx.commit.clone(),
        machine: machine(),
        device: ctx.device_name.clone(),
        model: args.gguf.display().to_string(),
        exits: plan.exits.clone(),
        exit_weights: plan.weights.clone(),
        sampled_ffn: plan.sampled_ffn(),
        sampled_heads: plan.sampled_heads(),
        head_from_full_only: args.head_from_full_only,
        distill: args.distill,
        gradient_probe: probe,
        samples: plan.sampler.as_ref().map(|s| s.k()),
        term_losses,
        steps: args.steps,
        batch_size: args.batch_size,
        seq_len: args.seq_len,
        lr: args.lr,
        tokens_per_second: (args.steps * args.batch_size * args.seq_len) as f64 / train_seconds.max(1e-9),
        losses,
        train_seconds,
    };
    write_file(&args.out.join("soft.json"), &serde_json::to_vec_pretty(&report).expect("serialises"))?;
    if !ctx.quiet {
        println!(
            "trained {} steps in {train_seconds:.1} s ({:.1} tokens/s); wrote {}/{{model.mpk, soft.json}}",
            args.steps,
            report.tokens_per_second,
            args.out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use sorted_zoo::llama::LlamaWidth;

    use super::SoftPlan;
    use crate::cli::{Cli, Command, SoftArgs};

    fn soft_args(extra: &[&str]) -> SoftArgs {
        let mut argv = vec!["sorted-runner", "soft", "--out", "unused"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Some(Command::Soft(args)) => args,
            other => panic!("not a soft command: {other:?}"),
        }
    }

    fn plan(extra: &[&str]) -> anyhow::Result<SoftPlan> {
        SoftPlan::new(&soft_args(extra), 30, LlamaWidth { heads: 9, ffn: 1536 }, 3, 576)
    }

    #[test]
    fn soft_trains_every_exit_at_full_width_with_its_weight() {
        let p = plan(&["--exits", "30,10,20", "--exit-weights", "4,1,2"]).unwrap();
        let terms: Vec<(usize, usize, usize, f64)> =
            p.terms(0).iter().map(|t| (t.depth, t.heads, t.ffn, t.weight)).collect();
        // Sorted by depth, each weight staying with its exit.
        assert_eq!(terms, [(10, 9, 1536, 1.0), (20, 9, 1536, 2.0), (30, 9, 1536, 4.0)]);
        assert_eq!(p.terms(7).len(), 3);
        let equal = plan(&["--exits", "10,30"]).unwrap();
        assert!(equal.terms(0).iter().all(|t| t.weight == 1.0));
    }

    #[test]
    fn soft_sampling_draws_seeded_sub_models_over_exits_and_widths() {
        let args = ["--exits", "10,20,30", "--exit-weights", "1,1,4", "--ffn", "768,1536", "--samples", "3"];
        let with_full: Vec<&str> = args.iter().copied().chain(["--include-full"]).collect();
        let p = plan(&with_full).unwrap();
        let again = plan(&with_full).unwrap();
        for step in 0..20 {
            let terms = p.terms(step);
            assert_eq!(terms, again.terms(step), "step {step}: the same seed gives the same draws");
            assert_eq!(terms.len(), 3);
            assert!(terms.iter().any(|t| t.depth == 30 && t.ffn == 1536), "step {step}: the full model");
            for t in &terms {
                assert!([10, 20, 30].contains(&t.depth) && [768, 1536].contains(&t.ffn), "{t:?}");
                assert_eq!(t.weight, if t.depth == 30 { 4.0 } else { 1.0 });
            }
        }
        assert_eq!(p.sampled_ffn(), [768, 1536]);
        let drawn: std::collections::BTreeSet<(usize, usize)> =
            (0..50).flat_map(|s| plan(&args).unwrap().terms(s)).map(|t| (t.depth, t.ffn)).collect();
        assert_eq!(drawn.len(), 6, "every exit x width is drawn sometime: {drawn:?}");
        assert!(p.sampled_heads() == [9] && (0..20).flat_map(|s| p.terms(s)).all(|t| t.heads == 9));
    }

    #[test]
    fn soft_sampling_over_query_heads_draws_multiples_of_the_kv_heads() {
        let args = ["--exits", "15,30", "--heads", "3,6,9", "--samples", "2", "--include-full"];
        let p = plan(&args).unwrap();
        assert_eq!(p.sampled_heads(), [3, 6, 9]);
        assert_eq!(p.sampled_ffn(), [1536], "--heads alone keeps the full SwiGLU width");
        let drawn: std::collections::BTreeSet<(usize, usize)> =
            (0..60).flat_map(|s| p.terms(s)).map(|t| (t.depth, t.heads)).collect();
        assert_eq!(drawn.len(), 6, "every exit x head count is drawn sometime: {drawn:?}");
        for step in 0..20 {
            assert!(p.terms(step).iter().any(|t| (t.depth, t.heads, t.ffn) == (30, 9, 1536)), "step {step}");
        }
    }

    #[test]
    fn generate_sub_models_parse_with_full_axes_by_default_and_refuse_what_does_not_fit() {
        let full = LlamaWidth { heads: 9, ffn: 1536 };
        let parse = |text: &str| super::decode_target(text, 30, full, 3, 576);
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

    #[test]
    fn bad_soft_options_are_refused_naming_the_flag() {
        let err = |extra: &[&str]| plan(extra).err().expect("refused").to_string();
        assert!(err(&["--exits", "10,30", "--exit-weights", "1"]).contains("--exit-weights"));
        assert!(err(&["--exits", "10,30", "--exit-weights", "1,0"]).contains("--exit-weights"));
        assert!(err(&["--exits", "10,31"]).contains("--exits"));
        assert!(err(&["--exits", "10,10"]).contains("repeated"));
        assert!(err(&["--exits", "10,30", "--ffn", "768,2000"]).contains("--ffn"));
        assert!(err(&["--exits", "10,30", "--ffn", "768", "--samples", "0"]).contains("--samples"));
        // Query heads are nested per KV group: 4 does not spread over 3 groups; 12 > 9.
        assert!(err(&["--exits", "10,30", "--heads", "4,9"]).contains("--heads"));
        assert!(err(&["--exits", "10,30", "--heads", "3,12"]).contains("--heads"));
        assert!(err(&["--exits", "10,30", "--heads", "6,6"]).contains("--heads"));
        assert!(err(&["--exits", "10,30", "--distill", "1.5"]).contains("--distill"));
        assert!(err(&["--exits", "10,30", "--distill=-0.1"]).contains("--distill"));
        assert!(err(&["--exits", "10,30", "--distill", "NaN"]).contains("--distill"));
        assert_eq!(plan(&["--exits", "10,30", "--distill", "0.5"]).unwrap().options.distill, 0.5);
    }
}
