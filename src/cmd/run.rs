//! `bindery run`: the live engine. Watches of the WDS and ITS feed the same pipeline as
//! replay, on a dedicated engine thread; changed Bindings are rendered once per
//! coalescing window and handed to the API-server sink, with their policies' statuses.
//!
//! ```text
//!  LiveIngest (tokio tasks) ──WatchEvent──► engine thread ──DesiredBinding/Status──► BindingSink (tokio)
//!                                           (Pipeline, recorder)
//! ```

mod contents;
mod engine_loop;
pub mod first_publish;

use engine_loop::EngineLoop;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bindery_ingest::live::{CancellationToken, LiveConfig, LiveIngest};
use bindery_ingest::{LogWriter, WatchEvent};
use bindery_sink::{BindingSink, SinkConfig, SinkHandle};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::history::journal::{Journal, JournalLimit};
use crate::input::topology::TopologyArgs;
use crate::observe::dashboard::{Dashboard, Mode};
use crate::observe::metrics::{Metrics, MetricsOptions};
use crate::observe::server::{self, Question, ServeArgs, ServeOptions, ServerState};
use crate::runtime::client_args::ClientArgs;
use crate::runtime::crds::ESTABLISH_TIMEOUT;
use crate::runtime::health::{Health, LIVENESS_THRESHOLD, StoppedOnDrop};
use crate::runtime::leader::LeaderArgs;
use crate::runtime::leader::{Elector, LeaderConfig, default_identity};
use crate::runtime::policy_events::{EventSender, RateLimit};
use kube::runtime::events::Reporter;

/// The longest `--coalesce-ms`: a day (a window past what an `Instant` can add would
/// panic in the engine loop).
const MAX_COALESCE_MS: u64 = 24 * 3600 * 1000;

/// The longest `--history-max-age`: a year.
const MAX_HISTORY_AGE_SECONDS: u64 = 366 * 24 * 3600;

/// The flags of `bindery run`.
#[derive(clap::Args, Debug)]
pub struct Args {
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
    /// Changes to one Binding within this window are written once (at most a day); an
    /// epoch stays open for half of it after its first event.
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
    /// Install KubeStellar's five CRDs in the WDS at start (create or update, then wait
    /// until established), as its controller-manager does; needs get and patch on
    /// `customresourcedefinitions` (`--install-crds`, `--install-crds=true|false`).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL",
          env = "BINDERY_INSTALL_CRDS")]
    install_crds: bool,
    /// Publish Kubernetes Events on BindingPolicies for new problems, Bindings that
    /// cannot be written, and problems resolved (rate-limited; needs `create` and
    /// `patch` on `events.k8s.io` events in the `default` namespace).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL", env = "BINDERY_POLICY_EVENTS")]
    policy_events: bool,
    /// Publish a Kubernetes Event on a BindingPolicy each time a WEC becomes or stops
    /// being a destination of its Binding, naming the cause (from the history journal;
    /// rate-limited as the other Events) (`--destination-events`,
    /// `--destination-events=true|false`).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL",
          env = "BINDERY_DESTINATION_EVENTS")]
    destination_events: bool,
    /// Status return: watch this WDS's WorkStatuses in the ITS (once the ITS serves them;
    /// needs --wds-name, and get, list and watch of `control.kubestellar.io`
    /// `workstatuses` in the ITS). `--status-return=false` turns it off.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL",
          env = "BINDERY_STATUS_RETURN")]
    status_return: bool,
    /// The name of this WDS, as KubeStellar's transport labels what came from it
    /// (`transport.kubestellar.io/originWdsName`; KubeStellar's `--wds-name`, the WDS's
    /// KubeFlex control plane). Without it status return is off.
    #[arg(long, value_name = "NAME", env = "BINDERY_WDS_NAME")]
    wds_name: Option<String>,
    /// How often the ITS is checked for the WorkStatus CRD (a hidden flag for tests).
    #[arg(long, default_value_t = 15_000, value_name = "MS", hide = true,
          value_parser = clap::value_parser!(u64).range(1..=MAX_COALESCE_MS),
          env = "BINDERY_WORK_STATUS_POLL_MS")]
    work_status_poll_ms: u64,
    /// Keep at most this many recent Binding changes, with their causes, for
    /// `GET /history` (0: none kept, and no attribution work).
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "COUNT",
        env = "BINDERY_HISTORY_LIMIT"
    )]
    history_limit: usize,
    /// Keep no change older than this for `GET /history` (older ones are in the
    /// recording, `--record`).
    #[arg(long, default_value_t = 24 * 3600, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=MAX_HISTORY_AGE_SECONDS),
          env = "BINDERY_HISTORY_MAX_AGE")]
    history_max_age: u64,
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    leader: LeaderArgs,
}

