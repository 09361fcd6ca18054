//! The sink's CombinedStatus writer against a real WDS: created (with the
//! `kubestellar-report` namespace for a cluster-scoped object), left alone when already
//! so, restored after another writer's edit (its extra label removed, its annotation
//! kept), and deleted only when it carries KubeStellar's five labels.

use std::time::Duration;

use bindery_sink::{BindingSink, DesiredCombined, SinkConfig, SinkEvent, SinkEvents};
use bindery_tests::control_plane::{eventually, resource};
use bindery_tests::world::{SETTLE, World};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn combined_statuses() -> kube::core::ApiResource {
    resource(
        "control.kubestellar.io/v1alpha1",
        "CombinedStatus",
        "combinedstatuses",
    )
}

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
    let api: Api<DynamicObject> =
        Api::namespaced_with(w.wds.clone(), "kubestellar-report", &combined_statuses());

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
