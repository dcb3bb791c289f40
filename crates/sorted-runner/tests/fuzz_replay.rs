//! Issue 27: the fuzz targets' seed corpus replayed on stable. Every file in
//! `fuzz/seeds/<target>/` (valid files, near-valid ones and the reproducers of crashes found
//! by fuzzing) goes through the same function the fuzz target calls, which must return
//! whatever the bytes; each target must also have a seed its parser accepts.

use std::path::{Path, PathBuf};

/// The functions the fuzz targets call, shared with `fuzz/` (one source, no copy).
#[path = "../../../fuzz/src/lib.rs"]
mod targets;

/// A fuzz target's shared function: true when the parser accepted the bytes.
type Target = fn(&[u8]) -> bool;

/// Every fuzz target, by the name of its file in `fuzz/fuzz_targets/`.
const TARGETS: [(&str, Target); 10] = [
    ("idx", targets::idx),
    ("cifar", targets::cifar),
    ("csv", targets::csv),
    ("wordpiece_vocab", targets::wordpiece_vocab),
    ("gguf", targets::gguf),
    ("gguf_tokenizer", targets::gguf_tokenizer),
    ("safetensors_header", targets::safetensors_header),
    ("bert_config", targets::bert_config),
    ("experiment_toml", targets::experiment_toml),
    ("checkpoint_manifest", targets::checkpoint_manifest),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn fuzz_replay_every_seed_returns_without_panicking() {
    let mut panicked = Vec::new();
    for (target, parse) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "fuzz/seeds/{target} holds no seed");
        let mut accepted = 0;
        for seed in &seeds {
            let bytes = std::fs::read(seed).unwrap();
            match std::panic::catch_unwind(|| parse(&bytes)) {
                Ok(ok) => accepted += usize::from(ok),
                Err(_) => panicked.push(seed.display().to_string()),
            }
        }
        assert!(accepted > 0, "{target}: none of the {} seeds is accepted: add a valid one", seeds.len());
    }
    assert!(panicked.is_empty(), "parsers panicked on: {panicked:#?}");
}

#[test]
fn fuzz_replay_covers_every_fuzz_target() {
    let mut on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|path| path.file_stem()?.to_str().map(str::to_owned))
        .collect();
    on_disk.sort();
    let mut replayed: Vec<String> = TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    replayed.sort();
    assert_eq!(on_disk, replayed, "fuzz/fuzz_targets and the replayed targets differ");
}
