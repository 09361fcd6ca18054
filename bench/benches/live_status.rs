//! Status return side by side: the WDS objects' returned `.status` and status-return
//! labels under `bindery run --wds-name wds1` and, with `--kubestellar KS_BINARY`, under
//! KubeStellar's binding and status controllers (`ks-controller-manager` of
//! `bench/kubestellar/build.sh --main ks-controller-manager`), each on fresh envtest
//! servers, driven by the same steps.
//!
//! The bench plays KubeStellar's transport and OCM status add-on: every 200 ms it lists
//! the Bindings and, for each (Deployment, WEC) one lists, keeps a WorkStatus in the
//! ITS as the add-on writes it (in the WEC's namespace, labelled
//! `transport.kubestellar.io/originWdsName: wds1`, its `status` through the status
//! subresource, zero-valued fields left out as a WEC's API server leaves them out), and
//! deletes it when no Binding lists the pair any more.
//!
//! Setup: the three WECs of the tests (`cluster1`, `cluster2` in `location-group: edge`,
//! `cluster3` in `core`), N Deployments (default 100, `--deployments N`) in 4 namespaces,
//! labelled `group: s`, `m` or `x` in turn. What a WEC reports for a Deployment: cluster1
//! 2 replicas, 2 ready; cluster2 2 replicas, 1 ready; cluster3 3 replicas, 1 ready; a
//! "changed" Deployment in cluster1: 0 ready, `Available` False and `Progressing` False
//! with reason `ProgressDeadlineExceeded`. Cases, one after the other:
//!
//! 1. policy `singleton`: the `group: s` Deployments to cluster1, singleton reported state;
//! 2. policy `multi`: the `group: m` Deployments to the edge WECs (cluster1 and cluster2),
//!    multi-WEC reported state (the aggregate);
//! 3. cluster1's reported status changes for 10 Deployments (5 of each group);
//! 4. the singleton policy retargeted to no WEC (its statuses cleared, labels removed);
//! 5. the singleton policy retargeted to the `group: m` Deployments in cluster3: S and M on
//!    the same objects (KubeStellar's decision table: the aggregate over cluster1-3);
//! 6. StatusCollectors created (KubeStellar's e2e ones: the full status per WEC, the sum
//!    of `availableReplicas` with a count, the WECs where `obj.spec.replicas` equals
//!    `availableReplicas`, an aggregation over zero WECs; and an invalid one) and policy
//!    `combined` naming them and one that does not exist (`later`) for the `group: x`
//!    Deployments to the edge WECs: a CombinedStatus per Deployment, the collector's
//!    errors, the policy's `StatusCollectorsAvailable` condition False;
//! 7. cluster1's reported status changes for 5 `group: x` Deployments;
//! 8. collector `later` created: one more result everywhere, the condition True.
//!
//! A case ends when for 3 s no Deployment changed, no Binding changed and the add-on had
//! nothing to do (the second controller's case also waits, at most 60 s, until the
//! objects equal the first's at the end of the same case). Per case and controller: the
//! time from the step to the last Deployment or CombinedStatus write a watch saw, the
//! writes (watch events: label only, status only, both; a CombinedStatus write counts as
//! a status write), and at the end every Deployment's status and status-return labels,
//! every CombinedStatus (by its labels, its results' rows and errors sorted), the
//! collectors' errors and the policy's condition, compared entry by entry between the
//! controllers (statuses without their zero-valued fields, as the API server drops
//! them).
//!
//! ```text
//! cargo bench -p bindery-bench --bench live_status                      # Bindery only
//! cargo bench -p bindery-bench --bench live_status -- --kubestellar /tmp/ks-controller-manager
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bindery_bench::cli;
use bindery_bench::live::{self, StatusController};
use bindery_tests::control_plane::{self, apply, res};
use bindery_tests::free_port;
use bindery_tests::objects::{self, deployment_ref};
use bindery_tests::world::World;
use futures::{StreamExt, TryStreamExt};
use kube::api::DeleteParams;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};

const SINGLETON: &str = "managed-by.kubestellar.io/singletonstatus";
const MULTI: &str = "managed-by.kubestellar.io/multiwecstatus";
const NAMESPACES: usize = 4;
const WDS_NAME: &str = "wds1";

