//! Crash safety and integrity of checkpoints (issue 27): generations, manifests, retention,
//! leftovers of killed saves, damaged files, weights that do not fit the model, the run lock.

use std::path::Path;

use burn::prelude::*;
use sorted_sched::{
    AdamOptions, Checkpoint, CheckpointError, OptimizerConfig, RunLock, SortedOptimizer, TrainState, generations,
    load_checkpoint, save_checkpoint,
};

use crate::toy::{AB as B, Toy, rng_guard, weights};

fn adam() -> OptimizerConfig {
    OptimizerConfig::Adam(AdamOptions { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: None })
}

fn state(step: u64) -> TrainState {
    TrainState { step, total_steps: 10, seed: 1, optimizer: "adam".into(), train_seconds: 0.0 }
}

fn fresh(seed: u64) -> (Toy<B>, SortedOptimizer<Toy<B>, B>) {
    let device = Default::default();
    B::seed(&device, seed);
    (Toy::<B>::new(&device), adam().init())
}

fn save(dir: &Path, step: u64, keep: usize) {
    let (m, o) = fresh(step);
    save_checkpoint(dir, &m, &o, &state(step), "# config", keep).unwrap();
}

fn steps(dir: &Path) -> Vec<u64> {
    generations(dir).unwrap().into_iter().map(|(s, _)| s).collect()
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = at % bytes.len();
    bytes[i] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn issue_27_generations_are_numbered_and_only_the_newest_keep_stay() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    for step in [1, 2, 3, 4] {
        save(dir.path(), step, 2);
    }
    assert_eq!(steps(dir.path()), [3, 4]);
    save(dir.path(), 5, 3);
    assert_eq!(steps(dir.path()), [3, 4, 5]);
    let latest = Checkpoint::latest(dir.path()).unwrap();
    assert_eq!(latest.state().step, 5);
    assert!(latest.is_verified());
    assert!(latest.dir().ends_with("checkpoint/step-000000005"), "{}", latest.dir().display());
}

#[test]
fn issue_27_a_killed_save_leaves_the_previous_generation_and_its_folder_is_cleaned() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), 1, 2);
    // What a kill during the next save leaves: a partial temporary generation (no manifest),
    // and the old single-folder layout's leftovers.
    let partial = dir.path().join("checkpoint/.step-000000002.tmp-99999");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("model.mpk"), b"half a model").unwrap();
    std::fs::create_dir_all(dir.path().join(".checkpoint.old-4242")).unwrap();
    assert_eq!(Checkpoint::latest(dir.path()).unwrap().state().step, 1);
    save(dir.path(), 2, 2);
    assert!(!partial.exists(), "the next save removes the partial folder");
    assert!(!dir.path().join(".checkpoint.old-4242").exists());
    assert_eq!(steps(dir.path()), [1, 2]);
}

#[test]
fn issue_27_a_flipped_byte_is_refused_naming_the_file_and_offering_the_previous_generation() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), 1, 2);
    save(dir.path(), 2, 2);
    let model = dir.path().join("checkpoint/step-000000002/model.mpk");
    flip_byte(&model, 100);
    let err = Checkpoint::latest(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CheckpointError::Damaged { previous: Some(_), .. }), "{message}");
    assert!(message.contains("step-000000002/model.mpk") && message.contains("SHA-256"), "{message}");
    assert!(message.contains("step-000000001") && message.contains("intact"), "{message}");
    // Following the advice resumes from the older generation.
    std::fs::rename(dir.path().join("checkpoint/step-000000002"), dir.path().join("damaged")).unwrap();
    assert_eq!(Checkpoint::latest(dir.path()).unwrap().state().step, 1);
}

#[test]
fn issue_27_every_file_of_a_generation_is_checked() {
    let _guard = rng_guard();
    for file in ["model.mpk", "optim.mpk", "state.json", "config.toml"] {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), 1, 2);
        let path = dir.path().join("checkpoint/step-000000001").join(file);
        std::fs::write(&path, b"edited").unwrap();
        let message = Checkpoint::latest(dir.path()).unwrap_err().to_string();
        assert!(message.contains(file) && message.contains("damaged"), "{file}: {message}");
        std::fs::remove_file(&path).unwrap();
        let message = Checkpoint::latest(dir.path()).unwrap_err().to_string();
        assert!(message.contains(file) && message.contains("unreadable"), "{file}: {message}");
    }
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), 1, 2);
    let manifest = dir.path().join("checkpoint/step-000000001/manifest.json");
    std::fs::write(&manifest, b"{\"format\": 1}").unwrap();
    let message = Checkpoint::latest(dir.path()).unwrap_err().to_string();
    assert!(message.contains("manifest.json") && message.contains("not a checkpoint manifest"), "{message}");
}

