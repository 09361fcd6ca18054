//! Counters of the sink's writes, and their snapshot [`SinkStats`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of the sink's counters (totals since start, except `pending`/`in_flight`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Bindings applied (created or changed).
    pub bindings_applied: u64,
    /// Binding writes skipped: the stored Binding already had the desired content (or,
    /// for a delete, no such Binding was stored).
    pub bindings_unchanged: u64,
    /// Bindings deleted (404 included).
    pub bindings_deleted: u64,
    /// Binding writes that failed permanently.
    pub bindings_failed: u64,
    /// Policy statuses written.
    pub statuses_applied: u64,
    /// Policy status writes skipped: the stored status was already the desired one.
    pub statuses_unchanged: u64,
    /// Policy status writes dropped because the policy is gone (404).
    pub statuses_dropped: u64,
    /// Policy status writes that failed permanently.
    pub statuses_failed: u64,
    /// Retries, over all requests (each retried attempt counts once).
    pub retries: u64,
    /// Managed Bindings found changed or deleted by another writer (each is restored).
    pub drift: u64,
    /// Stored Bindings that no BindingPolicy controls and no policy wants: left alone.
    pub unmanaged_bindings: usize,
    /// Writes waiting (coalesced: at most one per Binding and one per policy status).
    pub pending: usize,
    /// Writes in flight.
    pub in_flight: usize,
    /// Writes that reached the API server, whose latency is summed below.
    pub writes_timed: u64,
    /// Total latency of those writes: from the first attempt (rate-limit wait included) to
    /// the outcome, retries and backoff included.
    pub write_latency_total: Duration,
    /// The largest such latency.
    pub write_latency_max: Duration,
}

/// The live counters behind [`SinkStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) bindings_applied: AtomicU64,
    pub(crate) bindings_unchanged: AtomicU64,
    pub(crate) bindings_deleted: AtomicU64,
    pub(crate) bindings_failed: AtomicU64,
    pub(crate) statuses_applied: AtomicU64,
    pub(crate) statuses_unchanged: AtomicU64,
    pub(crate) statuses_dropped: AtomicU64,
    pub(crate) statuses_failed: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) drift: AtomicU64,
    writes_timed: AtomicU64,
    latency_total_ns: AtomicU64,
    latency_max_ns: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

impl Counters {
    /// Records the latency of one write.
    pub(crate) fn record_latency(&self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.writes_timed.fetch_add(1, Relaxed);
        self.latency_total_ns.fetch_add(ns, Relaxed);
        self.latency_max_ns.fetch_max(ns, Relaxed);
    }

    /// The counters now, with the queue sizes given.
    pub(crate) fn snapshot(&self, pending: usize, in_flight: usize) -> SinkStats {
        let get = |c: &AtomicU64| c.load(Relaxed);
        SinkStats {
            bindings_applied: get(&self.bindings_applied),
            bindings_unchanged: get(&self.bindings_unchanged),
            bindings_deleted: get(&self.bindings_deleted),
            bindings_failed: get(&self.bindings_failed),
            statuses_applied: get(&self.statuses_applied),
            statuses_unchanged: get(&self.statuses_unchanged),
            statuses_dropped: get(&self.statuses_dropped),
            statuses_failed: get(&self.statuses_failed),
            retries: get(&self.retries),
            drift: get(&self.drift),
            unmanaged_bindings: 0,
            pending,
            in_flight,
            writes_timed: get(&self.writes_timed),
            write_latency_total: Duration::from_nanos(get(&self.latency_total_ns)),
            write_latency_max: Duration::from_nanos(get(&self.latency_max_ns)),
        }
    }
}
