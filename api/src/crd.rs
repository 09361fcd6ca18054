//! The CustomResourceDefinitions, from the derived [`JsonSchema`](schemars::JsonSchema)s,
//! finished by a small pass ([`finish_crd`]) that puts them in the form controller-gen
//! gives KubeStellar's: no `nullable`, `default` or `title` (KubeStellar's schemas have
//! none, and a `default` would make the API server fill in fields that the engine omits),
//! the `apiVersion`/`kind`/`metadata` properties, `spec` not required, `listKind` set.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

use crate::combined_status::CombinedStatusFields;
use crate::{Binding, BindingPolicy, CustomTransform, ManagedCluster, StatusCollector};

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

/// The openAPIV3Schema of `T`, generated as kube's `CustomResource` derive does
/// (inlined, structural), for the CRDs whose objects are not `spec`/`status` shaped.
fn structural_schema<T: schemars::JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).expect("a schema serializes")
}

/// A CRD of `control.kubestellar.io/v1alpha1` from its parts.
fn written_crd(
    kind: &str,
    plural: &str,
    short_names: &[&str],
    scope: &str,
    schema: Value,
    extra_version_fields: Value,
) -> CustomResourceDefinition {
    let mut version = json!({
        "name": "v1alpha1",
        "served": true,
        "storage": true,
        "schema": {"openAPIV3Schema": schema},
    });
    if let (Some(version), Value::Object(extra)) = (version.as_object_mut(), extra_version_fields) {
        version.extend(extra);
    }
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{}", crate::GROUP)},
        "spec": {
            "group": crate::GROUP,
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": kind.to_lowercase(),
                "shortNames": short_names,
            },
            "scope": scope,
            "versions": [version],
        },
    });
    finish_crd(serde_json::from_value(crd).expect("a CRD deserializes"))
}

/// KubeStellar's `CombinedStatus` CRD: namespaced, `results` at the top level, no status
/// subresource, the five labels as printer columns.
fn combined_status_crd() -> CustomResourceDefinition {
    let mut schema = structural_schema::<CombinedStatusFields>();
    schema["description"] = "CombinedStatus holds the combined status from the WECs for one particular (workload object, BindingPolicy) pair. The namespace of the CombinedStatus object is the namespace of the workload object, or \"kubestellar-report\" if the workload object has no namespace. The name of the CombinedStatus object is the concatenation of the UID of the workload object, \".\", and the UID of the BindingPolicy object. It carries the labels status.kubestellar.io/api-group, /resource, /namespace, /name (of the workload object) and /binding-policy (the name of the BindingPolicy).".into();
    let column = |name: &str, label: &str| {
        json!({
            "name": name,
            "type": "string",
            "jsonPath": format!(".metadata.labels['status\\.kubestellar\\.io/{label}']"),
        })
    };
    let columns = json!({
        "additionalPrinterColumns": [
            column("SUBJECT_GROUP", "api-group"),
            column("SUBJECT_RSC", "resource"),
            column("SUBJECT_NS", "namespace"),
            column("SUBJECT_NAME", "name"),
            column("BINDINGPOLICY", "binding-policy"),
        ],
        "subresources": {},
    });
    written_crd(
        "CombinedStatus",
        "combinedstatuses",
        &["cs"],
        "Namespaced",
        schema,
        columns,
    )
}

/// The OCM status add-on's `WorkStatus` CRD (a permissive stand-in for test ITSes):
/// namespaced, `spec.sourceRef`, `status` kept as it is, `statusDetails`, a status
/// subresource.
fn work_status_crd() -> CustomResourceDefinition {
    let string = json!({"type": "string"});
    let schema = json!({
        "description": "WorkStatus is what KubeStellar's OCM status add-on reports from a WEC about one workload object (test stand-in of the add-on's CRD).",
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "sourceRef": {
                        "type": "object",
                        "properties": {
                            "group": string, "version": string, "resource": string,
                            "kind": string, "name": string, "namespace": string,
                        },
                        "required": ["group", "namespace"],
                    },
                },
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "statusDetails": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
    });
    let status = json!({"subresources": {"status": {}}});
    written_crd(
        "WorkStatus",
        "workstatuses",
        &["ws", "wss"],
        "Namespaced",
        schema,
        status,
    )
}

/// KubeStellar's five CRDs, what its controller-manager installs in a WDS (and
/// `bindery run --install-crds` does): `BindingPolicy`, `Binding`, `CustomTransform`,
/// `StatusCollector`, `CombinedStatus`.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        finish_crd(BindingPolicy::crd()),
        finish_crd(Binding::crd()),
        finish_crd(CustomTransform::crd()),
        finish_crd(StatusCollector::crd()),
        combined_status_crd(),
    ]
}

/// The ITS's CRDs a test API server needs: permissive stand-ins of OCM's
/// `ManagedCluster` and of the OCM status add-on's `WorkStatus`.
pub fn its_crds() -> Vec<CustomResourceDefinition> {
    vec![finish_crd(ManagedCluster::crd()), work_status_crd()]
}

/// `crds` as one YAML stream: the documents in order, each starting with `---`.
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> String {
    crds.iter()
        .map(|crd| {
            format!(
                "---\n{}",
                serde_yaml_ng::to_string(crd).expect("a CRD renders as YAML")
            )
        })
        .collect()
}
