//! The language-model path: SoFT of a tiny random LLaMA on a text file, run by `train` like any
//! experiment (checkpoints, stop and resume, `eval`).

#![cfg(feature = "flex")]

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use sorted_runner::lm::{LmExperiment, TERM_LOSSES_FILE, is_lm_experiment};
use sorted_runner::report::RunReport;
use sorted_runner::{Command, TrainArgs, run_on};

use crate::common::{B, ctx, rng_guard, run_cli, train, transformer_sections};

/// A few kilobytes of English (this crate's README), as a corpus any user could point at.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")
}

fn config(sampler: &str, extra_train: &str) -> String {
    format!(
        r#"
name = "lm-tiny"
seed = 3

[data]
train = "{corpus}"
seq_len = 16
batch_size = 2
eval_tokens = 64

[model.llama]
exit_weights = [1.0, 2.0]

[model.llama.random]
hidden_size = 16
num_layers = 4
num_heads = 4
num_kv_heads = 2
head_dim = 4
intermediate_size = 24

{sections}decay = "linear"

[train]
steps = 4
{extra_train}
"#,
        corpus = corpus().display(),
        sections = transformer_sections("[2, 4]", "[12, 24]", sampler, "3e-3"),
    )
}

const SAMPLED: &str = "[sampler.uniform]\nk = 3\ninclude_full = true\nover = \"axes\"";

fn scores(run: &Path) -> Vec<(String, f64, Option<f64>)> {
    RunReport::read(run).unwrap().results.iter().map(|r| (r.sub_model.clone(), r.accuracy, r.perplexity)).collect()
}

#[test]
fn a_tiny_llama_is_sorted_fine_tuned_on_a_text_file_and_every_sub_model_scored() {
    let _guard = rng_guard();
    // Enough steps for a byte model to learn the commonest bytes.
    let text =
        config(SAMPLED, "distill = 0.5").replace("steps = 4", "steps = 40").replace("base = 3e-3", "base = 1e-2");
    assert!(is_lm_experiment(&text));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm-tiny.toml");
    std::fs::write(&path, &text).unwrap();
    let run = dir.path().join("run");
    train(&path, &run, None);
    let report = RunReport::read(&run).unwrap();
    assert_eq!(report.n_sub_models, 8);
    let full = report.results.iter().find(|r| r.sub_model == "L4-H4-F24").unwrap();
    assert!(full.relative == 1.0 && full.accuracy > 0.05, "{full:?}");
    for r in &report.results {
        let ppl = r.perplexity.unwrap();
        // A byte model after 40 steps: better than uniform over 256 bytes, far from perfect.
        assert!(ppl > 3.0 && ppl < 256.0, "{}: {ppl}", r.sub_model);
        assert!((0.0..=1.0).contains(&r.accuracy) && r.flops > 0 && r.params > 0);
    }
    let flops = |name: &str| report.results.iter().find(|r| r.sub_model == name).unwrap().flops;
    assert!(flops("L2-H2-F12") < flops("L2-H4-F12") && flops("L2-H4-F12") < flops("L2-H4-F24"));
    assert!(flops("L2-H4-F24") < flops("L4-H4-F24"));
    for file in ["config.toml", "results.json", "results.csv", "summary.md", "plot.svg", "checkpoint"] {
        assert!(run.join(file).exists(), "{file}");
    }
    assert!(std::fs::read_to_string(run.join("summary.md")).unwrap().contains("perplexity"));
    // Every step logs its three sub-models, the full one among them, with KL for the others.
    let log = std::fs::read_to_string(run.join(TERM_LOSSES_FILE)).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 40);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["step"], i as u64 + 1);
        let terms = line["terms"].as_array().unwrap();
        assert_eq!(terms.len(), 3);
        assert!(terms.iter().any(|t| t["depth"] == 4 && t["heads"] == 4 && t["ffn"] == 24 && t.get("kl").is_none()));
        assert!(terms.iter().all(|t| t["loss"].as_f64().unwrap().is_finite()));
    }
}

