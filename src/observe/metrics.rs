//! Bindery's Prometheus metrics ([`Metrics`]), and the plain tallies the dashboard reads
//! from the same updates ([`Tick`]).
//!
//! Every figure is updated in one place, by the engine loop (watch events, epochs, Binding
//! changes) or by the sink's observer (writes), so `/metrics` and `/dashboard` count the
//! same things. Names follow the Prometheus conventions: the `bindery_` prefix, `_total`
//! for counters, seconds and bytes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use bindery_engine::EpochOutput;
use bindery_engine::engine::Sizes;
use bindery_ingest::WatchEvent;
use bindery_sink::{SinkHandle, SinkObserver, WriteObject, WriteReport, WriteResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;

/// Latency observations kept per dashboard tick (beyond that, the tick's quantiles are
/// computed from the first ones).
const TICK_LATENCIES: usize = 100_000;

/// Labels of `bindery_watch_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    /// `wds` or `its`.
    space: String,
    /// `resource.group` (`resource` for the core group), as kubectl names it.
    resource: String,
    /// `ADDED`, `MODIFIED`, `DELETED`, `SYNCED` or `RESET`.
    r#type: String,
}

/// Labels of `bindery_binding_entry_changes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EntryLabels {
    /// `workload` or `destination`.
    entry: &'static str,
    /// `added` or `removed`.
    change: &'static str,
}

/// Labels of `bindery_policy_binding_entry_changes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyChangeLabels {
    policy: String,
    /// `added` or `removed`.
    change: &'static str,
}

/// Labels of `bindery_policy_binding_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

/// Labels of `bindery_sink_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    /// `binding` or `status`.
    object: &'static str,
    /// `applied`, `unchanged`, `deleted`, `dropped` or `failed`.
    result: &'static str,
}

/// Labels of `bindery_policy_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyEventLabels {
    /// The Event's reason (`PolicyProblem`, `BindingWriteFailed`, `ProblemsResolved`).
    reason: &'static str,
    /// `published`, `suppressed` (rate limit), `dropped` (queue full) or `failed`.
    result: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The Prometheus metric families.
