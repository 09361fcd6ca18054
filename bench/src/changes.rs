//! The engine's side of the benches: building its input changes (objects, labels,
//! policies) and counting what an epoch changed in the Bindings.

use bindery_engine::{
    Change, EpochOutput, LabelMap, PolicyInput, PolicySpec, WorkloadRef, WorkloadState,
};
use serde_json::Value;

/// A label map from `(key, value)` pairs.
pub fn labels(pairs: &[(&str, String)]) -> LabelMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A workload object and its current state.
#[derive(Clone)]
pub struct Object {
    pub object: WorkloadRef,
    pub state: WorkloadState,
}

impl Object {
    /// The change that upserts it as it is now.
    pub fn change(&self) -> Change {
        Change::Workload {
            object: self.object.clone(),
            state: Some(self.state.clone()),
        }
    }

    /// The change that deletes it.
    pub fn deletion(&self) -> Change {
        Change::Workload {
            object: self.object.clone(),
            state: None,
        }
    }
}

/// A core (`v1`) Namespace, a workload object too.
pub fn namespace(name: String, labels: LabelMap, resource_version: String) -> Object {
    Object {
        object: WorkloadRef {
            group: String::new(),
            version: "v1".into(),
            resource: "namespaces".into(),
            namespace: String::new(),
            name,
        },
        state: WorkloadState {
            labels,
            resource_version,
            ..Default::default()
        },
    }
}

/// The change that upserts BindingPolicy `name` (uid `uid-<name>`) with `spec`.
pub fn policy(name: &str, generation: i64, spec: &Value) -> Change {
    Change::Policy {
        name: name.to_string(),
        policy: Some(PolicyInput {
            uid: format!("uid-{name}"),
            generation,
            spec: PolicySpec::parse(Some(spec)),
        }),
    }
}

/// Binding entries an epoch changed: destinations and workload entries, added plus
/// removed (an entry whose resourceVersion changed counts twice).
pub fn entries_changed(out: &EpochOutput) -> usize {
    out.changes
        .iter()
        .map(|c| {
            c.destinations_added.len()
                + c.destinations_removed.len()
                + c.workload_added.len()
                + c.workload_removed.len()
        })
        .sum()
}
