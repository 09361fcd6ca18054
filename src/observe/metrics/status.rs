//! Status return: the WECs' reports the engine holds, what it returns into workload
//! objects and the CombinedStatuses it computes, and how each epoch changes them (the
//! writes themselves are the sink's: `bindery_sink_writes_total{object="object_status"}`).

use bindery_engine::EpochOutput;
use bindery_engine::engine::Sizes;
use bindery_engine::reported::Report;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::{counter, family, gauge, gauge_value};

/// Labels of `bindery_returned_status_changes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    /// `status` (one to write), `clear` or `none` (nothing to write any more).
    change: &'static str,
}

/// Status return's metrics.
pub(super) struct StatusMetrics {
    work_statuses: Gauge,
    returned: Gauge,
    combined: Gauge,
    invalid_collectors: Gauge,
    returned_changes: Family<ChangeLabels, Counter>,
    combined_changes: Counter,
    evaluations: Counter,
    evaluation_errors: Counter,
    evaluation_seconds: Counter<f64, AtomicU64>,
}

impl StatusMetrics {
    pub(super) fn register(r: &mut Registry) -> StatusMetrics {
        let metrics = StatusMetrics {
            work_statuses: gauge(r, "work_statuses", "WorkStatuses of this WDS in the ITS"),
            returned: gauge(
                r,
                "returned_statuses",
                "Workload objects Bindery returns a status into (or clears)",
            ),
            combined: gauge(r, "combined_statuses", "CombinedStatuses computed"),
            invalid_collectors: gauge(
                r,
                "invalid_status_collectors",
                "StatusCollectors whose spec has errors (they collect nothing)",
            ),
            returned_changes: family(
                r,
                "returned_status_changes",
                "Changes of what is returned into workload objects, by change (status, clear, none)",
            ),
            combined_changes: counter(
                r,
                "combined_status_changes",
                "CombinedStatuses changed, created or deleted",
            ),
            evaluations: counter(
                r,
                "collector_row_evaluations",
                "StatusCollector evaluations, one collector on one WEC's row (an unchanged row is not evaluated again)",
            ),
            evaluation_errors: counter(
                r,
                "collector_evaluation_errors",
                "StatusCollector expressions that failed to evaluate (reported in the CombinedStatuses)",
            ),
            evaluation_seconds: {
                let metric = Counter::<f64, AtomicU64>::default();
                r.register(
                    "collector_evaluation_seconds",
                    "Time spent evaluating StatusCollectors' expressions",
                    metric.clone(),
                );
                metric
            },
        };
        for change in ["status", "clear", "none"] {
            let _ = metrics
                .returned_changes
                .get_or_create(&ChangeLabels { change });
        }
        metrics
    }

    /// One epoch closed, with the engine's sizes after it.
    pub(super) fn epoch(&self, out: &EpochOutput, sizes: &Sizes) {
        self.work_statuses.set(gauge_value(sizes.work_statuses));
        self.returned.set(gauge_value(sizes.reports));
        self.combined.set(gauge_value(sizes.combined_statuses));
        self.invalid_collectors
            .set(gauge_value(sizes.invalid_collectors));
        for change in &out.reports {
            let change = match change.report {
                Some(Report::Status(..)) => "status",
                Some(Report::Clear) => "clear",
                None => "none",
            };
            self.returned_changes
                .get_or_create(&ChangeLabels { change })
                .inc();
        }
        self.combined_changes.inc_by(out.combined.len() as u64);
        self.evaluations.inc_by(out.evaluations.rows);
        self.evaluation_errors.inc_by(out.evaluations.errors);
        self.evaluation_seconds
            .inc_by(out.evaluations.time.as_secs_f64());
    }
}
