//! What an explanation says: the object reference, the errors and the explanation
//! records (serialized as JSON by `bindery explain -o json`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::input::LabelMap;
use crate::oracle::ObjectKeyTuple;
use crate::policy::ClauseSpec;

/// A workload object's identity: `GROUP/RESOURCE/[NAMESPACE/]NAME`, the group empty for
/// the core group (`/namespaces/nginx`, `apps/deployments/nginx/nginx-deployment`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace (`""` for a cluster-scoped object).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    pub(crate) fn tuple(&self) -> ObjectKeyTuple {
        (
            self.group.clone(),
            self.resource.clone(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }

    pub(super) fn from_tuple(key: &ObjectKeyTuple) -> ObjectKey {
        ObjectKey {
            group: key.0.clone(),
            resource: key.1.clone(),
            namespace: key.2.clone(),
            name: key.3.clone(),
        }
    }
}

impl FromStr for ObjectKey {
    type Err = ExplainError;

    /// Parses `GROUP/RESOURCE/NAME` (cluster-scoped) or `GROUP/RESOURCE/NAMESPACE/NAME`.
    fn from_str(s: &str) -> Result<ObjectKey, ExplainError> {
        let malformed = |reason: &str| ExplainError::MalformedObject {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let (group, resource, namespace, name) = match parts.as_slice() {
            [g, r, n] => (*g, *r, "", *n),
            [g, r, ns, n] => {
                if ns.is_empty() {
                    return Err(malformed("the namespace is empty"));
                }
                (*g, *r, *ns, *n)
            }
            _ => {
                return Err(malformed(&format!(
                    "it has {} '/'-separated parts, not 3 or 4",
                    parts.len()
                )));
            }
        };
        if resource.is_empty() {
            return Err(malformed("the resource is empty"));
        }
        if name.is_empty() {
            return Err(malformed("the name is empty"));
        }
        Ok(ObjectKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}/{}", self.group, self.resource, self.name)
        } else {
            write!(
                f,
                "{}/{}/{}/{}",
                self.group, self.resource, self.namespace, self.name
            )
        }
    }
}

/// Why an explanation cannot be given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// No BindingPolicy of that name exists (or it is being deleted).
    #[error("no BindingPolicy named {name:?}{}", listing("existing policies", .known))]
    UnknownPolicy {
        /// The name asked for.
        name: String,
        /// The policies that exist, sorted.
        known: Vec<String>,
    },
    /// An object reference that is not `GROUP/RESOURCE/[NAMESPACE/]NAME`.
    #[error(
        "malformed object {input:?}: {reason} (expected GROUP/RESOURCE/NAME for a cluster-scoped object \
         or GROUP/RESOURCE/NAMESPACE/NAME, GROUP empty for the core group, e.g. /namespaces/nginx)"
    )]
    MalformedObject {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No workload object with that identity exists.
    #[error("object {object} not found: there is no such workload object{}", listing("objects of that resource and name", .elsewhere))]
    ObjectNotFound {
        /// The object asked for.
        object: ObjectKey,
        /// Objects of the same group, resource and name in other namespaces (or scope).
        elsewhere: Vec<String>,
    },
    /// No WEC of that name exists.
    #[error("no WEC (ManagedCluster) named {name:?}{}", listing("existing WECs", .known))]
    ClusterNotFound {
        /// The cluster id asked for.
        name: String,
        /// Some existing WECs, sorted.
        known: Vec<String>,
    },
}

/// `"; existing policies: a, b"`, or nothing for an empty list; at most 10 names.
fn listing(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut shown = names
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        shown.push_str(&format!(", ... ({} in all)", names.len()));
    }
    format!("; {what}: {shown}")
}

/// What to explain: a policy, and optionally a WEC and/or a workload object. With
/// neither, the policy is explained overall ([`Overview`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// The BindingPolicy's name.
    pub policy: String,
    /// The workload object to explain the `downsync` clauses for.
    pub object: Option<ObjectKey>,
    /// The WEC to explain the `clusterSelectors` for.
    pub cluster: Option<String>,
}

