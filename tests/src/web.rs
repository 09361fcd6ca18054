//! The `web` scenario that the fault and leader-election tests share: three WECs (two
//! labelled `location-group: edge`), namespace `app` with ConfigMaps `cm-NN` labelled
//! `app: web`, and policy `web` binding those ConfigMaps to the edge WECs.

use kube::api::DynamicObject;
use serde_json::{Value, json};

use crate::control_plane::{BindingHistory, res};
use crate::objects::{self, edge, labelled};
use crate::world::World;

/// The WECs labelled `location-group: edge` in [`crate::objects::THREE_WECS`].
pub const EDGE: [&str; 2] = ["cluster1", "cluster2"];

/// The spec of Binding `web` for the ConfigMaps `cms` and WECs `clusters`.
pub fn spec(cms: &[DynamicObject], clusters: &[&str]) -> Value {
    let entries = cms
        .iter()
        .map(|cm| objects::entry(&res::configmaps(), cm))
        .collect();
    objects::spec(entries, clusters)
}

/// Creates the WECs, namespace `app`, `count` ConfigMaps `cm-00`... and policy `web`;
/// returns the ConfigMaps as stored.
pub async fn setup(w: &World, count: usize) -> Vec<DynamicObject> {
    w.three_wecs().await;
    w.namespace("app", json!({})).await;
    let mut cms = Vec::new();
    for i in 0..count {
        let cm = w
            .configmap("app", &format!("cm-{i:02}"), json!({"app": "web"}))
            .await;
        cms.push(cm);
    }
    let web = labelled(&["configmaps"], json!({"app": "web"}));
    w.policy("web", edge(), json!([web])).await;
    cms
}

/// Relabels ConfigMap `cm-NN` with `round`: a new resourceVersion, the same selection.
pub async fn touch(w: &World, i: usize, round: usize) -> DynamicObject {
    let labels = json!({"app": "web", "round": round.to_string()});
    w.configmap("app", &format!("cm-{i:02}"), labels).await
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
