use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gridhub::cli::Cli::parse();
    gridhub::cli::run(cli)
}