/// One test (a label requirement) that held or failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The requirement, e.g. `matchLabels location-group=edge`.
    pub test: String,
    /// True when it held.
    pub held: bool,
    /// Why, e.g. `the cluster has location-group=core`.
    pub reason: String,
}

/// One label selector (of `clusterSelectors`, `objectSelectors` or
/// `namespaceSelectors`) evaluated on one label set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectorExplanation {
    /// Where it is in the policy, e.g. `spec.clusterSelectors[0]`.
    pub path: String,
    /// True when it matches (always false for an invalid selector).
    pub matches: bool,
    /// Why it is invalid, when it is (an invalid selector matches nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// True for the empty selector `{}`, which matches every label set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub empty: bool,
    /// Each requirement: `matchLabels` entries, then `matchExpressions`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<Check>,
}

/// The `clusterSelectors` of a policy evaluated on one WEC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExplanation {
    /// The cluster id.
    pub cluster: String,
    /// Its labels.
    pub labels: LabelMap,
    /// True when the WEC is one of the policy's destinations.
    pub destination: bool,
    /// Each `clusterSelectors[i]`.
    pub selectors: Vec<SelectorExplanation>,
}

/// One test of a `downsync` clause (`apiGroup`, `resources`, `namespaces`,
/// `objectNames`, `objectSelectors`, `namespaceSelectors`) on one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestExplanation {
    /// The test's field name.
    pub test: String,
    /// True when it held.
    pub held: bool,
    /// Why.
    pub reason: String,
    /// The Namespace's labels, for a `namespaceSelectors` test evaluated on them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_labels: Option<LabelMap>,
    /// Each selector, for `objectSelectors` and `namespaceSelectors`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<SelectorExplanation>,
}

/// How a policy modulates the downsync of an object, in string form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModulationView {
    /// `createOnly`.
    pub create_only: bool,
    /// `statusCollectors`, sorted, no duplicates.
    pub status_collectors: Vec<String>,
    /// `wantSingletonReportedState`.
    pub want_singleton_reported_state: bool,
    /// `wantMultiWECReportedState`.
    #[serde(rename = "wantMultiWECReportedState")]
    pub want_multi_wec_reported_state: bool,
}

impl ModulationView {
    pub(super) fn of_clause(clause: &ClauseSpec) -> ModulationView {
        let collectors: BTreeSet<String> = clause.status_collectors.iter().cloned().collect();
        ModulationView {
            create_only: clause.create_only,
            status_collectors: collectors.into_iter().collect(),
            want_singleton_reported_state: clause.want_singleton_reported_state,
            want_multi_wec_reported_state: clause.want_multi_wec_reported_state,
        }
    }

    pub(super) fn merge(&mut self, other: &ModulationView) {
        self.create_only |= other.create_only;
        self.want_singleton_reported_state |= other.want_singleton_reported_state;
        self.want_multi_wec_reported_state |= other.want_multi_wec_reported_state;
        let all: BTreeSet<String> = self
            .status_collectors
            .iter()
            .chain(&other.status_collectors)
            .cloned()
            .collect();
        self.status_collectors = all.into_iter().collect();
    }

    /// `createOnly, statusCollectors [a, b]`, or `none`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.create_only {
            parts.push("createOnly".to_string());
        }
        if !self.status_collectors.is_empty() {
            parts.push(format!(
                "statusCollectors [{}]",
                self.status_collectors.join(", ")
            ));
        }
        if self.want_singleton_reported_state {
            parts.push("wantSingletonReportedState".to_string());
        }
        if self.want_multi_wec_reported_state {
            parts.push("wantMultiWECReportedState".to_string());
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// One `spec.downsync[i]` clause evaluated on one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseExplanation {
    /// Where it is in the policy, e.g. `spec.downsync[1]` (the index in the policy as
    /// written, counting clauses that could not be read).
    pub path: String,
    /// True when every test held: the clause selects the object.
    pub passed: bool,
    /// Problems reported about the clause itself (it cannot be read, or it
    /// discriminates nothing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Each test, in the order of the spec's table (empty for an unreadable clause).
    pub tests: Vec<TestExplanation>,
    /// What selection through this clause implies.
    pub modulation: ModulationView,
}

