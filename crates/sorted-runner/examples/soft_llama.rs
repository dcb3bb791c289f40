//! Sorted fine-tuning (SoFT) of a decoder with the library crates alone (nothing of
//! `sorted_runner`): sub-models over exits x query heads share one forward pass per step, then
//! every sub-model's perplexity on held-out text is printed.
//!
//! `cargo run -p sorted-runner --release --example soft_llama [-- model.gguf text.txt]`: without
//! arguments a tiny random byte-level decoder learns this repository's README.

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use sorted_data::{EpochOrder, LmBatch, LmChunks, LmDataConfig};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_sched::{JointLoss, LoopOptions, OptimizerConfig, RunLock, SamplerConfig, TrainLoop, TrainTask};
use sorted_zoo::llama::{LlamaModelConfig, SoftOptions, SoftTerm, SortedLlama, soft_loss_with};

type B = Autodiff<Flex>;

/// One batch of windows per step; the weighted SoFT loss of the sampled sub-models on it.
struct Task(LmChunks, EpochOrder, SoftOptions);

impl TrainTask<B, SortedLlama<B>> for Task {
    type Sub = TransformerSubModel;
    type Step = LmBatch<B>;
    fn prepare(&self, _model: &SortedLlama<B>, step: u64, _subs: &[Self::Sub]) -> LmBatch<B> {
        self.0.batch(&self.1.batch_indices(step), &Default::default())
    }
    fn loss(&self, b: &LmBatch<B>, m: &SortedLlama<B>, _i: usize, sub: &Self::Sub) -> Tensor<B, 1> {
        soft_loss_with(m, b.inputs.clone(), b.targets.clone(), &[SoftTerm { sub: *sub, weight: 1.0 }], self.2).total
    }
    fn joint_loss(&self, b: &LmBatch<B>, m: &SortedLlama<B>, subs: &[Self::Sub], w: &[f64]) -> Option<JointLoss<B>> {
        let terms: Vec<SoftTerm> = subs.iter().zip(w).map(|(s, w)| SoftTerm { sub: *s, weight: *w }).collect();
        let loss = soft_loss_with(m, b.inputs.clone(), b.targets.clone(), &terms, self.2);
        let losses = loss.terms.iter().map(|t| t.clone().into_scalar().elem::<f64>()).collect();
        Some(JointLoss { total: loss.total, losses })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model_toml = match args.first() {
        Some(gguf) => format!("gguf = '{gguf}'"),
        None => "[random]\nhidden_size = 64\nnum_layers = 4\nnum_heads = 4\nnum_kv_heads = 2\nhead_dim = 16\nintermediate_size = 128".into(),
    };
    let device = Default::default();
    B::seed(&device, 1);
    let (model, bpe) = toml::from_str::<LlamaModelConfig>(&model_toml)?.load::<B>(&device)?;
    let text = args.get(1).cloned().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md").into());
    let data =
        toml::from_str::<LmDataConfig>(&format!("train = '{text}'\nseq_len = 32\nbatch_size = 4"))?.load(&bpe)?;
    let n = model.layers.len();
    let heads = model.layers[0].num_heads;
    let (kv, ffn) = (model.layers[0].num_kv_heads, model.layers[0].gate.d_output_max());
    let config =
        TransformerSpaceConfig { depths: vec![n / 2, n], heads: vec![kv, heads], ffn: vec![ffn], hidden: None };
    let space = TransformerSpace::new(config, model.embedding.dims()[1])?;
    let sampler = toml::from_str::<SamplerConfig>("[uniform]\nk = 2\ninclude_full = true\nover = 'axes'")?
        .build_for(&space, 1)?;
    let (train, lr) = (toml::from_str("steps = 300")?, toml::from_str("base = 1e-2\nwarmup_steps = 30")?);
    let run_dir = tempfile::tempdir()?; // checkpoints go here, removed at the end
    let _lock = RunLock::acquire(run_dir.path())?;
    let task = Task(data.train.clone(), data.train.epoch_order(4, 1), SoftOptions::default());
    let optim = toml::from_str::<OptimizerConfig>("[adamw]")?.init();
    let train_loop = TrainLoop::new(&train, &lr, sampler.as_ref(), 1, run_dir.path(), "# soft_llama");
    let trained = train_loop.run(&task, model, optim, &device, LoopOptions::default(), &mut ())?.model.valid();
    let subs: Vec<TransformerSubModel> = space.iter().collect();
    for (sub, score) in subs.iter().zip(trained.score(&data.eval, &subs, &device)) {
        println!("{sub}: perplexity {:.2}, next-token accuracy {:.1} %", score.perplexity(), 100.0 * score.accuracy);
    }
    Ok(())
}
