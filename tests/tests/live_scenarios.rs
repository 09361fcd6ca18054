//! `bindery run` against real kube-apiservers (envtest), scenario by scenario: policy
//! edits, namespace relabels, object updates and deletes; a CRD created and deleted at
//! run time; policy deletion; a restart of bindery (never a partial Binding, unchanged
//! Bindings not rewritten); a restart of the WDS API server; invalid selectors reported
//! in the status; least privilege with the WDS RBAC of the Helm chart.
//!
//! Each test starts its own control plane. Expected Bindings are written out in full:
//! entries built from the objects as stored (their resourceVersions), sorted as
//! `docs/binding-semantics.md` says, and the owner reference to the policy.

use std::time::{Duration, Instant};

use bindery_tests::cluster::objects::{configmap, deployment, managed_cluster, namespace};
use bindery_tests::cluster::{
    self, BinderyRun, BindingHistory, apply, await_binding_absent, await_binding_spec_within, res,
    rv,
};
use bindery_tests::envtest::Envtest;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

/// How long a Binding may take to reflect a change in normal operation.
const SETTLE: Duration = Duration::from_secs(60);
/// Lines of the bindery log shown when a wait fails.
const TAIL: usize = 80;

// ---------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------

fn widget(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"size": 3}})
}

fn widgets() -> ApiResource {
    cluster::resource("example.com/v1", "Widget", "widgets")
}

fn policy(name: &str, cluster_selectors: Value, downsync: Value) -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
           "metadata": {"name": name},
           "spec": {"clusterSelectors": cluster_selectors, "downsync": downsync}})
}

fn edge() -> Value {
    json!([{"matchLabels": {"location-group": "edge"}}])
}

// ---------------------------------------------------------------------------------------
// Expected Bindings
// ---------------------------------------------------------------------------------------

/// The workload entry of `obj` (a stored object of resource `ar`), without modulation.
fn entry(ar: &ApiResource, obj: &DynamicObject) -> Value {
    let mut e = json!({"group": ar.group, "version": ar.version, "resource": ar.plural});
    if let Some(ns) = &obj.metadata.namespace {
        e["namespace"] = json!(ns);
    }
    e["name"] = json!(obj.metadata.name.clone().unwrap());
    e["resourceVersion"] = json!(rv(obj));
    e
}

/// The expected Binding spec: `entries` split by scope and sorted as the spec says (by
/// `"<group>/<version>, Resource=<resource>"`, then name or `namespace/name`, then
/// resourceVersion, byte order), empty lists omitted, destinations sorted.
fn spec(entries: Vec<Value>, clusters: &[&str]) -> Value {
    let key = |e: &Value| {
        let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
        let object = if e.get("namespace").is_some() {
            format!("{}/{}", s("namespace"), s("name"))
        } else {
            s("name")
        };
        (
            format!(
                "{}/{}, Resource={}",
                s("group"),
                s("version"),
                s("resource")
            ),
            object,
            s("resourceVersion"),
        )
    };
    let (mut namespaced, mut clustered): (Vec<Value>, Vec<Value>) = entries
        .into_iter()
        .partition(|e| e.get("namespace").is_some());
    namespaced.sort_by_key(key);
    clustered.sort_by_key(key);
    let mut workload = serde_json::Map::new();
    if !clustered.is_empty() {
        workload.insert("clusterScope".into(), Value::Array(clustered));
    }
    if !namespaced.is_empty() {
        workload.insert("namespaceScope".into(), Value::Array(namespaced));
    }
    let mut spec = json!({"workload": workload});
    let mut clusters: Vec<&str> = clusters.to_vec();
    clusters.sort_unstable();
    clusters.dedup();
    if !clusters.is_empty() {
        spec["destinations"] = clusters.iter().map(|c| json!({"clusterId": c})).collect();
    }
    spec
}

/// The owner references a Binding of `policy` must have.
fn owners(policy: &DynamicObject) -> Value {
    json!([{"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
            "name": policy.metadata.name.clone().unwrap(),
            "uid": policy.metadata.uid.clone().unwrap(),
            "controller": true, "blockOwnerDeletion": false}])
}

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

struct World {
    env: Envtest,
    wds: kube::Client,
    its: kube::Client,
    started: Instant,
}

impl World {
    /// A control plane with KubeStellar's CRDs (WDS) and OCM's ManagedCluster CRD (ITS).
    async fn start() -> World {
        let started = Instant::now();
        let (env, wds, its) = cluster::control_plane().await;
        eprintln!("control plane up in {:?}", started.elapsed());
        World {
            env,
            wds,
            its,
            started,
        }
    }

    /// Starts `bindery run` (admin kubeconfigs, 100 ms coalescing), logging to `log`.
    fn bindery(&self, log: &str) -> BinderyRun {
        self.bindery_with(&self.env.wds.kubeconfig, log)
    }

    fn bindery_with(&self, wds_kubeconfig: &std::path::Path, log: &str) -> BinderyRun {
        BinderyRun::start(
            wds_kubeconfig,
            &self.env.its.kubeconfig,
            &self.env.dir().join(log),
            &["--coalesce-ms", "100"],
        )
        .expect("bindery starts")
    }

    async fn wds(&self, ar: &ApiResource, object: Value) -> DynamicObject {
        apply(&self.wds, ar, object).await.unwrap()
    }

    async fn wec(&self, name: &str, group: &str) {
        apply(
            &self.its,
            &res::managed_clusters(),
            managed_cluster(name, group),
        )
        .await
        .unwrap();
    }

