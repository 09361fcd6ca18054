//! The engine thread of `bindery run`: it takes watch events into epochs, coalesces the
//! changed Bindings for a window, hands them and their policies' statuses to the sink
//! (only while leading), marks stored Bindings whose policy is gone, restores drifted
//! ones, carries write problems into the statuses, and hands the returned statuses of
//! workload objects, the CombinedStatuses and the StatusCollectors' statuses over (once
//! WorkStatuses are watched and listed; CombinedStatuses once the stored ones are listed
//! too, deleting those no (policy, object) has any more). It reaches the sink through
//! [`BindingWriter`], so it is unit-tested without an API server.
//!
//! Once published, an epoch stays open for half the coalescing window after its first
//! event (`linger`), so a stream of single events (WorkStatus updates, the
//! watch events of Bindery's own status writes) makes a few epochs a second, not one
//! each; the window of what the epoch changed still runs from that first event, and a
//! write falling due closes the open epoch first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bindery_ingest::{LogWriter, WatchEvent};
use bindery_sink::{
    DesiredBinding, DesiredCollectorStatus, DesiredCombined, DesiredReport, DesiredStatus, Drift,
    SinkEvent, SinkEvents, SinkHandle, combined_key,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::history::journal::Journal;
use crate::input::pipeline::{Pipeline, SYNC_REPORT_AFTER, SyncReporter};
use crate::observe::metrics::Metrics;
use crate::observe::progress::Progress;
use crate::observe::server::{ExplainFailure, ExplainRequest, HistoryRequest, Question};
use crate::runtime::health::Health;
use crate::runtime::policy_events::{EventSender, ProblemTracker, destination_events};

mod net_change;
use net_change::NetChange;

/// What the engine loop needs of the Binding sink.
pub(crate) trait BindingWriter {
    /// Writes `desired` (latest wins per name).
    fn submit(&self, desired: DesiredBinding);
    /// Writes a policy's status after the Binding write submitted before it.
    fn submit_status(&self, desired: DesiredStatus);
    /// Removes KubeStellar's finalizer from policy `name`, once its Binding is gone.
    fn remove_finalizer(&self, name: String);
    /// Writes a workload object's returned status (latest wins per object).
    fn submit_report(&self, desired: DesiredReport);
    /// Writes (or deletes) a CombinedStatus (latest wins per object).
    fn submit_combined(&self, desired: DesiredCombined);
    /// Writes a StatusCollector's status.
    fn submit_collector_status(&self, desired: DesiredCollectorStatus);
    /// Whether the stored CombinedStatuses have been listed.
    fn combined_listed(&self) -> bool;
    /// The stored CombinedStatuses, by `namespace/name`, and whether each carries all
    /// five of KubeStellar's labels.
    fn stored_combined(&self) -> Vec<(String, bool)>;
    /// The stored Bindings, by name, and whether each is managed.
    fn stored_bindings(&self) -> Vec<(String, bool)>;
    /// Whether the sink writes (it follows the leader election).
    fn leading(&self) -> watch::Receiver<bool>;
}

impl BindingWriter for SinkHandle {
    fn submit(&self, desired: DesiredBinding) {
        SinkHandle::submit(self, desired);
    }
    fn submit_status(&self, desired: DesiredStatus) {
        SinkHandle::submit_status(self, desired);
    }
    fn remove_finalizer(&self, name: String) {
        SinkHandle::remove_finalizer(self, name);
    }
    fn submit_report(&self, desired: DesiredReport) {
        SinkHandle::submit_report(self, desired);
    }
    fn submit_combined(&self, desired: DesiredCombined) {
        SinkHandle::submit_combined(self, desired);
    }
    fn submit_collector_status(&self, desired: DesiredCollectorStatus) {
        SinkHandle::submit_collector_status(self, desired);
    }
    fn combined_listed(&self) -> bool {
        SinkHandle::combined_listed(self)
    }
    fn stored_combined(&self) -> Vec<(String, bool)> {
        SinkHandle::stored_combined(self)
    }
    fn stored_bindings(&self) -> Vec<(String, bool)> {
        SinkHandle::stored_bindings(self)
    }
    fn leading(&self) -> watch::Receiver<bool> {
        SinkHandle::leading(self)
    }
}

/// What woke the engine thread.
enum Wake {
    /// A watch event, or `None` when the ingest has ended.
    Event(Option<WatchEvent>),
    /// A question from `GET /explain` or `GET /history`.
    Question(Question),
    /// Another writer changed or deleted a Binding, or a Binding's write problem changed.
    Sink(SinkEvent),
    /// The sink started or stopped writing (`None`: it no longer tells).
    Leading(Option<bool>),
    /// A coalescing window passed (or the idle poll).
    Timeout,
}

/// The most watch events taken into the open epoch per wake of the loop: a burst
/// (an initial list of a large WDS) is taken in batches of this many, each followed by
/// the loop's other duties (the heartbeat, explain questions, sink events), without
/// letting those wait for the whole burst.
pub(super) const MAX_EVENTS_PER_WAKE: usize = 65_536;

/// A Binding changed and not yet handed to the sink.
#[derive(Clone, Debug)]
struct PendingWrite {
    /// When it is due: a coalescing window after it first changed (or a drift's
    /// backoff and the window).
    due: Instant,
    /// When the oldest watch event behind its changes arrived (for
    /// `bindery_event_to_binding_seconds`).
    oldest_event: SystemTime,
    /// Its changes since it was last handed over (`None`: handed over whatever they
    /// are, as after a take-over, a drift or for an orphan). Changes that undo each
    /// other leave nothing to hand over.
    net: Option<NetChange>,
}

impl PendingWrite {
    /// Due at `due`, for events since `oldest_event`, handed over whatever changed.
    fn forced(due: Instant, oldest_event: SystemTime) -> Self {
        PendingWrite {
            due,
            oldest_event,
            net: None,
        }
    }
}

/// A watch event's arrival time (its `ts`, Unix ms).
fn received_at(event: &WatchEvent) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(event.ts).unwrap_or(0))
}