/// A policy's `downsync` evaluated on one workload object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectExplanation {
    /// The object.
    pub object: ObjectKey,
    /// The version it was seen in.
    pub version: String,
    /// Its `resourceVersion`.
    pub resource_version: String,
    /// Its labels.
    pub labels: LabelMap,
    /// True when at least one clause selects it: it is in the Binding.
    pub selected: bool,
    /// The combined modulation over every clause that selects it (when selected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modulation: Option<ModulationView>,
    /// Each `downsync[i]`.
    pub clauses: Vec<ClauseExplanation>,
    /// Where its status comes from (status return), over every policy.
    pub reported_state: ReportedStateExplanation,
}

/// A policy asking for an object's reported state, and the WECs it sends it to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyWecs {
    /// The policy.
    pub policy: String,
    /// Its destinations.
    pub wecs: Vec<String>,
}

/// One WorkStatus of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatusSeen {
    /// Its WEC (namespace).
    pub wec: String,
    /// Its name.
    pub name: String,
    /// Whether it reports a status.
    pub has_status: bool,
}

/// Where a workload object's status comes from, over every policy
/// (`docs/status-semantics.md`): who asks, KubeStellar's decision, the WECs' reports,
/// and what Bindery writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedStateExplanation {
    /// The policies selecting it with `wantSingletonReportedState`.
    pub singleton: Vec<PolicyWecs>,
    /// The policies selecting it with `wantMultiWECReportedState`.
    pub multi_wec: Vec<PolicyWecs>,
    /// The decision: `copy from WEC X`, `aggregate over X, Y`, `clear`.
    pub decision: String,
    /// Its WorkStatuses, by WEC and name.
    pub work_statuses: Vec<WorkStatusSeen>,
    /// Whether it carries a status-return label.
    pub labelled: bool,
    /// What Bindery writes into it.
    pub writes: String,
}

/// A destination and the cluster selectors that matched it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationMatch {
    /// The cluster id.
    pub cluster: String,
    /// Paths of the `clusterSelectors` that match it.
    pub matched_by: Vec<String>,
}

/// How many objects one clause selects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClauseCount {
    /// Where it is in the policy, e.g. `spec.downsync[0]`.
    pub path: String,
    /// Objects it selects (an object can be selected by several clauses).
    pub selects: usize,
    /// False for a clause that could not be read (it selects nothing).
    pub readable: bool,
}

/// A policy explained overall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// Number of `clusterSelectors` (valid or not).
    pub cluster_selectors: usize,
    /// WECs in the inventory.
    pub wecs: usize,
    /// The destinations, sorted by cluster id.
    pub destinations: Vec<DestinationMatch>,
    /// Workload objects in the state.
    pub objects: usize,
    /// Workload objects the policy selects (its Binding's entries).
    pub selected: usize,
    /// Each `downsync[i]` with the number of objects it selects.
    pub clauses: Vec<ClauseCount>,
}

/// Why a policy binds what it binds: its problems, and the overview or the evaluation of
/// its selectors on one WEC and/or its clauses on one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The policy's name.
    pub policy: String,
    /// Its `metadata.uid`.
    pub uid: String,
    /// Its `metadata.generation`.
    pub generation: i64,
    /// Its problems (those of its spec, and `wantSingletonReportedState` with other
    /// than one WEC), sorted; what its status reports.
    pub problems: Vec<String>,
    /// The policy overall (when neither a WEC nor an object was asked about).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overview: Option<Overview>,
    /// The `clusterSelectors` on the WEC asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterExplanation>,
    /// The `downsync` clauses on the object asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectExplanation>,
}
