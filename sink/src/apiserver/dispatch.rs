//! The shared state of a running sink and its dispatcher task: takes coalesced work off
//! the queue and runs up to `concurrency` writes at once.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::combined::{CombinedState, DesiredCollectorStatus, DesiredCombined};
use super::queue::WorkQueue;
use super::stats::{Counters, SinkStats, bump};
use super::status::StoredStatus;
use super::stored::{Drift, Fight, SinkEvent, StoredEntry, Wanted};
use super::writer::Writer;
use super::{DesiredBinding, DesiredReport, DesiredStatus};
use bindery_engine::reported::Report;

/// What a queued write is about: a Binding or a policy's status, by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Binding(String),
    Status(String),
    Finalizer(String),
    /// A workload object's returned status (`DesiredReport::key`).
    Report(String),
    /// A CombinedStatus (`DesiredCombined::key`).
    Combined(String),
    /// A StatusCollector's status, by the collector's name.
    CollectorStatus(String),
}

/// A queued write: the latest desired state.
#[derive(Clone, Debug)]
pub(crate) enum Job {
    Binding(DesiredBinding),
    /// A status, and the number of the Binding write of the same name it must follow
    /// (see [`BindingWrites`]).
    Status(DesiredStatus, Option<u64>),
    /// Removing KubeStellar's finalizer from a policy being deleted, after the Binding
    /// write of the same name it must follow.
    Finalizer(String, Option<u64>),
    /// A workload object's returned status.
    Report(DesiredReport),
    /// A CombinedStatus.
    Combined(DesiredCombined),
    /// A StatusCollector's status.
    CollectorStatus(DesiredCollectorStatus),
}

impl Job {
    fn key(&self) -> Key {
        match self {
            Job::Binding(b) => Key::Binding(b.name.clone()),
            Job::Status(s, _) => Key::Status(s.policy.clone()),
            Job::Finalizer(name, _) => Key::Finalizer(name.clone()),
            Job::Report(r) => Key::Report(r.key()),
            Job::Combined(c) => Key::Combined(c.key()),
            Job::CollectorStatus(c) => Key::CollectorStatus(c.name.clone()),
        }
    }

    /// The Binding write this job must follow: (its name, its number, once submitted).
    fn follows(&self) -> Option<(&str, Option<u64>)> {
        match self {
            Job::Status(s, after) => Some((&s.policy, *after)),
            Job::Finalizer(name, after) => Some((name, *after)),
            Job::Binding(_) | Job::Report(_) | Job::Combined(_) | Job::CollectorStatus(_) => None,
        }
    }

    /// [`follows`](Self::follows), to set the number at submission.
    fn after(&mut self) -> Option<(&str, &mut Option<u64>)> {
        match self {
            Job::Status(s, after) => Some((&s.policy, after)),
            Job::Finalizer(name, after) => Some((name, after)),
            Job::Binding(_) | Job::Report(_) | Job::Combined(_) | Job::CollectorStatus(_) => None,
        }
    }
}

/// Binding writes of one name, numbered from 1 as they start. They run one at a time, so
/// `finished >= n` means write `n` is done. A policy's status waits for the Binding write
/// that was pending (or else in flight) when the status was submitted: the status
/// describes that Binding, so it must not be seen before it. Only that write: a status is
/// never starved by later Binding changes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BindingWrites {
    started: u64,
    finished: u64,
}

