use std::process::ExitCode;

use clap::Parser;

/// The system allocator spent about 40% of the hub's CPU under load (see
/// docs/PERFORMANCE.md); mimalloc is much cheaper for the pipeline's many
/// small, short-lived allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = gridhub::cli::Cli::parse();
    gridhub::cli::run(cli)
}
