//! Deployment on a trained run: profile, select under budgets, and exports that load back.

#![cfg(feature = "flex")]

use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use sorted_data::{ImageBatcher, Mnist};
use sorted_nn::{NormPass, SubModelNormStats};
use sorted_runner::profile::ProfileReport;
use sorted_runner::report::RunReport;
use sorted_runner::{Command, ExportArgs, ExportWeights, LayoutArg, ProfileArgs, SelectArgs, load_export, select_cmd};
use sorted_zoo::SortedClassifier;

use crate::common::{TINY_MLP, ctx, rng_guard, run_cli, train, write_config};

fn profile(run: &Path, batch_size: usize) -> ProfileReport {
    profile_in(run, batch_size, LayoutArg::InputMajor, "")
}

fn profile_in(run: &Path, batch_size: usize, weight_layout: LayoutArg, suffix: &str) -> ProfileReport {
    let args = ProfileArgs {
        run: run.into(),
        batch_size,
        warmup: 1,
        repeats: 5,
        compare_dense: true,
        weight_layout,
        out: None,
    };
    run_cli(Command::Profile(args)).unwrap();
    ProfileReport::read(&run.join(format!("profile/cpu-b{batch_size}{suffix}"))).unwrap()
}

fn select_args(run: &Path) -> SelectArgs {
    SelectArgs {
        run: run.into(),
        max_latency_ms: None,
        max_params: None,
        max_flops: None,
        batch_size: 1,
        weight_layout: LayoutArg::InputMajor,
        profile: None,
        json: false,
    }
}

fn dominates(a: &sorted_runner::profile::ProfileRow, b: &sorted_runner::profile::ProfileRow) -> bool {
    let (la, lb) = (a.latency.median_ms, b.latency.median_ms);
    la <= lb && a.accuracy >= b.accuracy && (la < lb || a.accuracy > b.accuracy)
}

/// The images of the tiny run's test set, normalised as in training.
fn test_images(n: usize) -> Tensor<Flex, 4> {
    let data = Mnist::embedded().unwrap();
    let indices: Vec<usize> = (0..n).collect();
    ImageBatcher::default().batch::<Flex>(&data.test, &indices, &Default::default()).images
}

