//! Bindery's Prometheus metrics ([`Metrics`]), and the plain tallies the dashboard reads
//! from the same updates ([`Tick`]).
//!
//! Every figure is updated in one place, by the engine loop (watch events, epochs, Binding
//! changes) or by the sink's observer (writes), so `/metrics` and `/dashboard` count the
//! same things. The families are registered per area, each in a module of its own:
//! [`watch`] (watch events, sync state), [`engine`] (`bindery_engine_*`), [`bindings`]
//! (Binding changes and sizes), [`sink`] (`bindery_sink_*` and the write path), [`process`]
//! (leading, Events on policies, `bindery_process_*`). Names follow the Prometheus
//! conventions (the `bindery_` prefix, `_total` for counters, seconds and bytes) and are
//! a contract: the dashboard and the Grafana dashboard read them, and a test lists every
//! family.

mod bindings;
mod engine;
mod process;
mod sink;
mod status;
mod watch;

pub use process::PolicyEventResult;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use bindery_engine::EpochOutput;
use bindery_engine::engine::Sizes;
use bindery_ingest::{ResourceRef, Space, WatchEvent};
use bindery_sink::{SinkHandle, SinkObserver, WriteObject, WriteReport, WriteResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;

use crate::runtime::policy_events::Reason;
use bindings::BindingMetrics;
use engine::EngineMetrics;
use process::ProcessMetrics;
use sink::SinkMetrics;
use watch::{EventLabels, ResourceLabel, SpaceLabel, TypeLabel, WatchMetrics};

/// Latency observations kept per dashboard tick (beyond that, the tick's quantiles are
/// computed from the first ones).
const TICK_LATENCIES: usize = 100_000;

type FloatGauge = Gauge<f64, AtomicU64>;

/// A counter registered as `name` (`_total` added) in `r`.
fn counter(r: &mut Registry, name: &str, help: &str) -> Counter {
    let metric = Counter::default();
    r.register(name, help, metric.clone());
    metric
}

/// A gauge registered as `name` in `r`.
fn gauge(r: &mut Registry, name: &str, help: &str) -> Gauge {
    let metric = Gauge::default();
    r.register(name, help, metric.clone());
    metric
}

/// A family of counters registered as `name` (`_total` added) in `r`.
fn family<L>(r: &mut Registry, name: &str, help: &str) -> Family<L, Counter>
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let metric = Family::<L, Counter>::default();
    r.register(name, help, metric.clone());
    metric
}

/// A histogram of seconds registered as `name` (`_seconds` added) in `r`.
fn histogram(
    r: &mut Registry,
    name: &str,
    help: &str,
    buckets: impl Iterator<Item = f64>,
) -> Histogram {
    let metric = Histogram::new(buckets);
    r.register_with_unit(name, help, Unit::Seconds, metric.clone());
    metric
}

/// Buckets for latencies: 0.5 ms to about 65 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_5, 2.0, 18)
}

fn gauge_value(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Cumulative totals, as the dashboard shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Watch events received (or read from the log).
    pub events: u64,
    /// Binding changes emitted by the engine (one per Binding per epoch it changed in).
    pub binding_changes: u64,
    /// Binding entries (workload objects and destinations) added.
    pub entries_added: u64,
    /// Binding entries removed.
    pub entries_removed: u64,
    /// Writes that reached the API server and changed something (applied or deleted).
    pub sink_writes: u64,
    /// Writes that failed permanently.
    pub sink_errors: u64,
    /// Epochs closed.
    pub epochs: u64,
    /// Event-to-Binding latencies observed.
    pub latency_count: u64,
}

