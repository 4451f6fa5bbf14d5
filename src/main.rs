//! The kfactor binary: parse the command line and run.
use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    kfactor::cli::run(kfactor::cli::Cli::parse()).await
}
