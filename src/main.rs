//! `bindery`: keeps KubeStellar Bindings up to date, incrementally.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use bindery::{explain, live, replay};
use bindery_ingest::live::CancellationToken;
use bindery_sink::SinkConfig;
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
    /// Print the CRDs Bindery needs (BindingPolicy, Binding; OCM ManagedCluster for tests) as YAML.
    Crds,
    /// Watch a WDS and an ITS and keep their Bindings up to date (until SIGTERM/SIGINT).
    Run {
        /// Kubeconfig of the WDS (workload description space).
        #[arg(long, value_name = "FILE")]
        wds_kubeconfig: PathBuf,
        /// Kubeconfig of the ITS (inventory and transport space).
        #[arg(long, value_name = "FILE")]
        its_kubeconfig: PathBuf,
        /// Only these API groups are workload (comma-separated; `core` for the core group).
        #[arg(long, value_name = "G,...", value_delimiter = ',')]
        api_groups: Option<Vec<String>>,
        /// Record every watch event to this watch log (`.jsonl`, or `.jsonl.zst`).
        #[arg(long, value_name = "LOG")]
        record: Option<PathBuf>,
        /// Changes to one Binding within this window are written once.
        #[arg(long, default_value_t = 250, value_name = "MS")]
        coalesce_ms: u64,
        /// Binding and status writes in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Client-side rate limit of API requests per second (0: none).
        #[arg(long, default_value_t = 50)]
        qps: u32,
        /// Client-side burst of API requests.
        #[arg(long, default_value_t = 100)]
        burst: u32,
    },
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
        /// Dry-run: after the log, apply this BindingPolicy (one object, YAML or JSON) as
        /// added or edited, and print its Binding on stdout and its problems on stderr.
        /// Nothing is written anywhere else; a `--dump-bindings` file includes it.
        #[arg(long, value_name = "FILE.yaml", conflicts_with = "emit_deltas")]
        with_policy: Option<PathBuf>,
    },
    /// Explain why a BindingPolicy binds (or not) a WEC and selects (or not) an object,
    /// test by test, on the final state of a watch log. Without --object and --cluster,
    /// explain the policy overall. (The live form, against a WDS and an ITS with
    /// --wds-kubeconfig/--its-kubeconfig, is not supported yet: record a log with
    /// `bindery run --record` and explain that.)
    Explain {
        /// The watch log whose final state to explain.
        #[arg(long, value_name = "LOG", required_unless_present_any = ["wds_kubeconfig", "its_kubeconfig"])]
        log: Option<PathBuf>,
        /// The BindingPolicy to explain.
        #[arg(long, value_name = "NAME")]
        policy: String,
        /// A workload object: GROUP/RESOURCE/[NAMESPACE/]NAME, GROUP empty for the core
        /// group (`/namespaces/nginx`, `apps/deployments/nginx/nginx-deployment`).
        #[arg(long, value_name = "GROUP/RESOURCE/[NAMESPACE/]NAME")]
        object: Option<String>,
        /// A WEC (cluster id, the ManagedCluster's name).
        #[arg(long, value_name = "C")]
        cluster: Option<String>,
        /// Output format: `text` (default) or `json`.
        #[arg(short = 'o', long, value_enum, default_value_t = explain::OutputFormat::Text)]
        output: explain::OutputFormat,
        /// Not supported yet (live explain against a WDS).
        #[arg(long, value_name = "FILE", conflicts_with = "log")]
        wds_kubeconfig: Option<PathBuf>,
        /// Not supported yet (live explain against an ITS).
        #[arg(long, value_name = "FILE", conflicts_with = "log")]
        its_kubeconfig: Option<PathBuf>,
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
        Command::Crds => {
            print!("{}", bindery::crds::crds_yaml());
            Ok(())
        }
        Command::Run {
            wds_kubeconfig,
            its_kubeconfig,
            api_groups,
            record,
            coalesce_ms,
            concurrency,
            qps,
            burst,
        } => {
            let sink = SinkConfig {
                concurrency,
                qps,
                burst,
                ..SinkConfig::default()
            };
            sink.validate()?;
            let opts = live::RunOptions {
                wds_kubeconfig,
                its_kubeconfig,
                api_groups,
                record,
                coalesce: Duration::from_millis(coalesce_ms),
                sink,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                live::run(opts, shutdown).await
            })
        }
        Command::Replay {
            log,
            dump_bindings,
            emit_deltas,
            window_ms,
            with_policy,
        } => {
            let opts = replay::ReplayOptions {
                log,
                dump_bindings,
                emit_deltas,
                window_ms,
                with_policy,
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
        Command::Explain {
            log,
            policy,
            object,
            cluster,
            output,
            wds_kubeconfig,
            its_kubeconfig,
        } => {
            let Some(log) = log.filter(|_| wds_kubeconfig.is_none() && its_kubeconfig.is_none())
            else {
                anyhow::bail!(
                    "explaining against a live WDS/ITS (--wds-kubeconfig/--its-kubeconfig) is not supported yet: \
                     record a watch log with `bindery run --record LOG` and use `bindery explain --log LOG`"
                );
            };
            let opts = explain::ExplainOptions {
                log,
                policy,
                object,
                cluster,
                output,
            };
            print!("{}", explain::explain(&opts)?);
            Ok(())
        }
    }
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
