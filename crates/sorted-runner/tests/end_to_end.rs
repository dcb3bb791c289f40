#![cfg(feature = "flex")]

use sorted_runner::report::RunReport;
use sorted_runner::{Cli, Command, EvalArgs, ExportArgs, TrainArgs};

use crate::common::{TINY_MLP, mlp_weights, rng_guard, run_cli, tiny_cnn, train, write_config};

#[test]
fn a_short_run_writes_every_report_file_then_eval_and_export_work() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), TINY_MLP);
    let run = dir.path().join("run");
    train(&config, &run, None);
    for file in [
        "config.toml",
        "results.json",
        "results.csv",
        "summary.md",
        "plot.svg",
        "checkpoint/step-000000040/model.mpk",
        "checkpoint/step-000000040/optim.mpk",
        "checkpoint/step-000000040/state.json",
        "checkpoint/step-000000040/config.toml",
        "checkpoint/step-000000040/manifest.json",
    ] {
        assert!(run.join(file).is_file(), "missing {file}");
    }
    let report = RunReport::read(&run).unwrap();
    assert_eq!(report.n_sub_models, 2 + 4);
    assert!(report.full_accuracy > 0.3, "40 steps should beat chance (0.1) clearly: {}", report.full_accuracy);
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6);
    assert!(std::fs::read_to_string(run.join("plot.svg")).unwrap().contains("<svg"));

    // eval reproduces the accuracies from the checkpoint.
    std::fs::remove_file(run.join("results.json")).unwrap();
    run_cli(Command::Eval(EvalArgs { run: run.clone() })).unwrap();
    let again = RunReport::read(&run).unwrap();
    let acc = |r: &RunReport| r.results.iter().map(|x| x.accuracy).collect::<Vec<_>>();
    assert_eq!(acc(&again), acc(&report));

    // export writes a dense model that matches the sliced one.
    let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: "16-8".into(), out: None };
    run_cli(Command::Export(args)).unwrap();
    let out = run.join("export/16-8");
    for file in ["model.mpk", "model.safetensors", "config.json", "manifest.json"] {
        assert!(out.join(file).is_file(), "missing export/{file}");
    }
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "sortednet-mlp");
    assert_eq!((&config["widths"], &config["num_labels"]), (&serde_json::json!([16, 8]), &serde_json::json!(10)));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["max_abs_diff_vs_sliced"].as_f64().unwrap() < 1e-5);
    assert_eq!(manifest["widths"], serde_json::json!([16, 8]));
    assert_eq!(manifest["parent_checkpoint_sha256"].as_str().unwrap().len(), 64);

    // A sub-model outside the space is a clear error.
    let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: "12".into(), out: None };
    let err = format!("{:#}", run_cli(Command::Export(args)).unwrap_err());
    assert!(err.contains("12") && err.contains("allowed"), "{err}");
}

#[test]
fn resume_after_a_stop_equals_an_uninterrupted_run() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), TINY_MLP);
    let straight = dir.path().join("straight");
    train(&config, &straight, None);

    let resumed = dir.path().join("resumed");
    train(&config, &resumed, Some(21));
    assert!(!resumed.join("results.json").exists(), "a stopped run has no results yet");
    let args = TrainArgs { resume: Some(resumed.clone()), ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();

    let a = RunReport::read(&straight).unwrap();
    let b = RunReport::read(&resumed).unwrap();
    let acc = |r: &RunReport| r.results.iter().map(|x| (x.sub_model.clone(), x.accuracy)).collect::<Vec<_>>();
    assert_eq!(acc(&a), acc(&b));
    assert_eq!(mlp_weights(&straight), mlp_weights(&resumed), "resumed weights differ from the uninterrupted run");
}

