//! `GgufFile::read_metadata`: the header and metadata of a file on disk, read without its tensor
//! infos and data, equal to what the full read gives and failing the way it fails.

use std::path::{Path, PathBuf};

use sorted_data::{GgmlType, GgufError, GgufFile, GgufMetadata, GgufValue, GgufValueType, GgufWriter};

/// A file with a value of every type, a nested array, a vocabulary of 80,000 tokens (more than
/// the first mebibyte `read_metadata` reads) and two tensors.
fn fixture(dir: &Path) -> PathBuf {
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", GgufValue::String("llama".into()))
        .metadata("general.alignment", GgufValue::U32(64))
        .metadata("llama.embedding_length", GgufValue::U32(16))
        .metadata("u8", GgufValue::U8(7))
        .metadata("i8", GgufValue::I8(-7))
        .metadata("u16", GgufValue::U16(700))
        .metadata("i16", GgufValue::I16(-700))
        .metadata("i32", GgufValue::I32(-70_000))
        .metadata("f32", GgufValue::F32(0.5))
        .metadata("bool", GgufValue::Bool(true))
        .metadata("u64", GgufValue::U64(1 << 40))
        .metadata("i64", GgufValue::I64(-(1 << 40)))
        .metadata("f64", GgufValue::F64(-0.25));
    let strings = |n: usize| (0..n).map(|i| GgufValue::String(format!("token-{i:06}"))).collect::<Vec<_>>();
    w.metadata(
        "nested",
        GgufValue::Array {
            element_type: GgufValueType::Array,
            values: vec![GgufValue::Array { element_type: GgufValueType::String, values: strings(3) }],
        },
    );
    w.metadata(
        "tokenizer.ggml.tokens",
        GgufValue::Array { element_type: GgufValueType::String, values: strings(80_000) },
    );
    w.tensor("a", &[2, 32], &[0.5; 64], GgmlType::F32).unwrap();
    w.tensor("b", &[32], &[1.0; 32], GgmlType::F16).unwrap();
    let path = dir.join("fixture.gguf");
    w.write(&path).unwrap();
    path
}

fn entries(metadata: &GgufMetadata) -> Vec<(String, GgufValue)> {
    metadata.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn full_metadata(path: &Path) -> Vec<(String, GgufValue)> {
    entries(GgufFile::read(path).unwrap().metadata())
}

#[test]
fn metadata_read_alone_equals_the_full_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path());
    assert!(std::fs::metadata(&path).unwrap().len() > 1 << 20);
    let metadata = GgufFile::read_metadata(&path).unwrap();
    assert_eq!(metadata.len(), 15);
    assert_eq!(&metadata, GgufFile::read(&path).unwrap().metadata());
    assert_eq!(entries(&metadata), full_metadata(&path));
    assert_eq!(metadata.u32("llama.embedding_length").unwrap(), 16);
}

#[test]
fn a_truncated_or_garbage_file_fails_as_the_full_read_does_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture(dir.path())).unwrap();
    let cut = dir.path().join("cut.gguf");
    // In the header, in a key, in a value, inside the vocabulary before and after the first
    // mebibyte.
    for len in [0, 3, 10, 30, 60, 200, 500_000, (1 << 20) + 5, bytes.len() - 3_000] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let err = GgufFile::read_metadata(&cut).unwrap_err();
        assert!(matches!(&err, GgufError::Truncated { path, len: l, .. } if *path == cut && *l == len as u64), "{err}");
        assert_eq!(err.to_string(), GgufFile::read(&cut).unwrap_err().to_string(), "cut at {len}");
        assert!(err.to_string().contains("cut.gguf"), "{err}");
    }
    // Cut in the tensor data: the metadata is whole.
    let metadata_end = bytes.len() - 200;
    std::fs::write(&cut, &bytes[..metadata_end]).unwrap();
    assert!(GgufFile::read(&cut).is_err());
    assert_eq!(entries(&GgufFile::read_metadata(&cut).unwrap()), full_metadata(&dir.path().join("fixture.gguf")));

    std::fs::write(&cut, b"GGML and then some").unwrap();
    let err = GgufFile::read_metadata(&cut).unwrap_err();
    assert!(matches!(&err, GgufError::Magic { path, .. } if *path == cut), "{err}");
    let missing = dir.path().join("missing.gguf");
    let err = GgufFile::read_metadata(&missing).unwrap_err();
    assert!(matches!(&err, GgufError::Read { path, .. } if *path == missing), "{err}");
}

/// A named pipe has no length: its metadata is read whole, as the full read would.
#[cfg(unix)]
#[test]
fn metadata_is_read_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture(dir.path())).unwrap();
    let pipe = dir.path().join("pipe.gguf");
    match std::process::Command::new("mkfifo").arg(&pipe).status() {
        Ok(status) if status.success() => {}
        _ => return, // no mkfifo here: nothing to check
    }
    let writer = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::write(&pipe, &bytes).unwrap())
    };
    let metadata = GgufFile::read_metadata(&pipe).unwrap();
    writer.join().unwrap();
    assert_eq!(entries(&metadata), full_metadata(&dir.path().join("fixture.gguf")));
}
