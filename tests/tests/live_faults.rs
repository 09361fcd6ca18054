//! `bindery run` through faults, against real kube-apiservers (envtest): killed with
//! SIGKILL in the middle of a burst of changes and started again, and the ITS API server
//! down for 30 s while the workload keeps changing. Each asserts that the final Bindings
//! are exactly what the policies select on the servers' final state, and that no version
//! of a Binding in the recorded history (a watch on Bindings during the test) lacked a
//! destination or object that was selected all along.

use std::time::{Duration, Instant};

use bindery_tests::cluster::objects::{configmap, namespace};
use bindery_tests::cluster::{
    self, BinderyRun, BindingHistory, apply, await_binding_spec_within, res, rv,
};
use kube::api::DynamicObject;
use serde_json::{Value, json};

const SETTLE: Duration = Duration::from_secs(90);

fn fail(bindery: &BinderyRun, msg: &str) -> ! {
    panic!(
        "{msg}\n--- bindery log ({}), last 80 lines ---\n{}",
        bindery.log.display(),
        bindery.log_tail(80)
    )
}

fn entry(obj: &DynamicObject) -> Value {
    json!({"group": "", "version": "v1", "resource": "configmaps", "namespace": "app",
           "name": obj.metadata.name.clone().unwrap(), "resourceVersion": rv(obj)})
}

/// The spec of policy `web` (edge WECs, ConfigMaps labelled `app: web`) for `cms`.
fn spec(cms: &[DynamicObject], clusters: &[&str]) -> Value {
    let mut cms: Vec<&DynamicObject> = cms.iter().collect();
    cms.sort_by_key(|c| c.metadata.name.clone());
    let mut spec = json!({"workload": {}});
    if !cms.is_empty() {
        spec["workload"]["namespaceScope"] = cms.iter().map(|c| entry(c)).collect();
    }
    if !clusters.is_empty() {
        spec["destinations"] = clusters.iter().map(|c| json!({"clusterId": c})).collect();
    }
    spec
}

async fn setup(wds: &kube::Client, its: &kube::Client) -> Vec<DynamicObject> {
    cluster::apply_wecs(its, cluster::THREE_WECS).await.unwrap();
    apply(wds, &res::namespaces(), namespace("app", json!({})))
        .await
        .unwrap();
    let mut cms = Vec::new();
    for i in 0..20 {
        cms.push(
            apply(
                wds,
                &res::configmaps(),
                configmap("app", &format!("cm-{i:02}"), json!({"app": "web"})),
            )
            .await
            .unwrap(),
        );
    }
    apply(
        wds,
        &res::binding_policies(),
        json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
               "metadata": {"name": "web"},
               "spec": {"clusterSelectors": [{"matchLabels": {"location-group": "edge"}}],
                        "downsync": [{"resources": ["configmaps"],
                                      "objectSelectors": [{"matchLabels": {"app": "web"}}]}]}}),
    )
    .await
    .unwrap();
    cms
}

/// Relabels ConfigMap `cm-NN` (a status-free change: new resourceVersion, same selection).
async fn touch(wds: &kube::Client, i: usize, round: usize) -> DynamicObject {
    apply(
        wds,
        &res::configmaps(),
        configmap(
            "app",
            &format!("cm-{i:02}"),
            json!({"app": "web", "round": round.to_string()}),
        ),
    )
    .await
    .unwrap()
}

/// Every version of Binding `web` that the history saw, after its first full one, has
/// `always` WECs and every ConfigMap name (all stay selected throughout).
fn assert_never_dropped(history: &BindingHistory, always: &[&str], objects: usize) {
    let mut full = false;
    for seen in history.of("web") {
        assert_ne!(seen.event, "DELETED", "Binding web was deleted: {seen:?}");
        let names = seen.spec["workload"]["namespaceScope"]
            .as_array()
            .map_or(0, |a| a.len());
        let dests = seen.spec["destinations"].to_string();
        let complete = names == objects && always.iter().all(|c| dests.contains(c));
        if full {
            assert!(
                complete,
                "a version of Binding web dropped a selected entry: {seen:?}"
            );
        }
        full |= complete;
    }
    assert!(full, "Binding web was never complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_a_burst_then_restart() {
    let started = Instant::now();
    let (env, wds, its) = cluster::control_plane().await;
    let mut cms = setup(&wds, &its).await;
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
    let edge = ["cluster1", "cluster2"];
    await_binding_spec_within(&wds, "web", &spec(&cms, &edge), SETTLE)
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
    await_binding_spec_within(&wds, "web", &spec(&cms, &edge), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    eprintln!("[{:>6.1?}] restarted: Binding exact", started.elapsed());
    assert_never_dropped(&history, &edge, cms.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_its_down_for_30_seconds() {
    let started = Instant::now();
    let (mut env, wds, its) = cluster::control_plane().await;
    let mut cms = setup(&wds, &its).await;
    let history = BindingHistory::start(&wds).await.unwrap();
    let bindery = BinderyRun::start(
        &env.wds.kubeconfig,
        &env.its.kubeconfig,
        &env.dir().join("bindery.log"),
        &["--coalesce-ms", "50"],
    )
    .unwrap();
    let edge = ["cluster1", "cluster2"];
    await_binding_spec_within(&wds, "web", &spec(&cms, &edge), SETTLE)
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
    cluster::apply_wecs(&its, &[("cluster3", "edge")])
        .await
        .unwrap();
    let all = ["cluster1", "cluster2", "cluster3"];
    await_binding_spec_within(&wds, "web", &spec(&cms, &all), SETTLE)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    eprintln!("[{:>6.1?}] Binding exact", started.elapsed());
    assert_never_dropped(&history, &edge, cms.len());
}
