//! One CombinedStatus: which collectors count (valid ones Bindery can evaluate), its
//! table (a row per destination WEC), and the object KubeStellar's API gives it
//! ([`CombinedResult::to_json`]). Pure: the engine's worker 0 and the oracle both use it.

use serde_json::{Map, Value, json};

use super::cel::Row;
use super::combine::Combination;
use super::spec::{CollectorSpec, RowEvaluation};
use crate::input::WorkloadRef;

/// The namespace of the CombinedStatuses of cluster-scoped objects.
pub const REPORT_NAMESPACE: &str = "kubestellar-report";
/// The labels every CombinedStatus carries, in KubeStellar's order: the object's API
/// group, resource, namespace and name, and the policy's name.
pub const LABELS: [&str; 5] = [
    "status.kubestellar.io/api-group",
    "status.kubestellar.io/resource",
    "status.kubestellar.io/namespace",
    "status.kubestellar.io/name",
    "status.kubestellar.io/binding-policy",
];

/// A StatusCollector's spec as Bindery uses it: compiled, or the errors its status
/// reports (an invalid collector collects nothing).
pub fn compile_collector(spec: &Value) -> Result<CollectorSpec, Vec<String>> {
    CollectorSpec::compile(Some(spec))
}

/// Whether a CombinedStatus with these valid collectors can be computed with the
/// object's content `obj`: not while a collector that reads `obj` lacks it (the
/// CombinedStatus then waits for the content; it is never computed from none).
pub fn computable<'a>(
    mut collectors: impl Iterator<Item = &'a CollectorSpec>,
    obj: Option<&Value>,
) -> bool {
    obj.is_some() || collectors.all(|c| !c.uses().obj)
}

/// One row of a CombinedStatus's table: a destination WEC and what its WorkStatus of the
/// object reports (`None`: no WorkStatus, or more than one there).
#[derive(Clone, Copy, Debug)]
pub struct TableRow<'a> {
    /// The WEC's name.
    pub wec: &'a str,
    /// The workload object's content (`obj`; `None` where no collector reads it).
    pub obj: Option<&'a Value>,
    /// The WorkStatus's `status`.
    pub status: Option<&'a Value>,
    /// When that status was last written (RFC 3339).
    pub last_update: Option<&'a str>,
}

/// `spec` evaluated on `row`.
pub fn evaluate_row(spec: &CollectorSpec, row: &TableRow<'_>) -> RowEvaluation {
    let obj = row.obj.filter(|_| spec.uses().obj);
    spec.evaluate(&Row::new(row.wec, obj, row.status, row.last_update))
}

/// A CombinedStatus as Bindery computes it, for one (BindingPolicy, workload object)
/// whose entry names collectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CombinedResult {
    /// The policy's name.
    pub policy: String,
    /// The policy's uid.
    pub policy_uid: String,
    /// The workload object (in the version it was last seen in).
    pub object: WorkloadRef,
    /// The object's uid.
    pub object_uid: String,
    /// The object's kind.
    pub object_kind: String,
    /// One per named collector that exists and is valid, sorted by collector name.
    pub results: Vec<Combination>,
}

impl CombinedResult {
    /// `<object uid>.<policy uid>`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.object_uid, self.policy_uid)
    }

    /// The order CombinedStatuses are listed in: by namespace and name (then by policy
    /// and object, should two share a name).
    pub fn order(&self) -> (&str, String, &str, (&str, &str, &str, &str)) {
        (
            self.namespace(),
            self.name(),
            &self.policy,
            self.object.identity(),
        )
    }

    /// The object's namespace, or [`REPORT_NAMESPACE`] for a cluster-scoped object.
    pub fn namespace(&self) -> &str {
        if self.object.namespace.is_empty() {
            REPORT_NAMESPACE
        } else {
            &self.object.namespace
        }
    }

    /// KubeStellar's CombinedStatus object: name, namespace, the five labels, the
    /// owner reference to the object (no `controller`, no `blockOwnerDeletion`) and
    /// `results` (left out when empty).
    pub fn to_json(&self) -> Value {
        let o = &self.object;
        let api_version = if o.group.is_empty() {
            o.version.clone()
        } else {
            format!("{}/{}", o.group, o.version)
        };
        let values = [&o.group, &o.resource, &o.namespace, &o.name, &self.policy];
        let labels: Map<String, Value> = LABELS
            .iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
            .collect();
        let mut out = json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "CombinedStatus",
            "metadata": {
                "name": self.name(),
                "namespace": self.namespace(),
                "labels": labels,
                "ownerReferences": [{
                    "apiVersion": api_version,
                    "kind": self.object_kind,
                    "name": o.name,
                    "uid": self.object_uid,
                }],
            },
        });
        if !self.results.is_empty() {
            out["results"] = self.results.iter().map(Combination::to_json).collect();
        }
        out
    }
}

/// A StatusCollector's status as Bindery writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorStatus {
    /// The collector's name.
    pub name: String,
    /// The generation of the spec checked.
    pub observed_generation: i64,
    /// The errors (empty when valid).
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KubeStellar's e2e "can list all the WECs where availableReplicas equals
    /// replicas": `obj` is the object's content, and without it nothing is computed.
    #[test]
    fn a_collector_reading_obj_needs_the_content_and_uses_it() {
        let spec = compile_collector(&json!({
            "filter": "obj.spec.replicas == returned.status.availableReplicas",
            "select": [{"name": "wecName", "def": "inventory.name"}],
            "limit": 20,
        }))
        .expect("valid");
        let plain = compile_collector(&json!({
            "select": [{"name": "wecName", "def": "inventory.name"}], "limit": 20,
        }))
        .unwrap();
        let obj = json!({"spec": {"replicas": 2}});
        assert!(!computable([&spec, &plain].into_iter(), None));
        assert!(computable([&plain].into_iter(), None));
        assert!(computable([&spec, &plain].into_iter(), Some(&obj)));
        let row = |available: i64| {
            let status = json!({"availableReplicas": available});
            let row = TableRow {
                wec: "cluster1",
                obj: Some(&obj),
                status: Some(&status),
                last_update: None,
            };
            evaluate_row(&spec, &row)
        };
        let rows = vec![
            ("cluster1".to_string(), row(2)),
            ("cluster2".to_string(), row(1)),
        ];
        let combined = super::super::combine("full", &spec, &rows);
        assert_eq!(
            combined.rows.len(),
            1,
            "only the WEC whose replicas are all available"
        );
    }
}
