//! The IDX file format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! An IDX file is a big-endian header followed by the data as unsigned bytes:
//!
//! | file   | magic        | then                                          | data               |
//! |--------|--------------|-----------------------------------------------|--------------------|
//! | images | `0x00000803` | `n_items: u32`, `n_rows: u32`, `n_cols: u32`  | `n_items * n_rows * n_cols` bytes, row-major |
//! | labels | `0x00000801` | `n_items: u32`                                | `n_items` bytes    |
//!
//! The parsers reject truncated data and trailing bytes alike, naming the file and both byte
//! counts. Gzip input is recognised by its magic bytes `1f 8b` ([`decompress_if_gzip`]).
//!
//! ```
//! use sorted_data::idx;
//!
//! let pixels = [0u8, 64, 128, 255, 1, 2, 3, 4];
//! let bytes = idx::encode_images(&pixels, 2, 2, 2);
//! let (parsed, n, n_rows, n_cols) = idx::parse_images(&bytes, "two.idx3")?;
//! assert_eq!((parsed.as_slice(), n, n_rows, n_cols), (&pixels[..], 2, 2, 2));
//!
//! let gz = idx::compress_gzip(&idx::encode_labels(&[3, 1]));
//! let labels = idx::parse_labels(&idx::decompress_if_gzip(&gz, "labels.gz")?, "labels.gz")?;
//! assert_eq!(labels, [3, 1]);
//! # Ok::<(), sorted_data::DataError>(())
//! ```

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder, read::MultiGzDecoder};

use crate::DataError;

/// Magic number of an IDX images file: unsigned bytes (`0x08`), three dimensions (`0x03`).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX labels file: unsigned bytes (`0x08`), one dimension (`0x01`).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The first two bytes of every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The most bytes [`decompress_if_gzip`] inflates a file to: 1 GiB, twenty times the largest
/// IDX file this project reads (MNIST's training images, 47 MB). A gzip stream can expand
/// about a thousandfold, so without a bound a small file could demand any amount of memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// Header length of an images file: magic, count, rows, cols.
const IMAGES_HEADER: usize = 16;
/// Header length of a labels file: magic, count.
const LABELS_HEADER: usize = 8;

/// Decompresses `bytes` if they start with the gzip magic bytes, and borrows them otherwise.
///
/// `name` is the file name used in errors.
///
/// # Errors
/// - [`DataError::Gzip`] if the data starts like gzip but does not decompress;
/// - [`DataError::TooLarge`] if it inflates to more than [`MAX_DECOMPRESSED_BYTES`] (a
///   decompression bomb, or not an IDX file), found without holding more than that in memory.
pub fn decompress_if_gzip<'a>(bytes: &'a [u8], name: impl AsRef<Path>) -> Result<Cow<'a, [u8]>, DataError> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(bytes));
    }
    inflate(bytes, name.as_ref(), MAX_DECOMPRESSED_BYTES).map(Cow::Owned)
}

/// The gzip stream `bytes` inflated, or [`DataError::TooLarge`] past `limit` bytes.
fn inflate(bytes: &[u8], path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    // One byte past the limit tells a stream that exceeds it from one that just fits.
    MultiGzDecoder::new(bytes)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip { path: path.to_path_buf(), source })?;
    if out.len() as u64 > limit {
        return Err(DataError::TooLarge { path: path.to_path_buf(), what: "decompressed gzip data", limit });
    }
    Ok(out)
}

/// Compresses `bytes` into a gzip stream that depends on nothing but the input: modification
/// time 0, no file name, operating system "unknown" (255), best compression (level 9).
///
/// This is how the embedded MNIST subset was written, so regenerating it reproduces the
/// committed files bit for bit (given the same `flate2` backend and version).
pub fn compress_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    encoder.write_all(bytes).expect("gzip into memory cannot fail");
    encoder.finish().expect("gzip into memory cannot fail")
}

