//! Status return's input, live: `bindery run --wds-name NAME --record LOG` watches the
//! ITS's WorkStatuses of that WDS (written as KubeStellar's OCM status add-on writes
//! them: in the WEC's namespace, labelled with the origin WDS, `status` through the
//! status subresource) and records them with `spec.sourceRef` and `status`; another
//! WDS's are not recorded; an ITS without the WorkStatus CRD holds no Binding back, and
//! the CRD's coming and going start and stop the watch; `--status-return=false` (or no
//! WDS name) records none. The recordings replay to the Bindings stored live.

use std::path::Path;

use bindery_tests::control_plane::{self, eventually};
use bindery_tests::objects::{deployment_ref, nginx_spec};
use bindery_tests::world::{SETTLE, World, fail, stop};
use bindery_tests::{assert_success, bindery_bin};
use serde_json::{Value, json};

const WORK_STATUS_CRD: &str = "workstatuses.control.kubestellar.io";
const ORIGIN: &str = "transport.kubestellar.io/originWdsName";

/// The `workstatuses` events of the recording at `path` so far (its complete lines).
fn work_status_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["resource"] == "workstatuses")
        .collect()
}

/// The objects recorded of WorkStatus `name` (its `ADDED` and `MODIFIED` events).
fn recorded(events: &[Value], name: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| {
            (e["type"] == "ADDED" || e["type"] == "MODIFIED")
                && e["object"]["metadata"]["name"] == name
        })
        .map(|e| e["object"].clone())
        .collect()
}