impl Args {
    /// The options these flags give, checked.
    pub fn options(self) -> Result<RunOptions> {
        let sink = SinkConfig {
            concurrency: self.concurrency,
            qps: self.qps,
            burst: self.burst,
            max_binding_bytes: self.max_binding_bytes,
            combined_statuses: self.status_return && self.wds_name.is_some(),
            ..SinkConfig::default()
        };
        sink.validate()?;
        if let Some(name) = &self.wds_name {
            check_wds_name(name)?;
        }
        if self.destination_events && self.history_limit == 0 {
            bail!(
                "--destination-events names each change's cause from the history journal: it needs --history-limit above 0"
            );
        }
        Ok(RunOptions {
            client: self.client,
            api_groups: self.api_groups,
            record: self.record,
            coalesce: Duration::from_millis(self.coalesce_ms),
            sink,
            serve: self.serve.options(),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            leader: self.leader.config()?,
            policy_events: self.policy_events,
            destination_events: self.destination_events,
            install_crds: self.install_crds,
            status_return: self.status_return,
            wds_name: self.wds_name,
            work_status_poll: Duration::from_millis(self.work_status_poll_ms),
            topology: self.topology.topology()?,
            history: (self.history_limit > 0).then(|| JournalLimit {
                count: self.history_limit,
                max_age: Duration::from_secs(self.history_max_age),
            }),
        })
    }
}

/// Checks that `name` can be the value of the `transport.kubestellar.io/originWdsName`
/// label (a non-empty label value: at most 63 characters, alphanumerics, `-`, `_` and
/// `.`, starting and ending with an alphanumeric).
fn check_wds_name(name: &str) -> Result<()> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = name.len() <= 63
        && alnum(name.chars().next())
        && alnum(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(anyhow!(
            "--wds-name {name:?}: not a label value (at most 63 characters: letters, digits, \
             '-', '_' and '.', starting and ending with a letter or digit)"
        ))
    }
}

/// The WDS whose WorkStatuses are watched (`LiveConfig::work_statuses`): `--wds-name`
/// when status return is on. On without a name, it is off, with a warning: KubeStellar
/// finds the name as its WDS's KubeFlex ControlPlane in the hosting cluster, which
/// Bindery does not reach.
fn work_status_watch(status_return: bool, wds_name: Option<&str>) -> Option<String> {
    match (status_return, wds_name) {
        (false, _) => {
            tracing::info!(flag = "--status-return", "status return is off");
            None
        }
        (true, None) => {
            tracing::warn!(
                flag = "--wds-name",
                "status return is off: no WDS name given (the name KubeStellar's transport labels WorkStatuses with)"
            );
            None
        }
        (true, Some(name)) => {
            tracing::info!(
                wds_name = name,
                "status return: WorkStatuses of this WDS are watched in the ITS"
            );
            Some(name.to_owned())
        }
    }
}

/// `bindery run`: a process of a timely cluster other than 0 serves process 0's
/// dataflow; process 0 (or the only process) runs until SIGTERM/SIGINT.
pub fn execute(args: Args) -> Result<()> {
    let opts = args.options()?;
    if opts.topology.serve_if_peer()? {
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        crate::runtime::shutdown::cancel_on_signal(shutdown.clone());
        run(opts, shutdown).await
    })
}

/// Options of `bindery run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the WDS and ITS clients come from.
    pub client: ClientArgs,
    /// Restrict workload to these API groups (`""` or `core` for the core group).
    pub api_groups: Option<Vec<String>>,
    /// Record every watch event to this watch log.
    pub record: Option<PathBuf>,
    /// Changes to one Binding within this window are written once.
    pub coalesce: Duration,
    /// The sink's concurrency, rate limits and retries.
    pub sink: SinkConfig,
    /// Where metrics, the dashboard and explain are served.
    pub serve: ServeOptions,
    /// At shutdown, writes still queued after this long are given up.
    pub shutdown_timeout: Duration,
    /// Elect a leader with this Lease: only the leader writes (`None`: always write).
    pub leader: Option<LeaderConfig>,
    /// Publish Kubernetes Events on BindingPolicies (while leading).
    pub policy_events: bool,
    /// Publish an Event on a BindingPolicy for each destination change (while leading).
    pub destination_events: bool,
    /// Install KubeStellar's CRDs in the WDS at start.
    pub install_crds: bool,
    /// Status return: watch the WDS's WorkStatuses in the ITS (with `wds_name` only).
    pub status_return: bool,
    /// The WDS's name (checked as a label value).
    pub wds_name: Option<String>,
    /// How often the ITS is checked for the WorkStatus CRD.
    pub work_status_poll: Duration,
    /// Where the engine's timely workers run: threads here, and other processes of a
    /// cluster, which this one (process 0) connects to first (the Bindings do not
    /// depend on how many).
    pub topology: crate::input::topology::Topology,
    /// What the history journal keeps (`None`: no journal).
    pub history: Option<JournalLimit>,
}

