#![cfg(feature = "flex")]

use sorted_runner::compare::CompareReport;
use sorted_runner::report::RunReport;
use sorted_runner::{Command, CompareArgs};

use crate::common::{rng_guard, run_cli, tiny_image, write_config};

/// A ResNet of two stages and three blocks, 3 steps of [`tiny_image`] on two threads.
fn tiny_resnet() -> String {
    let model = r#"[model.resnet]
blocks_per_stage = [2, 1]
strides = [2, 2]
[space]
depths = [1, 2, 3]
tie_widths = true
block_widths = [[2, 4], [2, 4], [4, 8]]
"#;
    tiny_image(
        "tiny-resnet",
        5,
        model,
        "[train]\nsteps = 3\nthreads = 2\n[eval]\ncalibration_samples = 32\nbatch_size = 32\n",
    )
}

/// `compare` of `config` into `out`: 3 sub-models alone, one after another, fresh sorted run.
fn sample_of_three(config: &std::path::Path, out: &std::path::Path) -> CompareArgs {
    CompareArgs { config: config.into(), out: Some(out.into()), sorted: None, alone: 3, steps: None, jobs: 1 }
}

fn compare(args: CompareArgs) -> anyhow::Result<()> {
    run_cli(Command::Compare(args))
}

#[test]
fn compare_trains_the_sample_alone_and_slices_the_alone_full_model() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &tiny_resnet());
    let out = dir.path().join("cmp");
    let args = || sample_of_three(&config, &out);
    compare(args()).unwrap();
    let report: CompareReport = serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    let sorted = RunReport::read(&out.join("sorted")).unwrap();
    assert_eq!(report.n_sub_models, 6);
    // Smallest, largest and the middle rank by FLOPs.
    let names: Vec<_> = report.rows.iter().map(|r| r.sub_model.as_str()).collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&"2") && names.contains(&"4-4-8"), "{names:?}");
    for row in &report.rows {
        let alone = RunReport::read(&out.join(format!("alone-{}", row.sub_model))).unwrap();
        assert_eq!(alone.n_sub_models, 1, "an alone run holds one model");
        let a = &alone.results[0];
        // The alone model is exactly the sub-model's architecture: same name, params and FLOPs.
        assert_eq!((a.sub_model.as_str(), a.params, a.flops), (row.sub_model.as_str(), row.params, row.flops));
        let s = sorted.results.iter().find(|r| r.sub_model == row.sub_model).unwrap();
        assert_eq!(row.sorted, s.accuracy);
    }
    // Naive slicing of the full sub-model is the alone-trained full model itself.
    let naive = RunReport::read(&out.join("naive")).unwrap();
    assert_eq!(naive.n_sub_models, 6, "every sub-model is sliced");
    assert_eq!(naive.full_accuracy, report.alone_full);
    assert!(report.markdown().contains("| `4-4-8` |"));

    // A second call reuses every finished folder and writes the same table.
    let before = std::fs::read(out.join("naive/results.json")).unwrap();
    compare(args()).unwrap();
    assert_eq!(std::fs::read(out.join("naive/results.json")).unwrap(), before);
    let again: CompareReport = serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(again.rows, report.rows);

    // A sorted run of another config is refused, naming the flag.
    let other =
        CompareArgs { steps: Some(2), sorted: Some(out.join("sorted")), out: Some(dir.path().join("b")), ..args() };
    let err = format!("{:#}", compare(other).unwrap_err());
    assert!(err.contains("--sorted"), "{err}");
}

#[test]
fn compare_jobs_trains_the_alone_runs_as_processes_with_the_same_results() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &tiny_resnet());
    let one_by_one = dir.path().join("seq");
    compare(sample_of_three(&config, &one_by_one)).unwrap();
    // The runner binary itself, reusing the sorted run: three alone runs, two processes at once.
    let parallel = dir.path().join("par");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sorted-runner"))
        .args(["--quiet", "compare", "--alone", "3", "--jobs", "2", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&parallel)
        .arg("--sorted")
        .arg(one_by_one.join("sorted"))
        .status()
        .unwrap();
    assert!(status.success());
    let read = |dir: &std::path::Path| -> CompareReport {
        serde_json::from_slice(&std::fs::read(dir.join("compare.json")).unwrap()).unwrap()
    };
    let (a, b) = (read(&one_by_one), read(&parallel));
    assert_eq!(a.rows.len(), 3);
    for (x, y) in a.rows.iter().zip(&b.rows) {
        // Same backend, seed and thread count: the processes train the very same models.
        assert_eq!((&x.sub_model, x.alone, x.naive, x.sorted), (&y.sub_model, y.alone, y.naive, y.sorted));
        let log = std::fs::read_to_string(parallel.join(format!("alone-{}.log", x.sub_model))).unwrap();
        assert!(log.contains("step 3/3"), "{log}");
        let saved = sorted_runner::config::Experiment::from_file(&parallel.join(format!("alone-{}.toml", x.sub_model)))
            .unwrap();
        assert_eq!(saved.space.len(), 1);
    }
}

