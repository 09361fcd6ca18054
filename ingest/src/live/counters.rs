//! Events sent per resource: one atomic counter per watched resource, shared with
//! its watcher task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::watchlog::ResourceRef;

/// Counts of the events a live ingest has sent, per resource (synthetic `RESET` /
/// `SYNCED` included). Cloning shares the counts; counts of resources no longer
/// watched are kept.
#[derive(Clone, Debug, Default)]
pub struct EventCounters {
    inner: Arc<Mutex<BTreeMap<ResourceRef, Arc<AtomicU64>>>>,
}

impl EventCounters {
    /// No counts yet.
    pub fn new() -> EventCounters {
        EventCounters::default()
    }

    /// The counter of `resource` (created at zero), for a task to bump.
    pub(crate) fn counter(&self, resource: &ResourceRef) -> Arc<AtomicU64> {
        let mut map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(resource.clone()).or_default())
    }

    /// Adds one to the count of `resource`.
    pub(crate) fn bump(&self, resource: &ResourceRef) {
        self.counter(resource).fetch_add(1, Ordering::Relaxed);
    }

    /// The current counts, by resource.
    pub fn snapshot(&self) -> BTreeMap<ResourceRef, u64> {
        let map = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter()
            .map(|(r, c)| (r.clone(), c.load(Ordering::Relaxed)))
            .collect()
    }

    /// The number of events sent, over all resources.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watchlog::Space;

    #[test]
    fn counts_are_shared_and_kept() {
        let counters = EventCounters::new();
        let pods = ResourceRef::new(Space::Wds, "", "v1", "pods");
        let c = counters.counter(&pods);
        c.fetch_add(2, Ordering::Relaxed);
        counters.clone().bump(&pods);
        counters.bump(&ResourceRef::new(Space::Its, "x", "v1", "y"));
        assert_eq!(counters.snapshot()[&pods], 3);
        assert_eq!(counters.total(), 4);
    }
}
