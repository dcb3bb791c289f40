//! Checkpoints: numbered generations of model + optimizer + training position + config, each
//! either complete and verifiable or absent.
//!
//! Layout of a run folder:
//!
//! ```text
//! checkpoint/step-000000300/{model.mpk, optim.mpk, state.json, config.toml, manifest.json}
//! checkpoint/step-000000400/...                  the newest complete generation is the checkpoint
//! checkpoint/.step-000000500.tmp-<pid>/          a save in progress (or killed): never read
//! ```
//!
//! A generation is written into a temporary folder, every file flushed to disk, and renamed
//! into place; a rename is atomic, so at every instant the newest `step-*` folder is complete
//! (or there is none yet). Its `manifest.json` lists the size and SHA-256 of every file, and
//! loading checks them, so a damaged or edited file is refused, naming it, and an older
//! generation that verifies is offered.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::prelude::Backend;
use burn::record::Recorder;
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::manifest::{
    CheckpointManifest, FileDigest, MANIFEST_FILE, MANIFEST_FORMAT, generation_name, generation_step,
};
use crate::optimizer::StateRecorder;
use crate::{CheckpointError, SortedOptimizer};
use sorted_provenance::{sync_dir, write_synced};

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
const MODEL_FILE: &str = "model.mpk";
const OPTIM_FILE: &str = "optim.mpk";
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.toml";

/// How many generations [`save_checkpoint`] keeps unless told otherwise: the newest and the one
/// before it, so that a damaged newest generation still leaves one to fall back to.
pub const DEFAULT_KEEP: usize = 2;

/// The checkpoint folder inside a run folder (it holds the generations).
pub fn checkpoint_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(DIR)
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CheckpointError + 'a {
    move |source| CheckpointError::Io { action, path: path.to_path_buf(), source }
}

/// Writes a new checkpoint generation `run_dir/checkpoint/step-<step>/` = `model.mpk`,
/// `optim.mpk` (full precision), `state.json`, `config.toml` and `manifest.json`, then deletes
/// all but the newest `keep` generations (at least one is kept) and any folder a killed save
/// left behind.
///
/// Crash-safe: the files are written and flushed in a temporary folder that is renamed into
/// place when complete, so a kill or a full disk at any moment leaves the previous generations
/// as they were. The caller must hold the run folder's [`RunLock`](crate::RunLock).
///
/// Weights holding NaN or infinity are refused: the newest checkpoint is always a usable one.
///
/// # Errors
/// [`CheckpointError::NonFinite`] naming the first parameter that holds NaN or infinity;
/// otherwise [`CheckpointError`] naming the file that could not be written (with the I/O error,
/// e.g. "No space left on device"); the partial folder is removed.
pub fn save_checkpoint<B, M>(
    run_dir: &Path,
    model: &M,
    optim: &SortedOptimizer<M, B>,
    state: &TrainState,
    config_toml: &str,
    keep: usize,
) -> Result<PathBuf, CheckpointError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    if let Some(param) = first_non_finite_parameter(model) {
        return Err(CheckpointError::NonFinite { step: state.step, param });
    }
    let root = checkpoint_dir(run_dir);
    std::fs::create_dir_all(&root).map_err(io("creating", &root))?;
    remove_leftovers(run_dir);
    let name = generation_name(state.step);
    let dest = root.join(&name);
    let tmp = sorted_provenance::temp_sibling(&dest);
    let _ = std::fs::remove_dir_all(&tmp);
    let written = write_generation(&tmp, model, optim, state, config_toml);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    // A generation of the same step exists when a run is stopped again where it was resumed:
    // move it aside first (the older generations stay in place meanwhile).
    let aside = root.join(format!(".{name}.old-{}", std::process::id()));
    if dest.exists() {
        std::fs::rename(&dest, &aside).map_err(io("moving aside", &dest))?;
    }
    std::fs::rename(&tmp, &dest).map_err(io("renaming into place", &tmp))?;
    sync_dir(&root).map_err(io("syncing", &root))?;
    let _ = std::fs::remove_dir_all(&aside);
    prune(&root, keep.max(1))?;
    Ok(dest)
}

