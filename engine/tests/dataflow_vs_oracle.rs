//! The dataflow must agree with the oracle after every epoch, for random histories of
//! adds, relabels, deletes, policy edits, cluster and namespace relabels, relists and
//! WorkStatus churn; and the engine's input state exported as an oracle
//! (`Engine::to_oracle`) must give the same Bindings, statuses and reports.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};

use bindery_engine::reported::{MULTI_WEC_LABEL, SINGLETON_LABEL};
use bindery_engine::{
    Change, ClusterLinks, CollectorInput, Engine, LabelMap, ObjectContent, ObjectKey, Oracle,
    PolicyInput, PolicySpec, WorkStatusReport, WorkloadRef, WorkloadState, serve_cluster,
};
use proptest::prelude::*;

mod common;
use common::{ClauseVocabulary, labels, selector};
use serde_json::{Value, json};

/// (group, versions, resource, namespaced)
const RESOURCES: &[(&str, &[&str], &str, bool)] = &[
    ("", &["v1"], "namespaces", false),
    ("", &["v1"], "configmaps", true),
    ("apps", &["v1"], "deployments", true),
    ("rbac.authorization.k8s.io", &["v1"], "clusterroles", false),
    ("example.com", &["v1", "v2"], "widgets", true),
];
const NAMESPACES: &[&str] = &["ns0", "ns1", "ns2"];
const NAMES: &[&str] = &["o0", "o1", "ns0", "ns1"];

fn clause() -> impl Strategy<Value = Value> {
    common::clause(ClauseVocabulary {
        groups: &["", "apps", "example.com", "nope.io"],
        resources: &[
            "namespaces",
            "configmaps",
            "deployments",
            "clusterroles",
            "widgets",
        ],
        names: NAMES,
        collectors: &["sc-a", "sc-b", "sc-c"],
        namespace_selectors: 0.3,
        unreadable: 0.05,
    })
}

fn policy_spec() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(selector(), 0..3),
        prop::collection::vec(clause(), 0..3),
        prop::bool::weighted(0.03),
    )
        .prop_map(|(cs, ds, as_list)| {
            if as_list {
                // Not an object: a problem, binds nothing (not `clusterSelectors` by position).
                json!([cs, ds])
            } else {
                json!({"clusterSelectors": cs, "downsync": ds})
            }
        })
}

/// One step of a history: a change, or the end of an epoch.
#[derive(Clone, Debug)]
enum Step {
    Change(Change),
    /// A relist: every current object of one resource is deleted and some re-added, in
    /// one epoch (what ingest turns RESET ... SYNCED into).
    Relist(usize, Vec<(String, String, LabelMap, u32)>),
    /// A WorkStatus (named `.1`) for the `.0`-th (object, destination) pair of the
    /// current Bindings' entries asking for reported state, if there is one: what the
    /// status add-on writes once an object reaches a WEC.
    Report(usize, &'static str, Option<Value>),
    /// Bindery writes a status into the `.0`-th present object: its update to a new
    /// resourceVersion (nothing else changed) and the `StatusWritten` telling it is
    /// Bindery's, in this order or (`.1`) the other.
    OwnWrite(usize, bool),
    /// The content of the `.0`-th object whose content the engine wants (else of the
    /// `.0`-th present object): as the object is now, or (`.1` false) an older version;
    /// or (`.2` false) not found.
    Fetch(usize, bool, bool),
    EndEpoch,
}

/// The content a fetch of object `(group, resource, namespace, name)` at `rv` returns
/// (its `spec.replicas` changes with `rv`).
fn fetched(key: &(String, String, String, String), rv: &str) -> Value {
    let replicas = rv.bytes().map(u32::from).sum::<u32>() % 3;
    json!({"metadata": {"name": key.3, "namespace": key.2, "resourceVersion": rv},
           "spec": {"replicas": replicas}})
}

/// An object's identity: a resource of [`RESOURCES`], a namespace and a name.
fn object_key(r: usize, ns: &str, name: &str) -> ObjectKey {
    let (group, _, resource, namespaced) = RESOURCES[r];
    ObjectKey {
        group: group.into(),
        resource: resource.into(),
        namespace: if namespaced { ns.into() } else { String::new() },
        name: if resource == "namespaces" {
            ns_name(name)
        } else {
            name.into()
        },
    }
}

/// A status as a WEC reports it: of a Deployment (aggregated when several WECs
/// report), or anything else.
fn reported_status() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..3, 0i64..3, any::<bool>()).prop_map(|(replicas, available, stuck)| {
            let condition = if stuck {
                json!({"type": "Progressing", "reason": "ProgressDeadlineExceeded"})
            } else {
                json!({"type": "Available", "status": "True"})
            };
            json!({"replicas": replicas, "availableReplicas": available, "conditions": [condition]})
        }),
        prop::sample::select(&["a", "b"][..]).prop_map(|phase| json!({"phase": phase})),
    ]
}

