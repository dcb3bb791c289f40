//! The text path: a tiny random BERT trained on the embedded Rotten Tomatoes slice.

#![cfg(feature = "flex")]

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use sorted_runner::report::RunReport;
use sorted_runner::text::{TextExperiment, is_text_experiment, train_text_experiment};

use crate::common::{B, ctx, rng_guard, run_cli, transformer_sections};

fn vocab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sorted-data/tests/data/vocab-tiny.txt")
}

fn config(sampler: &str) -> String {
    format!(
        r#"
name = "rt-tiny"
seed = 7

[data]
source = "embedded"
max_len = 24
batch_size = 16
train_limit = 64
eval_limit = 40

[model.bert]
vocab = "{vocab}"
dropout = 0.0

[model.bert.random]
hidden_size = 16
num_layers = 2
num_heads = 4
intermediate_size = 32
max_position_embeddings = 32

{sections}
[train]
steps = 3
threads = 2

[eval]
batch_size = 16
"#,
        vocab = vocab().display(),
        sections = transformer_sections("[1, 2]", "[16, 32]", sampler, "1e-3"),
    )
}

const UNIFORM: &str = "[sampler.uniform]\nk = 2\nover = \"axes\"";

#[test]
fn a_tiny_bert_trains_and_reports_every_sub_model() {
    let text = config(UNIFORM);
    assert!(is_text_experiment(&text));
    let exp = TextExperiment::from_toml(&text, Path::new("rt-tiny.toml")).unwrap();
    assert_eq!(exp.space.len(), 8);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train_text_experiment::<B>(&exp, Some(&run), &Default::default(), &Default::default(), &ctx()).unwrap();
    let report = RunReport::read(&run).unwrap();
    assert_eq!(report.n_sub_models, 8);
    let full = report.results.iter().find(|r| r.sub_model == "L2-H4-F32").unwrap();
    assert_eq!(full.relative, 1.0);
    assert!(report.results.iter().all(|r| (0.0..=1.0).contains(&r.accuracy) && r.flops > 0));
    // FLOPs grow along every axis.
    let flops = |name: &str| report.results.iter().find(|r| r.sub_model == name).unwrap().flops;
    assert!(flops("L1-H2-F16") < flops("L1-H4-F16") && flops("L1-H4-F16") < flops("L1-H4-F32"));
    assert!(flops("L1-H4-F32") < flops("L2-H4-F32"));
    for file in ["config.toml", "results.json", "results.csv", "summary.md", "plot.svg", "checkpoint"] {
        assert!(run.join(file).exists(), "{file}");
    }
}

#[test]
fn a_fixed_run_trains_and_evaluates_only_its_sub_model() {
    let exp =
        TextExperiment::from_toml(&config("[sampler.fixed]\nsub_model = \"L1-H2\""), Path::new("x.toml")).unwrap();
    assert_eq!(exp.k, 1);
    let dir = tempfile::tempdir().unwrap();
    train_text_experiment::<B>(&exp, Some(dir.path()), &Default::default(), &Default::default(), &ctx()).unwrap();
    let report = RunReport::read(dir.path()).unwrap();
    let names: Vec<_> = report.results.iter().map(|r| r.sub_model.as_str()).collect();
    assert_eq!(names, ["L1-H2-F32"]);
}

fn error_of(text: &str) -> String {
    format!("{:#}", TextExperiment::from_toml(text, Path::new("my-text.toml")).unwrap_err())
}

#[test]
fn bad_text_configs_name_the_key() {
    let base = config(UNIFORM);
    let err = error_of(&base.replace("max_len", "max_lne"));
    assert!(err.contains("max_lne") && err.contains("my-text.toml"), "{err}");
    let err = error_of(&base.replace("heads = [2, 4]", "heads = [2, 8]"));
    assert!(err.contains("space.heads") && err.contains("8"), "{err}");
    let err = error_of(&base.replace("max_len = 24", "max_len = 100"));
    assert!(err.contains("data.max_len"), "{err}");
    let err = error_of(&config("[sampler.fixed]\nsub_model = \"L3\""));
    assert!(err.contains("sampler.fixed.sub_model") && err.contains("depth 3"), "{err}");
    let err = error_of(&base.replace("dropout = 0.0", "dropout = 0.0\nsort_by = \"tylor\""));
    assert!(err.contains("sort_by") && err.contains("tylor") && err.contains("taylor"), "{err}");
    let err = error_of(&base.replace("dropout = 0.0", "dropout = 0.0\nsort_by = \"activation\"\nsort_batches = 0"));
    assert!(err.contains("model.bert.sort_batches"), "{err}");
    let err = error_of(&base.replace("dropout = 0.0", "dropout = 0.0\nsort_batches = 2"));
    assert!(err.contains("model.bert.sort_batches") && err.contains("sort_by"), "{err}");
    let err = error_of(&base.replace("[model.bert.random]", "[model.bert.randm]"));
    assert!(err.contains("randm"), "{err}");
    let missing = base.replace(&format!("vocab = \"{}\"", vocab().display()), "pretrained = \"/nonexistent/minilm\"");
    let err = error_of(&missing.replace("[model.bert.random]\nhidden_size = 16\nnum_layers = 2\nnum_heads = 4\nintermediate_size = 32\nmax_position_embeddings = 32\n", ""));
    assert!(err.contains("model.bert.pretrained") && err.contains("/nonexistent/minilm"), "{err}");
}