/// The engine thread's state.
pub(crate) struct EngineLoop<S: BindingWriter = SinkHandle> {
    pipeline: Pipeline,
    sink: S,
    recorder: Option<LogWriter>,
    coalesce: Duration,
    metrics: Arc<Metrics>,
    /// Heartbeats every iteration; published with the first epoch.
    health: Arc<Health>,
    /// When the open epoch's oldest event arrived.
    epoch_oldest: Option<SystemTime>,
    /// When the open epoch took its first event (`None`: no epoch is open).
    epoch_opened: Option<Instant>,
    /// How long an epoch stays open after its first event once published: half the
    /// coalescing window.
    linger: Duration,
    /// Bindings changed and not yet handed to the sink.
    dirty: BTreeMap<String, PendingWrite>,
    /// Policies whose status must be handed to the sink again (write errors or missing
    /// StatusCollectors changed).
    status_dirty: BTreeSet<String>,
    /// Returned statuses changed and not yet handed to the sink, by object key: the
    /// latest, and when it is due.
    reports_dirty: Pending<DesiredReport>,
    /// CombinedStatuses changed and not yet handed to the sink, by `namespace/name`: the
    /// latest, and when it is due.
    combined_dirty: Pending<DesiredCombined>,
    /// CombinedStatuses another writer changed, by `namespace/name`: when to hand the
    /// engine's over again.
    combined_drifted: BTreeMap<String, Instant>,
    /// Whether the stored CombinedStatuses have been compared with the engine's since
    /// the sink started leading (those of no (policy, object) are then deleted).
    combined_compared: bool,
    /// StatusCollector statuses changed and not yet handed to the sink, by name.
    collectors_dirty: BTreeMap<String, DesiredCollectorStatus>,
    /// Whether returned statuses are written at all (`--status-return`).
    status_return: bool,
    /// Where the objects whose content the engine wants go (`None`: nowhere).
    content_requests: Option<super::contents::ContentRequests>,
    /// The sink's problems (write errors, fights with other writers), as it told them.
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
    /// The recent changes with their causes, for `GET /history` (`None`: not kept).
    journal: Option<Journal>,
    /// Where Events on destination changes go, while leading (`None`: not published).
    destination_events: Option<EventSender>,
}

