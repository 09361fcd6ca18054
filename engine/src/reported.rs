//! Reported state returned into a workload object (`wantSingletonReportedState`,
//! `wantMultiWECReportedState`): which WECs' status an object gets ([`decide`], the
//! decision table of `pkg/status/singletonstatus.go:64-102`), and what status that is
//! ([`desired`]: a copy, KubeStellar's multi-WEC aggregation for apps Deployments,
//! ReplicaSets and DaemonSets, or a clear; `pkg/status/multiwec-status.go`,
//! `pkg/status/aggregation/`). Pure: the dataflow and the oracle both use it
//! (`docs/status-semantics.md`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The label on an object whose status is one WEC's (`"true"`).
pub const SINGLETON_LABEL: &str = "managed-by.kubestellar.io/singletonstatus";
/// The label on an object whose status is aggregated over several WECs (`"true"`).
pub const MULTI_WEC_LABEL: &str = "managed-by.kubestellar.io/multiwecstatus";

/// What the policies selecting an object ask of its reported state: whether any asks
/// for singleton (`S`) or multi-WEC (`M`) return, and the union of the destinations of
/// those that do (`QS`, `QM`).
/// WECs are names (`W = String`) or, in the dataflow, symbols.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<W = String> {
    /// `S`.
    pub singleton: bool,
    /// `QS`.
    pub singleton_wecs: BTreeSet<W>,
    /// `M`.
    pub multi: bool,
    /// `QM`.
    pub multi_wecs: BTreeSet<W>,
}

impl<W> Default for Request<W> {
    fn default() -> Self {
        Request {
            singleton: false,
            singleton_wecs: BTreeSet::new(),
            multi: false,
            multi_wecs: BTreeSet::new(),
        }
    }
}

/// Where an object's status comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Plan<W: Ord = String> {
    /// From this one WEC.
    Copy(W),
    /// Aggregated over these WECs.
    Aggregate(BTreeSet<W>),
    /// From nowhere: a status Bindery returned before is cleared.
    Clear,
}

impl<W: Ord> Plan<W> {
    /// Whether the plan reads `wec`'s WorkStatuses.
    pub fn reads(&self, wec: &W) -> bool {
        match self {
            Plan::Copy(w) => w == wec,
            Plan::Aggregate(wecs) => wecs.contains(wec),
            Plan::Clear => false,
        }
    }

    /// The same plan with each WEC mapped by `f` (which keeps their order or not: the
    /// sets are sorted again).
    pub fn map<V: Ord>(&self, mut f: impl FnMut(&W) -> V) -> Plan<V> {
        match self {
            Plan::Copy(w) => Plan::Copy(f(w)),
            Plan::Aggregate(wecs) => Plan::Aggregate(wecs.iter().map(f).collect()),
            Plan::Clear => Plan::Clear,
        }
    }
}

/// KubeStellar's decision table, in its order.
pub fn decide<W: Ord + Clone>(request: &Request<W>) -> Plan<W> {
    let Request {
        singleton: s,
        singleton_wecs: qs,
        multi: m,
        multi_wecs: qm,
    } = request;
    if *s && *m {
        let q: BTreeSet<W> = qs.union(qm).cloned().collect();
        return match q.len() {
            1 => Plan::Copy(q.into_iter().next().expect("one")),
            _ => Plan::Aggregate(q),
        };
    }
    if *m && qm.len() == 1 {
        return Plan::Copy(qm.iter().next().expect("one").clone());
    }
    if *s && qs.len() == 1 {
        return Plan::Copy(qs.iter().next().expect("one").clone());
    }
    if *m && !qm.is_empty() {
        return Plan::Aggregate(qm.clone());
    }
    Plan::Clear
}

/// Which label marks a returned status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Label {
    /// [`SINGLETON_LABEL`].
    Singleton,
    /// [`MULTI_WEC_LABEL`].
    MultiWec,
}