    /// The three WECs of most tests: cluster1 and cluster2 in `edge`, cluster3 in `core`.
    async fn three_wecs(&self) {
        cluster::apply_wecs(&self.its, cluster::THREE_WECS)
            .await
            .unwrap();
    }

    /// Waits until Binding `policy` has exactly `spec` and the owner reference to
    /// `policy`; returns the Binding.
    async fn expect(
        &self,
        bindery: &BinderyRun,
        policy: &DynamicObject,
        spec: &Value,
        what: &str,
    ) -> Value {
        self.expect_within(bindery, policy, spec, what, SETTLE)
            .await
    }

    async fn expect_within(
        &self,
        bindery: &BinderyRun,
        policy: &DynamicObject,
        spec: &Value,
        what: &str,
        timeout: Duration,
    ) -> Value {
        let name = policy.metadata.name.clone().unwrap();
        let binding = match await_binding_spec_within(&self.wds, &name, spec, timeout).await {
            Ok(binding) => binding,
            Err(e) => {
                let status = self.policy_status(&name).await;
                fail(
                    bindery,
                    &format!("{what}: {e}\npolicy {name} status: {status}"),
                )
            }
        };
        assert_eq!(
            binding["metadata"]["ownerReferences"],
            owners(policy),
            "{what}: owner references of Binding {name}"
        );
        eprintln!("[{:>6.1?}] {what}: ok", self.started.elapsed());
        binding
    }

    /// Policy `name`'s status, for failure messages.
    async fn policy_status(&self, name: &str) -> Value {
        match cluster::get(&self.wds, &res::binding_policies(), None, name).await {
            Ok(Some(p)) => serde_json::to_value(p).unwrap()["status"].clone(),
            Ok(None) => json!("no such policy"),
            Err(e) => json!(e.to_string()),
        }
    }

    async fn expect_absent(&self, bindery: &BinderyRun, name: &str, what: &str) {
        await_binding_absent(&self.wds, name, SETTLE)
            .await
            .unwrap_or_else(|e| fail(bindery, &format!("{what}: {e}")));
        eprintln!("[{:>6.1?}] {what}: ok", self.started.elapsed());
    }