fn write_generation<B, M>(
    dir: &Path,
    model: &M,
    optim: &SortedOptimizer<M, B>,
    state: &TrainState,
    config_toml: &str,
) -> Result<(), CheckpointError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    std::fs::create_dir(dir).map_err(io("creating", dir))?;
    let model_bytes = Recorder::<B>::record(&StateRecorder::default(), model.clone().into_record(), ())
        .map_err(|source| CheckpointError::Record { action: "encoding model", path: dir.join(MODEL_FILE), source })?;
    let optim_bytes = optim.to_bytes().map_err(|source| CheckpointError::Record {
        action: "encoding optimizer state",
        path: dir.join(OPTIM_FILE),
        source,
    })?;
    let state_bytes = serde_json::to_vec_pretty(state).expect("the training state serialises");
    let mut manifest =
        CheckpointManifest { format: MANIFEST_FORMAT.into(), step: state.step, files: Default::default() };
    for (name, bytes) in [
        (MODEL_FILE, model_bytes.as_slice()),
        (OPTIM_FILE, optim_bytes.as_slice()),
        (STATE_FILE, state_bytes.as_slice()),
        (CONFIG_FILE, config_toml.as_bytes()),
    ] {
        let path = dir.join(name);
        write_synced(&path, bytes).map_err(io("writing", &path))?;
        manifest.files.insert(name.into(), FileDigest::of(bytes));
    }
    // The manifest goes last: a generation is only ever renamed into place with it.
    let path = dir.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    write_synced(&path, &json).map_err(io("writing", &path))?;
    sync_dir(dir).map_err(io("syncing", dir))
}

/// Removes what interrupted saves left: temporary generation folders in `checkpoint/`, and the
/// `.checkpoint.tmp-*` / `.checkpoint.old-*` folders of the earlier single-folder layout. Only
/// called by the run folder's single writer, so nothing here belongs to a live save.
fn remove_leftovers(run_dir: &Path) {
    let leftovers = |dir: &Path, keep: &dyn Fn(&str) -> bool| {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep(&name) && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    };
    leftovers(&checkpoint_dir(run_dir), &|name| {
        !(name.starts_with(".step-") && name.contains(".tmp-") || name.contains(".old-"))
    });
    leftovers(run_dir, &|name| !(name.starts_with(".checkpoint.tmp-") || name.starts_with(".checkpoint.old-")));
}

/// Deletes all but the newest `keep` generations.
fn prune(root: &Path, keep: usize) -> Result<(), CheckpointError> {
    let generations = list_generations(root)?;
    for (_, dir) in generations.iter().take(generations.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(dir).map_err(io("deleting the old checkpoint", dir))?;
    }
    Ok(())
}

/// The complete generations in `root` (a run's `checkpoint/` folder), oldest first.
fn list_generations(root: &Path) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CheckpointError::Io { action: "listing", path: root.to_path_buf(), source: e }),
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| generation_step(&e.file_name().to_string_lossy()).map(|step| (step, e.path())))
        .filter(|(_, path)| path.is_dir())
        .collect();
    found.sort();
    Ok(found)
}

/// The complete checkpoint generations of a run, oldest first, as `(step, folder)`.
///
/// # Errors
/// [`CheckpointError::Io`] when the checkpoint folder exists but cannot be listed.
pub fn generations(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
    list_generations(&checkpoint_dir(run_dir))
}

/// One opened checkpoint generation: its training state and config are read (and, with a
/// manifest, every file verified); the weights are read on demand.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    manifest: Option<CheckpointManifest>,
    state: TrainState,
    config_toml: String,
}

