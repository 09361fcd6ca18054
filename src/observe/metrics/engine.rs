//! The engine: epochs, their duration and lag, the queue before it, its workers, its
//! history journal (`bindery_engine_*`).

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::{FloatGauge, counter, gauge, gauge_value, histogram};

/// The engine's metrics.
pub(super) struct EngineMetrics {
    epochs: Counter,
    workers: Gauge,
    epoch_duration: Histogram,
    lag: FloatGauge,
    queued_events: Gauge,
    history_changes: Gauge,
}

impl EngineMetrics {
    pub(super) fn register(registry: &mut Registry) -> EngineMetrics {
        let r = registry.sub_registry_with_prefix("engine");
        let lag = FloatGauge::default();
        r.register_with_unit(
            "lag",
            "Age of the oldest event of the last epoch when it closed",
            Unit::Seconds,
            lag.clone(),
        );
        EngineMetrics {
            epochs: counter(r, "epochs", "Epochs closed"),
            workers: gauge(
                r,
                "workers",
                "Timely workers running the engine's dataflow, over every process (--workers × --processes)",
            ),
            epoch_duration: histogram(
                r,
                "epoch_duration",
                "Time to close one epoch (run the dataflow and materialize its output)",
                exponential_buckets(0.000_05, 2.0, 20),
            ),
            lag,
            queued_events: gauge(
                r,
                "queued_events",
                "Watch events received and not yet taken by the engine",
            ),
            history_changes: gauge(
                r,
                "history_changes",
                "Binding changes with their causes held in the history journal (GET /history; --history-limit)",
            ),
        }
    }

    pub(super) fn workers(&self, workers: usize) {
        self.workers.set(gauge_value(workers));
    }

    pub(super) fn queued_events(&self, n: usize) {
        self.queued_events.set(gauge_value(n));
    }

    pub(super) fn history_changes(&self, n: usize) {
        self.history_changes.set(gauge_value(n));
    }

    pub(super) fn epoch(&self, duration: Duration, lag: Duration) {
        self.epochs.inc();
        self.epoch_duration.observe(duration.as_secs_f64());
        self.lag.set(lag.as_secs_f64());
    }
}
