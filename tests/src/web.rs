//! The `web` scenario that the fault and leader-election tests share: three WECs (two
//! labelled `location-group: edge`), namespace `app` with ConfigMaps `cm-NN` labelled
//! `app: web`, and policy `web` binding those ConfigMaps to the edge WECs.

use kube::api::DynamicObject;
use serde_json::{Value, json};

use crate::cluster::objects::{configmap, namespace};
use crate::cluster::{self, BindingHistory, apply, res, rv};

/// The WECs labelled `location-group: edge` in [`cluster::THREE_WECS`].
pub const EDGE: [&str; 2] = ["cluster1", "cluster2"];

/// The Binding entry of ConfigMap `obj` (in namespace `app`).
pub fn entry(obj: &DynamicObject) -> Value {
    json!({"group": "", "version": "v1", "resource": "configmaps", "namespace": "app",
           "name": obj.metadata.name.clone().unwrap(), "resourceVersion": rv(obj)})
}

/// The spec of Binding `web` for the ConfigMaps `cms` and WECs `clusters`.
pub fn spec(cms: &[DynamicObject], clusters: &[&str]) -> Value {
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

/// Creates the WECs, namespace `app`, `objects` ConfigMaps `cm-00`... and policy `web`;
/// returns the ConfigMaps as stored.
pub async fn setup(wds: &kube::Client, its: &kube::Client, objects: usize) -> Vec<DynamicObject> {
    cluster::apply_wecs(its, cluster::THREE_WECS).await.unwrap();
    apply(wds, &res::namespaces(), namespace("app", json!({})))
        .await
        .unwrap();
    let mut cms = Vec::new();
    for i in 0..objects {
        let cm = configmap("app", &format!("cm-{i:02}"), json!({"app": "web"}));
        cms.push(apply(wds, &res::configmaps(), cm).await.unwrap());
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

/// Relabels ConfigMap `cm-NN` with `round`: a new resourceVersion, the same selection.
pub async fn touch(wds: &kube::Client, i: usize, round: usize) -> DynamicObject {
    let cm = configmap(
        "app",
        &format!("cm-{i:02}"),
        json!({"app": "web", "round": round.to_string()}),
    );
    apply(wds, &res::configmaps(), cm).await.unwrap()
}

/// What [`assert_history`] checks besides "never dropped".
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    /// Any number of writers (another writer's versions are allowed).
    Any,
    /// No two writers fought: no spec comes back after another replaced it.
    NoFight,
}

/// Every version of Binding `web` the history saw after its first complete one (the
/// WECs `always` and `objects` ConfigMaps, all selected throughout) is complete, and
/// the Binding was never deleted; with [`Writers::NoFight`], no spec comes back once
/// another replaced it.
pub fn assert_history(history: &BindingHistory, always: &[&str], objects: usize, writers: Writers) {
    let mut full = false;
    let mut specs: Vec<Value> = Vec::new();
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
        if writers == Writers::NoFight && specs.last() != Some(&seen.spec) {
            assert!(
                !specs.contains(&seen.spec),
                "a spec came back after another replaced it (writers fighting): {seen:?}"
            );
            specs.push(seen.spec.clone());
        }
    }
    assert!(full, "Binding web was never complete");
}