impl Checkpoint {
    /// Opens the newest complete generation of the run in `run_dir`, verifying every file.
    ///
    /// A run folder written before generations existed (`checkpoint/state.json` directly, no
    /// manifest) is opened unverified ([`Checkpoint::is_verified`] is false).
    ///
    /// # Errors
    /// [`CheckpointError::Missing`] when the run has no checkpoint;
    /// [`CheckpointError::Damaged`] naming the first damaged file of the newest generation and,
    /// in `previous`, the newest older generation that verifies.
    pub fn latest(run_dir: &Path) -> Result<Self, CheckpointError> {
        let root = checkpoint_dir(run_dir);
        let generations = list_generations(&root)?;
        let Some((_, newest)) = generations.last() else {
            if root.join(STATE_FILE).is_file() {
                return Self::open_legacy(&root);
            }
            return Err(CheckpointError::Missing { dir: run_dir.to_path_buf() });
        };
        match Self::open(newest) {
            Ok(checkpoint) => Ok(checkpoint),
            Err(CheckpointError::Damaged { file, reason, .. }) => {
                let previous = generations.iter().rev().skip(1).find(|(_, dir)| Self::open(dir).is_ok());
                Err(CheckpointError::Damaged { file, reason, previous: previous.map(|(_, dir)| dir.clone()) })
            }
            Err(other) => Err(other),
        }
    }

    /// Opens one generation folder (`.../checkpoint/step-000000300`), verifying every file
    /// against its manifest.
    ///
    /// # Errors
    /// [`CheckpointError::Damaged`] when the manifest or a file is missing, unreadable or
    /// differs; [`CheckpointError::State`] when the verified state file is not valid.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let manifest = CheckpointManifest::read(dir)?;
        manifest.verify(dir)?;
        let state_path = dir.join(STATE_FILE);
        let state: TrainState = serde_json::from_slice(&manifest.read_verified(dir, STATE_FILE)?)
            .map_err(|source| CheckpointError::State { path: state_path.clone(), source })?;
        if state.step != manifest.step {
            return Err(CheckpointError::Damaged {
                file: state_path,
                reason: format!("step {}, the manifest says {}", state.step, manifest.step),
                previous: None,
            });
        }
        let config_path = dir.join(CONFIG_FILE);
        let config_toml = String::from_utf8(manifest.read_verified(dir, CONFIG_FILE)?).map_err(|_| {
            CheckpointError::Damaged { file: config_path, reason: "not UTF-8 text".into(), previous: None }
        })?;
        Ok(Self { dir: dir.to_path_buf(), manifest: Some(manifest), state, config_toml })
    }

    fn open_legacy(root: &Path) -> Result<Self, CheckpointError> {
        let state_path = root.join(STATE_FILE);
        let bytes = std::fs::read(&state_path).map_err(io("reading", &state_path))?;
        let state =
            serde_json::from_slice(&bytes).map_err(|source| CheckpointError::State { path: state_path, source })?;
        let config_path = root.join(CONFIG_FILE);
        let config_toml = std::fs::read_to_string(&config_path).map_err(io("reading", &config_path))?;
        Ok(Self { dir: root.to_path_buf(), manifest: None, state, config_toml })
    }

    /// The generation's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where training stood when it was written.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// The experiment config saved with it.
    pub fn config_toml(&self) -> &str {
        &self.config_toml
    }

    /// The path of its config file (for error messages about the config).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Whether its files were checked against a manifest (false only for checkpoints written
    /// before manifests existed).
    pub fn is_verified(&self) -> bool {
        self.manifest.is_some()
    }

    /// The size and SHA-256 of its model file (computed for unverified checkpoints).
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when an unverified model file cannot be read.
    pub fn model_digest(&self) -> Result<FileDigest, CheckpointError> {
        match &self.manifest {
            Some(m) => Ok(m.files.get(MODEL_FILE).cloned().expect("verified manifests list the model")),
            None => {
                let path = self.dir.join(MODEL_FILE);
                crate::manifest::digest_file(&path).map_err(io("reading", &path))
            }
        }
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, CheckpointError> {
        match &self.manifest {
            Some(m) => m.read_verified(&self.dir, name),
            None => {
                let path = self.dir.join(name);
                std::fs::read(&path).map_err(io("reading", &path))
            }
        }
    }

    /// Loads the weights into `model` (built from the same config), restoring its parameter
    /// ids. Every parameter must keep the shape the model was built with.
    ///
    /// # Errors
    /// [`CheckpointError`] when the file is damaged, cannot be decoded, or holds parameters of
    /// other shapes than the model's (a config that does not match the weights).
    pub fn load_model<B: Backend, M: Module<B>>(&self, model: M, device: &B::Device) -> Result<M, CheckpointError> {
        let path = self.dir.join(MODEL_FILE);
        let bytes = self.read(MODEL_FILE)?;
        let record = Recorder::<B>::load(&StateRecorder::default(), bytes, device)
            .map_err(|source| CheckpointError::Record { action: "decoding model", path: path.clone(), source })?;
        load_record_checked(model, record, &path)
    }

    /// Loads the optimizer state into `optim` (fresh, of the kind the config asks for).
    ///
    /// # Errors
    /// [`CheckpointError::OptimizerKind`] when the checkpoint holds another optimizer's state;
    /// otherwise when the file is damaged or cannot be decoded.
    pub fn load_optimizer<B, M>(
        &self,
        optim: SortedOptimizer<M, B>,
        device: &B::Device,
    ) -> Result<SortedOptimizer<M, B>, CheckpointError>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        if self.state.optimizer != optim.kind() {
            return Err(CheckpointError::OptimizerKind {
                path: self.dir.clone(),
                expected: optim.kind().to_string(),
                found: self.state.optimizer.clone(),
            });
        }
        let path = self.dir.join(OPTIM_FILE);
        let bytes = self.read(OPTIM_FILE)?;
        optim.load_bytes(bytes, device).map_err(|source| CheckpointError::Record {
            action: "decoding optimizer state",
            path,
            source,
        })
    }
}

