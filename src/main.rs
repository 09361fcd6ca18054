//! `bindery`: keeps KubeStellar Bindings up to date, incrementally.

use std::path::PathBuf;
use std::process::ExitCode;

use bindery::replay;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Bindery: an incremental engine for KubeStellar Bindings.
#[derive(Parser, Debug)]
#[command(name = "bindery", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay a recorded watch log through the engine at full speed.
    Replay {
        /// The watch log (JSON Lines, or the same compressed with zstd).
        log: PathBuf,
        /// Write the final Bindings as a Kubernetes List sorted by name (`-` for stdout).
        #[arg(long, value_name = "OUT.json")]
        dump_bindings: Option<PathBuf>,
        /// Print each epoch's Binding changes as JSON lines on stdout.
        #[arg(long)]
        emit_deltas: bool,
        /// Events within this many milliseconds of an epoch's first event share its epoch.
        #[arg(long, default_value_t = 0, value_name = "MS")]
        window_ms: i64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BINDERY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay {
            log,
            dump_bindings,
            emit_deltas,
            window_ms,
        } => {
            let opts = replay::ReplayOptions {
                log,
                dump_bindings,
                emit_deltas,
                window_ms,
            };
            let s = replay::replay(&opts)?;
            tracing::info!(
                "replayed {} events in {} epochs: {} Bindings, {:.3} s, {:.0} events/s",
                s.events,
                s.epochs,
                s.bindings,
                s.elapsed_secs,
                s.events as f64 / s.elapsed_secs.max(1e-9)
            );
            Ok(())
        }
    }
}