/// What an object's status is to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desired {
    /// This status, with this label (the other removed).
    Status(Value, Label),
    /// Cleared (`status: {}`, both labels removed), if the object carries either label.
    Clear,
    /// Left as it is (a copy from a WorkStatus without a status; an aggregation of
    /// several statuses of a kind KubeStellar does not aggregate).
    Keep,
}

/// What `plan` makes an object's status, given its WorkStatuses: per WEC, the `status`
/// of each (`None`: the WorkStatus has none), in WorkStatus name order. `group` and
/// `kind` are the object's.
pub fn desired(
    plan: &Plan,
    group: &str,
    kind: &str,
    work_statuses: &BTreeMap<String, Vec<Option<Value>>>,
) -> Desired {
    match plan {
        Plan::Clear => Desired::Clear,
        Plan::Copy(wec) => match work_statuses.get(wec).map(Vec::as_slice) {
            Some([Some(status)]) => Desired::Status(status.clone(), Label::Singleton),
            Some([None]) => Desired::Keep,
            _ => Desired::Clear,
        },
        Plan::Aggregate(wecs) => {
            let statuses: Vec<&Value> = wecs
                .iter()
                .filter_map(|w| work_statuses.get(w))
                .flatten()
                .filter_map(Option::as_ref)
                .collect();
            match statuses.as_slice() {
                [] => Desired::Clear,
                [one] => Desired::Status((*one).clone(), Label::Singleton),
                several => match aggregate(group, kind, several) {
                    Some(status) => Desired::Status(status, Label::MultiWec),
                    None => Desired::Keep,
                },
            }
        }
    }
}

/// What Bindery is to write into a workload object: [`Desired`] less what it leaves
/// alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// This status, with this label (the other removed).
    Status(Value, Label),
    /// `status: {}`, both labels removed.
    Clear,
}

impl Report {
    /// `desired` for an object that carries one of the two labels (`labelled`) or not:
    /// a clear only where a label says Bindery (or KubeStellar) returned a status; a
    /// keep never.
    pub fn of(desired: Desired, labelled: bool) -> Option<Report> {
        match desired {
            Desired::Status(status, label) => Some(Report::Status(status, label)),
            Desired::Clear if labelled => Some(Report::Clear),
            Desired::Clear | Desired::Keep => None,
        }
    }

    /// As JSON: `{"status": .., "label": "singleton"|"multiwec"}` or `{"clear": true}`.
    pub fn to_json(&self) -> Value {
        match self {
            Report::Status(status, label) => json!({
                "status": status,
                "label": match label {
                    Label::Singleton => "singleton",
                    Label::MultiWec => "multiwec",
                },
            }),
            Report::Clear => json!({"clear": true}),
        }
    }
}

/// The kind of an object of `group`/`resource` where the kind matters to the
/// aggregation: the apps resources KubeStellar aggregates, by their fixed plural
/// names; `""` for any other.
pub fn aggregated_kind(group: &str, resource: &str) -> &'static str {
    match (group, resource) {
        ("apps", "deployments") => "Deployment",
        ("apps", "replicasets") => "ReplicaSet",
        ("apps", "daemonsets") => "DaemonSet",
        _ => "",
    }
}

/// [`returnable`] by resource: never core `namespaces` or
/// `apiextensions.k8s.io` `customresourcedefinitions`.
pub fn returnable_resource(group: &str, resource: &str) -> bool {
    !matches!(
        (group, resource),
        ("", "namespaces") | ("apiextensions.k8s.io", "customresourcedefinitions")
    )
}

/// Whether `labels` has [`SINGLETON_LABEL`] or [`MULTI_WEC_LABEL`] (any value, as
/// KubeStellar tests only the key).
pub fn is_labelled<'a>(mut keys: impl Iterator<Item = &'a str>) -> bool {
    keys.any(|k| k == SINGLETON_LABEL || k == MULTI_WEC_LABEL)
}

/// Whether a WEC may set the WDS object's status at all: never for a core Namespace or
/// a CustomResourceDefinition (`pkg/util/authority.go:26-29`).
pub fn returnable(group: &str, kind: &str) -> bool {
    !matches!(
        (group, kind),
        ("", "Namespace") | ("apiextensions.k8s.io", "CustomResourceDefinition")
    )
}

