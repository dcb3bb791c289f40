//! The runner on every dataset kind: Fashion-MNIST and CIFAR-10 from small fixture folders in
//! their real formats, with augmentation; exports record the dataset's shape and normalisation.

#![cfg(feature = "flex")]

use std::path::Path;

use sorted_runner::report::RunReport;
use sorted_runner::{Command, ExportArgs, TrainArgs};

use crate::common::{UNIFORM_SGD, rng_guard, run_cli, write_config};

/// Bytes that vary with the image and pixel, so that classes are not all the same picture.
fn pixels(n: usize, len: usize) -> Vec<u8> {
    (0..n * len).map(|i| ((i * 37 + i / len * 11) % 251) as u8).collect()
}

fn cifar10_fixture(dir: &Path, per_file: usize) {
    let cifar = dir.join(sorted_data::CIFAR10_DIR);
    std::fs::create_dir_all(&cifar).unwrap();
    let record = |i: usize| {
        let mut r = vec![(i % 10) as u8];
        r.extend(pixels(1, 3072).iter().map(|p| p.wrapping_add((i * 29) as u8)));
        r
    };
    for (f, name) in sorted_data::CIFAR10_TRAIN_FILES.iter().chain([&sorted_data::CIFAR10_TEST_FILE]).enumerate() {
        let bytes: Vec<u8> = (0..per_file).flat_map(|i| record(f * per_file + i)).collect();
        std::fs::write(cifar.join(name), bytes).unwrap();
    }
}

fn fashion_fixture(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |images: &str, labels: &str, n: usize| {
        let px = pixels(n, 28 * 28);
        std::fs::write(dir.join(images), sorted_data::idx::encode_images(&px, n, 28, 28)).unwrap();
        let l: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(dir.join(labels), sorted_data::idx::encode_labels(&l)).unwrap();
    };
    write(sorted_data::TRAIN_IMAGES, sorted_data::TRAIN_LABELS, n_train);
    write(sorted_data::TEST_IMAGES, sorted_data::TEST_LABELS, n_test);
}

fn config(dataset: &str, source: &Path, model: &str) -> String {
    format!(
        r#"
name = "tiny-{dataset}"
seed = 5
[data]
dataset = "{dataset}"
source = "{}"
batch_size = 8
[data.augment]
crop_padding = 2
horizontal_flip = true
{model}
[space]
depths = [1, 2]
widths = [2, 4]
{UNIFORM_SGD}[train]
steps = 3
[eval]
calibration_samples = 16
batch_size = 16
"#,
        source.display()
    )
}

fn train_and_export(dir: &Path, text: &str) -> (RunReport, serde_json::Value) {
    let run = dir.join("run");
    let args = TrainArgs { config: Some(write_config(dir, text)), out: Some(run.clone()), ..TrainArgs::default() };
    run_cli(Command::Train(args)).unwrap();
    let report = RunReport::read(&run).unwrap();
    let out = dir.join("export");
    let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: "full".into(), out: Some(out.clone()) };
    run_cli(Command::Export(args)).unwrap();
    let manifest = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    (report, manifest)
}

#[test]
fn a_cnn_trains_on_cifar10_binary_files_with_augmentation() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    cifar10_fixture(dir.path(), 4);
    let text = config("cifar10", dir.path(), "[model.cnn]\nstrides = [2, 2]");
    let (report, manifest) = train_and_export(dir.path(), &text);
    assert_eq!(report.n_sub_models, 6);
    assert!(report.meta.data.contains("20 train / 4 test"), "{}", report.meta.data);
    assert_eq!(manifest["input_shape"], serde_json::json!([3, 32, 32]));
    assert_eq!(manifest["n_classes"], 10);
    let norm = manifest["input_normalisation"].as_array().unwrap();
    assert_eq!(norm.len(), 3, "one (mean, std) per channel");
    assert!((norm[0][0].as_f64().unwrap() - f64::from(sorted_data::CIFAR10_MEAN[0])).abs() < 1e-6);
    assert!(manifest["max_abs_diff_vs_sliced"].as_f64().unwrap() < 1e-4);
}

#[test]
fn an_mlp_trains_on_a_fashion_mnist_folder() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fashion");
    fashion_fixture(&data, 32, 16);
    let (report, manifest) = train_and_export(dir.path(), &config("fashion-mnist", &data, "[model.mlp]"));
    assert_eq!(report.n_sub_models, 6);
    assert_eq!(manifest["input_shape"], serde_json::json!([1, 28, 28]));
    let norm = &manifest["input_normalisation"][0];
    assert!((norm[0].as_f64().unwrap() - f64::from(sorted_data::FASHION_MNIST_MEAN)).abs() < 1e-6);
}

