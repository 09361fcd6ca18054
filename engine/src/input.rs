//! What the engine is told: changes of WECs, workload objects and policies, in plain
//! strings. Ingest turns watch events into these; the engine and the oracle consume them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::explain::ObjectKey;
use crate::policy::PolicySpec;

/// Label map of an object.
pub type LabelMap = BTreeMap<String, String>;

/// Identifies a workload object and the version it was seen in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadRef {
    /// API group (`""` for core).
    pub group: String,
    /// API version the object was seen in.
    pub version: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace (`""` for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl WorkloadRef {
    /// The identity Bindings use: the same object in another version is the same object.
    pub fn identity(&self) -> (&str, &str, &str, &str) {
        (&self.group, &self.resource, &self.namespace, &self.name)
    }
}

/// The state of a workload object that Bindings and CombinedStatuses depend on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadState {
    /// `metadata.labels`.
    pub labels: LabelMap,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.uid` (names and owns the object's CombinedStatuses; `""` if unknown).
    pub uid: String,
    /// `kind` (a CombinedStatus's owner reference; `""` if unknown).
    pub kind: String,
}

/// A BindingPolicy that exists and is not being deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInput {
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// The parsed `spec`.
    pub spec: PolicySpec,
}

/// A WorkStatus's content: the object it reports on and that object's status in the
/// WEC (`docs/status-semantics.md`, "Inputs").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkStatusReport {
    /// The workload object, from `spec.sourceRef`.
    pub object: ObjectKey,
    /// The top-level `status`: the WEC object's `.status`, if it has one.
    pub status: Option<Value>,
    /// When the WorkStatus's `status` was last written (RFC 3339: the latest
    /// `managedFields` time of an entry that writes `status`), if known: a collector's
    /// `propagation.lastReturnedUpdateTimestamp`.
    pub last_update: Option<String>,
}

/// A StatusCollector that exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorInput {
    /// `metadata.generation`.
    pub generation: i64,
    /// `spec`, as written.
    pub spec: Value,
}

/// A workload object's whole content, as a GET returned it (what a StatusCollector's
/// `obj` reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectContent {
    /// The `resourceVersion` of the content.
    pub resource_version: String,
    /// The object.
    pub object: Value,
}

/// One change of the engine's input. `None` states mean "gone".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A WEC (ManagedCluster) with its labels.
    Wec {
        /// Cluster id (the ManagedCluster's name).
        name: String,
        /// Labels, or `None` when the WEC is gone.
        labels: Option<LabelMap>,
    },
    /// A workload object.
    Workload {
        /// Which object.
        object: WorkloadRef,
        /// Its state, or `None` when it is gone.
        state: Option<WorkloadState>,
    },
    /// A BindingPolicy.
    Policy {
        /// Name (also the name of its Binding).
        name: String,
        /// The policy, or `None` when it is gone or being deleted.
        policy: Option<PolicyInput>,
    },
    /// Bindery wrote a returned status into a workload object, which now has this
    /// `resourceVersion`: an update of the object to it that changes nothing else
    /// (labels) is Bindery's own and does not change the object's Binding entries
    /// (`docs/status-semantics.md`, "Deliberate differences"). Told before or after that
    /// update arrives.
    StatusWritten {
        /// The object.
        object: ObjectKey,
        /// Its `resourceVersion` after the write.
        resource_version: String,
    },
    /// A StatusCollector in the WDS.
    Collector {
        /// Its name.
        name: String,
        /// The collector, or `None` when it is gone.
        collector: Option<CollectorInput>,
    },
    /// The content of a workload object the engine asked for
    /// ([`EpochOutput::content_requests`](crate::EpochOutput::content_requests)), read
    /// by the StatusCollectors that use `obj`. Ignored for an object the engine does not
    /// know; dropped when the object goes.
    Content {
        /// The object.
        object: ObjectKey,
        /// Its content, or `None` when it was not found.
        content: Option<ObjectContent>,
    },
    /// A WorkStatus in the ITS: one WEC's report of one workload object.
    WorkStatus {
        /// The WEC: the WorkStatus's namespace.
        wec: String,
        /// The WorkStatus's name.
        name: String,
        /// Its content, or `None` when it is gone.
        report: Option<WorkStatusReport>,
    },
}
