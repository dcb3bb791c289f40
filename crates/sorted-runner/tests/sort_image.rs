//! Image runs that start from an earlier run (`init_from`) and sort it first (`sort_by`):
//! issue 31, items 3-4 for images.

#![cfg(feature = "flex")]

use std::path::Path;

use sorted_runner::config::Experiment;
use sorted_runner::report::RunReport;
use sorted_runner::{Command, TrainArgs};

use crate::common::{rng_guard, run_cli, tiny_cnn, train};

/// TINY_CNN at widths that learn something in a few dozen steps.
fn base() -> String {
    tiny_cnn()
        .replace("widths = [2, 4]", "widths = [4, 8]")
        .replace("train_limit = 160", "train_limit = 640")
        .replace("[optimizer.sgd]\nmomentum = 0.9", "[optimizer.adam]")
        .replace("base = 0.05", "base = 0.01")
}

/// [`base`] trained dense: the full model alone.
fn dense() -> String {
    base().replace("[sampler.uniform]\nk = 2", "[sampler.full]").replace("steps = 4", "steps = 40")
}

/// TINY_CNN started from `run` and sorted by Taylor on 2 batches, at a learning rate too small
/// to move the weights in `steps` steps.
fn sorted_from(run: &Path, steps: u64) -> String {
    let start = format!("strides = [2, 2]\ninit_from = {:?}\nsort_by = \"taylor\"\nsort_batches = 2", run.display());
    base()
        .replace("strides = [2, 2]", &start)
        .replace("[sampler.uniform]\nk = 2", "[sampler.full]")
        .replace("base = 0.01", "base = 1e-12")
        .replace("steps = 4", &format!("steps = {steps}"))
}

fn train_text(dir: &Path, name: &str, text: &str, stop_after: Option<u64>) -> anyhow::Result<std::path::PathBuf> {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, text).unwrap();
    let out = dir.join(name);
    let args = TrainArgs { config: Some(config), out: Some(out.clone()), stop_after, ..TrainArgs::default() };
    run_cli(Command::Train(args))?;
    Ok(out)
}

#[test]
fn a_dense_run_sorted_by_taylor_keeps_its_full_accuracy_and_resume_does_not_sort_again() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::write_config(dir.path(), &dense());
    let first = dir.path().join("dense");
    train(&config, &first, None);
    let dense_full = RunReport::read(&first).unwrap().full_accuracy;

    let second = train_text(dir.path(), "sorted", &sorted_from(&first, 1), None).unwrap();
    let scores: serde_json::Value =
        serde_json::from_slice(&std::fs::read(second.join("sort_scores.json")).unwrap()).unwrap();
    assert_eq!(scores["score"], "taylor");
    assert_eq!(scores["batches"], 2);
    let blocks = scores["blocks"].as_array().unwrap();
    assert_eq!(blocks.iter().map(|b| b.as_array().unwrap().len()).collect::<Vec<_>>(), [8, 8]);
    // Sorting keeps the full model's function, and BatchNorm is recalibrated for evaluation: one
    // step at lr 1e-12 later, the full model classifies the test images as the dense run did
    // (summation order may flip a near-tie: one image of 64 at most).
    let sorted_full = RunReport::read(&second).unwrap().full_accuracy;
    assert!((sorted_full - dense_full).abs() <= 1.0 / 64.0 + 1e-9, "dense {dense_full}, sorted {sorted_full}");

    // A resumed run loads its own (sorted) checkpoint and neither loads nor sorts again.
    let third = train_text(dir.path(), "stopped", &sorted_from(&first, 2), Some(1)).unwrap();
    std::fs::remove_file(third.join("sort_scores.json")).unwrap();
    let args = TrainArgs { resume: Some(third.clone()), ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
    assert!(third.join("results.json").is_file());
    assert!(!third.join("sort_scores.json").exists(), "a resumed run sorted again");

    // A run of another model is refused, naming the key, the run and what differs.
    let wider = sorted_from(&first, 1).replace("widths = [4, 8]", "widths = [4, 16]");
    let err = format!("{:#}", train_text(dir.path(), "wider", &wider, None).unwrap_err());
    assert!(err.contains("model.cnn.init_from") && err.contains("dense") && err.contains("space.widths"), "{err}");
    let missing = sorted_from(&dir.path().join("nowhere"), 1);
    let err = format!("{:#}", train_text(dir.path(), "missing", &missing, None).unwrap_err());
    assert!(err.contains("model.cnn.init_from") && err.contains("nowhere"), "{err}");
}

fn error_of(text: &str) -> String {
    format!("{:#}", Experiment::from_toml(text, Path::new("my-image.toml")).unwrap_err())
}

#[test]
fn bad_start_keys_are_refused_naming_them() {
    let with = |keys: &str| tiny_cnn().replace("strides = [2, 2]", &format!("strides = [2, 2]\n{keys}"));
    let err = error_of(&with("sort_by = \"tylor\""));
    assert!(err.contains("sort_by") && err.contains("tylor") && err.contains("taylor"), "{err}");
    let err = error_of(&with("sort_batches = 2"));
    assert!(err.contains("model.cnn.sort_batches") && err.contains("sort_by"), "{err}");
    let err = error_of(&with("sort_by = \"activation\"\nsort_batches = 0"));
    assert!(err.contains("model.cnn.sort_batches"), "{err}");
    let err = error_of(&with("batch_norm = \"switchable\"\nsort_by = \"taylor\""));
    assert!(err.contains("model.cnn.sort_by") && err.contains("switchable"), "{err}");
    let err = error_of(&with("init_frm = \"runs/x\""));
    assert!(err.contains("init_frm") && err.contains("my-image.toml"), "{err}");
    let mlp = crate::common::TINY_MLP.replace("[model.mlp]", "[model.mlp]\nsort_by = \"activation\"");
    let err = error_of(&mlp);
    assert!(err.contains("model.mlp.sort_by") && err.contains("magnitude"), "{err}");
    Experiment::from_toml(&with("init_from = \"runs/x\"\nsort_by = \"magnitude\""), Path::new("ok.toml")).unwrap();
}
