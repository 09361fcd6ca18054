//! The Binding side of the API: resource descriptions, the body the sink writes, whether a
//! stored Binding is managed, and the normalized "what is stored" a desired Binding is
//! compared with.

use std::hash::{DefaultHasher, Hasher};
use std::io;

use bindery_api::{API_VERSION, Binding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

/// `control.kubestellar.io/v1alpha1` `bindings` (cluster-scoped).
pub(crate) fn binding_resource() -> ApiResource {
    control_resource("Binding", "bindings")
}

/// `control.kubestellar.io/v1alpha1` `bindingpolicies` (cluster-scoped).
pub(crate) fn policy_resource() -> ApiResource {
    control_resource("BindingPolicy", "bindingpolicies")
}

fn control_resource(kind: &str, plural: &str) -> ApiResource {
    let (group, version) = API_VERSION.split_once('/').expect("group/version");
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The part of a Binding the sink writes (`spec` and `metadata.ownerReferences`),
/// normalized with [`normalize`] (so that equal content compares equal whoever wrote it and
/// in whatever key order), kept as a 128-bit digest of its canonical JSON: the sink
/// remembers every stored Binding, and Bindings can be large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoredBinding {
    digest: u128,
}

impl StoredBinding {
    /// What the server holds, from a Binding it returned.
    pub(crate) fn from_object(obj: &DynamicObject) -> Self {
        let owner_references =
            serde_json::to_value(obj.metadata.owner_references.as_deref().unwrap_or_default())
                .unwrap_or(Value::Null);
        StoredBinding::new(obj.data.get("spec"), Some(&owner_references))
    }

    /// What a write of `body` (from [`write_body`]) stores.
    pub(crate) fn from_write_body(body: &Value) -> Self {
        StoredBinding::new(body.get("spec"), body.pointer("/metadata/ownerReferences"))
    }

    fn new(spec: Option<&Value>, owner_references: Option<&Value>) -> Self {
        let canonical = json!([
            normalize(spec.unwrap_or(&Value::Null)),
            normalize(owner_references.unwrap_or(&Value::Null)),
        ]);
        StoredBinding {
            digest: digest(&canonical),
        }
    }
}

/// A 128-bit digest of `value`'s JSON: two SipHash-1-3 hashes with distinct prefixes.
fn digest(value: &Value) -> u128 {
    struct HashWriter<'a>(&'a mut [DefaultHasher; 2]);
    impl io::Write for HashWriter<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0[0].write(buf);
            self.0[1].write(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut hashers = [DefaultHasher::new(), DefaultHasher::new()];
    hashers[0].write_u8(0);
    hashers[1].write_u8(1);
    serde_json::to_writer(HashWriter(&mut hashers), value).expect("JSON values serialize");
    (u128::from(hashers[0].finish()) << 64) | u128::from(hashers[1].finish())
}

/// Drops what carries no information for KubeStellar's (Go, `omitempty`) consumers:
/// object entries that are `null`, `false`, `[]` or `{}` (after normalizing them), at every
/// depth, and sorts object keys. A top-level `null`, `[]` or `{}` becomes `null`.
pub(crate) fn normalize(value: &Value) -> Value {
    let v = normalize_inner(value);
    if is_empty(&v) { Value::Null } else { v }
}

fn normalize_inner(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut entries: Vec<(&String, Value)> = m
                .iter()
                .map(|(k, v)| (k, normalize_inner(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize_inner).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// True when `obj`'s controller owner reference is a BindingPolicy: such a Binding is
/// Bindery's to change or delete. Others (no controller, or another kind of controller)
/// are never touched unless a policy of their name exists.
pub(crate) fn is_managed(obj: &DynamicObject) -> bool {
    let group = API_VERSION.split_once('/').map_or("", |(g, _)| g);
    obj.metadata.owner_references.iter().flatten().any(|r| {
        r.controller == Some(true)
            && r.kind == "BindingPolicy"
            && r.api_version.split_once('/').map_or("", |(g, _)| g) == group
    })
}

/// Spells out the empty lists of a spec as `[]` (`destinations`, and `clusterScope` and
/// `namespaceScope` of `workload`). The rendered Binding omits them (as KubeStellar's Go
/// types do), but a write that leaves an empty list out does not remove the stored
/// entries: a merge patch keeps what it does not name (and in a server-side apply an
/// omitted list turns `workload: {}` into `null`, which the schema refuses,
/// kubernetes/kubernetes#135841), so the last entry of a list could never be removed.
fn empty_lists_explicitly(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    spec.entry("destinations").or_insert_with(|| json!([]));
    let workload = spec.entry("workload").or_insert_with(|| json!({}));
    if let Some(workload) = workload.as_object_mut() {
        for list in ["clusterScope", "namespaceScope"] {
            workload.entry(list).or_insert_with(|| json!([]));
        }
    }
}

/// The body the sink writes for the desired Binding `desired` named `name`, as a create or
/// as a JSON merge patch: a [`bindery_api::Binding`] with only `metadata.name`,
/// `metadata.ownerReferences` and `spec`, so that labels, annotations and finalizers
/// others put on the Binding are kept, and with its empty lists spelled out. A merge patch
/// replaces lists whole, so the stored spec ends up exactly this one whoever wrote its
/// entries before. Errors name what is wrong with `desired`.
pub(crate) fn write_body(name: &str, desired: &Value) -> Result<Value, String> {
    let obj = desired
        .as_object()
        .ok_or("the desired Binding is not a JSON object")?;
    match obj.get("kind") {
        None => {}
        Some(Value::String(kind)) if kind == "Binding" => {}
        Some(kind) => return Err(format!("the desired object is a {kind}, not a Binding")),
    }
    if !obj.contains_key("spec") {
        return Err("the desired Binding has no `spec`".into());
    }
    // Its status is never written (and need not parse).
    let mut without_status = obj.clone();
    without_status.remove("status");
    let typed: Binding = serde_json::from_value(Value::Object(without_status))
        .map_err(|e| format!("the desired Binding is not a Binding: {e}"))?;
    if let Some(n) = &typed.metadata.name
        && n != name
    {
        return Err(format!(
            "the desired Binding's metadata.name {n:?} differs from its name {name:?}"
        ));
    }
    let body = Binding {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            owner_references: typed.metadata.owner_references,
            ..ObjectMeta::default()
        },
        spec: typed.spec,
        status: None,
    };
    let mut body = serde_json::to_value(&body).map_err(|e| e.to_string())?;
    if let Some(spec) = body.get_mut("spec") {
        empty_lists_explicitly(spec);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Value {
        json!({
            "apiVersion": API_VERSION,
            "kind": "Binding",
            "metadata": {"name": "p", "ownerReferences": [{
                "apiVersion": API_VERSION, "kind": "BindingPolicy", "name": "p", "uid": "u",
                "controller": true, "blockOwnerDeletion": false,
            }]},
            "spec": {"workload": {}, "destinations": [{"clusterId": "c1"}]},
        })
    }

    #[test]
    fn body_holds_exactly_what_the_sink_owns() {
        let mut d = desired();
        d["status"] = json!({"x": 1});
        d["metadata"]["labels"] = json!({"a": "b"});
        let body = write_body("p", &d).unwrap();
        let mut expected = desired();
        expected["metadata"] = json!({
            "name": "p",
            "ownerReferences": desired()["metadata"]["ownerReferences"].clone(),
        });
        // Empty lists are spelled out, so writing them removes the stored entries.
        expected["spec"]["workload"] = json!({"clusterScope": [], "namespaceScope": []});
        assert_eq!(body, expected);
    }

    #[test]
    fn the_engine_renders_the_api_version_of_the_api_crate() {
        assert_eq!(bindery_engine::binding::API_VERSION, API_VERSION);
    }

    #[test]
    fn bad_desired_bindings_are_refused() {
        assert!(write_body("q", &desired()).unwrap_err().contains("differs"));
        let mut d = desired();
        d.as_object_mut().unwrap().remove("spec");
        assert!(write_body("p", &d).unwrap_err().contains("no `spec`"));
        assert!(write_body("p", &json!([])).is_err());
        let mut d = desired();
        d["spec"]["destinations"] = json!("c1");
        let e = write_body("p", &d).unwrap_err();
        assert!(e.contains("not a Binding"), "{e}");
    }

    #[test]
    fn stored_state_ignores_omitempty_differences_and_key_order() {
        let body = write_body("p", &desired()).unwrap();
        // As a Go client would have written it: no `blockOwnerDeletion: false`, explicit
        // empty lists, other key order.
        let server: DynamicObject = serde_json::from_value(json!({
            "apiVersion": API_VERSION,
            "kind": "Binding",
            "metadata": {"name": "p", "resourceVersion": "7", "labels": {"x": "y"},
                "ownerReferences": [{"uid": "u", "name": "p", "kind": "BindingPolicy",
                    "apiVersion": API_VERSION, "controller": true}]},
            "spec": {"destinations": [{"clusterId": "c1"}],
                "workload": {"clusterScope": [], "namespaceScope": null}},
        }))
        .unwrap();
        assert_eq!(
            StoredBinding::from_object(&server),
            StoredBinding::from_write_body(&body)
        );
        let mut other = desired();
        other["spec"]["destinations"][0]["clusterId"] = json!("c2");
        let other = write_body("p", &other).unwrap();
        assert_ne!(
            StoredBinding::from_object(&server),
            StoredBinding::from_write_body(&other)
        );
    }

    #[test]
    fn normalize_keeps_order_of_lists_and_empty_strings() {
        let v = json!({"z": 1, "a": [{"group": "", "b": false}, {"group": "x"}], "c": {}});
        let n = normalize(&v);
        assert_eq!(n, json!({"a": [{"group": ""}, {"group": "x"}], "z": 1}));
        assert_eq!(
            n.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["a", "z"]
        );
        assert_eq!(normalize(&json!([])), Value::Null);
    }
}
