//! `bindery`: keeps KubeStellar Bindings up to date, incrementally.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use bindery::cmd::{explain, replay, run as live};
use bindery::runtime::client_args::ClientArgs;
use bindery_ingest::live::CancellationToken;
use bindery_sink::SinkConfig;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The longest `--coalesce-ms`: a day (a window past what an `Instant` can add would
/// panic in the engine loop).
const MAX_COALESCE_MS: u64 = 24 * 3600 * 1000;

/// The most `--workers`: timely threads in one process (more than the cores only adds
/// scheduling).
const MAX_WORKERS: usize = 64;

/// Bindery: an incremental engine for KubeStellar Bindings.
#[derive(Parser, Debug)]
#[command(name = "bindery", version, about)]
struct Cli {
    /// Log format on stderr: `text`, or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BINDERY_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How logs are written on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`), `target`.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CRDs Bindery needs (BindingPolicy, Binding; OCM ManagedCluster for tests) as YAML.
    Crds,
    /// Watch a WDS and an ITS and keep their Bindings up to date (until SIGTERM/SIGINT).
    Run {
        /// The WDS and ITS: kubeconfigs, contexts, or in-cluster.
        #[command(flatten)]
        client: ClientArgs,
        /// Only these API groups are workload (comma-separated; `core` for the core group).
        #[arg(
            long,
            value_name = "G,...",
            value_delimiter = ',',
            env = "BINDERY_API_GROUPS"
        )]
        api_groups: Option<Vec<String>>,
        /// Record every watch event to this watch log (`.jsonl`, or `.jsonl.zst`).
        #[arg(long, value_name = "LOG", env = "BINDERY_RECORD")]
        record: Option<PathBuf>,
        /// Changes to one Binding within this window are written once (at most a day).
        #[arg(long, default_value_t = 250, value_name = "MS", value_parser = clap::value_parser!(u64).range(..=MAX_COALESCE_MS), env = "BINDERY_COALESCE_MS")]
        coalesce_ms: u64,
        /// Binding and status writes in flight at once.
        #[arg(long, default_value_t = 8, env = "BINDERY_CONCURRENCY")]
        concurrency: usize,
        /// Client-side rate limit of API requests per second (0: none).
        #[arg(long, default_value_t = 50, env = "BINDERY_QPS")]
        qps: u32,
        /// Client-side burst of API requests.
        #[arg(long, default_value_t = 100, env = "BINDERY_BURST")]
        burst: u32,
        /// A Binding whose JSON is larger is not sent (the API server could not store it;
        /// etcd's default limit is 1.5 MiB): its policy's status says so instead.
        #[arg(long, default_value_t = bindery_sink::apiserver::DEFAULT_MAX_BINDING_BYTES, value_name = "BYTES", env = "BINDERY_MAX_BINDING_BYTES")]
        max_binding_bytes: usize,
        /// At SIGTERM/SIGINT, writes still queued after this many seconds are given up
        /// (below Kubernetes' default 30 s grace period); a second signal exits at once.
        #[arg(
            long,
            default_value_t = 20,
            value_name = "SECONDS",
            env = "BINDERY_SHUTDOWN_TIMEOUT"
        )]
        shutdown_timeout: u64,
        /// Publish Kubernetes Events on BindingPolicies for new problems, Bindings that
        /// cannot be written, and problems resolved (rate-limited; needs `create` and
        /// `patch` on `events.k8s.io` events in the `default` namespace).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", env = "BINDERY_POLICY_EVENTS")]
        policy_events: bool,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        leader: bindery::runtime::leader::LeaderArgs,
    },
    /// Write a seeded synthetic watch log (WECs, namespaces, workload objects over five
    /// resources, policies, then churn with two herds) for benchmarks and tests.
    Generate {
        /// The log to write (`.jsonl`, or zstd-compressed with `.jsonl.zst`).
        #[arg(long, value_name = "LOG")]
        out: PathBuf,
        /// WECs (ManagedClusters).
        #[arg(long, default_value_t = 100)]
        wecs: usize,
        /// Workload objects (60% ConfigMaps, 15% Deployments, 10% Services, 10% Secrets,
        /// 5% ClusterRoles).
        #[arg(long, default_value_t = 10_000)]
        objects: usize,
        /// BindingPolicies.
        #[arg(long, default_value_t = 50)]
        policies: usize,
        /// Namespaces (default: one per 200 objects, at least 10).
        #[arg(long)]
        namespaces: Option<usize>,
        /// Churn events after the initial lists.
        #[arg(long, default_value_t = 10_000)]
        churn: usize,
        /// Milliseconds between churn events (their `ts`).
        #[arg(long, default_value_t = 1, value_name = "MS")]
        interval_ms: i64,
        /// Seed of the pseudo-random choices: the same figures and seed give the same log.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Replay a recorded watch log through the engine (as fast as possible, or paced by
    /// its timestamps with --speed), optionally with the live dashboard.
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
        #[arg(long, default_value_t = 0, value_name = "MS", value_parser = clap::value_parser!(i64).range(0..))]
        window_ms: i64,
        /// Dry-run: after the log, apply this BindingPolicy (one object, YAML or JSON) as
        /// added or edited, and print its Binding on stdout and its problems on stderr.
        /// Nothing is written anywhere else; a `--dump-bindings` file includes it.
        #[arg(long, value_name = "FILE.yaml", conflicts_with = "emit_deltas")]
        with_policy: Option<PathBuf>,
        /// Serve the live dashboard and /metrics during the replay (see --listen), and
        /// after it until SIGINT/SIGTERM.
        #[arg(long)]
        dashboard: bool,
        /// Pace the replay by the log's timestamps, X times faster than recorded
        /// (default: as fast as possible).
        #[arg(long, value_name = "X", value_parser = parse_speed)]
        speed: Option<f64>,
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Explain why a BindingPolicy binds (or not) a WEC and selects (or not) an object,
    /// test by test, on the state at the end of a watch log (--log) or else the current
    /// state of a live WDS and ITS (--wds-kubeconfig, --its-kubeconfig, ...; read only).
    /// Without --object and --cluster, explain the policy overall.
    Explain {
        /// Where the state comes from.
        #[command(flatten)]
        source: bindery::input::snapshot::StateArgs,
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
    },
    /// Dry-run a BindingPolicy (new or edited): print the Binding it would get (stdout)
    /// and its problems (stderr), on the state at the end of a watch log (--log) or else
    /// the current state of a live WDS and ITS (--wds-kubeconfig, --its-kubeconfig, ...).
    /// Nothing is written to any server or file.
    DryRun {
        /// Where the state comes from.
        #[command(flatten)]
        source: bindery::input::snapshot::StateArgs,
        /// The BindingPolicy (one object, YAML or JSON). Without `metadata.uid` it keeps
        /// the uid of the policy of that name, if there is one (`dry-run` otherwise).
        #[arg(long, value_name = "FILE.yaml")]
        policy_file: PathBuf,
        /// How to print the Binding: `json` (default) or `yaml`.
        #[arg(short = 'o', long, value_enum, default_value_t = bindery::cmd::dry_run::DryRunFormat::Json)]
        output: bindery::cmd::dry_run::DryRunFormat,
    },
}

