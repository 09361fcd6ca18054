//! The core loop shared by replay and live mode: watch events through the relist
//! tracker and the feed into the engine. Nothing is published before every watched
//! resource has synced once (a complete view); from then on epochs close whenever
//! their caller likes, and a resource that relists (or is new, or failing) holds back
//! only its own objects' changes until its `SYNCED` (the loader's relist tracker), so every
//! published epoch is computed from a consistent view.

use std::time::{Duration, Instant};

use bindery_engine::{Engine, EpochOutput};
use bindery_ingest::{ResourceRef, WatchEvent};

use crate::input::loader::{LoadError, Loader, View};
use crate::observe::metrics::Metrics;

/// Watch events in, Binding changes out.
pub struct Pipeline {
    loader: Loader<Engine>,
    pending: u64,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new()
    }
}

impl Pipeline {
    /// A pipeline with an empty engine on one timely worker.
    pub fn new() -> Pipeline {
        Pipeline::with_workers(1)
    }

    /// A pipeline with an empty engine whose dataflow runs on `workers` timely workers
    /// (at least one; [`Engine::with_workers`]). Its output does not depend on how many.
    pub fn with_workers(workers: usize) -> Pipeline {
        Pipeline::with_engine(Engine::with_workers(workers))
    }

    /// A pipeline feeding `engine` (empty: nothing applied yet), e.g. process 0's engine
    /// of a timely cluster ([`crate::input::topology::Topology::pipeline`]).
    pub fn with_engine(engine: Engine) -> Pipeline {
        Pipeline {
            loader: Loader::new(engine),
            pending: 0,
        }
    }

    /// Applies one watch event to the open epoch (`Loader::push`: on an error, nothing
    /// is applied).
    pub fn push(&mut self, event: WatchEvent) -> Result<(), LoadError> {
        self.loader.push(event)?;
        self.pending += 1;
        Ok(())
    }

    /// True once every watched resource has synced at once: an epoch closed now is
    /// publishable (it holds each resource at its last synced state or later; a
    /// relist in progress is applied at its `SYNCED`). Before, the view is partial.
    pub fn publishable(&self) -> bool {
        self.loader.complete()
    }

    /// True when every watched resource is synced now (no initial list or relist in
    /// progress).
    pub fn all_synced(&self) -> bool {
        self.loader.tracker().all_synced()
    }

    /// Where the state stands (the verdict on a log's end: `View::judge`).
    pub fn view(&self) -> View {
        self.loader.view()
    }

    /// Whether the changes of `resource`'s objects are held back now (a relist of it
    /// is in progress, or it is new, and a view was published).
    pub fn holds(&self, resource: &ResourceRef) -> bool {
        self.loader.holds(resource)
    }

    /// Whether `resource` was seen in at least one event.
    pub fn knows(&self, resource: &ResourceRef) -> bool {
        self.loader.knows(resource)
    }

    /// Changes held back by relists in progress (applied at their `SYNCED`).
    pub fn held_changes(&self) -> usize {
        self.loader.tracker().held_count()
    }

    /// Events pushed since the last closed epoch (held back or not).
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Whether a log's event at `ts` starts a new epoch, the open one (its first event
    /// at `epoch_start`) closing before it: when `ts` lies more than `window_ms` after
    /// that first event, and the open epoch is publishable and holds events. The rule
    /// `replay` and `history` share, so their epochs (and numbers) are the same.
    pub fn closes_before(&self, epoch_start: Option<i64>, ts: i64, window_ms: i64) -> bool {
        epoch_start.is_some_and(|start| ts > start.saturating_add(window_ms))
            && self.publishable()
            && self.pending > 0
    }

    /// The watched resources that have not synced (their initial list or a relist is
    /// in progress), named for messages.
    pub fn unsynced(&self) -> Vec<String> {
        self.loader.tracker().unsynced_names()
    }

    /// Whether WorkStatuses are watched and their list has completed once: until then,
    /// what the engine reports for the workload objects is computed without the WECs'
    /// reports, and nothing of it may be written (KubeStellar's status controller too
    /// waits for the ITS to serve WorkStatuses).
    pub fn work_statuses_synced(&self) -> bool {
        self.loader
            .tracker()
            .has_synced(|r| bindery_ingest::classify(r) == bindery_ingest::ObjectKind::WorkStatus)
    }

    /// How many watched resources have synced, of how many.
    pub fn synced_of(&self) -> (usize, usize) {
        let tracker = self.loader.tracker();
        (tracker.synced_count(), tracker.resource_count())
    }

    /// Closes the open epoch and returns its Binding changes, inside an `epoch` span
    /// (its number, the events it took, the Bindings it changed) that ends with a debug
    /// event.
    pub fn close_epoch(&mut self) -> EpochOutput {
        let events = std::mem::take(&mut self.pending);
        let span = tracing::debug_span!(
            "epoch",
            number = self.engine().epoch() + 1,
            events,
            changes = tracing::field::Empty
        );
        let _entered = span.enter();
        let output = self.loader.target_mut().advance();
        span.record("changes", output.changes.len());
        tracing::debug!("epoch closed");
        output
    }

    /// The loader feeding the engine, to apply events outside of the epoch count (a
    /// dry-run policy).
    pub fn loader_mut(&mut self) -> &mut Loader<Engine> {
        &mut self.loader
    }

    /// The engine, for reading Bindings and sizes.
    pub fn engine(&self) -> &Engine {
        self.loader.target()
    }
}

/// How long resources may stay unsynced before [`SyncReporter`] names them (and again
/// each time this passes while they do).
pub const SYNC_REPORT_AFTER: Duration = Duration::from_secs(60);

