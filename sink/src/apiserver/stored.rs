//! What is stored: the sink's view of the Bindings on the server, kept by a watch on them
//! (a reflector that keeps only what the sink compares with), and what the sink wants
//! stored. A watch event that takes a Binding away from what the sink wants, while no
//! write of it is queued, is drift: another writer edited or deleted it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::dispatch::Shared;
use super::objects::{StoredBinding, is_managed};

/// One stored Binding as the sink knows it.
#[derive(Clone, Debug)]
pub(crate) struct StoredEntry {
    /// Its `spec` and `ownerReferences`, or `None` when unknown (after a failed write).
    pub(crate) content: Option<StoredBinding>,
    /// Its `resourceVersion` as a number, when it is one (etcd's are): orders what the
    /// watch says against what a write answered.
    pub(crate) resource_version: Option<u64>,
    /// Its controller owner reference is a BindingPolicy: Bindery may change or delete it.
    pub(crate) managed: bool,
    /// When the sink last learned of it.
    pub(crate) seen: Instant,
}

impl StoredEntry {
    /// The entry for a Binding the server returned (a write's answer, a watch event).
    pub(crate) fn from_object(obj: &DynamicObject) -> Self {
        StoredEntry {
            content: Some(StoredBinding::from_object(obj)),
            resource_version: numeric_rv(obj),
            managed: is_managed(obj),
            seen: Instant::now(),
        }
    }
}

/// Takes in what is stored under `key` (`None`: nothing), as a write answered or a watch
/// told, unless `stored` holds a version known to be newer (both numeric `resourceVersion`s,
/// `version` of an entry): then returns false and keeps that. The sink's views of the
/// stored Bindings and CombinedStatuses both keep their entries so.
pub(crate) fn record_newer<E>(
    stored: &mut HashMap<String, E>,
    key: &str,
    entry: Option<E>,
    version: impl Fn(&E) -> Option<u64>,
) -> bool {
    match entry {
        Some(new) => {
            let older =
                |old: &E| matches!((version(&new), version(old)), (Some(a), Some(b)) if a < b);
            if stored.get(key).is_some_and(older) {
                return false;
            }
            stored.insert(key.to_string(), new);
        }
        None => {
            stored.remove(key);
        }
    }
    true
}

fn numeric_rv(obj: &DynamicObject) -> Option<u64> {
    obj.metadata.resource_version.as_deref()?.parse().ok()
}

/// What the sink wants stored under one name: set when a write of it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// A Binding with this content.
    Present(StoredBinding),
    /// No Binding (its policy is gone).
    Absent,
}

/// A Binding another writer changed or deleted, to be written again once `delay` has
/// passed (more than zero when the other writer keeps at it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The Binding's name.
    pub name: String,
    /// How long to wait before writing it again (the fight backoff).
    pub delay: Duration,
}

/// What the sink tells its caller as it happens ([`SinkEvents`](super::SinkEvents)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkEvent {
    /// Another writer changed or deleted a Binding: submit it again.
    Drift(Drift),
    /// The problem to report in a policy's status about its Binding changed: it cannot
    /// be written (`Binding cannot be written: ...`), another writer keeps changing it,
    /// or (`None`) there is none any more.
    Problem {
        /// The Binding's (= its policy's) name.
        name: String,
        /// The problem now.
        problem: Option<String>,
    },
    /// Another writer changed or deleted a CombinedStatus: submit it again.
    CombinedDrift(super::combined::CombinedDrift),
    /// A returned status was written into a workload object, which is now at this
    /// `resourceVersion`: the update the watch brings for it is Bindery's own.
    StatusWritten {
        /// The object.
        object: bindery_engine::WorkloadRef,
        /// Its `resourceVersion` after the write.
        resource_version: String,
    },
}

/// Restores of one Binding within [`FIGHT_WINDOW`] that go without backoff.
pub(crate) const FREE_RESTORES: u32 = 3;
/// Drift of one Binding that comes after its last drift by more than this starts afresh.
pub(crate) const FIGHT_WINDOW: Duration = Duration::from_secs(60);
/// The longest fight backoff.
pub(crate) const MAX_FIGHT_BACKOFF: Duration = Duration::from_secs(300);

/// Drift of one Binding: how often, lately.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fight {
    pub(crate) restores: u32,
    pub(crate) last: Instant,
    pub(crate) delay: Duration,
}