#[test]
fn an_lm_run_stops_and_resumes_to_the_uninterrupted_result_and_eval_repeats_it() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm-tiny.toml");
    std::fs::write(&path, config(SAMPLED, "")).unwrap();
    train(&path, &dir.path().join("whole"), None);
    train(&path, &dir.path().join("stopped"), Some(2));
    assert!(!dir.path().join("stopped/results.json").exists(), "a stopped run has no report yet");
    let args = TrainArgs { resume: Some(dir.path().join("stopped")), ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
    assert_eq!(scores(&dir.path().join("stopped")), scores(&dir.path().join("whole")));
    let args = sorted_runner::EvalArgs { run: dir.path().join("whole") };
    run_cli(Command::Eval(args)).unwrap();
    assert_eq!(scores(&dir.path().join("whole")), scores(&dir.path().join("stopped")));
}

#[test]
fn every_exit_every_step_with_the_all_sampler() {
    let _guard = rng_guard();
    let text =
        config("[sampler.all]", "").replace("heads = [2, 4]", "heads = [4]").replace("ffn = [12, 24]", "ffn = [24]");
    let exp = LmExperiment::from_toml(&text, Path::new("x.toml")).unwrap();
    assert_eq!((exp.k, exp.space.len()), (2, 2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm.toml");
    std::fs::write(&path, &text).unwrap();
    train(&path, &dir.path().join("run"), None);
    let names: Vec<String> = scores(&dir.path().join("run")).into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["L2-H4-F24", "L4-H4-F24"]);
}

fn error_of(text: &str) -> String {
    format!("{:#}", LmExperiment::from_toml(text, Path::new("my-lm.toml")).unwrap_err())
}

#[test]
fn bad_lm_configs_name_the_key() {
    // The runs below seed the backend's global RNG before they fail: hold it like every run.
    let _guard = rng_guard();
    let base = config(SAMPLED, "");
    let err = error_of(&base.replace("exit_weights = [1.0, 2.0]", "exit_weights = [1.0]"));
    assert!(err.contains("model.llama.exit_weights") && err.contains("my-lm.toml"), "{err}");
    let err = error_of(&base.replace("exit_weights = [1.0, 2.0]", "exit_weights = [1.0, -2.0]"));
    assert!(err.contains("model.llama.exit_weights"), "{err}");
    let err = error_of(&base.replace("seq_len = 16", "seq_len = 0"));
    assert!(err.contains("data.seq_len"), "{err}");
    let err = error_of(&base.replace("num_kv_heads = 2", "num_kv_heads = 3"));
    assert!(err.contains("model.llama.random"), "{err}");
    let err = error_of(&base.replace("steps = 4", "steps = 4\nthreads = 2"));
    assert!(err.contains("train.threads"), "{err}");
    let err = error_of(&base.replace("[model.llama.random]", "gguf = \"x.gguf\"\n[model.llama.random]"));
    assert!(err.contains("model.llama") && err.contains("exactly one"), "{err}");
    let err = error_of(&base.replace("exit_weights = [1.0, 2.0]", "exit_weights = [1.0, 2.0]\nsort_by = \"size\""));
    assert!(err.contains("sort_by") && err.contains("size") && err.contains("activation"), "{err}");
    let err = error_of(&base.replace("exit_weights = [1.0, 2.0]", "exit_weights = [1.0, 2.0]\nsort_batches = 3"));
    assert!(err.contains("model.llama.sort_batches") && err.contains("sort_by"), "{err}");
    let err = error_of(&base.replace("seq_len = 16", "seq_len = 16\nwindow = 3"));
    assert!(err.contains("window"), "{err}");
    // Errors found only once the model is loaded name the key too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm.toml");
    for (bad, key) in [("ffn = [12, 24]", "ffn = [12, 48]"), ("heads = [2, 4]", "heads = [3, 4]")] {
        std::fs::write(&path, base.replace(bad, key)).unwrap();
        let args = TrainArgs {
            config: Some(path.clone()),
            out: Some(dir.path().join("run")),
            force: true,
            ..TrainArgs::default()
        };
        let err = format!("{:#}", run_cli(Command::Train(args)).unwrap_err());
        assert!(err.contains("[space]") && err.contains("lm.toml"), "{err}");
    }
    std::fs::write(&path, base.replace(&corpus().display().to_string(), "/no/such/corpus.txt")).unwrap();
    let args = TrainArgs { config: Some(path.clone()), out: Some(dir.path().join("run2")), ..TrainArgs::default() };
    let err = format!("{:#}", run_cli(Command::Train(args)).unwrap_err());
    assert!(err.contains("/no/such/corpus.txt"), "{err}");
}

/// A tiny decoder with a byte tokenizer written as a GGUF file, as a pretrained model would be.
fn tiny_gguf(dir: &Path) -> PathBuf {
    use sorted_zoo::llama::{GgmlType, LlamaExportOptions, SortedLlamaConfig, export_llama_gguf};
    let tokens: Vec<String> = (0..=255u8).map(|b| sorted_data::gpt2_byte_char(b).to_string()).collect();
    let bpe = sorted_data::ByteLevelBpe::new(tokens, &[] as &[&str], "bytes").unwrap();
    let device = Default::default();
    <Flex as burn::tensor::backend::Backend>::seed(&device, 5);
    let model = SortedLlamaConfig::new(256, 16, 4, 4, 2, 4, 24).init::<Flex>(&device);
    let full = sorted_zoo::llama::LlamaSubModels::of(&model).full().unwrap();
    let path = dir.join("tiny.gguf");
    let options = LlamaExportOptions { tokenizer: Some(&bpe), ..Default::default() };
    export_llama_gguf(&model, &full, &options, GgmlType::F32, &path).unwrap();
    path
}

/// [`config`] with its decoder read from [`tiny_gguf`] (written into `dir`) instead of built at
/// random, with `exit_weights` (that line, or nothing) before the `gguf` key; returns the GGUF's
/// path and the config file's.
fn from_tiny_gguf(dir: &Path, exit_weights: &str) -> (PathBuf, PathBuf) {
    let gguf = tiny_gguf(dir);
    let text = config(SAMPLED, "").replace("[model.llama.random]\nhidden_size = 16\nnum_layers = 4\nnum_heads = 4\nnum_kv_heads = 2\nhead_dim = 4\nintermediate_size = 24\n", "").replace(
        "exit_weights = [1.0, 2.0]\n",
        &format!("{exit_weights}gguf = \"{}\"\n", gguf.display()),
    );
    let path = dir.join("lm.toml");
    std::fs::write(&path, text).unwrap();
    (gguf, path)
}

#[test]
fn issue_28_a_gguf_experiments_space_and_sampler_are_built_once_for_the_files_width() {
    use std::sync::Arc;
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let (gguf, path) = from_tiny_gguf(dir.path(), "");
    let text = std::fs::read_to_string(&path).unwrap();
    // Validation reads the file's `llama.embedding_length` (16): the space and the sampler built
    // then are the ones training and evaluation use once the decoder is loaded.
    let exp = LmExperiment::from_toml(&text, &path).unwrap();
    assert_eq!(exp.space.hidden(), [16]);
    let (model, _) = exp.llama().load::<Flex>(&Default::default()).unwrap();
    let space = exp.space_for(model.embedding.dims()[1]).unwrap();
    assert_eq!(space, exp.space);
    assert!(Arc::ptr_eq(&exp.sampler_for(&space).unwrap(), &exp.sampler));
    assert_eq!(exp.sampler.sample(0).iter().map(|s| s.hidden).collect::<Vec<_>>(), [16; 3]);

    // A `[space]` larger than the file's decoder is refused at validation, as the load would
    // refuse it (`SortedLlamaConfig::check_space`), naming the axis, the file and the config.
    let error_in = |text: &str| format!("{:#}", LmExperiment::from_toml(text, &path).unwrap_err());
    for (from, to, axis) in [
        ("depths = [2, 4]", "depths = [2, 6]", "depth (layers): the model allocates 4, the space needs 6"),
        ("ffn = [12, 24]", "ffn = [12, 48]", "ffn: the model allocates 24, the space needs 48"),
        ("heads = [2, 4]", "heads = [3, 4]", "3 query heads cannot be spread over 2 KV groups"),
        ("heads = [2, 4]", "heads = [2, 8]", "heads: the model allocates 4, the space needs 8"),
    ] {
        let err = error_in(&text.replace(from, to));
        assert!(err.contains(axis) && err.contains("`space`") && err.contains("tiny.gguf"), "{err}");
        assert!(err.contains("lm.toml"), "{err}");
    }
    // A file that is not GGUF names the key and the file.
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"not a model").unwrap();
    let err = error_in(&text.replace(&gguf.display().to_string(), &garbage.display().to_string()));
    assert!(err.contains("model.llama.gguf") && err.contains("garbage.gguf"), "{err}");
    // A missing file is validated as before (configs are checked without their data): the
    // width is a placeholder until the load, which reports the missing file.
    let missing = text.replace(&gguf.display().to_string(), "/no/such/model.gguf");
    let exp = LmExperiment::from_toml(&missing, &path).unwrap();
    assert_eq!(exp.space.hidden(), [1]);
    // `space.hidden` given: it is the width, as before, and the file's is checked against it.
    let exp = LmExperiment::from_toml(&text.replace("ffn = [12, 24]", "ffn = [12, 24]\nhidden = [16]"), &path).unwrap();
    assert_eq!(exp.space.hidden(), [16]);
    let err = error_in(&text.replace("ffn = [12, 24]", "ffn = [12, 24]\nhidden = [32]"));
    assert!(err.contains("the model allocates 16, the space needs 32") && err.contains("tiny.gguf"), "{err}");
    let err = error_in(&text.replace("ffn = [12, 24]", "ffn = [12, 48]\nhidden = [16]"));
    assert!(err.contains("ffn: the model allocates 24, the space needs 48"), "{err}");
}