    /// Waits until policy `name`'s status has `observedGeneration` equal to its
    /// generation and `check` accepts it; returns `(policy, status)`.
    async fn settled_status(
        &self,
        bindery: &BinderyRun,
        name: &str,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> (Value, Value) {
        let wds = &self.wds;
        let check = &check;
        cluster::eventually(&format!("status of policy {name}"), SETTLE, || async move {
            let p = cluster::get(wds, &res::binding_policies(), None, name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no policy")?;
            let p = serde_json::to_value(p).unwrap();
            let status = p["status"].clone();
            if status["observedGeneration"] != p["metadata"]["generation"] {
                return Err(format!(
                    "generation {} but status {status}",
                    p["metadata"]["generation"]
                ));
            }
            check(&status).map_err(|e| format!("{e}; status {status}"))?;
            Ok(Some((p, status)))
        })
        .await
        .unwrap_or_else(|e| fail(bindery, &e.to_string()))
    }

    /// Waits until policy `name` is reported ready with no errors.
    async fn expect_ready(&self, bindery: &BinderyRun, name: &str) -> Value {
        let (_, status) = self
            .settled_status(bindery, name, ready_without_errors)
            .await;
        status
    }
}

/// The notes of the Events (events.k8s.io, in `default`) on BindingPolicy `policy` with
/// `uid`, `reason` and `type_`, once there are at least `min` (an error after 20 s; with
/// `min` 0, those there are now).
async fn policy_events(
    wds: &kube::Client,
    policy: &str,
    uid: &str,
    reason: &str,
    type_: &str,
    min: usize,
) -> anyhow::Result<Vec<String>> {
    let api: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(wds.clone(), "default");
    cluster::eventually(
        &format!("{reason} Events on {policy}"),
        Duration::from_secs(20),
        || async {
            let list = api
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let notes: Vec<String> = list
                .items
                .into_iter()
                .filter(|e| {
                    e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("BindingPolicy")
                            && r.name.as_deref() == Some(policy)
                            && r.uid.as_deref() == Some(uid)
                    }) && e.reason.as_deref() == Some(reason)
                        && e.type_.as_deref() == Some(type_)
                        && e.reporting_controller.as_deref() == Some("bindery")
                })
                .map(|e| e.note.unwrap_or_default())
                .collect();
            if notes.len() >= min {
                Ok(Some(notes))
            } else {
                Err(format!("{} of them", notes.len()))
            }
        },
    )
    .await
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn ready_without_errors(status: &Value) -> Result<(), String> {
    if status["errors"].as_array().is_some_and(|e| !e.is_empty()) {
        return Err("has errors".into());
    }
    let ready = condition(status, "Ready").ok_or("no Ready condition")?;
    if ready["status"] != "True" || ready["reason"] != "Applied" {
        return Err(format!("Ready is {ready}"));
    }
    let synced = condition(status, "Synced").ok_or("no Synced condition")?;
    if synced["status"] != "True" || synced["reason"] != "ReconcileSuccess" {
        return Err(format!("Synced is {synced}"));
    }
    Ok(())
}

fn fail(bindery: &BinderyRun, msg: &str) -> ! {
    panic!(
        "{msg}\n--- bindery log ({}), last {TAIL} lines ---\n{}",
        bindery.log.display(),
        bindery.log_tail(TAIL)
    )
}

fn stop(bindery: &mut BinderyRun) {
    let clean = bindery.stop().unwrap_or(false);
    if !clean {
        fail(bindery, "bindery did not exit 0 on SIGTERM");
    }
}

// ---------------------------------------------------------------------------------------
// 1. Policy edits, namespace relabels, object updates and deletes
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_edits_namespace_relabels_object_updates_and_deletes() {
    let w = World::start().await;
    w.three_wecs().await;
    let (deps, cms) = (res::deployments(), res::configmaps());
    w.wds(
        &res::namespaces(),
        namespace("ns-a", json!({"env": "prod"})),
    )
    .await;
    w.wds(&res::namespaces(), namespace("ns-b", json!({"env": "dev"})))
        .await;
    let a_web = w
        .wds(&deps, deployment("ns-a", "web", json!({"app": "web"})))
        .await;
    let a_db = w
        .wds(&deps, deployment("ns-a", "db", json!({"app": "db"})))
        .await;
    let a_cm = w
        .wds(&cms, configmap("ns-a", "web-config", json!({"app": "web"})))
        .await;
    let b_web = w
        .wds(&deps, deployment("ns-b", "web", json!({"app": "web"})))
        .await;
    let b_cm = w
        .wds(&cms, configmap("ns-b", "web-config", json!({"app": "web"})))
        .await;
    let b_db = w
        .wds(&deps, deployment("ns-b", "db", json!({"app": "db"})))
        .await;
    let clause = |resources: Value, object_selector: Value| {
        json!([{"resources": resources, "objectSelectors": [object_selector],
                "namespaceSelectors": [{"matchLabels": {"env": "prod"}}]}])
    };
    let web = json!({"matchLabels": {"app": "web"}});
    let p = w
        .wds(
            &res::binding_policies(),
            policy("p", edge(), clause(json!(["deployments"]), web.clone())),
        )
        .await;
    let dests = ["cluster1", "cluster2"];

    let bindery = w.bindery("bindery.log");
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&deps, &a_web)], &dests),
        "initial",
    )
    .await;
    w.expect_ready(&bindery, "p").await;

    // A policy edit: configmaps join the clause's resources.
    let p = w
        .wds(
            &res::binding_policies(),
            policy(
                "p",
                edge(),
                clause(json!(["deployments", "configmaps"]), web.clone()),
            ),
        )
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&deps, &a_web), entry(&cms, &a_cm)], &dests),
        "edit: + configmaps",
    )
    .await;
    let (got, _) = w.settled_status(&bindery, "p", ready_without_errors).await;
    assert_eq!(got["metadata"]["generation"], 2);

    // Another edit: the object selector now takes `app in (web, db)`.
    let web_or_db =
        json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]});
    let p = w
        .wds(
            &res::binding_policies(),
            policy(
                "p",
                edge(),
                clause(json!(["deployments", "configmaps"]), web_or_db.clone()),
            ),
        )
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![
                entry(&deps, &a_web),
                entry(&deps, &a_db),
                entry(&cms, &a_cm),
            ],
            &dests,
        ),
        "edit: objectSelector app in (web, db)",
    )
    .await;

    // A namespace relabel brings ns-b's objects in...
    w.wds(
        &res::namespaces(),
        namespace("ns-b", json!({"env": "prod"})),
    )
    .await;
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![
                entry(&deps, &a_web),
                entry(&deps, &a_db),
                entry(&cms, &a_cm),
                entry(&deps, &b_web),
                entry(&deps, &b_db),
                entry(&cms, &b_cm),
            ],
            &dests,
        ),
        "ns-b relabelled env=prod",
    )
    .await;
    // ... and another takes ns-a's out.
    w.wds(&res::namespaces(), namespace("ns-a", json!({"env": "dev"})))
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![
                entry(&deps, &b_web),
                entry(&deps, &b_db),
                entry(&cms, &b_cm),
            ],
            &dests,
        ),
        "ns-a relabelled env=dev",
    )
    .await;

    // An object relabelled out of the selector leaves the Binding.
    w.wds(&deps, deployment("ns-b", "web", json!({"app": "api"})))
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&deps, &b_db), entry(&cms, &b_cm)], &dests),
        "ns-b/web relabelled app=api",
    )
    .await;

    // A deleted object leaves the Binding.
    cluster::delete(&w.wds, &cms, Some("ns-b"), "web-config")
        .await
        .unwrap();
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&deps, &b_db)], &dests),
        "ns-b/web-config deleted",
    )
    .await;
    w.expect_ready(&bindery, "p").await;

    let mut bindery = bindery;
    stop(&mut bindery);
}

// ---------------------------------------------------------------------------------------
// 1b. A Binding that loses its last destination, then its last object
// ---------------------------------------------------------------------------------------

