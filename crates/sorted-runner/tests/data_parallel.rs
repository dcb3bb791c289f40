//! Data-parallel image training (issue 32): `[train] peers = 2` trains with two peers on the
//! run's device, each on half of every batch, gradients averaged with Burn's collective; the
//! result is the one-peer run's, up to float summation order.

#![cfg(feature = "flex")]

use std::path::Path;

use sorted_runner::report::RunReport;

use crate::common::{TINY_MLP, rng_guard, train, write_config};

/// Every weight of the tiny MLP run in `run` (its last checkpoint), in parameter order.
pub(crate) fn weights(run: &Path) -> Vec<f32> {
    use burn::module::Module;
    let exp = sorted_runner::config::Experiment::from_file(&run.join("config.toml")).unwrap();
    let device = Default::default();
    let model = sorted_zoo::SortedMlpConfig::for_space(784, 10, &exp.space).init::<burn::backend::Flex>(&device);
    let model = sorted_sched::load_model(run, model, &device).unwrap();
    let mut values = Vec::new();
    struct Collect<'a>(&'a mut Vec<f32>);
    impl burn::module::ModuleVisitor<burn::backend::Flex> for Collect<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            p: &burn::module::Param<burn::prelude::Tensor<burn::backend::Flex, D>>,
        ) {
            self.0.extend(p.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    model.visit(&mut Collect(&mut values));
    values
}

#[test]
fn issue_32_two_peers_train_the_one_peer_model() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    let two = dir.path().join("two");
    train(&write_config(dir.path(), TINY_MLP), &one, None);
    let config = dir.path().join("peers.toml");
    std::fs::write(&config, TINY_MLP.replace("checkpoint_every = 16", "checkpoint_every = 16\npeers = 2")).unwrap();
    train(&config, &two, None);
    let (a, b) = (weights(&one), weights(&two));
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest weight difference {worst}");
    // Every sub-model is evaluated once, by rank 0.
    let (ra, rb) = (RunReport::read(&one).unwrap(), RunReport::read(&two).unwrap());
    assert_eq!(ra.n_sub_models, rb.n_sub_models);
    for (x, y) in ra.results.iter().zip(&rb.results) {
        assert!((x.accuracy - y.accuracy).abs() <= 0.01, "{}: {} vs {}", x.sub_model, x.accuracy, y.accuracy);
    }
    // A batch that does not split evenly is refused, naming the key.
    std::fs::write(&config, TINY_MLP.replace("checkpoint_every = 16", "checkpoint_every = 16\npeers = 3")).unwrap();
    let err = format!("{:#}", sorted_runner::config::Experiment::from_file(&config).unwrap_err());
    assert!(err.contains("data.batch_size") && err.contains("train.peers = 3"), "{err}");
}

#[test]
fn issue_32_devices_flag_places_one_peer_per_device() {
    use sorted_runner::{Command, TrainArgs};

    use crate::common::run_cli;

    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), TINY_MLP);
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    train(&config, &one, None);
    let args = |out: &Path, devices: &[&str]| TrainArgs {
        config: Some(config.clone()),
        out: Some(out.into()),
        devices: devices.iter().map(|d| d.to_string()).collect(),
        ..TrainArgs::default()
    };
    run_cli(Command::Train(args(&two, &["cpu", "cpu"]))).unwrap();
    let saved = std::fs::read_to_string(two.join("config.toml")).unwrap();
    let saved: toml::Value = toml::from_str(&saved).unwrap();
    assert_eq!(saved["train"]["devices"].as_array().map(Vec::len), Some(2), "{saved}");
    let (a, b) = (weights(&one), weights(&two));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest weight difference {worst}");

    // A device name that is no device is refused, naming it and the key.
    let bad = dir.path().join("bad");
    let err = run_cli(Command::Train(args(&bad, &["cpu", "gpu7"]))).unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("train.devices[1]") && err.contains("gpu7"), "{err}");
    // A device of another backend than the command's is refused, naming the flag to use.
    let err = run_cli(Command::Train(args(&bad, &["cuda:0", "cuda:1"]))).unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("train.devices[0]") && err.contains("--device cuda"), "{err}");
    // `peers` and `devices` that disagree are refused, naming both.
    let conflict = dir.path().join("conflict.toml");
    let text = "checkpoint_every = 16\npeers = 3\ndevices = [\"cpu\", \"cpu\"]";
    std::fs::write(&conflict, TINY_MLP.replace("checkpoint_every = 16", text)).unwrap();
    let err = format!("{:#}", sorted_runner::config::Experiment::from_file(&conflict).unwrap_err());
    assert!(err.contains("train.peers") && err.contains("train.devices"), "{err}");
}

#[test]
fn issue_32_a_one_peer_run_resumes_on_two_peers_to_the_same_weights() {
    use sorted_runner::{Command, TrainArgs};

    use crate::common::run_cli;

    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), TINY_MLP);
    let (whole, resumed) = (dir.path().join("whole"), dir.path().join("resumed"));
    train(&config, &whole, None);
    train(&config, &resumed, Some(16));
    let args =
        TrainArgs { resume: Some(resumed.clone()), devices: vec!["cpu".into(), "cpu".into()], ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
    let (a, b) = (weights(&whole), weights(&resumed));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest weight difference {worst}");
}