/// Waits until the recording at `path` holds WorkStatus `name` with `status`.
async fn await_recorded(
    bindery: &bindery_tests::bindery_run::BinderyRun,
    path: &Path,
    name: &str,
    status: &Value,
) {
    eventually(
        &format!("WorkStatus {name} recorded with its status"),
        SETTLE,
        || async {
            let events = work_status_events(path);
            let objects = recorded(&events, name);
            if objects.iter().any(|o| &o["status"] == status) {
                Ok(Some(()))
            } else {
                Err(format!("recorded: {objects:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| fail(bindery, &e.to_string()));
}

/// Checks a recorded WorkStatus: the trimmed metadata (its WEC's namespace, this WDS's
/// label), `spec` with only `sourceRef`, and `status`; nothing else.
fn check_recorded(object: &Value, wec: &str, source_ref: &Value, status: &Value) {
    let keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["apiVersion", "kind", "metadata", "spec", "status"],
        "{object}"
    );
    assert_eq!(object["apiVersion"], "control.kubestellar.io/v1alpha1");
    assert_eq!(object["kind"], "WorkStatus");
    assert_eq!(object["metadata"]["namespace"], wec);
    assert_eq!(object["metadata"]["labels"][ORIGIN], "wds1");
    for key in object["metadata"].as_object().unwrap().keys() {
        assert!(
            [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "labels",
                "managedFields"
            ]
            .contains(&key.as_str()),
            "metadata.{key} recorded: {object}"
        );
    }
    // Of the managedFields, only the time of the last status write.
    let managed = &object["metadata"]["managedFields"];
    if status.is_null() {
        assert!(managed.is_null(), "{object}");
    } else {
        let entries = managed.as_array().expect("the last status write");
        assert_eq!(entries.len(), 1, "{object}");
        assert!(entries[0]["time"].is_string(), "{object}");
        assert_eq!(entries[0]["fieldsV1"], json!({"f:status": {}}), "{object}");
    }
    assert_eq!(object["spec"], json!({"sourceRef": source_ref}));
    assert_eq!(&object["status"], status);
}

/// Replays the recording at `path` and checks it gives the Binding `nginx` stored live.
async fn replay_gives_the_live_binding(w: &World, path: &Path) {
    let out = std::process::Command::new(bindery_bin())
        .args(["replay", path.to_str().unwrap(), "--dump-bindings", "-"])
        .output()
        .unwrap();
    assert_success(&out, "replay of the recording");
    let replayed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, live_spec) = control_plane::binding(&w.wds, "nginx")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed["items"][0]["spec"], live_spec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_statuses_of_this_wds_are_recorded_with_source_ref_and_status() {
    let w = World::start().await;
    w.three_wecs().await;
    let (ns, dep, policy) = w.nginx().await;
    let nginx = deployment_ref("nginx", "nginx-deployment");
    let ready = json!({"replicas": 1, "readyReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True"}]});
    // Before Bindery starts: one of this WDS, one of another WDS.
    w.work_status("cluster1", "ws-c1", "wds1", nginx.clone(), ready.clone())
        .await;
    w.work_status("cluster1", "ws-other", "wds2", nginx.clone(), ready.clone())
        .await;

    let record = w.env.dir().join("recording.jsonl");
    let record_arg = record.to_str().unwrap();
    let mut bindery = w.bindery_with(
        "bindery.log",
        &[
            "--coalesce-ms",
            "100",
            "--record",
            record_arg,
            "--wds-name",
            "wds1",
        ],
    );
    let spec = nginx_spec(&ns, Some(&dep), &["cluster1", "cluster2"]);
    w.expect(&bindery, &policy, &spec, "the first publish")
        .await;

    // While it runs: a new one of this WDS (created, then its status written), a new one
    // of the other, and a status change of the first.
    let two = json!({"replicas": 2, "readyReplicas": 1});
    w.work_status("cluster2", "ws-c2", "wds1", nginx.clone(), two.clone())
        .await;
    w.work_status("cluster2", "ws-other-2", "wds2", nginx.clone(), two.clone())
        .await;
    let changed = json!({"replicas": 1, "readyReplicas": 0});
    w.work_status("cluster1", "ws-c1", "wds1", nginx.clone(), changed.clone())
        .await;
    await_recorded(&bindery, &record, "ws-c2", &two).await;
    await_recorded(&bindery, &record, "ws-c1", &changed).await;
    w.step("the WorkStatuses of wds1 are recorded");
    stop(&mut bindery);

    let events = work_status_events(&record);
    assert_eq!(events[0]["type"], "RESET", "{events:?}");
    assert!(events.iter().any(|e| e["type"] == "SYNCED"), "{events:?}");
    for event in &events {
        assert_eq!(event["space"], "its");
        assert_eq!(event["group"], "control.kubestellar.io");
        assert_eq!(event["version"], "v1alpha1");
    }
    let listed = recorded(&events, "ws-c1");
    check_recorded(&listed[0], "cluster1", &nginx, &ready);
    check_recorded(listed.last().unwrap(), "cluster1", &nginx, &changed);
    check_recorded(
        recorded(&events, "ws-c2").last().unwrap(),
        "cluster2",
        &nginx,
        &two,
    );
    // Created without a status first: recorded without one, then with it.
    assert_eq!(recorded(&events, "ws-c2")[0].get("status"), None);
    for other in ["ws-other", "ws-other-2"] {
        assert!(
            recorded(&events, other).is_empty(),
            "{other} of another WDS recorded: {events:?}"
        );
    }
    replay_gives_the_live_binding(&w, &record).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_crd_bindings_are_written_and_its_coming_and_going_is_followed() {
    let w = World::start().await;
    control_plane::delete_crd(&w.its, WORK_STATUS_CRD, SETTLE)
        .await
        .unwrap();
    w.three_wecs().await;
    let (ns, dep, policy) = w.nginx().await;
    let record = w.env.dir().join("recording.jsonl");
    let record_arg = record.to_str().unwrap();
    let mut bindery = w.bindery_with(
        "bindery.log",
        &[
            "--coalesce-ms",
            "100",
            "--record",
            record_arg,
            "--wds-name",
            "wds1",
            "--work-status-poll-ms",
            "200",
        ],
    );
    // No WorkStatus CRD: nothing waits for it.
    let spec = nginx_spec(&ns, Some(&dep), &["cluster1", "cluster2"]);
    w.expect(
        &bindery,
        &policy,
        &spec,
        "the first publish without the CRD",
    )
    .await;
    assert!(
        bindery.log_text().contains("status return waits for it"),
        "{}",
        bindery.log_text()
    );

    // The CRD comes: the watch starts; WorkStatuses created then are recorded.
    let crd = bindery_api::its_crds()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(WORK_STATUS_CRD))
        .unwrap();
    control_plane::install_crds(&w.its, &[crd]).await.unwrap();
    eventually("the watch starts", SETTLE, || async {
        let log = bindery.log_text();
        Ok(log
            .contains("the ITS serves WorkStatuses: watching them")
            .then_some(()))
    })
    .await
    .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    let nginx = deployment_ref("nginx", "nginx-deployment");
    let ready = json!({"replicas": 1, "readyReplicas": 1});
    w.work_status("cluster1", "ws-late", "wds1", nginx.clone(), ready.clone())
        .await;
    await_recorded(&bindery, &record, "ws-late", &ready).await;
    // Bindings go on meanwhile.
    w.wec("cluster3", "edge").await;
    let spec = nginx_spec(&ns, Some(&dep), &["cluster1", "cluster2", "cluster3"]);
    w.expect(&bindery, &policy, &spec, "cluster3 joins").await;

    // The CRD goes: the watch stops and what it held is cleared.
    control_plane::delete_crd(&w.its, WORK_STATUS_CRD, SETTLE)
        .await
        .unwrap();
    eventually("the watch stops", SETTLE, || async {
        let log = bindery.log_text();
        Ok(log
            .contains("the ITS no longer serves WorkStatuses")
            .then_some(()))
    })
    .await
    .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    w.wec("cluster3", "core").await;
    let spec = nginx_spec(&ns, Some(&dep), &["cluster1", "cluster2"]);
    w.expect(&bindery, &policy, &spec, "cluster3 leaves").await;
    stop(&mut bindery);

    let events = work_status_events(&record);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "RESET", "{types:?}");
    assert_eq!(types[types.len() - 2..], ["RESET", "SYNCED"], "{types:?}");
    let late = recorded(&events, "ws-late");
    check_recorded(late.last().unwrap(), "cluster1", &nginx, &ready);
    replay_gives_the_live_binding(&w, &record).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_return_off_or_without_a_wds_name_records_no_work_statuses() {
    let w = World::start().await;
    w.three_wecs().await;
    let (ns, dep, policy) = w.nginx().await;
    let nginx = deployment_ref("nginx", "nginx-deployment");
    w.work_status("cluster1", "ws-c1", "wds1", nginx, json!({"replicas": 1}))
        .await;
    let spec = nginx_spec(&ns, Some(&dep), &["cluster1", "cluster2"]);

    let cases: [(&str, &[&str], &str); 2] = [
        (
            "off",
            &["--status-return=false", "--wds-name", "wds1"],
            "status return is off",
        ),
        ("no-name", &[], "--wds-name"),
    ];
    for (case, args, said) in cases {
        let record = w.env.dir().join(format!("recording-{case}.jsonl"));
        let record_arg = record.to_str().unwrap().to_string();
        let mut all = vec!["--coalesce-ms", "100", "--record", &record_arg];
        all.extend_from_slice(args);
        let mut bindery = w.bindery_with(&format!("bindery-{case}.log"), &all);
        w.expect(&bindery, &policy, &spec, case).await;
        eventually("the first publish", SETTLE, || async {
            Ok(bindery
                .log_text()
                .contains("all watches synced")
                .then_some(()))
        })
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
        let log = bindery.log_text();
        assert!(
            log.contains("status return is off") && log.contains(said),
            "{case}: {log}"
        );
        stop(&mut bindery);
        let events = work_status_events(&record);
        assert!(events.is_empty(), "{case}: {events:?}");
        // The recording holds the rest as usual.
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(text.contains("\"managedclusters\""), "{case}");
    }
}