impl<S: BindingWriter> EngineLoop<S> {
    pub(crate) fn new(
        sink: S,
        recorder: Option<LogWriter>,
        coalesce: Duration,
        pipeline: Pipeline,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Self {
        let workers = pipeline.engine().workers();
        tracing::info!(workers, "engine started");
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
            epoch_opened: None,
            linger: coalesce / 2,
            dirty: BTreeMap::new(),
            status_dirty: BTreeSet::new(),
            reports_dirty: Pending::default(),
            combined_dirty: Pending::default(),
            combined_drifted: BTreeMap::new(),
            combined_compared: false,
            collectors_dirty: BTreeMap::new(),
            status_return: true,
            content_requests: None,
            sink_problems: HashMap::new(),
            finalizing: BTreeSet::new(),
            published: false,
            initial_sync: Some(Progress::spinner("initial sync of every watch")),
            sync_report: SyncReporter::new(SYNC_REPORT_AFTER, std::time::Instant::now()),
            events: 0,
            policy_events: None,
            problem_tracker: ProblemTracker::default(),
            journal: None,
            destination_events: None,
        }
    }

    /// The same, publishing an Event on its policy for each destination change, naming
    /// the cause from the journal, through `sender` while leading.
    pub(super) fn with_destination_events(mut self, sender: Option<EventSender>) -> Self {
        self.destination_events = sender;
        self
    }

    /// The same, keeping the recent changes with their causes in `journal`.
    pub(super) fn with_journal(mut self, journal: Option<Journal>) -> Self {
        self.journal = journal;
        self
    }

    /// The same, writing returned statuses or not (`--status-return`).
    pub(super) fn with_status_return(mut self, on: bool) -> Self {
        self.status_return = on;
        self
    }

    /// The same, asking `fetcher` for the content of the objects the engine wants.
    pub(super) fn with_content_fetcher(
        mut self,
        fetcher: Option<super::contents::ContentRequests>,
    ) -> Self {
        self.content_requests = fetcher;
        self
    }

    /// The same, publishing Events on BindingPolicies through `sender` while leading.
    pub(super) fn with_policy_events(mut self, sender: Option<EventSender>) -> Self {
        self.policy_events = sender;
        self
    }

    pub(crate) fn run(
        mut self,
        mut rx: mpsc::Receiver<WatchEvent>,
        mut questions: mpsc::Receiver<Question>,
        mut sink_events: SinkEvents,
        runtime: tokio::runtime::Handle,
    ) -> Result<()> {
        // A failure (of the recording) still hands everything over and finishes it.
        let served = self.serve(&mut rx, &mut questions, &mut sink_events, &runtime);
        self.close_epoch();
        self.hand_over(true);
        let finished = match self.recorder.take() {
            Some(recorder) => recorder.finish().context("finishing the recording"),
            None => Ok(()),
        };
        tracing::info!(
            events = self.events,
            epoch = self.pipeline.engine().epoch(),
            "engine stopped"
        );
        served.and(finished)
    }

