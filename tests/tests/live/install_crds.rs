//! `bindery run --install-crds`: on a WDS as KubeStellar's controller-manager left it (its
//! own five CRDs, objects of each kind stored), Bindery applies its CRDs over them and
//! every stored object keeps every field (nothing pruned), a CombinedStatus round-trips,
//! and Bindings follow; on a bare WDS it creates the five and works on them.

use std::time::Duration;

use bindery_tests::control_plane::{create_yaml, eventually, res, resource};
use bindery_tests::objects::{edge, entry, labelled, spec};
use bindery_tests::workspace_root;
use bindery_tests::world::{SETTLE, World, stop};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde_json::{Value, json};

/// The five CRDs' names.
fn names() -> Vec<String> {
    bindery_api::crds()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect()
}

/// Waits until every one of the five is established and managed by `manager`.
async fn crds_established_by(wds: &kube::Client, manager: &str) {
    let api: Api<CustomResourceDefinition> = Api::all(wds.clone());
    for name in names() {
        eventually(
            &format!("CRD {name} applied by {manager}"),
            SETTLE,
            || async {
                let Some(crd) = api.get_opt(&name).await.map_err(|e| e.to_string())? else {
                    return Ok(None);
                };
                let managed = crd
                    .metadata
                    .managed_fields
                    .unwrap_or_default()
                    .iter()
                    .any(|m| m.manager.as_deref() == Some(manager));
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok((managed && established).then_some(()))
            },
        )
        .await
        .unwrap();
    }
}

const STATUS_COLLECTOR: &str = r#"
apiVersion: control.kubestellar.io/v1alpha1
kind: StatusCollector
metadata:
  name: every-field
spec:
  filter: "returned.status.availableReplicas > 0"
  groupBy:
  - {name: phase, def: "returned.status.phase"}
  combinedFields:
  - {name: count, type: COUNT}
  - {name: sum, type: SUM, subject: "returned.status.availableReplicas"}
  limit: 20
"#;

const CUSTOM_TRANSFORM: &str = r#"
apiVersion: control.kubestellar.io/v1alpha1
kind: CustomTransform
metadata:
  name: no-rv