/// The cases, in order (see the module's doc).
const CASES: [&str; 8] = [
    "1. singleton policy to cluster1",
    "2. multi-WEC policy to cluster1+2",
    "3. cluster1's status changes for 10 objects",
    "4. singleton policy to no WEC",
    "5. singleton policy on the multi objects, cluster3 (S and M)",
    "6. collectors: policy combined on the x objects to cluster1+2",
    "7. cluster1's status changes for 5 x objects",
    "8. the missing collector created",
];

/// `value` without its zero-valued fields (0, "", false, null, empty lists and maps),
/// recursively: what the API server keeps of a typed object's `omitempty` fields.
fn without_zeros(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_zeros(v)))
                .filter(|(_, v)| !is_zero(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_zeros).collect()),
        other => other.clone(),
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// What WEC `wec` reports for a Deployment (`changed`: the status of case 3).
fn reported(wec: &str, changed: bool) -> Value {
    let (replicas, ready) = match (wec, changed) {
        ("cluster1", true) => (2, 0),
        ("cluster2", _) => (2, 1),
        ("cluster3", _) => (3, 1),
        _ => (2, 2),
    };
    let mut conditions = vec![json!({"type": "Available",
        "status": if ready > 0 { "True" } else { "False" },
        "reason": if ready > 0 { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }})];
    if changed {
        conditions.push(json!({"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded"}));
    } else {
        conditions.push(json!({"type": "Progressing", "status": "True",
            "reason": "NewReplicaSetAvailable"}));
    }
    without_zeros(&json!({"observedGeneration": 1, "replicas": replicas,
        "updatedReplicas": replicas, "readyReplicas": ready, "availableReplicas": ready,
        "unavailableReplicas": replicas - ready, "conditions": conditions}))
}

/// A Deployment as the comparison sees it: its status-return labels and its status
/// without zero-valued fields.
fn seen_as(object: &DynamicObject) -> Value {
    let labels: BTreeMap<String, String> = object
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k == SINGLETON || k == MULTI)
        .collect();
    json!({"labels": labels,
           "status": without_zeros(object.data.get("status").unwrap_or(&Value::Null))})
}

fn key(object: &DynamicObject) -> String {
    format!(
        "{}/{}",
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default()
    )
}

/// A Deployment write the watch saw: when, which, whether its labels / status changed.
type Write = (Instant, String, bool, bool);

/// The Deployment writes seen, and each Deployment as last seen ([`seen_as`]).
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Write>>>, Arc<Mutex<BTreeMap<String, Value>>>);

impl Seen {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn since(&self, from: usize) -> Vec<Write> {
        self.0.lock().unwrap()[from..].to_vec()
    }
    fn last_at(&self) -> Option<Instant> {
        self.0.lock().unwrap().last().map(|e| e.0)
    }
}

/// Watches the WDS's Deployments from now on, recording every change.
async fn watch_deployments(wds: kube::Client, seen: Seen) -> Result<tokio::task::JoinHandle<()>> {
    watch_writes(wds, res::deployments(), seen, |d| {
        Some((key(d), seen_as(d)))
    })
    .await
}

/// Watches the WDS's CombinedStatuses from now on, recording every change (as label
/// changes none, as status changes their `results`).
async fn watch_combined(wds: kube::Client, seen: Seen) -> Result<tokio::task::JoinHandle<()>> {
    watch_writes(wds, res::combined_statuses(), seen, combined_seen_as).await
}

/// Watches `resource` in the WDS from now on, recording every change of an object
/// `view` shows (as `(key, {"labels", "status"})`).
async fn watch_writes(
    wds: kube::Client,
    resource: kube::core::ApiResource,
    seen: Seen,
    view: fn(&DynamicObject) -> Option<(String, Value)>,
) -> Result<tokio::task::JoinHandle<()>> {
    live::watch(wds, resource, move |object, listed| {
        let Some((k, now)) = view(object) else {
            return;
        };
        let was = seen.1.lock().unwrap().insert(k.clone(), now.clone());
        if listed {
            return;
        }
        let was = was.unwrap_or(Value::Null);
        seen.0.lock().unwrap().push((
            Instant::now(),
            k,
            was["labels"] != now["labels"],
            was["status"] != now["status"],
        ));
    })
    .await
}

