//! `soft`: sorted fine-tuning (SoFT) from command-line flags, a thin alias of `train` on the
//! language-model experiment the flags describe (written to the run folder's `config.toml`,
//! so `train --resume` and `eval` work on it as on any run).

use std::path::Path;

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use sorted_data::LmDataConfig;
use sorted_nn::TransformerSpaceConfig;
use sorted_sched::{
    AdamOptions, AllSamplerConfig, Decay, LrSchedule, OptimizerConfig, SamplerConfig, TrainConfig, UniformOver,
    UniformSamplerConfig,
};
use sorted_zoo::llama::{GgufFile, LlamaModelConfig, SoftTerm, SortedLlamaConfig, gradient_probe};

use crate::cli::SoftArgs;
use crate::lm::{LmExperiment, LmExperimentConfig, LmModelConfig};
use crate::provenance::{RunContext, write_file};
use crate::train::TrainOptions;

/// The experiment `soft`'s flags describe, for a decoder of `full` sizes: the exits (sorted,
/// each keeping its weight); `all` exits at full width every step, or (with `--ffn` and/or
/// `--heads`) `--samples` sub-models drawn per axis; AdamW with warm-up over a tenth of the
/// steps, then linear decay to 0.
///
/// # Errors
/// A flag that does not fit, naming it.
pub fn soft_experiment(args: &SoftArgs, full: &SortedLlamaConfig) -> anyhow::Result<LmExperimentConfig> {
    let n_layers = full.num_layers;
    anyhow::ensure!(
        !args.exits.is_empty() && args.exits.iter().all(|&e| (1..=n_layers).contains(&e)),
        "--exits {:?}: expected depths in 1..={n_layers}",
        args.exits
    );
    let weights = if args.exit_weights.is_empty() { vec![1.0; args.exits.len()] } else { args.exit_weights.clone() };
    anyhow::ensure!(
        weights.len() == args.exits.len(),
        "--exit-weights has {} values for {} exits (--exits {:?}); give one per exit",
        weights.len(),
        args.exits.len(),
        args.exits
    );
    let mut pairs: Vec<(usize, f64)> = args.exits.iter().copied().zip(weights).collect();
    pairs.sort_by_key(|p| p.0);
    anyhow::ensure!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "--exits {:?}: an exit is repeated", args.exits);
    let (depths, exit_weights): (Vec<usize>, Vec<f64>) = pairs.into_iter().unzip();
    let options = |flag: &str, given: &[usize], full: usize| -> anyhow::Result<Vec<usize>> {
        let mut v = if given.is_empty() { vec![full] } else { given.to_vec() };
        v.sort_unstable();
        anyhow::ensure!(
            v.windows(2).all(|w| w[0] < w[1]) && v.iter().all(|&x| (1..=full).contains(&x)),
            "{flag} {given:?}: expected distinct values in 1..={full}"
        );
        Ok(v)
    };
    let ffn = options("--ffn", &args.ffn, full.intermediate_size)?;
    let heads = options("--heads", &args.heads, full.num_heads)?;
    let kv = full.num_kv_heads;
    anyhow::ensure!(
        heads.iter().all(|h| h.is_multiple_of(kv)),
        "--heads {:?}: expected multiples of the {kv} KV heads (query heads are nested per KV group)",
        args.heads
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.distill),
        "--distill {}: expected a weight in [0, 1] (0: no distillation)",
        args.distill
    );
    anyhow::ensure!(args.samples >= 1, "--samples 0: expected at least 1 sub-model per step");
    let sampler = if args.ffn.is_empty() && args.heads.is_empty() {
        SamplerConfig::All(AllSamplerConfig {})
    } else {
        SamplerConfig::Uniform(UniformSamplerConfig {
            k: args.samples,
            include_full: args.include_full,
            over: UniformOver::Axes,
        })
    };
    let mut train: TrainConfig = toml::from_str(&format!("steps = {}", args.steps)).expect("a [train] section");
    train.distill = args.distill;
    Ok(LmExperimentConfig {
        name: "soft".into(),
        seed: args.seed,
        data: LmDataConfig {
            shakespeare: Some(args.shakespeare.display().to_string()),
            train: None,
            eval: None,
            held_out: 0.1,
            seq_len: args.seq_len,
            batch_size: args.batch_size,
            eval_tokens: args.eval_tokens,
        },
        model: LmModelConfig::Llama(LlamaModelConfig {
            gguf: Some(args.gguf.display().to_string()),
            random: None,
            exit_weights: if exit_weights.iter().all(|&w| w == 1.0) { Vec::new() } else { exit_weights },
            head_from_full_only: args.head_from_full_only,
            sort_by: None,
            sort_batches: None,
        }),
        space: TransformerSpaceConfig { depths, heads, ffn, hidden: None },
        sampler,
        optimizer: OptimizerConfig::Adamw(AdamOptions {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: Some(0.0),
        }),
        lr: LrSchedule {
            base: args.lr,
            warmup_steps: (args.steps as u64 / 10).max(1),
            decay: Decay::Linear,
            final_ratio: 0.0,
        },
        train,
        eval: Default::default(),
    })
}