/// Current sizes, as the dashboard shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SizeFigures {
    /// WECs.
    pub wecs: u64,
    /// Workload objects.
    pub objects: u64,
    /// BindingPolicies (each has one Binding).
    pub policies: u64,
    /// Bindings.
    pub bindings: u64,
    /// Workload entries over all Bindings.
    pub binding_entries: u64,
    /// Destinations over all Bindings.
    pub destinations: u64,
    /// WorkStatuses of this WDS.
    pub work_statuses: u64,
    /// Workload objects a status is returned into (or cleared).
    pub returned_statuses: u64,
    /// CombinedStatuses computed.
    pub combined_statuses: u64,
    /// StatusCollectors whose spec has errors.
    pub invalid_collectors: u64,
}

/// What happened since the previous [`Metrics::take_tick`], plus the running totals: the
/// raw material of one dashboard sample.
#[derive(Clone, Debug, Default)]
pub struct Tick {
    /// Totals so far.
    pub totals: Totals,
    /// Events so far by space (`wds`, `its`).
    pub events_by_space: BTreeMap<String, u64>,
    /// Events so far by resource (`deployments.apps`).
    pub events_by_resource: BTreeMap<String, u64>,
    /// Binding entries added + removed in this tick, by policy.
    pub policy_churn: HashMap<String, u64>,
    /// Event-to-Binding latencies observed in this tick, in seconds.
    pub latencies: Vec<f64>,
    /// Sizes now.
    pub sizes: SizeFigures,
}

/// Options of [`Metrics`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsOptions {
    /// Export per-policy series (cardinality: one series per policy and label value).
    pub per_policy: bool,
}

/// Bindery's metrics: the Prometheus registry and the dashboard's tallies. Shared
/// (`Arc`) by the engine loop, the sink observer and the HTTP server.
pub struct Metrics {
    registry: Registry,
    watch: WatchMetrics,
    engine: EngineMetrics,
    bindings: BindingMetrics,
    sink_writes: SinkMetrics,
    status: status::StatusMetrics,
    process: ProcessMetrics,
    tallies: Mutex<Tallies>,
    sink: OnceLock<SinkHandle>,
    /// Sink retries already counted from [`SinkHandle::stats`].
    retries_seen: AtomicU64,
    /// The sink's drift count at the last refresh.
    drift_seen: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The dashboard's running tallies, kept so that a watch event allocates nothing: its
/// resource's name is made once per resource and shared.
#[derive(Debug, Default)]
struct Tallies {
    /// The tick being gathered (`events_by_space` and `events_by_resource` are filled
    /// from the counts below when it is taken).
    tick: Tick,
    /// Events so far, by space.
    by_space: [u64; 2],
    /// Events so far, by resource name.
    by_resource: HashMap<Arc<str>, u64>,
    /// Each resource's name (`deployments.apps`).
    names: HashMap<ResourceRef, Arc<str>>,
}

/// `resource.group`, or `resource` for the core group: how kubectl names a resource.
pub fn resource_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn space_index(space: Space) -> usize {
    match space {
        Space::Wds => 0,
        Space::Its => 1,
    }
}

impl Metrics {
    /// New metrics, all at zero.
    pub fn new(options: MetricsOptions) -> Metrics {
        let mut registry = Registry::with_prefix("bindery");
        Metrics {
            watch: WatchMetrics::register(&mut registry),
            engine: EngineMetrics::register(&mut registry),
            bindings: BindingMetrics::register(&mut registry, options),
            status: status::StatusMetrics::register(&mut registry),
            sink_writes: SinkMetrics::register(&mut registry, options),
            process: ProcessMetrics::register(&mut registry),
            registry,
            tallies: Mutex::new(Tallies::default()),
            sink: OnceLock::new(),
            retries_seen: AtomicU64::new(0),
            drift_seen: AtomicU64::new(0),
        }
    }

    fn tallies(&self) -> MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets [`refresh`](Self::refresh) read the sink's queue and retries.
    pub fn watch_sink(&self, sink: SinkHandle) {
        let _ = self.sink.set(sink);
    }

