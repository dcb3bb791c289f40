//! ggml tensor data to f32: the plain types and the block-quantized formats, decoded as ggml's
//! reference dequantization (`dequantize_row_*` in `ggml-quants.c`) does, operation for
//! operation, so that the results are bit-identical to ggml's and gguf-py's.

use super::GgmlType;

/// Appends the values of `raw`, whole blocks of `ggml_type` (checked when the file was parsed),
/// to `out`. Returns `false`, appending nothing, for a type this module does not decode.
pub(super) fn decode(ggml_type: GgmlType, raw: &[u8], out: &mut Vec<f32>) -> bool {
    match ggml_type {
        GgmlType::F32 => out.extend(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        GgmlType::F16 => out.extend(raw.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))),
        GgmlType::BF16 => out.extend(raw.chunks_exact(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))),
        GgmlType::Q8_0 => {
            for block in raw.chunks_exact(34) {
                let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
                out.extend(block[2..].iter().map(|&q| q as i8 as f32 * d));
            }
        }
        GgmlType::Q4_0 => {
            for block in raw.chunks_exact(18) {
                let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
                let qs = &block[2..];
                out.extend(qs.iter().map(|&b| ((b & 0x0f) as i32 - 8) as f32 * d));
                out.extend(qs.iter().map(|&b| ((b >> 4) as i32 - 8) as f32 * d));
            }
        }
        GgmlType::Q4_1 => {
            for block in raw.chunks_exact(20) {
                let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
                let m = f16_to_f32(u16::from_le_bytes([block[2], block[3]]));
                let qs = &block[4..];
                out.extend(qs.iter().map(|&b| (b & 0x0f) as f32 * d + m));
                out.extend(qs.iter().map(|&b| (b >> 4) as f32 * d + m));
            }
        }
        _ => return false,
    }
    true
}

/// IEEE half precision to f32, exactly (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from(h >> 10) & 0x1f;
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exp, mantissa) {
        (0, 0) => sign,
        // Subnormal: mantissa x 2^-24, exact in f32.
        (0, m) => sign | (m as f32 * (1.0 / 16_777_216.0)).to_bits(),
        (31, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// bfloat16 to f32: the high half of an f32.
fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_decodes_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3800), 0.5);
        assert_eq!(f16_to_f32(0xbc00), -1.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x83ff), -1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        // Every finite half round-trips through f64 arithmetic on its fields.
        for h in 0..=u16::MAX {
            let (exp, m) = (i32::from((h >> 10) & 0x1f), f64::from(h & 0x3ff));
            if exp == 31 {
                continue;
            }
            let magnitude = if exp == 0 { m * 2f64.powi(-24) } else { (1.0 + m / 1024.0) * 2f64.powi(exp - 15) };
            let expected = if h & 0x8000 != 0 { -magnitude } else { magnitude };
            assert_eq!(f64::from(f16_to_f32(h)), expected, "{h:#06x}");
        }
    }

    #[test]
    fn bfloat16_is_the_high_half() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
    }
}
