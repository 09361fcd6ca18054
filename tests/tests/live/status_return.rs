//! Status return, live: KubeStellar's own e2e status scenarios
//! (`test/e2e/ginkgo/multiple_cluster_deployment_test.go`, "singleton status creation
//! and deletion" and "singleton status eventual consistency") against `bindery run
//! --wds-name wds1`, with the test playing KubeStellar's transport and OCM status
//! add-on: for each (object, WEC) a Binding lists, a WorkStatus in the ITS as the add-on
//! writes it (its status through the status subresource), deleted when the Binding
//! drops it. Also the multi-WEC aggregate, and that Bindery's own status writes leave
//! the Binding alone.

use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::control_plane::{self, eventually, res};
use bindery_tests::objects::deployment_ref;
use bindery_tests::world::{SETTLE, World, fail, stop};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

const SINGLETON: &str = "managed-by.kubestellar.io/singletonstatus";
const MULTI: &str = "managed-by.kubestellar.io/multiwecstatus";

/// A Deployment's status as a WEC's kube-controller-manager writes it.
fn running(replicas: i64, ready: i64) -> Value {
    json!({"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
           "readyReplicas": ready, "availableReplicas": ready,
           "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]})
}

/// Whether `status` (as the WDS stores it: zero numbers left out) has `replicas` and
/// `ready` ready and available.
fn shows(status: &Value, replicas: i64, ready: i64) -> bool {
    let n = |k: &str| status[k].as_i64().unwrap_or(0);
    n("replicas") == replicas
        && n("readyReplicas") == ready
        && n("availableReplicas") == ready
        && status["conditions"][0]["type"] == "Available"
}

/// Deployment `ns/name`'s `.status` and labels in the WDS, once `check` holds for them.
async fn expect_deployment(
    w: &World,
    bindery: &BinderyRun,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Value, &Value) -> bool,
) -> DynamicObject {
    expect_deployment_within(w, bindery, (ns, name), what, SETTLE, check).await
}

/// [`expect_deployment`], waiting up to `timeout`.
async fn expect_deployment_within(
    w: &World,
    bindery: &BinderyRun,
    (ns, name): (&str, &str),
    what: &str,
    timeout: std::time::Duration,
    check: impl Fn(&Value, &Value) -> bool,
) -> DynamicObject {
    let found = eventually(what, timeout, || async {
        let d = control_plane::get(&w.wds, &res::deployments(), Some(ns), name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no Deployment")?;
        let status = d.data.get("status").cloned().unwrap_or(Value::Null);
        let labels = json!(d.metadata.labels.clone().unwrap_or_default());
        Ok(check(&status, &labels).then_some(d))
    })
    .await;
    match found {
        Ok(d) => {
            w.step(what);
            d
        }
        Err(e) => fail(bindery, &format!("{what}: {e:#}")),
    }
}

/// Deployment `nginx/nginx-singleton` with an empty `.status` and no singleton label.
async fn expect_cleared(w: &World, bindery: &BinderyRun, what: &str) {
    expect_deployment(w, bindery, "nginx", "nginx-singleton", what, |s, l| {
        s.as_object().is_none_or(|m| m.is_empty()) && l.get(SINGLETON).is_none()
    })
    .await;
}

/// KubeStellar's e2e setup: the three WECs, Deployment `nginx/nginx-singleton` and the
/// singleton policy selecting it for cluster1.
async fn singleton_world() -> World {
    let w = World::start().await;
    w.three_wecs().await;
    w.namespace("nginx", json!({})).await;
    let app = json!({"app.kubernetes.io/name": "nginx-singleton"});
    w.deployment("nginx", "nginx-singleton", app).await;
    singleton_policy(&w, "nginx-singleton").await;
    w
}

/// The WorkStatus of Deployment `ns/name` in `wec` gone (the add-on deletes it with the
/// object in the WEC).
async fn delete_work_status(w: &World, wec: &str, name: &str) {
    let api: Api<DynamicObject> = Api::namespaced_with(w.its.clone(), wec, &res::work_statuses());
    api.delete(name, &Default::default()).await.unwrap();
}

/// Patches BindingPolicy `name` to select no WEC (KubeStellar's e2e: `CelestialNexus`).
async fn select_no_wec(w: &World, name: &str) {
    let api: Api<DynamicObject> = Api::all_with(w.wds.clone(), &res::binding_policies());
    let patch =
        json!({"spec": {"clusterSelectors": [{"matchLabels": {"name": "CelestialNexus"}}]}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// The singleton policy of KubeStellar's e2e: Deployments labelled
/// `app.kubernetes.io/name: APP` to `cluster1`, with singleton reported state.
async fn singleton_policy(w: &World, app: &str) {
    w.policy(
        "nginx-singleton",
        json!([{"matchLabels": {"name": "cluster1"}}]),
        json!([{"objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": app}}],
                "wantSingletonReportedState": true}]),
    )
    .await;
}

/// The resourceVersion Binding `name`'s entry of Deployment `name` shows.
async fn entry_rv(w: &World, binding: &str, deployment: &str) -> Option<String> {
    let (_, spec) = control_plane::binding(&w.wds, binding).await.ok()??;
    spec["workload"]["namespaceScope"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == deployment)
        .and_then(|e| e["resourceVersion"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn singleton_status_is_set_followed_and_cleared() {
    let w = singleton_world().await;
    let mut bindery = w.bindery_returning("bindery.log", &[]);
    eventually("the Binding to cluster1", SETTLE, || async {
        Ok(entry_rv(&w, "nginx-singleton", "nginx-singleton").await)
    })
    .await
    .unwrap_or_else(|e| fail(&bindery, &format!("{e:#}")));

    // The add-on reports the Deployment in cluster1: its status lands in the WDS.
    let dep = deployment_ref("nginx", "nginx-singleton");
    let ws = "u1-appsv1-deployment-nginx-nginx-singleton";
    w.work_status("cluster1", ws, "wds1", dep.clone(), running(1, 1))
        .await;
    let returned = expect_deployment(
        &w,
        &bindery,
        "nginx",
        "nginx-singleton",
        "the singleton status is returned",
        |s, l| shows(s, 1, 1) && l[SINGLETON] == "true",
    )
    .await;
    // Bindery's status write does not rewrite the Binding: its entry keeps the
    // resourceVersion of the label write before it.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let shown = entry_rv(&w, "nginx-singleton", "nginx-singleton")
        .await
        .unwrap();
    let current = control_plane::rv(&returned);
    assert_ne!(
        shown, current,
        "the Binding followed Bindery's own status write"
    );

    // The WEC's status changes: followed.
    w.work_status("cluster1", ws, "wds1", dep.clone(), running(1, 0))
        .await;
    expect_deployment(
        &w,
        &bindery,
        "nginx",
        "nginx-singleton",
        "a changed status is followed",
        |s, _| shows(s, 1, 0),
    )
    .await;

    // The policy selects no WEC any more; the transport removes the object from
    // cluster1, and with it the add-on its WorkStatus: the status is cleared.
    select_no_wec(&w, "nginx-singleton").await;
    delete_work_status(&w, "cluster1", ws).await;
    expect_cleared(&w, &bindery, "the status is cleared and the label gone").await;
    stop(&mut bindery);
}

/// "only counts number of qualified WECs": the Deployment goes to two WECs (another
/// policy), the singleton policy qualifies one: its status is cluster1's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_qualified_wec_counts_and_several_aggregate() {
    let w = World::start().await;
    w.three_wecs().await;
    let (_, _, _) = w.nginx().await;
    singleton_policy(&w, "nginx").await;
    let record = w.env.dir().join("recording.jsonl");
    let record_arg = record.to_str().unwrap();
    let mut bindery = w.bindery_returning("bindery.log", &["--record", record_arg]);
    let dep = deployment_ref("nginx", "nginx-deployment");
    w.work_status("cluster1", "w1", "wds1", dep.clone(), running(2, 2))
        .await;
    w.work_status("cluster2", "w2", "wds1", dep.clone(), running(2, 1))
        .await;
    expect_deployment(
        &w,
        &bindery,
        "nginx",
        "nginx-deployment",
        "cluster1's status, the only qualified WEC",
        |s, l| shows(s, 2, 2) && l[SINGLETON] == "true",
    )
    .await;
    // Multi-WEC over both edge WECs: the aggregate (least replicas ready, etc.).
    w.policy(
        "nginx-multi",
        json!([{"matchLabels": {"location-group": "edge"}}]),
        json!([{"objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}],
                "resources": ["deployments"], "wantMultiWECReportedState": true}]),
    )
    .await;
    expect_deployment(
        &w,
        &bindery,
        "nginx",
        "nginx-deployment",
        "the multi-WEC aggregate",
        |s, l| {
            s["readyReplicas"] == 1
                && s["replicas"] == 2
                && l[MULTI] == "true"
                && l.get(SINGLETON).is_none()
        },
    )
    .await;
    stop(&mut bindery);
    // The recording replays to the same returned status, with Bindery's own writes in it.
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        text.contains("\"binderystatuswrites\""),
        "no status write recorded"
    );
    let replayed = bindery_tests::replayed_statuses(&record);
    let entry = &replayed["objectStatuses"][0];
    assert_eq!(entry["object"]["name"], "nginx-deployment", "{replayed}");
    assert_eq!(entry["label"], "multiwec", "{replayed}");
    // KubeStellar's Deployment aggregate: least replicas ready, no condition kept.
    let status = &entry["status"];
    assert_eq!(
        (status["replicas"].clone(), status["readyReplicas"].clone()),
        (json!(2), json!(1)),
        "{replayed}"
    );
    assert_eq!(status["conditions"], json!([]), "{replayed}");
}

/// "singleton status eventual consistency": while no status controller runs, the policy
/// stops selecting the WEC; once Bindery (re)starts, the stale status is cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_status_is_cleared_after_a_restart() {
    let w = singleton_world().await;
    let dep = deployment_ref("nginx", "nginx-singleton");
    w.work_status("cluster1", "w1", "wds1", dep.clone(), running(1, 1))
        .await;
    let mut bindery = w.bindery_returning("bindery.log", &[]);
    expect_deployment(
        &w,
        &bindery,
        "nginx",
        "nginx-singleton",
        "the singleton status is returned",
        |s, l| shows(s, 1, 1) && l[SINGLETON] == "true",
    )
    .await;
    stop(&mut bindery);
    w.step("Bindery stopped");
    select_no_wec(&w, "nginx-singleton").await;
    delete_work_status(&w, "cluster1", "w1").await;
    let mut bindery = w.bindery_returning("bindery-2.log", &[]);
    expect_cleared(
        &w,
        &bindery,
        "the stale status is cleared after the restart",
    )
    .await;
    stop(&mut bindery);
}

/// The ITS down for 20 s (the WorkStatus watch fails, then relists): the returned status
/// is never cleared meanwhile (a relist is held back until it completes, and an object's
/// WorkStatus missing from a list in progress is not a WorkStatus gone); once the ITS is
/// back, a new report is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_its_down_keeps_the_returned_status() {
    let mut w = singleton_world().await;
    let dep = deployment_ref("nginx", "nginx-singleton");
    w.work_status("cluster1", "w1", "wds1", dep.clone(), running(1, 1))
        .await;
    let mut bindery = w.bindery_returning("bindery.log", &[]);
    expect_deployment(
        &w,
        &bindery,
        "nginx",
        "nginx-singleton",
        "the singleton status is returned",
        |s, l| shows(s, 1, 1) && l[SINGLETON] == "true",
    )
    .await;
    w.env.stop_its();
    w.step("ITS down");
    let down = std::time::Instant::now();
    while down.elapsed() < std::time::Duration::from_secs(20) {
        let d = w
            .get(&res::deployments(), Some("nginx"), "nginx-singleton")
            .await
            .unwrap();
        let status = d.data.get("status").cloned().unwrap_or(Value::Null);
        if !shows(&status, 1, 1) {
            fail(
                &bindery,
                &format!("the status changed while the ITS was down: {status}"),
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    w.env.start_its().unwrap();
    w.step("ITS up again");
    w.work_status("cluster1", "w1", "wds1", dep, running(1, 0))
        .await;
    // The restarted API server's watch of WorkStatuses answers 410 Gone, and their relist
    // has been seen to take over a minute on a loaded machine (the ManagedClusters' 40 s).
    expect_deployment_within(
        &w,
        &bindery,
        ("nginx", "nginx-singleton"),
        "a report after the ITS is back is followed",
        3 * SETTLE,
        |s, l| shows(s, 1, 0) && l[SINGLETON] == "true",
    )
    .await;
    stop(&mut bindery);
}

/// Bindery's PATCH requests to Widget `w1` so far, from the WDS's audit log (Bindery
/// runs as the chart's ServiceAccount, whose requests are audited): `(subresource,
/// response code)` of each, in order.
fn widget_patches(w: &World) -> Vec<(String, i64)> {
    let audit = std::fs::read_to_string(w.env.wds.audit_log()).unwrap();
    audit
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| {
            e["user"]["username"] == bindery_tests::envtest::AUDITED_USER
                && e["stage"] == "ResponseComplete"
                && e["verb"] == "patch"
                && e["objectRef"]["resource"] == "widgets"
        })
        .map(|e| {
            let sub = e["objectRef"]["subresource"].as_str().unwrap_or("");
            (
                sub.to_string(),
                e["responseStatus"]["code"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Widget `ns/w1`'s `.status` in the WDS, once it is `want`.
async fn expect_widget_status(w: &World, bindery: &BinderyRun, want: &Value, what: &str) {
    let found = eventually(what, SETTLE, || async {
        let o = control_plane::get(&w.wds, &res::widgets(), Some("ns"), "w1")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no Widget")?;
        Ok((o.data.get("status") == Some(want)).then_some(()))
    })
    .await;
    match found {
        Ok(()) => w.step(what),
        Err(e) => fail(bindery, &format!("{what}: {e:#}")),
    }
}

/// A resource without a status subresource (a CRD's, as KubeStellar's fallback covers):
/// the first write finds that out, the later ones patch the main resource at once, one
/// request per status change (the label is written once). When the CRD gains the
/// subresource, the status goes through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_status_subresource_a_change_costs_one_request() {
    let w = World::start().await;
    w.three_wecs().await;
    control_plane::install_crds(&w.wds, &[bindery_tests::objects::widget_crd()])
        .await
        .unwrap();
    w.namespace("ns", json!({})).await;
    w.wds(
        &res::widgets(),
        bindery_tests::objects::widget("ns", "w1", json!({"app": "w"})),
    )
    .await;
    w.policy(
        "widgets",
        json!([{"matchLabels": {"name": "cluster1"}}]),
        json!([{"resources": ["widgets"], "objectSelectors": [{"matchLabels": {"app": "w"}}],
                "wantSingletonReportedState": true}]),
    )
    .await;
    // As the chart's ServiceAccount, whose requests the WDS audits.
    let kubeconfig = w.chart_service_account().await;
    let mut bindery = w.bindery_as(
        &kubeconfig,
        "bindery.log",
        &["--coalesce-ms", "50", "--wds-name", "wds1"],
    );
    let source = json!({"group": "example.com", "version": "v1", "resource": "widgets",
                        "kind": "Widget", "namespace": "ns", "name": "w1"});
    let ws = "u1-examplecomv1-widget-ns-w1";
    w.work_status("cluster1", ws, "wds1", source.clone(), json!({"x": 1}))
        .await;
    expect_widget_status(&w, &bindery, &json!({"x": 1}), "the first status returned").await;
    for x in [2, 3] {
        control_plane::work_status_status(&w.its, "cluster1", ws, &json!({"x": x}))
            .await
            .unwrap();
        expect_widget_status(&w, &bindery, &json!({"x": x}), "a change returned").await;
    }
    let main = |sub: &str, code| (sub.to_string(), code);
    assert_eq!(
        widget_patches(&w),
        [
            main("", 200),       // the label
            main("status", 404), // no subresource
            main("", 200),       // x: 1
            main("", 200),       // x: 2
            main("", 200),       // x: 3
        ],
        "one request per status change once the subresource is known to be missing"
    );

    // The CRD gains the status subresource: a main-resource patch no longer writes the
    // status, and Bindery goes through the subresource.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(w.wds.clone());
    let patch = json!({"spec": {"versions": [{
        "name": "v1", "served": true, "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
        "subresources": {"status": {}}}]}});
    crds.patch(
        "widgets.example.com",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    // The API server serves the subresource shortly after the update.
    eventually("the Widget status subresource", SETTLE, || async {
        let api: Api<DynamicObject> = Api::namespaced_with(w.wds.clone(), "ns", &res::widgets());
        Ok(api.get_status("w1").await.ok().map(drop))
    })
    .await
    .unwrap();
    control_plane::work_status_status(&w.its, "cluster1", ws, &json!({"x": 4}))
        .await
        .unwrap();
    expect_widget_status(
        &w,
        &bindery,
        &json!({"x": 4}),
        "returned through the new subresource",
    )
    .await;
    assert_eq!(
        widget_patches(&w)[5..],
        [main("", 200), main("status", 200)],
        "the main resource kept the old status: the subresource was used"
    );
    stop(&mut bindery);
}
