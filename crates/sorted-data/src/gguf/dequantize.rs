//! ggml tensor data to f32: the plain types and the block-quantized formats, decoded as ggml's
//! reference dequantization (`dequantize_row_*` in `ggml-quants.c`) does, operation for
//! operation, so that the results are bit-identical to ggml's and gguf-py's.

use super::GgmlType;

/// Elements per super-block of the k-quants (`QK_K`).
const QK_K: usize = 256;

/// Appends the values of `raw`, whole blocks of `ggml_type` (checked when the file was parsed),
/// to `out`. Returns `false`, appending nothing, for a type this module does not decode.
pub(super) fn decode(ggml_type: GgmlType, raw: &[u8], out: &mut Vec<f32>) -> bool {
    let block: fn(&[u8], &mut Vec<f32>) = match ggml_type {
        GgmlType::F32 => {
            out.extend(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            return true;
        }
        GgmlType::F16 => {
            out.extend(raw.chunks_exact(2).map(|c| f16_at(c, 0)));
            return true;
        }
        GgmlType::BF16 => {
            out.extend(raw.chunks_exact(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]]))));
            return true;
        }
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q2_K => q2_k,
        GgmlType::Q3_K => q3_k,
        GgmlType::Q4_K => q4_k,
        GgmlType::Q5_K => q5_k,
        GgmlType::Q6_K => q6_k,
        GgmlType::Q8_K => q8_k,
        _ => return false,
    };
    // `parse` checked that the data is a whole number of blocks.
    for chunk in raw.chunks_exact(ggml_type.block_bytes() as usize) {
        block(chunk, out);
    }
    true
}

/// The f16 at byte `at` of `bytes`, as f32.
fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// `Q4_0`, 32 elements in 18 bytes: `d: f16, qs: [u8; 16]`. Element `j < 16` is the low nibble
/// of `qs[j]`, element `j + 16` its high nibble; `y = (q - 8) * d`.
fn q4_0(b: &[u8], out: &mut Vec<f32>) {
    let (d, qs) = (f16_at(b, 0), &b[2..18]);
    out.extend(qs.iter().map(|&q| (i32::from(q & 0x0f) - 8) as f32 * d));
    out.extend(qs.iter().map(|&q| (i32::from(q >> 4) - 8) as f32 * d));
}

/// `Q4_1`, 32 elements in 20 bytes: `d: f16, m: f16, qs: [u8; 16]`, nibbles as in `Q4_0`;
/// `y = q * d + m`.
fn q4_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m, qs) = (f16_at(b, 0), f16_at(b, 2), &b[4..20]);
    out.extend(qs.iter().map(|&q| f32::from(q & 0x0f) * d + m));
    out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
}

/// The 5-bit values of a `Q5_0`/`Q5_1` block: the nibbles of `qs` as in `Q4_0`, with bit `j`
/// of the little-endian `qh` as the fifth bit of element `j`.
fn five_bit(qh: &[u8], qs: &[u8]) -> impl Iterator<Item = u8> {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let nibbles = qs.iter().map(|&q| q & 0x0f).chain(qs.iter().map(|&q| q >> 4));
    nibbles.enumerate().map(move |(j, low)| low | ((((qh >> j) & 1) as u8) << 4))
}

/// `Q5_0`, 32 elements in 22 bytes: `d: f16, qh: [u8; 4], qs: [u8; 16]`; `y = (q - 16) * d`.
fn q5_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(five_bit(&b[2..6], &b[6..22]).map(|q| (i32::from(q) - 16) as f32 * d));
}

/// `Q5_1`, 32 elements in 24 bytes: `d: f16, m: f16, qh: [u8; 4], qs: [u8; 16]`;
/// `y = q * d + m`.
fn q5_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    out.extend(five_bit(&b[4..8], &b[8..24]).map(|q| f32::from(q) * d + m));
}

/// `Q8_0`, 32 elements in 34 bytes: `d: f16, qs: [i8; 32]`; `y = q * d`.
fn q8_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
}

/// `Q2_K`, 256 elements in 84 bytes: `scales: [u8; 16], qs: [u8; 64], d: f16, dmin: f16`.
/// Sixteen groups of 16: group `g` takes 2-bit values from `qs[32 (g / 8) + 16 (g % 2) + l]`
/// shifted right by `2 ((g % 8) / 2)`, and `y = (d * (scales[g] & 15)) * q - dmin * (scales[g] >> 4)`.
fn q2_k(b: &[u8], out: &mut Vec<f32>) {
    let (scales, qs, d, dmin) = (&b[..16], &b[16..80], f16_at(b, 80), f16_at(b, 82));
    for (g, &sc) in scales.iter().enumerate() {
        let (dl, ml) = (d * f32::from(sc & 0x0f), dmin * f32::from(sc >> 4));
        let (start, shift) = (32 * (g / 8) + 16 * (g % 2), 2 * ((g % 8) / 2));
        out.extend(qs[start..start + 16].iter().map(|&q| dl * f32::from((q >> shift) & 3) - ml));
    }
}

