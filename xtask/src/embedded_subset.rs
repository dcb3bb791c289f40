//! `cargo xtask data embedded | embedded-rt | stats`: the data subsets committed inside
//! `sorted-data` (cut from the full sets, regenerated or compared byte for byte) and the
//! per-channel normalisation statistics of a training set.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use sorted_data::{
    Cifar10, Cifar100, Cifar100Labels, EMBEDDED_DIR, EMBEDDED_MNIST_SHA256, EMBEDDED_TEST_STRIDE, EMBEDDED_TRAIN_LEN,
    FashionMnist, ImageSet, Mnist, RT_CSV_FILE, RT_EMBEDDED_DIR, RT_EMBEDDED_FILE, RT_EMBEDDED_SHA256, RtSentiment,
    idx,
};

use crate::data::{StatsDataset, check_sha256, fetch_mnist, fetch_rt_sentiment, sha256_hex, write_atomic};

/// `cargo xtask data stats <dataset> [--dir <dir>]`.
pub(crate) fn stats(root: &Path, dataset: StatsDataset, dir: Option<PathBuf>) -> Result<()> {
    let default_dir = match dataset {
        StatsDataset::Mnist => "data/mnist",
        StatsDataset::FashionMnist => "data/fashion-mnist",
        StatsDataset::Cifar10 => "data/cifar-10",
        StatsDataset::Cifar100 => "data/cifar-100",
    };
    let dir = root.join(dir.unwrap_or_else(|| default_dir.into()));
    let reading = || format!("reading {}", dir.display());
    let train: ImageSet = match dataset {
        StatsDataset::Mnist => Mnist::from_dir(&dir).with_context(reading)?.train,
        StatsDataset::FashionMnist => FashionMnist::from_dir(&dir).with_context(reading)?.train,
        StatsDataset::Cifar10 => Cifar10::from_dir(&dir).with_context(reading)?.train,
        StatsDataset::Cifar100 => Cifar100::from_dir(&dir, Cifar100Labels::Fine).with_context(reading)?.train,
    };
    println!("{}: {} training images of shape {:?}", dir.display(), train.len(), train.image_shape());
    for (channel, (mean, std)) in train.channel_mean_std().into_iter().enumerate() {
        println!("  channel {channel}: mean {mean:.6}, std {std:.6}");
    }
    Ok(())
}

/// `cargo xtask data embedded-rt [--check]`.
pub(crate) fn embedded_rt(root: &Path, full: &Path, check: bool) -> Result<()> {
    fetch_rt_sentiment(full)?;
    let source = full.join(RT_CSV_FILE);
    let bytes = fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let subset = RtSentiment::embedded_csv(&bytes, &source)?;
    let path = root.join("crates/sorted-data").join(RT_EMBEDDED_DIR).join(RT_EMBEDDED_FILE);
    ensure!(
        sha256_hex(&subset) == RT_EMBEDDED_SHA256,
        "the regenerated slice has SHA-256 {}, sorted-data records {RT_EMBEDDED_SHA256}",
        sha256_hex(&subset)
    );
    if check {
        let committed = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        ensure!(
            committed == subset,
            "{}\nRun `cargo xtask data embedded-rt` to regenerate it.",
            describe_difference(&path, &committed, &subset)
        );
        println!("{}: matches the regenerated slice byte for byte", path.display());
        return Ok(());
    }
    write_atomic(&path, &subset)?;
    println!("wrote {} ({} bytes, SHA-256 {RT_EMBEDDED_SHA256})", path.display(), subset.len());
    Ok(())
}

/// `cargo xtask data embedded [--check]`.
pub(crate) fn embedded(root: &Path, full: &Path, check: bool) -> Result<()> {
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