    /// Whether this process leads (writes) now; a change counts as a transition.
    pub fn leader(&self, leading: bool) {
        self.process.leader(leading);
    }

    /// One Kubernetes Event on a BindingPolicy with `reason`, and how publishing it
    /// ended.
    pub fn policy_event(&self, reason: Reason, result: PolicyEventResult) {
        self.process.policy_event(reason, result);
    }

    /// The number of timely workers the engine runs on.
    pub fn engine_workers(&self, workers: usize) {
        self.engine.workers(workers);
    }

    /// The history journal holds `n` changes.
    pub fn history_changes(&self, n: usize) {
        self.engine.history_changes(n);
    }

    /// One watch event received (or read from a log).
    pub fn event(&self, event: &WatchEvent) {
        let r = &event.resource;
        let mut tallies = self.tallies();
        let name = match tallies.names.get(r) {
            Some(name) => name.clone(),
            None => {
                let name: Arc<str> = resource_name(&r.group, &r.resource).into();
                tallies.names.insert(r.clone(), name.clone());
                name
            }
        };
        tallies.tick.totals.events += 1;
        tallies.by_space[space_index(r.space)] += 1;
        match tallies.by_resource.get_mut(&name) {
            Some(n) => *n += 1,
            None => {
                tallies.by_resource.insert(name.clone(), 1);
            }
        }
        drop(tallies);
        self.watch.event(&EventLabels {
            space: SpaceLabel(r.space),
            resource: ResourceLabel(name),
            r#type: TypeLabel(event.event_type),
        });
    }

    /// Events received and not yet taken by the engine.
    pub fn queued_events(&self, n: usize) {
        self.engine.queued_events(n);
    }

    /// The watched resources not synced now, and the changes their relists hold back.
    pub fn sync_state(&self, unsynced: usize, held: usize) {
        self.watch.sync_state(unsynced, held);
    }

    /// One epoch closed: its Binding changes, how long closing took, the age of its
    /// oldest event at the close, and the engine's sizes after it.
    pub fn epoch(&self, out: &EpochOutput, duration: Duration, lag: Duration, sizes: &Sizes) {
        self.engine.epoch(duration, lag);
        self.bindings.sizes(sizes);
        self.status.epoch(out, sizes);
        let mut tallies = self.tallies();
        let tick = &mut tallies.tick;
        tick.totals.epochs += 1;
        for change in &out.changes {
            let (added, removed) = self.bindings.change(change);
            tick.totals.binding_changes += 1;
            tick.totals.entries_added += added;
            tick.totals.entries_removed += removed;
            if added + removed > 0 {
                *tick.policy_churn.entry(change.binding.clone()).or_default() += added + removed;
            }
        }
        tick.sizes = SizeFigures {
            wecs: sizes.wecs as u64,
            objects: sizes.objects as u64,
            policies: sizes.policies as u64,
            bindings: sizes.policies as u64,
            binding_entries: sizes.workload_entries as u64,
            destinations: sizes.destinations as u64,
            work_statuses: sizes.work_statuses as u64,
            returned_statuses: sizes.reports as u64,
            combined_statuses: sizes.combined_statuses as u64,
            invalid_collectors: sizes.invalid_collectors as u64,
        };
    }

    /// One event-to-Binding latency (replay: from reading the event to emitting the change).
    pub fn event_to_binding(&self, latency: Duration) {
        self.sink_writes.event_to_binding(latency);
        let mut tallies = self.tallies();
        let tick = &mut tallies.tick;
        tick.totals.latency_count += 1;
        if tick.latencies.len() < TICK_LATENCIES {
            tick.latencies.push(latency.as_secs_f64());
        }
    }

