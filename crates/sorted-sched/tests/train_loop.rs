//! The one training loop (`TrainLoop`) on the toy model: stop + resume equals an uninterrupted
//! run, a diverging loss stops it naming the step and the sub-model, and the resumed
//! checkpoint must be the same run's.

use burn::prelude::*;
use sorted_nn::SubModel;
use sorted_sched::{
    AdamOptions, JointLoss, LoopOptions, LrSchedule, OptimizerConfig, SamplerConfig, TrainConfig, TrainError,
    TrainLoop, TrainTask,
};

use crate::toy::{AB as B, Toy, data, rng_guard, space, weights};

/// Fresh toy batches every step; `scale` multiplies the loss (a huge one diverges); `joint`:
/// the step's losses come as one weighted sum ([`TrainTask::joint_loss`]).
struct ToyTask {
    scale: f32,
    joint: bool,
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

    fn joint_loss(
        &self,
        step: &Self::Step,
        model: &Toy<B>,
        subs: &[SubModel],
        weights: &[f64],
    ) -> Option<JointLoss<B>> {
        if !self.joint {
            return None;
        }
        let losses: Vec<Tensor<B, 1>> =
            subs.iter().enumerate().map(|(i, sub)| self.loss(step, model, i, sub)).collect();
        let values = losses.iter().map(|l| l.clone().into_scalar().elem::<f64>()).collect();
        let total = losses.into_iter().zip(weights).map(|(l, w)| l.mul_scalar(*w)).reduce(|a, b| a + b)?;
        Some(JointLoss { total, losses: values })
    }
}

fn run(dir: &std::path::Path, seed: u64, options: LoopOptions, scale: f32) -> Result<Vec<f32>, TrainError> {
    run_task(dir, seed, options, &ToyTask { scale, joint: false })
}

fn run_task(dir: &std::path::Path, seed: u64, options: LoopOptions, task: &ToyTask) -> Result<Vec<f32>, TrainError> {
    let train: TrainConfig = toml::from_str("steps = 6\ncheckpoint_every = 2").unwrap();
    let lr = LrSchedule { base: 0.05, warmup_steps: 1, decay: sorted_sched::Decay::Cosine, final_ratio: 0.1 };
    let sampler = SamplerConfig::default().build(&space(), seed).unwrap();
    let optim = OptimizerConfig::Adam(AdamOptions { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weight_decay: None });
    let device = Default::default();
    B::seed(&device, 99);
    let model = Toy::<B>::new(&device);
    let train_loop =
        TrainLoop { train: &train, lr: &lr, sampler: sampler.as_ref(), seed, run_dir: dir, config_toml: "# toy" };
    let outcome = train_loop.run(task, model, optim.init(), &device, options, &mut ())?;
    Ok(weights(&outcome.model))
}

#[test]
fn a_stopped_and_resumed_loop_equals_an_uninterrupted_one() {
    let _guard = rng_guard();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let whole = run(a.path(), 4, LoopOptions::default(), 1.0).unwrap();
    run(b.path(), 4, LoopOptions { resume: false, stop_after: Some(3), ..Default::default() }, 1.0).unwrap();
    let resumed = run(b.path(), 4, LoopOptions { resume: true, stop_after: None, ..Default::default() }, 1.0).unwrap();
    assert_eq!(resumed, whole);
    let err = run(b.path(), 5, LoopOptions { resume: true, stop_after: None, ..Default::default() }, 1.0).unwrap_err();
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

#[test]
fn a_joint_loss_trains_like_the_accumulated_one() {
    let _guard = rng_guard();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let accumulated = run_task(a.path(), 5, LoopOptions::default(), &ToyTask { scale: 1.0, joint: false }).unwrap();
    let joint = run_task(b.path(), 5, LoopOptions::default(), &ToyTask { scale: 1.0, joint: true }).unwrap();
    // One backward pass of the weighted sum vs a weighted sum of backward passes.
    for (x, y) in accumulated.iter().zip(&joint) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
    }
    let diverged = run_task(b.path(), 5, LoopOptions::default(), &ToyTask { scale: f32::INFINITY, joint: true });
    assert!(matches!(diverged, Err(TrainError::Diverged { step: 1, sub_model: Some(_), .. })), "{diverged:?}");
}
