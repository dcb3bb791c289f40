use std::collections::HashSet;

use sorted_nn::{NestingSpace, NestingSpaceConfig};
use sorted_sched::{SamplerConfig, UniformOver, UniformSamplerConfig};

fn space() -> NestingSpace {
    NestingSpace::new(NestingSpaceConfig {
        depths: vec![1, 2, 3],
        widths: Some(vec![4, 8, 16]),
        block_widths: None,
        tie_widths: false,
    })
    .unwrap()
}

fn parse(text: &str) -> SamplerConfig {
    toml::from_str(text).unwrap()
}

#[test]
fn every_sampler_is_a_pure_function_of_seed_and_step() {
    let s = space();
    for text in [
        "[uniform]",
        "[uniform]\nover = \"axes\"",
        "[sandwich]\nk = 5",
        "[weighted]\ndepth_weights = [1, 1, 2]\nwidth_weights = [0, 1, 1]",
        "[all]",
        "[full]",
    ] {
        let a = parse(text).build(&s, 11).unwrap();
        let b = parse(text).build(&s, 11).unwrap();
        for step in [0, 1, 2, 1000, u64::MAX] {
            assert_eq!(a.sample(step), b.sample(step), "{text} at step {step}");
            assert_eq!(a.sample(step).len(), a.k(), "{text}");
        }
    }
    let a = parse("[uniform]").build(&s, 1).unwrap();
    let b = parse("[uniform]").build(&s, 2).unwrap();
    assert!((0..20).any(|step| a.sample(step) != b.sample(step)), "seeds must matter");
    assert!((1..20).any(|step| a.sample(step) != a.sample(0)), "steps must matter");
}

#[test]
fn uniform_reaches_every_sub_model_and_is_roughly_uniform() {
    let s = space();
    let sampler =
        SamplerConfig::Uniform(UniformSamplerConfig { k: 4, include_full: false, over: UniformOver::SubModels })
            .build(&s, 3)
            .unwrap();
    let mut counts = std::collections::HashMap::new();
    for step in 0..3000 {
        for sub in sampler.sample(step) {
            *counts.entry(sub).or_insert(0usize) += 1;
        }
    }
    assert_eq!(counts.len(), s.len());
    let expected = 12000.0 / s.len() as f64;
    for (sub, n) in counts {
        assert!((n as f64 - expected).abs() < 0.5 * expected, "{sub} drawn {n} times, expected about {expected}");
    }
}

#[test]
fn axes_mode_draws_depths_uniformly() {
    let s = space();
    let sampler = parse("[uniform]\nover = \"axes\"").build(&s, 3).unwrap();
    let mut by_depth = [0usize; 4];
    for step in 0..3000 {
        for sub in sampler.sample(step) {
            by_depth[sub.depth()] += 1;
        }
    }
    for (d, &n) in by_depth.iter().enumerate().skip(1) {
        assert!((n as f64 - 4000.0).abs() < 400.0, "depth {d}: {n}");
    }
}

#[test]
fn sandwich_include_full_weighted_all_and_full_keep_their_promises() {
    let s = space();
    let sandwich = parse("[sandwich]\nk = 3").build(&s, 0).unwrap().sample(5);
    assert_eq!(sandwich[..2], [s.largest(), s.smallest()]);
    let with_full = parse("[uniform]\ninclude_full = true").build(&s, 0).unwrap().sample(5);
    assert_eq!(with_full[0], s.largest());
    let weighted =
        parse("[weighted]\nk = 50\ndepth_weights = [0, 1, 0]\nwidth_weights = [0, 0, 1]").build(&s, 0).unwrap();
    assert!(weighted.sample(1).iter().all(|sub| sub.widths() == [16, 16]));
    let all: HashSet<_> = parse("[all]").build(&s, 0).unwrap().sample(0).into_iter().collect();
    assert_eq!(all.len(), s.len());
    assert_eq!(parse("[full]").build(&s, 0).unwrap().sample(9), vec![s.largest()]);
}

fn transformer_space() -> sorted_nn::TransformerSpace {
    sorted_nn::TransformerSpace::new(
        sorted_nn::TransformerSpaceConfig {
            depths: vec![2, 4, 6],
            heads: vec![3, 6, 12],
            ffn: vec![8, 16],
            hidden: None,
        },
        24,
    )
    .unwrap()
}

#[test]
fn transformer_spaces_get_the_generic_samplers() {
    let s = transformer_space();
    for text in ["[uniform]", "[uniform]\nover = \"axes\"\nk = 3", "[sandwich]", "[all]", "[full]"] {
        let sampler = parse(text).build_for(&s, 11).unwrap();
        for step in 0..20 {
            let subs = sampler.sample(step);
            assert_eq!(subs.len(), sampler.k(), "{text}");
            assert_eq!(subs, sampler.sample(step), "{text}: not a pure function of the step");
            assert!(subs.iter().all(|sub| s.contains(sub)), "{text}");
        }
    }
    assert_eq!(parse("[all]").build_for(&s, 0).unwrap().sample(0).len(), 18);
    let sandwich = parse("[sandwich]").build_for(&s, 0).unwrap().sample(3);
    assert_eq!((sandwich[0], sandwich[1]), (s.largest(), s.smallest()));
    // Uniform over axes reaches every option of every axis.
    let sampler = parse("[uniform]\nover = \"axes\"").build_for(&s, 5).unwrap();
    let seen: HashSet<_> = (0..200).flat_map(|step| sampler.sample(step)).collect();
    assert_eq!(seen.len(), 18);
}

#[test]
fn fixed_trains_one_sub_model_and_weighted_is_refused_on_transformer_spaces() {
    let s = transformer_space();
    let fixed = parse("[fixed]\nsub_model = \"L4-H6\"").build_for(&s, 0).unwrap();
    assert_eq!(fixed.k(), 1);
    assert_eq!(fixed.sample(9)[0].to_string(), "L4-H6-F16");
    let err = parse("[fixed]\nsub_model = \"L5\"").build_for(&s, 0).unwrap_err().to_string();
    assert!(err.contains("sampler.fixed.sub_model") && err.contains("depth 5"), "{err}");
    let err = parse("[weighted]\ndepth_weights = [1, 1, 1]\nwidth_weights = [1, 1]").build_for(&s, 0).unwrap_err();
    assert!(err.to_string().contains("sampler.weighted"), "{err}");
    // On a per-block space `fixed` reads the widths form.
    let fixed = parse("[fixed]\nsub_model = \"8-16\"").build(&space(), 0).unwrap();
    assert_eq!(fixed.sample(0)[0].widths(), &[8, 16]);
}
