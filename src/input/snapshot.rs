//! Reading the current state of a live WDS and ITS once (a snapshot), for the commands
//! that answer questions about it without keeping anything up to date: `bindery explain`
//! and `bindery dry-run` against live servers.
//!
//! [`read_until_synced`] starts the same watches as `bindery run` ([`LiveIngest`], with
//! `LiveConfig::new(wds, its)` and the `--api-groups` restriction), hands every watch
//! event to the caller, and stops (cancelling every watch) as soon as every watched
//! resource has synced: then the events handed over hold the complete state of both
//! spaces as listed. It only reads (list and watch); nothing is written to any server.
//!
//! ```text
//!  LiveIngest ──WatchEvent──► RESET/SYNCED ──► RelistTracker (which resources synced)
//!   (kube-rs)       │
//!                   └───────► on_event (the caller: an Oracle, a Pipeline, ...)
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bindery_ingest::live::{CancellationToken, LiveConfig, LiveIngest};
use bindery_ingest::{EventType, RelistTracker, WatchEvent};
use tokio::sync::mpsc;

use crate::observe::progress::Progress;
use crate::runtime::client_args::ClientArgs;

/// How long [`read_until_synced`] waits, by default, for every watched resource to sync.
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest `--sync-timeout`: a year (what an `Instant` can add is platform-defined).
pub const MAX_SYNC_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where a command reads the state it works on: the end of a watch log, or a snapshot
/// of live servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateSource {
    /// The state at the end of this watch log (`.jsonl` or `.jsonl.zst`).
    Log(PathBuf),
    /// The current state of a live WDS and ITS.
    Live(LiveSource),
}

impl StateSource {
    /// `the watch log <path>` or `the live WDS <where> and ITS <where>`, for messages.
    pub fn describe(&self) -> String {
        match self {
            StateSource::Log(log) => format!("the watch log {}", log.display()),
            StateSource::Live(live) => {
                let (wds, its) = live.client.describe();
                format!("the live WDS {wds} and ITS {its}")
            }
        }
    }
}

/// A live WDS and ITS to read a snapshot of (the same settings as `bindery run`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSource {
    /// Where the WDS (BindingPolicies and workload objects) and the ITS
    /// (ManagedClusters) clients come from.
    pub client: ClientArgs,
    /// Restricts the workload to these API groups (`""` or `core` for the core group);
    /// `None`: every group.
    pub api_groups: Option<Vec<String>>,
    /// How long to wait for every watched resource to sync before failing.
    pub sync_timeout: Duration,
}

impl LiveSource {
    /// A live source of the two kubeconfigs: every API group, `DEFAULT_SYNC_TIMEOUT`.
    pub fn new(wds_kubeconfig: impl Into<PathBuf>, its_kubeconfig: impl Into<PathBuf>) -> Self {
        LiveSource::of(ClientArgs::files(wds_kubeconfig, its_kubeconfig))
    }

    /// A live source of `client`: every API group, `DEFAULT_SYNC_TIMEOUT`.
    pub fn of(client: ClientArgs) -> Self {
        LiveSource {
            client,
            api_groups: None,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
        }
    }

    /// The live ingest configuration `bindery run` would use: clients for both
    /// spaces, the API-group restriction. Fails naming the space and the kubeconfig
    /// (or context) that cannot be read or used.
    pub async fn live_config(&self) -> Result<LiveConfig> {
        let clients = self.client.clients().await?;
        let mut config = LiveConfig::new(clients.wds, clients.its);
        config.api_groups = self.api_groups.clone();
        Ok(config)
    }

    /// `WDS <where>, ITS <where>`, for messages.
    pub fn describe(&self) -> String {
        let (wds, its) = self.client.describe();
        format!("WDS {wds}, ITS {its}")
    }
}

/// Command-line arguments that choose a [`StateSource`]: `--log LOG`, or else the
/// live WDS and ITS of the client flags ([`ClientArgs`]: `--wds-kubeconfig F
/// --its-kubeconfig F`, contexts, `KUBECONFIG`, in-cluster) with `[--api-groups G,...]
/// [--sync-timeout S]`.
#[derive(Clone, Debug, clap::Args)]
pub struct StateArgs {
    /// A watch log: work on the state at its end (instead of live servers).
    #[arg(
        long,
        value_name = "LOG",
        conflicts_with_all = ["wds_kubeconfig", "wds_context", "its_kubeconfig", "its_context", "api_groups"]
    )]
    pub log: Option<PathBuf>,
    /// Without --log: the live WDS and ITS to work on (read only, nothing is written).
    #[command(flatten)]
    pub client: ClientArgs,
    /// Without --log: only these API groups are workload (comma-separated; `core` for
    /// the core group), as for `bindery run`.
    #[arg(
        long,
        value_name = "G,...",
        value_delimiter = ',',
        env = "BINDERY_API_GROUPS"
    )]
    pub api_groups: Option<Vec<String>>,
    /// Without --log: fail if the watches have not all synced after this many seconds
    /// (at most a year).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = DEFAULT_SYNC_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(..=MAX_SYNC_TIMEOUT.as_secs()),
        env = "BINDERY_SYNC_TIMEOUT"
    )]
    pub sync_timeout: u64,
}