#[test]
fn dataset_errors_name_the_key_and_the_fix() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let text = config("fashion-mnist", Path::new("embedded"), "[model.mlp]").replace("source = \"embedded\"", "");
    let args = TrainArgs {
        config: Some(write_config(dir.path(), &text)),
        out: Some(dir.path().join("run")),
        ..TrainArgs::default()
    };
    let err = format!("{:#}", run_cli(Command::Train(args)).unwrap_err());
    assert!(err.contains("data.source") && err.contains("fashion-mnist"), "{err}");

    let missing = dir.path().join("no-cifar");
    std::fs::create_dir_all(&missing).unwrap();
    let text = config("cifar10", &missing, "[model.cnn]\nstrides = [2, 2]");
    let args = TrainArgs {
        config: Some(write_config(dir.path(), &text)),
        out: Some(dir.path().join("run2")),
        ..TrainArgs::default()
    };
    let err = format!("{:#}", run_cli(Command::Train(args)).unwrap_err());
    assert!(err.contains("no-cifar") && err.contains("data_batch_1.bin"), "{err}");

    let text = config("svhn", &missing, "[model.mlp]");
    let err = sorted_runner::config::Experiment::from_toml(&text, Path::new("x.toml")).unwrap_err().to_string();
    assert!(err.contains("svhn") || err.contains("dataset"), "{err}");
}

#[test]
fn a_resnet_and_a_mobilenet_v2_train_export_and_load_back() {
    let _guard = rng_guard();
    for (kind, model) in [
        ("resnet", "[model.resnet]\nblocks_per_stage = [1, 1]\nstrides = [2, 2]"),
        // MobileNetV2 trains slowly on Flex (depthwise convolutions): one step, narrow last conv,
        // a strided stem (the export must rebuild it from the config).
        ("mobilenet_v2", "[model.mobilenet_v2]\nwidth_multiplier = 0.5\nscale_last_conv = true\nstem_stride = 2"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        cifar10_fixture(dir.path(), 4);
        let mut text = config("cifar10", dir.path(), model);
        if kind == "mobilenet_v2" {
            text = text.replace("steps = 3", "steps = 1");
        }
        let (report, manifest) = train_and_export(dir.path(), &text);
        assert_eq!(report.n_sub_models, 6, "{kind}");
        assert_eq!(manifest["model"], kind);
        assert!(
            manifest["max_abs_diff_vs_sliced"].as_f64().unwrap() < 1e-4,
            "{kind}: {}",
            manifest["max_abs_diff_vs_sliced"]
        );
        // The export loads back from its folder alone and gives the exported outputs.
        let device = Default::default();
        let (a, _) = sorted_runner::load_export::<burn::backend::Flex>(
            &dir.path().join("export"),
            sorted_runner::ExportWeights::Safetensors,
            &device,
        )
        .unwrap();
        let (b, _) = sorted_runner::load_export::<burn::backend::Flex>(
            &dir.path().join("export"),
            sorted_runner::ExportWeights::BurnRecord,
            &device,
        )
        .unwrap();
        let x = burn::tensor::Tensor::<burn::backend::Flex, 4>::ones([2, 3, 32, 32], &device);
        assert_eq!(a.forward(x.clone()).into_data(), b.forward(x).into_data(), "{kind}");
    }
}

#[test]
fn model_options_that_do_not_fit_the_space_are_rejected_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = config("cifar10", dir.path(), "[model.resnet]\nblocks_per_stage = [1, 2]");
    let err = sorted_runner::config::Experiment::from_toml(&text, Path::new("x.toml")).unwrap_err().to_string();
    assert!(err.contains("model.resnet.blocks_per_stage") && err.contains("x.toml"), "{err}");
    let text =
        config("cifar10", dir.path(), "[model.mobilenet_v2]\nwidth_multiplier = 0.25").replace("[2, 4]", "[2, 400]");
    let err = sorted_runner::config::Experiment::from_toml(&text, Path::new("x.toml")).unwrap_err().to_string();
    assert!(err.contains("space block") && err.contains("mobilenet_v2"), "{err}");
    let text = config("cifar10", dir.path(), "[model.mobilenet_v2]\nstem_stride = 0");
    let err = sorted_runner::config::Experiment::from_toml(&text, Path::new("x.toml")).unwrap_err().to_string();
    assert!(err.contains("model.mobilenet_v2.stem_stride") && err.contains("1..=4"), "{err}");
}