spec:
  apiGroup: apps
  resource: deployments
  remove: ["$.spec.template.metadata.annotations"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_crds_takes_over_kubestellars_and_keeps_every_stored_field() {
    let w = World::start_without_wds_crds().await;
    // KubeStellar's own CRDs, as its controller-manager creates them.
    let theirs =
        std::fs::read_to_string(workspace_root().join("tests/data/kubestellar/crds.yaml")).unwrap();
    create_yaml(&w.wds, &theirs).await.unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(w.wds.clone());
    for name in names() {
        eventually(&format!("KubeStellar's CRD {name}"), SETTLE, || async {
            let crd = api.get_opt(&name).await.map_err(|e| e.to_string())?;
            let established = crd
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            Ok(established.then_some(()))
        })
        .await
        .unwrap();
    }
    // An object of each new kind, every field set, stored under KubeStellar's CRDs.
    let collector = &create_yaml(&w.wds, STATUS_COLLECTOR).await.unwrap()[0];
    let transform = &create_yaml(&w.wds, CUSTOM_TRANSFORM).await.unwrap()[0];
    w.wec("c1", "edge").await;
    let cm = w
        .configmap("default", "settings", json!({"app": "web"}))
        .await;
    let mut clause = labelled(&["configmaps"], json!({"app": "web"}));
    clause["statusCollectors"] = json!(["every-field"]);
    w.policy("web", edge(), json!([clause])).await;

    let mut bindery = w.bindery_with("bindery.log", &["--install-crds", "--coalesce-ms", "100"]);
    crds_established_by(&w.wds, "bindery").await;
    let mut want = spec(vec![entry(&res::configmaps(), &cm)], &["c1"]);
    want["workload"]["namespaceScope"][0]["statusCollectors"] = json!(["every-field"]);
    w.expect_spec(&bindery, "web", &want, "Binding web", SETTLE)
        .await;

    // Nothing stored lost a field to the new schemas.
    let get = |ar, name: &str| {
        let (wds, name) = (w.wds.clone(), name.to_string());
        async move {
            bindery_tests::control_plane::get(&wds, &ar, None, &name)
                .await
                .unwrap()
                .unwrap()
                .data
        }
    };
    let sc_res = resource(
        "control.kubestellar.io/v1alpha1",
        "StatusCollector",
        "statuscollectors",
    );
    let ct_res = resource(
        "control.kubestellar.io/v1alpha1",
        "CustomTransform",
        "customtransforms",
    );
    assert_eq!(get(sc_res, "every-field").await["spec"], collector["spec"]);
    assert_eq!(get(ct_res, "no-rv").await["spec"], transform["spec"]);

    // A CombinedStatus with a value of every type round-trips through the new schema.
    let cs = r#"
apiVersion: control.kubestellar.io/v1alpha1
kind: CombinedStatus
metadata:
  name: u1.u2
  namespace: default
  labels:
    status.kubestellar.io/api-group: ""
    status.kubestellar.io/resource: configmaps
    status.kubestellar.io/namespace: default
    status.kubestellar.io/name: settings
    status.kubestellar.io/binding-policy: web
results:
- name: every-field
  columnNames: [a, b, c, d, e]
  rows:
  - columns:
    - {type: String, string: x}
    - {type: Number, float: "2.5"}
    - {type: Bool, bool: true}
    - {type: "Null"}
    - {type: Object, object: {k: [1, 2]}}
  rowErrors:
  - {wec: {clusterId: c1}, columnName: "", error: "no such key"}
  aggregationErrors:
  - {columnName: b, error: "no values to average"}
"#;
    let created: Value = create_yaml(&w.wds, cs).await.unwrap().remove(0);
    let written: Value = serde_yaml_ng::from_str(cs).unwrap();
    assert_eq!(created["results"], json!(written["results"]));
    let typed: bindery_api::CombinedStatus = serde_json::from_value(created.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(&typed.results).unwrap(),
        created["results"]
    );
    stop(&mut bindery);

    // A restart applies the same CRDs again: nothing changes, Bindery goes on.
    let generations = |crds: Vec<CustomResourceDefinition>| -> Vec<Option<i64>> {
        crds.into_iter().map(|c| c.metadata.generation).collect()
    };
    let before = futures::future::join_all(names().iter().map(|n| api.get(n))).await;
    let before = generations(before.into_iter().map(Result::unwrap).collect());
    let mut again = w.bindery_with("bindery-2.log", &["--install-crds"]);
    // The Binding is already right, so wait for the second run's own apply: without it
    // the comparison below proves nothing (and a SIGTERM before the run installs its
    // signal handlers kills it).
    eventually("the second run applied the CRDs", SETTLE, || async {
        Ok(again
            .log_text()
            .contains("KubeStellar's CRDs installed and established")
            .then_some(()))
    })
    .await
    .unwrap();
    w.expect_spec(&again, "web", &want, "Binding web after a restart", SETTLE)
        .await;
    let after = futures::future::join_all(names().iter().map(|n| api.get(n))).await;
    let after = generations(after.into_iter().map(Result::unwrap).collect());
    assert_eq!(
        after, before,
        "a second apply of the same CRDs changes nothing"
    );
    stop(&mut again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_crds_on_a_bare_wds_creates_the_five() {
    let w = World::start_without_wds_crds().await;
    let mut bindery = w.bindery_with("bindery.log", &["--install-crds=true"]);
    crds_established_by(&w.wds, "bindery").await;
    w.wec("c1", "edge").await;
    let cm = w
        .configmap("default", "settings", json!({"app": "web"}))
        .await;
    w.policy(
        "web",
        edge(),
        json!([labelled(&["configmaps"], json!({"app": "web"}))]),
    )
    .await;
    let want = spec(vec![entry(&res::configmaps(), &cm)], &["c1"]);
    w.expect_spec(
        &bindery,
        "web",
        &want,
        "Binding web",
        Duration::from_secs(90),
    )
    .await;
    assert!(
        bindery
            .log_text()
            .contains("KubeStellar's CRDs installed and established"),
        "{}",
        bindery.log_tail(20)
    );
    stop(&mut bindery);
}
