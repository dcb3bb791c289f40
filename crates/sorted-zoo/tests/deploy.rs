//! The serving handle, the Pareto front and budget selection.

use burn::backend::Flex;
use burn::prelude::*;
use sorted_nn::{NestingSpace, NestingSpaceConfig, NormPass};
use sorted_zoo::deploy::{
    Budget, Candidate, CostAxis, DeployError, LatencyOptions, LatencyProfile, SortedModel, WeightLayout, pareto_front,
    select,
};
use sorted_zoo::{SortedClassifier, SortedCnn, SortedCnnConfig, SortedMlp, SortedMlpConfig};

/// Depths 1-2 at `widths` (the deploy, deploy-choice and dense-export tests' space).
pub(crate) fn space(widths: &[usize]) -> NestingSpace {
    NestingSpace::new(NestingSpaceConfig {
        depths: vec![1, 2],
        widths: Some(widths.to_vec()),
        block_widths: None,
        tie_widths: false,
    })
    .unwrap()
}

/// A 16-input MLP with widths 4 and 8 at depths 1-2, and 5 random 4x4 images.
pub(crate) fn tiny_mlp() -> (NestingSpace, SortedMlp<Flex>, Tensor<Flex, 4>) {
    let device = Default::default();
    let space = space(&[4, 8]);
    let mlp = SortedMlpConfig::for_space(16, 3, &space).init::<Flex>(&device);
    let images = Tensor::<Flex, 4>::random([5, 1, 4, 4], burn::tensor::Distribution::Default, &device);
    (space, mlp, images)
}

/// A BatchNorm CNN on 8x8 images with widths 2 and 4 at depths 1-2, and 6 random images.
fn tiny_cnn() -> (NestingSpace, SortedCnn<Flex>, Tensor<Flex, 4>) {
    let device = Default::default();
    let space = space(&[2, 4]);
    let cnn = SortedCnnConfig::for_space(1, [8, 8], 3, &space, vec![1, 2]).init::<Flex>(&device);
    let images = Tensor::<Flex, 4>::random([6, 1, 8, 8], burn::tensor::Distribution::Default, &device);
    (space, cnn, images)
}

fn cand(name: &str, accuracy: f64, ms: f64, params: u64) -> Candidate {
    Candidate { name: name.into(), accuracy, latency_ms: Some(ms), params, flops: 2 * params }
}

#[test]
fn the_front_is_the_non_dominated_set_and_selection_is_the_best_that_fits() {
    let _rng = crate::rng_guard();
    // A grid with ties and dominated points, checked against brute force for every budget.
    let all: Vec<Candidate> = (0..40)
        .map(|i| {
            let ms = 0.1 + f64::from((i * 7) % 13) * 0.05;
            let acc = 0.80 + f64::from((i * 5) % 11) * 0.01;
            cand(&format!("s{i}"), acc, ms, 100 + (i as u64 * 37) % 500)
        })
        .collect();
    for axis in [CostAxis::LatencyMs, CostAxis::Params, CostAxis::Flops] {
        let cost = |c: &Candidate| axis.cost(c).unwrap();
        let front = pareto_front(&all, axis).unwrap();
        for (i, c) in all.iter().enumerate() {
            let dominated = all.iter().any(|o| {
                cost(o) <= cost(c) && o.accuracy >= c.accuracy && (cost(o) < cost(c) || o.accuracy > c.accuracy)
            });
            // Exact duplicates keep one representative; none here is dominated.
            if dominated {
                assert!(!front.contains(&i), "{axis:?}: dominated {} on the front", c.name);
            }
        }
        for w in front.windows(2) {
            assert!(cost(&all[w[0]]) < cost(&all[w[1]]) || cost(&all[w[0]]) == cost(&all[w[1]]));
            assert!(all[w[0]].accuracy < all[w[1]].accuracy);
        }
        let mut budgets: Vec<f64> = all.iter().map(cost).collect();
        budgets.sort_by(f64::total_cmp);
        for &max in &budgets {
            let budget = Budget { axis, max };
            let s = select(&all, budget).unwrap();
            let best = all.iter().filter(|c| cost(c) <= max).map(|c| c.accuracy).fold(f64::NEG_INFINITY, f64::max);
            assert!(cost(&all[s.chosen]) <= max);
            assert_eq!(all[s.chosen].accuracy, best);
            assert!(front.contains(&s.chosen));
            assert_eq!(s.n_fitting, all.iter().filter(|c| cost(c) <= max).count());
            if let Some(n) = s.next_better {
                assert!(cost(&all[n]) > max && all[n].accuracy > best);
            } else {
                assert_eq!(best, all.iter().map(|c| c.accuracy).fold(f64::NEG_INFINITY, f64::max));
            }
        }
    }
}

