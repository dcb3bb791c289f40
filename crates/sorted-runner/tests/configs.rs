use std::path::Path;

use sorted_runner::config::{DEFAULT_CONFIG, Experiment};

fn configs_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

#[test]
fn every_config_in_configs_parses_and_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if sorted_runner::text::is_text_experiment(&text) {
                check_text_config(&path, &text);
                n += 1;
                continue;
            }
            if sorted_runner::lm::is_lm_experiment(&text) {
                let exp = sorted_runner::lm::LmExperiment::from_toml(&text, &path)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                sorted_runner::lm::LmExperiment::from_toml(&exp.to_toml(), &path).unwrap();
                n += 1;
                continue;
            }
            let exp = Experiment::from_file(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            // The resolved form round-trips.
            Experiment::from_toml(&exp.to_toml(), &path).unwrap();
            n += 1;
        }
    }
    assert!(n >= 3, "expected the configs/ folder to hold the example configs, found {n}");
}

/// The configs the result pages link (ablations, baselines, resolved run configs) still parse and
/// validate, so a page's command still runs.
#[test]
fn every_config_under_docs_results_parses_and_validates() {
    let mut paths = Vec::new();
    files_with_extension(&configs_dir().join("../docs/results"), "toml", &mut paths);
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        if sorted_runner::text::is_text_experiment(&text) {
            check_text_config(path, &text);
        } else if sorted_runner::lm::is_lm_experiment(&text) {
            sorted_runner::lm::LmExperiment::from_toml(&text, path)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        } else {
            Experiment::from_file(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        }
    }
    assert!(paths.len() >= 10, "expected the result pages' configs, found {}", paths.len());
}