/// A Binding whose last destination goes, then whose last workload object goes, is
/// written with no destinations, then with an empty workload (`workload: {}`), and the
/// policy reports no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_emptied_by_changes_is_written_empty() {
    let w = World::start().await;
    w.three_wecs().await;
    let cms = res::configmaps();
    w.wds(&res::namespaces(), namespace("ns-a", json!({})))
        .await;
    let only = w
        .wds(&cms, configmap("ns-a", "only", json!({"app": "web"})))
        .await;
    let p = w
        .wds(
            &res::binding_policies(),
            policy(
                "p",
                edge(),
                json!([{"resources": ["configmaps"], "objectSelectors": [{"matchLabels": {"app": "web"}}]}]),
            ),
        )
        .await;

    let bindery = w.bindery("bindery.log");
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &only)], &["cluster1", "cluster2"]),
        "initial",
    )
    .await;

    // The last destinations leave the group: no `destinations`.
    w.wec("cluster1", "core").await;
    w.wec("cluster2", "core").await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &only)], &[]),
        "no destination left",
    )
    .await;
    w.wec("cluster2", "edge").await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &only)], &["cluster2"]),
        "cluster2 back",
    )
    .await;

    // The last object goes: `workload: {}`.
    cluster::delete(&w.wds, &cms, Some("ns-a"), "only")
        .await
        .unwrap();
    // The engine renders `workload: {}`; a Binding stored without `workload` means the
    // same to KubeStellar's (Go) consumers, so either is accepted.
    let empty = spec(vec![], &["cluster2"]);
    let wds = &w.wds;
    let empty_ref = &empty;
    let got = match cluster::eventually("Binding p has an empty workload", SETTLE, || async move {
        let (owners, mut got) = cluster::binding(wds, "p")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no Binding")?;
        if got.get("workload").is_none() {
            got["workload"] = json!({});
        }
        if &got == empty_ref {
            Ok(Some(owners))
        } else {
            Err(format!("spec is {got}\nwant    {empty_ref}"))
        }
    })
    .await
    {
        Ok(got) => got,
        Err(e) => {
            let status = w.policy_status("p").await;
            fail(
                &bindery,
                &format!("the last object deleted: {e}\npolicy p status: {status}"),
            )
        }
    };
    assert_eq!(got, owners(&p));
    w.expect_ready(&bindery, "p").await;

    // And it fills again.
    let again = w
        .wds(&cms, configmap("ns-a", "again", json!({"app": "web"})))
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &again)], &["cluster2"]),
        "a new object",
    )
    .await;

    let mut bindery = bindery;
    stop(&mut bindery);
}

// ---------------------------------------------------------------------------------------
// 2. A CRD created, then deleted, at run time
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_created_and_deleted_at_run_time() {
    let w = World::start().await;
    w.three_wecs().await;
    let cms = res::configmaps();
    w.wds(&res::namespaces(), namespace("ns-a", json!({})))
        .await;
    let keep = w.wds(&cms, configmap("ns-a", "keep", json!({}))).await;
    let p = w
        .wds(
            &res::binding_policies(),
            policy(
                "widgets",
                edge(),
                json!([{"apiGroup": "example.com", "resources": ["widgets"]},
                       {"resources": ["configmaps"], "objectNames": ["keep"]}]),
            ),
        )
        .await;
    let dests = ["cluster1", "cluster2"];

    let bindery = w.bindery("bindery.log");
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &keep)], &dests),
        "before the CRD",
    )
    .await;

    let crd = cluster::simple_crd("example.com", "Widget", "widgets", true);
    cluster::install_crds(&w.wds, &[crd]).await.unwrap();
    let w1 = w
        .wds(&widgets(), widget("ns-a", "w1", json!({"x": "1"})))
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &keep), entry(&widgets(), &w1)], &dests),
        "Widget w1 of the new CRD",
    )
    .await;
    // A second one, and an update of the first, through the new watch.
    let w2 = w.wds(&widgets(), widget("ns-a", "w2", json!({}))).await;
    let w1 = w
        .wds(&widgets(), widget("ns-a", "w1", json!({"x": "2"})))
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![
                entry(&cms, &keep),
                entry(&widgets(), &w1),
                entry(&widgets(), &w2),
            ],
            &dests,
        ),
        "Widget w2 added, w1 updated",
    )
    .await;

    cluster::delete_crd(&w.wds, "widgets.example.com", SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &keep)], &dests),
        "CRD deleted: the Widgets are gone",
    )
    .await;
    w.expect_ready(&bindery, "widgets").await;

    // Created again, then deleted and created again at once (within one discovery
    // debounce): the new CRD's Widgets arrive, and only they. (Bindery watches such a
    // resource anew, `plan_restarting`; here the old watch also relisted by itself.)
    let crd = cluster::simple_crd("example.com", "Widget", "widgets", true);
    cluster::install_crds(&w.wds, std::slice::from_ref(&crd))
        .await
        .unwrap();
    let w3 = w.wds(&widgets(), widget("ns-a", "w3", json!({}))).await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &keep), entry(&widgets(), &w3)], &dests),
        "the CRD created again: Widget w3",
    )
    .await;
    cluster::delete_crd(&w.wds, "widgets.example.com", SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    cluster::install_crds(&w.wds, &[crd]).await.unwrap();
    let w4 = w.wds(&widgets(), widget("ns-a", "w4", json!({}))).await;
    w.expect(
        &bindery,
        &p,
        &spec(vec![entry(&cms, &keep), entry(&widgets(), &w4)], &dests),
        "the CRD deleted and created again at once: only Widget w4",
    )
    .await;

    let mut bindery = bindery;
    stop(&mut bindery);
}

