//! GGUF dequantization against gguf-py's reference, bit for bit. The fixture `quants.gguf` is
//! written by `fixtures/make_quant_fixtures.py`: for each decoded type a tensor named after it
//! (`q4_k`) and an F32 tensor `q4_k.expected` holding what `gguf.quants.dequantize` gives for it;
//! `smollm2_q4_k_m_blocks.gguf` holds real blocks of a Q4_K_M model file (SmolLM2-135M-Instruct,
//! quantized by llama.cpp's own `llama-quantize`), in the same shape.

use std::path::PathBuf;

use sorted_data::{GgmlType, GgufError, GgufFile};

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quants.gguf")
}

fn fixture() -> GgufFile {
    GgufFile::read(fixture_path()).unwrap()
}

/// Dequantizes tensor `name` and its `.expected` twin; asserts equal shapes and identical bits.
fn assert_bit_exact(gguf: &GgufFile, name: &str) {
    let (shape, got) = gguf.dequantize(name).unwrap();
    let (expected_shape, expected) = gguf.dequantize(&format!("{name}.expected")).unwrap();
    assert_eq!(shape, expected_shape, "{name}");
    assert_eq!(got.len(), expected.len(), "{name}");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g.to_bits(), e.to_bits(), "{name}[{i}]: got {g:e}, gguf-py gives {e:e}");
    }
}

#[test]
fn every_decoded_type_matches_gguf_py_bit_for_bit() {
    let gguf = fixture();
    let mut types = Vec::new();
    for info in gguf.tensors().filter(|t| !t.name().ends_with(".expected")) {
        assert_eq!(info.name(), info.ggml_type().name().to_lowercase());
        assert_bit_exact(&gguf, info.name());
        types.push(info.ggml_type());
    }
    use GgmlType::*;
    assert_eq!(types, [F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K]);
}

#[test]
fn k_quant_fixture_blocks_cover_subnormal_large_and_negative_scales() {
    // Guards the fixture itself: the crafted blocks must exercise more than small positive values.
    let gguf = fixture();
    for name in ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"] {
        let (shape, values) = gguf.dequantize(name).unwrap();
        assert_eq!(shape, [3, 256], "{name}");
        let max_abs = |block: &[f32]| block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let (ordinary, subnormal, large) =
            (max_abs(&values[..256]), max_abs(&values[256..512]), max_abs(&values[512..]));
        assert!(subnormal < 1.0 && ordinary < large && large > 100.0, "{name}: {ordinary} {subnormal} {large}");
        assert!(values.iter().any(|v| *v < 0.0) && values.iter().any(|v| *v > 0.0), "{name}");
    }
}

#[test]
fn an_undecoded_type_is_an_error_listing_the_decoded_ones() {
    // Retype `q4_0` as IQ4_NL (same 18-byte blocks of 32), which is not decoded.
    let mut bytes = std::fs::read(fixture_path()).unwrap();
    let mut info = Vec::new();
    info.extend(4u64.to_le_bytes());
    info.extend(b"q4_0");
    info.extend(2u32.to_le_bytes());
    info.extend([64u64, 4].iter().flat_map(|d| d.to_le_bytes()));
    info.extend(GgmlType::Q4_0.id().to_le_bytes());
    let at = bytes.windows(info.len()).position(|w| w == info).unwrap() + info.len() - 4;
    bytes[at..at + 4].copy_from_slice(&GgmlType::IQ4_NL.id().to_le_bytes());
    let gguf = GgufFile::parse(bytes, "retyped.gguf").unwrap();
    let err = gguf.dequantize("q4_0").unwrap_err();
    assert!(matches!(&err, GgufError::UnsupportedType { ggml_type: GgmlType::IQ4_NL, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "`retyped.gguf`: tensor `q4_0` is IQ4_NL (ggml type 20); dequantize reads F32, F16, BF16, Q8_0, Q8_K, \
         Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K"
    );
    // The other tensors still decode.
    assert_bit_exact(&gguf, "q4_k");
}

#[test]
fn real_smollm2_q4_k_m_blocks_match_gguf_py_bit_for_bit() {
    // Blocks cut from a Q4_K_M file of SmolLM2-135M-Instruct (Apache-2.0) made by llama.cpp's
    // llama-quantize (see the generator's `--smollm2`): what people download as "Q4_K_M" mixes
    // Q4_K and Q6_K (FFN down) with Q5_0/Q8_0 fallbacks where a row is not a multiple of 256.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2_q4_k_m_blocks.gguf");
    let gguf = GgufFile::read(path).unwrap();
    let mut types = Vec::new();
    for info in gguf.tensors().filter(|t| !t.name().ends_with(".expected")) {
        assert_bit_exact(&gguf, info.name());
        types.push(info.ggml_type());
    }
    assert_eq!(types, [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_0, GgmlType::Q8_0]);
}