/// Names the resources that keep changes waiting. Before the first publish, every
/// resource that has not synced holds back every Binding; after it, a relisting
/// resource holds back its own objects' changes. Once the wait has lasted `after`, the
/// unsynced resources are logged by name, and again every `after` while it lasts.
#[derive(Debug)]
pub struct SyncReporter {
    after: Duration,
    /// Since when the pipeline has been waiting, and when to log next.
    waiting: Option<(Instant, Instant)>,
}

impl SyncReporter {
    /// A reporter started now (before the first publish, the wait starts now: no
    /// resource may be known yet).
    pub fn new(after: Duration, now: Instant) -> SyncReporter {
        SyncReporter {
            after,
            waiting: Some((now, now + after)),
        }
    }

    /// Looks at `pipeline` at `now`: sets the sync gauges of `metrics`, and logs the
    /// unsynced resources when due. Returns what it logged, if anything.
    pub fn check(
        &mut self,
        pipeline: &Pipeline,
        now: Instant,
        metrics: Option<&Metrics>,
    ) -> Option<SyncReport> {
        let (synced, known) = pipeline.synced_of();
        if let Some(m) = metrics {
            m.sync_state(known - synced, pipeline.held_changes());
        }
        let waiting = !pipeline.publishable() || synced < known;
        if !waiting {
            self.waiting = None;
            return None;
        }
        let (since, next) = self.waiting.get_or_insert((now, now + self.after));
        if now < *next {
            return None;
        }
        *next = now + self.after;
        let report = SyncReport {
            published: pipeline.publishable(),
            waiting_secs: now.duration_since(*since).as_secs(),
            unsynced: pipeline.unsynced(),
            watched: known,
            held_changes: pipeline.held_changes(),
        };
        let resources = report.unsynced.join(", ");
        let fields = (report.waiting_secs, report.unsynced.len(), report.watched);
        if report.published {
            tracing::warn!(
                waiting_secs = fields.0,
                unsynced = fields.1,
                watched = fields.2,
                held_changes = report.held_changes,
                resources,
                "watched resources not synced: their objects' changes are held back until they sync"
            );
        } else {
            tracing::warn!(
                waiting_secs = fields.0,
                unsynced = fields.1,
                watched = fields.2,
                resources,
                "no Bindings published yet: watched resources have not synced (none named: no watch event received yet)"
            );
        }
        Some(report)
    }
}

/// What [`SyncReporter::check`] logged: resources that keep changes waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// A view was published (the wait holds back only the unsynced resources' objects);
    /// else nothing is published yet.
    pub published: bool,
    /// How long the wait has lasted.
    pub waiting_secs: u64,
    /// The resources not synced, named.
    pub unsynced: Vec<String>,
    /// The resources watched.
    pub watched: usize,
    /// The changes held back.
    pub held_changes: usize,
}

#[cfg(test)]
mod tests {
    use bindery_ingest::{EventType, Space};

    use super::*;
    use crate::observe::metrics::MetricsOptions;

    fn marker(resource: &ResourceRef, event_type: EventType) -> WatchEvent {
        WatchEvent {
            ts: 0,
            resource: resource.clone(),
            event_type,
            object: None,
        }
    }

    #[test]
    fn the_sync_reporter_names_unsynced_resources_after_the_timeout_and_again_periodically() {
        let wecs = ResourceRef::new(
            Space::Its,
            "cluster.open-cluster-management.io",
            "v1",
            "managedclusters",
        );
        let cms = ResourceRef::new(Space::Wds, "", "v1", "configmaps");
        let metrics = Metrics::new(MetricsOptions { per_policy: false });
        let mut p = Pipeline::new();
        let t0 = Instant::now();
        let after = Duration::from_secs(60);
        let mut r = SyncReporter::new(after, t0);
        let secs = |s| t0 + Duration::from_secs(s);
        assert_eq!(r.check(&p, secs(59), Some(&metrics)), None);
        let report = r.check(&p, secs(60), Some(&metrics)).unwrap();
        assert_eq!((report.published, report.watched), (false, 0));
        p.push(marker(&wecs, EventType::Reset)).unwrap();
        p.push(marker(&cms, EventType::Reset)).unwrap();
        p.push(marker(&wecs, EventType::Synced)).unwrap();
        assert_eq!(r.check(&p, secs(119), Some(&metrics)), None);
        let report = r.check(&p, secs(120), Some(&metrics)).unwrap();
        assert_eq!(
            report,
            SyncReport {
                published: false,
                waiting_secs: 120,
                unsynced: vec!["wds:v1/configmaps".into()],
                watched: 2,
                held_changes: 0,
            }
        );
        assert!(metrics.encode().contains("bindery_unsynced_resources 1\n"));
        assert_eq!(r.check(&p, secs(179), Some(&metrics)), None);
        let again = r.check(&p, secs(180), Some(&metrics)).unwrap();
        assert_eq!((again.published, again.waiting_secs), (false, 180));
        p.push(marker(&cms, EventType::Synced)).unwrap();
        assert_eq!(r.check(&p, secs(500), Some(&metrics)), None);
        assert!(metrics.encode().contains("bindery_unsynced_resources 0\n"));
        // After the first publish, a relist is named once it has lasted the timeout.
        p.push(marker(&cms, EventType::Reset)).unwrap();
        assert_eq!(r.check(&p, secs(501), Some(&metrics)), None);
        assert_eq!(r.check(&p, secs(560), Some(&metrics)), None);
        let report = r.check(&p, secs(561), Some(&metrics)).unwrap();
        assert_eq!(
            report,
            SyncReport {
                published: true,
                waiting_secs: 60,
                unsynced: vec!["wds:v1/configmaps".into()],
                watched: 2,
                held_changes: 0,
            }
        );
        assert!(metrics.encode().contains("bindery_held_changes 0\n"));
    }
}