#[test]
fn issue_30_a_sub_model_of_an_lm_run_exports_to_hugging_face_and_gguf() {
    use burn::prelude::*;
    use sorted_runner::ExportArgs;
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let (gguf, path) = from_tiny_gguf(dir.path(), "exit_weights = [1.0, 2.0]\n");
    let run = dir.path().join("run");
    train(&path, &run, None);
    let export = |args: ExportArgs| run_cli(Command::Export(args));
    let out = dir.path().join("exported");
    let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: "L2-H2-F12".into(), out: Some(out.clone()) };
    export(args).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("hf/config.json")).unwrap()).unwrap();
    assert_eq!((config["num_hidden_layers"].as_u64(), config["num_attention_heads"].as_u64()), (Some(2), Some(2)));
    assert_eq!(config["intermediate_size"].as_u64(), Some(12));
    for file in ["hf/model.safetensors", "hf/tokenizer.json", "model-f16.gguf", "model-q8_0.gguf"] {
        assert!(out.join(file).exists(), "{file}");
    }
    // The F16 GGUF reloads as a decoder of that sub-model's size, and predicts like the run's
    // sub-model (F16 rounding aside).
    let device = Default::default();
    let (exported, _) = sorted_zoo::llama::load_gguf::<Flex>(&out.join("model-f16.gguf"), &device).unwrap();
    let full_exported = exported.full_sub_model();
    assert_eq!((exported.layers.len(), full_exported.heads, full_exported.ffn), (2, 2, 12));
    let (model, _) = sorted_zoo::llama::load_gguf::<Flex>(&gguf, &device).unwrap();
    let model = sorted_sched::Checkpoint::latest(&run).unwrap().load_model(model, &device).unwrap();
    let ids = Tensor::<Flex, 2, Int>::from_ints([[72, 101, 108, 108, 111]], &device);
    let sub = sorted_nn::TransformerSpace::new(
        sorted_nn::TransformerSpaceConfig { depths: vec![2, 4], heads: vec![2, 4], ffn: vec![12, 24], hidden: None },
        16,
    )
    .unwrap()
    .parse_sub_model("L2-H2-F12")
    .unwrap();
    let a = model.forward_exits(ids.clone(), &[2], &sub).remove(0);
    let b = exported.forward_exits(ids, &[2], &full_exported).remove(0);
    let diff = (a - b).abs().max().into_scalar().elem::<f32>();
    assert!(diff < 1e-2, "{diff}");
    // The un-tuned GGUF exports too; a sub-model the decoder cannot run is refused by name.
    let args = ExportArgs {
        run: None,
        gguf: Some(gguf.clone()),
        sub_model: "L3".into(),
        out: Some(dir.path().join("untuned")),
    };
    export(args).unwrap();
    let args = ExportArgs { run: None, gguf: Some(gguf), sub_model: "L3-H3".into(), out: Some(dir.path().join("bad")) };
    let err = format!("{:#}", export(args).unwrap_err());
    assert!(err.contains("--sub-model `L3-H3`"), "{err}");
}

