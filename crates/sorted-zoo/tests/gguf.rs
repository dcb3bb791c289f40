//! The GGUF reader: a synthetic file written here (metadata of every type, a tensor of every
//! decoded type, hand-computed blocks), truncated and malformed files, and the SmolLM2 file
//! when `cargo xtask data smollm2` has fetched it.

use std::path::{Path, PathBuf};

use sorted_data::GgufWriter;
use sorted_zoo::llama::{GgmlType, GgufError, GgufFile, GgufValue, GgufValueType};

/// A writer of (possibly malformed) test files: sorted-data's GGUF writer declaring `version`.
fn writer(version: u32) -> GgufWriter {
    GgufWriter::new().with_version(version)
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn u16_bytes(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Half-precision bit patterns used as block scales.
const HALF_0_25: u16 = 0x3400;
const HALF_0_5: u16 = 0x3800;
const HALF_MINUS_1: u16 = 0xbc00;
const HALF_2: u16 = 0x4000;

/// A Q4_1 block with d = 0.5, m = -1: byte j holds j in its low nibble and 15 - j in its high
/// nibble, so value j = 0.5 j - 1 and value j + 16 = 0.5 (15 - j) - 1.
fn q4_1_block() -> (Vec<u8>, Vec<f32>) {
    let mut block = u16_bytes(&[HALF_0_5, HALF_MINUS_1]);
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let expected = (0..16).map(|j| 0.5 * j as f32 - 1.0).chain((0..16).map(|j| 0.5 * (15 - j) as f32 - 1.0)).collect();
    (block, expected)
}

/// A Q8_0 block with d = 0.25 and the 32 signed bytes 8i - 128: values 2i - 32.
fn q8_0_block() -> (Vec<u8>, Vec<f32>) {
    let mut block = u16_bytes(&[HALF_0_25]);
    block.extend((0..32).map(|i| (8 * i - 128) as i8 as u8));
    (block, (0..32).map(|i| (2 * i - 32) as f32).collect())
}

/// A Q4_0 block with d = 2: byte j holds j and j ^ 5, so value j = 2 (j - 8) and value j + 16 =
/// 2 ((j ^ 5) - 8).
fn q4_0_block() -> (Vec<u8>, Vec<f32>) {
    let mut block = u16_bytes(&[HALF_2]);
    block.extend((0..16u8).map(|j| j | ((j ^ 5) << 4)));
    let expected = (0..16).map(|j| 2.0 * (j - 8) as f32).chain((0..16).map(|j| 2.0 * ((j ^ 5) - 8) as f32)).collect();
    (block, expected)
}

/// Every metadata type, including a nested array, and one tensor of each decoded type plus a
/// Q4_K tensor.
fn synthetic(version: u32) -> GgufWriter {
    let strings = |items: &[&str]| GgufValue::Array {
        element_type: GgufValueType::String,
        values: items.iter().map(|s| GgufValue::String((*s).into())).collect(),
    };
    let mut w = writer(version);
    w.metadata("general.architecture", GgufValue::String("llama".into()))
        .metadata("general.alignment", GgufValue::U32(64))
        .metadata("t.u8", GgufValue::U8(200))
        .metadata("t.i8", GgufValue::I8(-100))
        .metadata("t.u16", GgufValue::U16(60_000))
        .metadata("t.i16", GgufValue::I16(-30_000))
        .metadata("t.u32", GgufValue::U32(4_000_000_000))
        .metadata("t.i32", GgufValue::I32(-7))
        .metadata("t.f32", GgufValue::F32(1e-5))
        .metadata("t.bool", GgufValue::Bool(true))
        .metadata("t.u64", GgufValue::U64(u64::MAX))
        .metadata("t.i64", GgufValue::I64(i64::MIN))
        .metadata("t.f64", GgufValue::F64(0.1))
        .metadata("t.big", GgufValue::U64(1 << 40))
        .metadata("tokenizer.ggml.tokens", strings(&["<s>", "héllo", "", "Ġworld"]))
        .metadata("t.empty", strings(&[]))
        .metadata(
            "t.nested",
            GgufValue::Array {
                element_type: GgufValueType::Array,
                values: vec![
                    GgufValue::Array { element_type: GgufValueType::I32, values: vec![GgufValue::I32(1)] },
                    GgufValue::Array { element_type: GgufValueType::Bool, values: vec![] },
                ],
            },
        );
    let (q4_1, _) = q4_1_block();
    let (q8_0, _) = q8_0_block();
    let (q4_0, _) = q4_0_block();
    w.raw_tensor("f32", &[3, 2], 0, f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
        .raw_tensor("f16", &[6], 1, u16_bytes(&[0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff, 0x8000]))
        .raw_tensor("bf16", &[2, 1], 30, u16_bytes(&[0x3f80, 0xc040]))
        // Two blocks per row, one row: the second block repeats the first with its bytes
        // negated, so block order matters.
        .raw_tensor("q8_0", &[64, 1], 8, {
            let mut second = q8_0.clone();
            second[2..].iter_mut().for_each(|b| *b = (*b as i8).wrapping_neg() as u8);
            [q8_0.clone(), second].concat()
        })
        .raw_tensor("q4_0", &[32], 2, q4_0)
        // Two rows of one block: the second row has m = +1 (0x3c00) instead of -1.
        .raw_tensor("q4_1", &[32, 2], 3, {
            let mut second = q4_1.clone();
            second[2..4].copy_from_slice(&0x3c00u16.to_le_bytes());
            [q4_1.clone(), second].concat()
        })
        .raw_tensor("q4_k", &[256], 12, vec![0; 144]);
    w
}

#[test]
fn gguf_metadata_of_every_type_is_read() {
    let _rng = crate::rng_guard();
    for version in [2, 3] {
        let (bytes, data_start) = synthetic(version).to_bytes_with_data_start();
        let gguf = GgufFile::parse(bytes, "synthetic.gguf").unwrap();
        assert_eq!((gguf.version(), gguf.alignment(), gguf.data_start()), (version, 64, data_start));
        assert_eq!(data_start % 64, 0);
        assert_eq!(gguf.metadata().len(), 17);
        assert_eq!(gguf.metadata().iter().nth(2).unwrap(), ("t.u8", &GgufValue::U8(200)));
        assert_eq!(gguf.get("t.i8"), Some(&GgufValue::I8(-100)));
        assert_eq!(gguf.get("t.u16"), Some(&GgufValue::U16(60_000)));
        assert_eq!(gguf.get("t.i16"), Some(&GgufValue::I16(-30_000)));
        assert_eq!(gguf.get("t.i32"), Some(&GgufValue::I32(-7)));
        assert_eq!(gguf.get("t.bool"), Some(&GgufValue::Bool(true)));
        assert_eq!(gguf.get("t.u64"), Some(&GgufValue::U64(u64::MAX)));
        assert_eq!(gguf.get("t.i64"), Some(&GgufValue::I64(i64::MIN)));
        assert_eq!(gguf.get("t.f64"), Some(&GgufValue::F64(0.1)));
        assert_eq!(gguf.get("no.such.key"), None);
        let nested = gguf.get("t.nested").unwrap().as_array().unwrap();
        assert_eq!(nested[0], GgufValue::Array { element_type: GgufValueType::I32, values: vec![GgufValue::I32(1)] });
        assert_eq!(nested[1], GgufValue::Array { element_type: GgufValueType::Bool, values: vec![] });

        // Typed helpers: any integer type that fits a u32, f32, strings and string arrays.
        assert_eq!(gguf.u32("t.u32").unwrap(), 4_000_000_000);
        assert_eq!(gguf.u32("t.u8").unwrap(), 200);
        assert_eq!(gguf.u32("general.alignment").unwrap(), 64);
        assert_eq!(gguf.f32("t.f32").unwrap(), 1e-5);
        assert_eq!(gguf.f32("t.f64").unwrap(), 0.1);
        assert_eq!(gguf.str("general.architecture").unwrap(), "llama");
        assert_eq!(gguf.string_array("tokenizer.ggml.tokens").unwrap(), ["<s>", "héllo", "", "Ġworld"]);
        assert!(gguf.string_array("t.empty").unwrap().is_empty());
    }
}

#[test]
fn gguf_typed_helpers_name_the_key_and_the_expected_type() {
    let _rng = crate::rng_guard();
    let gguf = GgufFile::parse(synthetic(3).to_bytes_with_data_start().0, "synthetic.gguf").unwrap();
    let cases = [
        (gguf.u32("t.i32").unwrap_err(), "metadata key `t.i32` is i32 -7, expected u32"),
        (gguf.u32("t.big").unwrap_err(), "metadata key `t.big` is u64 1099511627776, expected u32"),
        (gguf.u32("t.f32").unwrap_err(), "metadata key `t.f32` is f32, expected u32"),
        (gguf.f32("general.architecture").unwrap_err(), "`general.architecture` is string, expected f32"),
        (gguf.str("tokenizer.ggml.tokens").unwrap_err(), "`tokenizer.ggml.tokens` is array of string, expected string"),
        (gguf.string_array("t.nested").unwrap_err(), "`t.nested` is array of array, expected array of string"),
        (gguf.u32("llama.block_count").unwrap_err(), "has no metadata key `llama.block_count` (expected u32)"),
    ];
    for (err, expected) in cases {
        let msg = err.to_string();
        assert!(msg.starts_with("`synthetic.gguf`") && msg.contains(expected), "{msg}");
    }
    assert!(matches!(gguf.str("nope"), Err(GgufError::MissingKey { key, expected: "string", .. }) if key == "nope"));
}

#[test]
fn gguf_tensor_infos_are_listed_in_file_order_with_reversed_shapes() {
    let _rng = crate::rng_guard();
    let gguf = GgufFile::parse(synthetic(3).to_bytes_with_data_start().0, "synthetic.gguf").unwrap();
    let names: Vec<&str> = gguf.tensors().map(|t| t.name()).collect();
    assert_eq!(names, ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k"]);
    let q8 = gguf.tensor_info("q8_0").unwrap();
    assert_eq!((q8.dims(), q8.shape(), q8.ggml_type()), (&[64, 1][..], vec![1, 64], GgmlType::Q8_0));
    assert_eq!((q8.n_elements(), q8.n_bytes(), q8.offset()), (64, 68, 192));
    assert_eq!(gguf.tensors().map(|t| t.offset() % 64).max(), Some(0));
    assert_eq!(gguf.tensor_info("q4_k").unwrap().n_bytes(), 144);
    assert_eq!(gguf.tensor_bytes("bf16").unwrap(), [0x80, 0x3f, 0x40, 0xc0]);
    assert!(gguf.tensor_info("missing").is_none());
    let err = gguf.dequantize("missing").unwrap_err();
    assert!(matches!(&err, GgufError::MissingTensor { tensor, .. } if tensor == "missing"), "{err}");
}

#[test]
fn gguf_dequantizes_hand_computed_blocks() {
    let _rng = crate::rng_guard();
    let gguf = GgufFile::parse(synthetic(3).to_bytes_with_data_start().0, "synthetic.gguf").unwrap();
    assert_eq!(gguf.dequantize("f32").unwrap(), (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let (shape, f16) = gguf.dequantize("f16").unwrap();
    assert_eq!((shape, &f16[..5]), (vec![6], &[1.0, -2.0, 0.333_251_95, 2f32.powi(-24), 65504.0][..]));
    assert_eq!(f16[5].to_bits(), (-0.0f32).to_bits());
    assert_eq!(gguf.dequantize("bf16").unwrap(), (vec![1, 2], vec![1.0, -3.0]));

    let (_, q8_expected) = q8_0_block();
    let (shape, q8) = gguf.dequantize("q8_0").unwrap();
    assert_eq!(shape, [1, 64]);
    assert_eq!(q8[..32], q8_expected[..]);
    // The negated bytes: -(-128) wraps to -128, so the first value stays -32.
    let negated: Vec<f32> = (0..32).map(|i| if i == 0 { -32.0 } else { -q8_expected[i] }).collect();
    assert_eq!(q8[32..], negated[..]);
    assert_eq!(&q8[..4], [-32.0, -30.0, -28.0, -26.0]);

    let (_, q4_0_expected) = q4_0_block();
    let (shape, q4_0) = gguf.dequantize("q4_0").unwrap();
    assert_eq!((shape, &q4_0), (vec![32], &q4_0_expected));
    assert_eq!((q4_0[0], q4_0[15], q4_0[16], q4_0[31]), (-16.0, 14.0, -6.0, 4.0));

    let (_, q4_1_expected) = q4_1_block();
    let (shape, q4_1) = gguf.dequantize("q4_1").unwrap();
    assert_eq!(shape, [2, 32]);
    assert_eq!(q4_1[..32], q4_1_expected[..]);
    assert_eq!((q4_1[0], q4_1[1], q4_1[15], q4_1[16], q4_1[31]), (-1.0, -0.5, 6.5, 6.5, -1.0));
    let plus_two: Vec<f32> = q4_1_expected.iter().map(|v| v + 2.0).collect();
    assert_eq!(q4_1[32..], plus_two[..]);
}

#[test]
fn gguf_unsupported_types_are_named() {
    let _rng = crate::rng_guard();
    // Q4_K decodes now (sorted-data's k-quants); IQ4_NL (8 blocks of 18 bytes) does not.
    let mut writer = synthetic(3);
    writer.raw_tensor("iq4_nl", &[256], 20, vec![0; 144]);
    let gguf = GgufFile::parse(writer.to_bytes_with_data_start().0, "synthetic.gguf").unwrap();
    assert_eq!(gguf.dequantize("q4_k").unwrap().1, vec![0.0; 256]);
    let err = gguf.dequantize("iq4_nl").unwrap_err();
    assert!(
        matches!(&err, GgufError::UnsupportedType { tensor, ggml_type: GgmlType::IQ4_NL, .. } if tensor == "iq4_nl"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("`synthetic.gguf`: tensor `iq4_nl` is IQ4_NL (ggml type 20)"), "{msg}");
}

#[test]
fn gguf_truncated_at_any_byte_is_an_error_naming_the_file() {
    let _rng = crate::rng_guard();
    let (bytes, data_start) = synthetic(3).to_bytes_with_data_start();
    let last = GgufFile::parse(bytes.clone(), "full.gguf").unwrap().tensors().last().unwrap().clone();
    let end = data_start + last.offset() as usize + last.n_bytes();
    // The padding after the last tensor is not needed.
    for cut in end..bytes.len() {
        assert!(GgufFile::parse(bytes[..cut].to_vec(), "cut.gguf").is_ok(), "cut at {cut}");
    }
    for cut in 0..end {
        let err = GgufFile::parse(bytes[..cut].to_vec(), "cut.gguf").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("`cut.gguf`"), "cut at {cut}: {msg}");
        match err {
            GgufError::Truncated { offset, needed, len, .. } => {
                assert!(cut < data_start, "cut at {cut}: {msg}");
                assert_eq!(len, cut as u64);
                assert!(offset + needed > len, "cut at {cut}: {msg}");
            }
            // Cut in the padding or the data: the first tensor whose data no longer fits.
            GgufError::TensorBounds { tensor, end, len, .. } => {
                assert!(end > len && cut as u64 == len, "cut at {cut}: {msg}");
                assert!(msg.contains(&format!("tensor `{tensor}`")), "{msg}");
            }
            other => panic!("cut at {cut}: unexpected {other:?}"),
        }
    }
}

#[test]
fn gguf_truncation_errors_say_what_was_being_read_and_where() {
    let _rng = crate::rng_guard();
    let (bytes, _) = synthetic(3).to_bytes_with_data_start();
    let at = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle).unwrap();
    let err = |cut: usize| GgufFile::parse(bytes[..cut].to_vec(), "cut.gguf").unwrap_err().to_string();
    assert_eq!(
        err(2),
        "`cut.gguf` is truncated: reading the magic bytes at byte 0 needs 4 bytes, the file has 2 bytes"
    );
    assert!(err(6).contains("reading the version at byte 4"), "{}", err(6));
    assert!(err(20).contains("reading the metadata count at byte 16"), "{}", err(20));
    let world = at("Ġworld".as_bytes());
    let msg = err(world + 2);
    assert!(
        msg.contains(&format!(
            "reading element 3 of the value of metadata key `tokenizer.ggml.tokens` at byte {world} needs 7 bytes"
        )),
        "{msg}"
    );
    let q4_1 = at(b"q4_1");
    let msg = err(q4_1 + 4 + 4 + 3);
    assert!(msg.contains(&format!("reading dimension 0 of tensor `q4_1` at byte {}", q4_1 + 8)), "{msg}");
}

#[test]
fn gguf_malformed_files_are_rejected_naming_the_problem() {
    let _rng = crate::rng_guard();
    let parse = |w: &GgufWriter| GgufFile::parse(w.to_bytes_with_data_start().0, "bad.gguf").map(|_| ()).unwrap_err();
    let msg = |w: &GgufWriter| parse(w).to_string();

    let mut not_gguf = synthetic(3).to_bytes_with_data_start().0;
    not_gguf[..4].copy_from_slice(b"GGML");
    let err = GgufFile::parse(not_gguf, "bad.gguf").unwrap_err().to_string();
    assert!(err.contains("`bad.gguf` is not a GGUF file"), "{err}");

    assert!(msg(&writer(1)).contains("GGUF version 1 is not supported"));
    assert!(msg(&writer(3u32.swap_bytes())).contains("big-endian"));

    let mut w = writer(3);
    w.raw_metadata("k", 13, &[0; 8]);
    assert!(msg(&w).contains("byte 37: the value of metadata key `k`: unknown metadata value type 13"), "{}", msg(&w));
    let mut w = writer(3);
    w.raw_metadata("flag", 7, &[2]);
    assert!(msg(&w).contains("bool byte 2, expected 0 or 1"), "{}", msg(&w));
    let mut w = writer(3);
    w.raw_metadata("s", 8, &[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]);
    assert!(msg(&w).contains("the value of metadata key `s` is not valid UTF-8"), "{}", msg(&w));
    let mut w = writer(3);
    w.metadata("k", GgufValue::U8(1)).metadata("k", GgufValue::U8(2));
    assert!(msg(&w).contains("metadata key `k` appears twice"), "{}", msg(&w));
    let mut w = writer(3);
    w.metadata("general.alignment", GgufValue::U32(48));
    assert!(msg(&w).contains("`general.alignment` must be a u32 power of two"), "{}", msg(&w));

    // A huge count is refused before anything is allocated for it.
    let mut w = writer(3);
    w.raw_metadata("tokens", 9, &[&8u32.to_le_bytes()[..], &u64::MAX.to_le_bytes()].concat());
    assert!(matches!(parse(&w), GgufError::Truncated { needed: u64::MAX, .. }), "{}", msg(&w));
    // Arrays nested without end are refused before the stack runs out.
    let mut deep = Vec::new();
    for _ in 0..10_000 {
        deep.extend_from_slice(&9u32.to_le_bytes());
        deep.extend_from_slice(&1u64.to_le_bytes());
    }
    let mut w = writer(3);
    w.raw_metadata("deep", 9, &deep);
    assert!(msg(&w).contains("arrays nested more than 8 deep"), "{}", msg(&w));

    let mut w = writer(3);
    w.raw_tensor("w", &[32], 4, vec![0; 18]);
    let err = parse(&w);
    assert!(matches!(&err, GgufError::UnknownType { tensor, ggml_type: 4, .. } if tensor == "w"), "{err:?}");
    assert!(err.to_string().contains("tensor `w` has unknown ggml type id 4"), "{err}");

    let mut w = writer(3);
    w.raw_tensor("w", &[33], 8, vec![0; 34]);
    assert!(msg(&w).contains("tensor `w`: its first dim 33 is not a multiple of the Q8_0 block size 32"));
    let mut w = writer(3);
    w.raw_tensor("w", &[2, 2, 2, 2, 2], 0, vec![0; 128]);
    assert!(msg(&w).contains("tensor `w` has 5 dimensions, at most 4"));
    let mut w = writer(3);
    w.raw_tensor("w", &[1 << 62, 8], 0, vec![]);
    assert!(msg(&w).contains("tensor `w`: dims [4611686018427387904, 8] have too many elements"), "{}", msg(&w));
    let mut w = writer(3);
    w.raw_tensor("w", &[1 << 62], 0, vec![]);
    assert!(matches!(parse(&w), GgufError::TensorBounds { end: u64::MAX, .. }), "{}", msg(&w));
    let mut w = writer(3);
    w.raw_tensor("a", &[4], 0, vec![0; 16]).raw_tensor("a", &[4], 0, vec![0; 16]);
    assert!(msg(&w).contains("tensor `a`: the name appears twice"), "{}", msg(&w));

    // Offsets: misaligned, or past the end of the file.
    let (mut bytes, data_start) = {
        let mut w = writer(3);
        w.raw_tensor("w", &[8], 0, vec![0; 32]);
        w.to_bytes_with_data_start()
    };
    // Header 24 bytes, then name (8 + 1), n_dims 4, one dim 8, type 4: the offset field.
    let offset_at = 24 + 9 + 4 + 8 + 4;
    assert_eq!(data_start, 64);
    bytes[offset_at..offset_at + 8].copy_from_slice(&4u64.to_le_bytes());
    let err = GgufFile::parse(bytes.clone(), "bad.gguf").unwrap_err().to_string();
    assert!(err.contains("tensor `w`: data offset 4 is not a multiple of the alignment 32"), "{err}");
    bytes[offset_at..offset_at + 8].copy_from_slice(&32u64.to_le_bytes());
    let err = GgufFile::parse(bytes, "bad.gguf").unwrap_err().to_string();
    assert!(err.contains("the data of tensor `w` (bytes 96..128) runs past the end of the 96-byte file"), "{err}");
}

#[test]
fn gguf_read_names_a_missing_file() {
    let _rng = crate::rng_guard();
    let err = GgufFile::read("no/such/model.gguf").unwrap_err();
    assert!(matches!(&err, GgufError::Read { path, .. } if path == Path::new("no/such/model.gguf")), "{err}");
}

/// The SmolLM2 file fetched by `cargo xtask data smollm2` (git-ignored).
fn smollm2_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

#[test]
fn gguf_smollm2_file_has_the_documented_layout() {
    let _rng = crate::rng_guard();
    let path = smollm2_path();
    if !path.exists() {
        println!("skipped: {} is absent (run `cargo xtask data smollm2`)", path.display());
        return;
    }
    let gguf = GgufFile::read(&path).unwrap();
    assert_eq!((gguf.version(), gguf.alignment(), gguf.tensors().len()), (3, 32, 272));
    assert_eq!(gguf.str("general.architecture").unwrap(), "llama");
    let sizes = [
        "llama.block_count",
        "llama.embedding_length",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.rope.dimension_count",
        "llama.vocab_size",
    ]
    .map(|key| gguf.u32(key).unwrap());
    assert_eq!(sizes, [30, 576, 1536, 9, 3, 64, 49152]);
    assert_eq!(gguf.f32("llama.rope.freq_base").unwrap(), 100_000.0);
    assert_eq!(gguf.f32("llama.attention.layer_norm_rms_epsilon").unwrap(), 1e-5);
    let tokens = gguf.string_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(tokens[..3], ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]);
    let merges = gguf.string_array("tokenizer.ggml.merges").unwrap();
    assert_eq!((merges.len(), merges[0]), (48900, "Ġ t"));
    assert_eq!(gguf.str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(gguf.u32("tokenizer.ggml.eos_token_id").unwrap(), 2);

    let embd = gguf.tensor_info("token_embd.weight").unwrap();
    assert_eq!((embd.ggml_type(), embd.dims(), embd.shape()), (GgmlType::Q8_0, &[576, 49152][..], vec![49152, 576]));
    let gate = gguf.tensor_info("blk.0.ffn_gate.weight").unwrap();
    assert_eq!((gate.ggml_type(), gate.shape()), (GgmlType::Q4_1, vec![1536, 576]));
    for name in ["blk.0.attn_norm.weight", "blk.29.ffn_norm.weight", "output_norm.weight"] {
        assert_eq!(gguf.tensor_info(name).unwrap().ggml_type(), GgmlType::F32, "{name}");
    }
    // Every matrix is Q4_1 except the token embedding (tied with the LM head: no output.weight).
    assert!(gguf.tensor_info("output.weight").is_none());
    let types = |t: GgmlType| gguf.tensors().filter(|i| i.ggml_type() == t).count();
    assert_eq!((types(GgmlType::Q4_1), types(GgmlType::Q8_0), types(GgmlType::F32)), (210, 1, 61));

    // Values from an independent numpy dequantization of the same file: the first values
    // exactly, and the sum of the whole tensor.
    let check = |name: &str, shape: [usize; 2], first: &[f32], sum: f64, abs_sum: f64, max: f32| {
        let (got_shape, values) = gguf.dequantize(name).unwrap();
        assert_eq!(got_shape, shape, "{name}");
        assert_eq!(values[..first.len()], *first, "{name}");
        assert!(values.iter().all(|v| v.is_finite() && v.abs() <= max), "{name}");
        let got_sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        assert!((got_sum - sum).abs() <= 1e-9 * abs_sum, "{name}: sum {got_sum}, numpy {sum}");
    };
    check(
        "blk.0.attn_q.weight",
        [576, 576],
        &[-0.096_313_48, 0.157_348_63, -0.096_313_48, -0.730_468_75, 1.171_997_1, -0.096_313_48, 0.030_517_578],
        59.223_220_825_195_31,
        63_395.398_727_416_99,
        5.251_953,
    );
    check(
        "token_embd.weight",
        [49152, 576],
        &[-0.106_544_495, 0.032_978_058, 0.048_198_7, -0.022_830_963, -0.068_492_89, -0.045_661_926, 0.020_294_19],
        -15_353.044_494_152_07,
        2_802_153.619_805_813,
        1.961_120_6,
    );
    let (shape, norm) = gguf.dequantize("output_norm.weight").unwrap();
    assert_eq!((shape, &norm[..4]), (vec![576], &[1.757_812_5, 1.820_312_5, 1.781_25, 1.601_562_5][..]));
}

/// A tiny random decoder written as a `llama` GGUF (F32 tensors, HF/llama.cpp names) and read
/// back with `SortedLlama::from_gguf`: same logits. A mis-shaped tensor is refused by name.
mod llama_weights {
    use super::*;
    use burn::backend::Flex;
    use burn::prelude::*;
    use sorted_nn::{TransformerSpace, TransformerSpaceConfig};
    use sorted_zoo::llama::{KvCache, SortedLlama, SortedLlamaConfig};

    fn values(t: Tensor<Flex, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    fn write(model: &SortedLlama<Flex>, config: &SortedLlamaConfig, bad_key_dims: bool) -> Vec<u8> {
        let mut w = writer(3);
        let u = |v: usize| GgufValue::U32(v as u32);
        w.metadata("general.architecture", GgufValue::String("llama".into()))
            .metadata("llama.block_count", u(config.num_layers))
            .metadata("llama.embedding_length", u(config.hidden_size))
            .metadata("llama.feed_forward_length", u(config.intermediate_size))
            .metadata("llama.attention.head_count", u(config.num_heads))
            .metadata("llama.attention.head_count_kv", u(config.num_kv_heads))
            .metadata("llama.rope.freq_base", GgufValue::F32(10_000.0))
            .metadata("llama.attention.layer_norm_rms_epsilon", GgufValue::F32(1e-5))
            .metadata("llama.vocab_size", u(config.vocab_size));
        let [v, d] = model.embedding.dims();
        w.raw_tensor("token_embd.weight", &[d as u64, v as u64], 0, f32_bytes(&values(model.embedding.val())));
        // A linear's burn weight is `[in, out]`; GGUF dims `[in, out]` (fastest first) hold the
        // row-major `(out, in)` matrix: the transpose.
        let linear = |w: &mut GgufWriter, name: String, l: &sorted_nn::SortedLinear<Flex>, broken: bool| {
            let [i, o] = l.weight.dims();
            let dims = if broken { [o as u64, i as u64] } else { [i as u64, o as u64] };
            w.raw_tensor(&name, &dims, 0, f32_bytes(&values(l.weight.val().transpose())));
        };
        let norm = |w: &mut GgufWriter, name: String, n: &sorted_zoo::llama::RmsNorm<Flex>| {
            let vals = n.weight.val().into_data().to_vec::<f32>().unwrap();
            w.raw_tensor(&name, &[vals.len() as u64], 0, f32_bytes(&vals));
        };
        for (i, l) in model.layers.iter().enumerate() {
            norm(&mut w, format!("blk.{i}.attn_norm.weight"), &l.attention_norm);
            linear(&mut w, format!("blk.{i}.attn_q.weight"), &l.query, false);
            linear(&mut w, format!("blk.{i}.attn_k.weight"), &l.key, bad_key_dims && i == 1);
            linear(&mut w, format!("blk.{i}.attn_v.weight"), &l.value, false);
            linear(&mut w, format!("blk.{i}.attn_output.weight"), &l.output, false);
            norm(&mut w, format!("blk.{i}.ffn_norm.weight"), &l.ffn_norm);
            linear(&mut w, format!("blk.{i}.ffn_gate.weight"), &l.gate, false);
            linear(&mut w, format!("blk.{i}.ffn_up.weight"), &l.up, false);
            linear(&mut w, format!("blk.{i}.ffn_down.weight"), &l.down, false);
        }
        norm(&mut w, "output_norm.weight".into(), &model.norm);
        w.to_bytes_with_data_start().0
    }

    #[test]
    fn a_written_llama_gguf_loads_back_with_identical_logits() {
        let _rng = crate::rng_guard();
        let device = Default::default();
        Flex::seed(&device, 3);
        let config = SortedLlamaConfig::tiny();
        let model = config.init::<Flex>(&device);
        let file = GgufFile::parse(write(&model, &config, false), "tiny-llama.gguf").unwrap();
        let loaded = SortedLlama::<Flex>::from_gguf(&file, &device).unwrap();
        let space = TransformerSpace::new(
            TransformerSpaceConfig { depths: vec![2, 4], heads: vec![4], ffn: vec![12, 24], hidden: None },
            16,
        )
        .unwrap();
        let ids = Tensor::<Flex, 2, Int>::from_ints([[1, 7, 3, 9]], &device);
        for sub in space.iter() {
            let a = model.forward(ids.clone(), &sub, &mut KvCache::new()).into_data();
            let b = loaded.forward(ids.clone(), &sub, &mut KvCache::new()).into_data();
            assert_eq!(a, b, "{sub}");
        }
        let err = SortedLlama::<Flex>::from_gguf(
            &GgufFile::parse(write(&model, &config, true), "bad.gguf").unwrap(),
            &device,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bad.gguf") && err.contains("blk.1.attn_k.weight"), "{err}");
    }
}

/// Issue 27: sizes and counts a file claims are checked against what it holds before anything
/// is allocated for them.
mod issue_27 {
    use super::*;
    use burn::backend::Flex;
    use sorted_zoo::llama::{SortedLlama, SortedLlamaConfig};

    /// The metadata of a `llama` file with the given sizes (no tensors).
    fn llama_metadata(w: &mut GgufWriter, vocab: u32, hidden: u32, layers: u32) -> &mut GgufWriter {
        w.metadata("general.architecture", GgufValue::String("llama".into()))
            .metadata("llama.block_count", GgufValue::U32(layers))
            .metadata("llama.embedding_length", GgufValue::U32(hidden))
            .metadata("llama.feed_forward_length", GgufValue::U32(hidden))
            .metadata("llama.attention.head_count", GgufValue::U32(4))
            .metadata("llama.attention.head_count_kv", GgufValue::U32(2))
            .metadata("llama.vocab_size", GgufValue::U32(vocab))
    }

    #[test]
    fn issue_27_gguf_tensor_claiming_4_gib_is_refused_against_the_file_length() {
        let _rng = crate::rng_guard();
        let mut w = writer(3);
        // 2^30 f32 values: 4 GiB of data claimed by a file of under 100 bytes.
        w.raw_tensor("huge", &[1 << 30], 0, f32_bytes(&[1.0]));
        let err = GgufFile::parse(w.to_bytes_with_data_start().0, "huge.gguf").unwrap_err();
        assert!(
            matches!(&err, GgufError::TensorBounds { tensor, end, .. } if tensor == "huge" && *end > 1 << 32),
            "{err}"
        );
        assert!(err.to_string().contains("huge.gguf"), "{err}");
        // Dims whose product overflows are refused naming the tensor and the offset.
        let mut w = writer(3);
        w.raw_tensor("overflow", &[1 << 32, 1 << 32, 1 << 32], 0, vec![]);
        let err = GgufFile::parse(w.to_bytes_with_data_start().0, "overflow.gguf").unwrap_err().to_string();
        assert!(err.contains("overflow.gguf") && err.contains("byte 24") && err.contains("too many elements"), "{err}");
    }

    #[test]
    fn issue_27_gguf_counts_and_lengths_beyond_the_file_are_refused_before_allocating() {
        let _rng = crate::rng_guard();
        let header = |n_tensors: u64, n_metadata: u64| {
            let mut out = b"GGUF".to_vec();
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(&n_tensors.to_le_bytes());
            out.extend_from_slice(&n_metadata.to_le_bytes());
            out
        };
        for (bytes, what) in [
            (header(0, 1 << 40), "metadata entries"),
            (header(1 << 40, 0), "tensor infos"),
            // A key claiming 2^62 bytes.
            ([header(0, 1), (1u64 << 62).to_le_bytes().to_vec(), vec![0; 8]].concat(), "the key of metadata entry 0"),
        ] {
            let err = GgufFile::parse(bytes, "counts.gguf").unwrap_err();
            assert!(matches!(err, GgufError::Truncated { .. }), "{what}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("counts.gguf") && msg.contains(what) && msg.contains("at byte"), "{msg}");
        }
        // A string value and an array claiming more than the file holds.
        let mut w = writer(3);
        w.raw_metadata("s", 8, &(1u64 << 40).to_le_bytes());
        let err = GgufFile::parse(w.to_bytes_with_data_start().0, "s.gguf").unwrap_err().to_string();
        assert!(err.contains("s.gguf") && err.contains("metadata key `s`") && err.contains("1099511627776"), "{err}");
        let mut w = writer(3);
        w.raw_metadata("a", 9, &[&9u32.to_le_bytes()[..], &(1u64 << 40).to_le_bytes()].concat());
        let err = GgufFile::parse(w.to_bytes_with_data_start().0, "a.gguf").unwrap_err().to_string();
        assert!(err.contains("a.gguf") && err.contains("elements of the value of metadata key `a`"), "{err}");
    }

    #[test]
    fn issue_27_llama_sizes_in_the_metadata_are_checked_against_the_tensors_before_allocating() {
        let _rng = crate::rng_guard();
        // A vocabulary of 2^24 by a width of 2^20 would be 64 TiB of f32 embedding: the file
        // holds no such tensor, so loading must fail naming it instead of allocating.
        let mut w = writer(3);
        llama_metadata(&mut w, 1 << 24, 1 << 20, 1);
        w.raw_tensor("token_embd.weight", &[16, 50], 0, f32_bytes(&[0.0; 800]));
        let file = GgufFile::parse(w.to_bytes_with_data_start().0, "claims.gguf").unwrap();
        let err = SortedLlama::<Flex>::from_gguf(&file, &Default::default()).unwrap_err();
        assert!(
            matches!(&err, GgufError::TensorShape { tensor, expected, .. }
                if tensor == "token_embd.weight" && expected == &[1 << 24, 1 << 20]),
            "{err}"
        );
        assert!(err.to_string().contains("claims.gguf"), "{err}");
        // A layer count of 2^32 - 1 fails at the first missing layer tensor.
        let mut w = writer(3);
        llama_metadata(&mut w, 50, 16, u32::MAX);
        w.raw_tensor("token_embd.weight", &[16, 50], 0, f32_bytes(&[0.0; 800]));
        let file = GgufFile::parse(w.to_bytes_with_data_start().0, "layers.gguf").unwrap();
        let err = SortedLlama::<Flex>::from_gguf(&file, &Default::default()).unwrap_err();
        assert!(matches!(&err, GgufError::MissingTensor { tensor, .. } if tensor == "blk.0.attn_norm.weight"), "{err}");
    }

    #[test]
    fn issue_27_gguf_tokenizer_with_fewer_tokens_than_vocab_size_is_refused_naming_both() {
        let _rng = crate::rng_guard();
        let tokens = |n: usize| GgufValue::Array {
            element_type: GgufValueType::String,
            values: (0..n).map(|i| GgufValue::String(format!("t{i}"))).collect(),
        };
        let mut w = writer(3);
        llama_metadata(&mut w, 50, 16, 4);
        w.metadata("tokenizer.ggml.tokens", tokens(40));
        let file = GgufFile::parse(w.to_bytes_with_data_start().0, "short-vocab.gguf").unwrap();
        let err = SortedLlamaConfig::from_gguf(&file).unwrap_err().to_string();
        assert!(
            err.contains("short-vocab.gguf")
                && err.contains("tokenizer.ggml.tokens")
                && err.contains("40 tokens")
                && err.contains("llama.vocab_size is 50"),
            "{err}"
        );
        // As many tokens as the vocabulary: accepted; without `llama.vocab_size` the tokens
        // give it.
        let mut w = writer(3);
        llama_metadata(&mut w, 50, 16, 4);
        w.metadata("tokenizer.ggml.tokens", tokens(50));
        let file = GgufFile::parse(w.to_bytes_with_data_start().0, "ok.gguf").unwrap();
        assert_eq!(SortedLlamaConfig::from_gguf(&file).unwrap().vocab_size, 50);
    }
}
