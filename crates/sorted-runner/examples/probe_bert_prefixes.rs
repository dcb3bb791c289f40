//! The zero-shot quality of every sub-model of pretrained MiniLM on Rotten Tomatoes, before and
//! after importance sorting (issue 31): a linear probe on each sub-model's frozen, mean-pooled
//! sentence features, fitted on the first training sentences and scored on the test split.
//! Uses the library crates alone (nothing of `sorted_runner`).
//!
//! `cargo xtask data minilm && cargo xtask data rt-sentiment`, then
//! `cargo run -p sorted-runner --release --example probe_bert_prefixes [-- TRAIN_ROWS SCORE]`
//! (defaults 1024 and `activation`). The space, seed and calibration batches are those of
//! `docs/results/sort-pretrained/rt-minilm-presorted-*.toml`, so the sort is the one those
//! runs trained from. Results: `docs/results/sort-pretrained.md`.

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::prelude::*;
use sorted_data::{EpochOrder, TextBatcher, TextDataConfig, TokenizedDataset};
use sorted_nn::{TransformerSpace, TransformerSpaceConfig, TransformerSubModel};
use sorted_zoo::sorting::{ImportanceScore, sort_bert_on};
use sorted_zoo::{BertModelConfig, DATA_SEED_SALT, LinearProbe, ProbeOptions, SortedBert, sentence_features};

type B = Autodiff<Flex>;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let train_rows: usize = args.first().map_or(Ok(1024), |a| a.parse())?;
    let score: ImportanceScore = toml::Value::String(args.get(1).cloned().unwrap_or("activation".into())).try_into()?;
    let (seed, max_len, batch) = (42, 64, 32);
    let data: TextDataConfig = toml::from_str("source = \"data/rt-sentiment\"\neval_split = \"test\"\nmax_len = 64")?;
    let bert: BertModelConfig = toml::from_str("pretrained = \"data/minilm\"\npooling = \"mean\"\ndropout = 0.1")?;
    let data = data.load(&bert.vocab_path())?;
    let sizes = bert.sizes()?;
    let space_config =
        TransformerSpaceConfig { depths: vec![2, 4, 6], heads: vec![3, 6, 9, 12], ffn: vec![768, 1536], hidden: None };
    let space = TransformerSpace::new(space_config, sizes.hidden_size)?;
    // As a run does: seed, build, load, then sort on the first training batches.
    let device = Default::default();
    B::seed(&device, seed);
    let weights = bert.weights_path().expect("pretrained");
    let model = sizes.init::<B>(&device).load_hf_safetensors(&weights)?;
    let order = EpochOrder::new(data.train.len(), batch, seed ^ DATA_SEED_SALT);
    let sorted = sort_bert_on(model.clone(), score, 4, &data.train, &order, &TextBatcher::new(max_len), &device)?;
    let mut layer0: Vec<usize> = (0..sorted.scores.layers[0].heads.len()).collect();
    layer0.sort_by(|&a, &b| sorted.scores.layers[0].heads[b].total_cmp(&sorted.scores.layers[0].heads[a]));
    println!("{score:?}: layer 0 heads ranked {layer0:?}");
    let n = train_rows.min(data.train.len());
    let train = TokenizedDataset {
        sequences: data.train.sequences[..n].to_vec(),
        labels: data.train.labels[..n].to_vec(),
        ..data.train.clone()
    };
    let probe = |model: &SortedBert<Flex>, sub: &TransformerSubModel| -> anyhow::Result<f64> {
        let x = sentence_features(model, &train, sub, max_len, 64, &device);
        let fitted = LinearProbe::fit(&x, &train.labels, 2, ProbeOptions::default())?;
        Ok(fitted.accuracy(&sentence_features(model, &data.eval, sub, max_len, 64, &device), &data.eval.labels)?)
    };
    let (unsorted, sorted) = (model.valid(), sorted.model.valid());
    println!("| sub-model | unsorted | sorted by `{}` |\n|---|---:|---:|", score.name());
    let started = Instant::now();
    for sub in space.iter() {
        println!("| {sub} | {:.2} | {:.2} |", 100.0 * probe(&unsorted, &sub)?, 100.0 * probe(&sorted, &sub)?);
    }
    println!("{n} training sentences, {} test sentences, {:.0} s", data.eval.len(), started.elapsed().as_secs_f64());
    Ok(())
}