#[test]
fn bad_candidates_and_impossible_budgets_are_clear_errors() {
    let _rng = crate::rng_guard();
    let ok = [cand("a", 0.9, 1.0, 10), cand("b", 0.95, 2.0, 20)];
    let err = select(&ok, Budget::latency_ms(0.5)).unwrap_err().to_string();
    assert!(err.contains("no sub-model fits latency <= 0.5000 ms") && err.contains("a, needs 1.0000 ms"), "{err}");
    assert!(matches!(select(&[], Budget::params(1)), Err(DeployError::NoCandidates)));
    let mut missing = ok.clone();
    missing[1].latency_ms = None;
    let err = select(&missing, Budget::latency_ms(5.0)).unwrap_err().to_string();
    assert!(err.contains("candidate b") && err.contains("latency") && err.contains("missing"), "{err}");
    let mut nan = ok.clone();
    nan[0].accuracy = f64::NAN;
    assert!(matches!(select(&nan, Budget::params(100)), Err(DeployError::BadAccuracy { .. })));
    // Parameter budgets work without latencies.
    assert_eq!(select(&missing, Budget::params(15)).unwrap().chosen, 0);
}

#[test]
fn the_handle_serves_every_sub_model_like_the_model_itself() {
    let _rng = crate::rng_guard();
    let (space, mlp, images) = tiny_mlp();
    let expected: Vec<_> =
        space.iter().map(|sub| mlp.forward(images.clone(), &sub, &mut NormPass::Batch).into_data()).collect();
    let handle = SortedModel::new(mlp, space.clone()).unwrap();
    for (sub, want) in space.iter().zip(expected) {
        assert!(handle.is_ready(&sub));
        assert_eq!(handle.forward(images.clone(), &sub).unwrap().into_data(), want);
    }
    let subs: Vec<_> = space.iter().collect();
    let lat = handle.profile(&images, &subs, LatencyOptions { warmup: 0, repeats: 3 }).unwrap();
    assert_eq!(lat.len(), subs.len());
    assert!(lat.iter().all(|l| l.repeats == 3 && l.min_ms > 0.0));
    let pairs = handle.compare_with_dense(&images, &subs, LatencyOptions { warmup: 1, repeats: 3 }).unwrap();
    assert_eq!(pairs.len(), subs.len());
    assert!(pairs.iter().all(|(s, d)| s.repeats == 3 && d.repeats == 3 && s.min_ms > 0.0 && d.min_ms > 0.0));
    let err = handle.profile(&images, &subs, LatencyOptions { warmup: 0, repeats: 0 }).unwrap_err().to_string();
    assert!(err.contains("repeats"), "{err}");

    // A sub-model of another space is refused, and a space that does not fit the model too.
    let other = self::space(&[2, 8]);
    let err = handle.forward(images.clone(), &other.smallest()).unwrap_err().to_string();
    assert!(err.contains("2 is not in the model's space"), "{err}");
    let (_, mlp, _) = tiny_mlp();
    assert!(SortedModel::new(mlp, self::space(&[4, 16])).is_err());
}