/// The stand-in transport and status add-on's state.
#[derive(Default)]
struct AddonState {
    /// The Deployments (`ns/name`) whose cluster1 status is the changed one.
    changed: BTreeSet<String>,
    /// Whether its last pass found nothing to do.
    synced: bool,
    last_action: Option<Instant>,
    last_binding_change: Option<Instant>,
    /// WorkStatuses created, status writes, deletions.
    counts: (usize, usize, usize),
}

type Addon = Arc<Mutex<AddonState>>;

/// The WorkStatus name the add-on gives the object `ns/name` in `wec`.
fn work_status_name(wec: &str, ns: &str, name: &str) -> String {
    let uid = match wec {
        "cluster1" => "1",
        "cluster2" => "2",
        _ => "3",
    };
    format!("00000000-0000-0000-0000-00000000000{uid}-appsv1-deployment-{ns}-{name}")
}

/// (WEC, namespace, name) of every Deployment a Binding lists for a WEC, with the name of
/// (the first) Binding listing it.
async fn desired(wds: &kube::Client) -> Result<BTreeMap<(String, String, String), String>> {
    let api: Api<DynamicObject> = Api::all_with(wds.clone(), &res::bindings());
    let mut out = BTreeMap::new();
    for binding in api.list(&ListParams::default()).await? {
        let spec = &binding.data["spec"];
        let name = binding.metadata.name.clone().unwrap_or_default();
        let empty = Vec::new();
        let entries = spec["workload"]["namespaceScope"]
            .as_array()
            .unwrap_or(&empty);
        for d in spec["destinations"].as_array().unwrap_or(&empty) {
            let Some(wec) = d["clusterId"].as_str() else {
                continue;
            };
            for e in entries {
                if e["resource"] != "deployments" {
                    continue;
                }
                let (ns, n) = (e["namespace"].as_str(), e["name"].as_str());
                if let (Some(ns), Some(n)) = (ns, n) {
                    out.entry((wec.to_string(), ns.to_string(), n.to_string()))
                        .or_insert_with(|| name.clone());
                }
            }
        }
    }
    Ok(out)
}

/// Runs the stand-in transport and status add-on until aborted.
fn run_addon(wds: kube::Client, its: kube::Client, state: Addon) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut applied: BTreeMap<(String, String, String), Value> = BTreeMap::new();
        let mut last_desired = BTreeMap::new();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let want = match desired(&wds).await {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("[live_status] add-on: listing Bindings: {e:#}");
                    continue;
                }
            };
            if want != last_desired {
                state.lock().unwrap().last_binding_change = Some(Instant::now());
                last_desired = want.clone();
            }
            let changed = state.lock().unwrap().changed.clone();
            let mut writes = Vec::new();
            for ((wec, ns, name), binding) in &want {
                let status = reported(
                    wec,
                    wec == "cluster1" && changed.contains(&format!("{ns}/{name}")),
                );
                let k = (wec.clone(), ns.clone(), name.clone());
                if applied.get(&k) != Some(&status) {
                    writes.push((
                        k.clone(),
                        Some((binding.clone(), status, !applied.contains_key(&k))),
                    ));
                }
            }
            for k in applied.keys() {
                if !want.contains_key(k) {
                    writes.push((k.clone(), None));
                }
            }
            if writes.is_empty() {
                state.lock().unwrap().synced = true;
                continue;
            }
            state.lock().unwrap().synced = false;
            let results: Vec<_> = futures::stream::iter(writes)
                .map(|(k, what)| {
                    let its = its.clone();
                    async move {
                        let r = addon_write(&its, &k, what.as_ref()).await;
                        (k, what, r)
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            let mut st = state.lock().unwrap();
            for (k, what, r) in results {
                if let Err(e) = r {
                    eprintln!("[live_status] add-on: {k:?}: {e:#}");
                    continue;
                }
                match what {
                    Some((_, status, created)) => {
                        if created {
                            st.counts.0 += 1;
                        }
                        st.counts.1 += 1;
                        applied.insert(k, status);
                    }
                    None => {
                        st.counts.2 += 1;
                        applied.remove(&k);
                    }
                }
            }
            st.last_action = Some(Instant::now());
        }
    })
}

