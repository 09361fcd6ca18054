//! Explanations must agree with the oracle: for random small states, every WEC the
//! explanation calls a destination, and every object it calls selected (with its combined
//! modulation), is exactly what the oracle's Binding lists; the overview's counts too.
//! And [`Engine::explain`], which copies only what a question needs out of the
//! engine's state, answers every question exactly as the oracle does.

use std::collections::{BTreeMap, BTreeSet};

use bindery_engine::explain::verdicts;
use bindery_engine::{
    Change, Engine, ObjectKey, Oracle, PolicyInput, PolicySpec, Query, WorkloadRef, WorkloadState,
};
use proptest::prelude::*;

mod common;
use common::{ClauseVocabulary, labels, selector};
use serde_json::{Value, json};

/// (group, resource, namespaced)
const RESOURCES: &[(&str, &str, bool)] = &[
    ("", "namespaces", false),
    ("", "configmaps", true),
    ("apps", "deployments", true),
    ("rbac.authorization.k8s.io", "clusterroles", false),
];
const NAMESPACES: &[&str] = &["ns0", "ns1", "ns2"];
const NAMES: &[&str] = &["o0", "o1", "ns0", "ns1"];
const POLICIES: &[&str] = &["p0", "p1"];

/// Clauses, some unreadable: later clauses keep their written index in explanations.
fn clause() -> impl Strategy<Value = Value> {
    common::clause(ClauseVocabulary {
        groups: &["", "apps", "nope.io"],
        resources: &["namespaces", "configmaps", "deployments", "clusterroles"],
        names: NAMES,
        collectors: &["sc-a", "sc-b"],
        namespace_selectors: 0.4,
        unreadable: 0.1,
    })
}

fn policy_spec() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(selector(), 0..3),
        prop::collection::vec(clause(), 0..4),
    )
        .prop_map(|(cs, ds)| json!({"clusterSelectors": cs, "downsync": ds}))
}

fn workload_change() -> impl Strategy<Value = Change> {
    (
        0..RESOURCES.len(),
        prop::sample::select(NAMESPACES),
        prop::sample::select(NAMES),
        prop::option::weighted(0.85, (labels(), 0u32..6)),
    )
        .prop_map(|(r, ns, name, state)| {
            let (group, resource, namespaced) = RESOURCES[r];
            let name = if resource == "namespaces" {
                NAMESPACES[name.len() % NAMESPACES.len()]
            } else {
                name
            };
            Change::Workload {
                object: WorkloadRef {
                    group: group.into(),
                    version: "v1".into(),
                    resource: resource.into(),
                    namespace: if namespaced { ns.into() } else { String::new() },
                    name: name.into(),
                },
                state: state.map(|(labels, rv)| WorkloadState {
                    labels,
                    resource_version: rv.to_string(),
                    ..Default::default()
                }),
            }
        })
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => workload_change(),
        2 => (prop::sample::select(&["c0", "c1", "c2", "c3"][..]), prop::option::weighted(0.9, labels()))
            .prop_map(|(n, l)| Change::Wec { name: n.into(), labels: l }),
        2 => (prop::sample::select(POLICIES), prop::option::weighted(0.9, policy_spec()))
            .prop_map(|(n, spec)| Change::Policy {
                name: n.into(),
                policy: spec.map(|spec| PolicyInput {
                    uid: format!("uid-{n}"),
                    generation: 1,
                    spec: PolicySpec::parse(Some(&spec)),
                }),
            }),
    ]
}

/// Every question, on present and absent objects, WECs and policies: the engine's
/// scoped answer must be the oracle's, errors included.
fn check_engine_explain(engine: &Engine, oracle: &Oracle) -> Result<(), TestCaseError> {
    let mut objects = Vec::new();
    for &(group, resource, namespaced) in RESOURCES {
        for name in NAMES.iter().chain(NAMESPACES) {
            let namespaces: &[&str] = if namespaced { NAMESPACES } else { &[""] };
            for &namespace in namespaces {
                objects.push(Some(ObjectKey {
                    group: group.into(),
                    resource: resource.into(),
                    namespace: namespace.into(),
                    name: (*name).into(),
                }));
            }
        }
    }
    objects.push(None);
    let clusters = [None, Some("c0"), Some("c3"), Some("nope")];
    for policy in POLICIES.iter().chain(&["nope"]) {
        for object in &objects {
            for cluster in clusters {
                let query = Query {
                    policy: (*policy).into(),
                    object: object.clone(),
                    cluster: cluster.map(Into::into),
                };
                prop_assert_eq!(
                    engine.explain(&query),
                    oracle.explain(&query),
                    "{:?}",
                    query
                );
            }
        }
    }
    Ok(())
}

