//! The `sorted-runner` binary: a thin `main` over the `sorted_runner` library.
//!
//! Exit codes: 0 success; 1 failure (bad input, a damaged or missing file, a diverged run, an
//! internal error); 2 a usage error on the command line (clap's own code).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc behind a byte counter, so `profile` can report each sub-model's peak memory on CPU
/// backends (see `sorted_runner::heap` and docs/results/allocator.md).
#[global_allocator]
static ALLOCATOR: &sorted_runner::heap::RunnerAllocator = &sorted_runner::heap::ALLOCATOR;

fn main() -> ExitCode {
    let cli = sorted_runner::Cli::parse();
    // Input is validated where it enters, so a panic is a bug: report it as one line and exit
    // 1 instead of a backtrace (RUST_BACKTRACE=1 still prints one, for the bug report).
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            eprintln!(
                "error: internal error{place}: {message}\n(this is a bug in sorted-runner: please report it with the \
                 command line; RUST_BACKTRACE=1 adds a backtrace)"
            );
        }));
    }
    match std::panic::catch_unwind(|| sorted_runner::run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
        Err(_) => ExitCode::FAILURE,
    }
}