/// Creates (if `created`) WorkStatus of `k` and writes its status, or deletes it (`None`).
async fn addon_write(
    its: &kube::Client,
    (wec, ns, name): &(String, String, String),
    what: Option<&(String, Value, bool)>,
) -> Result<()> {
    let ws = work_status_name(wec, ns, name);
    let Some((binding, status, created)) = what else {
        let api: Api<DynamicObject> = Api::namespaced_with(its.clone(), wec, &res::work_statuses());
        api.delete(&ws, &DeleteParams::default()).await?;
        return Ok(());
    };
    control_plane::write_work_status(
        its,
        (wec, &ws),
        (WDS_NAME, binding),
        deployment_ref(ns, name),
        status,
        *created,
    )
    .await?;
    Ok(())
}

/// Every Deployment, by `ns/name`, [`seen_as`]; every CombinedStatus
/// ([`combined_seen_as`]); policy `combined`'s `StatusCollectorsAvailable` condition
/// (`policy:combined`) and each StatusCollector's errors (`sc:NAME`).
async fn snapshot(wds: &kube::Client) -> Result<BTreeMap<String, Value>> {
    let list = |ar: kube::core::ApiResource| async move {
        let api: Api<DynamicObject> = Api::all_with(wds.clone(), &ar);
        api.list(&ListParams::default()).await
    };
    let mut out: BTreeMap<String, Value> = list(res::deployments())
        .await?
        .into_iter()
        .map(|d| (key(&d), seen_as(&d)))
        .collect();
    out.extend(
        list(res::combined_statuses())
            .await?
            .iter()
            .filter_map(combined_seen_as),
    );
    for p in list(res::binding_policies()).await? {
        if p.metadata.name.as_deref() != Some("combined") {
            continue;
        }
        let condition = p.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "StatusCollectorsAvailable")
            .map(
                |c| json!({"status": c["status"], "reason": c["reason"], "message": c["message"]}),
            );
        out.insert("policy:combined".into(), condition.unwrap_or(Value::Null));
    }
    for sc in list(res::status_collectors()).await? {
        let errors = sc.data["status"]["errors"].clone();
        out.insert(
            format!("sc:{}", sc.metadata.name.unwrap_or_default()),
            json!({"errors": if errors.is_null() { json!([]) } else { errors }}),
        );
    }
    Ok(out)
}

/// A CombinedStatus as the comparison sees it, keyed `cs:POLICY:NS/NAME` by its labels
/// (its name holds uids, which differ between servers): `results` with each result's
/// rows and errors sorted (KubeStellar's come in Go map order).
fn combined_seen_as(cs: &DynamicObject) -> Option<(String, Value)> {
    let labels = cs.metadata.labels.as_ref()?;
    let label = |l: &str| labels.get(&format!("status.kubestellar.io/{l}")).cloned();
    let k = format!(
        "cs:{}:{}/{}",
        label("binding-policy")?,
        label("namespace")?,
        label("name")?
    );
    let sorted = |v: &Value| {
        let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
        items.sort_by_key(Value::to_string);
        Value::Array(items)
    };
    let results: Vec<Value> = cs.data["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            json!({"name": r["name"], "columnNames": r["columnNames"], "rows": sorted(&r["rows"]),
                   "rowErrors": sorted(&r["rowErrors"]),
                   "aggregationErrors": sorted(&r["aggregationErrors"])})
        })
        .collect();
    Some((k, json!({"labels": {}, "status": results})))
}

