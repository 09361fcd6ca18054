//! `bindery run` through faults, against real kube-apiservers (envtest): killed with
//! SIGKILL in the middle of a burst of changes and started again; the ITS API server
//! down for 30 s while the workload keeps changing; etcd compacted during churn and the
//! WDS API server restarted after a compaction (every watch relists); a WDS that answers
//! 429 (at most one mutating request in flight); a second writer fighting over a Binding;
//! one resource's relist held while the others flow. Each asserts that the final
//! Bindings are exactly what the policies select on the servers' final state, and that no
//! version of a Binding in the recorded history (a watch on Bindings during the test)
//! lacked a destination or object that was selected all along.

use std::time::{Duration, Instant};

use bindery_tests::control_plane::{self, BindingHistory, res};
use bindery_tests::envtest::EnvtestOptions;
use bindery_tests::objects::{configmap, edge, entry, labelled, spec, widget, widget_crd};
use bindery_tests::web::{self, EDGE, Writers, assert_history, setup, touch};
use bindery_tests::world::{World, fail};
use bindery_tests::{free_listen_address, metrics};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

/// A bound for "it happened at all", never a measured figure.
const SETTLE: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_burst_then_restart() {
    let w = World::start().await;
    let mut cms = setup(&w, 20).await;
    let history = BindingHistory::start(&w.wds).await.unwrap();
    let coalesce = ["--coalesce-ms", "50"];
    let mut bindery = w.bindery_with("bindery-1.log", &coalesce);
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&bindery, "web", &exact, "first publish", SETTLE)
        .await;
    // A burst of changes, killed in the middle of it.
    for round in 0..3 {
        for (i, cm) in cms.iter_mut().enumerate() {
            *cm = touch(&w, i, round).await;
            if round == 1 && i == 10 {
                bindery.kill().unwrap();
                w.step("SIGKILL mid-burst");
            }
        }
    }
    let bindery = w.bindery_with("bindery-2.log", &coalesce);
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&bindery, "web", &exact, "restarted: Binding exact", SETTLE)
        .await;
    assert_history(&history, &EDGE, cms.len(), Writers::Any);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_its_down_for_30_seconds() {
    let mut w = World::start().await;
    let mut cms = setup(&w, 20).await;
    let history = BindingHistory::start(&w.wds).await.unwrap();
    let bindery = w.bindery_with("bindery.log", &["--coalesce-ms", "50"]);
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&bindery, "web", &exact, "first publish", SETTLE)
        .await;
    w.env.stop_its();
    w.step("ITS down");
    // The workload keeps changing while the ITS is down.
    let down = Instant::now();
    let mut round = 0;
    while down.elapsed() < Duration::from_secs(30) {
        let i = round % cms.len();
        cms[i] = touch(&w, i, round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    w.env.start_its().unwrap();
    w.step(&format!("ITS up again after {round} changes"));
    // A WEC joins once the ITS is back: the ManagedCluster watch works again.
    w.wec("cluster3", "edge").await;
    let exact = web::spec(&cms, &["cluster1", "cluster2", "cluster3"]);
    w.expect_spec(&bindery, "web", &exact, "Binding exact", SETTLE)
        .await;
    assert_history(&history, &EDGE, cms.len(), Writers::Any);
}

/// Bindery's `/metrics` at `base`.
fn bindery_metrics(base: &str) -> String {
    metrics::scrape(base).unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_fighting_over_a_binding_for_25_seconds() {
    let w = World::start().await;
    let cms = setup(&w, 20).await;
    let history = BindingHistory::start(&w.wds).await.unwrap();
    let (listen, base) = free_listen_address();
    let bindery = w.bindery_with("bindery.log", &["--coalesce-ms", "50", "--listen", &listen]);
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&bindery, "web", &exact, "first publish", SETTLE)
        .await;
    let drift_before = metrics::value(&bindery_metrics(&base), "bindery_binding_drift_total");

    // A second writer, as KubeStellar's controller would be if it still ran: it Updates
    // the Binding (field manager `Binding`) every 100 ms, to one of two versions with an
    // extra WEC, so that each of its writes changes the Binding. Every entry Bindery
    // selects stays, so the history's check still holds.
    let bindings: Api<DynamicObject> = Api::all_with(w.wds.clone(), &res::bindings());
    let params = PostParams {
        field_manager: Some("Binding".into()),
        ..PostParams::default()
    };
    let theirs = |extra: &str| {
        let mut s = exact.clone();
        s["destinations"]
            .as_array_mut()
            .unwrap()
            .push(json!({"clusterId": extra}));
        s
    };
    let theirs = [theirs("cluster3"), theirs("cluster9")];
    let (mut writes, mut conflicts, mut named_in_status) = (0u32, 0u32, false);
    let fight = Instant::now();
    while fight.elapsed() < Duration::from_secs(25) {
        let mut b = bindings.get("web").await.unwrap();
        b.data["spec"] = theirs[writes as usize % 2].clone();
        match bindings.replace("web", &params, &b).await {
            Ok(_) => writes += 1,
            Err(kube::Error::Api(s)) if s.code == 409 => conflicts += 1,
            Err(e) => panic!("the fighting writer's update failed: {e}"),
        }
        if !named_in_status {
            let status = w.policy_status("web").await;
            named_in_status = status["errors"].as_array().is_some_and(|errors| {
                errors.iter().any(|e| {
                    e.as_str()
                        .is_some_and(|e| e.contains("being changed by another writer"))
                })
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics_text = bindery_metrics(&base);
    let restores = metrics::value(&metrics_text, "bindery_binding_drift_total") - drift_before;
    w.step(&format!(
        "the fighter stops: {writes} writes ({conflicts} conflicts), Bindery restored \
         {restores} times, named in the status: {named_in_status}"
    ));
    assert!(named_in_status, "the policy's status never named the fight");
    assert!(writes >= 50, "the fighter wrote only {writes} times");
    // The free restores, then one per backoff step (1 s, 2 s, 4 s, 8 s in 25 s).
    assert!(restores >= 4.0, "Bindery restored only {restores} times");
    assert!(
        restores * 10.0 < f64::from(writes),
        "Bindery does not back off: {restores} restores for {writes} writes of the fighter"
    );
    // Once the fighter stops, the last restore (after its backoff) makes it exact.
    w.expect_spec(&bindery, "web", &exact, "restored: Binding exact", SETTLE)
        .await;
    assert_history(&history, &EDGE, cms.len(), Writers::Any);
}

/// Touches every ConfigMap of `cms` once, with `round`, and counts the round.
async fn churn(w: &World, cms: &mut [DynamicObject], round: &mut usize) {
    for (i, cm) in cms.iter_mut().enumerate() {
        *cm = touch(w, i, *round).await;
    }
    *round += 1;
}

/// RESET events Bindery received for WDS resource `resource` (as `/metrics` names it):
/// one per (re)list of its watch, and one per (re)start of the watcher.
fn resets(metrics_text: &str, resource: &str) -> f64 {
    metrics::sum(
        metrics_text,
        "bindery_watch_events_total",
        &[
            r#"space="wds""#,
            &format!(r#"resource="{resource}""#),
            r#"type="RESET""#,
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_compactions_and_a_wds_restart_from_a_compacted_revision_during_churn() {
    let mut w = World::start().await;
    let mut cms = setup(&w, 20).await;
    let history = BindingHistory::start(&w.wds).await.unwrap();
    let (listen, base) = free_listen_address();
    let bindery = w.bindery_with("bindery.log", &["--coalesce-ms", "50", "--listen", &listen]);
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&bindery, "web", &exact, "first publish", SETTLE)
        .await;
    let before = bindery_metrics(&base);
    let mut round = 0;

    // Compactions while the ConfigMaps keep changing.
    for _ in 0..3 {
        churn(&w, &mut cms, &mut round).await;
        let revision = w.env.compact_etcd_now().unwrap();
        w.step(&format!("compacted at {revision}"));
    }
    churn(&w, &mut cms, &mut round).await;
    let after_compactions = bindery_metrics(&base);

    // The WDS API server restarts after a compaction, the store having moved on meanwhile
    // (the ITS shares its etcd): its watch cache starts from a revision newer than any
    // Bindery saw, so Bindery's watches are answered 410 Gone and relist.
    w.env.stop_wds();
    for i in 0..5 {
        let cm = configmap("default", &format!("its-{i}"), json!({}));
        control_plane::apply(&w.its, &res::configmaps(), cm)
            .await
            .unwrap();
    }
    let revision = w.env.compact_etcd_now().unwrap();
    w.env.start_wds().unwrap();
    w.step(&format!("WDS restarted after a compaction at {revision}"));
    for _ in 0..2 {
        churn(&w, &mut cms, &mut round).await;
        w.env.compact_etcd_now().unwrap();
    }
    churn(&w, &mut cms, &mut round).await;

    let exact = web::spec(&cms, &EDGE);
    let what = format!("Binding exact after {round} rounds of changes");
    w.expect_spec(&bindery, "web", &exact, &what, SETTLE).await;
    assert_history(&history, &EDGE, cms.len(), Writers::Any);

    // The evidence that the watches did relist: more RESETs of the ConfigMaps' watch.
    let after = bindery_metrics(&base);
    let (r0, r1, r2) = (
        resets(&before, "configmaps"),
        resets(&after_compactions, "configmaps"),
        resets(&after, "configmaps"),
    );
    let expired = bindery.log_text().matches("410 Gone").count();
    eprintln!(
        "ConfigMap RESETs: {r0} before, {r1} after the compactions, {r2} after the restart; \
         {expired} '410 Gone' lines in Bindery's log"
    );
    assert!(
        r2 > r1,
        "the ConfigMaps' watch never relisted after the restart ({r2} RESETs, {r1} before it)"
    );
    // The watch task's lines carry its resource in their span.
    let log = bindery.log_text();
    let relisted = log.lines().any(|l| {
        l.contains("watch{resource=wds:v1/configmaps}")
            && l.contains("watch expired (410 Gone); relisting")
    });
    assert!(
        relisted,
        "Bindery's log lacks the ConfigMaps' watch expiring"
    );
    let line = "relist applied resource=wds:v1/configmaps";
    assert!(log.contains(line), "Bindery's log lacks {line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_wds_answering_429() {
    const POLICIES: usize = 40;
    // Without API Priority and Fairness the limits are plain: at most one mutating and two
    // other requests in flight; beyond that the API server answers 429 at once.
    let options = EnvtestOptions {
        wds_extra_args: vec![
            "--enable-priority-and-fairness=false".into(),
            "--max-mutating-requests-inflight=1".into(),
            "--max-requests-inflight=2".into(),
        ],
    };
    let w = World::start_with(options).await;
    w.three_wecs().await;
    w.namespace("app", json!({})).await;
    // Bindery as the ServiceAccount of the chart's WDS RBAC: not in `system:masters`, so
    // the API server's request limits apply to it.
    let kubeconfig = w.chart_service_account().await;
    // Policy p-NN selects the ConfigMaps of group gNN: keep-NN, always, and the ConfigMaps
    // moving between groups that are there at the time.
    let group = |i: usize| format!("g{:02}", i % POLICIES);
    let mut keep = Vec::new();
    let mut moving = Vec::new();
    for i in 0..POLICIES {
        let labels = json!({"group": group(i)});
        let (keep_i, move_i) = (format!("keep-{i:02}"), format!("move-{i:02}"));
        keep.push(w.configmap("app", &keep_i, labels.clone()).await);
        moving.push(w.configmap("app", &move_i, labels.clone()).await);
        let downsync = json!([labelled(&["configmaps"], labels)]);
        w.policy(&format!("p-{i:02}"), edge(), downsync).await;
    }
    let history = BindingHistory::start(&w.wds).await.unwrap();
    let (listen, base) = free_listen_address();
    let bindery = w.bindery_as(
        &kubeconfig,
        "bindery.log",
        &[
            "--coalesce-ms",
            "50",
            "--concurrency",
            "8",
            "--qps",
            "1000",
            "--burst",
            "1000",
            "--listen",
            &listen,
        ],
    );
    let labels = |obj: &DynamicObject| obj.metadata.labels.clone().unwrap_or_default();
    let exact = async |keep: &[DynamicObject], moving: &[DynamicObject]| {
        for i in 0..POLICIES {
            let selected: Vec<DynamicObject> = keep
                .iter()
                .chain(moving)
                .filter(|c| labels(c).get("group") == Some(&group(i)))
                .cloned()
                .collect();
            let name = format!("p-{i:02}");
            let spec = web::spec(&selected, &EDGE);
            w.expect_spec(&bindery, &name, &spec, &format!("Binding {name}"), SETTLE)
                .await;
        }
    };
    exact(&keep, &moving).await;
    w.step(&format!("{POLICIES} Bindings exact"));
    // Every moving ConfigMap changes group three times: two Bindings change each time.
    for round in 1..=3 {
        for (i, cm) in moving.iter_mut().enumerate() {
            *cm = w
                .configmap(
                    "app",
                    &format!("move-{i:02}"),
                    json!({"group": group(i + round)}),
                )
                .await;
        }
    }
    exact(&keep, &moving).await;
    w.step("after the moves: Bindings exact");

    // Throttling did happen, to Bindery's writes of Bindings and statuses, and no write
    // failed for good. The sink's client does not retry inside kube's client: each 429 to
    // a Binding write (only Bindery writes Bindings here) is one of the sink's own retries,
    // through its rate limiter and backoff.
    let apiserver = w.env.wds.metrics().unwrap();
    for l in apiserver.lines().filter(|l| l.contains(r#"code="429""#)) {
        eprintln!("WDS: {l}");
    }
    let throttled = |resource: &str| {
        metrics::sum(
            &apiserver,
            "apiserver_request_total",
            &[r#"code="429""#, &format!(r#"resource="{resource}""#)],
        )
    };
    let (bindings, policies) = (throttled("bindings"), throttled("bindingpolicies"));
    let ours = bindery_metrics(&base);
    let retries = metrics::value(&ours, "bindery_sink_retries_total");
    let failed = metrics::sum(&ours, "bindery_sink_writes_total", &[r#"result="failed""#]);
    let applied = metrics::sum(&ours, "bindery_sink_writes_total", &[r#"result="applied""#]);
    eprintln!(
        "the WDS answered 429 to {bindings} Binding and {policies} policy (status) requests; \
         Bindery: {applied} writes applied, {retries} sink retries, {failed} failed"
    );
    assert!(bindings > 0.0, "no Binding write was ever answered 429");
    let binding_writes_throttled: f64 = ["POST", "PATCH", "DELETE"]
        .iter()
        .map(|verb| {
            metrics::sum(
                &apiserver,
                "apiserver_request_total",
                &[
                    r#"code="429""#,
                    r#"resource="bindings""#,
                    &format!(r#"verb="{verb}""#),
                ],
            )
        })
        .sum();
    assert!(
        retries >= binding_writes_throttled && binding_writes_throttled > 0.0,
        "{binding_writes_throttled} Binding writes were answered 429 but the sink retried \
         only {retries} times: something retried behind its back"
    );
    assert_eq!(failed, 0.0, "a write failed for good");

    // Nothing was lost or blanked on the way: each Binding, once it had its keep-NN and
    // both WECs, kept them in every version, and none was deleted.
    for i in 0..POLICIES {
        let name = format!("p-{i:02}");
        let keep_name = format!("keep-{i:02}");
        let mut full = false;
        for seen in history.of(&name) {
            assert_ne!(
                seen.event, "DELETED",
                "Binding {name} was deleted: {seen:?}"
            );
            let workload = seen.spec["workload"].to_string();
            let dests = seen.spec["destinations"].to_string();
            let complete = workload.contains(&format!("\"{keep_name}\""))
                && EDGE.iter().all(|c| dests.contains(c));
            assert!(
                !full || complete,
                "a version of {name} lost an entry: {seen:?}"
            );
            full |= complete;
        }
        assert!(full, "Binding {name} was never complete");
    }
}

/// RBAC for Bindery as ServiceAccount `bindery-system/bindery` watching only the core
/// group and `example.com` (run with `--api-groups core,example.com`), with the `list` of
/// widgets in a ClusterRoleBinding of its own ([`WIDGET_LIST`]) that a test can take away
/// and give back.
const RELIST_RBAC: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: bindery-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: bindery
  namespace: bindery-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: bindery-core
rules:
  - apiGroups: [\"\"]
    resources: [\"*\"]
    verbs: [\"list\", \"watch\"]
  - apiGroups: [\"example.com\"]
    resources: [\"widgets\"]
    verbs: [\"watch\"]
  - apiGroups: [\"apiextensions.k8s.io\"]
    resources: [\"customresourcedefinitions\"]
    verbs: [\"list\", \"watch\"]
  - apiGroups: [\"control.kubestellar.io\"]
    resources: [\"bindings\"]
    verbs: [\"get\", \"list\", \"watch\", \"create\", \"patch\", \"update\", \"delete\"]
  - apiGroups: [\"control.kubestellar.io\"]
    resources: [\"bindingpolicies\"]
    verbs: [\"get\", \"list\", \"watch\", \"update\", \"patch\"]
  - apiGroups: [\"control.kubestellar.io\"]
    resources: [\"bindingpolicies/status\"]
    verbs: [\"get\", \"update\", \"patch\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bindery-core
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: bindery-core
subjects:
  - kind: ServiceAccount
    name: bindery
    namespace: bindery-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: bindery-widget-list
rules:
  - apiGroups: [\"example.com\"]
    resources: [\"widgets\"]
    verbs: [\"list\"]
";

/// The ClusterRoleBinding that lets Bindery list widgets.
const WIDGET_LIST: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bindery-widget-list
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: bindery-widget-list
subjects:
  - kind: ServiceAccount
    name: bindery
    namespace: bindery-system
";

/// Widget `app/name` labelled `app: APP`, as stored.
async fn widget_labelled(w: &World, name: &str, app: &str) -> DynamicObject {
    w.wds(&res::widgets(), widget("app", name, json!({"app": app})))
        .await
}

/// The spec of policy `wid` (the edge WECs, widgets labelled `app: web`) for `ws`.
fn widget_spec(ws: &[DynamicObject]) -> Value {
    let entries = ws.iter().map(|w| entry(&res::widgets(), w)).collect();
    spec(entries, &EDGE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_resource_relisting_holds_only_its_own_objects() {
    let w = World::start().await;
    let wds = &w.wds;
    let mut cms = setup(&w, 20).await;
    control_plane::install_crds(wds, &[widget_crd()])
        .await
        .unwrap();
    let mut ws = Vec::new();
    for i in 0..5 {
        ws.push(widget_labelled(&w, &format!("w-{i}"), "web").await);
    }
    let web = labelled(&["widgets"], json!({"app": "web"}));
    w.policy("wid", edge(), json!([web])).await;
    control_plane::create_yaml(wds, RELIST_RBAC).await.unwrap();
    control_plane::create_yaml(wds, WIDGET_LIST).await.unwrap();
    let kubeconfig = w
        .wds_kubeconfig_as("bindery-system", "bindery", "bindery-sa.kubeconfig")
        .await;
    let sa = control_plane::client(&kubeconfig).await;
    let sa_widgets: Api<DynamicObject> = Api::all_with(sa, &res::widgets());

    let history = BindingHistory::start(wds).await.unwrap();
    let (listen, base) = free_listen_address();
    let bindery = w.bindery_as(
        &kubeconfig,
        "bindery.log",
        &[
            "--api-groups",
            "core,example.com",
            "--coalesce-ms",
            "50",
            "--listen",
            &listen,
        ],
    );
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&bindery, "web", &exact, "first publish: web", SETTLE)
        .await;
    let exact = widget_spec(&ws);
    w.expect_spec(&bindery, "wid", &exact, "first publish: wid", SETTLE)
        .await;

    // Bindery may no longer list widgets (watching them it still may).
    control_plane::delete(
        wds,
        &control_plane::resource(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
        ),
        None,
        "bindery-widget-list",
    )
    .await
    .unwrap();
    control_plane::eventually("the widget list is forbidden", SETTLE, || async {
        match sa_widgets.list(&Default::default()).await {
            Err(kube::Error::Api(s)) if s.code == 403 => Ok(Some(())),
            other => Err(format!(
                "listing widgets: {:?}",
                other.map(|l| l.items.len())
            )),
        }
    })
    .await
    .unwrap();
    // A change of the CRD's spec makes the API server build the widgets' storage anew:
    // a second later the old watch cache terminates its watchers. Before that, etcd moves
    // on (a ConfigMap change) and is compacted, and no widget changes: Bindery's watch
    // comes back from a resourceVersion neither etcd nor the new watch cache can serve
    // (410 Gone), and its relist cannot list. The ConfigMaps' watch is untouched.
    let versions_before = history.of("wid").len();
    let resets_before = resets(&bindery_metrics(&base), "widgets.example.com");
    let crds: Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = Api::all(wds.clone());
    crds.patch(
        "widgets.example.com",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"versions": [{
            "name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "additionalPrinterColumns": [{"name": "App", "type": "string", "jsonPath": ".metadata.labels.app"}]
        }]}})),
    )
    .await
    .unwrap();
    cms[0] = touch(&w, 0, 100).await;
    w.env.compact_etcd_now().unwrap();
    control_plane::eventually("the widgets' watch relists", SETTLE, || async {
        let text = metrics::scrape(&base).map_err(|e| e.to_string())?;
        let (resets, unsynced) = (
            resets(&text, "widgets.example.com"),
            metrics::value(&text, "bindery_unsynced_resources"),
        );
        if resets > resets_before && unsynced >= 1.0 {
            Ok(Some(()))
        } else {
            Err(format!(
                "{resets} widget RESETs (before: {resets_before}), {unsynced} unsynced"
            ))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    w.step("the widgets' watch is relisting (and cannot list)");
    // Changes of widgets meanwhile: they reach the Binding with the relist.
    let gone = ws.remove(0);
    widget_labelled(&w, gone.metadata.name.as_deref().unwrap(), "other").await;
    ws.push(widget_labelled(&w, "w-5", "web").await);

    // The ConfigMaps keep flowing meanwhile: every round reaches the Binding.
    for round in 0..5 {
        for (i, cm) in cms.iter_mut().enumerate().take(5) {
            *cm = touch(&w, i, 200 + round).await;
        }
        let exact = web::spec(&cms, &EDGE);
        let what = format!("round {round} of ConfigMap changes");
        w.expect_spec(&bindery, "web", &exact, &what, SETTLE).await;
    }
    let during = bindery_metrics(&base);
    assert!(
        metrics::value(&during, "bindery_unsynced_resources") >= 1.0,
        "the relist ended before the ConfigMap changes were checked"
    );
    // The widgets' Binding stays as it was: w-0 still in it, w-5 not yet.
    let held = control_plane::binding(wds, "wid").await.unwrap().unwrap().1;
    assert_eq!(
        held,
        widget_spec(&[vec![gone.clone()], ws[..4].to_vec()].concat()),
        "the widgets' Binding changed before their relist completed"
    );
    w.step("5 rounds of ConfigMap changes reached the Binding during the relist");

    // Listing allowed again: the relist completes and is applied as one difference.
    control_plane::create_yaml(wds, WIDGET_LIST).await.unwrap();
    let exact = widget_spec(&ws);
    w.expect_spec(&bindery, "wid", &exact, "relist complete: wid", SETTLE)
        .await;
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&bindery, "web", &exact, "relist complete: web", SETTLE)
        .await;
    assert_history(&history, &EDGE, cms.len(), Writers::Any);
    // The relist came in one difference: every version of `wid` since the relist began
    // had w-1 .. w-4 and either w-0 (before) or w-5 (after), never both or neither.
    for seen in &history.of("wid")[versions_before..] {
        let text = seen.spec.to_string();
        let has = |name: &str| text.contains(&format!("\"{name}\""));
        assert!(
            (1..5).all(|i| has(&format!("w-{i}"))),
            "a version of wid dropped a widget: {seen:?}"
        );
        assert!(
            has("w-0") != has("w-5"),
            "a partial relist was published: {seen:?}"
        );
    }
}
