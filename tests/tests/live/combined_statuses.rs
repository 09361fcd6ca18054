//! CombinedStatuses live. The sink's writer against a real WDS: created (with the
//! `kubestellar-report` namespace for a cluster-scoped object), left alone when already
//! so, restored after another writer's edit (its extra label removed, its annotation
//! kept), and deleted only when it carries KubeStellar's five labels. And `bindery run`
//! through KubeStellar's e2e CombinedStatus cases, with StatusCollectors watched, a
//! collector's errors written into its status, orphans deleted after a restart.

use std::time::Duration;

use bindery_sink::{BindingSink, DesiredCombined, SinkConfig, SinkEvent, SinkEvents};
use bindery_tests::control_plane::{self, eventually, res};
use bindery_tests::objects::status_collector;
use bindery_tests::world::{SETTLE, World, stop};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The CombinedStatus Bindery would write for ClusterRole `reader` (cluster-scoped, so
/// in `kubestellar-report`) and policy `p`, with `count` as its one result.
fn desired(count: &str) -> DesiredCombined {
    let object = json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": "CombinedStatus",
        "metadata": {
            "name": "u-reader.u-p",
            "namespace": "kubestellar-report",
            "labels": {
                "status.kubestellar.io/api-group": "rbac.authorization.k8s.io",
                "status.kubestellar.io/resource": "clusterroles",
                "status.kubestellar.io/namespace": "",
                "status.kubestellar.io/name": "reader",
                "status.kubestellar.io/binding-policy": "p",
            },
            "ownerReferences": [{"apiVersion": "rbac.authorization.k8s.io/v1",
                                 "kind": "ClusterRole", "name": "reader", "uid": "u-reader"}],
        },
        "results": [{"name": "count", "columnNames": ["wecs"],
                     "rows": [{"columns": [{"type": "Number", "float": count}]}]}],
    });
    DesiredCombined {
        namespace: "kubestellar-report".into(),
        name: "u-reader.u-p".into(),
        object: Some(object),
    }
}

fn absent(namespace: &str, name: &str) -> DesiredCombined {
    DesiredCombined {
        namespace: namespace.into(),
        name: name.into(),
        object: None,
    }
}

/// The next CombinedStatus drift told, within `SETTLE`.
async fn next_drift(events: &mut SinkEvents) -> String {
    let wait = async {
        loop {
            match events.recv().await {
                Some(SinkEvent::CombinedDrift(d)) => return format!("{}/{}", d.namespace, d.name),
                Some(_) => {}
                None => panic!("the sink stopped"),
            }
        }
    };
    tokio::time::timeout(SETTLE, wait)
        .await
        .expect("drift told")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn combined_statuses_are_created_restored_and_deleted_only_when_kubestellars() {
    let w = World::start().await;
    let config = SinkConfig {
        combined_statuses: true,
        ..SinkConfig::default()
    };
    let (sink, mut events, _task) = BindingSink::start(w.wds.clone(), config)
        .await
        .expect("the sink starts");
    eventually("the stored CombinedStatuses listed", SETTLE, || async {
        Ok(sink.combined_listed().then_some(()))
    })
    .await
    .unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(
        w.wds.clone(),
        "kubestellar-report",
        &res::combined_statuses(),
    );

    // Created, with the namespace KubeStellar's controller-manager would have made.
    sink.submit_combined(desired("1"));
    sink.flush().await;
    let stored = api.get("u-reader.u-p").await.expect("created");
    let value = serde_json::to_value(&stored).unwrap();
    assert_eq!(value["results"], desired("1").object.unwrap()["results"]);
    assert_eq!(
        value["metadata"]["ownerReferences"][0]["uid"], "u-reader",
        "owned by the object"
    );
    let rv = stored.metadata.resource_version.clone();

    // Already so: not written.
    sink.submit_combined(desired("1"));
    sink.flush().await;
    let again = api.get("u-reader.u-p").await.unwrap();
    assert_eq!(again.metadata.resource_version, rv, "nothing written");

    // Another writer adds a label and changes the results: drift, then restored; its
    // annotation stays.
    let params = PatchParams::default();
    let edit = json!({
        "metadata": {"labels": {"extra": "x"}, "annotations": {"note": "kept"}},
        "results": [{"name": "count", "columnNames": ["wecs"], "rows": []}],
    });
    api.patch("u-reader.u-p", &params, &Patch::Merge(&edit))
        .await
        .unwrap();
    assert_eq!(
        next_drift(&mut events).await,
        "kubestellar-report/u-reader.u-p"
    );
    sink.submit_combined(desired("1"));
    sink.flush().await;
    let restored = serde_json::to_value(api.get("u-reader.u-p").await.unwrap()).unwrap();
    assert_eq!(restored["results"], desired("1").object.unwrap()["results"]);
    assert_eq!(restored["metadata"]["labels"].get("extra"), None);
    assert_eq!(restored["metadata"]["annotations"]["note"], "kept");

    // A change of Bindery's own is written, and is not drift.
    sink.submit_combined(desired("2"));
    sink.flush().await;
    let changed = serde_json::to_value(api.get("u-reader.u-p").await.unwrap()).unwrap();
    assert_eq!(changed["results"], desired("2").object.unwrap()["results"]);

    // One with the policy label but not all five is someone else's: never deleted.
    let foreign: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": "CombinedStatus",
        "metadata": {"name": "foreign", "namespace": "kubestellar-report",
                     "labels": {"status.kubestellar.io/binding-policy": "p"}},
    }))
    .unwrap();
    api.create(&PostParams::default(), &foreign).await.unwrap();
    eventually("the foreign one seen", SETTLE, || async {
        let stored = sink.stored_combined();
        Ok(stored
            .contains(&("kubestellar-report/foreign".to_string(), false))
            .then_some(stored))
    })
    .await
    .unwrap();
    assert!(
        sink.stored_combined()
            .contains(&("kubestellar-report/u-reader.u-p".to_string(), true))
    );
    sink.submit_combined(absent("kubestellar-report", "foreign"));
    sink.submit_combined(absent("kubestellar-report", "u-reader.u-p"));
    sink.flush().await;
    assert!(
        api.get_opt("foreign").await.unwrap().is_some(),
        "left alone"
    );
    assert!(
        api.get_opt("u-reader.u-p").await.unwrap().is_none(),
        "Bindery's is deleted"
    );
    // Its deletion was Bindery's own: no drift told.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let drifts: Vec<Value> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| match e {
            SinkEvent::CombinedDrift(d) => Some(json!(d.name)),
            _ => None,
        })
        .collect();
    assert_eq!(drifts, Vec::<Value>::new());
}