#[test]
fn issue_28_a_text_run_stops_and_resumes_to_the_uninterrupted_result() {
    use sorted_runner::{Command, TrainArgs};
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt-tiny.toml");
    std::fs::write(&path, config(UNIFORM).replace("steps = 3", "steps = 4")).unwrap();
    let train = |out: &str, stop_after: Option<u64>| {
        let args = TrainArgs {
            config: Some(path.clone()),
            out: Some(dir.path().join(out)),
            stop_after,
            ..TrainArgs::default()
        };
        run_cli(Command::Train(args)).unwrap();
    };
    train("whole", None);
    train("stopped", Some(2));
    assert!(!dir.path().join("stopped/results.json").exists(), "a stopped run has no report yet");
    let args = TrainArgs { resume: Some(dir.path().join("stopped")), ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
    let accuracies = |run: &str| {
        let report = RunReport::read(&dir.path().join(run)).unwrap();
        report.results.iter().map(|r| (r.sub_model.clone(), r.accuracy)).collect::<Vec<_>>()
    };
    assert_eq!(accuracies("stopped"), accuracies("whole"));
    // `eval` re-evaluates a text run from its checkpoint to the same numbers.
    let args = sorted_runner::EvalArgs { run: dir.path().join("whole") };
    run_cli(Command::Eval(args)).unwrap();
    assert_eq!(accuracies("whole"), accuracies("stopped"));
}

#[test]
fn issue_31_a_sorted_text_run_records_its_scores_and_resumes_without_sorting_again() {
    use sorted_runner::{Command, SORT_SCORES_FILE, TrainArgs};
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt-tiny.toml");
    let text = config(UNIFORM)
        .replace("steps = 3", "steps = 4")
        .replace("dropout = 0.0", "dropout = 0.0\nsort_by = \"taylor\"\nsort_batches = 2");
    std::fs::write(&path, text).unwrap();
    let train = |out: &str, stop_after: Option<u64>, resume: bool| {
        let args = if resume {
            TrainArgs { resume: Some(dir.path().join(out)), ..TrainArgs::default() }
        } else {
            TrainArgs {
                config: Some(path.clone()),
                out: Some(dir.path().join(out)),
                stop_after,
                ..TrainArgs::default()
            }
        };
        run_cli(Command::Train(args)).unwrap();
    };
    train("whole", None, false);
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("whole").join(SORT_SCORES_FILE)).unwrap())
            .unwrap();
    assert_eq!((scores["score"].as_str(), scores["batches"].as_u64()), (Some("taylor"), Some(2)));
    let layers = scores["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert!(
        layers.iter().all(|l| l["heads"].as_array().unwrap().len() == 4 && l["ffn"].as_array().unwrap().len() == 32)
    );
    let saved = std::fs::read_to_string(dir.path().join("whole/config.toml")).unwrap();
    assert!(saved.contains("sort_by = \"taylor\"") && saved.contains("sort_batches = 2"), "{saved}");
    train("stopped", Some(2), false);
    assert!(dir.path().join("stopped").join(SORT_SCORES_FILE).exists());
    // A resumed run takes the sorted weights from its checkpoint and sorts nothing again.
    std::fs::remove_file(dir.path().join("stopped").join(SORT_SCORES_FILE)).unwrap();
    train("stopped", None, true);
    assert!(!dir.path().join("stopped").join(SORT_SCORES_FILE).exists(), "resume sorted again");
    let accuracies = |run: &str| {
        let report = RunReport::read(&dir.path().join(run)).unwrap();
        report.results.iter().map(|r| (r.sub_model.clone(), r.accuracy)).collect::<Vec<_>>()
    };
    assert_eq!(accuracies("stopped"), accuracies("whole"));
}