impl StateArgs {
    /// The source the arguments name: the log, or else the live servers.
    pub fn source(self) -> Result<StateSource> {
        match self.log {
            Some(_) if self.names_live_servers() => {
                bail!(
                    "--log conflicts with the live servers' flags (--wds-*, --its-*, --api-groups)"
                )
            }
            Some(log) => Ok(StateSource::Log(log)),
            None => Ok(StateSource::Live(LiveSource {
                client: self.client,
                api_groups: self.api_groups,
                sync_timeout: Duration::from_secs(self.sync_timeout),
            })),
        }
    }

    /// A flag of the live servers is given (the in-cluster directory is not one: it is
    /// a fallback, and may be set in the environment).
    fn names_live_servers(&self) -> bool {
        let client = ClientArgs {
            serviceaccount_dir: None,
            ..self.client.clone()
        };
        client != ClientArgs::default() || self.api_groups.is_some()
    }
}

/// What reading a snapshot took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Watch events handed over (`RESET` and `SYNCED` markers included).
    pub events: u64,
    /// Resources watched (all of them synced).
    pub resources: usize,
    /// Time from the start to the last resource synced.
    pub elapsed: Duration,
}

/// Reads a snapshot of `source`: builds its clients ([`LiveSource::live_config`]) and
/// runs `read_config_until_synced` with its timeout. Errors name the kubeconfigs.
pub async fn read_until_synced(
    source: &LiveSource,
    on_event: impl FnMut(WatchEvent) -> Result<()>,
) -> Result<SnapshotSummary> {
    let config = source.live_config().await?;
    read_config_until_synced(config, source.sync_timeout, on_event)
        .await
        .with_context(|| format!("reading the live state ({})", source.describe()))
}

/// Starts a [`LiveIngest`] of `config` with its own cancellation token, hands every
/// event it sends to `on_event` (in order, `RESET`/`SYNCED` markers included) until
/// every watched resource has synced, then cancels the ingest, waits for its watches to
/// stop and returns. Events still queued at that point are dropped: the snapshot is
/// the state when the last resource synced.
///
/// Which resources have synced is tracked by a [`RelistTracker`] fed the `RESET` and
/// `SYNCED` markers (the only events that change it); the live ingest sends a synthetic
/// `RESET` for every resource before any watcher starts, so the set it waits for is
/// complete before the first `SYNCED`, and nothing counts as synced before the first
/// event. A resource the ingest adds later (a CRD created meanwhile) is waited for too.
///
/// Fails with `on_event`'s first error; if the ingest stops first (its initial API
/// discovery failed); or after `timeout`, naming the resources that had not synced
/// (a watch that keeps failing, e.g. for lack of permission, never syncs). Shows
/// progress ([`Progress::spinner`]: events read, resources synced of watched).
///
/// Cost: the tracker keeps one entry per watched resource, no objects; what the events
/// cost beyond that is up to `on_event`.
pub async fn read_config_until_synced(
    config: LiveConfig,
    timeout: Duration,
    mut on_event: impl FnMut(WatchEvent) -> Result<()>,
) -> Result<SnapshotSummary> {
    let started = Instant::now();
    // Clamped: a timeout past what an `Instant` can hold would panic on the addition.
    let deadline = tokio::time::Instant::now() + timeout.min(MAX_SYNC_TIMEOUT);
    let (tx, mut rx) = mpsc::channel::<WatchEvent>(16 * 1024);
    let shutdown = CancellationToken::new();
    // Whatever happens below, the watches stop.
    let _stop_on_return = shutdown.clone().drop_guard();
    let mut ingest = tokio::spawn(LiveIngest::new(config).run(tx, shutdown.clone()));
    let mut tracker = RelistTracker::new();
    let mut progress = Progress::spinner("reading the WDS and ITS");
    let mut events = 0u64;
    let outcome: Result<()> = loop {
        let event = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => {
                // The ingest stopped on its own: only a failed initial discovery does.
                break match (&mut ingest).await {
                    Ok(Err(e)) => Err(anyhow!(e)),
                    Ok(Ok(())) => Err(anyhow!(
                        "the watches stopped before every resource synced (still listing: {})",
                        listing(&tracker)
                    )),
                    Err(e) => Err(anyhow!("the watch task failed: {e}")),
                };
            }
            Err(_elapsed) if events == 0 => {
                break Err(anyhow!(
                    "no watch event within {} s: API discovery of the WDS has not finished \
                     (is the server reachable?)",
                    timeout.as_secs_f64()
                ));
            }
            Err(_elapsed) => {
                break Err(anyhow!(
                    "not every watched resource synced within {} s ({} of {} did); still listing: {} \
                     (see the warnings above for why a watch fails, e.g. missing permissions)",
                    timeout.as_secs_f64(),
                    tracker.synced_count(),
                    tracker.resource_count(),
                    listing(&tracker)
                ));
            }
        };
        events += 1;
        let marker = matches!(event.event_type, EventType::Reset | EventType::Synced);
        if marker {
            // Markers carry no object: the tracker cannot reject them.
            let _ = tracker.apply(&event);
        }
        if let Err(e) = on_event(event) {
            break Err(e);
        }
        if marker && tracker.all_synced() {
            break Ok(());
        }
        progress.status(|| {
            format!(
                "{events} events, {}/{} resources synced",
                tracker.synced_count(),
                tracker.resource_count()
            )
        });
    };
    progress.finish();
    let elapsed = started.elapsed();
    shutdown.cancel();
    drop(rx);
    if !ingest.is_finished() {
        match ingest.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "stopping the watches"),
            Err(e) if e.is_panic() => tracing::warn!(error = %e, "stopping the watches"),
            _ => {}
        }
    }
    outcome?;
    let summary = SnapshotSummary {
        events,
        resources: tracker.resource_count(),
        elapsed,
    };
    tracing::info!(
        events = summary.events,
        resources = summary.resources,
        seconds = format_args!("{:.3}", summary.elapsed.as_secs_f64()),
        "read the live state"
    );
    Ok(summary)
}