/// Parses an uncompressed IDX images file.
///
/// Returns `(pixels, n_items, n_rows, n_cols)`, with the pixels of all images concatenated
/// row-major (`n_items * n_rows * n_cols` bytes). `name` is the file name used in errors.
///
/// # Errors
/// - [`DataError::Truncated`] if the header or the data is shorter than the header implies;
/// - [`DataError::TrailingBytes`] if there is more data than the header implies;
/// - [`DataError::WrongMagic`] if the file does not start with [`IMAGES_MAGIC`];
/// - [`DataError::BadHeader`] if an image has zero rows or columns, or the sizes overflow.
pub fn parse_images(bytes: &[u8], name: impl AsRef<Path>) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let path = name.as_ref();
    let header = read_header::<4>(bytes, path, IMAGES_MAGIC)?;
    let [_, n_items, n_rows, n_cols] = header;
    for (field, value) in [("n_rows", n_rows), ("n_cols", n_cols)] {
        if value == 0 {
            return Err(DataError::BadHeader { path: path.to_path_buf(), field, expected: "at least 1", got: 0 });
        }
    }
    let n_data = u64::from(n_items)
        .checked_mul(u64::from(n_rows))
        .and_then(|n| n.checked_mul(u64::from(n_cols)))
        .ok_or(DataError::BadHeader {
            path: path.to_path_buf(),
            field: "n_items",
            expected: "n_items * n_rows * n_cols to fit in 64 bits",
            got: u64::from(n_items),
        })?;
    let data = check_len(bytes, IMAGES_HEADER, n_data, path)?;
    Ok((data.to_vec(), n_items as usize, n_rows as usize, n_cols as usize))
}

/// Parses an uncompressed IDX labels file into one byte per item. `name` is the file name used
/// in errors.
///
/// # Errors
/// - [`DataError::Truncated`] if the header or the data is shorter than the header implies;
/// - [`DataError::TrailingBytes`] if there is more data than the header implies;
/// - [`DataError::WrongMagic`] if the file does not start with [`LABELS_MAGIC`].
pub fn parse_labels(bytes: &[u8], name: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let path = name.as_ref();
    let [_, n_items] = read_header::<2>(bytes, path, LABELS_MAGIC)?;
    let data = check_len(bytes, LABELS_HEADER, u64::from(n_items), path)?;
    Ok(data.to_vec())
}

/// Encodes images as an uncompressed IDX images file: the inverse of [`parse_images`].
///
/// # Panics
/// If `pixels.len() != n_items * n_rows * n_cols`, or a size does not fit in the format's `u32`
/// fields (both are bugs in the caller, not bad input).
pub fn encode_images(pixels: &[u8], n_items: usize, n_rows: usize, n_cols: usize) -> Vec<u8> {
    assert_eq!(
        Some(pixels.len()),
        n_items.checked_mul(n_rows).and_then(|n| n.checked_mul(n_cols)),
        "encode_images: {} pixel bytes do not make {n_items} images of {n_rows}x{n_cols}",
        pixels.len()
    );
    let mut out = Vec::with_capacity(IMAGES_HEADER + pixels.len());
    for value in [IMAGES_MAGIC as usize, n_items, n_rows, n_cols] {
        out.extend_from_slice(&to_u32(value, "encode_images").to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes labels as an uncompressed IDX labels file: the inverse of [`parse_labels`].
///
/// # Panics
/// If there are more than `u32::MAX` labels.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(LABELS_HEADER + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&to_u32(labels.len(), "encode_labels").to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Reads the magic number and the `N - 1` big-endian `u32` fields after it, checking the magic.
fn read_header<const N: usize>(bytes: &[u8], path: &Path, magic: u32) -> Result<[u32; N], DataError> {
    let header_len = 4 * N;
    // Check the magic first when it is there, so a file of the wrong kind is reported as such
    // rather than as truncated.
    if let Some(first) = bytes.first_chunk::<4>() {
        let got = u32::from_be_bytes(*first);
        if got != magic {
            return Err(DataError::WrongMagic { path: path.to_path_buf(), expected: magic, got });
        }
    }
    if bytes.len() < header_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected_bytes: header_len as u64,
            got_bytes: bytes.len() as u64,
        });
    }
    Ok(std::array::from_fn(|i| {
        let field: [u8; 4] = bytes[4 * i..4 * i + 4].try_into().expect("slice of length 4");
        u32::from_be_bytes(field)
    }))
}