/// The mutable state, under one lock (held only briefly, never across an `await`).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) queue: WorkQueue<Key, Job>,
    /// The stored Bindings, as the watch and the writes' answers tell. A name with no
    /// entry is known not to exist.
    pub(crate) stored: HashMap<String, StoredEntry>,
    /// What the sink last set out to store, per Binding it was asked about.
    pub(crate) wanted: HashMap<String, Wanted>,
    /// Bindings another writer keeps changing.
    pub(crate) fights: HashMap<String, Fight>,
    /// Bindings whose drift was reported and whose restore has not been submitted yet:
    /// further changes by the other writer meanwhile are the same fight round, not new
    /// restores (so they neither count nor lengthen the backoff).
    pub(crate) restoring: HashSet<String>,
    /// Unmanaged Bindings already logged as left alone.
    pub(crate) unmanaged_logged: HashSet<String>,
    /// Log unmanaged Bindings as they appear (the caller has taken the stored ones).
    report_unmanaged: bool,
    /// The last status known to be stored per policy (absent: unknown, read it first).
    pub(crate) statuses: HashMap<String, StoredStatus>,
    pub(crate) failed: HashMap<String, String>,
    /// The problems last told to the caller ([`SinkEvent::Problem`]), by Binding.
    told_problems: HashMap<String, String>,
    pub(crate) binding_writes: HashMap<String, BindingWrites>,
    /// What this sink last wrote into each workload object (by `DesiredReport::key`),
    /// so an unchanged report is not written again. Forgotten on a leadership change.
    pub(crate) reports: HashMap<String, Report>,
    /// Resources (`group/resource`) found without a `status` subresource: their
    /// returned status goes straight to the main resource. A fact about the server,
    /// kept across leadership changes; dropped when a write shows the resource has
    /// gained the subresource.
    pub(crate) status_in_main: HashSet<String>,
    /// The stored CombinedStatuses, what the sink wants of them, and the
    /// StatusCollector statuses it wrote.
    pub(crate) combined: CombinedState,
    pub(crate) closed: bool,
    /// This sink may write (it holds the leader lease, or there is no election): while
    /// false, submissions are dropped, nothing is dispatched, and drift is not reported.
    pub(crate) leading: bool,
}

impl State {
    /// The problem to report in the status of policy `name` at `now`: its Binding cannot
    /// be written, or (else) another writer keeps changing it.
    fn problem(&self, name: &str, now: Instant) -> Option<String> {
        if let Some(err) = self.failed.get(name) {
            return Some(format!("Binding cannot be written: {err}"));
        }
        self.fights
            .get(name)
            .filter(|f| f.reported(now))
            .map(Fight::message)
    }

    /// The Binding write a status for `name` submitted now must follow.
    fn status_after(&self, name: &str) -> Option<u64> {
        let key = Key::Binding(name.to_string());
        let started = self.binding_writes.get(name).map_or(0, |w| w.started);
        if self.queue.is_pending(&key) {
            Some(started + 1)
        } else if self.queue.is_in_flight(&key) {
            Some(started)
        } else {
            None
        }
    }

    /// Takes the next write that can start (none while not leading).
    fn pop(&mut self) -> Option<(Key, Job)> {
        if !self.leading {
            return None;
        }
        let writes = &self.binding_writes;
        let next = self.queue.pop_ready(|_, job| match job.follows() {
            Some((name, Some(after))) => writes.get(name).is_some_and(|w| w.finished >= after),
            _ => true,
        });
        if let Some((Key::Binding(name), _)) = &next {
            self.binding_writes.entry(name.clone()).or_default().started += 1;
        }
        next
    }

    /// Marks a write done.
    fn done(&mut self, key: &Key) {
        self.queue.done(key);
        if let Key::Binding(name) = key {
            if let Some(w) = self.binding_writes.get_mut(name) {
                w.finished += 1;
            }
            self.queue.unpark(&Key::Status(name.clone()));
            self.queue.unpark(&Key::Finalizer(name.clone()));
        }
    }

    /// Takes in what is stored under `name` (`None`: nothing), as a write answered or the
    /// watch told, unless a newer version is known: then returns false and keeps that.
    pub(crate) fn record(&mut self, name: &str, entry: Option<StoredEntry>) -> bool {
        super::stored::record_newer(&mut self.stored, name, entry, |e| e.resource_version)
    }

    /// After a failed write: Binding `name` may exist with any content.
    pub(crate) fn unknown(&mut self, name: &str) {
        let entry = self.stored.entry(name.to_string()).or_insert(StoredEntry {
            content: None,
            resource_version: None,
            managed: true,
            seen: Instant::now(),
        });
        entry.content = None;
        entry.seen = Instant::now();
    }

