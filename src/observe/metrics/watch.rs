//! The watches: events received by space, resource and type, and how far the lists
//! are from synced.

use std::fmt::Write as _;
use std::sync::Arc;

use bindery_ingest::{EventType, Space};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{family, gauge, gauge_value};

/// Labels of `bindery_watch_events_total`: no allocation per event (the resource's name
/// is made once per resource and shared: `Tallies::names`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct EventLabels {
    /// `wds` or `its`.
    pub(super) space: SpaceLabel,
    /// `resource.group` (`resource` for the core group), as kubectl names it.
    pub(super) resource: ResourceLabel,
    /// `ADDED`, `MODIFIED`, `DELETED`, `SYNCED` or `RESET`.
    pub(super) r#type: TypeLabel,
}

/// A space as a label value (`wds`, `its`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) struct SpaceLabel(pub(super) Space);

impl EncodeLabelValue for SpaceLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

/// A watch event's type as a label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(super) struct TypeLabel(pub(super) EventType);

impl EncodeLabelValue for TypeLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

/// A resource's name as a label value, shared.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) struct ResourceLabel(pub(super) Arc<str>);

impl EncodeLabelValue for ResourceLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

/// The watches' metrics.
pub(super) struct WatchMetrics {
    events: Family<EventLabels, Counter>,
    unsynced_resources: Gauge,
    held_changes: Gauge,
}

impl WatchMetrics {
    pub(super) fn register(r: &mut Registry) -> WatchMetrics {
        WatchMetrics {
            events: family(
                r,
                "watch_events",
                "Watch events received (replay: read), by space, resource and type",
            ),
            unsynced_resources: gauge(
                r,
                "unsynced_resources",
                "Watched resources whose initial list or relist is in progress (before the first publish they hold back every Binding, after it only their own objects)",
            ),
            held_changes: gauge(
                r,
                "held_changes",
                "Object changes held back by relists in progress, applied at their SYNCED",
            ),
        }
    }

    pub(super) fn event(&self, labels: &EventLabels) {
        self.events.get_or_create(labels).inc();
    }

    pub(super) fn sync_state(&self, unsynced: usize, held: usize) {
        self.unsynced_resources.set(gauge_value(unsynced));
        self.held_changes.set(gauge_value(held));
    }
}
