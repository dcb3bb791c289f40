//! The parsers under fuzzing (issue 27): one function per fuzz target, each feeding arbitrary
//! bytes to one parser of the workspace and exercising what it returns. Every function must
//! return, whatever the bytes: a panic, a hang or an unbounded allocation is a bug in the
//! parser.
//!
//! The fuzz targets in `fuzz_targets/` call these with libFuzzer's input; on stable,
//! `crates/sorted-runner/tests/fuzz_replay.rs` includes this file as a module and replays
//! every seed in `fuzz/seeds/<target>/` through them. Each returns whether the parser accepted
//! the bytes, so the replay can check that every target has valid seeds.

use std::path::Path;

use sorted_data::{Cifar10, Cifar100, Cifar100Labels, RtSentiment, Shakespeare, WordPieceTokenizer, csv, idx};
use sorted_zoo::llama::{GgufFile, SortedLlamaConfig};
use sorted_zoo::{SortedBertConfig, safetensors_tensor_names};

/// Text run through the tokenizers that parse: ASCII, accents, CJK, emoji, whitespace runs
/// and ChatML markers.
const SAMPLE_TEXT: &str = "Hello, World! naïve café 東京 🦀  \t\n<|im_start|>user\nhi<|im_end|> [CLS] x";

/// IDX images and labels (gzip-compressed or not): the bytes as either kind of file.
pub fn idx(data: &[u8]) -> bool {
    let Ok(bytes) = idx::decompress_if_gzip(data, "fuzz.idx") else { return false };
    let images = idx::parse_images(&bytes, "fuzz.idx3").is_ok();
    let labels = idx::parse_labels(&bytes, "fuzz.idx1").is_ok();
    images || labels
}

/// CIFAR-10 and CIFAR-100 (both label choices) binary batches.
pub fn cifar(data: &[u8]) -> bool {
    let ten = Cifar10::parse(data, "fuzz.bin").is_ok();
    let coarse = Cifar100::parse(data, "fuzz.bin", Cifar100Labels::Coarse).is_ok();
    let fine = Cifar100::parse(data, "fuzz.bin", Cifar100Labels::Fine).is_ok();
    ten || coarse || fine
}

/// CSV, the Rotten Tomatoes corpus on top of it, and a Shakespeare work file.
pub fn csv(data: &[u8]) -> bool {
    let records = csv::parse_bytes(data, "fuzz.csv").is_ok();
    let reviews = RtSentiment::from_csv_bytes(data, "fuzz.csv").is_ok();
    let work = Shakespeare::work_text(data, "fuzz_gut.txt").is_ok();
    records || reviews || work
}

/// A BERT WordPiece `vocab.txt`; if it is accepted, the tokenizer encodes a sample text.
pub fn wordpiece_vocab(data: &[u8]) -> bool {
    let Ok(tokenizer) = WordPieceTokenizer::from_vocab_bytes(data, "fuzz-vocab.txt") else { return false };
    let encoding = tokenizer.encode(SAMPLE_TEXT, 64);
    for &id in &encoding.ids {
        let _ = tokenizer.id_to_token(id);
    }
    true
}

/// A GGUF file: header, metadata and tensor infos; then every tensor dequantized, the typed
/// metadata helpers, and the LLaMA config with its tensors checked against the file.
pub fn gguf(data: &[u8]) -> bool {
    let Ok(file) = GgufFile::parse(data.to_vec(), "fuzz.gguf") else { return false };
    for (key, _) in file.metadata() {
        let _ = (file.u32(key), file.f32(key), file.str(key), file.string_array(key));
    }
    for info in file.tensors() {
        let _ = file.dequantize(info.name());
    }
    if let Ok(config) = SortedLlamaConfig::from_gguf(&file) {
        let _ = config.check_gguf_tensors(&file);
    }
    true
}

/// The byte-level BPE tokenizer of a GGUF file (`ByteLevelBpe::from_gguf`); if it is accepted,
/// it encodes a sample text and decodes the ids.
pub fn gguf_tokenizer(data: &[u8]) -> bool {
    let Ok(file) = GgufFile::parse(data.to_vec(), "fuzz.gguf") else { return false };
    let Ok(bpe) = sorted_data::ByteLevelBpe::from_gguf(&file) else { return false };
    let ids = bpe.encode(SAMPLE_TEXT);
    let _ = bpe.decode(&ids);
    true
}

/// The header of a safetensors file.
pub fn safetensors_header(data: &[u8]) -> bool {
    safetensors_tensor_names(data, "fuzz.safetensors").is_ok()
}

/// A Hugging Face BERT `config.json`.
pub fn bert_config(data: &[u8]) -> bool {
    SortedBertConfig::from_hf_config_bytes(data, "fuzz/config.json").is_ok()
}

/// An experiment TOML (after UTF-8 decoding, as the runner reads it).
pub fn experiment_toml(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    sorted_runner::config::Experiment::from_toml(text, Path::new("fuzz.toml")).is_ok()
}

/// A checkpoint manifest (`manifest.json` of a checkpoint generation).
pub fn checkpoint_manifest(data: &[u8]) -> bool {
    serde_json::from_slice::<sorted_sched::CheckpointManifest>(data).is_ok()
}