/// [`tiny_resnet`] with blocks per stage: depth 2 runs block 0 and block 2 (the first block of
/// each stage), so the space lists blocks 0, 2, 1; trained with the sandwich rule and in-place
/// distillation.
fn tiny_per_stage_resnet() -> String {
    tiny_resnet()
        .replace("name = \"tiny-resnet\"", "name = \"tiny-per-stage\"")
        .replace("strides = [2, 2]", "strides = [2, 2]\ndepth_order = \"per_stage\"")
        .replace("block_widths = [[2, 4], [2, 4], [4, 8]]", "block_widths = [[2, 4], [4, 8], [2, 4]]")
        .replace("[sampler.uniform]\nk = 2", "[sampler.sandwich]\nk = 3")
        .replace("threads = 2", "threads = 2\ndistill = 0.5")
}

#[test]
fn compare_trains_per_stage_sub_models_alone_as_their_own_blocks() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_per_stage_resnet();
    assert!(text.contains("per_stage") && text.contains("[sampler.sandwich]") && text.contains("distill"));
    let config = write_config(dir.path(), &text);
    let out = dir.path().join("cmp");
    compare(sample_of_three(&config, &out)).unwrap();
    let report: CompareReport = serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(report.n_sub_models, 6);
    let sorted = RunReport::read(&out.join("sorted")).unwrap();
    assert!(sorted.results.iter().all(|r| r.accuracy.is_finite()));
    let names: Vec<_> = report.rows.iter().map(|r| r.sub_model.as_str()).collect();
    assert!(names.contains(&"2") && names.contains(&"4-8-4"), "{names:?}");
    for row in &report.rows {
        // Each alone model is the sub-model's own blocks in flat order: same params and FLOPs
        // (the middle sample, depth 2, skips block 1 and keeps the second stage).
        let alone = RunReport::read(&out.join(format!("alone-{}", row.sub_model))).unwrap();
        let a = &alone.results[0];
        assert_eq!((a.params, a.flops), (row.params, row.flops), "{}", row.sub_model);
    }
    let naive = RunReport::read(&out.join("naive")).unwrap();
    assert_eq!(naive.full_accuracy, report.alone_full);
}

#[test]
fn a_mobilenet_v2_sub_model_alone_is_its_slice_of_the_same_allocation() {
    use sorted_runner::config::{Experiment, ModelConfig};
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/fashion-mobilenetv2.toml");
    let exp = Experiment::from_file(&config).unwrap();
    // Depth 13 at the third width option: the middle of the space.
    let sub = exp.space.iter().find(|s| s.depth() == 13 && s.widths()[0] == 4).unwrap();
    let alone = sorted_runner::compare::alone_experiment(&exp, &sub).unwrap();
    assert_eq!(alone.space.len(), 1, "one sub-model");
    let only = alone.space.largest();
    assert_eq!((only.depth(), only.widths()), (sub.depth(), sub.widths()));
    // The same allocation, so the alone model's only sub-model has the sorted one's parameters
    // and FLOPs; its statistics are recalibrated like every alone run's.
    let (ModelConfig::MobilenetV2(a), ModelConfig::MobilenetV2(s)) = (&alone.config.model, &exp.config.model) else {
        panic!("still a MobileNetV2")
    };
    assert_eq!((a.width_multiplier, a.scale_last_conv), (s.width_multiplier, s.scale_last_conv));
    assert_eq!(a.batch_norm, sorted_runner::config::BatchNormStats::Recalibrate);
    assert_eq!(alone.config.sampler, sorted_sched::SamplerConfig::Full(Default::default()));
}

#[test]
fn a_per_stage_mobilenet_v2_sub_model_alone_runs_the_same_blocks() {
    use sorted_runner::config::{Experiment, ModelConfig};
    use sorted_zoo::{DepthOrder, SortedClassifier, SortedMobileNetV2Config};
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/fashion-mobilenetv2-per-stage.toml");
    let exp = Experiment::from_file(&config).unwrap();
    let model_of = |exp: &Experiment| {
        let ModelConfig::MobilenetV2(o) = &exp.config.model else { panic!("a MobileNetV2 config") };
        assert_eq!(o.depth_order, DepthOrder::PerStage);
        let mut config = SortedMobileNetV2Config::cifar(o.width_multiplier)
            .with_input(1, [28, 28], 10)
            .with_depth_order(o.depth_order);
        config.stem_stride = o.stem_stride;
        config.init::<burn::backend::Flex>(&Default::default())
    };
    let sorted = model_of(&exp);
    // Depth 9 (one block per stage, plus the second blocks of stages 2 and 3) and the full depth.
    for sub in exp.space.iter().filter(|s| s.depth() == 9 || s.depth() == 17) {
        let alone = sorted_runner::compare::alone_experiment(&exp, &sub).unwrap();
        let only = alone.space.largest();
        assert_eq!((only.depth(), only.widths()), (sub.depth(), sub.widths()), "{sub}");
        // The alone model keeps the depth order, so its only sub-model is the same blocks at the
        // same widths: the same parameters and FLOPs.
        assert_eq!(model_of(&alone).cost(&only), sorted.cost(&sub), "{sub}");
    }
}
