//! `bindery run`: the live engine. Watches of the WDS and ITS feed the same pipeline as
//! replay, on a dedicated engine thread; changed Bindings are rendered once per
//! coalescing window and handed to the API-server sink, with their policies' statuses.
//!
//! ```text
//!  LiveIngest (tokio tasks) ──WatchEvent──► engine thread ──DesiredBinding/Status──► BindingSink (tokio)
//!                                           (Pipeline, recorder)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use bindery_ingest::live::{CancellationToken, LiveConfig, LiveIngest};
use bindery_ingest::{LogWriter, WatchEvent};
use bindery_sink::{
    BindingSink, DesiredBinding, DesiredStatus, Drift, DriftEvents, SinkConfig, SinkHandle,
};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client_args::{ClientArgs, Space};
use crate::dashboard::{Dashboard, Mode};
use crate::health::{Health, LIVENESS_THRESHOLD, StoppedOnDrop};
use crate::leader::{Elector, LeaderConfig, default_identity};
use crate::metrics::{Metrics, MetricsOptions};
use crate::pipeline::{Pipeline, SYNC_REPORT_AFTER, SyncReporter};
use crate::policy_events::{EventSender, ProblemTracker, RateLimit};
use crate::progress::Progress;
use crate::server::{self, ExplainFailure, ExplainRequest, ServeOptions, ServerState};
use kube::runtime::events::Reporter;

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
    /// Timely workers running the engine's dataflow (at least one; the Bindings do not
    /// depend on how many).
    pub workers: usize,
}

/// A kube client for the current-context of `kubeconfig` (as kube and kubectl choose;
/// [`ClientArgs`] picks another context).
pub async fn client(kubeconfig: &Path) -> Result<kube::Client> {
    let resolved = ClientArgs::files(kubeconfig, kubeconfig)
        .wds_config()
        .await?;
    Ok(resolved.client(Space::Wds)?)
}

/// Runs until `shutdown` is cancelled; then in-flight writes finish and the recording
/// is flushed.
pub async fn run(opts: RunOptions, shutdown: CancellationToken) -> Result<()> {
    let clients = opts.client.clients().await?;
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
    let (sink, drift, sink_task) = tokio::select! {
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
    let policy_events = opts.policy_events.then(|| {
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
        .0
    });
    let (explain_tx, explain_rx) = mpsc::channel::<ExplainRequest>(16);
    let health = Arc::new(Health::new(LIVENESS_THRESHOLD));
    let state = ServerState {
        metrics: metrics.clone(),
        dashboard: Dashboard::new(metrics.clone(), Mode::Run),
        explain: Some(explain_tx),
        health: health.clone(),
        shutdown: shutdown.clone(),
    };
    let serving = tokio::spawn(server::serve(listener, state));
    tracing::info!(
        "metrics: {0}/metrics, dashboard: {0}/dashboard, explain: {0}/explain?policy=NAME",
        server::url(addr)
    );

    let (tx, rx) = mpsc::channel::<WatchEvent>(16 * 1024);
    let mut config = LiveConfig::new(clients.wds, clients.its);
    config.api_groups = opts.api_groups.clone();
    let ingest = tokio::spawn(LiveIngest::new(config).run(tx, shutdown.clone()));

    let runtime = tokio::runtime::Handle::current();
    let (engine_sink, coalesce, workers) = (sink.clone(), opts.coalesce, opts.workers);
    let engine_done = shutdown.clone();
    // The engine (a timely worker) is not Send: it is built on its own thread. However it
    // ends, the rest shuts down too.
    let engine = std::thread::Builder::new()
        .name("bindery-engine".into())
        .spawn(move || {
            let _cancel = engine_done.drop_guard();
            let _stopped = StoppedOnDrop(health.clone());
            EngineLoop::new(engine_sink, recorder, coalesce, workers, metrics, health)
                .with_policy_events(policy_events)
                .run(rx, explain_rx, drift, runtime)
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
    drain(&sink, sink_task, opts.shutdown_timeout).await;
    // Nothing is written any more: another replica may take over at once.
    if let Some(elector) = elector {
        elector.release().await;
    }
    serving.await.map_err(|e| anyhow!("server task: {e}"))??;
    ingest_result?.context("watching")?;
    engine_result
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
            "shutdown: giving up on {} queued and {} in-flight writes after {timeout:?} (--shutdown-timeout)",
            stats.pending,
            stats.in_flight
        );
        task.abort();
        return;
    }
    if let Err(e) = task.await {
        tracing::error!("the sink task failed: {e}");
    }
}

/// What woke the engine thread.
enum Wake {
    /// A watch event, or `None` when the ingest has ended.
    Event(Option<WatchEvent>),
    /// A question from `GET /explain`.
    Explain(ExplainRequest),
    /// Another writer changed or deleted a Binding.
    Drift(Drift),
    /// The sink started or stopped writing (`None`: it no longer tells).
    Leading(Option<bool>),
    /// A coalescing window passed (or the idle poll).
    Timeout,
}

/// A watch event's arrival time (its `ts`, Unix ms).
fn received_at(event: &WatchEvent) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(event.ts).unwrap_or(0))
}

