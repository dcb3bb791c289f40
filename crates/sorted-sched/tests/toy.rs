//! A tiny sorted model built straight from `sorted-nn` layers (the scheduler must not depend on
//! the zoo).

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::relu;
use sorted_nn::{NestingSpace, NestingSpaceConfig, SortedLinear, SortedLinearConfig, SubModel};

pub type AB = Autodiff<Flex>;

/// The backend's random generator is process-global (`B::seed`), and the test harness runs
/// tests on parallel threads: tests that compare seeded runs hold this lock so that no other
/// test draws from the generator in between.
pub static RNG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds [`RNG_LOCK`] (also after another test panicked while holding it).
pub fn rng_guard() -> std::sync::MutexGuard<'static, ()> {
    RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Module, Debug)]
pub struct Toy<B: Backend> {
    pub hidden: SortedLinear<B>,
    pub out: SortedLinear<B>,
}

impl<B: Backend> Toy<B> {
    pub fn new(device: &B::Device) -> Self {
        Self { hidden: SortedLinearConfig::new(5, 6).init(device), out: SortedLinearConfig::new(6, 2).init(device) }
    }

    pub fn loss(&self, x: Tensor<B, 2>, y: Tensor<B, 2>, sub: &SubModel) -> Tensor<B, 1> {
        let h = relu(self.hidden.forward(x, sub.last_width()));
        (self.out.forward(h, 2) - y).powi_scalar(2).mean()
    }
}

pub fn space() -> NestingSpace {
    NestingSpace::new(NestingSpaceConfig {
        depths: vec![1],
        widths: Some(vec![2, 4, 6]),
        block_widths: None,
        tie_widths: false,
    })
    .unwrap()
}

pub fn data(device: &<AB as burn::tensor::backend::BackendTypes>::Device, step: u64) -> (Tensor<AB, 2>, Tensor<AB, 2>) {
    AB::seed(device, 1000 + step);
    (
        Tensor::random([8, 5], Distribution::Normal(0.0, 1.0), device),
        Tensor::random([8, 2], Distribution::Normal(0.0, 1.0), device),
    )
}

pub fn weights(model: &Toy<AB>) -> Vec<f32> {
    let mut v = model.hidden.weight.val().into_data().to_vec::<f32>().unwrap();
    v.extend(model.out.weight.val().into_data().to_vec::<f32>().unwrap());
    v.extend(model.hidden.bias.as_ref().unwrap().val().into_data().to_vec::<f32>().unwrap());
    v
}