/// Runs until `shutdown` is cancelled; then in-flight writes finish and the recording
/// is flushed.
pub async fn run(opts: RunOptions, shutdown: CancellationToken) -> Result<()> {
    let clients = opts.client.clients().await?;
    if opts.install_crds {
        let crds = bindery_api::crds();
        let installing =
            crate::runtime::crds::install(&clients.wds_writer, &crds, ESTABLISH_TIMEOUT);
        tokio::select! {
            installed = installing => installed?,
            _ = shutdown.cancelled() => {
                tracing::info!("stopped while installing the CRDs");
                return Ok(());
            }
        }
    }
    let recorder = match &opts.record {
        Some(path) => {
            let header = json!({ "recordedBy": format!("bindery {}", env!("CARGO_PKG_VERSION")), "recordedAt": now_rfc3339() });
            let serde_json::Value::Object(extra) = header else {
                unreachable!()
            };
            Some(
                LogWriter::create(path, extra)
                    .with_context(|| format!("creating {}", path.display()))?,
            )
        }
        None => None,
    };
    let metrics = Arc::new(Metrics::new(MetricsOptions {
        per_policy: opts.serve.per_policy_metrics,
    }));
    let (listener, addr) = server::bind(opts.serve.listen).await?;
    // With an election the sink writes only while this process holds the Lease.
    let elector = opts.leader.clone().map(|config| {
        tracing::info!(
            identity = %config.identity,
            lease = format!("{}/{}", config.lease_namespace, config.lease_name),
            "leader election: competing for the Lease (writing nothing until it is taken)"
        );
        Elector::start(clients.wds_writer.clone(), config)
    });
    let leader = elector
        .as_ref()
        .map_or_else(|| watch::channel(true).1, Elector::leading);
    tokio::spawn(follow_leader_metric(leader.clone(), metrics.clone()));
    // Listing the stored Bindings waits for the WDS: a signal meanwhile stops it.
    let starting = BindingSink::start_elected(
        clients.wds_writer.clone(),
        opts.sink.clone(),
        metrics.clone(),
        leader,
    );
    let (sink, sink_events, sink_task) = tokio::select! {
        started = starting => started.context("starting the Binding sink")?,
        _ = shutdown.cancelled() => {
            tracing::info!("stopped before the stored Bindings could be listed");
            if let Some(elector) = elector {
                elector.release().await;
            }
            return Ok(());
        }
    };
    metrics.watch_sink(sink.clone());
    let (events, publishing) = (opts.policy_events || opts.destination_events)
        .then(|| {
            let reporter = Reporter {
                controller: "bindery".into(),
                instance: Some(
                    opts.leader
                        .as_ref()
                        .map_or_else(default_identity, |l| l.identity.clone()),
                ),
            };
            EventSender::start(
                clients.wds_writer.clone(),
                reporter,
                RateLimit::default(),
                metrics.clone(),
            )
        })
        .unzip();
    let policy_events = events.clone().filter(|_| opts.policy_events);
    let destination_events = events.filter(|_| opts.destination_events);
    let (questions_tx, questions_rx) = mpsc::channel::<Question>(16);
    let health = Arc::new(Health::new(LIVENESS_THRESHOLD));
    let state = ServerState {
        metrics: metrics.clone(),
        dashboard: Dashboard::new(metrics.clone(), Mode::Run),
        engine: Some(questions_tx),
        health: health.clone(),
        shutdown: shutdown.clone(),
    };
    let serving = tokio::spawn(server::serve(listener, state));
    tracing::info!(
        metrics = %format_args!("{}/metrics", server::url(addr)),
        dashboard = %format_args!("{}/dashboard", server::url(addr)),
        explain = %format_args!("{}/explain?policy=NAME", server::url(addr)),
        history = %format_args!("{}/history", server::url(addr)),
        "serving"
    );

    let (tx, rx) = mpsc::channel::<WatchEvent>(16 * 1024);
    let wds = clients.wds.clone();
    let mut config = LiveConfig::new(clients.wds, clients.its);
    config.api_groups = opts.api_groups.clone();
    config.work_statuses = work_status_watch(opts.status_return, opts.wds_name.as_deref());
    config.work_status_poll = opts.work_status_poll;
    let status_return = config.work_statuses.is_some();
    // Objects' content for the StatusCollectors that read `obj`, into the same channel.
    let fetcher = status_return.then(|| contents::spawn(wds, tx.clone(), shutdown.clone()));
    config.status_collectors = status_return;
    let ingest = tokio::spawn(LiveIngest::new(config).run(tx, shutdown.clone()));

    let runtime = tokio::runtime::Handle::current();
    let (engine_sink, coalesce, topology) = (sink.clone(), opts.coalesce, opts.topology.clone());
    let journal = opts.history.map(|limit| {
        let recording = opts.record.as_ref().map(|p| p.display().to_string());
        (limit, recording)
    });
    let engine_done = shutdown.clone();
    // The engine (a timely worker) is not Send: it is built on its own thread. However it
    // ends, the rest shuts down too.
    let engine = std::thread::Builder::new()
        .name("bindery-engine".into())
        .spawn(move || {
            // Every log of the engine thread (epochs, Binding hand-overs) is in its span.
            let _span = tracing::info_span!("engine", workers = topology.workers).entered();
            let _cancel = engine_done.drop_guard();
            let _stopped = StoppedOnDrop(health.clone());
            let pipeline = topology.pipeline()?;
            EngineLoop::new(engine_sink, recorder, coalesce, pipeline, metrics, health)
                .with_policy_events(policy_events)
                .with_destination_events(destination_events)
                .with_status_return(status_return)
                .with_content_fetcher(fetcher)
                .with_journal(journal.map(|(limit, recording)| Journal::new(limit, recording)))
                .run(rx, questions_rx, sink_events, runtime)
        })
        .context("starting the engine thread")?;

    // The ingest ends on shutdown (or on a fatal discovery error), which closes the
    // channel; the engine thread then publishes what is pending and returns.
    let ingest_result = ingest.await.map_err(|e| anyhow!("ingest task: {e}"));
    shutdown.cancel();
    let engine_result = tokio::task::spawn_blocking(move || engine.join())
        .await
        .map_err(|e| anyhow!("joining the engine thread: {e}"))?
        .map_err(|_| anyhow!("the engine thread panicked"))
        .and_then(|r| r);
    // The engine thread is gone, and with it the Events' sender: the publisher sends
    // what is queued and ends, while the sink finishes its writes.
    let events_drained = async {
        if let Some(publishing) = publishing {
            drain_events(publishing, EVENTS_DRAIN).await;
        }
    };
    tokio::join!(
        drain(&sink, sink_task, opts.shutdown_timeout),
        events_drained
    );
    // Nothing is written any more: another replica may take over at once.
    if let Some(elector) = elector {
        elector.release().await;
    }
    serving.await.map_err(|e| anyhow!("server task: {e}"))??;
    ingest_result?.context("watching")?;
    engine_result
}

