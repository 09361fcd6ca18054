//! `bindery run` against real kube-apiservers (envtest): the seed's nginx example and live
//! changes give exactly the expected Bindings and statuses, on one timely worker and on
//! two, and on two processes (`/metrics` says how many workers), and the recording replays on one worker to the
//! Bindings stored live.

use std::time::Duration;

use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::control_plane::{self, apply, await_binding_spec, res, rv};
use bindery_tests::metrics::value as series;
use bindery_tests::objects::{deployment, managed_cluster};
use bindery_tests::{free_port, http_get};
use serde_json::{Value, json};

fn nginx_policy() -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
           "metadata": {"name": "nginx"},
           "spec": {"clusterSelectors": [{"matchLabels": {"location-group": "edge"}}],
                    "downsync": [
                        {"objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}], "resources": ["namespaces"]},
                        {"createOnly": true, "objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}], "resources": ["deployments"]}]}})
}

/// The nginx Binding's spec: the namespace, the Deployment if it exists, the clusters.
fn nginx_spec(ns_rv: &str, dep_rv: Option<&str>, clusters: &[&str]) -> Value {
    let mut spec = json!({"workload": {
        "clusterScope": [{"group": "", "version": "v1", "resource": "namespaces", "name": "nginx", "resourceVersion": ns_rv}]}});
    if let Some(dep_rv) = dep_rv {
        spec["workload"]["namespaceScope"] = json!([{"group": "apps", "version": "v1", "resource": "deployments", "namespace": "nginx",
                            "name": "nginx-deployment", "resourceVersion": dep_rv, "createOnly": true}]);
    }
    if !clusters.is_empty() {
        spec["destinations"] = clusters.iter().map(|c| json!({"clusterId": c})).collect();
    }
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_example_live_then_changes_then_replay_of_the_recording() {
    nginx_scenario(1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_two_workers() {
    nginx_scenario(2, 1).await;
}

/// Timely's cluster mode: the same scenario with a second `bindery run` process serving
/// the dataflow (`--processes 2`, 2 workers each, on loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_two_processes() {
    nginx_scenario(2, 2).await;
}

/// The scenario, with the engine on `workers` timely workers in each of `processes`
/// (1 or 2) processes.
async fn nginx_scenario(workers: usize, processes: usize) {
    let (env, wds, its) = control_plane::start().await;
    let hosts = env.dir().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    let cluster_args = |index: usize| -> Vec<String> {
        if processes == 1 {
            return vec![];
        }
        ["--processes", "2", "--process-index", &index.to_string()]
            .into_iter()
            .map(String::from)
            .chain(["--hosts".into(), hosts.display().to_string()])
            .collect()
    };
    // Process 1 needs no API server: it only serves process 0's dataflow.
    let mut peer = (processes == 2).then(|| {
        std::process::Command::new(bindery_tests::bindery_bin())
            .arg("run")
            .args(cluster_args(1))
            .args(["--workers", &workers.to_string()])
            .stderr(std::fs::File::create(env.dir().join("process-1.log")).unwrap())
            .spawn()
            .unwrap()
    });
    control_plane::apply_wecs(&its, control_plane::THREE_WECS)
        .await
        .unwrap();
    let ns = apply(
        &wds,
        &res::namespaces(),
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "nginx", "labels": {"app.kubernetes.io/name": "nginx"}}}),
    )
    .await
    .unwrap();
    let dep = apply(
        &wds,
        &res::deployments(),
        deployment(
            "nginx",
            "nginx-deployment",
            json!({"app.kubernetes.io/name": "nginx"}),
        ),
    )
    .await
    .unwrap();
    apply(&wds, &res::configmaps(), json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "nginx-config", "namespace": "nginx", "labels": {"app.kubernetes.io/name": "nginx"}}})).await.unwrap();
    let policy = apply(&wds, &res::binding_policies(), nginx_policy())
        .await
        .unwrap();

    let record = env.dir().join("recording.jsonl");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut bindery = BinderyRun::start(
        &env.wds.kubeconfig,
        &env.its.kubeconfig,
        &env.dir().join("bindery.log"),
        &[
            "--workers",
            &workers.to_string(),
            "--listen",
            &listen,
            "--record",
            record.to_str().unwrap(),
            "--coalesce-ms",
            "100",
        ]
        .into_iter()
        .map(String::from)
        .chain(cluster_args(0))
        .collect::<Vec<_>>()
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    )
    .unwrap();
    let fail = |e: anyhow::Error, bindery: &BinderyRun| -> ! {
        panic!("{e}\n--- bindery log ---\n{}", bindery.log_text())
    };

    // The seed's example.
    let binding = await_binding_spec(
        &wds,
        "nginx",
        &nginx_spec(&rv(&ns), Some(&rv(&dep)), &["cluster1", "cluster2"]),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| fail(e, &bindery));
    assert_eq!(
        binding["metadata"]["ownerReferences"],
        json!([{"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy", "name": "nginx",
                "uid": policy.metadata.uid.clone().unwrap(), "controller": true, "blockOwnerDeletion": false}])
    );

    // The engine runs on that many workers.
    let (code, metrics) = http_get(&format!("http://{listen}/metrics")).unwrap();
    assert_eq!(code, 200, "{metrics}");
    assert_eq!(
        series(&metrics, "bindery_engine_workers"),
        (workers * processes) as f64,
        "{metrics}"
    );
    let all = workers * processes;
    let plural = if all == 1 { "" } else { "s" };
    assert!(
        bindery
            .log_text()
            .contains(&format!("engine: {all} timely worker{plural}")),
        "{}",
        bindery.log_text()
    );

    // A new resourceVersion of the Deployment and a WEC joining the group.
    let dep = apply(
        &wds,
        &res::deployments(),
        deployment(
            "nginx",
            "nginx-deployment",
            json!({"app.kubernetes.io/name": "nginx", "touched": "1"}),
        ),
    )
    .await
    .unwrap();
    apply(
        &its,
        &res::managed_clusters(),
        managed_cluster("cluster3", "edge"),
    )
    .await
    .unwrap();
    await_binding_spec(
        &wds,
        "nginx",
        &nginx_spec(
            &rv(&ns),
            Some(&rv(&dep)),
            &["cluster1", "cluster2", "cluster3"],
        ),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| fail(e, &bindery));

    // The policy's status reflects its generation, without errors.
    let status = control_plane::eventually(
        "policy status observedGeneration",
        Duration::from_secs(20),
        || async {
            let p = control_plane::get(&wds, &res::binding_policies(), None, "nginx")
                .await
                .map_err(|e| e.to_string())?;
            let p = serde_json::to_value(p.unwrap()).unwrap();
            if p["status"]["observedGeneration"] == p["metadata"]["generation"] {
                Ok(Some(p["status"].clone()))
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    )
    .await
    .unwrap();
    assert!(
        status["errors"].as_array().is_none_or(|e| e.is_empty()),
        "{status}"
    );

    // The Deployment deleted, a WEC leaving the group.
    control_plane::delete(&wds, &res::deployments(), Some("nginx"), "nginx-deployment")
        .await
        .unwrap();
    apply(
        &its,
        &res::managed_clusters(),
        managed_cluster("cluster1", "core"),
    )
    .await
    .unwrap();
    await_binding_spec(
        &wds,
        "nginx",
        &nginx_spec(&rv(&ns), None, &["cluster2", "cluster3"]),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| fail(e, &bindery));

    // Clean shutdown, then the recording replays on one worker to the Binding stored.
    assert!(
        bindery.stop().unwrap(),
        "bindery exits 0 on SIGTERM\n{}",
        bindery.log_text()
    );
    if let Some(peer) = &mut peer {
        // Process 0 closed the dataflow: process 1 ends by itself, cleanly.
        let log = || std::fs::read_to_string(env.dir().join("process-1.log")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = peer.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process 1 still runs\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "process 1: {status}\n{}", log());
        assert!(log().contains("process 0 closed the dataflow"), "{}", log());
    }
    let out = std::process::Command::new(bindery_tests::bindery_bin())
        .args(["replay", record.to_str().unwrap(), "--workers", "1"])
        .args(["--dump-bindings", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (live_owners, live_spec) = control_plane::binding(&wds, "nginx")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed["items"].as_array().unwrap().len(), 1);
    assert_eq!(replayed["items"][0]["spec"], live_spec);
    assert_eq!(
        replayed["items"][0]["metadata"]["ownerReferences"],
        live_owners
    );
}
