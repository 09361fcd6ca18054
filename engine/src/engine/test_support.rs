//! Changes and oracles the engine's unit tests are written with.

use crate::input::{Change, LabelMap, PolicyInput, WorkloadRef, WorkloadState};
use crate::oracle::Oracle;
use crate::policy::PolicySpec;

pub(super) fn labels(pairs: &[(&str, &str)]) -> LabelMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn object(
    group: &str,
    version: &str,
    resource: &str,
    ns: &str,
    name: &str,
    state: Option<(&[(&str, &str)], &str)>,
) -> Change {
    Change::Workload {
        object: WorkloadRef {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
        },
        state: state.map(|(l, rv)| WorkloadState {
            labels: labels(l),
            resource_version: rv.into(),
            ..Default::default()
        }),
    }
}

pub(super) fn policy(name: &str, generation: i64, spec: serde_json::Value) -> Change {
    Change::Policy {
        name: name.into(),
        policy: Some(PolicyInput {
            uid: format!("uid-{name}"),
            generation,
            spec: PolicySpec::parse(Some(&spec)),
        }),
    }
}

/// The oracle holding exactly `changes`, applied in order.
pub(super) fn oracle_of(changes: &[Change]) -> Oracle {
    let mut oracle = Oracle::default();
    for c in changes {
        oracle.apply(c);
    }
    oracle
}
