//! The `sorted-runner` binary: a thin `main` over the `sorted_runner` library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = sorted_runner::Cli::parse();
    match sorted_runner::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