#[test]
fn a_batch_norm_model_serves_only_calibrated_sub_models() {
    let _rng = crate::rng_guard();
    let (space, cnn, images) = tiny_cnn();
    let mut handle = SortedModel::new(cnn, space.clone()).unwrap();
    let sub = space.parse_sub_model("4-2").unwrap();
    assert!(!handle.is_ready(&sub));
    let err = handle.forward(images.clone(), &sub).unwrap_err().to_string();
    assert!(err.contains("4-2 has no BatchNorm statistics"), "{err}");
    assert!(matches!(handle.calibrate(&sub, &[]), Err(DeployError::NoCalibrationData { .. })));

    assert!(handle.pin(&sub).is_err(), "pinning needs statistics");
    handle.calibrate(&sub, std::slice::from_ref(&images)).unwrap();
    assert!(handle.is_ready(&sub));

    // A pinned copy serves the same numbers, and recalibrating drops it (it holds old stats).
    handle.pin(&sub).unwrap();
    assert!(handle.is_pinned(&sub));
    let pinned = handle.forward(images.clone(), &sub).unwrap().into_data();
    pinned.assert_approx_eq::<f32>(
        &handle.forward_sliced(images.clone(), &sub).unwrap().into_data(),
        burn::tensor::Tolerance::absolute(1e-5),
    );
    handle.calibrate(&sub, std::slice::from_ref(&images)).unwrap();
    assert!(!handle.is_pinned(&sub));
    // Calibrating one sub-model does not make another servable.
    assert!(!handle.is_ready(&space.largest()));
    // Served with the statistics of exactly this sub-model: equal to its extracted dense model.
    let dense = handle.extract(&sub).unwrap();
    let served = handle.forward(images.clone(), &sub).unwrap().into_data();
    served.assert_approx_eq::<f32>(
        &sorted_zoo::DenseClassifier::forward(&dense, images).into_data(),
        burn::tensor::Tolerance::absolute(1e-5),
    );
}

/// Start pointer and strides of a Flex tensor's memory.
fn memory(tensor: Tensor<Flex, 2>) -> (usize, Vec<isize>) {
    let flex = tensor.into_primitive().tensor();
    let ptr = flex.storage::<f32>().as_ptr() as usize + 4 * flex.layout().start_offset();
    (ptr, flex.layout().strides().to_vec())
}

#[test]
fn views_and_the_output_major_layout_serve_the_same_logits_without_copying_weights() {
    let _rng = crate::rng_guard();
    let (space, mlp, images) = tiny_mlp();
    let input_major = SortedModel::new(mlp.clone(), space.clone()).unwrap();
    let mut output_major = SortedModel::new(mlp, space.clone()).unwrap().with_weight_layout(WeightLayout::OutputMajor);
    assert_eq!(input_major.weight_layout(), WeightLayout::InputMajor);
    assert_eq!(output_major.weight_layout(), WeightLayout::OutputMajor);

    // The layout is real: the first layer's [16, 8] weight is stored [8, 16] row-major.
    let (_, strides) = memory(input_major.model().blocks[0].weight.val());
    assert_eq!(strides, [8, 1]);
    let (start, strides) = memory(output_major.model().blocks[0].weight.val());
    assert_eq!(strides, [1, 16]);
    // A view copies no weight: the narrowest sub-model's first layer starts where the shared
    // weight does, with the shared weight's strides.
    let view = output_major.extract(&space.smallest()).unwrap();
    assert_eq!(memory(view.layers[0].weight.val()), (start, vec![1, 16]));

    for sub in space.iter() {
        let reference = input_major.forward_sliced(images.clone(), &sub).unwrap().into_data();
        // Views run the same products on the same memory: bit for bit.
        assert_eq!(input_major.forward(images.clone(), &sub).unwrap().into_data(), reference, "{sub}");
        let tolerance = burn::tensor::Tolerance::absolute(1e-5);
        output_major.forward(images.clone(), &sub).unwrap().into_data().assert_approx_eq::<f32>(&reference, tolerance);
        output_major
            .forward_sliced(images.clone(), &sub)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&reference, tolerance);
        // A pinned copy keeps the handle's layout and owns its memory.
        output_major.pin(&sub).unwrap();
        let dense = output_major.dense_copy(&sub).unwrap();
        let (ptr, strides) = memory(dense.layers[0].weight.val());
        assert_ne!(ptr, start);
        assert_eq!(strides, [1, 16]);
        output_major.forward(images.clone(), &sub).unwrap().into_data().assert_approx_eq::<f32>(&reference, tolerance);
    }
    // Changing the layout back keeps the pinned copies, now in the new layout.
    let back = output_major.with_weight_layout(WeightLayout::InputMajor);
    assert!(back.is_pinned(&space.largest()));
    let (_, strides) = memory(back.dense_copy(&space.largest()).unwrap().layers[0].weight.val());
    assert_eq!(strides, [8, 1]);
}

