//! `bindery`: keeps KubeStellar Bindings up to date, incrementally.

use std::process::ExitCode;

use bindery::Cli;
use clap::Parser;

/// mimalloc instead of glibc's malloc: differential-dataflow's batches make many small
/// allocations (BENCHMARKS.md, "Allocator": a churn replay 20-24% faster at 100k objects).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.init_logs();
    match cli.run() {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`bindery crds | head -1`) ends the command quietly.
        Err(e) if bindery::stdout_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // The command's answer to its user: the error chain is the message.
            tracing::error!("{}", bindery::error_report(&e));
            ExitCode::FAILURE
        }
    }
}