/// How long the Events still queued at shutdown may take to be published.
const EVENTS_DRAIN: Duration = Duration::from_secs(5);

/// Waits for the Events publisher to send what is queued and end, for at most `timeout`.
async fn drain_events(publishing: tokio::task::JoinHandle<()>, timeout: Duration) {
    match tokio::time::timeout(timeout, publishing).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the Events publisher failed"),
        Err(_) => tracing::warn!(
            timeout = ?timeout,
            "shutdown: giving up on the Events on BindingPolicies not published yet"
        ),
    }
}

/// Keeps `bindery_leader` (and its transitions) as `leader` says.
async fn follow_leader_metric(mut leader: watch::Receiver<bool>, metrics: Arc<Metrics>) {
    loop {
        metrics.leader(*leader.borrow_and_update());
        if leader.changed().await.is_err() {
            return;
        }
    }
}

/// Lets the sink finish what is queued, for at most `timeout`.
async fn drain(sink: &SinkHandle, task: tokio::task::JoinHandle<()>, timeout: Duration) {
    if tokio::time::timeout(timeout, sink.shutdown())
        .await
        .is_err()
    {
        let stats = sink.stats();
        tracing::warn!(
            queued = stats.pending,
            in_flight = stats.in_flight,
            timeout = ?timeout,
            "shutdown: giving up on the writes not done (--shutdown-timeout)"
        );
        task.abort();
        return;
    }
    if let Err(e) = task.await {
        tracing::error!(error = %e, "the sink task failed");
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        run: Args,
    }

    fn parse(args: &[&str]) -> Result<RunOptions> {
        let argv = std::iter::once("run").chain(args.iter().copied());
        Cli::try_parse_from(argv)?.run.options()
    }

    #[test]
    fn status_return_is_on_by_default_and_needs_a_wds_name() {
        let opts = parse(&[]).unwrap();
        assert!(opts.status_return);
        assert_eq!(opts.wds_name, None);
        assert_eq!(
            opts.work_status_poll,
            bindery_ingest::live::DEFAULT_WORK_STATUS_POLL
        );
        assert_eq!(work_status_watch(opts.status_return, None), None);

        let opts = parse(&["--wds-name", "wds1"]).unwrap();
        assert_eq!(opts.wds_name.as_deref(), Some("wds1"));
        assert_eq!(
            work_status_watch(opts.status_return, opts.wds_name.as_deref()).as_deref(),
            Some("wds1")
        );
        for off in [
            &["--status-return=false", "--wds-name", "wds1"][..],
            &["--wds-name=wds1", "--status-return=false"][..],
        ] {
            let opts = parse(off).unwrap();
            assert!(!opts.status_return, "{off:?}");
            assert_eq!(
                work_status_watch(opts.status_return, opts.wds_name.as_deref()),
                None
            );
        }
        assert!(parse(&["--status-return"]).unwrap().status_return);
        assert!(parse(&["--status-return=true"]).unwrap().status_return);
        assert!(parse(&["--status-return=maybe"]).is_err());
    }

    #[test]
    fn the_history_journal_is_bounded_or_off_and_destination_events_need_it() {
        let opts = parse(&[]).unwrap();
        let limit = JournalLimit {
            count: 10_000,
            max_age: Duration::from_secs(24 * 3600),
        };
        assert_eq!(opts.history, Some(limit));
        assert!(!opts.destination_events);
        let opts = parse(&["--history-limit", "5", "--history-max-age", "60"]).unwrap();
        let limit = JournalLimit {
            count: 5,
            max_age: Duration::from_secs(60),
        };
        assert_eq!(opts.history, Some(limit));
        assert_eq!(parse(&["--history-limit", "0"]).unwrap().history, None);
        assert!(parse(&["--history-max-age", "0"]).is_err());
        assert!(parse(&["--destination-events"]).unwrap().destination_events);
        let e = parse(&["--destination-events", "--history-limit", "0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs --history-limit above 0"), "{e}");
    }

    #[test]
    fn a_wds_name_must_be_a_label_value() {
        for good in ["wds1", "a", "my_wds.2", &"w".repeat(63)] {
            assert!(parse(&[&format!("--wds-name={good}")]).is_ok(), "{good}");
        }
        for bad in ["", "-wds", "wds-", "wds,x=y", "wds name", &"w".repeat(64)] {
            let e = parse(&[&format!("--wds-name={bad}")])
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a label value"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_origin_label_is_kubestellars() {
        assert_eq!(
            bindery_ingest::live::ORIGIN_WDS_LABEL,
            bindery_api::work_status::ORIGIN_WDS_LABEL
        );
    }

    /// The Events publisher is awaited at shutdown: to its end when it ends in time,
    /// at most the timeout when it does not.
    #[tokio::test(start_paused = true)]
    async fn the_events_publisher_is_awaited_within_a_bound() {
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        let published = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = published.clone();
        let publisher = tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                tokio::time::sleep(Duration::from_millis(100)).await;
                seen.lock().unwrap().push(n);
            }
        });
        for n in 0..3 {
            tx.send(n).await.unwrap();
        }
        drop(tx);
        let started = tokio::time::Instant::now();
        drain_events(publisher, EVENTS_DRAIN).await;
        assert_eq!(*published.lock().unwrap(), [0, 1, 2], "every queued Event");
        assert_eq!(started.elapsed(), Duration::from_millis(300));

        let stuck = tokio::spawn(std::future::pending::<()>());
        let started = tokio::time::Instant::now();
        drain_events(stuck, EVENTS_DRAIN).await;
        assert_eq!(started.elapsed(), EVENTS_DRAIN);
    }
}