/// The StatusCollectors of case 6: KubeStellar's e2e ones (full status, the sum, `obj`,
/// zero WECs) and an invalid one.
fn collectors() -> Vec<Value> {
    let sc = objects::status_collector;
    vec![
        sc(
            "full-status",
            json!({"select": [{"name": "wecName", "def": "inventory.name"},
                              {"name": "status", "def": "returned.status"}]}),
        ),
        sc(
            "sum",
            json!({"combinedFields": [{"name": "sum", "type": "SUM",
                                       "subject": "returned.status.availableReplicas"},
                                      {"name": "count", "type": "COUNT"}]}),
        ),
        sc(
            "replicas-ok",
            json!({"filter": "obj.spec.replicas == returned.status.availableReplicas",
                   "select": [{"name": "wecName", "def": "inventory.name"}]}),
        ),
        sc(
            "zero",
            json!({"filter": "false",
                   "combinedFields": [{"name": "count", "type": "COUNT"},
                                      {"name": "max", "type": "MAX", "subject": "2"},
                                      {"name": "avg", "type": "AVG", "subject": "2"}]}),
        ),
        sc(
            "bad",
            json!({"select": [{"name": "w", "def": "inventory.name"}],
                   "groupBy": [{"name": "g", "def": "1"}]}),
        ),
    ]
}

struct CaseResult {
    name: &'static str,
    /// From the step to the last Deployment write seen, if any.
    seconds: Option<f64>,
    objects_written: usize,
    /// Deployment writes: all, label only, status only, both.
    writes: (usize, usize, usize, usize),
    /// WorkStatuses created, status writes, deleted by the add-on in the case.
    addon: (usize, usize, usize),
}

/// Waits for the end of a case (see the module's doc) and measures it.
#[allow(clippy::too_many_arguments)]
async fn settle(
    name: &'static str,
    started: Instant,
    seen: &Seen,
    from: usize,
    addon: &Addon,
    addon_before: (usize, usize, usize),
    wds: &kube::Client,
    expected: Option<&BTreeMap<String, Value>>,
) -> Result<(CaseResult, BTreeMap<String, Value>)> {
    let deadline = started + Duration::from_secs(600);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (synced, last) = {
            let a = addon.lock().unwrap();
            let last = [
                seen.last_at(),
                a.last_action,
                a.last_binding_change,
                Some(started),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(started);
            (a.synced, last)
        };
        let quiet = synced && last.elapsed() > Duration::from_secs(3);
        if !quiet && Instant::now() < deadline {
            continue;
        }
        let snap = snapshot(wds).await?;
        if let Some(expected) = expected
            && snap != *expected
            && started.elapsed() < Duration::from_secs(60)
        {
            continue;
        }
        let events: Vec<Write> = seen
            .since(from)
            .into_iter()
            .filter(|e| e.0 >= started)
            .collect();
        let objects: BTreeSet<&String> = events.iter().map(|e| &e.1).collect();
        let count = |f: &dyn Fn(&Write) -> bool| events.iter().filter(|e| f(e)).count();
        let a = addon.lock().unwrap().counts;
        let result = CaseResult {
            name,
            seconds: events
                .last()
                .map(|e| e.0.saturating_duration_since(started).as_secs_f64()),
            objects_written: objects.len(),
            writes: (
                events.len(),
                count(&|e| e.2 && !e.3),
                count(&|e| !e.2 && e.3),
                count(&|e| e.2 && e.3),
            ),
            addon: (
                a.0 - addon_before.0,
                a.1 - addon_before.1,
                a.2 - addon_before.2,
            ),
        };
        eprintln!(
            "[live_status] {name}: {:?} s, {} objects written",
            result.seconds, result.objects_written
        );
        return Ok((result, snap));
    }
}

fn deployment_name(k: usize) -> (String, String) {
    (format!("ns-{}", k % NAMESPACES), format!("d-{k:04}"))
}

fn group(k: usize) -> &'static str {
    ["s", "m", "x"][k % 3]
}

fn singleton_policy(clusters: Value, group: &str) -> Value {
    objects::policy(
        "singleton",
        clusters,
        json!([{"resources": ["deployments"],
                "objectSelectors": [{"matchLabels": {"group": group}}],
                "wantSingletonReportedState": true}]),
    )
}