/// The unsynced resources, at most 20, for messages.
fn listing(tracker: &RelistTracker) -> String {
    let unsynced = tracker.unsynced();
    if unsynced.is_empty() {
        return "nothing".to_string();
    }
    let mut shown: Vec<String> = unsynced.iter().take(20).map(ToString::to_string).collect();
    if unsynced.len() > 20 {
        shown.push(format!("... ({} in all)", unsynced.len()));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        state: StateArgs,
    }

    fn parse(args: &[&str]) -> Result<StateSource> {
        let cli = Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))?;
        cli.state.source()
    }

    #[test]
    fn state_args_choose_a_log_or_a_live_source() {
        assert_eq!(
            parse(&["--log", "a.jsonl"]).unwrap(),
            StateSource::Log("a.jsonl".into())
        );
        assert_eq!(
            parse(&[
                "--wds-kubeconfig",
                "w",
                "--its-kubeconfig",
                "i",
                "--api-groups",
                "apps,core",
                "--sync-timeout",
                "7"
            ])
            .unwrap(),
            StateSource::Live(LiveSource {
                api_groups: Some(vec!["apps".into(), "core".into()]),
                sync_timeout: Duration::from_secs(7),
                ..LiveSource::new("w", "i")
            })
        );
        assert_eq!(
            parse(&["--wds-kubeconfig", "w", "--its-kubeconfig", "i"]).unwrap(),
            StateSource::Live(LiveSource::new("w", "i"))
        );
        // Nothing given: the live servers of KUBECONFIG (or in-cluster).
        assert_eq!(
            parse(&[]).unwrap(),
            StateSource::Live(LiveSource::of(ClientArgs::default()))
        );
        assert_eq!(
            parse(&["--its-kubeconfig", "i"]).unwrap(),
            StateSource::Live(LiveSource::of(ClientArgs {
                its_kubeconfig: Some("i".into()),
                ..ClientArgs::default()
            }))
        );
        for bad in [
            &["--log", "a", "--wds-kubeconfig", "w"][..],
            &["--log", "a", "--its-context", "i"],
            &["--log", "a", "--api-groups", "apps"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn sources_describe_themselves_for_messages() {
        assert_eq!(
            StateSource::Log("a.jsonl".into()).describe(),
            "the watch log a.jsonl"
        );
        assert_eq!(
            StateSource::Live(LiveSource::new("w.kc", "i.kc")).describe(),
            "the live WDS w.kc and ITS i.kc"
        );
    }
}