#[test]
fn issue_31_a_sorted_lm_run_records_its_scores_and_resumes_without_sorting_again() {
    use sorted_runner::SORT_SCORES_FILE;
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm-tiny.toml");
    let text =
        config(SAMPLED, "").replace("exit_weights = [1.0, 2.0]", "exit_weights = [1.0, 2.0]\nsort_by = \"taylor\"");
    std::fs::write(&path, text).unwrap();
    train(&path, &dir.path().join("whole"), None);
    let unit_scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("whole").join(SORT_SCORES_FILE)).unwrap())
            .unwrap();
    // `sort_batches` defaults to 4.
    assert_eq!((unit_scores["score"].as_str(), unit_scores["batches"].as_u64()), (Some("taylor"), Some(4)));
    let layers = unit_scores["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    for layer in layers {
        assert_eq!(layer["heads"].as_array().unwrap().len(), 4);
        let ffn: Vec<f64> = layer["ffn"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(ffn.len() == 24 && ffn.iter().all(|v| v.is_finite() && *v >= 0.0) && ffn.iter().any(|v| *v > 0.0));
    }
    train(&path, &dir.path().join("stopped"), Some(2));
    std::fs::remove_file(dir.path().join("stopped").join(SORT_SCORES_FILE)).unwrap();
    let args = TrainArgs { resume: Some(dir.path().join("stopped")), ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
    assert!(!dir.path().join("stopped").join(SORT_SCORES_FILE).exists(), "resume sorted again");
    assert_eq!(scores(&dir.path().join("stopped")), scores(&dir.path().join("whole")));
    // `eval` of a sorted run loads its checkpoint and sorts nothing.
    let args = sorted_runner::EvalArgs { run: dir.path().join("stopped") };
    run_cli(Command::Eval(args)).unwrap();
    assert!(!dir.path().join("stopped").join(SORT_SCORES_FILE).exists(), "eval sorted");
    assert_eq!(scores(&dir.path().join("stopped")), scores(&dir.path().join("whole")));
}

#[test]
fn issue_31_sort_writes_a_sorted_decoder_that_computes_the_same_function() {
    use burn::prelude::*;
    use sorted_runner::SortArgs;
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let (gguf, path) = from_tiny_gguf(dir.path(), "");
    let out = dir.path().join("sorted");
    let args = SortArgs { config: path.clone(), by: Some("taylor".into()), out: out.clone() };
    run_cli(Command::Sort(args)).unwrap();
    let scores: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(sorted_runner::SORT_SCORES_FILE)).unwrap()).unwrap();
    assert_eq!(scores["score"], "taylor");
    let device = Default::default();
    let (original, _) = sorted_zoo::llama::load_gguf::<Flex>(&gguf, &device).unwrap();
    let (sorted, _) = sorted_zoo::llama::load_gguf::<Flex>(&out.join("model.gguf"), &device).unwrap();
    let ids = Tensor::<Flex, 2, Int>::from_ints([[72, 101, 108, 108, 111, 32, 119]], &device);
    let full = original.full_sub_model();
    let a = original.forward_exits(ids.clone(), &[4], &full).remove(0);
    let b = sorted.forward_exits(ids, &[4], &full).remove(0);
    let diff = (a - b).abs().max().into_scalar().elem::<f32>();
    assert!(diff < 1e-4, "sorting changed the full model by {diff}");
    // A BERT config is refused with a pointer to `sort_by`.
    std::fs::write(&path, "name = \"x\"\nseed = 1\n[model.bert]\n").unwrap();
    let args = SortArgs { config: path, by: None, out };
    let err = format!("{:#}", run_cli(Command::Sort(args)).unwrap_err());
    assert!(err.contains("sort_by"), "{err}");
}