    /// Updates what is read rather than counted: process memory, and the sink's queue
    /// and retries. Called before each scrape and each dashboard sample. Returns the
    /// resident memory read, in bytes, if the platform tells.
    pub fn refresh(&self) -> Option<u64> {
        let resident = memory_stats::memory_stats().map(|s| s.physical_mem);
        if let Some(bytes) = resident {
            self.process.resident_memory(bytes);
        }
        if let Some(sink) = self.sink.get() {
            let stats = sink.stats();
            let drift_seen = self.drift_seen.swap(stats.drift, Ordering::Relaxed);
            let retries_seen = self.retries_seen.swap(stats.retries, Ordering::Relaxed);
            self.sink_writes.refresh(
                &stats,
                stats.retries.saturating_sub(retries_seen),
                stats.drift.saturating_sub(drift_seen),
            );
        }
        resident.map(|bytes| bytes as u64)
    }

    /// The totals and sizes now, and what happened since the last call (per-policy churn,
    /// latencies), which it resets.
    pub fn take_tick(&self) -> Tick {
        let mut tallies = self.tallies();
        let by_space = [Space::Wds, Space::Its]
            .into_iter()
            .filter(|s| tallies.by_space[space_index(*s)] > 0)
            .map(|s| (s.as_str().to_string(), tallies.by_space[space_index(s)]))
            .collect();
        let by_resource = tallies
            .by_resource
            .iter()
            .map(|(name, n)| (name.to_string(), *n))
            .collect();
        let tick = &mut tallies.tick;
        Tick {
            totals: tick.totals,
            events_by_space: by_space,
            events_by_resource: by_resource,
            policy_churn: std::mem::take(&mut tick.policy_churn),
            latencies: std::mem::take(&mut tick.latencies),
            sizes: tick.sizes,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let _ = self.refresh();
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }
}

impl SinkObserver for Metrics {
    fn write_done(&self, report: &WriteReport<'_>) {
        self.sink_writes.write_done(report);
        let written = matches!(report.result, WriteResult::Applied | WriteResult::Deleted);
        if written
            && report.object == WriteObject::Binding
            && let Some(since) = report.changed_at
        {
            let latency = SystemTime::now()
                .duration_since(since)
                .unwrap_or(Duration::ZERO);
            self.event_to_binding(latency);
        }
        let mut tallies = self.tallies();
        if written {
            tallies.tick.totals.sink_writes += 1;
        } else if report.result == WriteResult::Failed {
            tallies.tick.totals.sink_errors += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bindery_engine::BindingChange;
    use bindery_ingest::{EventType, ResourceRef, Space};

    /// Every family of a [`Metrics`] with per-policy series, each given a series, as
    /// its `# HELP`, `# TYPE` and `# UNIT` lines, sorted.
    fn families() -> Vec<String> {
        let m = Metrics::new(MetricsOptions { per_policy: true });
        m.event(&WatchEvent {
            ts: 0,
            resource: ResourceRef::new(Space::Wds, "apps", "v1", "deployments"),
            event_type: EventType::Added,
            object: None,
        });
        let change = BindingChange {
            binding: "p".into(),
            exists: true,
            generation: Some(1),
            destinations_added: vec!["c1".into()],
            destinations_removed: vec![],
            workload_added: vec![],
            workload_removed: vec![],
            problems: None,
            owner_changed: true,
        };
        let out = EpochOutput {
            epoch: 1,
            changes: vec![change],
            ..EpochOutput::default()
        };
        m.epoch(&out, Duration::ZERO, Duration::ZERO, &Sizes::default());
        m.policy_event(Reason::PolicyProblem, PolicyEventResult::Published);
        m.write_done(&WriteReport {
            object: WriteObject::Binding,
            name: "p",
            result: WriteResult::Applied,
            latency: Some(Duration::ZERO),
            changed_at: None,
        });
        let mut lines: Vec<String> = m
            .encode()
            .lines()
            .filter(|l| l.starts_with('#'))
            .map(String::from)
            .collect();
        lines.sort();
        lines
    }

    /// The families as they were named before the metrics were split by area: the
    /// dashboard, the Grafana dashboard and users' alerts read these names.
    const FAMILIES: &[&str] = &[
        "# HELP bindery_combined_status_changes CombinedStatuses changed, created or deleted.",
        "# HELP bindery_combined_statuses CombinedStatuses computed.",
        "# HELP bindery_invalid_status_collectors StatusCollectors whose spec has errors (they collect nothing).",
        "# HELP bindery_returned_status_changes Changes of what is returned into workload objects, by change (status, clear, none).",
        "# HELP bindery_returned_statuses Workload objects Bindery returns a status into (or clears).",
        "# HELP bindery_work_statuses WorkStatuses of this WDS in the ITS.",
        "# TYPE bindery_combined_status_changes counter",
        "# TYPE bindery_combined_statuses gauge",
        "# TYPE bindery_invalid_status_collectors gauge",
        "# TYPE bindery_returned_status_changes counter",
        "# TYPE bindery_returned_statuses gauge",
        "# TYPE bindery_work_statuses gauge",
        "# HELP bindery_collector_row_evaluations StatusCollector evaluations, one collector on one WEC's row (an unchanged row is not evaluated again).",
        "# HELP bindery_collector_evaluation_errors StatusCollector expressions that failed to evaluate (reported in the CombinedStatuses).",
        "# HELP bindery_collector_evaluation_seconds Time spent evaluating StatusCollectors' expressions.",
        "# TYPE bindery_collector_row_evaluations counter",
        "# TYPE bindery_collector_evaluation_errors counter",
        "# TYPE bindery_collector_evaluation_seconds counter",
        "# HELP bindery_binding_changes Binding changes emitted by the engine (one per Binding per epoch it changed in).",
        "# HELP bindery_binding_destinations Destinations over all Bindings.",
        "# HELP bindery_binding_drift Managed Bindings found changed or deleted by another writer (each is restored).",
        "# HELP bindery_binding_entry_changes Binding entries added or removed, by entry kind (workload, destination).",
        "# HELP bindery_binding_workload_entries Workload entries over all Bindings.",
        "# HELP bindery_bindings Bindings.",
        "# HELP bindery_engine_epoch_duration_seconds Time to close one epoch (run the dataflow and materialize its output).",
        "# HELP bindery_engine_epochs Epochs closed.",
        "# HELP bindery_engine_history_changes Binding changes with their causes held in the history journal (GET /history; --history-limit).",
        "# HELP bindery_engine_lag_seconds Age of the oldest event of the last epoch when it closed.",
        "# HELP bindery_engine_queued_events Watch events received and not yet taken by the engine.",
        "# HELP bindery_engine_workers Timely workers running the engine's dataflow, over every process (--workers × --processes).",
        "# HELP bindery_event_to_binding_seconds From receiving a watch event to the Binding change it caused being written (replay: emitted).",
        "# HELP bindery_held_changes Object changes held back by relists in progress, applied at their SYNCED.",
        "# HELP bindery_leader 1 while this process writes (it holds the leader Lease, or runs without --leader-elect), else 0.",
        "# HELP bindery_leader_transitions Times this process started or stopped leading.",
        "# HELP bindery_policies BindingPolicies.",
        "# HELP bindery_policy_binding_entry_changes Binding entries added or removed, per policy.",
        "# HELP bindery_policy_binding_writes Binding writes that reached the API server, per policy.",
        "# HELP bindery_policy_events Kubernetes Events on BindingPolicies, by reason and result (published, suppressed by the rate limit, dropped, failed).",
        "# HELP bindery_process_resident_memory_bytes Resident memory of the process.",
        "# HELP bindery_sink_in_flight_writes Writes in flight.",
        "# HELP bindery_sink_pending_writes Writes waiting in the sink (coalesced per Binding and per status).",
        "# HELP bindery_sink_retries Retried API requests of the sink.",
        "# HELP bindery_sink_write_duration_seconds Duration of sink API requests, retries and rate-limit waits included.",
        "# HELP bindery_sink_writes Writes of Bindings and policy statuses, by object and result.",
        "# HELP bindery_unmanaged_bindings Stored Bindings that no BindingPolicy controls and no policy is named after: left alone.",
        "# HELP bindery_unsynced_resources Watched resources whose initial list or relist is in progress (before the first publish they hold back every Binding, after it only their own objects).",
        "# HELP bindery_watch_events Watch events received (replay: read), by space, resource and type.",
        "# HELP bindery_wecs WECs (ManagedClusters).",
        "# HELP bindery_workload_objects Workload objects.",
        "# TYPE bindery_binding_changes counter",
        "# TYPE bindery_binding_destinations gauge",
        "# TYPE bindery_binding_drift counter",
        "# TYPE bindery_binding_entry_changes counter",
        "# TYPE bindery_binding_workload_entries gauge",
        "# TYPE bindery_bindings gauge",
        "# TYPE bindery_engine_epoch_duration_seconds histogram",
        "# TYPE bindery_engine_epochs counter",
        "# TYPE bindery_engine_history_changes gauge",
        "# TYPE bindery_engine_lag_seconds gauge",
        "# TYPE bindery_engine_queued_events gauge",
        "# TYPE bindery_engine_workers gauge",
        "# TYPE bindery_event_to_binding_seconds histogram",
        "# TYPE bindery_held_changes gauge",
        "# TYPE bindery_leader gauge",
        "# TYPE bindery_leader_transitions counter",
        "# TYPE bindery_policies gauge",
        "# TYPE bindery_policy_binding_entry_changes counter",
        "# TYPE bindery_policy_binding_writes counter",
        "# TYPE bindery_policy_events counter",
        "# TYPE bindery_process_resident_memory_bytes gauge",
        "# TYPE bindery_sink_in_flight_writes gauge",
        "# TYPE bindery_sink_pending_writes gauge",
        "# TYPE bindery_sink_retries counter",
        "# TYPE bindery_sink_write_duration_seconds histogram",
        "# TYPE bindery_sink_writes counter",
        "# TYPE bindery_unmanaged_bindings gauge",
        "# TYPE bindery_unsynced_resources gauge",
        "# TYPE bindery_watch_events counter",
        "# TYPE bindery_wecs gauge",
        "# TYPE bindery_workload_objects gauge",
        "# UNIT bindery_engine_epoch_duration_seconds seconds",
        "# UNIT bindery_engine_lag_seconds seconds",
        "# UNIT bindery_event_to_binding_seconds seconds",
        "# UNIT bindery_process_resident_memory_bytes bytes",
        "# UNIT bindery_sink_write_duration_seconds seconds",
    ];

    #[test]
    fn collector_evaluations_are_counted() {
        let m = Metrics::new(MetricsOptions { per_policy: false });
        let out = EpochOutput {
            epoch: 1,
            evaluations: bindery_engine::engine::EvaluationWork {
                rows: 3,
                errors: 1,
                time: Duration::from_millis(250),
            },
            ..EpochOutput::default()
        };
        m.epoch(&out, Duration::ZERO, Duration::ZERO, &Sizes::default());
        m.epoch(&out, Duration::ZERO, Duration::ZERO, &Sizes::default());
        let text = m.encode();
        for line in [
            "bindery_collector_row_evaluations_total 6",
            "bindery_collector_evaluation_errors_total 2",
            "bindery_collector_evaluation_seconds_total 0.5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }

    /// A rename, a new help text or a lost family fails here: change FAMILIES only with
    /// the dashboard, deploy/'s Grafana dashboard and the docs.
    #[test]
    fn every_family_keeps_its_name_type_and_help() {
        let mut want: Vec<&str> = FAMILIES.to_vec();
        want.push("# EOF");
        want.sort_unstable();
        assert_eq!(families(), want);
    }
}