    /// The loop: until the ingest ends (or recording fails).
    fn serve(
        &mut self,
        rx: &mut mpsc::Receiver<WatchEvent>,
        questions: &mut mpsc::Receiver<Question>,
        sink_events: &mut SinkEvents,
        runtime: &tokio::runtime::Handle,
    ) -> Result<()> {
        loop {
            self.health.heartbeat();
            let deadline = self.next_deadline();
            let (leading, followed) = (&mut self.leading, self.leading_followed);
            let wake = runtime.block_on(async {
                tokio::select! {
                    // Questions first: they are rare, and a busy watch stream must not
                    // starve them.
                    biased;
                    Some(question) = questions.recv() => Wake::Question(question),
                    changed = leading.changed(), if followed => {
                        Wake::Leading(changed.ok().map(|()| *leading.borrow_and_update()))
                    }
                    Some(e) = sink_events.recv() => Wake::Sink(e),
                    event = rx.recv() => Wake::Event(event),
                    _ = tokio::time::sleep_until(deadline) => Wake::Timeout,
                }
            });
            match wake {
                Wake::Event(Some(event)) => {
                    self.take_events(event, rx)?;
                }
                Wake::Event(None) => return Ok(()),
                Wake::Question(question) => {
                    // On every change taken so far.
                    self.close_epoch();
                    match question {
                        Question::Explain(request) => self.explain(request),
                        Question::History(request) => self.history(request),
                    }
                }
                Wake::Sink(event) => self.sink_event(event)?,
                Wake::Leading(Some(true)) => self.took_over(),
                Wake::Leading(Some(false)) => {
                    tracing::info!("not leading: Binding changes are kept, not written");
                }
                Wake::Leading(None) => self.leading_followed = false,
                Wake::Timeout => {}
            }
            if self.epoch_due(Instant::now()) {
                self.close_epoch();
            }
            self.sync_report.check(
                &self.pipeline,
                std::time::Instant::now(),
                Some(&self.metrics),
            );
            self.hand_over(false);
        }
    }

    /// Takes `first` and what else is queued, up to [`MAX_EVENTS_PER_WAKE`] in all, into
    /// the open epoch, so one epoch covers a burst. Returns how many it took.
    fn take_events(
        &mut self,
        first: WatchEvent,
        rx: &mut mpsc::Receiver<WatchEvent>,
    ) -> Result<usize> {
        self.push(first)?;
        let mut taken = 1;
        while taken < MAX_EVENTS_PER_WAKE {
            let Ok(event) = rx.try_recv() else { break };
            self.push(event)?;
            taken += 1;
        }
        self.metrics.queued_events(rx.len());
        Ok(taken)
    }

    /// Whether the open epoch is to close now: before the first publish at once (the
    /// initial lists come in large batches), then once it has lingered, when it holds a
    /// batch's worth of events, or when a write is due (so what it holds still joins
    /// the writes of its window).
    fn epoch_due(&self, now: Instant) -> bool {
        match self.epoch_opened {
            None => false,
            Some(opened) => {
                !self.published
                    || now >= opened + self.linger
                    || self.pipeline.pending() >= MAX_EVENTS_PER_WAKE as u64
                    || self.next_write_due().is_some_and(|due| due <= now)
            }
        }
    }

    /// When the loop must wake next: the next write due, the open epoch's linger, or in
    /// a second (the heartbeat).
    fn next_deadline(&self) -> Instant {
        let poll = Instant::now() + Duration::from_secs(1);
        // (Before the first publish an epoch closes at once, when every watch has synced.)
        let epoch = self
            .epoch_opened
            .filter(|_| self.published)
            .map(|opened| opened + self.linger);
        [epoch, self.next_write_due()]
            .into_iter()
            .flatten()
            .min()
            .map_or(poll, |d| d.min(poll))
    }

    /// When the next write is due, if any (none while not leading).
    fn next_write_due(&self) -> Option<Instant> {
        if !self.is_leading() {
            return None;
        }
        let reports = self
            .reports_writable()
            .then(|| self.reports_dirty.next_due())
            .flatten();
        let combined = self
            .combined_writable()
            .then(|| {
                let drifted = self.combined_drifted.values().copied();
                self.combined_dirty
                    .next_due()
                    .into_iter()
                    .chain(drifted)
                    .min()
            })
            .flatten();
        self.dirty
            .values()
            .map(|w| w.due)
            .chain(reports)
            .chain(combined)
            .min()
    }

