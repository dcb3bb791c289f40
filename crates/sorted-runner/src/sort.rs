//! Importance sorting before training (issue 31): the `[model.bert]` / `[model.llama]` /
//! `[model.<image kind>]` `sort_by` keys of a fresh run, and an image run's `init_from`. The
//! scores, the permutations, the calibration batches and the sorted GGUF are
//! `sorted_zoo::sorting`'s; this file only picks the run's keys and seeds, records the scores
//! beside the run ([`SORT_SCORES_FILE`]) and says what it did. `sorted-runner sort`
//! (`llm/sort.rs`) does the same to a pretrained decoder and writes it out.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use sorted_zoo::AnyClassifier;
use sorted_zoo::sorting::{ImportanceScore, LayerScores, TransformerSort, sort_classifier_on};

use crate::provenance::write_file;

/// The scores a sorted run was sorted by, written into its folder.
pub const SORT_SCORES_FILE: &str = "sort_scores.json";

/// The content of [`SORT_SCORES_FILE`].
#[derive(Serialize)]
struct ScoresFile<'a> {
    /// The importance score.
    score: ImportanceScore,
    /// Calibration batches summed (0 for `magnitude`, which reads the weights only).
    batches: usize,
    /// Per layer, the unit scores in the order of the weights **before** sorting.
    layers: &'a [LayerScores],
}

/// Writes [`SORT_SCORES_FILE`] into `dir` and, unless `quiet`, says what was sorted.
///
/// # Errors
/// The write, naming the file.
pub(crate) fn record_sort<M>(
    dir: &Path,
    what: &str,
    score: ImportanceScore,
    sorted: &TransformerSort<M>,
    quiet: bool,
) -> anyhow::Result<()> {
    let file = ScoresFile { score, batches: sorted.batches, layers: &sorted.scores.layers };
    let summary = format!("{what} of {} layers", sorted.scores.layers.len());
    write_scores(dir, &file, &summary, score, sorted.batches, quiet)
}

/// The content of [`SORT_SCORES_FILE`] for an image model.
#[derive(Serialize)]
struct BlockScoresFile<'a> {
    /// The importance score.
    score: ImportanceScore,
    /// Calibration batches summed (0 for `magnitude`).
    batches: usize,
    /// Per block, the unit scores in the order of the weights **before** sorting.
    blocks: &'a [Vec<f32>],
}

/// Writes `file` as [`SORT_SCORES_FILE`] into `dir` and, unless `quiet`, says what was sorted.
fn write_scores<T: Serialize>(
    dir: &Path,
    file: &T,
    what: &str,
    score: ImportanceScore,
    batches: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    let path = dir.join(SORT_SCORES_FILE);
    write_file(&path, serde_json::to_string_pretty(file).expect("scores serialise").as_bytes())?;
    if !quiet {
        let on = if batches == 0 { "the weights".to_string() } else { format!("{batches} training batches") };
        eprintln!("sorted {what} by {} on {on} -> {}", score.name(), path.display());
    }
    Ok(())
}

