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

use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::control_plane::{self, BindingHistory, apply, await_binding_spec, res, rv};
use bindery_tests::envtest::{Envtest, EnvtestOptions};
use bindery_tests::objects::{self, configmap, namespace};
use bindery_tests::web::{EDGE, Writers, assert_history, setup, spec, touch};
use bindery_tests::{free_port, http_get, metrics};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(90);

fn fail(bindery: &BinderyRun, msg: &str) -> ! {
    panic!(
        "{msg}\n--- bindery log ({}), last 80 lines ---\n{}",
        bindery.log.display(),
        bindery.log_tail(80)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_burst_then_restart() {
    let started = Instant::now();
    let (env, wds, its) = control_plane::start().await;
    let mut cms = setup(&wds, &its, 20).await;
    let history = BindingHistory::start(&wds).await.unwrap();
    let start = |log: &str| {
        BinderyRun::start(
            &env.wds.kubeconfig,
            &env.its.kubeconfig,
            &env.dir().join(log),
            &["--coalesce-ms", "50"],
        )
        .unwrap()
    };
    let mut bindery = start("bindery-1.log");
    let edge = EDGE;
    await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    // A burst of changes, killed in the middle of it.
    for round in 0..3 {
        for (i, cm) in cms.iter_mut().enumerate() {
            *cm = touch(&wds, i, round).await;
            if round == 1 && i == 10 {
                bindery.kill().unwrap();
                eprintln!("[{:>6.1?}] SIGKILL mid-burst", started.elapsed());
            }
        }
    }
    let bindery = start("bindery-2.log");
    await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    eprintln!("[{:>6.1?}] restarted: Binding exact", started.elapsed());
    assert_history(&history, &edge, cms.len(), Writers::Any);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_its_down_for_30_seconds() {
    let started = Instant::now();
    let (mut env, wds, its) = control_plane::start().await;
    let mut cms = setup(&wds, &its, 20).await;
    let history = BindingHistory::start(&wds).await.unwrap();
    let bindery = BinderyRun::start(
        &env.wds.kubeconfig,
        &env.its.kubeconfig,
        &env.dir().join("bindery.log"),
        &["--coalesce-ms", "50"],
    )
    .unwrap();
    let edge = EDGE;
    await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    env.stop_its();
    eprintln!("[{:>6.1?}] ITS down", started.elapsed());
    // The workload keeps changing while the ITS is down.
    let down = Instant::now();
    let mut round = 0;
    while down.elapsed() < Duration::from_secs(30) {
        let i = round % cms.len();
        cms[i] = touch(&wds, i, round).await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    env.start_its().unwrap();
    eprintln!(
        "[{:>6.1?}] ITS up again after {round} changes",
        started.elapsed()
    );
    // A WEC joins once the ITS is back: the ManagedCluster watch works again.
    control_plane::apply_wecs(&its, &[("cluster3", "edge")])
        .await
        .unwrap();
    let all = ["cluster1", "cluster2", "cluster3"];
    await_binding_spec(&wds, "web", &spec(&cms, &all), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    eprintln!("[{:>6.1?}] Binding exact", started.elapsed());
    assert_history(&history, &edge, cms.len(), Writers::Any);
}

/// The `errors` of policy `name`'s status.
async fn policy_errors(wds: &kube::Client, name: &str) -> Vec<String> {
    let policy = control_plane::get(wds, &res::binding_policies(), None, name)
        .await
        .unwrap()
        .expect("the policy exists");
    policy.data["status"]["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Bindery's `/metrics` at `base`.
fn bindery_metrics(base: &str) -> String {
    let (code, body) = http_get(&format!("{base}/metrics")).unwrap();
    assert_eq!(code, 200, "GET /metrics: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_fighting_over_a_binding_for_25_seconds() {
    let started = Instant::now();
    let (env, wds, its) = control_plane::start().await;
    let cms = setup(&wds, &its, 20).await;
    let history = BindingHistory::start(&wds).await.unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bindery = BinderyRun::start(
        &env.wds.kubeconfig,
        &env.its.kubeconfig,
        &env.dir().join("bindery.log"),
        &[
            "--coalesce-ms",
            "50",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    )
    .unwrap();
    let edge = EDGE;
    let exact = spec(&cms, &edge);
    await_binding_spec(&wds, "web", &exact, SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    let drift_before = metrics::value(&bindery_metrics(&base), "bindery_binding_drift_total");

    // A second writer, as KubeStellar's controller would be if it still ran: it Updates
    // the Binding (field manager `Binding`) every 100 ms, to one of two versions with an
    // extra WEC, so that each of its writes changes the Binding. Every entry Bindery
    // selects stays, so the history's check still holds.
    let bindings: Api<DynamicObject> = Api::all_with(wds.clone(), &res::bindings());
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
            named_in_status = policy_errors(&wds, "web")
                .await
                .iter()
                .any(|e| e.contains("being changed by another writer"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics_text = bindery_metrics(&base);
    let restores = metrics::value(&metrics_text, "bindery_binding_drift_total") - drift_before;
    eprintln!(
        "[{:>6.1?}] the fighter stops: {writes} writes ({conflicts} conflicts), Bindery restored \
         {restores} times, named in the status: {named_in_status}",
        started.elapsed()
    );
    assert!(named_in_status, "the policy's status never named the fight");
    assert!(writes >= 50, "the fighter wrote only {writes} times");
    // The free restores, then one per backoff step (1 s, 2 s, 4 s, 8 s in 25 s).
    assert!(restores >= 4.0, "Bindery restored only {restores} times");
    assert!(
        restores * 10.0 < f64::from(writes),
        "Bindery does not back off: {restores} restores for {writes} writes of the fighter"
    );
    // Once the fighter stops, the last restore (after its backoff) makes it exact.
    await_binding_spec(&wds, "web", &exact, SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    eprintln!("[{:>6.1?}] restored: Binding exact", started.elapsed());
    assert_history(&history, &edge, cms.len(), Writers::Any);
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
    let started = Instant::now();
    let (mut env, wds, its) = control_plane::start().await;
    let mut cms = setup(&wds, &its, 20).await;
    let history = BindingHistory::start(&wds).await.unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bindery = BinderyRun::start(
        &env.wds.kubeconfig,
        &env.its.kubeconfig,
        &env.dir().join("bindery.log"),
        &[
            "--coalesce-ms",
            "50",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    )
    .unwrap();
    let edge = EDGE;
    await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    let before = bindery_metrics(&base);
    let mut round = 0;
    let mut churn = async |cms: &mut Vec<DynamicObject>, rounds: usize| {
        for _ in 0..rounds {
            for (i, cm) in cms.iter_mut().enumerate() {
                *cm = touch(&wds, i, round).await;
            }
            round += 1;
        }
    };

    // Compactions while the ConfigMaps keep changing.
    for _ in 0..3 {
        churn(&mut cms, 1).await;
        let revision = env.compact_etcd_now().unwrap();
        eprintln!("[{:>6.1?}] compacted at {revision}", started.elapsed());
    }
    churn(&mut cms, 1).await;
    let after_compactions = bindery_metrics(&base);

    // The WDS API server restarts after a compaction, the store having moved on meanwhile
    // (the ITS shares its etcd): its watch cache starts from a revision newer than any
    // Bindery saw, so Bindery's watches are answered 410 Gone and relist.
    env.stop_wds();
    for i in 0..5 {
        apply(
            &its,
            &res::configmaps(),
            configmap("default", &format!("its-{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    let revision = env.compact_etcd_now().unwrap();
    env.start_wds().unwrap();
    eprintln!(
        "[{:>6.1?}] WDS restarted after a compaction at {revision}",
        started.elapsed()
    );
    for _ in 0..2 {
        churn(&mut cms, 1).await;
        env.compact_etcd_now().unwrap();
    }
    churn(&mut cms, 1).await;

    await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    eprintln!(
        "[{:>6.1?}] Binding exact after {round} rounds of changes",
        started.elapsed()
    );
    assert_history(&history, &edge, cms.len(), Writers::Any);

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
    let log = bindery.log_text();
    for line in [
        "watch expired (410 Gone); relisting resource=wds:v1/configmaps",
        "relist applied resource=wds:v1/configmaps",
    ] {
        assert!(log.contains(line), "Bindery's log lacks {line:?}");
    }
}

/// A kubeconfig for Bindery as the ServiceAccount of the chart's WDS RBAC (created in the
/// WDS): not in `system:masters`, so the API server's request limits apply to it.
async fn service_account_kubeconfig(env: &Envtest, wds: &kube::Client) -> std::path::PathBuf {
    bindery_tests::chart::create_wds_rbac(wds, "bindery-system")
        .await
        .unwrap();
    let token = control_plane::service_account_token(wds, "bindery-system", "bindery")
        .await
        .unwrap();
    let kubeconfig = env.dir().join("bindery-sa.kubeconfig");
    control_plane::write_token_kubeconfig(&kubeconfig, "wds", &env.wds.url, &token).unwrap();
    kubeconfig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_wds_answering_429() {
    const POLICIES: usize = 40;
    let started = Instant::now();
    // Without API Priority and Fairness the limits are plain: at most one mutating and two
    // other requests in flight; beyond that the API server answers 429 at once.
    let options = EnvtestOptions {
        wds_extra_args: vec![
            "--enable-priority-and-fairness=false".into(),
            "--max-mutating-requests-inflight=1".into(),
            "--max-requests-inflight=2".into(),
        ],
    };
    let (env, wds, its) = control_plane::start_with(options).await;
    control_plane::apply_wecs(&its, control_plane::THREE_WECS)
        .await
        .unwrap();
    apply(&wds, &res::namespaces(), namespace("app", json!({})))
        .await
        .unwrap();
    let kubeconfig = service_account_kubeconfig(&env, &wds).await;
    // Policy p-NN selects the ConfigMaps of group gNN: keep-NN, always, and the ConfigMaps
    // moving between groups that are there at the time.
    let group = |i: usize| format!("g{:02}", i % POLICIES);
    let mut keep = Vec::new();
    let mut moving = Vec::new();
    for i in 0..POLICIES {
        keep.push(
            apply(
                &wds,
                &res::configmaps(),
                configmap("app", &format!("keep-{i:02}"), json!({"group": group(i)})),
            )
            .await
            .unwrap(),
        );
        moving.push(
            apply(
                &wds,
                &res::configmaps(),
                configmap("app", &format!("move-{i:02}"), json!({"group": group(i)})),
            )
            .await
            .unwrap(),
        );
        apply(
            &wds,
            &res::binding_policies(),
            json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
                   "metadata": {"name": format!("p-{i:02}")},
                   "spec": {"clusterSelectors": [{"matchLabels": {"location-group": "edge"}}],
                            "downsync": [{"resources": ["configmaps"],
                                          "objectSelectors": [{"matchLabels": {"group": group(i)}}]}]}}),
        )
        .await
        .unwrap();
    }
    let history = BindingHistory::start(&wds).await.unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bindery = BinderyRun::start(
        &kubeconfig,
        &env.its.kubeconfig,
        &env.dir().join("bindery.log"),
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
            &format!("127.0.0.1:{port}"),
        ],
    )
    .unwrap();
    let edge = EDGE;
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
            await_binding_spec(&wds, &name, &spec(&selected, &edge), SETTLE)
                .await
                .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
        }
    };
    exact(&keep, &moving).await;
    eprintln!("[{:>6.1?}] {POLICIES} Bindings exact", started.elapsed());
    // Every moving ConfigMap changes group three times: two Bindings change each time.
    for round in 1..=3 {
        for (i, cm) in moving.iter_mut().enumerate() {
            *cm = apply(
                &wds,
                &res::configmaps(),
                configmap(
                    "app",
                    &format!("move-{i:02}"),
                    json!({"group": group(i + round)}),
                ),
            )
            .await
            .unwrap();
        }
    }
    exact(&keep, &moving).await;
    eprintln!(
        "[{:>6.1?}] after the moves: Bindings exact",
        started.elapsed()
    );

    // Throttling did happen, to Bindery's writes of Bindings and statuses, and no write
    // failed for good. The sink's client does not retry inside kube's client: each 429 to
    // a Binding write (only Bindery writes Bindings here) is one of the sink's own retries,
    // through its rate limiter and backoff.
    let apiserver = env.wds.metrics().unwrap();
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
                && edge.iter().all(|c| dests.contains(c));
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

fn widgets() -> kube::api::ApiResource {
    control_plane::resource("example.com/v1", "Widget", "widgets")
}

fn widget(name: &str, app: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": name, "namespace": "app", "labels": {"app": app}}})
}

/// The spec of policy `wid` (edge WECs, widgets labelled `app: web`) for `ws`.
fn widget_spec(ws: &[DynamicObject], clusters: &[&str]) -> Value {
    let mut ws: Vec<&DynamicObject> = ws.iter().collect();
    ws.sort_by_key(|w| w.metadata.name.clone());
    let mut spec = json!({"workload": {}});
    if !ws.is_empty() {
        spec["workload"]["namespaceScope"] = ws
            .iter()
            .map(|w| {
                json!({"group": "example.com", "version": "v1", "resource": "widgets",
                       "namespace": "app", "name": w.metadata.name.clone().unwrap(),
                       "resourceVersion": rv(w)})
            })
            .collect();
    }
    spec["destinations"] = clusters.iter().map(|c| json!({"clusterId": c})).collect();
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_resource_relisting_holds_only_its_own_objects() {
    let started = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let (env, wds, its) = control_plane::start().await;
    let mut cms = setup(&wds, &its, 20).await;
    let crd = objects::simple_crd("example.com", "Widget", "widgets", true);
    control_plane::install_crds(&wds, std::slice::from_ref(&crd))
        .await
        .unwrap();
    let mut ws = Vec::new();
    for i in 0..5 {
        ws.push(
            apply(&wds, &widgets(), widget(&format!("w-{i}"), "web"))
                .await
                .unwrap(),
        );
    }
    apply(
        &wds,
        &res::binding_policies(),
        json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
               "metadata": {"name": "wid"},
               "spec": {"clusterSelectors": [{"matchLabels": {"location-group": "edge"}}],
                        "downsync": [{"resources": ["widgets"],
                                      "objectSelectors": [{"matchLabels": {"app": "web"}}]}]}}),
    )
    .await
    .unwrap();
    control_plane::create_yaml(&wds, RELIST_RBAC).await.unwrap();
    control_plane::create_yaml(&wds, WIDGET_LIST).await.unwrap();
    let token = control_plane::service_account_token(&wds, "bindery-system", "bindery")
        .await
        .unwrap();
    let kubeconfig = env.dir().join("bindery-sa.kubeconfig");
    control_plane::write_token_kubeconfig(&kubeconfig, "wds", &env.wds.url, &token).unwrap();
    let sa = control_plane::client(&kubeconfig).await;
    let sa_widgets: Api<DynamicObject> = Api::all_with(sa, &widgets());

    let history = BindingHistory::start(&wds).await.unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bindery = BinderyRun::start(
        &kubeconfig,
        &env.its.kubeconfig,
        &env.dir().join("bindery.log"),
        &[
            "--api-groups",
            "core,example.com",
            "--coalesce-ms",
            "50",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
    )
    .unwrap();
    let edge = EDGE;
    await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    await_binding_spec(&wds, "wid", &widget_spec(&ws, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    step("first publish: both Bindings exact");

    // Bindery may no longer list widgets (watching them it still may).
    control_plane::delete(
        &wds,
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
    cms[0] = touch(&wds, 0, 100).await;
    env.compact_etcd_now().unwrap();
    control_plane::eventually("the widgets' watch relists", SETTLE, || async {
        let text = http_get(&format!("{base}/metrics"))
            .map_err(|e| e.to_string())?
            .1;
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
    step("the widgets' watch is relisting (and cannot list)");
    // Changes of widgets meanwhile: they reach the Binding with the relist.
    let gone = ws.remove(0);
    apply(
        &wds,
        &widgets(),
        widget(&gone.metadata.name.clone().unwrap(), "other"),
    )
    .await
    .unwrap();
    ws.push(apply(&wds, &widgets(), widget("w-5", "web")).await.unwrap());

    // The ConfigMaps keep flowing meanwhile: every round reaches the Binding.
    for round in 0..5 {
        for (i, cm) in cms.iter_mut().enumerate().take(5) {
            *cm = touch(&wds, i, 200 + round).await;
        }
        await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
            .await
            .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    }
    let during = bindery_metrics(&base);
    assert!(
        metrics::value(&during, "bindery_unsynced_resources") >= 1.0,
        "the relist ended before the ConfigMap changes were checked"
    );
    // The widgets' Binding stays as it was: w-0 still in it, w-5 not yet.
    let held = control_plane::binding(&wds, "wid")
        .await
        .unwrap()
        .unwrap()
        .1;
    assert_eq!(
        held,
        widget_spec(&[vec![gone.clone()], ws[..4].to_vec()].concat(), &edge),
        "the widgets' Binding changed before their relist completed"
    );
    step("5 rounds of ConfigMap changes reached the Binding during the relist");

    // Listing allowed again: the relist completes and is applied as one difference.
    control_plane::create_yaml(&wds, WIDGET_LIST).await.unwrap();
    await_binding_spec(&wds, "wid", &widget_spec(&ws, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    await_binding_spec(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    step("relist complete: both Bindings exact");
    assert_history(&history, &edge, cms.len(), Writers::Any);
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
