//! The write path: writes by object and result, their duration, retries, the sink's
//! queue (`bindery_sink_*`), drift, unmanaged Bindings, per-policy writes and
//! event-to-Binding latency.

use std::time::Duration;

use bindery_sink::{SinkStats, WriteObject, WriteReport, WriteResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{MetricsOptions, counter, family, gauge, gauge_value, histogram, latency_buckets};

/// Labels of `bindery_sink_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    /// `binding`, `status` (a policy's) or `object_status` (a returned status).
    object: &'static str,
    /// `applied`, `unchanged`, `deleted`, `dropped` or `failed`.
    result: &'static str,
}

/// Labels of `bindery_policy_binding_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

/// The write path's metrics.
pub(super) struct SinkMetrics {
    writes: Family<WriteLabels, Counter>,
    retries: Counter,
    write_duration: Histogram,
    pending: Gauge,
    in_flight: Gauge,
    drift: Counter,
    unmanaged_bindings: Gauge,
    /// Registered only with per-policy metrics.
    policy_writes: Option<Family<PolicyLabels, Counter>>,
    event_to_binding: Histogram,
}

impl SinkMetrics {
    pub(super) fn register(registry: &mut Registry, options: MetricsOptions) -> SinkMetrics {
        let drift = counter(
            registry,
            "binding_drift",
            "Managed Bindings found changed or deleted by another writer (each is restored)",
        );
        let unmanaged_bindings = gauge(
            registry,
            "unmanaged_bindings",
            "Stored Bindings that no BindingPolicy controls and no policy is named after: left alone",
        );
        let policy_writes = options.per_policy.then(|| {
            family(
                registry,
                "policy_binding_writes",
                "Binding writes that reached the API server, per policy",
            )
        });
        let event_to_binding = histogram(
            registry,
            "event_to_binding",
            "From receiving a watch event to the Binding change it caused being written (replay: emitted)",
            latency_buckets(),
        );
        let r = registry.sub_registry_with_prefix("sink");
        let metrics = SinkMetrics {
            writes: family(
                r,
                "writes",
                "Writes of Bindings and policy statuses, by object and result",
            ),
            retries: counter(r, "retries", "Retried API requests of the sink"),
            write_duration: histogram(
                r,
                "write_duration",
                "Duration of sink API requests, retries and rate-limit waits included",
                latency_buckets(),
            ),
            pending: gauge(
                r,
                "pending_writes",
                "Writes waiting in the sink (coalesced per Binding and per status)",
            ),
            in_flight: gauge(r, "in_flight_writes", "Writes in flight"),
            drift,
            unmanaged_bindings,
            policy_writes,
            event_to_binding,
        };
        // Known label sets start at zero, so that rates and sums see them from the start.
        for object in [
            WriteObject::Binding,
            WriteObject::Status,
            WriteObject::ObjectStatus,
            WriteObject::CombinedStatus,
            WriteObject::CollectorStatus,
        ] {
            for result in [
                WriteResult::Applied,
                WriteResult::Unchanged,
                WriteResult::Deleted,
                WriteResult::Dropped,
                WriteResult::Failed,
            ] {
                let _ = metrics.writes.get_or_create(&WriteLabels {
                    object: object.as_str(),
                    result: result.as_str(),
                });
            }
        }
        metrics
    }

    /// One write ended.
    pub(super) fn write_done(&self, report: &WriteReport<'_>) {
        self.writes
            .get_or_create(&WriteLabels {
                object: report.object.as_str(),
                result: report.result.as_str(),
            })
            .inc();
        if let Some(latency) = report.latency {
            self.write_duration.observe(latency.as_secs_f64());
        }
        let written = matches!(report.result, WriteResult::Applied | WriteResult::Deleted);
        if written
            && report.object == WriteObject::Binding
            && let Some(per_policy) = &self.policy_writes
        {
            per_policy
                .get_or_create(&PolicyLabels {
                    policy: report.name.to_string(),
                })
                .inc();
        }
    }

    pub(super) fn event_to_binding(&self, latency: Duration) {
        self.event_to_binding.observe(latency.as_secs_f64());
    }

    /// The sink's queue and unmanaged Bindings now, and the retries and drift found
    /// since the last refresh.
    pub(super) fn refresh(&self, stats: &SinkStats, new_retries: u64, new_drift: u64) {
        self.pending.set(gauge_value(stats.pending));
        self.in_flight.set(gauge_value(stats.in_flight));
        self.unmanaged_bindings
            .set(gauge_value(stats.unmanaged_bindings));
        self.retries.inc_by(new_retries);
        self.drift.inc_by(new_drift);
    }
}
