//! Builders of the JSON the tests create and expect: BindingPolicies, WECs (OCM
//! ManagedClusters), workload objects (Namespaces, ConfigMaps, Deployments, the Widgets
//! of a test CRD), and the Bindings a policy must get (entries of stored objects, specs,
//! owner references), written out in full as `docs/binding-semantics.md` says.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::control_plane::{res, rv};

// ---------------------------------------------------------------------------------------
// BindingPolicies
// ---------------------------------------------------------------------------------------

/// BindingPolicy `name`: what its `downsync` clauses select, to the WECs its
/// `clusterSelectors` match.
pub fn policy(name: &str, cluster_selectors: Value, downsync: Value) -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
           "metadata": {"name": name},
           "spec": {"clusterSelectors": cluster_selectors, "downsync": downsync}})
}

/// The `clusterSelectors` of the WECs labelled `location-group: GROUP`.
pub fn location_group(group: &str) -> Value {
    json!([{"matchLabels": {"location-group": group}}])
}

/// The `clusterSelectors` of the WECs labelled `location-group: edge`.
pub fn edge() -> Value {
    location_group("edge")
}

/// A downsync clause: the objects of `resources` (of any resource when empty) labelled
/// `labels`.
pub fn labelled(resources: &[&str], labels: Value) -> Value {
    let mut clause = json!({"objectSelectors": [{"matchLabels": labels}]});
    if !resources.is_empty() {
        clause["resources"] = json!(resources);
    }
    clause
}

/// The seed's nginx policy (`examples/nginx.jsonl`): to the edge WECs, the Namespaces
/// and, `createOnly`, the Deployments labelled `app.kubernetes.io/name: nginx`.
pub fn nginx_policy() -> Value {
    let nginx = json!({"app.kubernetes.io/name": "nginx"});
    let mut deployments = labelled(&["deployments"], nginx.clone());
    deployments["createOnly"] = json!(true);
    policy(
        "nginx",
        edge(),
        json!([labelled(&["namespaces"], nginx), deployments]),
    )
}

// ---------------------------------------------------------------------------------------
// WECs and workload objects
// ---------------------------------------------------------------------------------------

/// The seed's three WECs: cluster1 and cluster2 in `location-group: edge`, cluster3 in
/// `core`.
pub const THREE_WECS: &[(&str, &str)] = &[
    ("cluster1", "edge"),
    ("cluster2", "edge"),
    ("cluster3", "core"),
];

/// An OCM ManagedCluster (a WEC) labelled `location-group: GROUP` and `name: NAME`.
pub fn managed_cluster(name: &str, group: &str) -> Value {
    json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
           "metadata": {"name": name, "labels": {"location-group": group, "name": name}},
           "spec": {"hubAcceptsClient": true}})
}

/// A WorkStatus as KubeStellar's OCM status add-on writes it (its `status` aside, which
/// goes through the status subresource): in the WEC's namespace `wec`, labelled with the
/// origin WDS `wds`, reporting on the object `source_ref` names.
pub fn work_status(wec: &str, name: &str, wds: &str, source_ref: Value) -> Value {
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
           "metadata": {"name": name, "namespace": wec,
                        "labels": {"transport.kubestellar.io/originWdsName": wds,
                                   "transport.kubestellar.io/originOwnerReferenceBindingKey": "nginx"}},
           "spec": {"sourceRef": source_ref}})
}

/// A StatusCollector `name` with `spec`; `limit` (the CRD requires it) 20, KubeStellar's
/// documented default, where `spec` has none.
pub fn status_collector(name: &str, mut spec: Value) -> Value {
    if spec.get("limit").is_none() {
        spec["limit"] = json!(20);
    }
    json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "StatusCollector",
           "metadata": {"name": name}, "spec": spec})
}

/// The `spec.sourceRef` of a WorkStatus on Deployment `ns/name`.
pub fn deployment_ref(ns: &str, name: &str) -> Value {
    json!({"group": "apps", "version": "v1", "resource": "deployments", "kind": "Deployment",
           "namespace": ns, "name": name})
}

/// A Namespace with `labels`.
pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// A valid apps/v1 Deployment with `labels`.
pub fn deployment(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
}

/// A ConfigMap with `labels`.
pub fn configmap(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "data": {"k": "v"}})
}

/// A Widget (`example.com/v1`, of [`widget_crd`]) with `labels`.
pub fn widget(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "spec": {"size": 3}})
}

/// The CRD of the namespaced Widgets (`widgets.example.com`), a [`simple_crd`].
pub fn widget_crd() -> CustomResourceDefinition {
    simple_crd("example.com", "Widget", "widgets", true)
}

