//! The Bindings: their changes (per policy too, with `--per-policy-metrics`) and the
//! sizes of the state they are computed from.

use bindery_engine::BindingChange;
use bindery_engine::engine::Sizes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{MetricsOptions, counter, family, gauge, gauge_value};

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

/// The Bindings' metrics.
pub(super) struct BindingMetrics {
    changes: Counter,
    entry_changes: Family<EntryLabels, Counter>,
    /// Registered only with per-policy metrics.
    policy_entry_changes: Option<Family<PolicyChangeLabels, Counter>>,
    wecs: Gauge,
    objects: Gauge,
    policies: Gauge,
    bindings: Gauge,
    workload_entries: Gauge,
    destinations: Gauge,
}

impl BindingMetrics {
    pub(super) fn register(r: &mut Registry, options: MetricsOptions) -> BindingMetrics {
        let metrics = BindingMetrics {
            changes: counter(
                r,
                "binding_changes",
                "Binding changes emitted by the engine (one per Binding per epoch it changed in)",
            ),
            entry_changes: family(
                r,
                "binding_entry_changes",
                "Binding entries added or removed, by entry kind (workload, destination)",
            ),
            policy_entry_changes: options.per_policy.then(|| {
                family(
                    r,
                    "policy_binding_entry_changes",
                    "Binding entries added or removed, per policy",
                )
            }),
            wecs: gauge(r, "wecs", "WECs (ManagedClusters)"),
            objects: gauge(r, "workload_objects", "Workload objects"),
            policies: gauge(r, "policies", "BindingPolicies"),
            bindings: gauge(r, "bindings", "Bindings"),
            workload_entries: gauge(
                r,
                "binding_workload_entries",
                "Workload entries over all Bindings",
            ),
            destinations: gauge(r, "binding_destinations", "Destinations over all Bindings"),
        };
        // Known label sets start at zero, so that rates and sums see them from the start.
        for entry in ["workload", "destination"] {
            for change in ["added", "removed"] {
                let _ = metrics
                    .entry_changes
                    .get_or_create(&EntryLabels { entry, change });
            }
        }
        metrics
    }

    /// One Binding changed in an epoch; returns the entries it added and removed.
    pub(super) fn change(&self, change: &BindingChange) -> (u64, u64) {
        let added = (change.workload_added.len(), change.destinations_added.len());
        let removed = (
            change.workload_removed.len(),
            change.destinations_removed.len(),
        );
        for (entry, what, n) in [
            ("workload", "added", added.0),
            ("destination", "added", added.1),
            ("workload", "removed", removed.0),
            ("destination", "removed", removed.1),
        ] {
            self.entry_changes
                .get_or_create(&EntryLabels {
                    entry,
                    change: what,
                })
                .inc_by(n as u64);
        }
        let (added, removed) = ((added.0 + added.1) as u64, (removed.0 + removed.1) as u64);
        if let Some(per_policy) = &self.policy_entry_changes {
            for (what, n) in [("added", added), ("removed", removed)] {
                per_policy
                    .get_or_create(&PolicyChangeLabels {
                        policy: change.binding.clone(),
                        change: what,
                    })
                    .inc_by(n);
            }
        }
        self.changes.inc();
        (added, removed)
    }

    pub(super) fn sizes(&self, sizes: &Sizes) {
        self.wecs.set(gauge_value(sizes.wecs));
        self.objects.set(gauge_value(sizes.objects));
        self.policies.set(gauge_value(sizes.policies));
        // One Binding per policy.
        self.bindings.set(gauge_value(sizes.policies));
        self.workload_entries
            .set(gauge_value(sizes.workload_entries));
        self.destinations.set(gauge_value(sizes.destinations));
    }
}
