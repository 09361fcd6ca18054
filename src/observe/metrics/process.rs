//! The process: leading or not, Events published on policies, resident memory.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::{counter, family, gauge, gauge_value};
use crate::runtime::policy_events::Reason;

/// How publishing an Event on a policy ended (`bindery_policy_events_total{result}`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum PolicyEventResult {
    /// Published.
    Published,
    /// Not published: the rate limit.
    Suppressed,
    /// Not published: the queue was full.
    Dropped,
    /// The API server refused it.
    Failed,
}

impl PolicyEventResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyEventResult::Published => "published",
            PolicyEventResult::Suppressed => "suppressed",
            PolicyEventResult::Dropped => "dropped",
            PolicyEventResult::Failed => "failed",
        }
    }
}

impl EncodeLabelValue for PolicyEventResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for Reason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `bindery_policy_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyEventLabels {
    /// The Event's reason (`PolicyProblem`, `BindingWriteFailed`, `ProblemsResolved`).
    reason: Reason,
    /// How publishing it ended.
    result: PolicyEventResult,
}

/// The process's metrics.
pub(super) struct ProcessMetrics {
    leader: Gauge,
    leader_transitions: Counter,
    policy_events: Family<PolicyEventLabels, Counter>,
    resident_memory: Gauge,
}

impl ProcessMetrics {
    pub(super) fn register(registry: &mut Registry) -> ProcessMetrics {
        let leader = gauge(
            registry,
            "leader",
            "1 while this process writes (it holds the leader Lease, or runs without --leader-elect), else 0",
        );
        let leader_transitions = counter(
            registry,
            "leader_transitions",
            "Times this process started or stopped leading",
        );
        let policy_events = family(
            registry,
            "policy_events",
            "Kubernetes Events on BindingPolicies, by reason and result (published, suppressed by the rate limit, dropped, failed)",
        );
        let resident_memory = Gauge::default();
        registry
            .sub_registry_with_prefix("process")
            .register_with_unit(
                "resident_memory",
                "Resident memory of the process",
                Unit::Bytes,
                resident_memory.clone(),
            );
        ProcessMetrics {
            leader,
            leader_transitions,
            policy_events,
            resident_memory,
        }
    }

    pub(super) fn leader(&self, leading: bool) {
        let now = i64::from(leading);
        if self.leader.set(now) != now {
            self.leader_transitions.inc();
        }
    }

    pub(super) fn policy_event(&self, reason: Reason, result: PolicyEventResult) {
        self.policy_events
            .get_or_create(&PolicyEventLabels { reason, result })
            .inc();
    }

    pub(super) fn resident_memory(&self, bytes: usize) {
        self.resident_memory.set(gauge_value(bytes));
    }
}
