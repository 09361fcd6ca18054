//! `bindery run` against real kube-apiservers (envtest): the seed's nginx example and live
//! changes give exactly the expected Bindings and statuses, on one timely worker, on two,
//! and on two processes (`/metrics` says how many workers), and the recording replays on
//! one worker to the Bindings stored live.

use std::time::Duration;

use bindery_tests::control_plane::{self, res};
use bindery_tests::metrics::value as series;
use bindery_tests::objects::nginx_spec;
use bindery_tests::world::World;
use bindery_tests::{assert_success, free_listen_address, free_port, http_get};
use serde_json::{Value, json};

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
    let w = World::start().await;
    let hosts = w.env.dir().join("hosts");
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
    let process_1_log = w.env.dir().join("process-1.log");
    let mut peer = (processes == 2).then(|| {
        std::process::Command::new(bindery_tests::bindery_bin())
            .arg("run")
            .args(cluster_args(1))
            .args(["--workers", &workers.to_string()])
            .stderr(std::fs::File::create(&process_1_log).unwrap())
            .spawn()
            .unwrap()
    });
    w.three_wecs().await;
    let (ns, dep, policy) = w.nginx().await;
    w.configmap(
        "nginx",
        "nginx-config",
        json!({"app.kubernetes.io/name": "nginx"}),
    )
    .await;

    let record = w.env.dir().join("recording.jsonl");
    let (listen, base) = free_listen_address();
    let workers_arg = workers.to_string();
    let mut args = vec![
        "--workers",
        &workers_arg,
        "--listen",
        &listen,
        "--record",
        record.to_str().unwrap(),
        "--coalesce-ms",
        "100",
    ];
    let cluster_args_0 = cluster_args(0);
    args.extend(cluster_args_0.iter().map(String::as_str));
    let mut bindery = w.bindery_with("bindery.log", &args);

    // The seed's example.
    let clusters = ["cluster1", "cluster2"];
    let spec = nginx_spec(&ns, Some(&dep), &clusters);
    w.expect(&bindery, &policy, &spec, "the seed's example")
        .await;

    // The engine runs on that many workers.
    let (code, metrics) = http_get(&format!("{base}/metrics")).unwrap();
    assert_eq!(code, 200, "{metrics}");
    assert_eq!(
        series(&metrics, "bindery_engine_workers"),
        (workers * processes) as f64,
        "{metrics}"
    );
    // The engine thread's first line names its workers (over every process).
    let all = workers * processes;
    assert!(
        bindery
            .log_text()
            .contains(&format!("engine started workers={all}")),
        "{}",
        bindery.log_text()
    );

    // A new resourceVersion of the Deployment and a WEC joining the group.
    let dep = w
        .deployment(
            "nginx",
            "nginx-deployment",
            json!({"app.kubernetes.io/name": "nginx", "touched": "1"}),
        )
        .await;
    w.wec("cluster3", "edge").await;
    let clusters = ["cluster1", "cluster2", "cluster3"];
    let spec = nginx_spec(&ns, Some(&dep), &clusters);
    w.expect(&bindery, &policy, &spec, "a new Deployment, cluster3 joins")
        .await;

    // The policy's status reflects its generation, without errors.
    let (_, status) = w.settled_status(&bindery, "nginx", |_| Ok(())).await;
    assert!(
        status["errors"].as_array().is_none_or(|e| e.is_empty()),
        "{status}"
    );

    // The Deployment deleted, a WEC leaving the group.
    w.delete(&res::deployments(), Some("nginx"), "nginx-deployment")
        .await;
    w.wec("cluster1", "core").await;
    let spec = nginx_spec(&ns, None, &["cluster2", "cluster3"]);
    w.expect(
        &bindery,
        &policy,
        &spec,
        "the Deployment gone, cluster1 left",
    )
    .await;

    // Clean shutdown, then the recording replays on one worker to the Binding stored.
    assert!(
        bindery.stop().unwrap(),
        "bindery exits 0 on SIGTERM\n{}",
        bindery.log_text()
    );
    if let Some(peer) = &mut peer {
        // Process 0 closed the dataflow: process 1 ends by itself, cleanly.
        let log = || std::fs::read_to_string(&process_1_log).unwrap();
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
    assert_success(&out, "replay of the recording");
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (live_owners, live_spec) = control_plane::binding(&w.wds, "nginx")
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