fn check(changes: &[Change]) -> Result<(), TestCaseError> {
    let mut oracle = Oracle::default();
    let mut engine = Engine::new();
    for c in changes {
        engine.apply(c);
    }
    engine.advance();
    // The objects and WECs present, to ask about each.
    let mut present: BTreeSet<ObjectKey> = BTreeSet::new();
    let mut wecs: BTreeSet<String> = BTreeSet::new();
    for c in changes {
        oracle.apply(c);
        match c {
            Change::Workload { object, state } => {
                let key = ObjectKey {
                    group: object.group.clone(),
                    resource: object.resource.clone(),
                    namespace: object.namespace.clone(),
                    name: object.name.clone(),
                };
                match state {
                    Some(_) => present.insert(key),
                    None => present.remove(&key),
                };
            }
            Change::Wec { name, labels } => {
                match labels {
                    Some(_) => wecs.insert(name.clone()),
                    None => wecs.remove(name),
                };
            }
            Change::Policy { .. }
            | Change::WorkStatus { .. }
            | Change::StatusWritten { .. }
            | Change::Collector { .. }
            | Change::Content { .. } => {}
        }
    }
    check_engine_explain(&engine, &oracle)?;
    for &policy in POLICIES {
        let Some(binding) = oracle.binding(policy) else {
            prop_assert!(verdicts(&oracle, policy).is_err());
            continue;
        };
        let (destinations, selected) = verdicts(&oracle, policy).unwrap();
        prop_assert_eq!(
            &destinations,
            &binding.destinations,
            "destinations of {}",
            policy
        );
        let entries: BTreeMap<ObjectKey, (bool, Vec<String>, bool, bool)> = binding
            .cluster_scope
            .iter()
            .chain(&binding.namespace_scope)
            .map(|e| {
                (
                    ObjectKey {
                        group: e.group.clone(),
                        resource: e.resource.clone(),
                        namespace: e.namespace.clone(),
                        name: e.name.clone(),
                    },
                    (
                        e.create_only,
                        e.status_collectors.clone(),
                        e.want_singleton_reported_state,
                        e.want_multi_wec_reported_state,
                    ),
                )
            })
            .collect();
        let explained: BTreeMap<ObjectKey, (bool, Vec<String>, bool, bool)> = selected
            .into_iter()
            .map(|(k, m)| {
                (
                    k,
                    (
                        m.create_only,
                        m.status_collectors,
                        m.want_singleton_reported_state,
                        m.want_multi_wec_reported_state,
                    ),
                )
            })
            .collect();
        prop_assert_eq!(&explained, &entries, "workload of {}", policy);

        // The public entry point says the same, object by object and WEC by WEC.
        for key in &present {
            let e = oracle
                .explain(&Query {
                    policy: policy.into(),
                    object: Some(key.clone()),
                    cluster: None,
                })
                .unwrap();
            let o = e.object.unwrap();
            prop_assert_eq!(o.selected, entries.contains_key(key), "{} {}", policy, key);
            prop_assert_eq!(o.selected, o.clauses.iter().any(|c| c.passed));
            // The text rendering never fails and shows the verdict.
            let text = oracle
                .explain(&Query {
                    policy: policy.into(),
                    object: Some(key.clone()),
                    cluster: None,
                })
                .unwrap()
                .to_text();
            let verdict = if o.selected {
                "selected"
            } else {
                "not selected"
            };
            prop_assert!(
                text.contains(&format!("object {key}: {verdict}")),
                "{}",
                text
            );
        }
        for wec in &wecs {
            let e = oracle
                .explain(&Query {
                    policy: policy.into(),
                    object: None,
                    cluster: Some(wec.clone()),
                })
                .unwrap();
            prop_assert_eq!(
                e.cluster.unwrap().destination,
                binding.destinations.contains(wec),
                "{} {}",
                policy,
                wec
            );
        }
        let overview = oracle
            .explain(&Query {
                policy: policy.into(),
                ..Query::default()
            })
            .unwrap()
            .overview
            .unwrap();
        prop_assert_eq!(overview.selected, entries.len());
        prop_assert_eq!(
            overview
                .destinations
                .iter()
                .map(|d| d.cluster.clone())
                .collect::<Vec<_>>(),
            binding.destinations.clone()
        );
        prop_assert_eq!(overview.objects, present.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn explanations_agree_with_the_oracle(changes in prop::collection::vec(change(), 1..40)) {
        check(&changes)?;
    }
}