// ---------------------------------------------------------------------------------------
// 3. Policy deletion
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_deletion_deletes_its_binding() {
    let w = World::start().await;
    w.three_wecs().await;
    let cms = res::configmaps();
    w.wds(&res::namespaces(), namespace("ns-a", json!({})))
        .await;
    let one = w
        .wds(&cms, configmap("ns-a", "one", json!({"p": "one"})))
        .await;
    let two = w
        .wds(&cms, configmap("ns-a", "two", json!({"p": "two"})))
        .await;
    let sel = |v: &str| json!([{"resources": ["configmaps"], "objectSelectors": [{"matchLabels": {"p": v}}]}]);
    let p1 = w
        .wds(&res::binding_policies(), policy("one", edge(), sel("one")))
        .await;
    let p2 = w
        .wds(
            &res::binding_policies(),
            policy(
                "two",
                json!([{"matchLabels": {"location-group": "core"}}]),
                sel("two"),
            ),
        )
        .await;

    let bindery = w.bindery("bindery.log");
    w.expect(
        &bindery,
        &p1,
        &spec(vec![entry(&cms, &one)], &["cluster1", "cluster2"]),
        "Binding one",
    )
    .await;
    let two_before = w
        .expect(
            &bindery,
            &p2,
            &spec(vec![entry(&cms, &two)], &["cluster3"]),
            "Binding two",
        )
        .await;

    cluster::delete(&w.wds, &res::binding_policies(), None, "one")
        .await
        .unwrap();
    w.expect_absent(&bindery, "one", "policy one deleted: Binding one gone")
        .await;
    // The other Binding is untouched.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let two_after = cluster::get(&w.wds, &res::bindings(), None, "two")
        .await
        .unwrap()
        .expect("Binding two");
    assert_eq!(
        rv(&two_after),
        two_before["metadata"]["resourceVersion"].as_str().unwrap(),
        "Binding two was rewritten"
    );

    // A policy re-created under the same name gets a Binding owned by the new policy.
    let p1 = w
        .wds(&res::binding_policies(), policy("one", edge(), sel("one")))
        .await;
    w.expect(
        &bindery,
        &p1,
        &spec(vec![entry(&cms, &one)], &["cluster1", "cluster2"]),
        "policy one re-created",
    )
    .await;
    w.expect_ready(&bindery, "one").await;

    let mut bindery = bindery;
    stop(&mut bindery);
}