/// `soft`: trains the experiment of [`soft_experiment`] into `--out` (a run folder: config,
/// checkpoints, reports of every sub-model, `term_losses.jsonl`), after the gradient probe
/// when asked (`gradient_probe.json`).
///
/// # Errors
/// A missing model or corpus, a flag that does not fit, an output folder in use.
pub fn soft_cmd<B: AutodiffBackend>(args: &SoftArgs, device: &B::Device, ctx: &RunContext) -> anyhow::Result<()> {
    // The sizes only: the metadata, not the weights (the run loads those).
    let metadata = GgufFile::read_metadata(&args.gguf)
        .with_context(|| "`cargo xtask data smollm2` fetches SmolLM2-135M-Instruct")?;
    let full = SortedLlamaConfig::from_gguf_metadata(&metadata)?;
    let config = soft_experiment(args, &full)?;
    let exp = LmExperiment::from_config(config, Path::new("soft (command-line flags)"))?;
    if !ctx.quiet {
        eprintln!(
            "soft is `train` on this experiment (saved as {}/config.toml):\n{}",
            args.out.display(),
            exp.to_toml()
        );
    }
    let options = TrainOptions {
        resume: false,
        stop_after: args.stop_after,
        quiet: ctx.quiet,
        force: args.force,
        distributed: None,
    };
    let folder = crate::run_folder::RunFolder::create(&args.out, options.force)?;
    if args.probe_gradients {
        probe::<B>(&exp, &args.out, device, ctx)?;
    }
    crate::lm::train_lm_in_folder::<B>(&exp, folder, &options, device, ctx)
}

/// Writes each first-step term's gradient norms on the first batch to `gradient_probe.json`.
fn probe<B: AutodiffBackend>(
    exp: &LmExperiment,
    out: &Path,
    device: &B::Device,
    ctx: &RunContext,
) -> anyhow::Result<()> {
    let (model, bpe) = exp.llama().load::<B>(device)?;
    let space = exp.space_for(model.embedding.dims()[1])?;
    let data = exp.config.data.load(&bpe)?;
    let cfg = &exp.config;
    let batch = data.train.batch::<B>(&data.train.epoch_order(cfg.data.batch_size, cfg.seed).batch_indices(0), device);
    let sampler = exp.sampler_for(&space)?;
    let terms: Vec<SoftTerm> = sampler
        .sample(0)
        .into_iter()
        .map(|sub| SoftTerm { weight: exp.llama().exit_weight(&space, sub.depth), sub })
        .collect();
    let probes =
        gradient_probe(&model, batch.inputs, batch.targets, &terms, exp.llama().soft_options(cfg.train.distill));
    if !ctx.quiet {
        for p in &probes {
            eprintln!(
                "gradient norm of {} (loss {:.3}): layers 1-{} (shared by every exit) {:.4e}, final norm + embedding {:.4e}",
                p.sub, p.loss, p.shared_layers, p.shared_layers_norm, p.head_norm
            );
        }
    }
    write_file(&out.join("gradient_probe.json"), &serde_json::to_vec_pretty(&probes).expect("serialises"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use sorted_sched::SamplerConfig;
    use sorted_zoo::llama::SortedLlamaConfig;

    use super::soft_experiment;
    use crate::cli::{Cli, Command, SoftArgs};
    use crate::lm::{LmExperiment, LmModelConfig};

    fn soft_args(extra: &[&str]) -> SoftArgs {
        let mut argv = vec!["sorted-runner", "soft", "--out", "unused"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Some(Command::Soft(args)) => args,
            other => panic!("not a soft command: {other:?}"),
        }
    }

    fn experiment(extra: &[&str]) -> anyhow::Result<LmExperiment> {
        let config = soft_experiment(&soft_args(extra), &SortedLlamaConfig::smollm2_135m())?;
        Ok(LmExperiment::from_config(config, std::path::Path::new("soft"))?)
    }

    #[test]
    fn soft_trains_every_exit_at_full_width_with_its_weight() {
        let exp = experiment(&["--exits", "30,10,20", "--exit-weights", "4,1,2"]).unwrap();
        let LmModelConfig::Llama(llama) = &exp.config.model;
        // Sorted by depth, each weight staying with its exit; every exit every step.
        assert_eq!(exp.config.space.depths, [10, 20, 30]);
        assert_eq!(llama.exit_weights, [1.0, 2.0, 4.0]);
        assert_eq!((exp.config.space.heads.as_slice(), exp.config.space.ffn.as_slice()), (&[9][..], &[1536][..]));
        assert!(matches!(exp.config.sampler, SamplerConfig::All(_)) && exp.k == 3);
        // Warm-up over a tenth of the steps, then linear decay to 0 (the old `soft` schedule).
        let lr = &exp.config.lr;
        assert_eq!(lr.warmup_steps, 6);
        assert!((lr.lr(59, 60) / lr.base - 1.0 / 54.0).abs() < 1e-12);
    }

    #[test]
    fn soft_sampling_draws_per_axis_over_exits_and_widths() {
        let exp =
            experiment(&["--exits", "10,20,30", "--ffn", "768,1536", "--heads", "3,9", "--samples", "3"]).unwrap();
        assert_eq!(exp.space.len(), 12);
        assert!(matches!(&exp.config.sampler, SamplerConfig::Uniform(u) if u.k == 3 && !u.include_full));
        assert_eq!(exp.config.space.heads, [3, 9]);
    }

    #[test]
    fn bad_soft_options_are_refused_naming_the_flag() {
        let err = |extra: &[&str]| experiment(extra).expect_err("refused").to_string();
        assert!(err(&["--exits", "10,30", "--exit-weights", "1"]).contains("--exit-weights"));
        assert!(err(&["--exits", "10,30", "--exit-weights", "1,0"]).contains("exit_weights"));
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
        assert_eq!(experiment(&["--exits", "10,30", "--distill", "0.5"]).unwrap().config.train.distill, 0.5);
    }
}