/// Returns the data after the header, checking that it is exactly `n_data` bytes long.
fn check_len<'a>(bytes: &'a [u8], header_len: usize, n_data: u64, path: &Path) -> Result<&'a [u8], DataError> {
    let expected_bytes = (header_len as u64).saturating_add(n_data);
    let got_bytes = bytes.len() as u64;
    if got_bytes < expected_bytes {
        return Err(DataError::Truncated { path: path.to_path_buf(), expected_bytes, got_bytes });
    }
    if got_bytes > expected_bytes {
        return Err(DataError::TrailingBytes { path: path.to_path_buf(), expected_bytes, got_bytes });
    }
    Ok(&bytes[header_len..])
}

/// Converts a size to the format's `u32`, panicking (a caller bug) when it does not fit.
fn to_u32(value: usize, what: &str) -> u32 {
    u32::try_from(value).unwrap_or_else(|_| panic!("{what}: {value} does not fit in an IDX u32 field"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_big_endian() {
        let bytes = encode_images(&[7; 6], 1, 2, 3);
        assert_eq!(&bytes[..16], &[0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
        assert_eq!(&encode_labels(&[9])[..], &[0, 0, 8, 1, 0, 0, 0, 1, 9]);
    }

    #[test]
    fn gzip_is_deterministic_and_detected() {
        let raw = encode_labels(&[1, 2, 3]);
        let gz = compress_gzip(&raw);
        assert_eq!(gz, compress_gzip(&raw));
        assert_eq!(&gz[..2], &GZIP_MAGIC);
        // mtime bytes are zero, OS byte is "unknown".
        assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
        assert_eq!(gz[9], 255);
        assert_eq!(decompress_if_gzip(&gz, "x").unwrap().as_ref(), &raw[..]);
        assert!(matches!(decompress_if_gzip(&raw, "x").unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn labels_magic_in_images_parser_is_wrong_magic() {
        let err = parse_images(&encode_labels(&[1]), "labels.idx1").unwrap_err();
        assert!(matches!(err, DataError::WrongMagic { expected: IMAGES_MAGIC, got: LABELS_MAGIC, .. }));
    }

    #[test]
    fn short_header_is_truncated() {
        let err = parse_labels(&[0, 0, 8, 1, 0], "short").unwrap_err();
        assert!(matches!(err, DataError::Truncated { expected_bytes: 8, got_bytes: 5, .. }));
    }

    #[test]
    fn zero_sized_images_are_rejected() {
        let mut bytes = encode_images(&[], 0, 1, 1);
        bytes[11] = 0; // n_rows = 0
        let err = parse_images(&bytes, "flat").unwrap_err();
        assert!(matches!(err, DataError::BadHeader { field: "n_rows", .. }));
    }

    #[test]
    fn issue_27_gzip_inflating_past_the_limit_is_refused() {
        let gz = compress_gzip(&[0; 4096]);
        assert_eq!(inflate(&gz, Path::new("x"), 4096).unwrap().len(), 4096);
        let err = inflate(&gz, Path::new("bomb.gz"), 4095).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { limit: 4095, .. }), "{err}");
        assert!(err.to_string().contains("bomb.gz"), "{err}");
    }

    #[test]
    fn corrupt_gzip_is_an_error_naming_the_file() {
        let mut gz = compress_gzip(&encode_labels(&[1, 2, 3]));
        let len = gz.len();
        gz.truncate(len - 6);
        let err = decompress_if_gzip(&gz, "broken.gz").unwrap_err();
        assert!(err.to_string().contains("broken.gz"), "{err}");
    }
}