/// A Deployment's status in a WEC with `available` of 1 replica available.
fn deployment_status(available: i64) -> Value {
    json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
           "readyReplicas": available, "availableReplicas": available})
}

/// `results` of the CombinedStatus `nginx/name`, by result name, once `check` holds.
async fn expect_results(
    w: &World,
    bindery: &bindery_tests::bindery_run::BinderyRun,
    name: &str,
    what: &str,
    check: impl Fn(&serde_json::Map<String, Value>) -> bool,
) -> serde_json::Map<String, Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(w.wds.clone(), "nginx", &res::combined_statuses());
    let found = eventually(what, SETTLE, || async {
        let Some(cs) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
            return Err("no CombinedStatus".into());
        };
        let results: serde_json::Map<String, Value> = cs.data["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["name"].as_str().unwrap_or("").to_string(), r.clone()))
            .collect();
        Ok(check(&results).then_some(results))
    })
    .await;
    match found {
        Ok(results) => {
            w.step(what);
            results
        }
        Err(e) => bindery_tests::world::fail(bindery, &format!("{what}: {e:#}")),
    }
}

/// The cells of a result's rows, as `[[value, ...], ...]` (a Number's `float`, a
/// String's `string`, an Object's `object`), sorted.
fn cells(result: &Value) -> Vec<Vec<Value>> {
    let mut rows: Vec<Vec<Value>> = result["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| match c["type"].as_str() {
                    Some("Number") => c["float"].clone(),
                    Some("String") => c["string"].clone(),
                    Some("Bool") => c["bool"].clone(),
                    Some("Object") => c["object"].clone(),
                    _ => Value::Null,
                })
                .collect()
        })
        .collect();
    rows.sort_by_key(|r| r.iter().map(Value::to_string).collect::<Vec<_>>());
    rows
}