/// The engine thread's state.
struct EngineLoop {
    pipeline: Pipeline,
    sink: SinkHandle,
    recorder: Option<LogWriter>,
    coalesce: Duration,
    metrics: Arc<Metrics>,
    /// Heartbeats every iteration; published with the first epoch.
    health: Arc<Health>,
    /// When the open epoch's oldest event arrived.
    epoch_oldest: Option<SystemTime>,
    /// Bindings changed and not yet handed to the sink: when they are due (a coalescing
    /// window after they first changed), and when the oldest event behind those changes
    /// arrived.
    dirty: BTreeMap<String, (Instant, SystemTime)>,
    /// Policies whose status must be handed to the sink again (write errors changed).
    status_dirty: BTreeSet<String>,
    /// The sink's problems (write errors, fights with other writers) as last seen, to
    /// notice changes.
    sink_problems: HashMap<String, String>,
    /// Policies being deleted whose KubeStellar finalizer the sink must remove once their
    /// Binding is gone.
    finalizing: BTreeSet<String>,
    published: bool,
    /// Whether the sink writes: it follows the leader election. While it does not, nothing
    /// is handed to it (the changed Bindings wait in `dirty`).
    leading: watch::Receiver<bool>,
    /// `leading` still tells changes.
    leading_followed: bool,
    /// Progress of the initial lists, until every watch has synced.
    initial_sync: Option<Progress>,
    /// Names the unsynced resources when they keep changes waiting long.
    sync_report: SyncReporter,
    events: u64,
    /// Where Events on BindingPolicies go (`None`: not published).
    policy_events: Option<EventSender>,
    /// Tells the Events each status handed to the sink calls for.
    problem_tracker: ProblemTracker,
}

