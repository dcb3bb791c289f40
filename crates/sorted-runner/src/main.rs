//! The `sorted-runner` binary: a thin `main` over the `sorted_runner` library.

use std::process::ExitCode;

use clap::Parser;

/// Counts heap bytes so `profile` can report each sub-model's peak memory on CPU backends.
#[global_allocator]
static ALLOCATOR: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

fn main() -> ExitCode {
    let cli = sorted_runner::Cli::parse();
    match sorted_runner::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
