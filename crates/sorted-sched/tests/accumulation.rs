use burn::optim::GradientsParams;
use burn::prelude::*;
use sorted_sched::{
    AdamOptions, LrSchedule, OptimizerConfig, SamplerConfig, SortedOptimizer, TrainState, accumulate,
    accumulate_parallel, load_checkpoint, save_checkpoint,
};

use crate::toy::{AB as B, Toy, data, rng_guard, space, weights};

#[test]
fn accumulated_gradients_equal_the_gradient_of_the_weighted_summed_loss() {
    let _guard = rng_guard();
    let device = Default::default();
    B::seed(&device, 1);
    let model = Toy::<B>::new(&device);
    let (x, y) = data(&device, 0);
    let s = space();
    let subs = vec![s.parse_sub_model("2").unwrap(), s.parse_sub_model("6").unwrap(), s.parse_sub_model("4").unwrap()];
    let w = [1.0, 2.0, 1.0];
    let acc = accumulate(&model, &subs, &w, |m, _, sub| m.loss(x.clone(), y.clone(), sub));

    let total = subs
        .iter()
        .zip([0.25, 0.5, 0.25])
        .map(|(sub, wi)| model.loss(x.clone(), y.clone(), sub).mul_scalar(wi))
        .reduce(|a, b| a + b)
        .unwrap();
    let direct = GradientsParams::from_grads::<B, _>(total.backward(), &model);

    let mut acc_grads = acc.grads;
    let mut direct = direct;
    for id in [model.hidden.weight.id, model.out.weight.id] {
        let a: Tensor<Flex2, 2> = acc_grads.remove(id).expect("accumulated grad");
        let d: Tensor<Flex2, 2> = direct.remove(id).expect("direct grad");
        let diff = (a - d).abs().max().into_scalar();
        assert!(diff < 1e-6, "max |accumulated - direct| = {diff}");
    }
    assert_eq!(acc.losses.len(), 3);
}

type Flex2 = burn::backend::Flex;

#[test]
fn parallel_accumulation_is_bit_identical_to_sequential_for_any_thread_count() {
    let _guard = rng_guard();
    let device = Default::default();
    B::seed(&device, 3);
    let model = Toy::<B>::new(&device);
    let s = space();
    let subs: Vec<_> = ["2", "6", "4", "6", "2"].iter().map(|t| s.parse_sub_model(t).unwrap()).collect();
    // A different batch per sub-model, as with `train.fresh_batches`.
    let batches: Vec<_> = (0..subs.len() as u64).map(|i| data(&device, i)).collect();
    let w = [1.0, 2.0, 1.0, 0.5, 3.0];
    let loss_of =
        |m: &Toy<B>, i: usize, sub: &sorted_nn::SubModel| m.loss(batches[i].0.clone(), batches[i].1.clone(), sub);
    let ids = [model.hidden.weight.id, model.out.weight.id];
    for threads in [1, 2, 3, 8] {
        let seq = accumulate(&model, &subs, &w, loss_of);
        let par = accumulate_parallel(&model, &subs, &w, threads, loss_of);
        assert_eq!(par.losses, seq.losses, "threads = {threads}");
        let (mut a, mut b) = (seq.grads, par.grads);
        for id in ids {
            let ga: Tensor<Flex2, 2> = a.remove(id).expect("sequential grad");
            let gb: Tensor<Flex2, 2> = b.remove(id).expect("parallel grad");
            assert_eq!(ga.into_data(), gb.into_data(), "threads = {threads}");
        }
    }
}

fn config() -> (SamplerConfig, OptimizerConfig, LrSchedule) {
    (
        SamplerConfig::default(),
        OptimizerConfig::Adam(AdamOptions { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: None }),
        LrSchedule { base: 0.05, warmup_steps: 1, decay: sorted_sched::Decay::Cosine, final_ratio: 0.1 },
    )
}

/// Trains steps `from..to` of a 6-step run.
fn train(mut model: Toy<B>, optim: &mut SortedOptimizer<Toy<B>, B>, seed: u64, from: u64, to: u64) -> Toy<B> {
    let device = Default::default();
    let (sampler, _, lr) = config();
    let sampler = sampler.build(&space(), seed).unwrap();
    for step in from..to {
        let (x, y) = data(&device, step);
        let subs = sampler.sample(step);
        let acc = accumulate(&model, &subs, &[], |m, _, sub| m.loss(x.clone(), y.clone(), sub));
        model = optim.step(lr.lr(step, 6), model, acc.grads);
    }
    model
}

fn fresh(seed: u64) -> (Toy<B>, SortedOptimizer<Toy<B>, B>) {
    let device = Default::default();
    B::seed(&device, seed);
    let model = Toy::<B>::new(&device);
    (model, config().1.init())
}

#[test]
fn same_seed_gives_the_same_final_weights() {
    let _guard = rng_guard();
    let (m, mut o) = fresh(5);
    let a = weights(&train(m, &mut o, 5, 0, 6));
    let (m, mut o) = fresh(5);
    let b = weights(&train(m, &mut o, 5, 0, 6));
    assert_eq!(a, b);
    let (m, mut o) = fresh(6);
    let c = weights(&train(m, &mut o, 6, 0, 6));
    assert_ne!(a, c, "another seed must give other weights");
}

#[test]
fn resume_after_a_stop_equals_an_uninterrupted_run() {
    let _guard = rng_guard();
    let (m, mut o) = fresh(9);
    let uninterrupted = weights(&train(m, &mut o, 9, 0, 6));

    let dir = tempfile::tempdir().unwrap();
    let (m, mut o) = fresh(9);
    let m = train(m, &mut o, 9, 0, 3);
    let state = TrainState { step: 3, total_steps: 6, seed: 9, optimizer: o.kind().into(), train_seconds: 0.0 };
    save_checkpoint(dir.path(), &m, &o, &state, "# config", 2).unwrap();
    // Saving again over an existing checkpoint replaces it.
    save_checkpoint(dir.path(), &m, &o, &state, "# config", 2).unwrap();
    drop((m, o));

    // A new "process": a fresh model with other random weights, then the checkpoint.
    let (m, o) = fresh(123);
    let device = Default::default();
    let (m, mut o, state) = load_checkpoint(dir.path(), m, o, &device).unwrap();
    assert_eq!(state.step, 3);
    let resumed = weights(&train(m, &mut o, 9, state.step, 6));
    assert_eq!(resumed, uninterrupted);
}

#[test]
fn loading_a_checkpoint_with_another_optimizer_is_an_error() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let (m, o) = fresh(1);
    let state = TrainState { step: 0, total_steps: 1, seed: 1, optimizer: o.kind().into(), train_seconds: 0.0 };
    save_checkpoint(dir.path(), &m, &o, &state, "", 2).unwrap();
    let sgd = OptimizerConfig::Sgd(sorted_sched::SgdOptions {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    });
    let err = load_checkpoint(dir.path(), m, sgd.init::<B, Toy<B>>(), &Default::default()).err().unwrap();
    assert!(err.to_string().contains("adam") && err.to_string().contains("sgd"), "{err}");
}