/// The cases on fresh servers with `controller`: each case's result and the objects at
/// its end.
async fn bench(
    deployments: usize,
    controller: &StatusController,
    expected: Option<&[BTreeMap<String, Value>]>,
) -> Result<(Vec<CaseResult>, Vec<BTreeMap<String, Value>>)> {
    eprintln!(
        "[live_status] {} on {deployments} Deployments",
        controller.name()
    );
    let w = World::start().await;
    w.three_wecs().await;
    for &(wec, _) in objects::THREE_WECS {
        apply(
            &w.its,
            &res::namespaces(),
            objects::namespace(wec, json!({})),
        )
        .await?;
    }
    for j in 0..NAMESPACES {
        w.namespace(&format!("ns-{j}"), json!({})).await;
    }
    futures::stream::iter(0..deployments)
        .map(|k| {
            let wds = w.wds.clone();
            async move {
                let (ns, name) = deployment_name(k);
                let object = objects::deployment(&ns, &name, json!({"group": group(k)}));
                apply(&wds, &res::deployments(), object).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;

    let listen = format!("127.0.0.1:{}", free_port());
    let mut process = controller.start("live_status", &w, &listen, WDS_NAME)?;
    controller.ready(&listen).await?;
    let seen = Seen::default();
    let watch = watch_deployments(w.wds.clone(), seen.clone()).await?;
    let combined_watch = watch_combined(w.wds.clone(), seen.clone()).await?;
    let addon: Addon = Arc::default();
    let addon_task = run_addon(w.wds.clone(), w.its.clone(), addon.clone());

    let policies = res::binding_policies();
    let changed: BTreeSet<String> = (0..deployments)
        .filter(|&k| group(k) == "s")
        .take(5)
        .chain((0..deployments).filter(|&k| group(k) == "m").take(5))
        .map(|k| {
            let (ns, name) = deployment_name(k);
            format!("{ns}/{name}")
        })
        .collect();
    let mut results = Vec::new();
    let mut snapshots = Vec::new();
    let x_changed: BTreeSet<String> = (0..deployments)
        .filter(|&k| group(k) == "x")
        .take(5)
        .map(|k| {
            let (ns, name) = deployment_name(k);
            format!("{ns}/{name}")
        })
        .collect();
    let scs: Api<DynamicObject> = Api::all_with(w.wds.clone(), &res::status_collectors());
    for case in 0..CASES.len() {
        let name = CASES[case];
        let from = seen.len();
        let addon_before = addon.lock().unwrap().counts;
        let started = Instant::now();
        match case {
            0 => {
                let to = json!([{"matchLabels": {"name": "cluster1"}}]);
                apply(&w.wds, &policies, singleton_policy(to, "s")).await?;
            }
            1 => {
                let p = objects::policy(
                    "multi",
                    objects::location_group("edge"),
                    json!([{"resources": ["deployments"],
                            "objectSelectors": [{"matchLabels": {"group": "m"}}],
                            "wantMultiWECReportedState": true}]),
                );
                apply(&w.wds, &policies, p).await?;
            }
            2 => {
                let mut a = addon.lock().unwrap();
                a.changed = changed.clone();
                a.synced = false;
            }
            3 => {
                let to = json!([{"matchLabels": {"name": "CelestialNexus"}}]);
                apply(&w.wds, &policies, singleton_policy(to, "s")).await?;
            }
            4 => {
                let to = json!([{"matchLabels": {"name": "cluster3"}}]);
                apply(&w.wds, &policies, singleton_policy(to, "m")).await?;
            }
            5 => {
                for sc in collectors() {
                    scs.create(&PostParams::default(), &serde_json::from_value(sc)?)
                        .await?;
                }
                let p = objects::policy(
                    "combined",
                    objects::location_group("edge"),
                    json!([{"resources": ["deployments"],
                            "objectSelectors": [{"matchLabels": {"group": "x"}}],
                            "statusCollectors": ["full-status", "sum", "replicas-ok", "zero",
                                                 "bad", "later"]}]),
                );
                apply(&w.wds, &policies, p).await?;
            }
            6 => {
                let mut a = addon.lock().unwrap();
                a.changed.extend(x_changed.iter().cloned());
                a.synced = false;
            }
            _ => {
                let later = objects::status_collector(
                    "later",
                    json!({"combinedFields": [{"name": "max", "type": "MAX",
                            "subject": "returned.status.replicas"}]}),
                );
                scs.create(&PostParams::default(), &serde_json::from_value(later)?)
                    .await?;
            }
        }
        if case != 2 && case != 6 {
            addon.lock().unwrap().synced = false;
        }
        let want = expected.map(|e| &e[case]);
        let (result, snap) = settle(
            name,
            started,
            &seen,
            from,
            &addon,
            addon_before,
            &w.wds,
            want,
        )
        .await?;
        results.push(result);
        snapshots.push(snap);
    }
    addon_task.abort();
    watch.abort();
    combined_watch.abort();
    let pid = process.pid();
    let usage = (
        bindery_bench::memory::cpu_seconds_of(pid).unwrap_or(f64::NAN),
        bindery_bench::memory::peak_rss_kb_of(pid).unwrap_or(0),
    );
    process.stop()?;
    eprintln!(
        "[live_status] {}: {:.1} s CPU, peak RSS {} MiB",
        controller.name(),
        usage.0,
        usage.1 / 1024
    );
    println!(
        "{} over all cases: {:.1} s CPU, peak RSS {:.1} MiB.\n",
        controller.name(),
        usage.0,
        usage.1 as f64 / 1024.0
    );
    Ok((results, snapshots))
}

fn main() -> Result<()> {
    let mut deployments = 100;
    let mut kubestellar = None;
    let mut args = cli::args();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--deployments" => deployments = cli::count(&args.next().context("--deployments N")?)?,
            "--kubestellar" => kubestellar = Some(args.next().context("--kubestellar PATH")?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    eprintln!(
        "[live_status] bindery binary: {}",
        bindery_tests::bindery_bin().display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let controllers = StatusController::all(kubestellar.as_deref())?;
    println!(
        "## Status return side by side: {deployments} Deployments, 3 WECs\n\n`cargo bench -p bindery-bench --bench live_status -- --deployments {deployments}{}`; one controller at a time, each on fresh servers.\n",
        if kubestellar.is_some() {
            " --kubestellar KS_BINARY"
        } else {
            ""
        }
    );
    let mut all = Vec::new();
    for controller in &controllers {
        let expected = all.first().map(Vec::as_slice);
        let (results, snapshots) = runtime.block_on(bench(deployments, controller, expected))?;
        print_results(controller, &results, &snapshots);
        all.push(snapshots);
    }
    if let [ours, theirs] = &all[..] {
        println!(
            "Deployments compared object by object (status-return labels; status without zero-valued fields) at the end of each case:\n"
        );
        println!("| case | equal | differ |");
        println!("| --- | --- | --- |");
        let mut details = Vec::new();
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            let (mut equal, mut differ) = (0, 0);
            for name in names {
                let (x, y) = (a.get(name), b.get(name));
                if x == y {
                    equal += 1;
                } else {
                    differ += 1;
                    details.push(format!(
                        "- case {}, {name}: Bindery {} / KubeStellar {}",
                        i + 1,
                        x.map_or("absent".into(), Value::to_string),
                        y.map_or("absent".into(), Value::to_string)
                    ));
                }
            }
            println!("| {} | {equal} | {differ} |", i + 1);
        }
        println!();
        for d in &details {
            println!("{d}");
        }
        if !details.is_empty() {
            println!();
        }
    }
    Ok(())
}

fn print_results(
    controller: &StatusController,
    results: &[CaseResult],
    snapshots: &[BTreeMap<String, Value>],
) {
    println!("### {}\n", controller.name());
    println!(
        "| case | step to last status/label write | objects written | Deployment writes (label only / status only / both) | add-on: WorkStatuses created / status writes / deleted | at the end: singleton label / multiwec label / non-empty status |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (r, snap) in results.iter().zip(snapshots) {
        let count = |f: &dyn Fn(&Value) -> bool| snap.values().filter(|v| f(v)).count();
        println!(
            "| {} | {} | {} | {} ({} / {} / {}) | {} / {} / {} | {} / {} / {} |",
            r.name,
            r.seconds.map_or("-".into(), |s| format!("{s:.2} s")),
            r.objects_written,
            r.writes.0,
            r.writes.1,
            r.writes.2,
            r.writes.3,
            r.addon.0,
            r.addon.1,
            r.addon.2,
            count(&|v| v["labels"].get(SINGLETON).is_some()),
            count(&|v| v["labels"].get(MULTI).is_some()),
            count(&|v| v["status"].as_object().is_some_and(|m| !m.is_empty())),
        );
    }
    println!();
}
