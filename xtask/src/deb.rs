//! Reading `.deb` packages: an ar archive whose members are `debian-binary` (the format
//! version), `control.tar.*` and `data.tar.*` (the files the package installs).

use std::io::Read;

use anyhow::{Context, Result, bail, ensure};
use flate2::read::GzDecoder;

/// The first bytes of every ar archive.
const AR_MAGIC: &[u8] = b"!<arch>\n";
/// The length of an ar member header: name (16), mtime (12), uid (6), gid (6), mode (8),
/// size (10), and the two bytes "`\n".
const AR_HEADER: usize = 60;

/// One member of an ar archive.
#[derive(Debug)]
pub(super) struct ArMember<'a> {
    /// The member's name (trailing spaces and the GNU `/` terminator removed).
    pub name: &'a str,
    /// The member's bytes.
    pub data: &'a [u8],
}

/// The members of an ar archive, in order.
///
/// This reads the common ar format that `dpkg-deb` writes: a member name fits in the
/// 16-byte header field, so neither the GNU nor the BSD long-name extension occurs. Data is
/// padded to an even offset.
pub(super) fn ar_members(bytes: &[u8]) -> Result<Vec<ArMember<'_>>> {
    ensure!(bytes.starts_with(AR_MAGIC), "not an ar archive (it does not start with `!<arch>\\n`)");
    let mut members = Vec::new();
    let mut offset = AR_MAGIC.len();
    while offset < bytes.len() {
        let Some(header) = bytes.get(offset..offset + AR_HEADER) else {
            bail!("ar member header at byte {offset} is cut short: the archive ends at byte {}", bytes.len());
        };
        ensure!(&header[58..] == b"`\n", "ar member header at byte {offset} does not end with \"`\\n\"");
        let name = std::str::from_utf8(&header[..16])
            .with_context(|| format!("ar member name at byte {offset} is not UTF-8"))?
            .trim_end()
            .trim_end_matches('/');
        let size_field = std::str::from_utf8(&header[48..58]).unwrap_or("").trim();
        let size: usize = size_field.parse().with_context(|| {
            format!("ar member {name:?} at byte {offset}: size field {size_field:?} is not a number")
        })?;
        let start = offset + AR_HEADER;
        let Some(data) = start.checked_add(size).and_then(|end| bytes.get(start..end)) else {
            bail!(
                "ar member {name:?} at byte {offset} claims {size} bytes, but the archive ends at byte {}",
                bytes.len()
            );
        };
        members.push(ArMember { name, data });
        offset = start + size + size % 2;
    }
    Ok(members)
}

/// The decompressed `data.tar` of a `.deb` package.
pub(super) fn data_tar(deb: &[u8]) -> Result<Vec<u8>> {
    let members = ar_members(deb).context("reading the package as an ar archive")?;
    let version = members.first().filter(|member| member.name == "debian-binary").map(|member| member.data);
    ensure!(
        version.is_some_and(|v| v.starts_with(b"2.")),
        "not a Debian binary package: the first ar member must be `debian-binary` holding \"2.x\""
    );
    let Some(data) = members.iter().find(|member| member.name.starts_with("data.tar")) else {
        let names: Vec<&str> = members.iter().map(|member| member.name).collect();
        bail!("the package has no data.tar member (members: {names:?})");
    };
    let mut out = Vec::new();
    match data.name {
        "data.tar.xz" => {
            lzma_rs::xz_decompress(&mut &data.data[..], &mut out).context("decompressing data.tar.xz (xz)")?
        }
        "data.tar.gz" => {
            GzDecoder::new(data.data).read_to_end(&mut out).context("decompressing data.tar.gz (gzip)")?;
        }
        "data.tar" => out.extend_from_slice(data.data),
        other => bail!("{other}: unsupported compression; this reads data.tar.xz, data.tar.gz and data.tar"),
    }
    Ok(out)
}