    /// True when a write of Binding `name` is queued or in flight.
    fn writing(&self, name: &str) -> bool {
        let key = Key::Binding(name.to_string());
        self.queue.is_pending(&key) || self.queue.is_in_flight(&key)
    }

    /// Takes in what the watch says is stored under `name` now (`None`: nothing), unless
    /// the sink knows of a newer version. Returns the drift it makes, if any.
    fn observe(&mut self, name: &str, entry: Option<StoredEntry>) -> Option<Drift> {
        if entry.is_none() && !self.stored.contains_key(name) {
            return None;
        }
        let managed = entry.as_ref().is_some_and(|e| e.managed);
        let content = entry.as_ref().and_then(|e| e.content);
        if !self.record(name, entry) {
            return None;
        }
        let drifted = match self.wanted.get(name) {
            Some(Wanted::Present(want)) => content != Some(*want),
            Some(Wanted::Absent) => content.is_some() && managed,
            None => false,
        };
        if content.is_some() && !managed {
            self.note_unmanaged(name);
        }
        // A follower's view follows the leader's writes: none of them is drift. A change
        // while a restore is already due is part of the same round.
        if !drifted || !self.leading || self.writing(name) || self.restoring.contains(name) {
            return None;
        }
        self.restoring.insert(name.to_string());
        let now = Instant::now();
        let fight = Fight::next(self.fights.get(name).copied(), now);
        self.fights.insert(name.to_string(), fight);
        Some(Drift {
            name: name.to_string(),
            delay: fight.delay,
        })
    }

    /// Logs, once per name and only after [`Shared::stored_bindings`] (before, nothing is
    /// wanted yet), that an unmanaged Binding no policy wants is left alone.
    fn note_unmanaged(&mut self, name: &str) {
        if !self.report_unmanaged || matches!(self.wanted.get(name), Some(Wanted::Present(_))) {
            return;
        }
        if self.unmanaged_logged.insert(name.to_string()) {
            tracing::info!(
                binding = name,
                "Binding not managed by a BindingPolicy (no controller owner reference to one): left alone"
            );
        }
    }
}