// ---------------------------------------------------------------------------------------
// 4. Restart safety
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindery_restart_never_publishes_a_partial_view() {
    let w = World::start().await;
    w.three_wecs().await;
    let (deps, cms) = (res::deployments(), res::configmaps());
    let history = BindingHistory::start(&w.wds).await.unwrap();

    // Enough objects across several resources that the watches sync at different times.
    w.wds(&res::namespaces(), namespace("ns-a", json!({"team": "a"})))
        .await;
    w.wds(&res::namespaces(), namespace("ns-b", json!({"team": "b"})))
        .await;
    let mut x_objects = Vec::new();
    for i in 0..5 {
        let ns = if i % 2 == 0 { "ns-a" } else { "ns-b" };
        let d = w
            .wds(
                &deps,
                deployment(ns, &format!("app-{i}"), json!({"tier": "x"})),
            )
            .await;
        x_objects.push(entry(&deps, &d));
        let c = w
            .wds(
                &cms,
                configmap(ns, &format!("cfg-{i}"), json!({"tier": "x"})),
            )
            .await;
        x_objects.push(entry(&cms, &c));
    }
    let y_cm = w
        .wds(&cms, configmap("ns-a", "y-config", json!({"tier": "y"})))
        .await;
    let z_cm = w
        .wds(&cms, configmap("ns-b", "z-config", json!({"tier": "z"})))
        .await;
    let tier = |t: &str| {
        json!([{"resources": ["deployments", "configmaps"],
                "objectSelectors": [{"matchLabels": {"tier": t}}]}])
    };
    let px = w
        .wds(&res::binding_policies(), policy("x", edge(), tier("x")))
        .await;
    let py = w
        .wds(
            &res::binding_policies(),
            policy(
                "y",
                json!([{"matchLabels": {"name": "cluster1"}}]),
                tier("y"),
            ),
        )
        .await;
    let pz = w
        .wds(&res::binding_policies(), policy("z", edge(), tier("z")))
        .await;

    let mut first = w.bindery("bindery-1.log");
    let x_before = spec(x_objects.clone(), &["cluster1", "cluster2"]);
    let y_spec = spec(vec![entry(&cms, &y_cm)], &["cluster1"]);
    let z_before = spec(vec![entry(&cms, &z_cm)], &["cluster1", "cluster2"]);
    w.expect(&first, &px, &x_before, "x before the restart")
        .await;
    let y_binding = w.expect(&first, &py, &y_spec, "y before the restart").await;
    w.expect(&first, &pz, &z_before, "z before the restart")
        .await;
    for p in ["x", "y", "z"] {
        w.expect_ready(&first, p).await;
    }
    stop(&mut first);
    // The first run wrote each Binding once, complete.
    for name in ["x", "y", "z"] {
        let events: Vec<&str> = history.of(name).iter().map(|o| o.event).collect();
        assert_eq!(
            events,
            ["ADDED"],
            "Binding {name} versions served during the first run\n--- first bindery log ---\n{}",
            first.log_tail(TAIL)
        );
    }
    let y_rv = y_binding["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // The world changes while bindery is down: new objects for x, a WEC joins edge,
    // policy z goes.
    let seen_before_restart = history.len();
    for i in 5..8 {
        let d = w
            .wds(
                &deps,
                deployment("ns-b", &format!("app-{i}"), json!({"tier": "x"})),
            )
            .await;
        x_objects.push(entry(&deps, &d));
    }
    w.wec("cluster3", "edge").await;
    cluster::delete(&w.wds, &res::binding_policies(), None, "z")
        .await
        .unwrap();
    let x_after = spec(x_objects.clone(), &["cluster1", "cluster2", "cluster3"]);

    let second = w.bindery("bindery-2.log");
    w.expect(&second, &px, &x_after, "x after the restart")
        .await;
    w.expect_absent(
        &second,
        "z",
        "z deleted after the restart (its policy went while down)",
    )
    .await;
    w.expect_ready(&second, "x").await;
    w.expect_ready(&second, "y").await;
    // Let anything late arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let all = history.all();
    let show = |name: &str| {
        history
            .of(name)
            .iter()
            .map(|o| format!("  {} rv={} {}", o.event, o.resource_version, o.spec))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let context = || {
        format!(
            "\nx:\n{}\ny:\n{}\nz:\n{}\n--- second bindery log ---\n{}",
            show("x"),
            show("y"),
            show("z"),
            second.log_tail(TAIL)
        )
    };
    for o in &all {
        let allowed: &[&Value] = match o.name.as_str() {
            "x" => &[&x_before, &x_after],
            "y" => &[&y_spec],
            "z" => &[&z_before],
            other => panic!("an unexpected Binding {other}{}", context()),
        };
        assert!(
            allowed.contains(&&o.spec),
            "Binding {} was served with a spec that is neither before nor after the restart: {}{}",
            o.name,
            o.spec,
            context()
        );
    }
    // Each Binding was written once by the first run; after the restart x once, y never,
    // z deleted.
    let after: Vec<_> = all[seen_before_restart..].to_vec();
    let count = |name: &str, event: &str| {
        after
            .iter()
            .filter(|o| o.name == name && o.event == event)
            .count()
    };
    assert_eq!(
        (
            count("x", "MODIFIED"),
            count("y", "MODIFIED"),
            count("z", "DELETED")
        ),
        (1, 0, 1),
        "writes after the restart (x modified, y modified, z deleted){}",
        context()
    );
    let y_now = cluster::get(&w.wds, &res::bindings(), None, "y")
        .await
        .unwrap()
        .expect("Binding y");
    assert_eq!(rv(&y_now), y_rv, "Binding y was rewritten{}", context());

    let mut second = second;
    stop(&mut second);
}

// ---------------------------------------------------------------------------------------
// 5. The WDS API server restarts mid-run
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wds_apiserver_restart_mid_run() {
    let mut w = World::start().await;
    w.three_wecs().await;
    let (deps, cms) = (res::deployments(), res::configmaps());
    w.wds(
        &res::namespaces(),
        namespace("ns-a", json!({"env": "prod"})),
    )
    .await;
    let d1 = w
        .wds(&deps, deployment("ns-a", "d1", json!({"app": "web"})))
        .await;
    let c1 = w
        .wds(&cms, configmap("ns-a", "c1", json!({"app": "web"})))
        .await;
    let p = w
        .wds(
            &res::binding_policies(),
            policy(
                "web",
                edge(),
                json!([{"resources": ["deployments", "configmaps"],
                        "objectSelectors": [{"matchLabels": {"app": "web"}}]}]),
            ),
        )
        .await;

    let bindery = w.bindery("bindery.log");
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![entry(&deps, &d1), entry(&cms, &c1)],
            &["cluster1", "cluster2"],
        ),
        "before the API server restart",
    )
    .await;

    let t = Instant::now();
    w.env.restart_wds().expect("the WDS API server restarts");
    eprintln!("WDS API server restarted in {:?}", t.elapsed());
    let wds = cluster::client(&w.env.wds.kubeconfig).await;
    w.wds = wds;

    // Changes after the restart: a new object, an update, a delete, a WEC relabel.
    let d2 = w
        .wds(&deps, deployment("ns-a", "d2", json!({"app": "web"})))
        .await;
    let d1 = w
        .wds(
            &deps,
            deployment("ns-a", "d1", json!({"app": "web", "rev": "2"})),
        )
        .await;
    cluster::delete(&w.wds, &cms, Some("ns-a"), "c1")
        .await
        .unwrap();
    w.wec("cluster3", "edge").await;
    let p_now = cluster::get(&w.wds, &res::binding_policies(), None, "web")
        .await
        .unwrap()
        .unwrap();
    w.expect_within(
        &bindery,
        &p_now,
        &spec(
            vec![entry(&deps, &d1), entry(&deps, &d2)],
            &["cluster1", "cluster2", "cluster3"],
        ),
        "after the API server restart",
        Duration::from_secs(120),
    )
    .await;
    // And the watches keep following.
    let c2 = w
        .wds(&cms, configmap("ns-a", "c2", json!({"app": "web"})))
        .await;
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![entry(&deps, &d1), entry(&deps, &d2), entry(&cms, &c2)],
            &["cluster1", "cluster2", "cluster3"],
        ),
        "a later change",
    )
    .await;
    w.expect_ready(&bindery, "web").await;

    let mut bindery = bindery;
    stop(&mut bindery);
}