/// The f32 values of tensor `name` of a safetensors file, with its shape.
fn safetensor(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let entry = &header[name];
    let shape = entry["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let [start, end] = [0, 1].map(|i| entry["data_offsets"][i].as_u64().unwrap() as usize + 8 + n);
    (shape, bytes[start..end].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

#[test]
fn issue_30_a_bert_sub_model_of_a_text_run_exports_to_hugging_face() {
    use burn::module::Param;
    use burn::prelude::*;
    use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
    use sorted_runner::{Command, ExportArgs, TrainArgs};
    use sorted_zoo::SortedBertConfig;
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt-tiny.toml");
    std::fs::write(&path, config(UNIFORM)).unwrap();
    let run = dir.path().join("run");
    let args = TrainArgs { config: Some(path), out: Some(run.clone()), ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
    let keep = std::env::var_os("SORTED_EXPORT_DIR").map(PathBuf::from);
    let out = keep.map_or_else(|| dir.path().join("exported"), |k| k.join("run-L1-H2-F16"));
    let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: "L1-H2-F16".into(), out: Some(out.clone()) };
    run_cli(Command::Export(args)).unwrap();

    let hf = out.join("hf");
    for file in ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "manifest.json"] {
        assert!(hf.join(file).exists(), "{file}");
    }
    assert_eq!(std::fs::read(hf.join("vocab.txt")).unwrap(), std::fs::read(vocab()).unwrap());
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertModel", "mean pooling: BertModel + classifier");
    assert_eq!((config["num_hidden_layers"].as_u64(), config["num_attention_heads"].as_u64()), (Some(1), Some(4)));
    assert_eq!(config["intermediate_size"].as_u64(), Some(16));
    assert_eq!(config["sortednet"]["active_heads"].as_u64(), Some(2));
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("expected_logits.json")).unwrap()).unwrap();
    // The export's accuracy on the eval split is the run's for that sub-model.
    let report = RunReport::read(&run).unwrap();
    let row = report.results.iter().find(|r| r.sub_model == "L1-H2-F16").unwrap();
    assert_eq!(expected["accuracy"].as_f64(), Some(row.accuracy));

    // The folder, loaded back with our loader (all 4 heads, 2 of them zero), gives the logits.
    let device = Default::default();
    let bert = SortedBertConfig::from_hf_config(&hf.join("config.json")).unwrap();
    let mut model = bert.init::<Flex>(&device).load_hf_safetensors(&hf.join("model.safetensors")).unwrap();
    let bytes = std::fs::read(hf.join("model.safetensors")).unwrap();
    let (shape, w) = safetensor(&bytes, "classifier.weight");
    let (_, b) = safetensor(&bytes, "classifier.bias");
    model.classifier.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, shape), &device).transpose());
    model.classifier.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [2]), &device)));
    let whole = TransformerSpace::new(
        TransformerSpaceConfig { depths: vec![1], heads: vec![4], ffn: vec![16], hidden: None },
        bert.hidden_size,
    )
    .unwrap()
    .largest();
    let ours: Vec<f32> = expected["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let mut diff = 0f32;
    for (i, ids) in expected["input_ids"].as_array().unwrap().iter().enumerate().take(8) {
        let ids: Vec<i64> = ids.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        let n = ids.len();
        let input = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
        let logits = model.forward(input, None, Tensor::ones([1, n], &device), &whole);
        for (a, b) in logits.into_data().to_vec::<f32>().unwrap().iter().zip(&ours[2 * i..2 * i + 2]) {
            diff = diff.max((a - b).abs());
        }
    }
    assert!(diff < 1e-4, "reloaded export differs by {diff}");
}

#[test]
fn issue_32_two_peers_train_the_one_peer_bert() {
    use sorted_runner::{Command, TrainArgs};
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt-tiny.toml");
    std::fs::write(&path, config(UNIFORM)).unwrap();
    let train = |out: &str, devices: &[&str]| {
        let args = TrainArgs {
            config: Some(path.clone()),
            out: Some(dir.path().join(out)),
            devices: devices.iter().map(|d| d.to_string()).collect(),
            ..TrainArgs::default()
        };
        run_cli(Command::Train(args)).unwrap();
    };
    train("one", &[]);
    train("two", &["cpu", "cpu"]);
    let accuracies = |run: &str| {
        let report = RunReport::read(&dir.path().join(run)).unwrap();
        report.results.iter().map(|r| (r.sub_model.clone(), r.accuracy)).collect::<Vec<_>>()
    };
    let (one, two) = (accuracies("one"), accuracies("two"));
    assert_eq!(one.len(), two.len());
    // Each peer pads its half batch to its own longest sentence: the same function up to float
    // summation order, so at most one of the 40 sentences may flip.
    for (a, b) in one.iter().zip(&two) {
        assert!(a.0 == b.0 && (a.1 - b.1).abs() <= 1.0 / 40.0 + 1e-9, "{a:?} vs {b:?}");
    }
    let saved: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.path().join("two/config.toml")).unwrap()).unwrap();
    assert_eq!(saved["train"]["devices"].as_array().map(Vec::len), Some(2), "{saved}");
}

#[test]
fn issue_31_a_text_run_distills_from_its_largest_sub_model() {
    let text = config(UNIFORM).replace("threads = 2", "threads = 2\ndistill = 0.5");
    let exp = TextExperiment::from_toml(&text, Path::new("rt-tiny.toml")).unwrap();
    assert_eq!(exp.config.train.distill, 0.5);
    let dir = tempfile::tempdir().unwrap();
    train_text_experiment::<B>(&exp, Some(dir.path()), &Default::default(), &Default::default(), &ctx()).unwrap();
    let report = RunReport::read(dir.path()).unwrap();
    assert_eq!(report.n_sub_models, 8);
    assert!(report.results.iter().all(|r| (0.0..=1.0).contains(&r.accuracy)));
    let err = error_of(&text.replace("distill = 0.5", "distill = 1.5"));
    assert!(err.contains("train.distill") && err.contains("my-text.toml"), "{err}");
}
