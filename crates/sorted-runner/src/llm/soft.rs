//! `soft`: sorted fine-tuning of the decoder (SoFT): weighted exits, or SortedNet sampling over
//! exits x query heads x FFN widths, with optional self-distillation and gradient probes.

use std::time::Instant;

use anyhow::Context;
use burn::prelude::*;
use serde::Serialize;
use sorted_data::{LmChunks, Shakespeare};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::llama::{HeadGradient, LlamaWidth, SoftOptions, SoftTerm, SortedLlama, soft_loss_with};

use crate::provenance::RunContext;
use crate::provenance::{machine, write_file};

use super::load_lm;

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
    /// The sub-model (exit depth, query heads, SwiGLU width, hidden width).
    #[serde(flatten)]
    pub sub: TransformerSubModel,
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
    /// The sub-model (exit depth, query heads, SwiGLU width, hidden width).
    #[serde(flatten)]
    pub sub: TransformerSubModel,
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
    let shared = terms.iter().map(|t| t.sub.depth).min().unwrap_or(0);
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
                sub: term.sub,
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
    /// Every exit at full width, in the order of `exits`.
    exit_subs: Vec<TransformerSubModel>,
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
        let at_full_width = TransformerSpaceConfig {
            depths: exits.clone(),
            heads: vec![full.heads],
            ffn: vec![full.ffn],
            hidden: None,
        };
        let exit_space = TransformerSpace::new(at_full_width, d)?;
        let exit_subs =
            (0..exits.len()).map(|i| exit_space.sub_model_from_indices([i, 0, 0, 0])).collect::<Result<Vec<_>, _>>()?;
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
        Ok(Self { exits, weights, exit_subs, space, sampler, options })
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
                .zip(&self.exit_subs)
                .map(|((_, &weight), &sub)| SoftTerm { sub, weight })
                .collect(),
            Some(sampler) => sampler
                .sample(step)
                .into_iter()
                .map(|sub| SoftTerm { weight: self.weight_of(sub.depth), sub })
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
                    "gradient norm of {} (loss {:.3}): layers 1-{} (shared by every exit) {:.4e}, final norm + embedding {:.4e}",
                    p.sub, p.loss, p.shared_layers, p.shared_layers_norm, p.head_norm
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
                sub: t.sub,
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
                    Some(kl) => format!("{} {:.3} (KL {kl:.3})", t.sub, t.loss),
                    None => format!("{} {:.3}", t.sub, t.loss),
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
            p.terms(0).iter().map(|t| (t.sub.depth, t.sub.heads, t.sub.ffn, t.weight)).collect();
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
            assert!(terms.iter().any(|t| t.sub.depth == 30 && t.sub.ffn == 1536), "step {step}: the full model");
            for t in &terms {
                assert!([10, 20, 30].contains(&t.sub.depth) && [768, 1536].contains(&t.sub.ffn), "{t:?}");
                assert_eq!(t.weight, if t.sub.depth == 30 { 4.0 } else { 1.0 });
            }
        }
        assert_eq!(p.sampled_ffn(), [768, 1536]);
        let drawn: std::collections::BTreeSet<(usize, usize)> =
            (0..50).flat_map(|s| plan(&args).unwrap().terms(s)).map(|t| (t.sub.depth, t.sub.ffn)).collect();
        assert_eq!(drawn.len(), 6, "every exit x width is drawn sometime: {drawn:?}");
        assert!(p.sampled_heads() == [9] && (0..20).flat_map(|s| p.terms(s)).all(|t| t.sub.heads == 9));
    }

    #[test]
    fn soft_sampling_over_query_heads_draws_multiples_of_the_kv_heads() {
        let args = ["--exits", "15,30", "--heads", "3,6,9", "--samples", "2", "--include-full"];
        let p = plan(&args).unwrap();
        assert_eq!(p.sampled_heads(), [3, 6, 9]);
        assert_eq!(p.sampled_ffn(), [1536], "--heads alone keeps the full SwiGLU width");
        let drawn: std::collections::BTreeSet<(usize, usize)> =
            (0..60).flat_map(|s| p.terms(s)).map(|t| (t.sub.depth, t.sub.heads)).collect();
        assert_eq!(drawn.len(), 6, "every exit x head count is drawn sometime: {drawn:?}");
        for step in 0..20 {
            assert!(
                p.terms(step).iter().any(|t| (t.sub.depth, t.sub.heads, t.sub.ffn) == (30, 9, 1536)),
                "step {step}"
            );
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