/// A simple CRD: one served and stored version `v1` whose schema keeps any fields
/// (`x-kubernetes-preserve-unknown-fields`).
pub fn simple_crd(
    group: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                      "singular": kind.to_lowercase()},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    }))
    .expect("a valid CRD")
}

/// `object` as an API server would have stored it: with `metadata.uid` and
/// `metadata.resourceVersion` (for the objects of watch logs and engine inputs).
pub fn as_stored(mut object: Value, uid: &str, resource_version: &str) -> Value {
    object["metadata"]["uid"] = json!(uid);
    object["metadata"]["resourceVersion"] = json!(resource_version);
    object
}

// ---------------------------------------------------------------------------------------
// Expected Bindings
// ---------------------------------------------------------------------------------------

/// The Binding entry of `object` (as stored: its resourceVersion) of resource `ar`,
/// without modulation.
pub fn entry(ar: &ApiResource, object: &DynamicObject) -> Value {
    let mut e = json!({"group": ar.group, "version": ar.version, "resource": ar.plural});
    if let Some(ns) = &object.metadata.namespace {
        e["namespace"] = json!(ns);
    }
    e["name"] = json!(
        object
            .metadata
            .name
            .as_deref()
            .expect("a stored object's name")
    );
    e["resourceVersion"] = json!(rv(object));
    e
}

/// `entry` with the fields of `modulation` (e.g. `{"createOnly": true}`) added.
pub fn modulated(mut entry: Value, modulation: Value) -> Value {
    if let (Some(entry), Value::Object(fields)) = (entry.as_object_mut(), modulation) {
        entry.extend(fields);
    }
    entry
}

/// The `destinations` of a Binding to the WECs `clusters`, in that order.
pub fn destinations(clusters: &[&str]) -> Value {
    clusters.iter().map(|c| json!({"clusterId": c})).collect()
}

/// The expected Binding spec: `entries` split by scope and sorted as the spec says (by
/// `"<group>/<version>, Resource=<resource>"`, then name or `namespace/name`, then
/// resourceVersion, byte order), empty lists omitted (`workload` is always there),
/// destinations sorted.
pub fn spec(entries: Vec<Value>, clusters: &[&str]) -> Value {
    let key = |e: &Value| {
        let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
        let object = if e.get("namespace").is_some() {
            format!("{}/{}", s("namespace"), s("name"))
        } else {
            s("name")
        };
        (
            format!(
                "{}/{}, Resource={}",
                s("group"),
                s("version"),
                s("resource")
            ),
            object,
            s("resourceVersion"),
        )
    };
    let (mut namespaced, mut clustered): (Vec<Value>, Vec<Value>) = entries
        .into_iter()
        .partition(|e| e.get("namespace").is_some());
    namespaced.sort_by_key(key);
    clustered.sort_by_key(key);
    let mut workload = serde_json::Map::new();
    if !clustered.is_empty() {
        workload.insert("clusterScope".into(), Value::Array(clustered));
    }
    if !namespaced.is_empty() {
        workload.insert("namespaceScope".into(), Value::Array(namespaced));
    }
    let mut spec = json!({"workload": workload});
    let mut clusters: Vec<&str> = clusters.to_vec();
    clusters.sort_unstable();
    clusters.dedup();
    if !clusters.is_empty() {
        spec["destinations"] = destinations(&clusters);
    }
    spec
}

/// The spec of the seed's nginx Binding ([`nginx_policy`]): Namespace `namespace`,
/// Deployment `deployment` (`createOnly`) if there is one, to the WECs `clusters`.
pub fn nginx_spec(
    namespace: &DynamicObject,
    deployment: Option<&DynamicObject>,
    clusters: &[&str],
) -> Value {
    let mut entries = vec![entry(&res::namespaces(), namespace)];
    if let Some(deployment) = deployment {
        let createonly = json!({"createOnly": true});
        entries.push(modulated(
            entry(&res::deployments(), deployment),
            createonly,
        ));
    }
    spec(entries, clusters)
}

/// The namespaced entries of a Binding `spec`, as `name@resourceVersion`, in order.
pub fn namespaced_entries(spec: &Value) -> Vec<String> {
    let entries = spec["workload"]["namespaceScope"].as_array();
    let name_at_rv = |e: &Value| {
        let s = |key: &str| e[key].as_str().unwrap_or_default().to_string();
        format!("{}@{}", s("name"), s("resourceVersion"))
    };
    entries.into_iter().flatten().map(name_at_rv).collect()
}

/// The owner references a Binding of `policy` (as stored: its uid) must have.
pub fn owners(policy: &DynamicObject) -> Value {
    json!([{"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
            "name": policy.metadata.name.as_deref().expect("a stored policy's name"),
            "uid": policy.metadata.uid.as_deref().expect("a stored policy's uid"),
            "controller": true, "blockOwnerDeletion": false}])
}
