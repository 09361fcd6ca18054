//! The command line: the clap tree of `bindery` (each subcommand's flags live in an
//! `Args` beside the command, in [`crate::cmd`]), log set-up, and dispatch.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::cmd::{crds, dry_run, explain, generate, history, replay, run};

/// Bindery: an incremental engine for KubeStellar Bindings.
#[derive(Parser, Debug)]
#[command(name = "bindery", version, about)]
pub struct Cli {
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
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`),
    /// `target`, and the spans it happened in.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print KubeStellar's five CRDs (BindingPolicy, Binding, CustomTransform,
    /// StatusCollector, CombinedStatus) as YAML; with --its, the test ITS's (ManagedCluster,
    /// WorkStatus).
    Crds(crds::Args),
    /// Watch a WDS and an ITS and keep their Bindings up to date (until SIGTERM/SIGINT).
    Run(run::Args),
    /// Write a seeded synthetic watch log (WECs, namespaces, workload objects over five
    /// resources, policies, then churn with two herds) for benchmarks and tests.
    Generate(generate::Args),
    /// Replay a recorded watch log through the engine (as fast as possible, or paced by
    /// its timestamps with --speed), optionally with the live dashboard.
    Replay(replay::Args),
    /// Explain why a BindingPolicy binds (or not) a WEC and selects (or not) an object,
    /// test by test, on the state at the end of a watch log (--log) or else the current
    /// state of a live WDS and ITS (--wds-kubeconfig, --its-kubeconfig, ...; read only).
    /// Without --object and --cluster, explain the policy overall.
    Explain(explain::Args),
    /// Dry-run a BindingPolicy (new or edited): print the Binding it would get (stdout)
    /// and its problems (stderr), on the state at the end of a watch log (--log) or else
    /// the current state of a live WDS and ITS (--wds-kubeconfig, --its-kubeconfig, ...).
    /// Nothing is written to any server or file.
    DryRun(dry_run::Args),
    /// Each change of the Bindings over a watch log, in time order, with its epoch and
    /// the events that caused it (their log lines and what they changed); filtered by
    /// --binding, --object, --cluster, --since and --until.
    History(history::Args),
}

impl Cli {
    /// Sets up logging on stderr: `BINDERY_LOG` filters (default `info`), in the
    /// `--log-format` chosen.
    pub fn init_logs(&self) {
        let filter =
            EnvFilter::try_from_env("BINDERY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => logs
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init(),
            LogFormat::Json => logs.json().init(),
        }
    }

    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Crds(args) => crds::execute(args),
            Command::Run(args) => run::execute(args),
            Command::Generate(args) => generate::execute(args),
            Command::Replay(args) => replay::execute(args),
            Command::Explain(args) => explain::execute(args),
            Command::DryRun(args) => dry_run::execute(args),
            Command::History(args) => history::execute(args),
        }
    }
}

/// True when `e` is a write to a closed stdout (`bindery crds | head -1`): the command
/// then ends quietly, with success.
pub fn stdout_closed(e: &anyhow::Error) -> bool {
    crate::cmd::stdout::is_closed(e)
}

/// `e` and its causes as one line, each cause said once: a layer whose message already
/// includes its cause's (thiserror's `"{path}: {source}"`) is not followed by it again.
pub fn error_report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

    #[test]
    fn error_reports_say_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = crate::files::FileError::Read {
            path: "/x".into(),
            source: io,
        };
        let e = anyhow::Error::from(e).context("reading the hosts file");
        assert_eq!(
            error_report(&e),
            "reading the hosts file: /x: entity not found"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_report(&e), "outer: inner");
    }

    /// clap's own consistency checks (conflicting names, bad defaults) on the whole tree.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
