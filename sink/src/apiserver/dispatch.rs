//! The shared state of a running sink and its dispatcher task: takes coalesced work off
//! the queue and runs up to `concurrency` writes at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use super::objects::StoredBinding;
use super::queue::WorkQueue;
use super::stats::{Counters, SinkStats};
use super::status::StoredStatus;
use super::writer::Writer;
use super::{DesiredBinding, DesiredStatus};

/// What a queued write is about: a Binding or a policy's status, by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Binding(String),
    Status(String),
}

/// A queued write: the latest desired state.
#[derive(Clone, Debug)]
pub(crate) enum Job {
    Binding(DesiredBinding),
    /// A status, and the number of the Binding write of the same name it must follow
    /// (see [`BindingWrites`]).
    Status(DesiredStatus, Option<u64>),
}

impl Job {
    fn key(&self) -> Key {
        match self {
            Job::Binding(b) => Key::Binding(b.name.clone()),
            Job::Status(s, _) => Key::Status(s.policy.clone()),
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

/// What is known to be stored of a Binding. A name with no entry is known not to exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    /// It exists with this content.
    Known(StoredBinding),
    /// It may exist with any content (after a failed write, or [`Shared::forget`]).
    Unknown,
}

/// The mutable state, under one lock (held only briefly, never across an `await`).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) queue: WorkQueue<Key, Job>,
    pub(crate) stored: HashMap<String, Stored>,
    pub(crate) stored_at_start: Vec<String>,
    /// The last status known to be stored per policy (absent: unknown, read it first).
    pub(crate) statuses: HashMap<String, StoredStatus>,
    pub(crate) failed: HashMap<String, String>,
    pub(crate) binding_writes: HashMap<String, BindingWrites>,
    pub(crate) closed: bool,
}

impl State {
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

    /// Takes the next write that can start.
    fn pop(&mut self) -> Option<(Key, Job)> {
        let writes = &self.binding_writes;
        let next = self.queue.pop_ready(|_, job| match job {
            Job::Status(s, Some(after)) => {
                writes.get(&s.policy).is_some_and(|w| w.finished >= *after)
            }
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
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(concurrency: usize) -> Self {
        Shared {
            state: Mutex::default(),
            wake: Notify::new(),
            outstanding: watch::Sender::new(0),
            counters: Counters::default(),
            concurrency,
        }
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
        if let Job::Status(s, after) = &mut job {
            *after = state.status_after(&s.policy);
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

    pub(crate) fn forget(&self, name: &str) {
        let mut state = self.lock();
        state.stored.insert(name.to_string(), Stored::Unknown);
        state.statuses.remove(name);
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let (pending, in_flight) = {
            let state = self.lock();
            (state.queue.pending(), state.queue.in_flight())
        };
        self.counters.snapshot(pending, in_flight)
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
                if state.closed && state.queue.outstanding() == 0 {
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