/// What the handles, the dispatcher and the writes share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the dispatcher: work queued, a write done, or closed.
    wake: Notify,
    /// Pending plus in-flight writes; `flush` waits for 0.
    outstanding: watch::Sender<usize>,
    pub(crate) counters: Counters,
    concurrency: usize,
    /// Where drift and problems are told.
    events: mpsc::UnboundedSender<SinkEvent>,
    /// [`State::leading`], for those who follow it (the engine loop).
    leading_tx: watch::Sender<bool>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        concurrency: usize,
        events: mpsc::UnboundedSender<SinkEvent>,
        leading: bool,
    ) -> Self {
        Shared {
            state: Mutex::new(State {
                leading,
                ..State::default()
            }),
            wake: Notify::new(),
            outstanding: watch::Sender::new(0),
            counters: Counters::default(),
            concurrency,
            events,
            leading_tx: watch::Sender::new(leading),
        }
    }

    /// True while this sink may write.
    pub(crate) fn is_leading(&self) -> bool {
        self.lock().leading
    }

    /// Follows [`State::leading`]: true once the sink writes, false once it stopped.
    pub(crate) fn leading(&self) -> watch::Receiver<bool> {
        self.leading_tx.subscribe()
    }

    /// Starts or stops writing. Stopping drops every write not yet started (writes in
    /// flight make no further attempt); either way what the sink set out to store and its
    /// fights are forgotten: the other writer in between was the leader, not drift.
    pub(crate) fn set_leading(&self, leading: bool) {
        let mut state = self.lock();
        if state.leading == leading {
            return;
        }
        state.leading = leading;
        state.wanted.clear();
        state.fights.clear();
        state.reports.clear();
        state.combined.forget();
        if !leading {
            let dropped = state.queue.clear_pending();
            if dropped > 0 {
                tracing::info!(dropped, "no longer the leader: queued writes dropped");
            }
        }
        self.publish(&state);
        let told: Vec<String> = state.told_problems.keys().cloned().collect();
        drop(state);
        // Fights are forgotten: the problems they were may be gone.
        for name in told {
            self.tell_problem(&name);
        }
        self.leading_tx.send_replace(leading);
        self.wake.notify_one();
    }

    /// The state, locked. A panic while it was held cannot leave it inconsistent in a
    /// way worse than losing that one write, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, state: &State) {
        self.outstanding.send_if_modified(|n| {
            let now = state.queue.outstanding();
            std::mem::replace(n, now) != now
        });
    }

    pub(crate) fn submit(&self, mut job: Job) {
        let mut state = self.lock();
        if state.closed {
            tracing::warn!(key = ?job.key(), "sink is shut down: write dropped");
            return;
        }
        if !state.leading {
            tracing::trace!(key = ?job.key(), "not the leader: write dropped");
            return;
        }
        if let Some((name, after)) = job.after() {
            *after = state.status_after(name);
        }
        match &job {
            Job::Binding(b) => {
                state.restoring.remove(&b.name);
            }
            Job::Combined(c) => state.combined_submitted(&c.key()),
            _ => {}
        }
        let key = job.key();
        if let (Job::Binding(new), Some(Job::Binding(old))) = (&mut job, state.queue.peek(&key)) {
            // The replaced write's changes are carried by this one: keep the oldest.
            new.changed_at = match (new.changed_at, old.changed_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if state.queue.push(key.clone(), job) {
            tracing::trace!(?key, "coalesced with a pending write");
        }
        self.publish(&state);
        drop(state);
        self.wake.notify_one();
    }

    /// Takes in a complete list of the stored Bindings (begun at `began`): entries the
    /// list lacks are gone, unless a write told of them after the list began.
    pub(crate) fn relisted(self: &Arc<Self>, listed: HashMap<String, StoredEntry>, began: Instant) {
        let mut state = self.lock();
        let vanished: Vec<String> = state
            .stored
            .iter()
            .filter(|(name, e)| !listed.contains_key(*name) && e.seen < began)
            .map(|(name, _)| name.clone())
            .collect();
        let mut drifts = Vec::new();
        for name in vanished {
            drifts.extend(state.observe(&name, None));
        }
        for (name, entry) in listed {
            drifts.extend(state.observe(&name, Some(entry)));
        }
        drop(state);
        for drift in drifts {
            self.drifted(drift);
        }
    }

    /// Takes in one watch event: Binding `name` is now `entry` (`None`: deleted).
    pub(crate) fn observed(self: &Arc<Self>, name: &str, entry: Option<StoredEntry>) {
        let drift = self.lock().observe(name, entry);
        if let Some(drift) = drift {
            self.drifted(drift);
        }
    }

    fn drifted(self: &Arc<Self>, drift: Drift) {
        bump(&self.counters.drift);
        tracing::warn!(
            binding = %drift.name,
            restore_in = ?drift.delay,
            "Binding changed or deleted by another writer: restoring it"
        );
        let name = drift.name.clone();
        // The receiver may be gone at shutdown: nothing left to restore then.
        let _ = self.events.send(SinkEvent::Drift(drift));
        self.tell_problem(&name);
        // A fight reported stops being reported some time after its last drift: tell
        // that then (a drift meanwhile makes this a no-op).
        let until = self.lock().fights.get(&name).map(Fight::reported_until);
        if let Some(until) = until {
            let shared = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep_until(until + Duration::from_millis(1)).await;
                if let Some(shared) = shared.upgrade() {
                    shared.tell_problem(&name);
                }
            });
        }
    }

    /// Tells the caller `event` (dropped if the caller is gone, as at shutdown).
    pub(crate) fn tell(&self, event: SinkEvent) {
        let _ = self.events.send(event);
    }

    /// Tells the caller the problem of Binding `name` if it changed since last told
    /// ([`SinkEvent::Problem`]). Called wherever it may have changed: a write failed or
    /// succeeded, a drift, a fight's report ending, leadership changing.
    pub(crate) fn tell_problem(&self, name: &str) {
        let mut state = self.lock();
        let problem = state.problem(name, Instant::now());
        let changed = match &problem {
            Some(p) => {
                state
                    .told_problems
                    .insert(name.to_string(), p.clone())
                    .as_ref()
                    != Some(p)
            }
            None => state.told_problems.remove(name).is_some(),
        };
        drop(state);
        if changed {
            let _ = self.events.send(SinkEvent::Problem {
                name: name.to_string(),
                problem,
            });
        }
    }

    /// The stored Bindings now, by name, each with whether it is managed (its controller
    /// is a BindingPolicy); from now on, unmanaged Bindings are logged as they appear.
    pub(crate) fn stored_bindings(&self) -> Vec<(String, bool)> {
        let mut state = self.lock();
        state.report_unmanaged = true;
        let mut out: Vec<(String, bool)> = state
            .stored
            .iter()
            .map(|(name, e)| (name.clone(), e.managed))
            .collect();
        for (name, managed) in &out {
            if !managed {
                state.unmanaged_logged.insert(name.clone());
            }
        }
        out.sort_unstable();
        out
    }

    /// Problems to report in policies' statuses: Bindings that cannot be written, and
    /// Bindings another writer keeps changing; name → message.
    pub(crate) fn problems(&self) -> HashMap<String, String> {
        let state = self.lock();
        let now = Instant::now();
        state
            .failed
            .keys()
            .chain(state.fights.keys())
            .filter_map(|name| Some((name.clone(), state.problem(name, now)?)))
            .collect()
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let (pending, in_flight, unmanaged) = {
            let state = self.lock();
            let unmanaged = state
                .stored
                .iter()
                .filter(|(name, e)| {
                    !e.managed && !matches!(state.wanted.get(*name), Some(Wanted::Present(_)))
                })
                .count();
            (state.queue.pending(), state.queue.in_flight(), unmanaged)
        };
        let mut stats = self.counters.snapshot(pending, in_flight);
        stats.unmanaged_bindings = unmanaged;
        stats
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    pub(crate) async fn wait_idle(&self) {
        let mut rx = self.outstanding.subscribe();
        // The sender lives as long as `self`: this cannot fail while we borrow it.
        let _ = rx.wait_for(|&n| n == 0).await;
    }

    /// The next write to start, waiting for one; `None` once closed with nothing left.
    async fn next(&self) -> Option<(Key, Job)> {
        loop {
            {
                let mut state = self.lock();
                if let Some(next) = state.pop() {
                    self.publish(&state);
                    return Some(next);
                }
                // A follower has nothing pending: it stops at once.
                if state.closed && (state.queue.outstanding() == 0 || !state.leading) {
                    return None;
                }
            }
            // `notify_one` keeps a permit when nobody waits: no wake-up is lost between
            // the check above and this wait.
            self.wake.notified().await;
        }
    }

    fn done(&self, key: &Key) {
        let mut state = self.lock();
        state.done(key);
        self.publish(&state);
        drop(state);
        self.wake.notify_one();
    }
}

/// Closes the sink when the last [`SinkHandle`](super::SinkHandle) clone goes.
#[derive(Debug)]
pub(crate) struct Closer(pub(crate) Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Marks a write done even if it panics, so `flush` cannot hang on it.
struct DoneGuard {
    shared: Arc<Shared>,
    key: Key,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.shared.done(&self.key);
    }
}

/// The dispatcher: runs until closed and drained.
pub(crate) async fn run(shared: Arc<Shared>, writer: Arc<Writer>) {
    let slots = Arc::new(Semaphore::new(shared.concurrency));
    let mut writes = JoinSet::new();
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        while let Some(done) = writes.try_join_next() {
            report_panic(done);
        }
        let Some((key, job)) = shared.next().await else {
            break;
        };
        let guard = DoneGuard {
            shared: shared.clone(),
            key,
        };
        let writer = writer.clone();
        writes.spawn(async move {
            let _slot = slot;
            let _guard = guard;
            writer.write(job).await;
        });
    }
    while let Some(done) = writes.join_next().await {
        report_panic(done);
    }
    tracing::debug!("API-server sink stopped");
}

fn report_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a sink write panicked");
    }
}