#[test]
fn profile_then_select_picks_the_most_accurate_sub_model_that_fits() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&write_config(dir.path(), TINY_MLP), &run, None);

    let report = profile(&run, 1);
    for file in ["profile.json", "profile.csv", "profile.md", "profile.svg"] {
        assert!(run.join("profile/cpu-b1").join(file).is_file(), "missing {file}");
    }
    assert_eq!(report.profile.rows.len(), 6);
    let results = RunReport::read(&run).unwrap();
    for row in &report.profile.rows {
        let r = results.results.iter().find(|r| r.sub_model == row.sub_model).unwrap();
        assert_eq!((row.accuracy, row.params, row.flops), (r.accuracy, r.params, r.flops));
        assert!(row.latency.min_ms > 0.0 && row.latency.min_ms <= row.latency.median_ms);
        assert_eq!(row.latency.repeats, 5);
        assert!((row.ratio_of_ratios - row.latency_ratio / row.flops_ratio).abs() < 1e-9);
        assert_eq!(row.dense_latency.as_ref().unwrap().repeats, 5);
        // The library tests run without the binary's counting allocator.
        assert_eq!(row.peak_bytes, None);
        // The front is exactly the non-dominated set.
        let dominated = report.profile.rows.iter().any(|other| dominates(other, row));
        assert_eq!(row.on_front, !dominated, "{}: on_front {} but dominated {dominated}", row.sub_model, row.on_front);
    }
    let ratios = report.profile.sliced_over_dense.as_ref().unwrap();
    assert_eq!(ratios.n, 6);
    assert!(ratios.p10 <= ratios.median && ratios.median <= ratios.p90 && ratios.p90 <= ratios.max.0);
    let svg = std::fs::read_to_string(run.join("profile/cpu-b1/profile.svg")).unwrap();
    assert!(svg.contains("Pareto front"));

    // Budgets between the fastest and the slowest: the choice fits, and nothing that fits is
    // more accurate.
    let mut latencies: Vec<f64> = report.profile.rows.iter().map(|r| r.latency.median_ms).collect();
    latencies.sort_by(f64::total_cmp);
    for &budget in &latencies {
        let args = SelectArgs { max_latency_ms: Some(budget), ..select_args(&run) };
        let out = select_cmd(&args, sorted_runner::DeviceKind::Cpu, &ctx()).unwrap();
        let chosen = out.chosen.latency_ms.unwrap();
        assert!(chosen <= budget, "chose {chosen} ms over a {budget} ms budget");
        let fitting = report.profile.rows.iter().filter(|r| r.latency.median_ms <= budget);
        let best = fitting.clone().map(|r| r.accuracy).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(out.chosen.accuracy, best);
        assert_eq!(out.n_fitting, fitting.count());
        if let Some(next) = &out.next_better {
            assert!(next.latency_ms.unwrap() > budget && next.accuracy > best);
        }
    }

    // An export carries the profiled latency.
    let out = dir.path().join("export");
    let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: "16-8".into(), out: Some(out.clone()) };
    run_cli(Command::Export(args)).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let row = report.profile.rows.iter().find(|r| r.sub_model == "16-8").unwrap();
    assert_eq!(manifest["latency"][0]["median_ms"].as_f64().unwrap(), row.latency.median_ms);
    assert_eq!(manifest["latency"][0]["batch_size"], 1);

    // Parameter budgets need no profile.
    let smallest = results.results.iter().map(|r| r.params).min().unwrap();
    let args = SelectArgs { max_params: Some(smallest), ..select_args(&run) };
    let out = select_cmd(&args, sorted_runner::DeviceKind::Cpu, &ctx()).unwrap();
    assert_eq!(out.chosen.params, smallest);

    // A budget nothing meets names the cheapest sub-model.
    let args = SelectArgs { max_latency_ms: Some(latencies[0] / 1e3), ..select_args(&run) };
    let err = select_cmd(&args, sorted_runner::DeviceKind::Cpu, &ctx()).unwrap_err().to_string();
    assert!(err.contains("no sub-model fits") && err.contains("cheapest"), "{err}");

    // No profile for that batch size: the error says how to make one.
    let args = SelectArgs { max_latency_ms: Some(1.0), batch_size: 8, ..select_args(&run) };
    let err = format!("{:#}", select_cmd(&args, sorted_runner::DeviceKind::Cpu, &ctx()).unwrap_err());
    assert!(err.contains("profile --run") && err.contains("--batch-size 8"), "{err}");
    let args = SelectArgs { max_latency_ms: Some(1.0), weight_layout: LayoutArg::OutputMajor, ..select_args(&run) };
    let err = format!("{:#}", select_cmd(&args, sorted_runner::DeviceKind::Cpu, &ctx()).unwrap_err());
    assert!(err.contains("--weight-layout output-major"), "{err}");

    // The output-major layout: its own folder, the same sub-models and accuracies, and `select`
    // reads it when asked for that layout.
    let output_major = profile_in(&run, 1, LayoutArg::OutputMajor, "-output-major");
    assert_eq!(output_major.meta.weight_layout, sorted_zoo::deploy::WeightLayout::OutputMajor);
    assert_eq!(report.meta.weight_layout, sorted_zoo::deploy::WeightLayout::InputMajor);
    let names =
        |r: &ProfileReport| r.profile.rows.iter().map(|r| (r.sub_model.clone(), r.accuracy)).collect::<Vec<_>>();
    assert_eq!(names(&output_major), names(&report));
    let md = std::fs::read_to_string(run.join("profile/cpu-b1-output-major/profile.md")).unwrap();
    assert!(md.contains("| weight layout | `output-major` |"), "{md}");
    let budget = output_major.profile.rows.iter().map(|r| r.latency.median_ms).fold(0.0, f64::max);
    let args = SelectArgs { max_latency_ms: Some(budget), weight_layout: LayoutArg::OutputMajor, ..select_args(&run) };
    let out = select_cmd(&args, sorted_runner::DeviceKind::Cpu, &ctx()).unwrap();
    assert!(out.chosen.latency_ms.unwrap() <= budget);
}

#[test]
fn exported_safetensors_load_back_into_the_dense_model_with_identical_outputs() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&write_config(dir.path(), TINY_MLP), &run, None);
    let exp = sorted_runner::config::Experiment::from_file(&run.join("config.toml")).unwrap();
    let device = Default::default();
    let sorted = sorted_zoo::SortedMlpConfig::for_space(784, 10, &exp.space).init::<Flex>(&device);
    let sorted = sorted_sched::load_model(&run, sorted, &device).unwrap();
    let images = test_images(64);

    for name in ["8", "16-8", "16-16"] {
        let out = dir.path().join(format!("export-{name}"));
        let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: name.into(), out: Some(out.clone()) };
        run_cli(Command::Export(args)).unwrap();
        let (from_safetensors, manifest) = load_export::<Flex>(&out, ExportWeights::Safetensors, &device).unwrap();
        let (from_record, _) = load_export::<Flex>(&out, ExportWeights::BurnRecord, &device).unwrap();
        assert_eq!(manifest.dense.sub_model, name);
        assert_eq!(manifest.dense.input_shape, [1, 28, 28]);
        let a = from_safetensors.forward(images.clone()).into_data();
        let b = from_record.forward(images.clone()).into_data();
        assert_eq!(a, b, "{name}: safetensors and burn record give different outputs");
        let sub = exp.space.parse_sub_model(name).unwrap();
        let sliced = sorted.forward(images.clone(), &sub, &mut NormPass::Batch).into_data();
        a.assert_approx_eq::<f32>(&sliced, burn::tensor::Tolerance::absolute(1e-5));
    }

    // The tensor names and shapes a PyTorch module with `layers` (ModuleList of Linear) and
    // `head` (Linear) loads with `load_state_dict`.
    let header = safetensors_header(&dir.path().join("export-16-8/model.safetensors"));
    for (name, shape) in [("layers.0.weight", [16, 784]), ("layers.1.weight", [8, 16]), ("head.weight", [10, 8])] {
        assert_eq!(header[name]["shape"], serde_json::json!(shape), "{name}: {header}");
    }
    for name in ["layers.0.bias", "layers.1.bias", "head.bias"] {
        assert!(header.get(name).is_some(), "{name} missing: {header}");
    }
    // transformers and accelerate refuse safetensors files not tagged `pt`.
    assert_eq!(header["__metadata__"]["format"], "pt", "{header}");

    // Weights of another sub-model are rejected, naming the file and the tensors.
    let a = dir.path().join("export-8");
    std::fs::copy(dir.path().join("export-16-8/model.safetensors"), a.join("model.safetensors")).unwrap();
    let err = format!("{:#}", load_export::<Flex>(&a, ExportWeights::Safetensors, &device).unwrap_err());
    assert!(err.contains("export-8/model.safetensors") && err.contains("SHA-256"), "{err}");
    // Without the digests (an export written before them), the tensors themselves are checked.
    let manifest_path = a.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("sha256");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let err = format!("{:#}", load_export::<Flex>(&a, ExportWeights::Safetensors, &device).unwrap_err());
    assert!(err.contains("export-8/model.safetensors") && err.contains("layers.0.weight"), "{err}");
}