/// KubeStellar's e2e CombinedStatus cases ("can list the full status from each WEC",
/// "can sum status.availableReplicas", "can list all the WECs where availableReplicas
/// equals replicas" (with `obj`), "can support multiple StatusCollectors", "can
/// aggregate over zero WECs") against `bindery run`, with the test playing the transport
/// and the status add-on; then what no e2e covers: a WEC's change followed, another
/// writer's deletion restored, a collector's error in its status, an orphan of a policy
/// gone deleted after a restart, and the policy's deletion taking its CombinedStatus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubestellars_combined_status_cases_live() {
    let w = World::start().await;
    w.three_wecs().await;
    w.namespace("nginx", json!({})).await;
    let dep = w
        .deployment("nginx", "nginx", json!({"app.kubernetes.io/name": "nginx"}))
        .await;
    let scs: Api<DynamicObject> = Api::all_with(w.wds.clone(), &res::status_collectors());
    for sc in [
        status_collector(
            "full-status",
            json!({"select": [{"name": "wecName", "def": "inventory.name"},
                              {"name": "status", "def": "returned.status"}]}),
        ),
        status_collector(
            "sum",
            json!({"combinedFields": [{"name": "sum", "type": "SUM",
                                       "subject": "returned.status.availableReplicas"}]}),
        ),
        status_collector(
            "zero",
            json!({"filter": "false",
                   "combinedFields": [{"name": "count", "type": "COUNT"},
                                      {"name": "max", "type": "MAX", "subject": "2"},
                                      {"name": "min", "type": "MIN", "subject": "2"},
                                      {"name": "sum", "type": "SUM", "subject": "2"},
                                      {"name": "avg", "type": "AVG", "subject": "2"}]}),
        ),
        status_collector(
            "replicas-ok",
            json!({"filter": "obj.spec.replicas == returned.status.availableReplicas",
                   "select": [{"name": "wecName", "def": "inventory.name"}]}),
        ),
        status_collector(
            "bad",
            json!({"select": [{"name": "wec", "def": "inventory.name"}],
                   "groupBy": [{"name": "g", "def": "1"}]}),
        ),
    ] {
        let sc: DynamicObject = serde_json::from_value(sc).unwrap();
        scs.create(&PostParams::default(), &sc).await.unwrap();
    }
    let policy = w
        .policy(
            "nginx-combinedstatus",
            json!([{"matchLabels": {"location-group": "edge"}}]),
            json!([{"objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}],
                    "statusCollectors": ["full-status", "sum", "zero", "bad", "replicas-ok"]}]),
        )
        .await;
    let name = format!(
        "{}.{}",
        dep.metadata.uid.clone().unwrap(),
        policy.metadata.uid.clone().unwrap()
    );
    for wec in ["cluster1", "cluster2"] {
        w.work_status(
            wec,
            "u-appsv1-deployment-nginx-nginx",
            "wds1",
            bindery_tests::objects::deployment_ref("nginx", "nginx"),
            deployment_status(1),
        )
        .await;
    }
    let record = w.env.dir().join("recording.jsonl");
    let record_arg = record.to_str().unwrap();
    let mut bindery = w.bindery_returning("bindery.log", &["--record", record_arg]);

    let results = expect_results(&w, &bindery, &name, "the CombinedStatus", |r| {
        r.len() == 4 && r.get("sum").is_some_and(|s| cells(s) == [[json!("2")]])
    })
    .await;
    let names: Vec<&String> = results.keys().collect();
    assert_eq!(
        names,
        ["full-status", "replicas-ok", "sum", "zero"],
        "the invalid one is left out"
    );
    // "can list all the WECs where availableReplicas equals replicas": `obj` is the
    // Deployment's content, fetched from the WDS.
    assert_eq!(
        cells(&results["replicas-ok"]),
        [[json!("cluster1")], [json!("cluster2")]]
    );
    let full = &results["full-status"];
    assert_eq!(full["columnNames"], json!(["wecName", "status"]));
    let rows = cells(full);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], "cluster1");
    assert_eq!(rows[1][0], "cluster2");
    assert_eq!(
        rows[0][1]["availableReplicas"], 1,
        "the WEC's status as an Object"
    );
    let zero = &results["zero"];
    assert_eq!(
        zero["columnNames"],
        json!(["count", "max", "min", "sum", "avg"])
    );
    assert_eq!(
        cells(zero),
        [[
            json!("0"),
            json!("-Inf"),
            json!("+Inf"),
            json!("0"),
            json!("NaN")
        ]]
    );

    // The invalid collector's errors are in its status.
    eventually("the invalid collector's status", SETTLE, || async {
        let bad = scs.get("bad").await.map_err(|e| e.to_string())?;
        let status = &bad.data["status"];
        Ok((status["errors"].as_array().is_some_and(|e| !e.is_empty())
            && status["observedGeneration"] == 1)
            .then_some(()))
    })
    .await
    .unwrap_or_else(|e| bindery_tests::world::fail(&bindery, &format!("{e:#}")));

    // cluster2 reports 0 available: the sum follows.
    w.work_status(
        "cluster2",
        "u-appsv1-deployment-nginx-nginx",
        "wds1",
        bindery_tests::objects::deployment_ref("nginx", "nginx"),
        deployment_status(0),
    )
    .await;
    expect_results(&w, &bindery, &name, "a WEC's change is followed", |r| {
        r.get("sum").is_some_and(|s| cells(s) == [[json!("1")]])
            && r.get("replicas-ok")
                .is_some_and(|s| cells(s) == [[json!("cluster1")]])
    })
    .await;
    // The Deployment's own change (spec.replicas 0) is read again: only cluster2, with
    // 0 available, now has all its replicas available.
    let deployments: Api<DynamicObject> =
        Api::namespaced_with(w.wds.clone(), "nginx", &res::deployments());
    deployments
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    expect_results(&w, &bindery, &name, "the object's change is read", |r| {
        r.get("replicas-ok")
            .is_some_and(|s| cells(s) == [[json!("cluster2")]])
    })
    .await;

    // Deleted by someone: restored.
    let api: Api<DynamicObject> =
        Api::namespaced_with(w.wds.clone(), "nginx", &res::combined_statuses());
    api.delete(&name, &Default::default()).await.unwrap();
    expect_results(
        &w,
        &bindery,
        &name,
        "a deleted CombinedStatus is restored",
        |r| r.len() == 4,
    )
    .await;
    // Another writer empties its results and adds a label: restored, label removed.
    let edit = json!({"metadata": {"labels": {"extra": "x"}}, "results": []});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    expect_results(
        &w,
        &bindery,
        &name,
        "another writer's edit is undone",
        |r| r.len() == 4,
    )
    .await;
    let labels = api.get(&name).await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels.get("extra"), None, "{labels:?}");
    stop(&mut bindery);

    // The recording (the collectors, the WorkStatuses, the Deployment's fetched content)
    // replays to the CombinedStatus as it is stored, results and all.
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        text.contains("\"binderyobjectcontents\""),
        "no content recorded"
    );
    let replayed = bindery_tests::replayed_statuses(&record);
    let stored = serde_json::to_value(api.get(&name).await.unwrap()).unwrap();
    let replayed = replayed["combinedStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metadata"]["name"] == name.as_str())
        .expect("the CombinedStatus replayed")
        .clone();
    assert_eq!(replayed["results"], stored["results"]);
    assert_eq!(replayed["metadata"]["labels"], stored["metadata"]["labels"]);
    assert_eq!(
        replayed["metadata"]["ownerReferences"],
        stored["metadata"]["ownerReferences"]
    );

    // While Bindery is down: an orphan of a policy gone appears, `zero` is deleted.
    let orphan = desired_orphan();
    api.create(&PostParams::default(), &orphan).await.unwrap();
    scs.delete("zero", &Default::default()).await.unwrap();
    let mut again = w.bindery_returning("bindery-2.log", &[]);
    expect_results(
        &w,
        &again,
        &name,
        "after a restart, without the deleted collector",
        |r| r.len() == 3 && !r.contains_key("zero"),
    )
    .await;
    expect_gone(&api, &again, "orphan.gone", "the orphan deleted").await;

    // The policy goes: so does its CombinedStatus.
    control_plane::delete(
        &w.wds,
        &res::binding_policies(),
        None,
        "nginx-combinedstatus",
    )
    .await
    .unwrap();
    expect_gone(
        &api,
        &again,
        &name,
        "the CombinedStatus deleted with its policy",
    )
    .await;
    stop(&mut again);
}

/// Waits until CombinedStatus `name` of `api` is gone.
async fn expect_gone(
    api: &Api<DynamicObject>,
    bindery: &bindery_tests::bindery_run::BinderyRun,
    name: &str,
    what: &str,
) {
    eventually(what, SETTLE, || async {
        let found = api.get_opt(name).await.map_err(|e| e.to_string())?;
        Ok(found.is_none().then_some(()))
    })
    .await
    .unwrap_or_else(|e| bindery_tests::world::fail(bindery, &format!("{e:#}")));
}

/// A CombinedStatus with KubeStellar's five labels for a policy that does not exist.
fn desired_orphan() -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": "CombinedStatus",
        "metadata": {"name": "orphan.gone", "namespace": "nginx", "labels": {
            "status.kubestellar.io/api-group": "apps",
            "status.kubestellar.io/resource": "deployments",
            "status.kubestellar.io/namespace": "nginx",
            "status.kubestellar.io/name": "nginx",
            "status.kubestellar.io/binding-policy": "gone",
        }},
    }))
    .unwrap()
}