/// A text experiment always parses; it validates in full (sizes from the pretrained
/// `config.json`, space against them) where `cargo xtask data minilm` has been run.
fn check_text_config(path: &Path, text: &str) {
    use sorted_runner::text::{TextExperiment, TextExperimentConfig, TextModelConfig};
    let mut config: TextExperimentConfig = toml::from_str(text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let TextModelConfig::Bert(bert) = &mut config.model;
    let root = configs_dir().join("..");
    let Some(dir) = bert.pretrained.clone() else { return };
    if !root.join(&dir).join("config.json").exists() {
        eprintln!("{}: parsed; full validation skipped (no {dir}/config.json)", path.display());
        return;
    }
    bert.pretrained = Some(root.join(&dir).display().to_string());
    let exp = TextExperiment::from_config(config, path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    assert!(exp.space.len() >= 24, "{}: {} sub-models", path.display(), exp.space.len());
}

#[test]
fn the_default_config_meets_the_issue_2_targets() {
    let exp = Experiment::from_toml(DEFAULT_CONFIG, Path::new("configs/mnist-mlp.toml")).unwrap();
    assert!(exp.space.len() >= 160, "{} sub-models", exp.space.len());
    assert_eq!(exp.config.data.source, "embedded");
}

fn error_of(text: &str) -> String {
    format!("{:#}", Experiment::from_toml(text, Path::new("my-exp.toml")).unwrap_err())
}

#[test]
fn a_misspelt_key_is_rejected_naming_key_and_file() {
    let text = DEFAULT_CONFIG.replace("warmup_steps", "warmup_stesp");
    let err = error_of(&text);
    assert!(err.contains("warmup_stesp") && err.contains("my-exp.toml"), "{err}");
    let err = error_of(&DEFAULT_CONFIG.replace("[model.mlp]", "[model.mpl]"));
    assert!(err.contains("mpl"), "{err}");
}

#[test]
fn non_ascending_and_out_of_range_options_are_rejected_naming_them() {
    let err = error_of(&DEFAULT_CONFIG.replace("widths = [32, 64, 128, 256]", "widths = [32, 128, 64, 256]"));
    assert!(err.contains("widths[2]") && err.contains("ascending") && err.contains("my-exp.toml"), "{err}");
    let err = error_of(&DEFAULT_CONFIG.replace("depths = [1, 2, 3, 4]", "depths = [0, 1]"));
    assert!(err.contains("depths[0]"), "{err}");
    let err = error_of(&DEFAULT_CONFIG.replace("k = 4", "k = 0"));
    assert!(err.contains("sampler.uniform.k"), "{err}");
    let err = error_of(&DEFAULT_CONFIG.replace("threshold = 0.96", "threshold = 1.5"));
    assert!(err.contains("eval.threshold"), "{err}");
    let err = error_of(&DEFAULT_CONFIG.replace("base = 1e-3", "base = 0.0"));
    assert!(err.contains("lr.base"), "{err}");
}

#[test]
fn distillation_weight_is_checked_naming_the_key() {
    let with = |extra: &str| DEFAULT_CONFIG.replace("[train]\n", &format!("[train]\n{extra}\n"));
    assert!(DEFAULT_CONFIG.contains("[train]\n"));
    Experiment::from_toml(&with("distill = 0.5"), Path::new("my-exp.toml")).unwrap();
    let err = error_of(&with("distill = 1.5"));
    assert!(err.contains("train.distill") && err.contains("[0, 1]") && err.contains("my-exp.toml"), "{err}");
    let err = error_of(&with("distill = 0.5").replace("fresh_batches = false", "fresh_batches = true"));
    assert!(err.contains("train.distill") && err.contains("fresh_batches"), "{err}");
}

#[test]
fn the_fashion_resnet_headline_space_is_honest() {
    use sorted_zoo::{DepthOrder, SortedClassifier, SortedResNetConfig};
    let exp = Experiment::from_file(&configs_dir().join("fashion-resnet.toml")).unwrap();
    assert_eq!(exp.space.len(), 169);
    let mut config =
        SortedResNetConfig::for_space_ordered(1, [28, 28], 10, &exp.space, &[5, 5, 5], DepthOrder::PerStage).unwrap();
    for stage in &mut config.stages {
        stage.stride = 2;
    }
    let model = config.init::<burn::backend::Flex>(&Default::default());
    model.check_space(&exp.space).unwrap();
    let (full, small) = (model.cost(&exp.space.largest()), model.cost(&exp.space.smallest()));
    // The same full ResNet-32 as the first headline run (`fashion-resnet-flat.toml`).
    assert_eq!((full.flops, full.params), (29_261_578, 466_906));
    // The smallest sub-model (one block per stage at 4/16 width) costs 1.3 % of the FLOPs: the
    // issue asks for at most 10 %.
    assert!(small.flops * 100 <= 2 * full.flops, "{} of {}", small.flops, full.flops);
}

#[test]
fn the_fashion_mobilenet_v2_cpu_spaces_are_honest() {
    use sorted_runner::config::ModelConfig;
    use sorted_zoo::{DepthOrder, SortedClassifier, SortedMobileNetV2Config};
    let mut fulls = Vec::new();
    for (file, order) in [
        ("fashion-mobilenetv2-cpu.toml", DepthOrder::Flat),
        ("fashion-mobilenetv2-per-stage.toml", DepthOrder::PerStage),
        ("fashion-mobilenetv2-per-stage-k6.toml", DepthOrder::PerStage),
    ] {
        let exp = Experiment::from_file(&configs_dir().join(file)).unwrap();
        assert_eq!(exp.space.len(), 30, "{file}");
        let ModelConfig::MobilenetV2(opts) = &exp.config.model else { panic!("{file}: not a MobileNetV2 config") };
        assert_eq!((opts.stem_stride, opts.depth_order), (2, order), "{file}");
        let mut config = SortedMobileNetV2Config::cifar(opts.width_multiplier)
            .with_input(1, [28, 28], 10)
            .with_depth_order(opts.depth_order);
        config.stem_stride = opts.stem_stride;
        let model = config.init::<burn::backend::Flex>(&Default::default());
        model.check_space(&exp.space).unwrap();
        let (full, small) = (model.cost(&exp.space.largest()), model.cost(&exp.space.smallest()));
        // The issue asks the smallest sub-model to cost at most 10 % of the full model's FLOPs.
        assert!(small.flops * 10 <= full.flops, "{file}: {} of {}", small.flops, full.flops);
        fulls.push(full);
    }
    // All spaces nest in the same full model.
    assert_eq!((fulls[0], fulls[0]), (fulls[1], fulls[2]));
}

#[test]
fn the_recommended_mobilenet_v2_config_is_the_measured_k6_ablation() {
    // `fashion-mobilenetv2.md`'s headline numbers were produced with the ablation file; the
    // config users run must hold exactly its settings.
    let read = |path: std::path::PathBuf| {
        let mut value: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        value.as_table_mut().unwrap().remove("name");
        value
    };
    let measured = configs_dir().join("../docs/results/fashion-mobilenetv2/ablation-sandwich-6-lr.toml");
    assert_eq!(read(configs_dir().join("fashion-mobilenetv2-per-stage-k6.toml")), read(measured));
}

/// Every file under `dir` (recursively) whose extension is `ext`, appended to `out`.
pub(crate) fn files_with_extension(dir: &std::path::Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_with_extension(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}