#[test]
fn an_exported_cnn_loads_back_with_its_recalibrated_batch_norm() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &crate::common::tiny_cnn());
    let run = dir.path().join("run");
    train(&config, &run, None);
    let out = dir.path().join("exported");
    let args = ExportArgs { run: Some(run.clone()), gguf: None, sub_model: "4-2".into(), out: Some(out.clone()) };
    run_cli(Command::Export(args)).unwrap();
    let device = Default::default();
    let (dense, manifest) = load_export::<Flex>(&out, ExportWeights::Safetensors, &device).unwrap();
    assert_eq!(manifest.dense.model, "cnn");

    let exp = sorted_runner::config::Experiment::from_file(&run.join("config.toml")).unwrap();
    let sorted = sorted_zoo::SortedCnnConfig::for_space(1, [28, 28], 10, &exp.space, vec![2, 2]).init::<Flex>(&device);
    let sorted = sorted_sched::load_model(&run, sorted, &device).unwrap();
    let saved: sorted_runner::eval::NormStatsFile =
        serde_json::from_slice(&std::fs::read(run.join("norm_stats.json")).unwrap()).unwrap();
    let stats = SubModelNormStats::<Flex>::from_vecs(&saved["4-2"], &device);
    let images = test_images(32);
    let sub = exp.space.parse_sub_model("4-2").unwrap();
    let sliced = sorted.forward(images.clone(), &sub, &mut NormPass::Calibrated(&stats)).into_data();
    dense.forward(images).into_data().assert_approx_eq::<f32>(&sliced, burn::tensor::Tolerance::absolute(1e-4));
    let header = safetensors_header(&out.join("model.safetensors"));
    for name in ["convs.0.weight", "norms.0.weight", "norms.0.bias", "norms.0.running_mean", "norms.0.running_var"] {
        assert!(header.get(name).is_some(), "{name} missing: {header}");
    }
}

/// The JSON header of a safetensors file: tensor name -> {dtype, shape, data_offsets}.
fn safetensors_header(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

/// Issue 29 (item 4): the binary's global allocator (mimalloc behind a byte counter) still lets
/// `profile` report a peak heap for every sub-model, and a wider sub-model's is larger.
#[test]
fn issue_29_the_binary_reports_peak_heap_that_grows_with_the_sub_model() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    train(&write_config(dir.path(), &TINY_MLP.replace("widths = [8, 16]", "widths = [8, 256]")), &run, None);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sorted-runner"))
        .args(["--quiet", "profile", "--batch-size", "64", "--warmup", "1", "--repeats", "2", "--run"])
        .arg(&run)
        .status()
        .unwrap();
    assert!(status.success(), "profile failed: {status}");
    let report = ProfileReport::read(&run.join("profile/cpu-b64")).unwrap();
    assert!(report.meta.memory.contains("counting global allocator"), "{}", report.meta.memory);
    let peak = |name: &str| {
        let row = report.profile.rows.iter().find(|r| r.sub_model == name).unwrap_or_else(|| panic!("no row {name}"));
        row.peak_bytes.unwrap_or_else(|| panic!("{name}: no peak"))
    };
    // One 64 x 256 f32 activation alone is 64 KiB; the 8-wide one is 2 KiB.
    assert!(peak("256-256") >= 64 * 1024, "256-256: {} bytes", peak("256-256"));
    assert!(peak("256-256") > peak("8-8") && peak("256") > peak("8"), "8: {}, 256: {}", peak("8"), peak("256"));
}
