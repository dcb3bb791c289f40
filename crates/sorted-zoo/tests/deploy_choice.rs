//! What `sorted-runner select`, `profile` and `export` compute, done from the library on a tiny
//! model: the budget choice with its reason, peak bytes through a caller's meter, and a dense
//! sub-model checked and written to a folder.

use burn::backend::Flex;
use sorted_nn::NormPass;
use sorted_zoo::deploy::{Budget, BudgetChoice, Candidate, DeployError, LatencyOptions, SortedModel};
use sorted_zoo::{
    AnyClassifier, ClassifierConfig, DENSE_WEIGHT_FILES, ExportWeights, MlpOptions, SortedClassifier, extract_checked,
    load_dense_export, write_dense_export,
};

fn cand(name: &str, accuracy: f64, ms: f64, params: u64, flops: u64) -> Candidate {
    Candidate { name: name.into(), accuracy, latency_ms: Some(ms), params, flops }
}

#[test]
fn a_budget_choice_names_the_best_that_fits_the_next_better_and_why() {
    let _rng = crate::rng_guard();
    let all = [
        cand("4", 0.80, 0.10, 100, 1_000),
        cand("8", 0.90, 0.20, 200, 2_000),
        cand("4-4", 0.85, 0.30, 150, 3_000),
        cand("8-8", 0.95, 0.40, 400, 4_000),
    ];
    let choice = BudgetChoice::new(&all, Budget::latency_ms(0.35), 0.95, Some("a test".into())).unwrap();
    assert_eq!(choice.chosen.sub_model, "8");
    assert!((choice.chosen.relative - 0.90 / 0.95).abs() < 1e-12);
    assert_eq!(choice.next_better.as_ref().unwrap().sub_model, "8-8");
    assert_eq!((choice.n_fitting, choice.n_sub_models, choice.front_len), (3, 4, 3));
    assert_eq!(
        choice.explain(),
        "best under latency <= 0.3500 ms: 8\n  latencies: a test\n  accuracy 90.00% (94.7% of the full model), 200 \
         params, 0.002 MFLOPs, 0.2000 ms\n  next better on the front: 8-8 (95.00%), needs 0.4000 ms: over the budget\n  \
         3 of 4 sub-models fit; the latency front has 3 points\n"
    );
    // The JSON keys `sorted-runner select --json` prints.
    let json = serde_json::to_string(&choice).unwrap();
    let at: Vec<usize> =
        ["budget", "latency_source", "chosen", "next_better", "n_fitting", "n_sub_models", "front_len"]
            .iter()
            .map(|k| json.find(&format!("\"{k}\":")).unwrap())
            .collect();
    assert!(at.is_sorted(), "{json}");

    let unbound = BudgetChoice::new(&all, Budget::params(1_000), 0.95, None).unwrap();
    assert_eq!(unbound.chosen.sub_model, "8-8");
    assert!(unbound.explain().contains("nothing is more accurate: the budget is not binding"));
    assert!(matches!(BudgetChoice::new(&all, Budget::flops(10), 0.95, None), Err(DeployError::NothingFits { .. })));
}

use crate::deploy::tiny_mlp;

#[test]
fn peak_bytes_come_from_the_callers_meter_around_one_forward_pass() {
    let _rng = crate::rng_guard();
    let (space, mlp, images) = tiny_mlp();
    let serving = SortedModel::new(mlp, space.clone()).unwrap();
    let subs: Vec<_> = space.iter().collect();
    let options = LatencyOptions { warmup: 0, repeats: 1 };
    let mut timings = serving.time_sub_models(&images, &subs, options, false).unwrap();
    assert!(timings.iter().all(|t| t.peak_bytes.is_none()));
    // A stand-in meter: runs the pass and reports how many passes it has run so far.
    let mut passes = 0u64;
    serving
        .measure_peak_bytes(&images, &mut timings, |pass| {
            pass();
            passes += 1;
            passes
        })
        .unwrap();
    let peaks: Vec<Option<u64>> = timings.iter().map(|t| t.peak_bytes).collect();
    assert_eq!(peaks, (1..=subs.len() as u64).map(Some).collect::<Vec<_>>());
    // A meter that skips the pass is an error, not a zero.
    let skipped = serving.peak_bytes(&images, &subs[0], |_| 0);
    assert!(matches!(skipped, Err(DeployError::NotMetered { .. })), "{skipped:?}");
}

#[test]
fn a_checked_dense_sub_model_is_written_whole_and_loads_back() {
    let _rng = crate::rng_guard();
    let (space, _, images) = tiny_mlp();
    let device = Default::default();
    let config = ClassifierConfig::Mlp(MlpOptions::default());
    let AnyClassifier::Mlp(mlp) = config.init::<Flex>(&space, [1, 4, 4], 3, &device) else { unreachable!() };
    let sub = space.parse_sub_model("8-4").unwrap();
    let checked = extract_checked(&mlp, &sub, None, images.clone()).unwrap();
    assert!(checked.max_abs_diff_vs_sliced < 1e-5, "{}", checked.max_abs_diff_vs_sliced);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export").join("8-4");
    let manifest = crate::dense_export::mlp_manifest(&sub);
    let mut seen = None;
    let written = write_dense_export(&out, &checked.dense, manifest, |m| {
        seen = Some(m.clone());
        vec![
            ("config.json".into(), serde_json::to_vec_pretty(&m.config_json(&config)).unwrap()),
            ("manifest.json".into(), serde_json::to_vec_pretty(m).unwrap()),
        ]
    })
    .unwrap();
    // The caller's files see the digests of both weight files.
    assert_eq!(seen.as_ref(), Some(&written));
    assert_eq!(written.sha256.keys().map(String::as_str).collect::<Vec<_>>(), DENSE_WEIGHT_FILES);
    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["config.json", "manifest.json", "model.mpk", "model.safetensors"]);
    // Nothing temporary is left beside it.
    assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1);
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "sortednet-mlp");
    assert_eq!(cfg["num_labels"], 3);

    let sliced = mlp.forward(images.clone(), &sub, &mut NormPass::Batch);
    for weights in [ExportWeights::Safetensors, ExportWeights::BurnRecord] {
        let loaded = load_dense_export::<Flex>(&out, weights, &written, &config, &space, &device).unwrap();
        let diff = (loaded.forward(images.clone()) - sliced.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "{weights:?}: {diff}");
    }
    // A second export to the same folder replaces the first.
    let again = write_dense_export(&out, &checked.dense, written.clone(), |_| Vec::new()).unwrap();
    // (The burn record is byte-stable; burn orders the safetensors metadata as it likes.)
    assert_eq!(again.sha256["model.mpk"], written.sha256["model.mpk"]);
    assert!(!out.join("manifest.json").exists());
}
