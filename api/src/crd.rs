//! The CustomResourceDefinitions, from the derived [`JsonSchema`](schemars::JsonSchema)s,
//! finished by a small pass ([`finish_crd`]) that puts them in the form controller-gen
//! gives KubeStellar's: no `nullable`, `default` or `title` (KubeStellar's schemas have
//! none, and a `default` would make the API server fill in fields that the engine omits),
//! the `apiVersion`/`kind`/`metadata` properties, `spec` not required, `listKind` set.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

use crate::{Binding, BindingPolicy, ManagedCluster};

/// Removes the schema keywords KubeStellar's schemas never carry (`nullable`, `default`,
/// `title`) from `schema` and every schema nested in it.
fn strip_keywords(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    for key in ["nullable", "default", "title"] {
        obj.remove(key);
    }
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(strip_keywords);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(sub) = obj.get_mut(key) {
            strip_keywords(sub);
        }
    }
    for key in ["anyOf", "allOf", "oneOf"] {
        if let Some(subs) = obj.get_mut(key).and_then(Value::as_array_mut) {
            subs.iter_mut().for_each(strip_keywords);
        }
    }
}

/// Finishes a derived CRD into the form controller-gen gives KubeStellar's: sets
/// `names.listKind`, and in every version's schema drops `nullable`, `default` and `title`,
/// adds the `apiVersion`, `kind` and `metadata` properties, and makes `spec` optional.
pub fn finish_crd(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD serializes");
    let names = &mut value["spec"]["names"];
    if let Some(kind) = names["kind"].as_str() {
        names["listKind"] = format!("{kind}List").into();
    }
    if let Some(versions) = value["spec"]["versions"].as_array_mut() {
        for version in versions {
            let schema = &mut version["schema"]["openAPIV3Schema"];
            if !schema.is_object() {
                continue;
            }
            strip_keywords(schema);
            let obj = schema.as_object_mut().expect("checked above");
            let props = obj
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("properties is an object");
            props.insert(
                "apiVersion".into(),
                json!({
                    "description": "APIVersion is the versioned schema of this representation of an object.",
                    "type": "string"
                }),
            );
            props.insert(
                "kind".into(),
                json!({
                    "description": "Kind is the REST resource this object represents, in CamelCase.",
                    "type": "string"
                }),
            );
            props.insert("metadata".into(), json!({"type": "object"}));
            let mut sorted: Vec<(String, Value)> = std::mem::take(props).into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            props.extend(sorted);
            if let Some(required) = obj.get_mut("required").and_then(Value::as_array_mut) {
                required.retain(|r| r != "spec");
                if required.is_empty() {
                    obj.remove("required");
                }
            }
        }
    }
    serde_json::from_value(value).expect("a finished CRD deserializes")
}

/// KubeStellar's `BindingPolicy`, `Binding` and OCM's `ManagedCluster` CRDs, in that order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        finish_crd(BindingPolicy::crd()),
        finish_crd(Binding::crd()),
        finish_crd(ManagedCluster::crd()),
    ]
}

/// [`crds`] as one YAML stream: the documents in [`crds`]'s order, each starting with
/// `---`.
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| {
            format!(
                "---\n{}",
                serde_yaml_ng::to_string(crd).expect("a CRD renders as YAML")
            )
        })
        .collect()
}
