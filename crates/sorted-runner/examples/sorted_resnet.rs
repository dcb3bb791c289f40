//! Trains a sorted ResNet on the embedded MNIST subset with the library crates alone (nothing of
//! `sorted_runner`), then prints the accuracy of a few of its sub-models.
//!
//! `cargo run -p sorted-runner --release --example sorted_resnet`: 200 steps on 4,096 images, a
//! demonstration of the API rather than a result (`configs/fashion-resnet.toml` trains for real).

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;
use sorted_data::{EpochOrder, ImageBatch, ImageData, ImageDataConfig};
use sorted_nn::{NestingSpace, NestingSpaceConfig, NormPass, SubModel};
use sorted_sched::{LoopOptions, OptimizerConfig, RunLock, SamplerConfig, TrainConfig, TrainLoop, TrainTask};
use sorted_zoo::{
    SortedClassifier, SortedResNet, SortedResNetConfig, calibration_batches, evaluate_sub_model, test_batches,
};

type B = Autodiff<Flex>;

/// One shared batch per step; the label loss of each sampled sub-model on it.
struct Task {
    data: ImageData,
    order: EpochOrder,
    loss: CrossEntropyLoss<B>,
}

impl TrainTask<B, SortedResNet<B>> for Task {
    type Sub = SubModel;
    type Step = ImageBatch<B>;
    fn prepare(&self, _model: &SortedResNet<B>, step: u64, _subs: &[SubModel]) -> ImageBatch<B> {
        self.data.batcher.batch(&self.data.train, &self.order.batch_indices(step), &Default::default())
    }
    fn loss(&self, batch: &ImageBatch<B>, model: &SortedResNet<B>, _i: usize, sub: &SubModel) -> Tensor<B, 1> {
        let logits = model.forward(batch.images.clone(), sub, &mut NormPass::Batch);
        self.loss.forward(logits, batch.labels.clone())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = ImageDataConfig { batch_size: 64, train_limit: 4096, test_limit: 1000, ..Default::default() }.load()?;
    // Three stages of one block; depths 1-3 and widths 8 or 16 per block: 2 + 4 + 8 sub-models.
    let (depths, widths) = (vec![1, 2, 3], Some(vec![8, 16]));
    let space = NestingSpace::new(NestingSpaceConfig { depths, widths, block_widths: None, tie_widths: false })?;
    let device = Default::default();
    B::seed(&device, 1); // the initial weights
    let model = SortedResNetConfig::for_space(1, [28, 28], 10, &space, &[1, 1, 1])?.init::<B>(&device);
    let sampler = toml::from_str::<SamplerConfig>("[sandwich]\nk = 3")?.build(&space, 1)?;
    let (train, lr): (TrainConfig, _) =
        (toml::from_str("steps = 200")?, toml::from_str("base = 0.05\nwarmup_steps = 10")?);
    let optim = toml::from_str::<OptimizerConfig>("[sgd]\nmomentum = 0.9")?.init();
    let run_dir = tempfile::tempdir()?; // checkpoints go here, removed at the end
    let _lock = RunLock::acquire(run_dir.path())?;
    let (order, loss) = (EpochOrder::new(data.train.len(), 64, 7), CrossEntropyLossConfig::new().init(&device));
    let task = Task { data, order, loss };
    let train_loop = TrainLoop::new(&train, &lr, sampler.as_ref(), 1, run_dir.path(), "# the sorted_resnet example");
    let trained = train_loop.run(&task, model, optim, &device, LoopOptions::default(), &mut ())?.model.valid();
    // Evaluated as the runner does: BatchNorm recalibrated per sub-model on 512 training images.
    let tests = test_batches::<Flex>(&task.data, 250, &device);
    let calibration = calibration_batches::<Flex>(&task.data, 512, 64, 1, &device);
    for sub in [space.smallest(), space.parse_sub_model("16-8")?, space.largest()] {
        let eval = evaluate_sub_model(&trained, &sub, &tests, &calibration, false, &device);
        println!("sub-model {sub}: {:.1} % test accuracy", 100.0 * eval.accuracy);
    }
    Ok(())
}
