//! The one training loop (`TrainLoop`) on the toy model: stop + resume equals an uninterrupted
//! run, a diverging loss stops it naming the step and the sub-model, and the resumed
//! checkpoint must be the same run's.

use burn::prelude::*;
use sorted_nn::SubModel;
use sorted_sched::{
    AdamOptions, LoopOptions, LrSchedule, OptimizerConfig, SamplerConfig, TrainConfig, TrainError, TrainLoop, TrainTask,
};

use crate::toy::{AB as B, Toy, data, rng_guard, space, weights};

/// Fresh toy batches every step; `scale` multiplies the loss (a huge one diverges).
struct ToyTask {
    scale: f32,
}

impl TrainTask<B, Toy<B>> for ToyTask {
    type Sub = SubModel;
    type Step = (Tensor<B, 2>, Tensor<B, 2>);

    fn prepare(&self, _model: &Toy<B>, step: u64, _subs: &[SubModel]) -> Self::Step {
        data(&Default::default(), step)
    }

    fn loss(&self, step: &Self::Step, model: &Toy<B>, _index: usize, sub: &SubModel) -> Tensor<B, 1> {
        model.loss(step.0.clone(), step.1.clone(), sub).mul_scalar(self.scale)
    }
}

fn run(dir: &std::path::Path, seed: u64, options: LoopOptions, scale: f32) -> Result<Vec<f32>, TrainError> {
    let train: TrainConfig = toml::from_str("steps = 6\ncheckpoint_every = 2").unwrap();
    let lr = LrSchedule { base: 0.05, warmup_steps: 1, decay: sorted_sched::Decay::Cosine, final_ratio: 0.1 };
    let sampler = SamplerConfig::default().build(&space(), seed).unwrap();
    let optim = OptimizerConfig::Adam(AdamOptions { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: None });
    let device = Default::default();
    B::seed(&device, 99);
    let model = Toy::<B>::new(&device);
    let train_loop =
        TrainLoop { train: &train, lr: &lr, sampler: sampler.as_ref(), seed, run_dir: dir, config_toml: "# toy" };
    let outcome = train_loop.run(&ToyTask { scale }, model, optim.init(), &device, options, &mut ())?;
    Ok(weights(&outcome.model))
}

#[test]
fn a_stopped_and_resumed_loop_equals_an_uninterrupted_one() {
    let _guard = rng_guard();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let whole = run(a.path(), 4, LoopOptions::default(), 1.0).unwrap();
    run(b.path(), 4, LoopOptions { resume: false, stop_after: Some(3) }, 1.0).unwrap();
    let resumed = run(b.path(), 4, LoopOptions { resume: true, stop_after: None }, 1.0).unwrap();
    assert_eq!(resumed, whole);
    let err = run(b.path(), 5, LoopOptions { resume: true, stop_after: None }, 1.0).unwrap_err();
    assert!(matches!(err, TrainError::OtherRun { found_seed: 4, seed: 5, .. }), "{err}");
}

#[test]
fn a_non_finite_loss_stops_the_loop_naming_the_step_and_the_sub_model() {
    let _guard = rng_guard();
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path(), 4, LoopOptions::default(), f32::INFINITY).unwrap_err();
    assert!(matches!(&err, TrainError::Diverged { step: 1, sub_model: Some(_), .. }), "{err}");
    assert!(err.to_string().contains("step 1") && err.to_string().contains("inf"), "{err}");
}