    /// Whether CombinedStatuses are handed over: as returned statuses are, once the
    /// stored ones are listed too (else one could not be told apart from an orphan).
    fn combined_writable(&self) -> bool {
        self.reports_writable() && self.sink.combined_listed()
    }

    /// Whether returned statuses are handed over: with status return on, once the WECs'
    /// reports are in (else a status would be cleared for want of the WorkStatus that is
    /// still being listed).
    fn reports_writable(&self) -> bool {
        self.status_return && self.pipeline.work_statuses_synced()
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
        let now = PendingWrite::forced(Instant::now(), SystemTime::now());
        let names = self.binding_names();
        let n = names.len();
        for name in names {
            self.force(name, &now);
        }
        // What the previous leader wrote into the objects is not known: write again.
        for (object, report) in self.pipeline.engine().reports() {
            let desired = DesiredReport {
                object,
                report: Some(report),
            };
            self.reports_dirty.upsert(desired.key(), desired, now.due);
        }
        // Nor what it wrote into the CombinedStatuses and StatusCollectors.
        for combined in self.pipeline.engine().combined_statuses() {
            let desired = present_combined(&combined);
            self.combined_dirty.upsert(desired.key(), desired, now.due);
        }
        self.combined_compared = false;
        self.collectors_dirty.extend(
            self.pipeline
                .engine()
                .collector_statuses()
                .iter()
                .map(|c| (c.name.clone(), desired_collector(c))),
        );
        let orphans = self.mark_orphans(&now);
        tracing::info!(
            bindings = n,
            orphans,
            "leading: comparing the Bindings with the stored ones, deleting stored Bindings whose policy is gone"
        );
    }

    /// The names of the engine's current Bindings.
    fn binding_names(&self) -> BTreeSet<String> {
        let engine = self.pipeline.engine();
        engine.bindings().into_iter().map(|b| b.name).collect()
    }