#[test]
fn issue_27_weights_of_another_shape_are_refused_naming_the_parameter() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), 1, 2);
    #[derive(Module, Debug)]
    struct Wider<B: Backend> {
        hidden: sorted_nn::SortedLinear<B>,
        out: sorted_nn::SortedLinear<B>,
    }
    let device = Default::default();
    let wider = Wider::<B> {
        hidden: sorted_nn::SortedLinearConfig::new(5, 12).init(&device),
        out: sorted_nn::SortedLinearConfig::new(12, 2).init(&device),
    };
    let err = Checkpoint::latest(dir.path()).unwrap().load_model(wider, &device).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("hidden") && message.contains("[5, 12]") && message.contains("[5, 6]"), "{message}");
    assert!(
        message.ends_with(
            "`: parameter `hidden.weight` has shape [5, 6], the model built from the config has [5, 12] \
             (the config does not match these weights)"
        ),
        "{message}"
    );
    let sorted_sched::CheckpointError::Shape { mismatch, .. } = err else { panic!("{err:?}") };
    assert_eq!(
        (mismatch.param.as_str(), mismatch.expected, mismatch.found),
        ("hidden.weight", vec![5, 12], vec![5, 6])
    );
}

#[test]
fn issue_27_a_save_at_an_existing_step_replaces_it_and_resume_is_exact() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let (m, o) = fresh(7);
    let expected = weights(&m);
    save_checkpoint(dir.path(), &m, &o, &state(3), "a", 2).unwrap();
    save_checkpoint(dir.path(), &m, &o, &state(3), "b", 2).unwrap();
    assert_eq!(steps(dir.path()), [3]);
    let latest = Checkpoint::latest(dir.path()).unwrap();
    assert_eq!(latest.config_toml(), "b");
    let (m, _, s) = load_checkpoint(dir.path(), fresh(8).0, adam().init(), &Default::default()).unwrap();
    assert_eq!(s.step, 3);
    assert_eq!(weights(&m), expected);
}

#[test]
fn issue_27_a_checkpoint_of_the_earlier_single_folder_layout_still_loads_unverified() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let (m, o) = fresh(4);
    save_checkpoint(dir.path(), &m, &o, &state(2), "old", 2).unwrap();
    let generation = dir.path().join("checkpoint/step-000000002");
    for file in ["model.mpk", "optim.mpk", "state.json", "config.toml"] {
        std::fs::rename(generation.join(file), dir.path().join("checkpoint").join(file)).unwrap();
    }
    std::fs::remove_dir_all(&generation).unwrap();
    let latest = Checkpoint::latest(dir.path()).unwrap();
    assert!(!latest.is_verified());
    assert_eq!(latest.config_toml(), "old");
    let (m2, _, _) = load_checkpoint(dir.path(), fresh(5).0, adam().init(), &Default::default()).unwrap();
    assert_eq!(weights(&m2), weights(&m));
}

#[test]
fn issue_27_no_checkpoint_and_a_held_lock_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let message = Checkpoint::latest(dir.path()).unwrap_err().to_string();
    assert!(message.contains("no checkpoint"), "{message}");
    let _lock = RunLock::acquire(dir.path()).unwrap();
    assert!(matches!(RunLock::acquire(dir.path()), Err(CheckpointError::Locked { holder: Some(_), .. })));
}

#[test]
fn issue_27_weights_holding_nan_are_never_saved() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), 1, 2);
    let (mut m, o) = fresh(2);
    m.out.weight = m.out.weight.map(|w| w.mul_scalar(f32::NAN));
    let err = save_checkpoint(dir.path(), &m, &o, &state(2), "", 2).unwrap_err();
    assert!(matches!(&err, CheckpointError::NonFinite { step: 2, param } if param.contains("out")), "{err}");
    assert_eq!(steps(dir.path()), [1], "the last good generation stays the checkpoint");
}