#[test]
fn issue_32_two_peers_sorted_fine_tune_the_one_peer_model() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lm-tiny.toml");
    std::fs::write(&path, config(SAMPLED, "")).unwrap();
    train(&path, &dir.path().join("one"), None);
    let args = TrainArgs {
        config: Some(path.clone()),
        out: Some(dir.path().join("two")),
        devices: vec!["cpu".into(), "cpu".into()],
        ..TrainArgs::default()
    };
    run_cli(Command::Train(args)).unwrap();
    let (one, two) = (scores(&dir.path().join("one")), scores(&dir.path().join("two")));
    assert_eq!(one.len(), two.len());
    for (a, b) in one.iter().zip(&two) {
        let (pa, pb) = (a.2.unwrap(), b.2.unwrap());
        assert!(a.0 == b.0 && (pa - pb).abs() <= 1e-3 * pa, "{}: perplexity {pa} vs {pb}", a.0);
    }
    // Rank 0 logs its half of every step's windows.
    let log = std::fs::read_to_string(dir.path().join("two").join(TERM_LOSSES_FILE)).unwrap();
    assert_eq!(log.lines().count(), 4);
    // A batch of 2 windows does not split over 3 peers.
    std::fs::write(&path, config(SAMPLED, "peers = 3")).unwrap();
    let err = format!("{:#}", LmExperiment::from_toml(&std::fs::read_to_string(&path).unwrap(), &path).unwrap_err());
    assert!(err.contains("data.batch_size") && err.contains("train.peers = 3"), "{err}");
}