    /// Marks the stored managed Bindings that no policy has for deletion; logs the
    /// unmanaged ones left alone. Returns how many are marked.
    fn mark_orphans(&mut self, write: &PendingWrite) -> usize {
        let current = self.binding_names();
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
                count = names.len(),
                bindings = names.join(", "),
                "leaving stored Bindings alone that no BindingPolicy owns and no policy is named after"
            );
        }
        let n = orphans.len();
        for (name, _) in orphans {
            self.force(name, write);
        }
        n
    }

    /// Marks Binding `name` to be handed over (by `write`'s window, if not marked
    /// already) whatever its changes net to.
    fn force(&mut self, name: String, write: &PendingWrite) {
        self.dirty
            .entry(name)
            .and_modify(|w| w.net = None)
            .or_insert_with(|| PendingWrite::forced(write.due, write.oldest_event));
    }

    /// Marks a Binding another writer changed to be written again (after the fight
    /// backoff, if any, and the coalescing window).
    fn restore(&mut self, drift: Drift) {
        let due = Instant::now() + drift.delay + self.coalesce;
        let write = self
            .dirty
            .entry(drift.name)
            .or_insert_with(|| PendingWrite::forced(due, SystemTime::now()));
        write.net = None;
        write.due = write.due.max(due);
    }

    /// What the sink told: drift to restore, or a Binding's problem that changed (its
    /// policy's status is written again).
    fn sink_event(&mut self, event: SinkEvent) -> Result<()> {
        match event {
            SinkEvent::Drift(drift) => self.restore(drift),
            SinkEvent::CombinedDrift(drift) => {
                let due = Instant::now() + drift.delay + self.coalesce;
                let key = combined_key(&drift.namespace, &drift.name);
                let at = self.combined_drifted.entry(key).or_insert(due);
                *at = (*at).max(due);
            }
            SinkEvent::StatusWritten {
                object,
                resource_version,
            } => {
                // Recorded as a line of its own, so a replay knows it too.
                let (group, resource, namespace, name) = object.identity();
                let key = bindery_engine::ObjectKey {
                    group: group.into(),
                    resource: resource.into(),
                    namespace: namespace.into(),
                    name: name.into(),
                };
                let event = WatchEvent {
                    ts: bindery_ingest::live::now_ms(),
                    resource: bindery_ingest::ResourceRef::new(
                        bindery_ingest::Space::Wds,
                        bindery_ingest::feed::POLICY_GROUP,
                        "v1alpha1",
                        bindery_ingest::feed::STATUS_WRITE_RESOURCE,
                    ),
                    event_type: bindery_ingest::EventType::Modified,
                    object: Some(bindery_ingest::status_write_object(&key, &resource_version)),
                };
                self.push(event)?;
            }
            SinkEvent::Problem { name, problem } => {
                let changed = match problem {
                    Some(p) => self.sink_problems.insert(name.clone(), p.clone()) != Some(p),
                    None => self.sink_problems.remove(&name).is_some(),
                };
                if changed {
                    self.status_dirty.insert(name);
                }
            }
        }
        Ok(())
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
        self.epoch_opened.get_or_insert_with(Instant::now);
        self.note_deletion(&event);
        let event_type = event.event_type;
        let pushed = match self.journal.as_mut() {
            // Its line in the recording, after the header.
            Some(journal) => journal.push(&mut self.pipeline, self.events + 1, event),
            None => self.pipeline.push(event),
        };
        if let Err(e) = pushed {
            // One bad object must not stop the others. The error names its resource.
            tracing::error!(event = event_type.as_str(), error = %e, "ignoring a watch event");
        }
        Ok(())
    }

    /// Closes the open epoch once every watch has synced (once: a relist since holds
    /// back only its own objects), marking the changed Bindings.
    fn close_epoch(&mut self) {
        if !self.pipeline.publishable() {
            return;
        }
        if self.pipeline.pending() == 0 {
            self.epoch_opened = None;
            return;
        }
        let started = std::time::Instant::now();
        let out = self.pipeline.close_epoch();
        if let Some(journal) = self.journal.as_mut() {
            let changes = journal.close(out.epoch, &out.changes, !self.published);
            if let Some(sender) = &self.destination_events
                && *self.leading.borrow()
            {
                let engine = self.pipeline.engine();
                let mut uid = |policy: &str| engine.status(policy).map(|s| s.uid);
                for event in destination_events(changes, &mut uid) {
                    sender.send(event);
                }
            }
            self.metrics.history_changes(journal.len());
        }
        let opened = self.epoch_opened.take().unwrap_or_else(Instant::now);
        let oldest = self.epoch_oldest.take().unwrap_or_else(SystemTime::now);
        let lag = oldest.elapsed().unwrap_or_default();
        let engine = self.pipeline.engine();
        self.metrics
            .epoch(&out, started.elapsed(), lag, &engine.sizes());
        // The window runs from the epoch's first event.
        let write = PendingWrite {
            due: opened + self.coalesce,
            oldest_event: oldest,
            net: Some(NetChange::default()),
        };
        for change in &out.changes {
            let pending = self
                .dirty
                .entry(change.binding.clone())
                .or_insert_with(|| write.clone());
            pending.oldest_event = pending.oldest_event.min(oldest);
            if let Some(net) = &mut pending.net {
                net.add(change);
            }
        }
        // A policy whose missing StatusCollectors changed gets its status written again
        // (with its Binding's write, when that is pending).
        if self.status_return {
            let missing = out.missing_collectors.iter();
            let alone = missing.filter(|p| !self.dirty.contains_key(*p)).cloned();
            self.status_dirty.extend(alone);
        }
        for change in out.reports {
            let desired = DesiredReport {
                object: change.object,
                report: change.report,
            };
            self.reports_dirty.upsert(desired.key(), desired, write.due);
        }
        if let Some(fetcher) = &self.content_requests {
            for (object, _) in out.content_requests {
                // The fetcher ends only at shutdown.
                let _ = fetcher.send(object);
            }
        }
        if self.status_return {
            for change in out.combined {
                let desired = DesiredCombined {
                    object: change.status.as_ref().map(|s| s.to_json()),
                    namespace: change.namespace,
                    name: change.name,
                };
                self.combined_dirty
                    .upsert(desired.key(), desired, write.due);
            }
            for collector in &out.collectors {
                self.collectors_dirty
                    .insert(collector.name.clone(), desired_collector(collector));
            }
        }
        if !self.published {
            self.published = true;
            self.health.mark_published();
            if let Some(progress) = self.initial_sync.take() {
                progress.finish();
            }
            let bindings = self.pipeline.engine().bindings().len();
            if self.is_leading() {
                let orphans = self.mark_orphans(&write);
                tracing::info!(
                    bindings,
                    orphans,
                    "all watches synced: writing the Bindings, deleting stored Bindings whose policy is gone"
                );
            } else {
                // The leader's Bindings are compared (and orphans deleted) on taking over.
                tracing::info!(
                    bindings,
                    "all watches synced; not leading, so nothing is written"
                );
            }
        }
        if let Some(recorder) = self.recorder.as_mut()
            && let Err(e) = recorder.flush()
        {
            tracing::warn!(error = %e, "flushing the recording");
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

    /// Answers a `GET /history` from the journal (once every watch has synced).
    fn history(&mut self, request: HistoryRequest) {
        let answer = match (&mut self.journal, self.published) {
            (None, _) => Err(ExplainFailure::NoJournal),
            (Some(_), false) => Err(ExplainFailure::NotSynced(self.pipeline.unsynced())),
            (Some(journal), true) => {
                let engine = self.pipeline.engine();
                let mut rendered = HashMap::new();
                let mut binding = |name: &str| {
                    rendered
                        .entry(name.to_string())
                        .or_insert_with(|| engine.binding(name).map(std::rc::Rc::new))
                        .clone()
                };
                Ok(journal.query(
                    &request.filter,
                    request.until,
                    request.last,
                    bindery_ingest::live::now_ms(),
                    &mut binding,
                ))
            }
        };
        // The asker may have gone.
        let _ = request.reply.send(answer);
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
            .filter(|(_, w)| all || w.due <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some(write) = self.dirty.remove(&name) else {
                continue;
            };
            if write.net.as_ref().is_some_and(NetChange::is_empty) {
                // As handed over last: nothing to render.
                continue;
            }
            let engine = self.pipeline.engine();
            let desired = match engine.binding(&name) {
                Some(binding) => DesiredBinding::present(&binding),
                None => DesiredBinding::absent(name.clone()),
            };
            self.sink
                .submit(desired.changed_at(Some(write.oldest_event)));
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
        if self.reports_writable() {
            let due = self.reports_dirty.take_due(now, all);
            if !due.is_empty() {
                tracing::debug!(objects = due.len(), "handing over returned statuses");
            }
            for desired in due {
                self.sink.submit_report(desired);
            }
        }
        self.hand_over_combined(all, now);
        for name in std::mem::take(&mut self.status_dirty) {
            let Some(status) = self.pipeline.engine().status(&name) else {
                self.problem_tracker.forget(&name);
                continue;
            };
            let mut desired = DesiredStatus::from_engine(name.clone(), &status);
            desired.binding_problem = self.sink_problems.get(&name).cloned();
            if !self.status_return {
                desired.missing_collectors = None;
            }
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

impl<S: BindingWriter> EngineLoop<S> {
    /// Hands over the StatusCollectors' statuses, and the CombinedStatuses whose window
    /// has passed (all if `all`), the drifted ones, and (once after the stored ones are
    /// listed) deletions of the stored ones no (policy, object) has.
    fn hand_over_combined(&mut self, all: bool, now: Instant) {
        if self.status_return && self.published {
            for (_, desired) in std::mem::take(&mut self.collectors_dirty) {
                self.sink.submit_collector_status(desired);
            }
        }
        if !self.combined_writable() {
            return;
        }
        if !self.combined_compared {
            self.combined_compared = true;
            let current: BTreeSet<String> = self
                .pipeline
                .engine()
                .combined_statuses()
                .iter()
                .map(|c| combined_key(c.namespace(), &c.name()))
                .collect();
            let orphans: Vec<String> = self
                .sink
                .stored_combined()
                .into_iter()
                .filter(|(key, kubestellars)| *kubestellars && !current.contains(key))
                .map(|(key, _)| key)
                .collect();
            if !orphans.is_empty() {
                tracing::info!(
                    count = orphans.len(),
                    "deleting stored CombinedStatuses of no (policy, object)"
                );
            }
            for key in orphans {
                let desired = absent_combined(&key);
                self.combined_dirty.upsert(key, desired, now);
            }
        }
        let drifted: Vec<String> = self
            .combined_drifted
            .iter()
            .filter(|(_, due)| all || **due <= now)
            .map(|(key, _)| key.clone())
            .collect();
        if !drifted.is_empty() {
            // One pass over the engine's CombinedStatuses for all of them.
            let mut current: HashMap<String, DesiredCombined> = self
                .pipeline
                .engine()
                .combined_statuses()
                .iter()
                .map(|c| (combined_key(c.namespace(), &c.name()), present_combined(c)))
                .filter(|(key, _)| self.combined_drifted.contains_key(key))
                .collect();
            for key in drifted {
                self.combined_drifted.remove(&key);
                let desired = current
                    .remove(&key)
                    .unwrap_or_else(|| absent_combined(&key));
                self.combined_dirty.upsert(key, desired, now);
            }
        }
        for desired in self.combined_dirty.take_due(now, all) {
            self.sink.submit_combined(desired);
        }
    }
}

/// Writes of one kind waiting for their coalescing window, by key: the latest desired
/// state, due at the earliest time any of the changes it carries was.
struct Pending<T>(BTreeMap<String, (T, Instant)>);

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending(BTreeMap::new())
    }
}

impl<T> Pending<T> {
    /// `value` is now what `key` must be, due at `due` (or earlier, if it already was).
    fn upsert(&mut self, key: String, value: T, due: Instant) {
        let due = self.0.get(&key).map_or(due, |(_, d)| (*d).min(due));
        self.0.insert(key, (value, due));
    }

    /// When the first entry is due.
    fn next_due(&self) -> Option<Instant> {
        self.0.values().map(|(_, due)| *due).min()
    }

    /// Takes the entries due at `now` (every entry if `all`), in key order.
    fn take_due(&mut self, now: Instant, all: bool) -> Vec<T> {
        let due: Vec<String> = self
            .0
            .iter()
            .filter(|(_, (_, d))| all || *d <= now)
            .map(|(key, _)| key.clone())
            .collect();
        due.into_iter()
            .filter_map(|key| self.0.remove(&key).map(|(value, _)| value))
            .collect()
    }
}

/// CombinedStatus `namespace/name` (`key`) must not exist.
fn absent_combined(key: &str) -> DesiredCombined {
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    DesiredCombined {
        namespace: namespace.to_string(),
        name: name.to_string(),
        object: None,
    }
}

/// The CombinedStatus `combined` as the sink writes it.
fn present_combined(combined: &bindery_engine::collector::CombinedResult) -> DesiredCombined {
    DesiredCombined {
        namespace: combined.namespace().to_string(),
        name: combined.name(),
        object: Some(combined.to_json()),
    }
}

/// A StatusCollector's status as the sink writes it.
fn desired_collector(
    status: &bindery_engine::collector::CollectorStatus,
) -> DesiredCollectorStatus {
    DesiredCollectorStatus {
        name: status.name.clone(),
        observed_generation: status.observed_generation,
        errors: status.errors.clone(),
    }
}

#[cfg(test)]
mod tests;
