//! Checkpoints: model + optimizer + training position + config, written atomically.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::record::DefaultRecorder;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::{CheckpointError, SortedOptimizer};

/// Where a run stands: with the seed, the step fixes the sampler's and the data order's
/// position, since both are pure functions of `(seed, step)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: u64,
    /// The run's total steps.
    pub total_steps: u64,
    /// The run's seed.
    pub seed: u64,
    /// The optimizer kind whose state is saved (`sgd`, `adam`, `adamw`).
    pub optimizer: String,
    /// Training wall time so far, in seconds.
    pub train_seconds: f64,
}

const DIR: &str = "checkpoint";

/// The checkpoint folder inside a run folder.
pub fn checkpoint_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(DIR)
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io { action, path: path.to_path_buf(), source }
}

/// Writes `run_dir/checkpoint/` = `model.mpk`, `optim.mpk` (full precision), `state.json` and
/// `config.toml`.
///
/// Atomic as a whole: everything is written into a temporary sibling folder which then replaces
/// the previous checkpoint by rename, so an interrupted save leaves the previous checkpoint
/// intact.
///
/// # Errors
/// [`CheckpointError`] naming the file that could not be written.
pub fn save_checkpoint<B, M>(
    run_dir: &Path,
    model: &M,
    optim: &SortedOptimizer<M, B>,
    state: &TrainState,
    config_toml: &str,
) -> Result<PathBuf, CheckpointError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let dest = checkpoint_dir(run_dir);
    let tmp = run_dir.join(format!(".{DIR}.tmp-{}", std::process::id()));
    let old = run_dir.join(format!(".{DIR}.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
    let model_path = tmp.join("model");
    model.clone().save_file(&model_path, &DefaultRecorder::new()).map_err(|source| CheckpointError::Record {
        action: "writing model",
        path: model_path.clone(),
        source,
    })?;
    optim.save(&tmp.join("optim"))?;
    let state_path = tmp.join("state.json");
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    write_atomic(&state_path, &json).map_err(io("writing", &state_path))?;
    let config_path = tmp.join("config.toml");
    write_atomic(&config_path, config_toml.as_bytes()).map_err(io("writing", &config_path))?;

    let had_old = dest.exists();
    if had_old {
        std::fs::rename(&dest, &old).map_err(io("moving aside", &dest))?;
    }
    std::fs::rename(&tmp, &dest).map_err(io("renaming into place", &tmp))?;
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(dest)
}

/// Reads the training state of the checkpoint in `run_dir`.
///
/// # Errors
/// [`CheckpointError::Missing`] when there is no checkpoint; [`CheckpointError::State`] when
/// `state.json` is invalid.
pub fn read_state(run_dir: &Path) -> Result<TrainState, CheckpointError> {
    let path = checkpoint_dir(run_dir).join("state.json");
    if !path.exists() {
        return Err(CheckpointError::Missing { dir: run_dir.to_path_buf() });
    }
    let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
    serde_json::from_slice(&bytes).map_err(|source| CheckpointError::State { path, source })
}

/// Reads the config text saved with the checkpoint in `run_dir`.
///
/// # Errors
/// [`CheckpointError`] when the file is missing or unreadable.
pub fn read_config(run_dir: &Path) -> Result<String, CheckpointError> {
    let path = checkpoint_dir(run_dir).join("config.toml");
    if !path.exists() {
        return Err(CheckpointError::Missing { dir: run_dir.to_path_buf() });
    }
    std::fs::read_to_string(&path).map_err(io("reading", &path))
}

/// Loads the model weights of the checkpoint in `run_dir` into `model` (built from the same
/// config), restoring its parameter ids.
///
/// # Errors
/// [`CheckpointError`] when the record is missing or does not fit the model.
pub fn load_model<B: burn::prelude::Backend, M: burn::module::Module<B>>(
    run_dir: &Path,
    model: M,
    device: &B::Device,
) -> Result<M, CheckpointError> {
    let path = checkpoint_dir(run_dir).join("model");
    model.load_file(&path, &DefaultRecorder::new(), device).map_err(|source| CheckpointError::Record {
        action: "reading model",
        path,
        source,
    })
}

/// Loads model, optimizer state and training state for an exact resume.
///
/// # Errors
/// [`CheckpointError`] when a file is missing, invalid, or the optimizer kind differs.
pub fn load_checkpoint<B, M>(
    run_dir: &Path,
    model: M,
    optim: SortedOptimizer<M, B>,
    device: &B::Device,
) -> Result<(M, SortedOptimizer<M, B>, TrainState), CheckpointError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let state = read_state(run_dir)?;
    if state.optimizer != optim.kind() {
        return Err(CheckpointError::OptimizerKind {
            path: checkpoint_dir(run_dir),
            expected: optim.kind().to_string(),
            found: state.optimizer,
        });
    }
    let model = load_model(run_dir, model, device)?;
    let optim = optim.load(&checkpoint_dir(run_dir).join("optim"), device)?;
    Ok((model, optim, state))
}