impl EngineLoop {
    fn new(
        sink: SinkHandle,
        recorder: Option<LogWriter>,
        coalesce: Duration,
        workers: usize,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> EngineLoop {
        let pipeline = Pipeline::with_workers(workers);
        let workers = pipeline.engine().workers();
        tracing::info!(
            "engine: {workers} timely worker{}",
            if workers == 1 { "" } else { "s" }
        );
        metrics.engine_workers(workers);
        EngineLoop {
            pipeline,
            leading: sink.leading(),
            leading_followed: true,
            sink,
            recorder,
            coalesce,
            metrics,
            health,
            epoch_oldest: None,
            dirty: BTreeMap::new(),
            status_dirty: BTreeSet::new(),
            sink_problems: HashMap::new(),
            finalizing: BTreeSet::new(),
            published: false,
            initial_sync: Some(Progress::spinner("initial sync of every watch")),
            sync_report: SyncReporter::new(SYNC_REPORT_AFTER, std::time::Instant::now()),
            events: 0,
            policy_events: None,
            problem_tracker: ProblemTracker::default(),
        }
    }

    /// The same, publishing Events on BindingPolicies through `sender` while leading.
    fn with_policy_events(mut self, sender: Option<EventSender>) -> Self {
        self.policy_events = sender;
        self
    }

    fn run(
        mut self,
        mut rx: mpsc::Receiver<WatchEvent>,
        mut explain: mpsc::Receiver<ExplainRequest>,
        mut drift: DriftEvents,
        runtime: tokio::runtime::Handle,
    ) -> Result<()> {
        // A failure (of the recording) still hands everything over and finishes it.
        let served = self.serve(&mut rx, &mut explain, &mut drift, &runtime);
        self.close_epoch();
        self.hand_over(true);
        let finished = match self.recorder.take() {
            Some(recorder) => recorder.finish().context("finishing the recording"),
            None => Ok(()),
        };
        tracing::info!(
            "engine stopped after {} events, epoch {}",
            self.events,
            self.pipeline.engine().epoch()
        );
        served.and(finished)
    }

    /// The loop: until the ingest ends (or recording fails).
    fn serve(
        &mut self,
        rx: &mut mpsc::Receiver<WatchEvent>,
        explain: &mut mpsc::Receiver<ExplainRequest>,
        drift: &mut DriftEvents,
        runtime: &tokio::runtime::Handle,
    ) -> Result<()> {
        loop {
            self.health.heartbeat();
            let deadline = self.next_deadline();
            let (leading, followed) = (&mut self.leading, self.leading_followed);
            let wake = runtime.block_on(async {
                tokio::select! {
                    // Explain requests first: they are rare, and a busy watch stream must
                    // not starve them.
                    biased;
                    Some(request) = explain.recv() => Wake::Explain(request),
                    changed = leading.changed(), if followed => {
                        Wake::Leading(changed.ok().map(|()| *leading.borrow_and_update()))
                    }
                    Some(d) = drift.recv() => Wake::Drift(d),
                    event = rx.recv() => Wake::Event(event),
                    _ = tokio::time::sleep_until(deadline) => Wake::Timeout,
                }
            });
            match wake {
                Wake::Event(Some(event)) => {
                    self.push(event)?;
                    // Take what else is queued, so one epoch covers a burst.
                    while self.pipeline.pending() < 65_536 {
                        match rx.try_recv() {
                            Ok(event) => self.push(event)?,
                            Err(_) => break,
                        }
                    }
                    self.metrics.queued_events(rx.len());
                }
                Wake::Event(None) => return Ok(()),
                Wake::Explain(request) => self.explain(request),
                Wake::Drift(d) => self.restore(d),
                Wake::Leading(Some(true)) => self.took_over(),
                Wake::Leading(Some(false)) => {
                    tracing::info!("not leading: Binding changes are kept, not written");
                }
                Wake::Leading(None) => self.leading_followed = false,
                Wake::Timeout => {}
            }
            self.close_epoch();
            self.sync_report.check(
                &self.pipeline,
                std::time::Instant::now(),
                Some(&self.metrics),
            );
            self.note_sink_problems();
            self.hand_over(false);
        }
    }

    fn next_deadline(&self) -> Instant {
        let poll = Instant::now() + Duration::from_secs(1);
        if !self.is_leading() {
            return poll;
        }
        self.dirty
            .values()
            .map(|(due, _)| *due)
            .min()
            .map_or(poll, |d| d.min(poll))
    }

    /// True while the sink writes.
    fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Became leader: every Binding is handed to the sink again (which writes only those
    /// that differ from what is stored: the previous leader wrote most), and stored managed
    /// Bindings whose policy is gone are deleted. Before the first publish there is nothing
    /// to compare yet: the first publish does it.
    fn took_over(&mut self) {
        if !self.published {
            tracing::info!("leading: the first Bindings are written once every watch has synced");
            return;
        }
        let (due, at) = (Instant::now(), SystemTime::now());
        let names: Vec<String> = self
            .pipeline
            .engine()
            .bindings()
            .into_iter()
            .map(|b| b.name)
            .collect();
        let n = names.len();
        for name in names {
            self.dirty.entry(name).or_insert((due, at));
        }
        let orphans = self.mark_orphans(due, at);
        tracing::info!(
            "leading: comparing {n} Bindings with the stored ones, {orphans} stored Bindings whose policy is gone to delete"
        );
    }

    /// Marks the stored managed Bindings that no policy has for deletion; logs the
    /// unmanaged ones left alone. Returns how many are marked.
    fn mark_orphans(&mut self, due: Instant, at: SystemTime) -> usize {
        let current: BTreeSet<String> = self
            .pipeline
            .engine()
            .bindings()
            .into_iter()
            .map(|b| b.name)
            .collect();
        // Only Bindings a BindingPolicy controls are Bindery's to delete; the others
        // (written by hand or by another controller) are left alone.
        let (orphans, unmanaged): (Vec<_>, Vec<_>) = self
            .sink
            .stored_bindings()
            .into_iter()
            .filter(|(n, _)| !current.contains(n))
            .partition(|(_, managed)| *managed);
        if !unmanaged.is_empty() {
            let names: Vec<&str> = unmanaged.iter().map(|(n, _)| n.as_str()).collect();
            tracing::info!(
                "leaving {} stored Bindings alone that no BindingPolicy owns and no policy is named after: {}",
                names.len(),
                names.join(", ")
            );
        }
        let n = orphans.len();
        for (name, _) in orphans {
            self.dirty.entry(name).or_insert((due, at));
        }
        n
    }

    /// Marks a Binding another writer changed to be written again (after the fight
    /// backoff, if any, and the coalescing window).
    fn restore(&mut self, drift: Drift) {
        let due = Instant::now() + drift.delay + self.coalesce;
        let entry = self
            .dirty
            .entry(drift.name)
            .or_insert((due, SystemTime::now()));
        entry.0 = entry.0.max(due);
    }

    /// Notes a policy being deleted, whose KubeStellar finalizer (if any) must go.
    fn note_deletion(&mut self, event: &WatchEvent) {
        let is_policy = matches!(
            bindery_ingest::classify(&event.resource),
            bindery_ingest::ObjectKind::Policy
        );
        if !is_policy || event.event_type == bindery_ingest::EventType::Deleted {
            return;
        }
        let meta = event.object.as_ref().and_then(|o| o.get("metadata"));
        let deleting = meta.is_some_and(|m| m.get("deletionTimestamp").is_some());
        if let (true, Some(name)) = (
            deleting,
            meta.and_then(|m| m.get("name")).and_then(|n| n.as_str()),
        ) {
            self.finalizing.insert(name.to_string());
        }
    }

    fn push(&mut self, event: WatchEvent) -> Result<()> {
        self.events += 1;
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.write_event(&event).context("recording")?;
        }
        self.metrics.event(&event);
        if let Some(progress) = self.initial_sync.as_mut() {
            let (events, pipeline) = (self.events, &self.pipeline);
            progress.status(|| {
                let (synced, watched) = pipeline.synced_of();
                format!(
                    "{events} events, {} resources not synced yet",
                    watched - synced
                )
            });
        }
        let at = received_at(&event);
        self.epoch_oldest = Some(self.epoch_oldest.map_or(at, |t| t.min(at)));
        self.note_deletion(&event);
        let what = format!("{} {}", event.resource, event.event_type.as_str());
        if let Err(e) = self.pipeline.push(event) {
            // One bad object must not stop the others.
            tracing::error!("ignoring {what}: {e}");
        }
        Ok(())
    }

    /// Closes the open epoch once every watch has synced (once: a relist since holds
    /// back only its own objects), marking the changed Bindings.
    fn close_epoch(&mut self) {
        if !self.pipeline.publishable() || self.pipeline.pending() == 0 {
            return;
        }
        let started = std::time::Instant::now();
        let out = self.pipeline.close_epoch();
        let oldest = self.epoch_oldest.take().unwrap_or_else(SystemTime::now);
        let lag = oldest.elapsed().unwrap_or_default();
        let engine = self.pipeline.engine();
        self.metrics
            .epoch(&out, started.elapsed(), lag, &engine.sizes());
        let due = Instant::now() + self.coalesce;
        for change in &out.changes {
            let entry = self
                .dirty
                .entry(change.binding.clone())
                .or_insert((due, oldest));
            entry.1 = entry.1.min(oldest);
        }
        if !self.published {
            self.published = true;
            self.health.mark_published();
            if let Some(progress) = self.initial_sync.take() {
                progress.finish();
            }
            let bindings = self.pipeline.engine().bindings().len();
            if self.is_leading() {
                let orphans = self.mark_orphans(due, oldest);
                tracing::info!(
                    "all watches synced: {bindings} Bindings, {orphans} stored Bindings whose policy is gone to delete"
                );
            } else {
                // The leader's Bindings are compared (and orphans deleted) on taking over.
                tracing::info!(
                    "all watches synced: {bindings} Bindings; not leading, so nothing is written"
                );
            }
        }
        if let Some(recorder) = self.recorder.as_mut()
            && let Err(e) = recorder.flush()
        {
            tracing::warn!("flushing the recording: {e}");
        }
    }

    /// Answers a `GET /explain` on the engine's current state (once every watch has
    /// synced: before, the state is partial).
    fn explain(&self, request: ExplainRequest) {
        let answer = if self.published {
            // Copies what the question needs (all of the state only for an overview).
            self.pipeline
                .engine()
                .explain(&request.query)
                .map_err(ExplainFailure::Explain)
        } else {
            Err(ExplainFailure::NotSynced(self.pipeline.unsynced()))
        };
        // The asker may have gone.
        let _ = request.reply.send(answer);
    }

    /// Marks the policies whose sink problems (write errors, fights) appeared or cleared.
    fn note_sink_problems(&mut self) {
        let now = self.sink.problems();
        for (name, problem) in &now {
            if self.sink_problems.get(name) != Some(problem) {
                self.status_dirty.insert(name.clone());
            }
        }
        for name in self.sink_problems.keys() {
            if !now.contains_key(name) {
                self.status_dirty.insert(name.clone());
            }
        }
        self.sink_problems = now;
    }

    /// Renders the Bindings whose window has passed (all of them if `all`) and hands
    /// them, with their policies' statuses, to the sink.
    fn hand_over(&mut self, all: bool) {
        // A follower writes nothing: its changes wait, and all are compared on taking over.
        if !self.is_leading() {
            return;
        }
        let now = Instant::now();
        let due: Vec<String> = self
            .dirty
            .iter()
            .filter(|(_, (due, _))| all || *due <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some((_, changed_at)) = self.dirty.remove(&name) else {
                continue;
            };
            let engine = self.pipeline.engine();
            let desired = match engine.binding(&name) {
                Some(binding) => DesiredBinding::present(&binding),
                None => DesiredBinding::absent(name.clone()),
            };
            self.sink.submit(desired.changed_at(Some(changed_at)));
            self.status_dirty.insert(name);
        }
        // A policy being deleted: once its Binding's deletion is handed over (or it had
        // none to hand over), KubeStellar's finalizer can go.
        if self.published {
            let ready: Vec<String> = self
                .finalizing
                .iter()
                .filter(|n| !self.dirty.contains_key(*n))
                .cloned()
                .collect();
            for name in ready {
                self.finalizing.remove(&name);
                self.sink.remove_finalizer(name);
            }
        }
        for name in std::mem::take(&mut self.status_dirty) {
            let Some(status) = self.pipeline.engine().status(&name) else {
                self.problem_tracker.forget(&name);
                continue;
            };
            let mut desired = DesiredStatus::from_engine(name.clone(), &status);
            desired.binding_problem = self.sink_problems.get(&name).cloned();
            let events = self.problem_tracker.observe(&status.uid, &desired);
            if let Some(sender) = &self.policy_events
                && self.is_leading()
            {
                events.into_iter().for_each(|e| sender.send(e));
            }
            self.sink.submit_status(desired);
        }
    }
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}