struct Families {
    watch_events: Family<EventLabels, Counter>,
    binding_changes: Counter,
    entry_changes: Family<EntryLabels, Counter>,
    policy_entry_changes: Family<PolicyChangeLabels, Counter>,
    policy_writes: Family<PolicyLabels, Counter>,
    sink_writes: Family<WriteLabels, Counter>,
    sink_retries: Counter,
    binding_drift: Counter,
    unmanaged_bindings: Gauge,
    leader: Gauge,
    engine_workers: Gauge,
    leader_transitions: Counter,
    policy_events: Family<PolicyEventLabels, Counter>,
    sink_write_duration: Histogram,
    sink_pending: Gauge,
    sink_in_flight: Gauge,
    event_to_binding: Histogram,
    epochs: Counter,
    epoch_duration: Histogram,
    lag: FloatGauge,
    queued_events: Gauge,
    unsynced_resources: Gauge,
    held_changes: Gauge,
    wecs: Gauge,
    objects: Gauge,
    policies: Gauge,
    bindings: Gauge,
    workload_entries: Gauge,
    destinations: Gauge,
    resident_memory: Gauge,
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
    families: Families,
    options: MetricsOptions,
    tick: Mutex<Tick>,
    sink: OnceLock<SinkHandle>,
    /// Sink retries already counted from [`SinkHandle::stats`].
    retries_seen: AtomicU64,
    /// The sink's drift count at the last refresh.
    drift_seen: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// `resource.group`, or `resource` for the core group: how kubectl names a resource.
pub fn resource_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn gauge_u64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Metrics {
    /// New metrics, all at zero.
    pub fn new(options: MetricsOptions) -> Metrics {
        let latency_buckets = || exponential_buckets(0.000_5, 2.0, 18); // 0.5 ms .. ~65 s
        let f = Families {
            watch_events: Family::default(),
            binding_changes: Counter::default(),
            entry_changes: Family::default(),
            policy_entry_changes: Family::default(),
            policy_writes: Family::default(),
            sink_writes: Family::default(),
            sink_retries: Counter::default(),
            binding_drift: Counter::default(),
            unmanaged_bindings: Gauge::default(),
            leader: Gauge::default(),
            engine_workers: Gauge::default(),
            leader_transitions: Counter::default(),
            policy_events: Family::default(),
            sink_write_duration: Histogram::new(latency_buckets()),
            sink_pending: Gauge::default(),
            sink_in_flight: Gauge::default(),
            event_to_binding: Histogram::new(latency_buckets()),
            epochs: Counter::default(),
            epoch_duration: Histogram::new(exponential_buckets(0.000_05, 2.0, 20)),
            lag: FloatGauge::default(),
            queued_events: Gauge::default(),
            unsynced_resources: Gauge::default(),
            held_changes: Gauge::default(),
            wecs: Gauge::default(),
            objects: Gauge::default(),
            policies: Gauge::default(),
            bindings: Gauge::default(),
            workload_entries: Gauge::default(),
            destinations: Gauge::default(),
            resident_memory: Gauge::default(),
        };
        let mut r = Registry::with_prefix("bindery");
        r.register(
            "watch_events",
            "Watch events received (replay: read), by space, resource and type",
            f.watch_events.clone(),
        );
        r.register(
            "binding_changes",
            "Binding changes emitted by the engine (one per Binding per epoch it changed in)",
            f.binding_changes.clone(),
        );
        r.register(
            "binding_entry_changes",
            "Binding entries added or removed, by entry kind (workload, destination)",
            f.entry_changes.clone(),
        );
        if options.per_policy {
            r.register(
                "policy_binding_entry_changes",
                "Binding entries added or removed, per policy",
                f.policy_entry_changes.clone(),
            );
            r.register(
                "policy_binding_writes",
                "Binding writes that reached the API server, per policy",
                f.policy_writes.clone(),
            );
        }
        r.register(
            "sink_writes",
            "Writes of Bindings and policy statuses, by object and result",
            f.sink_writes.clone(),
        );
        r.register(
            "sink_retries",
            "Retried API requests of the sink",
            f.sink_retries.clone(),
        );
        r.register(
            "binding_drift",
            "Managed Bindings found changed or deleted by another writer (each is restored)",
            f.binding_drift.clone(),
        );
        r.register(
            "leader",
            "1 while this process writes (it holds the leader Lease, or runs without --leader-elect), else 0",
            f.leader.clone(),
        );
        r.register(
            "leader_transitions",
            "Times this process started or stopped leading",
            f.leader_transitions.clone(),
        );
        r.register(
            "policy_events",
            "Kubernetes Events on BindingPolicies, by reason and result (published, suppressed by the rate limit, dropped, failed)",
            f.policy_events.clone(),
        );
        r.register(
            "unmanaged_bindings",
            "Stored Bindings that no BindingPolicy controls and no policy is named after: left alone",
            f.unmanaged_bindings.clone(),
        );
        r.register_with_unit(
            "sink_write_duration",
            "Duration of sink API requests, retries and rate-limit waits included",
            Unit::Seconds,
            f.sink_write_duration.clone(),
        );
        r.register(
            "sink_pending_writes",
            "Writes waiting in the sink (coalesced per Binding and per status)",
            f.sink_pending.clone(),
        );
        r.register(
            "sink_in_flight_writes",
            "Writes in flight",
            f.sink_in_flight.clone(),
        );
        r.register_with_unit(
            "event_to_binding",
            "From receiving a watch event to the Binding change it caused being written (replay: emitted)",
            Unit::Seconds,
            f.event_to_binding.clone(),
        );
        r.register("engine_epochs", "Epochs closed", f.epochs.clone());
        r.register(
            "engine_workers",
            "Timely workers running the engine's dataflow, over every process (--workers × --processes)",
            f.engine_workers.clone(),
        );
        r.register_with_unit(
            "engine_epoch_duration",
            "Time to close one epoch (run the dataflow and materialize its output)",
            Unit::Seconds,
            f.epoch_duration.clone(),
        );
        r.register_with_unit(
            "engine_lag",
            "Age of the oldest event of the last epoch when it closed",
            Unit::Seconds,
            f.lag.clone(),
        );
        r.register(
            "engine_queued_events",
            "Watch events received and not yet taken by the engine",
            f.queued_events.clone(),
        );
        r.register(
            "unsynced_resources",
            "Watched resources whose initial list or relist is in progress (before the first publish they hold back every Binding, after it only their own objects)",
            f.unsynced_resources.clone(),
        );
        r.register(
            "held_changes",
            "Object changes held back by relists in progress, applied at their SYNCED",
            f.held_changes.clone(),
        );
        r.register("wecs", "WECs (ManagedClusters)", f.wecs.clone());
        r.register("workload_objects", "Workload objects", f.objects.clone());
        r.register("policies", "BindingPolicies", f.policies.clone());
        r.register("bindings", "Bindings", f.bindings.clone());
        r.register(
            "binding_workload_entries",
            "Workload entries over all Bindings",
            f.workload_entries.clone(),
        );
        r.register(
            "binding_destinations",
            "Destinations over all Bindings",
            f.destinations.clone(),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            f.resident_memory.clone(),
        );
        // Known label sets start at zero, so that rates and sums see them from the start.
        for object in [WriteObject::Binding, WriteObject::Status] {
            for result in [
                WriteResult::Applied,
                WriteResult::Unchanged,
                WriteResult::Deleted,
                WriteResult::Dropped,
                WriteResult::Failed,
            ] {
                let _ = f.sink_writes.get_or_create(&WriteLabels {
                    object: object.as_str(),
                    result: result.as_str(),
                });
            }
        }
        for entry in ["workload", "destination"] {
            for change in ["added", "removed"] {
                let _ = f
                    .entry_changes
                    .get_or_create(&EntryLabels { entry, change });
            }
        }
        Metrics {
            registry: r,
            families: f,
            options,
            tick: Mutex::new(Tick::default()),
            sink: OnceLock::new(),
            retries_seen: AtomicU64::new(0),
            drift_seen: AtomicU64::new(0),
        }
    }

    fn tick(&self) -> MutexGuard<'_, Tick> {
        self.tick.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets [`refresh`](Self::refresh) read the sink's queue and retries.
    pub fn watch_sink(&self, sink: SinkHandle) {
        let _ = self.sink.set(sink);
    }

    /// Whether this process leads (writes) now; a change counts as a transition.
    pub fn leader(&self, leading: bool) {
        let now = i64::from(leading);
        if self.families.leader.set(now) != now {
            self.families.leader_transitions.inc();
        }
    }

    /// One Kubernetes Event on a BindingPolicy with `reason`: `result` is `published`,
    /// `suppressed`, `dropped` or `failed`.
    pub fn policy_event(&self, reason: &'static str, result: &'static str) {
        self.families
            .policy_events
            .get_or_create(&PolicyEventLabels { reason, result })
            .inc();
    }

    /// The number of timely workers the engine runs on.
    pub fn engine_workers(&self, workers: usize) {
        self.families.engine_workers.set(gauge_u64(workers));
    }

    /// One watch event received (or read from a log).
    pub fn event(&self, event: &WatchEvent) {
        let r = &event.resource;
        let space = r.space.to_string();
        let resource = resource_name(&r.group, &r.resource);
        self.families
            .watch_events
            .get_or_create(&EventLabels {
                space: space.clone(),
                resource: resource.clone(),
                r#type: event.event_type.as_str().to_string(),
            })
            .inc();
        let mut tick = self.tick();
        tick.totals.events += 1;
        *tick.events_by_space.entry(space).or_default() += 1;
        *tick.events_by_resource.entry(resource).or_default() += 1;
    }

    /// Events received and not yet taken by the engine.
    pub fn queued_events(&self, n: usize) {
        self.families.queued_events.set(gauge_u64(n));
    }

    /// The watched resources not synced now, and the changes their relists hold back.
    pub fn sync_state(&self, unsynced: usize, held: usize) {
        self.families.unsynced_resources.set(gauge_u64(unsynced));
        self.families.held_changes.set(gauge_u64(held));
    }

    /// One epoch closed: its Binding changes, how long closing took, the age of its
    /// oldest event at the close, and the engine's sizes after it.
    pub fn epoch(&self, out: &EpochOutput, duration: Duration, lag: Duration, sizes: &Sizes) {
        let f = &self.families;
        f.epochs.inc();
        f.epoch_duration.observe(duration.as_secs_f64());
        f.lag.set(lag.as_secs_f64());
        let mut tick = self.tick();
        tick.totals.epochs += 1;
        for change in &out.changes {
            let added = (change.workload_added.len(), change.destinations_added.len());
            let removed = (
                change.workload_removed.len(),
                change.destinations_removed.len(),
            );
            for (entry, change, n) in [
                ("workload", "added", added.0),
                ("destination", "added", added.1),
                ("workload", "removed", removed.0),
                ("destination", "removed", removed.1),
            ] {
                f.entry_changes
                    .get_or_create(&EntryLabels { entry, change })
                    .inc_by(n as u64);
            }
            let (added, removed) = ((added.0 + added.1) as u64, (removed.0 + removed.1) as u64);
            if self.options.per_policy {
                for (what, n) in [("added", added), ("removed", removed)] {
                    f.policy_entry_changes
                        .get_or_create(&PolicyChangeLabels {
                            policy: change.binding.clone(),
                            change: what,
                        })
                        .inc_by(n);
                }
            }
            f.binding_changes.inc();
            tick.totals.binding_changes += 1;
            tick.totals.entries_added += added;
            tick.totals.entries_removed += removed;
            if added + removed > 0 {
                *tick.policy_churn.entry(change.binding.clone()).or_default() += added + removed;
            }
        }
        let figures = SizeFigures {
            wecs: sizes.wecs as u64,
            objects: sizes.objects as u64,
            policies: sizes.policies as u64,
            bindings: sizes.policies as u64,
            binding_entries: sizes.workload_entries as u64,
            destinations: sizes.destinations as u64,
        };
        f.wecs.set(gauge_u64(sizes.wecs));
        f.objects.set(gauge_u64(sizes.objects));
        f.policies.set(gauge_u64(sizes.policies));
        f.bindings.set(gauge_u64(sizes.policies));
        f.workload_entries.set(gauge_u64(sizes.workload_entries));
        f.destinations.set(gauge_u64(sizes.destinations));
        tick.sizes = figures;
    }

    /// One event-to-Binding latency (replay: from reading the event to emitting the change).
    pub fn event_to_binding(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        self.families.event_to_binding.observe(secs);
        let mut tick = self.tick();
        tick.totals.latency_count += 1;
        if tick.latencies.len() < TICK_LATENCIES {
            tick.latencies.push(secs);
        }
    }

    /// Updates what is read rather than counted: process memory, and the sink's queue
    /// and retries. Called before each scrape and each dashboard sample. Returns the
    /// resident memory read, in bytes, if the platform tells.
    pub fn refresh(&self) -> Option<u64> {
        let resident = memory_stats::memory_stats().map(|s| s.physical_mem);
        if let Some(bytes) = resident {
            self.families.resident_memory.set(gauge_u64(bytes));
        }
        if let Some(sink) = self.sink.get() {
            let stats = sink.stats();
            self.families.sink_pending.set(gauge_u64(stats.pending));
            self.families.sink_in_flight.set(gauge_u64(stats.in_flight));
            self.families
                .unmanaged_bindings
                .set(gauge_u64(stats.unmanaged_bindings));
            let drift_seen = self.drift_seen.swap(stats.drift, Ordering::Relaxed);
            self.families
                .binding_drift
                .inc_by(stats.drift.saturating_sub(drift_seen));
            let seen = self.retries_seen.swap(stats.retries, Ordering::Relaxed);
            self.families
                .sink_retries
                .inc_by(stats.retries.saturating_sub(seen));
        }
        resident.map(|bytes| bytes as u64)
    }

    /// The totals and sizes now, and what happened since the last call (per-policy churn,
    /// latencies), which it resets.
    pub fn take_tick(&self) -> Tick {
        let mut tick = self.tick();
        Tick {
            totals: tick.totals,
            events_by_space: tick.events_by_space.clone(),
            events_by_resource: tick.events_by_resource.clone(),
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
        let f = &self.families;
        f.sink_writes
            .get_or_create(&WriteLabels {
                object: report.object.as_str(),
                result: report.result.as_str(),
            })
            .inc();
        if let Some(latency) = report.latency {
            f.sink_write_duration.observe(latency.as_secs_f64());
        }
        let written = matches!(report.result, WriteResult::Applied | WriteResult::Deleted);
        if written && report.object == WriteObject::Binding {
            if self.options.per_policy {
                f.policy_writes
                    .get_or_create(&PolicyLabels {
                        policy: report.name.to_string(),
                    })
                    .inc();
            }
            if let Some(since) = report.changed_at {
                let latency = SystemTime::now()
                    .duration_since(since)
                    .unwrap_or(Duration::ZERO);
                self.event_to_binding(latency);
            }
        }
        let mut tick = self.tick();
        if written {
            tick.totals.sink_writes += 1;
        } else if report.result == WriteResult::Failed {
            tick.totals.sink_errors += 1;
        }
    }
}