#[test]
fn summed_losses_take_the_steps_of_averaged_losses_at_k_times_the_rate() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    // k = 3 (sandwich), SGD with momentum and weight decay, in-place distillation on.
    let base = TINY_MLP
        .replace("[optimizer.adam]", "[optimizer.sgd]\nmomentum = 0.9\nnesterov = true")
        .replace("steps = 40", "steps = 6\ndistill = 0.5");
    let sum = base
        .replace("nesterov = true", "nesterov = true\nweight_decay = 3e-3")
        .replace("distill = 0.5", "distill = 0.5\nloss_reduction = \"sum\"");
    let mean =
        base.replace("base = 1e-2", "base = 3e-2").replace("nesterov = true", "nesterov = true\nweight_decay = 1e-3");
    let config = |name: &str, text: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        write_config(&d, text)
    };
    let (a, b) = (dir.path().join("sum"), dir.path().join("mean"));
    train(&config("s", &sum), &a, None);
    train(&config("m", &mean), &b, None);
    let (wa, wb) = (mlp_weights(&a), mlp_weights(&b));
    let max_diff = wa.iter().zip(&wb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-5, "sum at lr 0.01 and mean at lr 0.03 differ by {max_diff}");
    // Not trivially equal to the initial weights: training moved them.
    let c = dir.path().join("slow");
    train(&config("x", &mean.replace("base = 3e-2", "base = 1e-2")), &c, None);
    let moved = wa.iter().zip(&mlp_weights(&c)).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(moved > 1e-3, "a third of the rate should land elsewhere ({moved})");
}

#[test]
fn a_cnn_run_recalibrates_batch_norm_and_exports() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &tiny_cnn());
    let run = dir.path().join("run");
    train(&config, &run, None);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("norm_stats.json")).unwrap()).unwrap();
    assert_eq!(stats.as_object().unwrap().len(), 2 + 4, "statistics for every sub-model");
    // A recalibrating run is evaluated one way only.
    assert!(RunReport::read(&run).unwrap().switchable.is_none());
    let args = ExportArgs {
        run: Some(run.clone()),
        gguf: None,
        sub_model: "4-2".into(),
        out: Some(dir.path().join("exported")),
    };
    run_cli(Command::Export(args)).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("exported/manifest.json")).unwrap()).unwrap();
    assert!(manifest["max_abs_diff_vs_sliced"].as_f64().unwrap() < 1e-4);
}

#[test]
fn a_switchable_batch_norm_run_is_evaluated_both_ways() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_cnn().replace("strides = [2, 2]", "strides = [2, 2]\nbatch_norm = \"switchable\"");
    let run = dir.path().join("run");
    train(&write_config(dir.path(), &text), &run, None);
    let report = RunReport::read(&run).unwrap();
    assert!(report.results.iter().all(|r| r.accuracy_switchable.is_some()), "every sub-model, both ways");
    let (full, n) = report.switchable.unwrap();
    let full_row = report.results.iter().max_by_key(|r| r.flops).unwrap();
    assert_eq!(Some(full), full_row.accuracy_switchable);
    assert!(n <= report.n_sub_models);
    assert!(report.headline().contains("switchable BN statistics"));
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| !l.ends_with(',')), "the switchable column is filled");
}

#[test]
fn bad_inputs_give_errors_naming_the_file() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config =
        write_config(dir.path(), &TINY_MLP.replace("source = \"embedded\"", "source = \"/nonexistent/mnist\""));
    let args = TrainArgs { config: Some(config), out: Some(dir.path().join("run")), ..TrainArgs::default() };
    let err = format!("{:#}", run_cli(Command::Train(args)).unwrap_err());
    assert!(err.contains("/nonexistent/mnist"), "{err}");

    let err = format!("{:#}", run_cli(Command::Eval(EvalArgs { run: dir.path().join("no-such-run") })).unwrap_err());
    assert!(err.contains("no-such-run"), "{err}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_backend_that_was_not_compiled_in_is_a_clear_error() {
    let _guard = rng_guard();
    let cli = Cli { device: sorted_runner::DeviceKind::Cuda, quiet: true, command: None };
    let err = format!("{:#}", sorted_runner::run(cli).unwrap_err());
    assert!(err.contains("--features cuda"), "{err}");
}