// ---------------------------------------------------------------------------------------
// 6. Invalid selectors are reported; other policies keep working
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_selector_is_reported_and_other_policies_keep_working() {
    let w = World::start().await;
    w.three_wecs().await;
    let (deps, cms) = (res::deployments(), res::configmaps());
    w.wds(&res::namespaces(), namespace("ns-a", json!({})))
        .await;
    let d = w
        .wds(&deps, deployment("ns-a", "web", json!({"app": "web"})))
        .await;
    let c = w
        .wds(&cms, configmap("ns-a", "web", json!({"app": "web"})))
        .await;

    // `In` without values: the CRD admits it (objectSelectors are plain label
    // selectors), Kubernetes' selector rules make it invalid.
    let invalid = json!({"matchExpressions": [{"key": "app", "operator": "In"}]});
    let bad_downsync = |first_selector: Value| {
        json!([{"resources": ["configmaps"], "objectSelectors": [first_selector]},
               {"resources": ["deployments"], "objectSelectors": [{"matchLabels": {"app": "web"}}]}])
    };
    let bad = w
        .wds(
            &res::binding_policies(),
            policy("bad", edge(), bad_downsync(invalid)),
        )
        .await;
    let good = w
        .wds(
            &res::binding_policies(),
            policy(
                "good",
                edge(),
                json!([{"objectSelectors": [{"matchLabels": {"app": "web"}}]}]),
            ),
        )
        .await;
    let dests = ["cluster1", "cluster2"];

    let bindery = w.bindery("bindery.log");
    // The invalid selector matches nothing; the policy's other clause still works.
    w.expect(
        &bindery,
        &bad,
        &spec(vec![entry(&deps, &d)], &dests),
        "bad: only its valid clause selects",
    )
    .await;
    w.expect(
        &bindery,
        &good,
        &spec(vec![entry(&deps, &d), entry(&cms, &c)], &dests),
        "good",
    )
    .await;
    let (_, status) = w
        .settled_status(&bindery, "bad", |s| {
            let errors = s["errors"].as_array().ok_or("no errors")?;
            if errors.len() != 1 {
                return Err(format!("{} errors", errors.len()));
            }
            Ok(())
        })
        .await;
    let error = status["errors"][0].as_str().unwrap().to_string();
    assert!(
        error.starts_with("spec.downsync[0].objectSelectors[0]: invalid label selector")
            && error.contains("matchExpressions[0]")
            && error.contains("needs at least one value"),
        "the error names the selector and what is wrong with it: {error}"
    );
    let ready = condition(&status, "Ready")
        .expect("a Ready condition")
        .clone();
    assert_eq!(ready["status"], "False", "{ready}");
    assert_eq!(ready["reason"], "Problems", "{ready}");
    assert_eq!(ready["message"], json!(error), "{ready}");
    assert!(
        ready["lastTransitionTime"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(status["observedGeneration"], 1);
    w.expect_ready(&bindery, "good").await;

    // A Warning Event on the policy says the same (what `kubectl describe` shows).
    let uid = bad.metadata.uid.clone().expect("a uid");
    let notes = policy_events(&w.wds, "bad", &uid, "PolicyProblem", "Warning", 1)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    assert_eq!(notes, std::slice::from_ref(&error));

    // The good policy follows changes while the bad one is reported.
    let c2 = w
        .wds(&cms, configmap("ns-a", "web-2", json!({"app": "web"})))
        .await;
    w.expect(
        &bindery,
        &good,
        &spec(
            vec![entry(&deps, &d), entry(&cms, &c), entry(&cms, &c2)],
            &dests,
        ),
        "good follows a new object",
    )
    .await;

    // Fixing the selector clears the error and the condition.
    let bad = w
        .wds(
            &res::binding_policies(),
            policy(
                "bad",
                edge(),
                bad_downsync(json!({"matchLabels": {"app": "web"}})),
            ),
        )
        .await;
    w.expect(
        &bindery,
        &bad,
        &spec(
            vec![entry(&deps, &d), entry(&cms, &c), entry(&cms, &c2)],
            &dests,
        ),
        "bad fixed",
    )
    .await;
    let status = w.expect_ready(&bindery, "bad").await;
    assert_eq!(status["observedGeneration"], 2);
    assert!(status.get("errors").is_none(), "{status}");
    policy_events(&w.wds, "bad", &uid, "ProblemsResolved", "Normal", 1)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    // The good policy never had a problem: no Event.
    let good_uid = good.metadata.uid.clone().expect("a uid");
    let none = policy_events(&w.wds, "good", &good_uid, "PolicyProblem", "Warning", 0).await;
    assert!(none.is_ok_and(|n| n.is_empty()));

    let mut bindery = bindery;
    stop(&mut bindery);
}

// ---------------------------------------------------------------------------------------
// 7. Least privilege: the WDS RBAC the Helm chart renders suffices
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wds_rbac_manifest_suffices() {
    let w = World::start().await;
    w.three_wecs().await;
    // What `helm template` renders for a WDS that Bindery reaches with the chart's
    // ServiceAccount: the account, the ClusterRole, the Events and Lease Roles, and their
    // bindings.
    let created = bindery_tests::chart::create_wds_rbac(&w.wds, "bindery-system")
        .await
        .unwrap();
    let kinds: Vec<&str> = created.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding"
        ]
    );
    let token = cluster::service_account_token(&w.wds, "bindery-system", "bindery")
        .await
        .unwrap();
    let kubeconfig = w.env.dir().join("bindery-sa.kubeconfig");
    cluster::write_token_kubeconfig(&kubeconfig, "wds", &w.env.wds.url, &token).unwrap();
    // The token works and is not an admin's.
    let sa = cluster::client(&kubeconfig).await;
    let forbidden = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(sa.clone())
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(namespace("nope", json!({}))).unwrap(),
        )
        .await;
    assert!(
        matches!(&forbidden, Err(kube::Error::Api(s)) if s.code == 403),
        "the service account may not create namespaces: {forbidden:?}"
    );

    // The seed's nginx example, and a Secret whose contents must never reach Bindery.
    let ns = w
        .wds(
            &res::namespaces(),
            namespace("nginx", json!({"app.kubernetes.io/name": "nginx"})),
        )
        .await;
    const SECRET_VALUE: &str = "c2VjcmV0LW5ldmVyLXJlYWQtYnktYmluZGVyeQ==";
    w.wds(
        &cluster::resource("v1", "Secret", "secrets"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "creds", "namespace": "nginx"},
               "data": {"password": SECRET_VALUE}}),
    )
    .await;
    let dep = w
        .wds(
            &res::deployments(),
            deployment(
                "nginx",
                "nginx-deployment",
                json!({"app.kubernetes.io/name": "nginx"}),
            ),
        )
        .await;
    let nginx = json!({"matchLabels": {"app.kubernetes.io/name": "nginx"}});
    let p = w
        .wds(
            &res::binding_policies(),
            policy(
                "nginx",
                edge(),
                json!([{"objectSelectors": [nginx], "resources": ["namespaces"]},
                       {"createOnly": true, "objectSelectors": [nginx], "resources": ["deployments"]}]),
            ),
        )
        .await;

    // Bindery's requests from here on (before: the test's own, as the same account).
    let audit_from = std::fs::metadata(w.env.wds.audit_log()).map_or(0, |m| m.len() as usize);
    // With leader election: the account may take and renew its Lease.
    let bindery = BinderyRun::start(
        &kubeconfig,
        &w.env.its.kubeconfig,
        &w.env.dir().join("bindery.log"),
        &[
            "--coalesce-ms",
            "100",
            "--leader-elect",
            "--leader-elect-lease-namespace",
            "bindery-system",
        ],
    )
    .expect("bindery starts");
    let mut dep_entry = entry(&res::deployments(), &dep);
    dep_entry["createOnly"] = json!(true);
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![entry(&res::namespaces(), &ns), dep_entry.clone()],
            &["cluster1", "cluster2"],
        ),
        "nginx Binding written with the service account",
    )
    .await;
    w.expect_ready(&bindery, "nginx").await;

    // A policy with a problem gets its Event, published with the account's rights.
    let broken = w
        .wds(
            &res::binding_policies(),
            policy(
                "broken",
                edge(),
                json!([{"objectSelectors": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}]),
            ),
        )
        .await;
    let uid = broken.metadata.uid.clone().expect("a uid");
    policy_events(&w.wds, "broken", &uid, "PolicyProblem", "Warning", 1)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));

    // Changes keep flowing, and a deleted policy's Binding is deleted.
    w.wec("cluster3", "edge").await;
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![entry(&res::namespaces(), &ns), dep_entry],
            &["cluster1", "cluster2", "cluster3"],
        ),
        "cluster3 joins",
    )
    .await;
    cluster::delete(&w.wds, &res::binding_policies(), None, "nginx")
        .await
        .unwrap();
    w.expect_absent(&bindery, "nginx", "policy deleted: Binding deleted")
        .await;

    let log = bindery.log_text();
    for needle in ["forbidden", "Forbidden"] {
        assert!(
            !log.contains(needle),
            "the bindery log reports a permission problem ({needle}):\n{}",
            bindery.log_tail(TAIL)
        );
    }
    let mut bindery = bindery;
    stop(&mut bindery);
    assert!(
        !log.contains(SECRET_VALUE),
        "a Secret's contents in the log"
    );

    // The audit log of every request Bindery made as the service account: workload is
    // only ever listed and watched, and every list answered metadata-only.
    let audit = std::fs::read_to_string(w.env.wds.audit_log()).unwrap();
    let audit = &audit[audit_from..];
    assert!(
        !audit.contains(SECRET_VALUE),
        "a Secret's contents reached Bindery"
    );
    let (mut lists, mut secret_requests, mut lease_requests, mut event_writes) = (0, 0, 0, 0);
    for line in audit.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["user"]["username"] != bindery_tests::envtest::AUDITED_USER
            || event["stage"] != "ResponseComplete"
        {
            continue;
        }
        let object = &event["objectRef"];
        let group = object["apiGroup"].as_str().unwrap_or("");
        let resource = object["resource"].as_str().unwrap_or("");
        let verb = event["verb"].as_str().unwrap_or("");
        if resource == "secrets" {
            secret_requests += 1;
        }
        if (group, resource) == ("coordination.k8s.io", "leases") {
            lease_requests += 1;
            assert!(
                matches!(verb, "get" | "create" | "update"),
                "Bindery sent {verb} to its Lease: {line}"
            );
            continue;
        }
        // Events on BindingPolicies: written, never read back.
        if (group, resource) == ("events.k8s.io", "events") {
            event_writes += 1;
            assert!(
                matches!(verb, "create" | "patch") && object["namespace"] == "default",
                "Bindery sent {verb} to events: {line}"
            );
            continue;
        }
        if matches!(group, "control.kubestellar.io" | "apiextensions.k8s.io") || resource.is_empty()
        {
            continue;
        }
        assert!(
            matches!(verb, "list" | "watch"),
            "Bindery sent {verb} to {group}/{resource}: {line}"
        );
        if verb == "list" && event["responseStatus"]["code"] == 200 {
            lists += 1;
            assert_eq!(
                event["responseObject"]["kind"], "PartialObjectMetadataList",
                "a list of {group}/{resource} that was not metadata-only: {line}"
            );
        }
    }
    assert!(lists > 5, "only {lists} workload lists audited");
    assert!(secret_requests > 0, "Secrets were not watched at all");
    assert!(lease_requests > 0, "the Lease was never taken");
    assert!(event_writes > 0, "no Event was written");
}