#[test]
fn issue_29_generate_decodes_on_the_host_in_f32_and_8_bit_and_drafts_losslessly() {
    // f32 weights; 8-bit weights with 8-bit activations; 8-bit weights with f32 activations.
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_gguf(dir.path());
    let modes = [
        (&[][..], "greedy"),
        (&["--q8"], "greedy (8-bit weights)"),
        (&["--q8", "--f32-activations"], "greedy (8-bit weights, f32 activations)"),
    ];
    for (i, (flags, first)) in modes.into_iter().enumerate() {
        let bench = dir.path().join(format!("bench-{i}"));
        let mut argv: Vec<String> =
            ["sorted-runner", "--quiet", "generate", "--raw", "--max-new", "6", "--draft-depth", "2"]
                .map(String::from)
                .into();
        for (flag, value) in [("--gguf", &gguf), ("--bench", &bench)] {
            argv.extend([flag.to_string(), value.display().to_string()]);
        }
        argv.extend(["--prompt", "hello", "--prompt", "sorted nets"].map(String::from));
        argv.extend(flags.iter().map(|f| f.to_string()));
        let cli = sorted_runner::Cli::try_parse_from(&argv).unwrap();
        run_on::<B>(&cli, Default::default(), &ctx()).unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(bench.join("decode.json")).unwrap()).unwrap();
        let rows = report["rows"].as_array().unwrap();
        let modes: Vec<&str> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
        assert_eq!(modes[0], first, "{modes:?}");
        // Burn's decoding layout is timed beside the host decoder; with f32 weights both decode
        // the same tokens (the tiny model has no near-ties), and drafts are lossless either way.
        assert!(modes.iter().any(|m| m.contains("Burn decoding layout")), "{modes:?}");
        for row in rows {
            let reference = row["reference"].as_bool().unwrap();
            assert!(reference || row["identical"].as_bool().unwrap(), "{row}");
        }
        assert!(modes.iter().any(|m| m.starts_with("speculative (draft depth 2")), "{modes:?}");
    }
}

/// The smallest Shakespeare folder `sorted_data::Shakespeare::from_dir` accepts, written into
/// `dir`: the paragraphs of [`corpus`] dealt as two training "works" and the two held-out
/// works it requires, as `*_gut.txt` files.
fn tiny_shakespeare(dir: &Path) -> PathBuf {
    let folder = dir.join("shakespeare");
    std::fs::create_dir(&folder).unwrap();
    let readme = std::fs::read_to_string(corpus()).unwrap();
    let paragraphs: Vec<&str> = readme.split("\n\n").filter(|p| !p.trim().is_empty()).collect();
    let works =
        ["hamlet", "macbeth", sorted_data::SHAKESPEARE_HELDOUT_WORKS[0], sorted_data::SHAKESPEARE_HELDOUT_WORKS[1]];
    for (i, work) in works.into_iter().enumerate() {
        let text: Vec<&str> = paragraphs.iter().skip(i).step_by(works.len()).take(6).copied().collect();
        let path = folder.join(format!("{work}{}", sorted_data::SHAKESPEARE_FILE_SUFFIX));
        std::fs::write(path, format!("{}\n\n{}\n", work.to_uppercase(), text.join("\n\n"))).unwrap();
    }
    folder
}

