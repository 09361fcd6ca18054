//! What the caller asks the sink to write: [`DesiredBinding`] and [`DesiredStatus`].

use std::time::SystemTime;

use bindery_engine::{Binding, PolicyStatus};
use serde_json::Value;

/// The desired state of one Binding.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredBinding {
    /// The Binding's name (that of its BindingPolicy).
    pub name: String,
    /// The whole Binding object as the engine renders it ([`Binding::to_json`]:
    /// `apiVersion`, `kind`, `metadata.name`, `metadata.ownerReferences`, `spec`), or `None`
    /// when the Binding must not exist (its policy is gone): it is deleted.
    pub binding: Option<Value>,
    /// When the oldest change this desired state reflects was received (a watch event's
    /// arrival), if known: the sink's observer measures event-to-Binding latency from it.
    /// Coalesced writes keep the oldest.
    pub changed_at: Option<SystemTime>,
}

impl DesiredBinding {
    /// The Binding must be as `binding` renders it.
    pub fn present(binding: &Binding) -> Self {
        DesiredBinding {
            name: binding.name.clone(),
            binding: Some(binding.to_json()),
            changed_at: None,
        }
    }

    /// The Binding `name` must not exist.
    pub fn absent(name: impl Into<String>) -> Self {
        DesiredBinding {
            name: name.into(),
            binding: None,
            changed_at: None,
        }
    }

    /// The same, reflecting changes received since `at`.
    pub fn changed_at(mut self, at: Option<SystemTime>) -> Self {
        self.changed_at = at;
        self
    }
}

/// The desired status of one BindingPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredStatus {
    /// The BindingPolicy's name.
    pub policy: String,
    /// `status.observedGeneration`: the policy generation its Binding reflects.
    pub observed_generation: i64,
    /// The policy's problems (empty when it has none).
    pub errors: Vec<String>,
    /// Why the policy's Binding could not be written, if it could not (`Synced=False`).
    pub binding_problem: Option<String>,
    /// The StatusCollectors its Binding's entries name that do not exist or are invalid,
    /// sorted, for the `StatusCollectorsAvailable` condition; `None`: the condition is
    /// not maintained (status return is off).
    pub missing_collectors: Option<Vec<String>>,
}

impl DesiredStatus {
    /// The status of `policy` as the engine sees it.
    pub fn from_engine(policy: impl Into<String>, status: &PolicyStatus) -> Self {
        DesiredStatus {
            policy: policy.into(),
            observed_generation: status.observed_generation,
            errors: status.problems.clone(),
            binding_problem: None,
            missing_collectors: Some(status.missing_collectors.clone()),
        }
    }

    /// `status.errors`: the policy's problems, then its Binding's.
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .iter()
            .chain(&self.binding_problem)
            .cloned()
            .collect()
    }
}