/// mimalloc instead of glibc's malloc: differential-dataflow's batches make many small
/// allocations (BENCHMARKS.md, "Allocator": a churn replay 20-24% faster at 100k objects).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("BINDERY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`bindery crds | head -1`) ends the command quietly.
        Err(e) if bindery::cmd::stdout::is_closed(&e) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate {
            out,
            wecs,
            objects,
            policies,
            namespaces,
            churn,
            interval_ms,
            seed,
        } => {
            let spec = bindery::cmd::generate::GenerateSpec {
                wecs,
                objects,
                policies,
                namespaces: namespaces.unwrap_or((objects / 200).max(10)),
                churn,
                churn_interval_ms: interval_ms,
                seed,
            };
            let started = std::time::Instant::now();
            let summary = bindery::cmd::generate::generate_to(&spec, &out)?;
            tracing::info!(
                "wrote {}: {} events ({wecs} WECs, {} namespaces, {objects} objects, {policies} policies, {churn} churn events: {:?}) in {:.1} s",
                out.display(),
                summary.events,
                spec.namespaces,
                summary.churn,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Crds => {
            bindery::cmd::stdout::print(&bindery_api::crds_yaml())?;
            Ok(())
        }
        Command::Run {
            client,
            api_groups,
            record,
            coalesce_ms,
            concurrency,
            qps,
            burst,
            max_binding_bytes,
            shutdown_timeout,
            policy_events,
            engine,
            serve,
            leader,
        } => {
            let sink = SinkConfig {
                concurrency,
                qps,
                burst,
                max_binding_bytes,
                ..SinkConfig::default()
            };
            sink.validate()?;
            let opts = live::RunOptions {
                client,
                api_groups,
                record,
                coalesce: Duration::from_millis(coalesce_ms),
                sink,
                serve: serve.options(),
                shutdown_timeout: Duration::from_secs(shutdown_timeout),
                leader: leader.config()?,
                policy_events,
                topology: engine.topology()?,
            };
            if opts.topology.serve_if_peer()? {
                return Ok(());
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(bindery::runtime::shutdown::cancel_on_signal(
                    shutdown.clone(),
                ));
                live::run(opts, shutdown).await
            })
        }
        Command::Replay {
            log,
            dump_bindings,
            emit_deltas,
            window_ms,
            with_policy,
            dashboard,
            speed,
            engine,
            serve,
        } => {
            let opts = replay::ReplayOptions {
                log,
                dump_bindings,
                emit_deltas,
                window_ms,
                with_policy,
                speed,
                topology: engine.topology()?,
                metrics: None,
            };
            // Only process 0 reads the log and writes the output.
            if opts.topology.serve_if_peer()? {
                return Ok(());
            }
            if let (false, Some(flag)) = (dashboard, serve.given()) {
                anyhow::bail!("{flag} applies to the dashboard's server: add --dashboard");
            }
            let s = if dashboard {
                replay::replay_with_dashboard(&opts, serve.options())?
            } else {
                replay::replay(&opts)?
            };
            tracing::info!(
                "replayed {} events in {} epochs on {} worker{}{}: {} Bindings, {:.3} s, {:.0} events/s",
                s.events,
                s.epochs,
                s.workers,
                if s.workers == 1 { "" } else { "s" },
                if s.processes > 1 {
                    format!(" in {} processes", s.processes)
                } else {
                    String::new()
                },
                s.bindings,
                s.elapsed_secs,
                s.events as f64 / s.elapsed_secs.max(1e-9)
            );
            Ok(())
        }
        Command::Explain {
            source,
            policy,
            object,
            cluster,
            output,
        } => {
            let opts = explain::ExplainOptions {
                source: source.source()?,
                policy,
                object,
                cluster,
                output,
            };
            bindery::cmd::stdout::print(&explain::explain(&opts)?)?;
            Ok(())
        }
        Command::DryRun {
            source,
            policy_file,
            output,
        } => {
            let opts = bindery::cmd::dry_run::DryRunOptions {
                source: source.source()?,
                policy_file,
                output,
            };
            bindery::cmd::dry_run::dry_run(&opts)?;
            Ok(())
        }
    }
}