impl Fight {
    /// Counts one more drift at `now` (after `previous`, if any) and picks the delay:
    /// none for the first [`FREE_RESTORES`], then 1 s doubling up to [`MAX_FIGHT_BACKOFF`].
    pub(crate) fn next(previous: Option<Fight>, now: Instant) -> Fight {
        let restores = match previous {
            Some(p) if now.saturating_duration_since(p.last) <= FIGHT_WINDOW + p.delay => {
                p.restores.saturating_add(1)
            }
            _ => 1,
        };
        let delay = match restores.checked_sub(FREE_RESTORES + 1) {
            None => Duration::ZERO,
            Some(n) => Duration::from_secs(1u64 << n.min(16)).min(MAX_FIGHT_BACKOFF),
        };
        Fight {
            restores,
            last: now,
            delay,
        }
    }

    /// True while this fight is reported in the policy's status: backoff has started and
    /// the last drift is recent.
    pub(crate) fn reported(&self, now: Instant) -> bool {
        self.restores > FREE_RESTORES && now <= self.reported_until()
    }

    /// Until when this fight is reported, if it ever is (a drift since starts again).
    pub(crate) fn reported_until(&self) -> Instant {
        self.last + FIGHT_WINDOW + self.delay
    }

    /// The status message of this fight.
    pub(crate) fn message(&self) -> String {
        format!(
            "the Binding is being changed by another writer: restored {} times in a row, \
             next restore after {}s",
            self.restores,
            self.delay.as_secs()
        )
    }
}

/// Watches the Bindings into `shared` until the task is aborted. `synced` is told once,
/// when the first list is complete (or why it failed, if it cannot be retried).
pub(crate) async fn watch(
    shared: Arc<Shared>,
    api: Api<DynamicObject>,
    synced: oneshot::Sender<Result<(), kube::Error>>,
) {
    let mut synced = Some(synced);
    // A relist in progress: what it listed so far, and when it began.
    let mut relist: Option<(HashMap<String, StoredEntry>, Instant)> = None;
    let stream = watcher::watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relist = Some((HashMap::new(), Instant::now())),
            Ok(Event::InitApply(obj)) => {
                if let (Some((listed, _)), Some(name)) =
                    (relist.as_mut(), obj.metadata.name.clone())
                {
                    listed.insert(name, StoredEntry::from_object(&obj));
                }
            }
            Ok(Event::InitDone) => {
                let (listed, began) = relist
                    .take()
                    .unwrap_or_else(|| (HashMap::new(), Instant::now()));
                debug!(bindings = listed.len(), "listed the stored Bindings");
                shared.relisted(listed, began);
                if let Some(tx) = synced.take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Ok(Event::Apply(obj)) => {
                if let Some(name) = obj.metadata.name.clone() {
                    shared.observed(&name, Some(StoredEntry::from_object(&obj)));
                }
            }
            Ok(Event::Delete(obj)) => {
                if let Some(name) = obj.metadata.name.clone() {
                    shared.observed(&name, None);
                }
            }
            Err(watcher::Error::InitialListFailed(source))
                if synced.is_some() && !super::error::is_retryable(&source) =>
            {
                let _ = synced.take().map(|tx| tx.send(Err(source)));
                return;
            }
            Err(e) => warn!(error = %e, "watching the Bindings (retrying with backoff)"),
        }
    }
    info!("the Binding watch ended");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_restores_are_free_then_backoff_doubles_up_to_a_bound() {
        let t0 = Instant::now();
        let mut fight = None;
        let mut delays = Vec::new();
        for i in 0..16u64 {
            let f = Fight::next(fight, t0 + Duration::from_secs(i));
            delays.push(f.delay.as_secs());
            fight = Some(f);
        }
        assert_eq!(&delays[..7], &[0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(*delays.last().unwrap(), MAX_FIGHT_BACKOFF.as_secs());
        assert!(fight.unwrap().reported(t0 + Duration::from_secs(16)));
    }

    #[test]
    fn a_fight_ends_when_the_other_writer_stops() {
        let t0 = Instant::now();
        let mut fight = None;
        for i in 0..5u64 {
            fight = Some(Fight::next(fight, t0 + Duration::from_secs(i)));
        }
        let f = fight.unwrap();
        assert!(f.reported(t0 + Duration::from_secs(5)));
        let later = t0 + Duration::from_secs(5) + FIGHT_WINDOW + f.delay;
        assert!(!f.reported(later));
        // The next drift after a quiet spell starts afresh, without backoff.
        assert_eq!(Fight::next(Some(f), later).delay, Duration::ZERO);
    }
}