/// How a fresh image run starts, before its first step: its model built from the config,
/// loaded from the run `init_from` names (whose model, space and dataset must be this
/// experiment's), then sorted by `sort_by` on the run's first `sort_batches` training batches
/// (the full sub-model, BatchNorm on batch statistics), the scores written to
/// [`SORT_SCORES_FILE`] in `run_dir`. A resumed run never comes here: its checkpoint holds the
/// weights.
///
/// # Errors
/// An `init_from` that is not a checkpointed image run of the same model (naming the key and
/// the run), a batch that does not fit, scores that cannot be applied (naming `sort_by`).
pub(crate) fn start_image_model<B: AutodiffBackend>(
    exp: &crate::config::Experiment,
    data: &crate::data::RunData,
    model: AnyClassifier<B>,
    device: &B::Device,
    run_dir: &Path,
    quiet: bool,
) -> anyhow::Result<AnyClassifier<B>> {
    use anyhow::Context;
    let kind = exp.config.model.kind();
    let mut model = model;
    if let Some(from) = exp.config.model.init_from() {
        let key = format!("model.{kind}.init_from");
        let dir = Path::new(from);
        let _folder = crate::run_folder::RunFolder::open(dir).with_context(|| format!("`{key}` = `{from}`"))?;
        let (earlier, checkpoint) = crate::config::load_run(dir).with_context(|| format!("`{key}` = `{from}`"))?;
        if let Some(differs) = architecture_difference(exp, &earlier) {
            anyhow::bail!(
                "`{key}` = `{from}`: that run was trained with another model: {differs} (`{}` there); \
                 start from a run of the same [model.{kind}], [space] and data.dataset",
                checkpoint.config_path().display()
            );
        }
        model = model.try_map(&LoadFrom(&checkpoint, device)).with_context(|| format!("`{key}` = `{from}`"))?;
        if !quiet {
            eprintln!("started from `{from}` at step {}", checkpoint.state().step);
        }
    }
    if let Some((score, n_batches)) = exp.config.model.sorting() {
        let cfg = &exp.config;
        let order = sorted_data::EpochOrder::new(
            data.train.len(),
            cfg.data.batch_size,
            cfg.seed ^ crate::train::DATA_SEED_SALT,
        );
        let sorted = sort_classifier_on(
            model,
            &exp.space.largest(),
            score,
            n_batches,
            &data.train,
            &order,
            &data.batcher,
            device,
        )
        .with_context(|| format!("sorting by `model.{kind}.sort_by` of `{}`", exp.source.display()))?;
        let file = BlockScoresFile { score, batches: sorted.batches, blocks: &sorted.blocks };
        let what = format!("the {kind}'s units of {} blocks", sorted.blocks.len());
        write_scores(run_dir, &file, &what, score, sorted.batches, quiet)?;
        model = sorted.model;
    }
    Ok(model)
}

/// The first key (`model.*`, `space.*` or `data.dataset`) whose value differs between `exp`
/// and `earlier`, with both values; `None` when a checkpoint of `earlier` fits `exp`'s model.
fn architecture_difference(exp: &crate::config::Experiment, earlier: &crate::config::Experiment) -> Option<String> {
    let part = |e: &crate::config::Experiment| {
        let mut table = toml::Table::new();
        table.insert("model".into(), value(&e.config.model.architecture()));
        table.insert("space".into(), value(&e.config.space));
        let mut data = toml::Table::new();
        data.insert("dataset".into(), value(&e.config.data.dataset));
        table.insert("data".into(), toml::Value::Table(data));
        toml::Value::Table(table)
    };
    first_difference("", &part(exp), &part(earlier))
}

/// A config section as a TOML value.
fn value<T: Serialize>(section: &T) -> toml::Value {
    toml::Value::try_from(section).expect("config sections serialise to TOML")
}

/// The first key under `prefix` where `a` and `b` differ, as `key: here X, there Y`.
fn first_difference(prefix: &str, a: &toml::Value, b: &toml::Value) -> Option<String> {
    let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match (a, b) {
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(&join(k), p, q),
                (p, q) => {
                    let show = |v: Option<&toml::Value>| v.map_or("unset".to_string(), ToString::to_string);
                    Some(format!("`{}`: here {}, there {}", join(k), show(p), show(q)))
                }
            })
        }
        _ if a == b => None,
        _ => Some(format!("`{prefix}`: here {a}, there {b}")),
    }
}

/// Loads a checkpoint's weights into a model of any family (shapes checked), through
/// [`AnyClassifier::try_map`].
struct LoadFrom<'a, B: burn::tensor::backend::Backend>(&'a sorted_sched::Checkpoint, &'a B::Device);

impl<B: burn::tensor::backend::Backend> sorted_zoo::ClassifierMap<B> for LoadFrom<'_, B> {
    type Error = sorted_sched::CheckpointError;

    fn map<M: sorted_zoo::SortedClassifier<B>>(&self, model: M) -> Result<M, Self::Error> {
        self.0.load_model(model, self.1)
    }
}