/// Loads `record` (read from `path`) into `model`, refusing parameters whose shape differs from
/// the model's: burn's `load_record` takes any shape, and a mismatch would only surface as a
/// panic in a later forward pass.
///
/// # Errors
/// [`CheckpointError::Shape`] naming the first parameter of another shape.
pub fn load_record_checked<B: Backend, M: Module<B>>(
    model: M,
    record: M::Record,
    path: &Path,
) -> Result<M, CheckpointError> {
    sorted_nn::load_record_same_shapes(model, record)
        .map_err(|mismatch| CheckpointError::Shape { path: path.to_path_buf(), mismatch })
}

/// The path of the first float parameter of `model` that holds NaN or infinity, if any.
pub fn first_non_finite_parameter<B: Backend, M: Module<B>>(model: &M) -> Option<String> {
    let mut visitor = FiniteCheck { path: Vec::new(), first: None };
    model.visit(&mut visitor);
    visitor.first
}

struct FiniteCheck {
    path: Vec<String>,
    first: Option<String>,
}

impl<B: Backend> ModuleVisitor<B> for FiniteCheck {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<burn::tensor::Tensor<B, D>>) {
        if self.first.is_none() {
            let bad = param.val().is_finite().bool_not().int().sum().into_scalar().elem::<i64>();
            if bad > 0 {
                self.first = Some(self.path.join("."));
            }
        }
    }
}

/// Reads the training state of the newest checkpoint in `run_dir` (verified).
///
/// # Errors
/// As [`Checkpoint::latest`].
pub fn read_state(run_dir: &Path) -> Result<TrainState, CheckpointError> {
    Checkpoint::latest(run_dir).map(|c| c.state)
}

/// Reads the config text saved with the newest checkpoint in `run_dir` (verified).
///
/// # Errors
/// As [`Checkpoint::latest`].
pub fn read_config(run_dir: &Path) -> Result<String, CheckpointError> {
    Checkpoint::latest(run_dir).map(|c| c.config_toml)
}

/// Loads the model weights of the newest checkpoint in `run_dir` into `model` (built from the
/// same config), restoring its parameter ids.
///
/// # Errors
/// As [`Checkpoint::latest`] and [`Checkpoint::load_model`].
pub fn load_model<B: Backend, M: Module<B>>(
    run_dir: &Path,
    model: M,
    device: &B::Device,
) -> Result<M, CheckpointError> {
    Checkpoint::latest(run_dir)?.load_model(model, device)
}

/// Loads model, optimizer state and training state of the newest checkpoint for an exact
/// resume.
///
/// # Errors
/// [`CheckpointError`] when a file is missing, damaged, invalid, or the optimizer kind differs.
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
    let checkpoint = Checkpoint::latest(run_dir)?;
    let model = checkpoint.load_model(model, device)?;
    let optim = checkpoint.load_optimizer(optim, device)?;
    Ok((model, optim, checkpoint.state))
}