/// How one kind aggregates: the integer fields taken at their least and greatest over
/// the WECs, and the condition kept (the first found, in WEC order).
struct Aggregation {
    minimum: &'static [&'static str],
    maximum: &'static [&'static str],
    condition: Option<fn(&Value) -> bool>,
}

/// KubeStellar's multi-WEC aggregate of `statuses` (in WEC order) for an apps
/// Deployment, ReplicaSet or DaemonSet; `None` for any other kind.
pub fn aggregate(group: &str, kind: &str, statuses: &[&Value]) -> Option<Value> {
    if group != "apps" {
        return None;
    }
    let Aggregation {
        minimum,
        maximum,
        condition,
    } = match kind {
        "Deployment" => Aggregation {
            minimum: &[
                "replicas",
                "updatedReplicas",
                "availableReplicas",
                "readyReplicas",
                "observedGeneration",
            ],
            maximum: &["unavailableReplicas"],
            condition: Some(|c| {
                c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded"
            }),
        },
        "ReplicaSet" => Aggregation {
            minimum: &[
                "replicas",
                "fullyLabeledReplicas",
                "readyReplicas",
                "availableReplicas",
                "observedGeneration",
            ],
            maximum: &[],
            condition: Some(|c| c["type"] == "ReplicaFailure"),
        },
        "DaemonSet" => Aggregation {
            minimum: &[
                "currentNumberScheduled",
                "desiredNumberScheduled",
                "numberReady",
                "observedGeneration",
                "updatedNumberScheduled",
                "numberAvailable",
            ],
            maximum: &["numberMisscheduled"],
            condition: None,
        },
        _ => return None,
    };
    // Only integers count (as Go's `.(int64)`); a field no WEC reports is 0.
    let integers = |field: &'static str| statuses.iter().filter_map(move |s| s[field].as_i64());
    let mut out = Map::new();
    for field in minimum {
        out.insert(field.to_string(), json!(integers(field).min().unwrap_or(0)));
    }
    for field in maximum {
        out.insert(field.to_string(), json!(integers(field).max().unwrap_or(0)));
    }
    if let Some(wanted) = condition {
        let first = statuses
            .iter()
            .filter_map(|s| s["conditions"].as_array())
            .flatten()
            .find(|c| c.is_object() && wanted(c));
        out.insert(
            "conditions".into(),
            Value::Array(first.cloned().into_iter().collect()),
        );
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(wecs: &[&str]) -> BTreeSet<String> {
        wecs.iter().map(|w| w.to_string()).collect()
    }

    fn request(s: Option<&[&str]>, m: Option<&[&str]>) -> Request {
        Request {
            singleton: s.is_some(),
            singleton_wecs: set(s.unwrap_or_default()),
            multi: m.is_some(),
            multi_wecs: set(m.unwrap_or_default()),
        }
    }

    #[test]
    fn the_decision_table_in_kubestellars_order() {
        let copy = |w: &str| Plan::Copy(w.to_string());
        let agg = |ws: &[&str]| Plan::Aggregate(set(ws));
        type Case<'a> = (Option<&'a [&'a str]>, Option<&'a [&'a str]>, Plan);
        let cases: &[Case] = &[
            (None, None, Plan::Clear),
            (Some(&["c1"]), None, copy("c1")),
            (Some(&[]), None, Plan::Clear),
            (Some(&["c1", "c2"]), None, Plan::Clear),
            (None, Some(&["c1"]), copy("c1")),
            (None, Some(&["c1", "c2"]), agg(&["c1", "c2"])),
            (None, Some(&[]), Plan::Clear),
            // Both: the union decides.
            (Some(&["c1"]), Some(&["c1"]), copy("c1")),
            (Some(&["c1"]), Some(&["c2"]), agg(&["c1", "c2"])),
            (Some(&[]), Some(&[]), agg(&[])),
            (Some(&["c1", "c2"]), Some(&[]), agg(&["c1", "c2"])),
        ];
        for (s, m, want) in cases {
            assert_eq!(decide(&request(*s, *m)), *want, "S {s:?} M {m:?}");
        }
    }

    #[test]
    fn copies_aggregates_and_clears() {
        let ws = |entries: &[(&str, Vec<Option<Value>>)]| -> BTreeMap<String, Vec<Option<Value>>> {
            entries
                .iter()
                .map(|(w, v)| (w.to_string(), v.clone()))
                .collect()
        };
        let d1 = json!({"replicas": 2, "availableReplicas": 2, "unavailableReplicas": 0,
            "conditions": [{"type": "Available", "status": "True"}]});
        let d2 = json!({"replicas": 3, "availableReplicas": 1, "unavailableReplicas": 2,
            "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "status": "False"}]});
        let copy = Plan::Copy("c1".into());
        assert_eq!(
            desired(
                &copy,
                "apps",
                "Deployment",
                &ws(&[("c1", vec![Some(d1.clone())])])
            ),
            Desired::Status(d1.clone(), Label::Singleton)
        );
        assert_eq!(
            desired(&copy, "apps", "Deployment", &ws(&[("c1", vec![None])])),
            Desired::Keep
        );
        assert_eq!(
            desired(&copy, "apps", "Deployment", &ws(&[])),
            Desired::Clear
        );
        let two = ws(&[("c1", vec![Some(d1.clone()), Some(d2.clone())])]);
        assert_eq!(
            desired(&copy, "apps", "Deployment", &two),
            Desired::Clear,
            "two WorkStatuses"
        );

        let both = Plan::Aggregate(set(&["c1", "c2"]));
        let statuses = ws(&[
            ("c1", vec![Some(d1.clone())]),
            ("c2", vec![Some(d2.clone())]),
        ]);
        let Desired::Status(agg, Label::MultiWec) = desired(&both, "apps", "Deployment", &statuses)
        else {
            panic!("aggregated")
        };
        assert_eq!(
            agg,
            json!({"replicas": 2, "updatedReplicas": 0, "availableReplicas": 1, "readyReplicas": 0,
                   "observedGeneration": 0, "unavailableReplicas": 2,
                   "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "status": "False"}]})
        );
        // One status among the WECs: copied as a singleton; none: cleared; another kind: kept.
        let one = ws(&[("c1", vec![Some(d1.clone())]), ("c2", vec![None])]);
        assert_eq!(
            desired(&both, "apps", "Deployment", &one),
            Desired::Status(d1, Label::Singleton)
        );
        assert_eq!(
            desired(&both, "apps", "Deployment", &ws(&[])),
            Desired::Clear
        );
        assert_eq!(desired(&both, "batch", "Job", &statuses), Desired::Keep);
        assert!(
            !returnable("", "Namespace")
                && !returnable("apiextensions.k8s.io", "CustomResourceDefinition")
        );
        assert!(returnable("apps", "Deployment"));
    }

    #[test]
    fn replicasets_and_daemonsets_aggregate_their_fields() {
        let r1 =
            json!({"replicas": 2, "readyReplicas": 2, "conditions": [{"type": "ReplicaFailure"}]});
        let r2 = json!({"replicas": 1, "readyReplicas": 1});
        let rs = aggregate("apps", "ReplicaSet", &[&r2, &r1]).unwrap();
        assert_eq!(rs["replicas"], 1);
        assert_eq!(rs["conditions"], json!([{"type": "ReplicaFailure"}]));
        let d1 = json!({"numberMisscheduled": 1, "numberReady": 3});
        let d2 = json!({"numberMisscheduled": 4, "numberReady": 2});
        let ds = aggregate("apps", "DaemonSet", &[&d1, &d2]).unwrap();
        assert_eq!(
            (ds["numberMisscheduled"].clone(), ds["numberReady"].clone()),
            (json!(4), json!(2))
        );
        assert!(ds.get("conditions").is_none());
        assert_eq!(aggregate("apps", "StatefulSet", &[&d1, &d2]), None);
    }
}