/// `Q3_K`, 256 elements in 110 bytes: `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16`.
/// Sixteen groups of 16 with signed 6-bit scales (low nibbles in `scales[0..8]`, both halves;
/// high 2-bit pairs in `scales[8..12]`, minus 32); group `g` takes its low 2 bits as `Q2_K`
/// does and bit `4 (g / 8) + (g % 8) / 2` of `hmask[16 (g % 2) + l]`, a clear bit subtracting 4:
/// `y = (d * scale) * q`.
fn q3_k(b: &[u8], out: &mut Vec<f32>) {
    let (hmask, qs, packed, d) = (&b[..32], &b[32..96], &b[96..108], f16_at(b, 108));
    for g in 0..16 {
        let low = (packed[g % 8] >> (4 * (g / 8))) & 0x0f;
        let high = (packed[8 + g % 4] >> (2 * (g / 4))) & 3;
        let dl = d * (i32::from(low | (high << 4)) - 32) as f32;
        let (start, shift, bit) = (32 * (g / 8) + 16 * (g % 2), 2 * ((g % 8) / 2), 4 * (g / 8) + (g % 8) / 2);
        out.extend((start..start + 16).map(|i| {
            let q = i32::from((qs[i] >> shift) & 3) - if hmask[i % 32] >> bit & 1 == 1 { 0 } else { 4 };
            dl * q as f32
        }));
    }
}

/// Scale and minimum `j` (of 8, 6 bits each) of a `Q4_K`/`Q5_K` block's 12 packed bytes
/// (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, packed: &[u8]) -> (f32, f32) {
    let (sc, m) = if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        ((packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4), (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4))
    };
    (f32::from(sc), f32::from(m))
}

/// `Q4_K`, 256 elements in 144 bytes: `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`.
/// Eight groups of 32: group `g` takes the low (even `g`) or high (odd `g`) nibbles of
/// `qs[32 (g / 2)..][..32]`, and `y = (d * sc) * q - dmin * m`.
fn q4_k(b: &[u8], out: &mut Vec<f32>) {
    let (d, dmin, packed, qs) = (f16_at(b, 0), f16_at(b, 2), &b[4..16], &b[16..144]);
    for g in 0..8 {
        let (sc, m) = scale_min_k4(g, packed);
        let (dl, ml, shift) = (d * sc, dmin * m, 4 * (g % 2));
        out.extend(qs[32 * (g / 2)..][..32].iter().map(|&q| dl * f32::from((q >> shift) & 0x0f) - ml));
    }
}

/// `Q5_K`, 256 elements in 176 bytes: `d: f16, dmin: f16, scales: [u8; 12], qh: [u8; 32],
/// qs: [u8; 128]`: `Q4_K` with bit `g` of `qh[l]` as the fifth bit of element `l` of group `g`.
fn q5_k(b: &[u8], out: &mut Vec<f32>) {
    let (d, dmin, packed, qh, qs) = (f16_at(b, 0), f16_at(b, 2), &b[4..16], &b[16..48], &b[48..176]);
    for g in 0..8 {
        let (sc, m) = scale_min_k4(g, packed);
        let (dl, ml, shift) = (d * sc, dmin * m, 4 * (g % 2));
        out.extend(qs[32 * (g / 2)..][..32].iter().zip(qh).map(|(&q, &h)| {
            let q = ((q >> shift) & 0x0f) | (((h >> g) & 1) << 4);
            dl * f32::from(q) - ml
        }));
    }
}

/// `Q6_K`, 256 elements in 210 bytes: `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`.
/// Two halves of 128, each four quarters of 32: element `l` of quarter `k` in half `n` has the
/// low 4 bits from `ql[64 n + 32 (k % 2) + l] >> 4 (k / 2)`, the high 2 from
/// `qh[32 n + l] >> 2 k`, and the scale `scales[8 n + 2 k + l / 16]`; `y = (d * scale) * (q - 32)`.
fn q6_k(b: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, scales, d) = (&b[..128], &b[128..192], &b[192..208], f16_at(b, 208));
    for n in 0..2 {
        for k in 0..4 {
            out.extend((0..32).map(|l| {
                let low = (ql[64 * n + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0f;
                let high = (qh[32 * n + l] >> (2 * k)) & 3;
                let scale = f32::from(scales[8 * n + 2 * k + l / 16] as i8);
                d * scale * (i32::from(low | (high << 4)) - 32) as f32
            }));
        }
    }
}

/// `Q8_K`, 256 elements in 292 bytes: `d: f32, qs: [i8; 256], bsums: [i16; 16]` (the sums are
/// for dot products, not needed here); `y = d * q`.
fn q8_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    out.extend(b[4..4 + QK_K].iter().map(|&q| d * f32::from(q as i8)));
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