/// How `bindery run` and `bindery replay` run the engine.
#[derive(clap::Args, Debug)]
struct EngineArgs {
    /// Timely worker threads running the engine's dataflow in each process (1 to 64); the
    /// Bindings do not depend on how many.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = parse_workers, env = "BINDERY_WORKERS")]
    workers: usize,
    /// Timely's cluster mode: several processes run the dataflow.
    #[command(flatten)]
    cluster: bindery::input::topology::ClusterArgs,
}

impl EngineArgs {
    /// Where the engine's workers run (the cluster options checked).
    fn topology(&self) -> anyhow::Result<bindery::input::topology::Topology> {
        Ok(bindery::input::topology::Topology {
            workers: self.workers,
            processes: self.cluster.plan()?,
        })
    }
}

/// Where `bindery run` and `bindery replay --dashboard` serve metrics, the dashboard and
/// the health probes (`/readyz`, `/livez`).
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Listen address of the metrics, dashboard and explain server (loopback by default;
    /// port 0: any free port, logged at start).
    /// [default: 127.0.0.1:9477]
    #[arg(long, value_name = "ADDR", env = "BINDERY_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Export per-policy metric series (one series per policy: mind the cardinality).
    #[arg(long, env = "BINDERY_PER_POLICY_METRICS")]
    per_policy_metrics: bool,
}

impl ServeArgs {
    fn options(&self) -> bindery::observe::server::ServeOptions {
        let default = bindery::observe::server::DEFAULT_LISTEN
            .parse()
            .expect("a valid default");
        bindery::observe::server::ServeOptions {
            listen: self.listen.unwrap_or(default),
            per_policy_metrics: self.per_policy_metrics,
        }
    }

    /// The server options given without a server to apply them to (`replay` without
    /// `--dashboard`), for an error rather than silence.
    fn given(&self) -> Option<&'static str> {
        if self.listen.is_some() {
            Some("--listen")
        } else if self.per_policy_metrics {
            Some("--per-policy-metrics")
        } else {
            None
        }
    }
}

/// A number of timely workers: 1 to [`MAX_WORKERS`].
fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of workers (1 to {MAX_WORKERS}: timely threads in this process)"
        )),
    }
}

/// A replay speed: a finite number above 0.
fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a speed (a number above 0, e.g. 10 or 0.5)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every flag of `run` (the one a Deployment configures), and the global
    /// `--log-format`, can be set as `BINDERY_<FLAG>`.
    #[test]
    fn run_flags_have_bindery_environment_variables() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").expect("run");
        let mut checked = 0;
        for arg in run.get_arguments().chain(cli.get_arguments()) {
            let Some(long) = arg.get_long().filter(|l| !matches!(*l, "help" | "version")) else {
                continue;
            };
            let want = format!("BINDERY_{}", long.to_uppercase().replace('-', "_"));
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(want.as_str()), "--{long}");
            checked += 1;
        }
        assert!(checked >= 15, "{checked} flags");
    }
}