/// A StatusCollector (`sc-a`, `sc-b`, `sc-c`) created, edited or deleted: aggregations,
/// selections, an invalid one, one that reads `obj`, one that reads `propagation`.
fn collector_change() -> impl Strategy<Value = Change> {
    let specs = vec![
        json!({"groupBy": [{"name": "phase", "def": "returned.status.phase"}],
               "combinedFields": [{"name": "count", "type": "COUNT"},
                                  {"name": "sum", "type": "SUM", "subject": "returned.status.replicas"},
                                  {"name": "max", "type": "MAX", "subject": "returned.status.availableReplicas"}],
               "limit": 20}),
        json!({"filter": "returned.status.replicas > 0",
               "select": [{"name": "wec", "def": "inventory.name"},
                          {"name": "available", "def": "returned.status.availableReplicas"}],
               "limit": 20}),
        json!({"combinedFields": [{"name": "avg", "type": "AVG", "subject": "returned.status.replicas"}], "limit": 5}),
        json!({"select": [{"name": "w", "def": "inventory.name"}], "groupBy": [{"name": "g", "def": "1"}], "limit": 1}),
        json!({"select": [{"name": "n", "def": "obj.metadata.name"}], "limit": 1}),
        json!({"filter": "obj.spec.replicas == returned.status.availableReplicas",
               "select": [{"name": "wec", "def": "inventory.name"}], "limit": 20}),
        json!({"select": [{"name": "t", "def": "string(propagation.lastReturnedUpdateTimestamp)"}], "limit": 1}),
    ];
    (
        prop::sample::select(&["sc-a", "sc-b", "sc-c"][..]),
        prop::option::weighted(0.85, (prop::sample::select(specs), 1i64..4)),
    )
        .prop_map(|(name, c)| Change::Collector {
            name: name.into(),
            collector: c.map(|(spec, generation)| CollectorInput { generation, spec }),
        })
}

/// A WorkStatus created, updated (another status, another object) or deleted.
fn work_status_change() -> impl Strategy<Value = Change> {
    (
        prop::sample::select(&["c0", "c1", "c2", "c3"][..]),
        prop::sample::select(&["ws0", "ws1", "ws2"][..]),
        prop::option::weighted(
            0.85,
            (
                // Mostly the objects policies select most (namespaced, the first names).
                prop_oneof![4 => 1..3usize, 1 => 0..RESOURCES.len()],
                prop::sample::select(&NAMESPACES[..2]),
                prop::sample::select(&NAMES[..2]),
                prop::option::weighted(0.8, reported_status()),
            ),
        ),
    )
        .prop_map(|(wec, name, report)| Change::WorkStatus {
            wec: wec.into(),
            name: name.into(),
            report: report.map(|(r, ns, n, status)| WorkStatusReport {
                object: object_key(r, ns, n),
                last_update: status
                    .as_ref()
                    .map(|_| format!("2026-12-0{}T10:00:00Z", 1 + n.len() % 3)),
                status,
            }),
        })
}