#[test]
fn a_calibrated_batch_norm_model_serves_the_same_logits_in_either_layout() {
    let _rng = crate::rng_guard();
    let (space, cnn, images) = tiny_cnn();
    let sub = space.parse_sub_model("4-2").unwrap();
    let mut handle = SortedModel::new(cnn, space.clone()).unwrap().with_weight_layout(WeightLayout::OutputMajor);
    // Uncalibrated sub-models still have no view to serve.
    let err = handle.forward_view(images.clone(), &sub).unwrap_err().to_string();
    assert!(err.contains("4-2 has no BatchNorm statistics"), "{err}");
    handle.calibrate(&sub, std::slice::from_ref(&images)).unwrap();
    let reference = handle.forward_sliced(images.clone(), &sub).unwrap().into_data();
    let tolerance = burn::tensor::Tolerance::absolute(1e-5);
    handle.forward(images.clone(), &sub).unwrap().into_data().assert_approx_eq::<f32>(&reference, tolerance);
    let mut handle = handle.with_weight_layout(WeightLayout::InputMajor);
    handle.forward(images.clone(), &sub).unwrap().into_data().assert_approx_eq::<f32>(&reference, tolerance);
    assert_eq!(
        handle.forward(images.clone(), &sub).unwrap().into_data(),
        handle.forward_sliced(images.clone(), &sub).unwrap().into_data()
    );

    // New statistics replace the view built with the old ones.
    let shifted = images.clone().mul_scalar(3.0).add_scalar(1.0);
    handle.calibrate(&sub, std::slice::from_ref(&shifted)).unwrap();
    let served = handle.forward(images.clone(), &sub).unwrap().into_data();
    assert_eq!(served, handle.forward_sliced(images, &sub).unwrap().into_data());
    assert_ne!(served.to_vec::<f32>().unwrap(), reference.to_vec::<f32>().unwrap());
}

#[test]
fn a_latency_profile_joins_timings_with_accuracies_and_marks_the_front() {
    let _rng = crate::rng_guard();
    let (space, mlp, images) = tiny_mlp();
    let model = SortedModel::new(mlp, space.clone()).unwrap();
    let subs: Vec<_> = space.iter().collect();
    let options = LatencyOptions { warmup: 1, repeats: 3 };
    let timings = model.time_sub_models(&images, &subs, options, true).unwrap();
    assert!(timings.iter().all(|t| t.dense_latency.is_some() && t.peak_bytes.is_none()));
    // Accuracy grows with FLOPs, as a trained sorted model's does.
    let accuracy = |sub: &sorted_nn::SubModel| Some(model.cost(sub).flops as f64);
    let profile = LatencyProfile::new(timings.clone(), &space.largest(), accuracy).unwrap();
    assert_eq!(profile.rows.len(), subs.len());
    let full = profile.rows.iter().find(|r| r.sub_model == space.largest().to_string()).unwrap();
    assert_eq!((full.latency_ratio, full.flops_ratio), (1.0, 1.0));
    assert_eq!(profile.front.len(), profile.rows.iter().filter(|r| r.on_front).count());
    assert_eq!(profile.sliced_over_dense.as_ref().unwrap().n, subs.len());
    let missing = LatencyProfile::new(timings, &space.largest(), |_| None).unwrap_err();
    assert!(matches!(missing, DeployError::MissingAccuracy { .. }), "{missing}");
}
