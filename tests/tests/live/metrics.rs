//! `bindery run`'s server against real kube-apiservers (envtest): `/metrics` counts the
//! watch events, Binding changes and sink writes of a live run, `/dashboard/snapshot`
//! agrees, and `GET /explain` explains on the engine's current state.

use std::time::Duration;

use bindery_tests::control_plane::{eventually, res};
use bindery_tests::metrics::value as series;
use bindery_tests::objects::{edge, entry, labelled, spec};
use bindery_tests::world::{SETTLE, World};
use bindery_tests::{free_listen_address, http_get};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_snapshot_and_explain_of_a_live_run() {
    let w = World::start().await;
    for (name, group) in [("c1", "edge"), ("c2", "edge"), ("c3", "core")] {
        w.wec(name, group).await;
    }
    w.namespace("web", json!({"app": "web"})).await;
    let dep = w.deployment("web", "front", json!({"app": "web"})).await;
    let web = labelled(&["deployments"], json!({"app": "web"}));
    w.policy("web", edge(), json!([web])).await;

    let (listen, base) = free_listen_address();
    let mut bindery = w.bindery_with(
        "bindery.log",
        &[
            "--listen",
            &listen,
            "--per-policy-metrics",
            "--coalesce-ms",
            "100",
        ],
    );
    let to_c1_c2 = spec(vec![entry(&res::deployments(), &dep)], &["c1", "c2"]);
    w.expect_spec(&bindery, "web", &to_c1_c2, "Binding web", SETTLE)
        .await;

    // The write reached the server: the sink's observer counted it, with its latency.
    let metrics: String = eventually(
        "the Binding write in /metrics",
        Duration::from_secs(30),
        || async {
            let (code, body) = http_get(&format!("{base}/metrics")).map_err(|e| e.to_string())?;
            if code != 200 {
                return Err(format!("GET /metrics: {code}"));
            }
            let applied = r#"bindery_sink_writes_total{object="binding",result="applied"}"#;
            Ok((series(&body, applied) >= 1.0).then_some(body))
        },
    )
    .await
    .unwrap();
    let get = |s: &str| series(&metrics, s);
    assert!(get(r#"bindery_policy_binding_writes_total{policy="web"}"#) >= 1.0);
    assert!(get("bindery_event_to_binding_seconds_count") >= 1.0);
    assert!(get("bindery_sink_write_duration_seconds_count") >= 1.0);
    assert_eq!(get("bindery_wecs"), 3.0);
    assert_eq!(get("bindery_policies"), 1.0);
    assert_eq!(get("bindery_binding_destinations"), 2.0);
    assert_eq!(get("bindery_binding_workload_entries"), 1.0);
    assert_eq!(
        get(
            r#"bindery_watch_events_total{space="its",resource="managedclusters.cluster.open-cluster-management.io",type="ADDED"}"#
        ),
        3.0
    );
    assert_eq!(
        get(r#"bindery_binding_entry_changes_total{entry="destination",change="added"}"#),
        2.0
    );
    assert!(get("bindery_process_resident_memory_bytes") > 1e6);
    assert!(get("bindery_engine_epochs_total") >= 1.0);
    // Without --leader-elect this process always writes: it started leading once.
    assert_eq!(get("bindery_leader"), 1.0);
    assert_eq!(get("bindery_leader_transitions_total"), 1.0);

    // The dashboard samples once a second.
    let snapshot: Value = eventually(
        "the write in the dashboard",
        Duration::from_secs(10),
        || async {
            let (_, body) =
                http_get(&format!("{base}/dashboard/snapshot")).map_err(|e| e.to_string())?;
            let snapshot: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            Ok((snapshot["totals"]["sink_writes"].as_u64() >= Some(1)).then_some(snapshot))
        },
    )
    .await
    .unwrap();
    assert_eq!(snapshot["mode"], "run");
    assert_eq!(snapshot["sizes"]["wecs"], 3);
    assert_eq!(snapshot["sizes"]["destinations"], 2);
    let (code, page) = http_get(&format!("{base}/dashboard")).unwrap();
    assert_eq!(code, 200);
    assert!(
        page.contains("/dashboard/dashboard.js"),
        "the page loads its script"
    );

    // Explain on the live engine's state.
    let url = format!(
        "{base}/explain?policy=web&object=apps/deployments/web/front&cluster=c3&output=json"
    );
    let (code, body) = http_get(&url).unwrap();
    assert_eq!(code, 200, "{body}");
    let explanation: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(explanation["object"]["selected"], true, "{body}");
    assert_eq!(explanation["cluster"]["destination"], false, "{body}");
    assert_eq!(
        explanation["cluster"]["labels"]["location-group"], "core",
        "{body}"
    );
    let (code, text) = http_get(&format!("{base}/explain?policy=web&cluster=c1")).unwrap();
    assert_eq!(code, 200);
    assert!(text.contains("web"), "{text}");
    let (code, body) = http_get(&format!("{base}/explain?policy=nope")).unwrap();
    assert_eq!(code, 404);
    assert!(body.contains("\"nope\""), "{body}");
    let (code, _) = http_get(&format!("{base}/explain")).unwrap();
    assert_eq!(code, 400);
    let (code, body) = http_get(&format!("{base}/explain?policy=web&object=deployments")).unwrap();
    assert_eq!(code, 400, "{body}");

    // A change: the deployment leaves the policy; explain and metrics follow.
    w.deployment("web", "front", json!({"app": "other"})).await;
    let empty = spec(vec![], &["c1", "c2"]);
    w.expect_spec(&bindery, "web", &empty, "front relabelled out", SETTLE)
        .await;
    let (_, body) = http_get(&url).unwrap();
    let explanation: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(explanation["object"]["selected"], false, "{body}");
    let (_, metrics) = http_get(&format!("{base}/metrics")).unwrap();
    assert_eq!(
        series(
            &metrics,
            r#"bindery_binding_entry_changes_total{entry="workload",change="removed"}"#
        ),
        1.0
    );
    assert!(bindery.stop().unwrap(), "clean exit on SIGTERM");
}