fn workload_change() -> impl Strategy<Value = Change> {
    (
        0..RESOURCES.len(),
        prop::sample::select(NAMESPACES),
        prop::sample::select(NAMES),
        prop::option::weighted(0.8, (labels(), 0u32..6, 0..10usize)),
        any::<bool>(),
    )
        .prop_map(|(r, ns, name, state, v2)| {
            let (group, versions, resource, namespaced) = RESOURCES[r];
            let version = if v2 && versions.len() > 1 {
                versions[1]
            } else {
                versions[0]
            };
            let name = if resource == "namespaces" {
                NAMESPACES[name.len() % NAMESPACES.len()]
            } else {
                name
            };
            Change::Workload {
                object: WorkloadRef {
                    group: group.into(),
                    version: version.into(),
                    resource: resource.into(),
                    namespace: if namespaced { ns.into() } else { String::new() },
                    name: name.into(),
                },
                state: state.map(|(mut labels, rv, marked)| {
                    // Some objects carry a status-return label (a status to clear).
                    match marked {
                        0 => labels.insert(SINGLETON_LABEL.into(), "true".into()),
                        1 => labels.insert(MULTI_WEC_LABEL.into(), "true".into()),
                        _ => None,
                    };
                    WorkloadState {
                        labels,
                        resource_version: rv.to_string(),
                        // An object created again (another uid) now and then.
                        uid: format!("uid-{resource}-{ns}-{name}-{}", rv / 4),
                        kind: resource.to_string(),
                    }
                }),
            }
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => workload_change().prop_map(Step::Change),
        4 => work_status_change().prop_map(Step::Change),
        2 => collector_change().prop_map(Step::Change),
        2 => (prop::sample::select(&["c0", "c1", "c2", "c3"][..]), prop::option::weighted(0.85, labels()))
            .prop_map(|(n, l)| Step::Change(Change::Wec { name: n.into(), labels: l })),
        2 => (prop::sample::select(&["p0", "p1", "p2"][..]), prop::option::weighted(0.85, (policy_spec(), 1i64..4)))
            .prop_map(|(n, p)| Step::Change(Change::Policy {
                name: n.into(),
                policy: p.map(|(spec, generation)| PolicyInput {
                    uid: format!("uid-{n}"),
                    generation,
                    spec: PolicySpec::parse(Some(&spec)),
                }),
            })),
        2 => (0..64usize, any::<bool>()).prop_map(|(i, first)| Step::OwnWrite(i, first)),
        3 => (0..64usize, prop::bool::weighted(0.8), prop::bool::weighted(0.9))
            .prop_map(|(i, fresh, found)| Step::Fetch(i, fresh, found)),
        6 => (0..64usize, prop::sample::select(&["ws0", "ws1"][..]), prop::option::weighted(0.9, reported_status()))
            .prop_map(|(i, name, status)| Step::Report(i, name, status)),
        1 => (0..RESOURCES.len(), prop::collection::vec((prop::sample::select(NAMESPACES), prop::sample::select(NAMES), labels(), 0u32..6), 0..3))
            .prop_map(|(r, objs)| Step::Relist(r, objs.into_iter().map(|(ns, n, l, rv)| (ns.to_string(), n.to_string(), l, rv)).collect())),
        3 => Just(Step::EndEpoch),
    ]
}

/// A step of a history dense in reported state: few WECs (labelled `loc`), policies
/// that bind them and select Deployments and ConfigMaps with the reported-state flags,
/// objects with and without status-return labels, and WorkStatuses for them.
fn reported_step() -> impl Strategy<Value = Step> {
    let wec = prop::sample::select(&["c0", "c1", "c2"][..]);
    let object = (
        prop::sample::select(&["configmaps", "deployments"][..]),
        prop::sample::select(&["o0", "o1"][..]),
    );
    prop_oneof![
        2 => (wec.clone(), prop::option::weighted(0.9, prop::sample::select(&["x", "y"][..])))
            .prop_map(|(n, loc)| Step::Change(Change::Wec {
                name: n.into(),
                labels: loc.map(|l| [("loc".to_string(), l.to_string())].into()),
            })),
        2 => (
            prop::sample::select(&["p0", "p1"][..]),
            prop::option::weighted(0.9, (
                prop::sample::select(&["x", "y", "*"][..]),
                prop::sample::select(&["configmaps", "deployments", "*"][..]),
                any::<bool>(),
                any::<bool>(),
            )),
        )
            .prop_map(|(n, p)| Step::Change(Change::Policy {
                name: n.into(),
                policy: p.map(|(loc, resource, s, m)| {
                    let clusters = if loc == "*" { json!({}) } else { json!({"matchLabels": {"loc": loc}}) };
                    let collectors: &[&str] = match (s, m) {
                        (true, true) => &["sc-a", "sc-b"],
                        (true, false) => &["sc-c"],
                        (false, true) => &[],
                        (false, false) => &["sc-a"],
                    };
                    let spec = json!({"clusterSelectors": [clusters], "downsync": [{
                        "resources": [resource],
                        "wantSingletonReportedState": s,
                        "wantMultiWECReportedState": m,
                        "statusCollectors": collectors,
                    }]});
                    PolicyInput { uid: format!("uid-{n}"), generation: 1, spec: PolicySpec::parse(Some(&spec)) }
                }),
            })),
        3 => (object.clone(), prop::option::weighted(0.85, (0u32..4, 0..4usize)))
            .prop_map(|((resource, name), state)| {
                let group = if resource == "deployments" { "apps" } else { "" };
                Step::Change(Change::Workload {
                    object: WorkloadRef {
                        group: group.into(),
                        version: "v1".into(),
                        resource: resource.into(),
                        namespace: "ns0".into(),
                        name: name.into(),
                    },
                    state: state.map(|(rv, marked)| {
                        let mut labels = LabelMap::new();
                        match marked {
                            0 => labels.insert(SINGLETON_LABEL.into(), "true".into()),
                            1 => labels.insert(MULTI_WEC_LABEL.into(), "true".into()),
                            _ => None,
                        };
                        WorkloadState {
                            labels,
                            resource_version: rv.to_string(),
                            uid: format!("uid-{resource}-{name}-{}", rv / 2),
                            kind: resource.to_string(),
                        }
                    }),
                })
            }),
        3 => (0..64usize, any::<bool>()).prop_map(|(i, first)| Step::OwnWrite(i, first)),
        2 => collector_change().prop_map(Step::Change),
        3 => (0..64usize, prop::bool::weighted(0.8), prop::bool::weighted(0.9))
            .prop_map(|(i, fresh, found)| Step::Fetch(i, fresh, found)),
        5 => (wec, prop::sample::select(&["ws0", "ws1"][..]), prop::option::weighted(0.9, (object, prop::option::weighted(0.9, reported_status()))))
            .prop_map(|(wec, name, report)| Step::Change(Change::WorkStatus {
                wec: wec.into(),
                name: name.into(),
                report: report.map(|((resource, n), status)| WorkStatusReport {
                    object: ObjectKey {
                        group: if resource == "deployments" { "apps" } else { "" }.into(),
                        resource: resource.into(),
                        namespace: "ns0".into(),
                        name: n.into(),
                    },
                    last_update: status.as_ref().map(|_| "2026-12-07T10:00:00Z".to_string()),
                    status,
                }),
            })),
        3 => Just(Step::EndEpoch),
    ]
}

/// Expands a relist into deletes of the resource's current objects and upserts of the
/// re-listed ones, as ingest does.
fn relist_changes(
    oracle_objects: &BTreeMap<(String, String, String, String), (String, WorkloadState)>,
    r: usize,
    objs: &[(String, String, LabelMap, u32)],
) -> Vec<Change> {
    let (group, versions, resource, namespaced) = RESOURCES[r];
    let mut listed = BTreeMap::new();
    for (ns, name, labels, rv) in objs {
        let ns = if namespaced {
            ns.clone()
        } else {
            String::new()
        };
        let name = if resource == "namespaces" {
            ns_name(name)
        } else {
            name.clone()
        };
        listed.insert((ns, name), (labels.clone(), *rv));
    }
    let mut out = Vec::new();
    for ((g, res, ns, name), (version, _)) in oracle_objects {
        if g == group && res == resource && !listed.contains_key(&(ns.clone(), name.clone())) {
            out.push(Change::Workload {
                object: WorkloadRef {
                    group: g.clone(),
                    version: version.clone(),
                    resource: res.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                },
                state: None,
            });
        }
    }
    for ((ns, name), (labels, rv)) in listed {
        let uid = format!("uid-{resource}-{ns}-{name}-{}", rv / 4);
        out.push(Change::Workload {
            object: WorkloadRef {
                group: group.into(),
                version: versions[0].into(),
                resource: resource.into(),
                namespace: ns,
                name,
            },
            state: Some(WorkloadState {
                labels,
                resource_version: rv.to_string(),
                uid,
                kind: resource.to_string(),
            }),
        });
    }
    out
}

fn ns_name(name: &str) -> String {
    NAMESPACES[name.len() % NAMESPACES.len()].to_string()
}

fn check(engine: &Engine, oracle: &Oracle, epoch: usize) -> Result<(), TestCaseError> {
    let got: Vec<Value> = engine.bindings().iter().map(|b| b.to_json()).collect();
    let want: Vec<Value> = oracle.bindings().iter().map(|b| b.to_json()).collect();
    prop_assert_eq!(&got, &want, "Bindings differ after epoch {}", epoch);
    let want_statuses = oracle.statuses();
    prop_assert_eq!(
        engine.statuses(),
        want_statuses.clone(),
        "statuses differ after epoch {}",
        epoch
    );
    let want_combined = oracle.combined_statuses();
    prop_assert_eq!(
        engine.combined_statuses(),
        want_combined.clone(),
        "CombinedStatuses differ after epoch {}",
        epoch
    );
    let want_collectors = oracle.collector_statuses();
    prop_assert_eq!(
        engine.collector_statuses(),
        want_collectors.clone(),
        "collector statuses differ after epoch {}",
        epoch
    );
    prop_assert_eq!(
        engine.contents_wanted(),
        oracle.contents_wanted(),
        "the contents wanted differ after epoch {}",
        epoch
    );
    let want_missing = oracle.missing_collectors();
    prop_assert_eq!(
        engine.missing_collectors(),
        want_missing.clone(),
        "missing collectors differ after epoch {}",
        epoch
    );
    for name in want_statuses.keys() {
        let status = engine.status(name);
        let want = want_missing.get(name).cloned().unwrap_or_default();
        prop_assert_eq!(
            status.map(|s| s.missing_collectors),
            Some(want),
            "the status of {} shows other missing collectors after epoch {}",
            name,
            epoch
        );
    }
    let want_reports = oracle.reports();
    prop_assert_eq!(
        engine.reports(),
        want_reports.clone(),
        "reports differ after epoch {}",
        epoch
    );
    // The engine's input state, as an oracle, computes the same Bindings and statuses.
    let exported = engine.to_oracle();
    let from_export: Vec<Value> = exported.bindings().iter().map(|b| b.to_json()).collect();
    prop_assert_eq!(
        from_export,
        want,
        "Bindings of engine.to_oracle() differ after epoch {}",
        epoch
    );
    prop_assert_eq!(
        exported.statuses(),
        want_statuses,
        "statuses of engine.to_oracle() differ after epoch {}",
        epoch
    );
    prop_assert_eq!(
        exported.combined_statuses(),
        want_combined,
        "CombinedStatuses of engine.to_oracle() differ after epoch {}",
        epoch
    );
    prop_assert_eq!(
        exported.collector_statuses(),
        want_collectors,
        "collector statuses of engine.to_oracle() differ after epoch {}",
        epoch
    );
    prop_assert_eq!(
        exported.missing_collectors(),
        want_missing,
        "missing collectors of engine.to_oracle() differ after epoch {}",
        epoch
    );
    prop_assert_eq!(
        exported.reports(),
        want_reports,
        "reports of engine.to_oracle() differ after epoch {}",
        epoch
    );
    Ok(())
}

/// Runs `steps` on `engine` and on the oracle, checking after every epoch; with several
/// workers, each epoch's changes must also equal those of a one-worker engine fed the
/// same.
fn run(steps: Vec<Step>, mut engine: Engine) -> Result<(), TestCaseError> {
    let workers = engine.workers();
    let mut single = (workers > 1).then(Engine::new);
    let mut oracle = Oracle::default();
    // (group, resource, ns, name) -> version, to expand relists.
    let mut present: BTreeMap<(String, String, String, String), (String, WorkloadState)> =
        BTreeMap::new();
    let mut own_writes = 0;
    let mut epochs = 0;
    // The reports and CombinedStatuses as the epochs' changes tell them.
    let mut told = BTreeMap::new();
    let mut told_combined = BTreeMap::new();
    // Objects whose content was asked for and has not come since.
    let mut asked: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    // Each policy's missing collectors after the previous epoch.
    let mut missing_before = BTreeMap::new();
    let apply =
        |c: &Change, engine: &mut Engine, oracle: &mut Oracle, present: &mut BTreeMap<_, _>| {
            engine.apply(c);
            oracle.apply(c);
            if let Change::Workload { object, state } = c {
                let key = (
                    object.group.clone(),
                    object.resource.clone(),
                    object.namespace.clone(),
                    object.name.clone(),
                );
                match state {
                    Some(s) => present.insert(key, (object.version.clone(), s.clone())),
                    None => present.remove(&key),
                };
            }
        };
    for step in steps.iter().chain(std::iter::once(&Step::EndEpoch)) {
        match step {
            Step::Change(c) => {
                single.iter_mut().for_each(|e| e.apply(c));
                apply(c, &mut engine, &mut oracle, &mut present)
            }
            Step::Relist(r, objs) => {
                for c in relist_changes(&present, *r, objs) {
                    single.iter_mut().for_each(|e| e.apply(&c));
                    apply(&c, &mut engine, &mut oracle, &mut present);
                }
            }
            Step::Report(i, name, status) => {
                let pairs: Vec<(ObjectKey, String)> = oracle
                    .bindings()
                    .iter()
                    .flat_map(|b| {
                        b.cluster_scope
                            .iter()
                            .chain(&b.namespace_scope)
                            .filter(|e| {
                                e.want_singleton_reported_state || e.want_multi_wec_reported_state
                            })
                            .flat_map(|e| {
                                b.destinations.iter().map(|d| {
                                    let key = ObjectKey {
                                        group: e.group.clone(),
                                        resource: e.resource.clone(),
                                        namespace: e.namespace.clone(),
                                        name: e.name.clone(),
                                    };
                                    (key, d.clone())
                                })
                            })
                    })
                    .collect();
                if let Some((object, wec)) = pairs.get(i % pairs.len().max(1)) {
                    let c = Change::WorkStatus {
                        wec: wec.clone(),
                        name: name.to_string(),
                        report: Some(WorkStatusReport {
                            object: object.clone(),
                            status: status.clone(),
                            last_update: None,
                        }),
                    };
                    single.iter_mut().for_each(|e| e.apply(&c));
                    apply(&c, &mut engine, &mut oracle, &mut present);
                }
            }
            Step::OwnWrite(i, announced_first) => {
                let Some(((g, r, ns, n), (version, state))) =
                    present.iter().nth(i % present.len().max(1))
                else {
                    continue;
                };
                own_writes += 1;
                let rv = format!("own-{own_writes}");
                let update = Change::Workload {
                    object: WorkloadRef {
                        group: g.clone(),
                        version: version.clone(),
                        resource: r.clone(),
                        namespace: ns.clone(),
                        name: n.clone(),
                    },
                    state: Some(WorkloadState {
                        resource_version: rv.clone(),
                        ..state.clone()
                    }),
                };
                let written = Change::StatusWritten {
                    object: ObjectKey {
                        group: g.clone(),
                        resource: r.clone(),
                        namespace: ns.clone(),
                        name: n.clone(),
                    },
                    resource_version: rv,
                };
                let order = if *announced_first {
                    [written, update]
                } else {
                    [update, written]
                };
                for c in &order {
                    single.iter_mut().for_each(|e| e.apply(c));
                    apply(c, &mut engine, &mut oracle, &mut present);
                }
            }
            Step::Fetch(i, fresh, found) => {
                let wanted = engine.contents_wanted();
                let key = match wanted.get(i % wanted.len().max(1)) {
                    Some((o, _)) => {
                        let (g, r, ns, n) = o.identity();
                        (g.to_string(), r.to_string(), ns.to_string(), n.to_string())
                    }
                    None => match present.keys().nth(i % present.len().max(1)) {
                        Some(key) => key.clone(),
                        None => continue,
                    },
                };
                let rv = match present.get(&key) {
                    Some((_, state)) if *fresh => state.resource_version.clone(),
                    _ => "old".to_string(),
                };
                let c = Change::Content {
                    object: ObjectKey {
                        group: key.0.clone(),
                        resource: key.1.clone(),
                        namespace: key.2.clone(),
                        name: key.3.clone(),
                    },
                    content: found.then(|| ObjectContent {
                        object: fetched(&key, &rv),
                        resource_version: rv,
                    }),
                };
                asked.remove(&key);
                single.iter_mut().for_each(|e| e.apply(&c));
                apply(&c, &mut engine, &mut oracle, &mut present);
            }
            Step::EndEpoch => {
                let output = engine.advance();
                epochs += 1;
                // Every object whose content is wanted was asked for (and its content has
                // not come since).
                let key_of = |o: &WorkloadRef| {
                    let (g, r, ns, n) = o.identity();
                    (g.to_string(), r.to_string(), ns.to_string(), n.to_string())
                };
                asked.extend(output.content_requests.iter().map(|(o, _)| key_of(o)));
                for (o, _) in engine.contents_wanted() {
                    prop_assert!(
                        asked.contains(&key_of(&o)),
                        "the content of {:?} is wanted after epoch {} but was not asked for",
                        o,
                        epochs
                    );
                }
                // (A report's object changing version only is not a change.)
                let identity = |o: &WorkloadRef| {
                    let (g, r, ns, n) = o.identity();
                    (g.to_string(), r.to_string(), ns.to_string(), n.to_string())
                };
                for change in &output.reports {
                    match &change.report {
                        Some(r) => told.insert(identity(&change.object), r.clone()),
                        None => told.remove(&identity(&change.object)),
                    };
                }
                for change in &output.combined {
                    let at = (change.namespace.clone(), change.name.clone());
                    match &change.status {
                        Some(s) => told_combined.insert(at, s.clone()),
                        None => told_combined.remove(&at),
                    };
                }
                let mut current_combined = engine.combined_statuses();
                current_combined.sort_by_key(|c| (c.namespace().to_string(), c.name()));
                let told_list: Vec<_> = told_combined.values().cloned().collect();
                prop_assert_eq!(
                    told_list,
                    current_combined,
                    "the CombinedStatus changes of epoch {} do not add up",
                    epochs
                );
                // The policies listed are exactly those whose missing collectors changed.
                let missing_now = engine.missing_collectors();
                let changed: Vec<String> = missing_before
                    .keys()
                    .chain(missing_now.keys())
                    .filter(|p| missing_before.get(*p) != missing_now.get(*p))
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                prop_assert_eq!(
                    &output.missing_collectors,
                    &changed,
                    "the policies told with changed missing collectors in epoch {} are not those changed",
                    epochs
                );
                missing_before = missing_now;
                let current: BTreeMap<_, _> = engine
                    .reports()
                    .into_iter()
                    .map(|(o, r)| (identity(&o), r))
                    .collect();
                prop_assert_eq!(
                    &told,
                    &current,
                    "the report changes of epoch {} do not add up to the reports",
                    epochs
                );
                if let Some(single) = &mut single {
                    let one = single.advance();
                    prop_assert_eq!(
                        &output.changes,
                        &one.changes,
                        "{} workers changed other Bindings than one worker in epoch {}",
                        workers,
                        epochs
                    );
                    prop_assert_eq!(
                        &output.combined,
                        &one.combined,
                        "{} workers changed other CombinedStatuses than one worker in epoch {}",
                        workers,
                        epochs
                    );
                    prop_assert_eq!(
                        &output.missing_collectors,
                        &one.missing_collectors,
                        "{} workers told other missing collectors than one worker in epoch {}",
                        workers,
                        epochs
                    );
                    prop_assert_eq!(
                        &output.reports,
                        &one.reports,
                        "{} workers changed other reports than one worker in epoch {}",
                        workers,
                        epochs
                    );
                }
                check(&engine, &oracle, epochs)?;
            }
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn dataflow_matches_oracle_after_every_epoch(steps in prop::collection::vec(step(), 1..60)) {
        run(steps, Engine::new())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 4, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn reported_state_matches_oracle_after_every_epoch(
        steps in prop::collection::vec(reported_step(), 1..60),
        workers in 1usize..=2,
    ) {
        run(steps, Engine::with_workers(workers))?;
    }
}

proptest! {
    // Each case starts worker threads: fewer cases than the one-worker test.
    #![proptest_config(ProptestConfig { cases: cases() / 4, max_shrink_iters: 500, ..ProptestConfig::default() })]

    #[test]
    fn several_workers_match_one_worker_and_the_oracle(
        steps in prop::collection::vec(step(), 1..60),
        workers in 2usize..=3,
    ) {
        let engine = Engine::with_workers(workers);
        prop_assert_eq!(engine.workers(), workers);
        run(steps, engine)?;
    }
}

/// An engine on process 0 of a two-process timely cluster on loopback, each process
/// with `threads` workers; process 1 is served on a thread of this test (the same code
/// as another process: its records cross a real socket, serialized), which ends when
/// the engine is dropped.
fn loopback_cluster(threads: usize) -> (Engine, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let socket = TcpStream::connect(address).unwrap();
        let links = ClusterLinks {
            process: 1,
            threads,
            sockets: vec![Some(socket), None],
        };
        serve_cluster(links).unwrap();
    });
    let (socket, _) = listener.accept().unwrap();
    let links = ClusterLinks {
        process: 0,
        threads,
        sockets: vec![None, Some(socket)],
    };
    (Engine::in_cluster(links).unwrap(), peer)
}

proptest! {
    // Each case connects a cluster over loopback: fewer cases again.
    #![proptest_config(ProptestConfig { cases: (cases() / 20).max(1), max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn two_processes_match_one_worker_and_the_oracle(
        steps in prop::collection::vec(prop_oneof![step(), reported_step()], 1..60),
        threads in 1usize..=2,
    ) {
        let (engine, peer) = loopback_cluster(threads);
        prop_assert_eq!(engine.workers(), 2 * threads);
        run(steps, engine)?;
        // The engine is dropped: the dataflow ends, and so does process 1.
        peer.join().expect("process 1 served the cluster and ended");
    }
}

/// Only process 0 runs the engine, and only the others serve it; links that do not
/// describe a cluster are refused with an error, not a panic.
#[test]
fn cluster_links_are_checked() {
    let links = |process, sockets: Vec<Option<TcpStream>>| ClusterLinks {
        process,
        threads: 1,
        sockets,
    };
    let err = Engine::in_cluster(links(1, vec![None, None]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("only process 0"), "{err}");
    let err = serve_cluster(links(0, vec![None, None])).unwrap_err();
    assert!(
        err.to_string().contains("process 0 runs the engine"),
        "{err}"
    );
    // A missing socket to process 1.
    let err = Engine::in_cluster(links(0, vec![None, None]))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("want a socket for every other process"),
        "{err}"
    );
    // An index past the processes.
    let err = serve_cluster(links(3, vec![None, None])).unwrap_err();
    assert!(
        err.to_string()
            .contains("want a socket for every other process"),
        "{err}"
    );
}
