//! The sink's own counters, and their snapshot [`SinkStats`]. Finished writes are not
//! counted here: each is reported once, to the [`SinkObserver`](super::SinkObserver).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the sink's counters (totals since start, except the sizes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
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
}

/// The live counters behind [`SinkStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) retries: AtomicU64,
    pub(crate) drift: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

impl Counters {
    /// The counters now, with the queue sizes given.
    pub(crate) fn snapshot(&self, pending: usize, in_flight: usize) -> SinkStats {
        let get = |c: &AtomicU64| c.load(Relaxed);
        SinkStats {
            retries: get(&self.retries),
            drift: get(&self.drift),
            unmanaged_bindings: 0,
            pending,
            in_flight,
        }
    }
}
