//! Run folders: one writer at a time, a run is never replaced by accident, a run whose training
//! failed says so, and a run is only ever read with the config its weights were trained with.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sorted_sched::{Checkpoint, RunLock, TrainState, write_atomic};

/// The marker a failed training leaves in its run folder.
pub const FAILED_FILE: &str = "failed.json";

/// A run folder held by this process (its [`RunLock`] is released on drop).
#[derive(Debug)]
pub struct RunFolder {
    dir: PathBuf,
    _lock: RunLock,
}

impl RunFolder {
    /// Creates (or takes) `dir` for a new run. A folder that already holds a run (its config,
    /// checkpoint or reports) is refused unless `force`, which deletes its checkpoints and its
    /// failure marker first so that nothing of the old run is resumed or reported.
    ///
    /// # Errors
    /// When the folder cannot be created, another process holds it, or it holds a run and
    /// `force` is off.
    pub fn create(dir: &Path, force: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the run folder `{}`", dir.display()))?;
        let lock = RunLock::acquire(dir)?;
        let previous: Vec<&str> =
            ["config.toml", "checkpoint", "results.json"].into_iter().filter(|name| dir.join(name).exists()).collect();
        if !previous.is_empty() {
            anyhow::ensure!(
                force,
                "`{}` already holds a run ({}): choose another --out, continue it with `train --resume {}`, \
                 or pass --force to replace it",
                dir.display(),
                previous.join(", "),
                dir.display()
            );
            for name in ["checkpoint", FAILED_FILE] {
                let path = dir.join(name);
                let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                match removed {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("removing `{}` (--force)", path.display())),
                }
            }
        }
        Ok(Self { dir: dir.to_path_buf(), _lock: lock })
    }

    /// Opens `dir` to continue its run (`resume`) or creates it for a new one
    /// ([`RunFolder::create`] with `force`).
    ///
    /// # Errors
    /// As [`RunFolder::open`] or [`RunFolder::create`].
    pub fn take(dir: &Path, resume: bool, force: bool) -> anyhow::Result<Self> {
        if resume { Self::open(dir) } else { Self::create(dir, force) }
    }

    /// Takes an existing run folder (to resume, evaluate, export or profile it).
    ///
    /// # Errors
    /// When `dir` is not a folder or another process holds it.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(dir.is_dir(), "`{}` is not a run folder (no such folder)", dir.display());
        let lock = RunLock::acquire(dir)?;
        Ok(Self { dir: dir.to_path_buf(), _lock: lock })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `failed.json`: why and where training stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingFailure {
    /// The step (counted from 1) whose loss or update was not finite.
    pub step: u64,
    /// The sub-model whose loss was not finite, if one was.
    pub sub_model: Option<String>,
    /// What happened.
    pub message: String,
}

/// Writes `failed.json` into the run folder.
///
/// # Errors
/// When the file cannot be written.
pub fn mark_failed(run_dir: &Path, failure: &TrainingFailure) -> anyhow::Result<()> {
    let path = run_dir.join(FAILED_FILE);
    let json = serde_json::to_vec_pretty(failure).expect("the failure serialises");
    write_atomic(&path, &json).with_context(|| format!("writing `{}`", path.display()))
}

/// Removes `failed.json` (a resumed run that finishes is no longer failed).
pub fn clear_failure(run_dir: &Path) {
    let _ = std::fs::remove_file(run_dir.join(FAILED_FILE));
}

/// Reads `failed.json`, if the run has one.
///
/// # Errors
/// When the file exists but cannot be read or parsed.
pub fn read_failure(run_dir: &Path) -> anyhow::Result<Option<TrainingFailure>> {
    let path = run_dir.join(FAILED_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("parsing `{}`", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading `{}`", path.display())),
    }
}

/// What a report of a checkpoint must say about the run besides its numbers: `None` for a run
/// that finished; otherwise that it is unfinished or failed, and which step is evaluated.
pub fn run_status(state: &TrainState, failure: Option<&TrainingFailure>) -> Option<String> {
    match failure {
        Some(f) => Some(format!(
            "FAILED at step {}{}: {}; evaluated at the last good checkpoint, step {} of {}",
            f.step,
            f.sub_model.as_ref().map(|s| format!(" (sub-model {s})")).unwrap_or_default(),
            f.message,
            state.step,
            state.total_steps
        )),
        None if state.step < state.total_steps => Some(format!(
            "UNFINISHED: evaluated at step {} of {} (continue with `train --resume`)",
            state.step, state.total_steps
        )),
        None => None,
    }
}

/// Opens the newest checkpoint of a run for reading, with the checks every reader needs: the
/// files verify against the manifest, and the run's `config.toml` (if present) is the config
/// the checkpoint was trained with.
///
/// # Errors
/// A missing or damaged checkpoint, or a run config that differs from the checkpoint's.
pub fn open_checkpoint(run_dir: &Path) -> anyhow::Result<Checkpoint> {
    let checkpoint = Checkpoint::latest(run_dir)
        .with_context(|| format!("`{}` is not a finished or checkpointed run", run_dir.display()))?;
    let run_config = run_dir.join("config.toml");
    if let Ok(text) = std::fs::read_to_string(&run_config) {
        anyhow::ensure!(
            text == checkpoint.config_toml(),
            "`{}` differs from `{}`, the config its weights were trained with: restore it from there \
             (or train a new run with the edited config)",
            run_config.display(),
            checkpoint.config_path().display()
        );
    }
    Ok(checkpoint)
}

/// Checks an experiment name before it becomes a folder name under `runs/`.
///
/// # Errors
/// When the name is empty, too long, or holds anything but letters, digits, `.`, `_`, `-`
/// (or starts with `.`), so that it can never leave `runs/` or hide there.
pub fn check_run_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(format!("{name:?}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_27_run_names_cannot_leave_the_runs_folder() {
        for bad in ["", "../x", "a/b", ".hidden", "a\\b", "x y", &"n".repeat(101)] {
            assert!(check_run_name(bad).is_err(), "{bad:?}");
        }
        for good in ["mnist-mlp", "fashion_resnet.v2", "a"] {
            assert!(check_run_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn issue_27_a_folder_holding_a_run_is_refused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        drop(RunFolder::create(&run, false).unwrap());
        std::fs::write(run.join("config.toml"), "x").unwrap();
        std::fs::create_dir_all(run.join("checkpoint/step-000000001")).unwrap();
        let message = RunFolder::create(&run, false).unwrap_err().to_string();
        assert!(message.contains("already holds a run") && message.contains("--force"), "{message}");
        drop(RunFolder::create(&run, true).unwrap());
        assert!(!run.join("checkpoint").exists());
        let _held = RunFolder::open(&run).unwrap();
        let message = format!("{:#}", RunFolder::create(&run, true).unwrap_err());
        assert!(message.contains("in use"), "{message}");
    }
}