#[test]
fn issue_28_soft_probes_gradients_with_the_experiments_sampler_then_trains() {
    use clap::Parser;
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_gguf(dir.path());
    let shakespeare = tiny_shakespeare(dir.path());
    let run = dir.path().join("run");
    let mut argv: Vec<String> = ["sorted-runner", "--quiet", "soft", "--probe-gradients"].map(String::from).into();
    for (flag, value) in [("--gguf", &gguf), ("--shakespeare", &shakespeare), ("--out", &run)] {
        argv.extend([flag.to_string(), value.display().to_string()]);
    }
    let flags = [
        "--exits",
        "2,4",
        "--heads",
        "2,4",
        "--ffn",
        "12,24",
        "--samples",
        "3",
        "--include-full",
        "--steps",
        "2",
        "--seq-len",
        "16",
        "--batch-size",
        "2",
        "--eval-tokens",
        "32",
        "--lr",
        "1e-3",
        "--seed",
        "7",
    ];
    argv.extend(flags.map(String::from));
    let cli = sorted_runner::Cli::try_parse_from(&argv).unwrap();
    run_on::<B>(&cli, Default::default(), &ctx()).unwrap();

    // One entry per term the experiment's sampler draws for step 0: 3, the full model among them.
    let probes: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(run.join("gradient_probe.json")).unwrap()).unwrap();
    assert_eq!(probes.len(), 3, "{probes:?}");
    let field = |p: &serde_json::Value, key: &str| p[key].as_u64().unwrap_or_else(|| panic!("{key} of {p}"));
    let name = |p: &serde_json::Value| format!("L{}-H{}-F{}", field(p, "depth"), field(p, "heads"), field(p, "ffn"));
    let mut probed: Vec<String> = probes.iter().map(name).collect();
    probed.sort();
    assert!(probed.contains(&"L4-H4-F24".to_string()), "{probed:?}");
    let shallowest = probes.iter().map(|p| field(p, "depth")).min().unwrap();
    for p in &probes {
        for key in ["loss", "shared_layers_norm", "head_norm"] {
            let v = p[key].as_f64().unwrap_or_else(|| panic!("{key} of {p}"));
            assert!(v.is_finite() && v > 0.0, "{key} of {}: {v}", name(p));
        }
        assert_eq!(field(p, "shared_layers"), shallowest, "{p}");
        assert_eq!(field(p, "hidden"), 16, "{p}");
    }

    // Then the run trained: the same sub-models on the same first batch (the probe drew from
    // the experiment's sampler, not a sampler of its own), then every step, then the reports.
    let log = std::fs::read_to_string(run.join(TERM_LOSSES_FILE)).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let mut first: Vec<String> = lines[0]["terms"].as_array().unwrap().iter().map(name).collect();
    first.sort();
    assert_eq!(first, probed, "step 1 trained other sub-models than the probe's");
    for term in lines[0]["terms"].as_array().unwrap() {
        let probe = probes.iter().find(|p| name(p) == name(term)).unwrap();
        let (a, b) = (probe["loss"].as_f64().unwrap(), term["loss"].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-4 * a, "{}: probe loss {a}, step 1 loss {b}", name(term));
    }
    for file in ["config.toml", "results.json", "results.csv", "summary.md", "plot.svg", "checkpoint"] {
        assert!(run.join(file).exists(), "{file}");
    }
    let report = RunReport::read(&run).unwrap();
    assert_eq!(report.n_sub_models, 8);
    for p in &probed {
        let row = report.results.iter().find(|r| &r.sub_model == p).unwrap_or_else(|| panic!("{p} not scored"));
        assert!(row.perplexity.unwrap().is_finite(), "{row:?}");
    }
    // `train --resume` and `eval` read the run's `config.toml`: the flags' experiment.
    let exp = LmExperiment::from_toml(&std::fs::read_to_string(run.join("config.toml")).unwrap(), &run).unwrap();
    assert_eq!((exp.k, exp.space.len(), exp.config.train.steps), (3, 8, 2));
}
