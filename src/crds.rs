//! KubeStellar's API objects as Rust types, and the CustomResourceDefinitions generated
//! from them (`bindery crds`).
//!
//! - [`BindingPolicy`] and [`Binding`] (`control.kubestellar.io/v1alpha1`), shaped like
//!   KubeStellar's own CRDs (`config/crd/bases` plus the extra validations its kustomization
//!   patches in): the same fields, required fields, list types and list-map keys, label
//!   pattern validations on `clusterSelectors`, the "at least one test" rule on downsync
//!   clauses, printer columns, short names, scope and status subresource.
//! - [`ManagedCluster`] (`cluster.open-cluster-management.io/v1`): a permissive stand-in for
//!   OCM's inventory type, so that a test API server can hold WECs.
//!
//! [`crds`] returns the three definitions, [`crds_yaml`] renders them as one multi-document
//! YAML stream. The schemas come from the derived [`JsonSchema`]s, finished by a small pass
//! ([`finish_crd`]) that puts them in the form controller-gen gives KubeStellar's: no
//! `nullable`, `default` or `title` (KubeStellar's schemas have none, and a `default` would
//! make the API server fill in fields that the engine omits), the `apiVersion`/`kind`/
//! `metadata` properties, `spec` not required, `listKind` set.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use kube::CustomResourceExt;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// KubeStellar's API group.
pub const GROUP: &str = "control.kubestellar.io";
/// KubeStellar's API version.
pub const VERSION: &str = "v1alpha1";
/// OCM's cluster API group (the ITS inventory).
pub const OCM_CLUSTER_GROUP: &str = "cluster.open-cluster-management.io";

/// Label key syntax: an optional DNS-subdomain prefix and `/`, then a name (KubeStellar's
/// `more_validations_in_bindingpolicies` patch, on `clusterSelectors` only).
pub const LABEL_KEY_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$";
/// Label value syntax (empty allowed), as in KubeStellar's patch.
pub const LABEL_VALUE_PATTERN: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
/// The label selector operators, as in KubeStellar's patch.
pub const LABEL_OPERATOR_PATTERN: &str = r"^(In|NotIn|Exists|DoesNotExist)$";

fn is_false(b: &bool) -> bool {
    !*b
}

// ---------------------------------------------------------------------------------------
// BindingPolicy
// ---------------------------------------------------------------------------------------

/// The desired state of a BindingPolicy: which WECs (`clusterSelectors`) get which
/// workload objects (`downsync`), and how those objects are downsynced.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "control.kubestellar.io",
    version = "v1alpha1",
    kind = "BindingPolicy",
    plural = "bindingpolicies",
    singular = "bindingpolicy",
    shortname = "bp",
    status = "BindingPolicyStatus",
    derive = "PartialEq",
    doc = "BindingPolicy binds a set of workload objects (what) to a set of WECs (where).",
    // Printer columns as JSON: the nested form repeats `type_ = "string"`, which clippy
    // flags as a duplicated attribute.
    printcolumn = r#"{"name": "SYNCED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Synced')].status"}"#,
    printcolumn = r#"{"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name": "TYPE", "type": "string", "jsonPath": ".spec.type"}"#,
    printcolumn = r#"{"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BindingPolicySpec {
    /// `clusterSelectors` picks the WECs by the labels of their inventory objects: a WEC is
    /// selected when it matches at least one of these label selectors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "cluster_selectors_schema")]
    pub cluster_selectors: Vec<LabelSelector>,

    /// `downsync` picks the workload objects to bind to the selected WECs and modulates
    /// their downsync. An object is selected when it matches at least one clause; the
    /// modulations of all the clauses it matches are combined (flags ORed, status
    /// collector sets united).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downsync: Vec<DownsyncPolicyClause>,
}

/// One `downsync` clause: a predicate over workload objects (at least one of its fields
/// must be present) and the modulation of the downsync of the objects it matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("anyOf" = [
    {"required": ["apiGroup"]},
    {"required": ["resources"]},
    {"required": ["namespaces"]},
    {"required": ["namespaceSelectors"]},
    {"required": ["objectSelectors"]},
    {"required": ["objectNames"]},
]))]
pub struct DownsyncPolicyClause {
    /// Which objects the clause matches.
    #[serde(flatten)]
    pub test: DownsyncObjectTest,
    /// How the matched objects are downsynced.
    #[serde(flatten)]
    pub modulation: DownsyncModulation,
}

/// A predicate over workload objects: an object matches when every test holds. An
/// absent or empty test holds for every object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownsyncObjectTest {
    /// `apiGroup` is the object's API group (`""` for the core group); absent matches
    /// every group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,

    /// `resources` lists lowercase plural resource names; `"*"` matches every resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,

    /// `namespaces` lists acceptable namespace names; `"*"` matches any namespace,
    /// including the (empty) namespace of a cluster-scoped object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// `namespaceSelectors` are label selectors over the Namespace object of a namespaced
    /// object: at least one must match it. A cluster-scoped object passes only when one of
    /// them is the empty selector `{}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "label_selectors_schema")]
    pub namespace_selectors: Vec<LabelSelector>,

    /// `objectSelectors` are label selectors over the object's own labels: at least one
    /// must match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "label_selectors_schema")]
    pub object_selectors: Vec<LabelSelector>,

    /// `objectNames` lists acceptable object names; `"*"` matches every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_names: Vec<String>,
}

/// How an object is downsynced. Appears inline in BindingPolicy clauses and in Binding
/// workload entries; each field is omitted when false or empty.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownsyncModulation {
    /// `createOnly`: in a WEC, the object is created if absent and never updated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_only: bool,

    /// `statusCollectors` names the StatusCollectors to apply to the object's status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_collectors: Vec<String>,

    /// `wantSingletonReportedState` asks for the object's `.status` to be copied back from
    /// its WEC to the WDS, and states the expectation that the object goes to exactly one
    /// WEC (the number of WECs it goes to is reported on the object).
    #[serde(default, skip_serializing_if = "is_false")]
    pub want_singleton_reported_state: bool,

    /// `wantMultiWECReportedState` asks for the `.status` of the object in its WECs to be
    /// aggregated and written back to the object in the WDS when it goes to several WECs
    /// (with exactly one WEC it behaves like `wantSingletonReportedState`).
    #[serde(
        default,
        skip_serializing_if = "is_false",
        rename = "wantMultiWECReportedState"
    )]
    pub want_multi_wec_reported_state: bool,
}

/// The observed state of a BindingPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingPolicyStatus {
    /// The policy's conditions (`Ready`, `Synced`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<BindingPolicyCondition>,

    /// The `metadata.generation` that the policy's Binding reflects.
    pub observed_generation: i64,

    /// Problems with the policy, one message each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A condition of a BindingPolicy (and of a Binding). KubeStellar's own condition type:
/// unlike `metav1.Condition` it has no `observedGeneration`, and all five fields are
/// required (`message` may be empty).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingPolicyCondition {
    /// The condition type, e.g. `Ready` or `Synced`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the condition last changed status, RFC 3339 (e.g. `2026-01-02T03:04:05Z`).
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: String,
    /// A CamelCase reason for the last transition.
    pub reason: String,
    /// A human-readable message (may be empty).
    pub message: String,
}

// ---------------------------------------------------------------------------------------
// Binding
// ---------------------------------------------------------------------------------------

/// The desired state of a Binding: exactly which workload objects (and versions) go to
/// exactly which WECs. Every object listed goes to every destination.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "control.kubestellar.io",
    version = "v1alpha1",
    kind = "Binding",
    plural = "bindings",
    singular = "binding",
    shortname = "bdg",
    status = "BindingStatus",
    derive = "PartialEq",
    doc = "Binding is the resolution of one BindingPolicy (same name): the workload objects and the WECs it binds."
)]
#[serde(rename_all = "camelCase")]
pub struct BindingSpec {
    /// `workload` lists the bound objects, cluster-scoped and namespaced, each with its
    /// resource version and downsync modulation.
    #[serde(default)]
    pub workload: DownsyncObjectClauses,

    /// `destinations` lists the WECs the objects go to, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["clusterId"]
    ))]
    pub destinations: Vec<Destination>,
}

/// The objects of a Binding, grouped by scope.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownsyncObjectClauses {
    /// `clusterScope` lists cluster-scoped objects, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["group", "resource", "name"]
    ))]
    pub cluster_scope: Vec<ClusterScopeDownsyncClause>,

    /// `namespaceScope` lists namespaced objects, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["group", "resource", "namespace", "name"]
    ))]
    pub namespace_scope: Vec<NamespaceScopeDownsyncClause>,
}

/// One cluster-scoped object of a Binding and its downsync modulation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterScopeDownsyncClause {
    /// The object's API group (`""` for the core group).
    pub group: String,
    /// The API version the object is read in.
    pub version: String,
    /// The object's resource (lowercase plural).
    pub resource: String,
    /// `name` of the object.
    pub name: String,
    /// `resourceVersion` of the object to downsync.
    pub resource_version: String,
    /// How the object is downsynced.
    #[serde(flatten)]
    pub modulation: DownsyncModulation,
}

/// One namespaced object of a Binding and its downsync modulation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceScopeDownsyncClause {
    /// The object's API group (`""` for the core group).
    pub group: String,
    /// The API version the object is read in.
    pub version: String,
    /// The object's resource (lowercase plural).
    pub resource: String,
    /// `namespace` of the object.
    pub namespace: String,
    /// `name` of the object.
    pub name: String,
    /// `resourceVersion` of the object to downsync.
    pub resource_version: String,
    /// How the object is downsynced.
    #[serde(flatten)]
    pub modulation: DownsyncModulation,
}

/// A destination WEC of a Binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The WEC's id: the name of its inventory object (ManagedCluster).
    pub cluster_id: String,
}

/// The observed state of a Binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingStatus {
    /// Conditions, copied by design to the BindingPolicy's conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<BindingPolicyCondition>,

    /// Problems with the Binding, one message each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,

    /// The `metadata.generation` this status is about.
    pub observed_generation: i64,
}

// ---------------------------------------------------------------------------------------
// ManagedCluster (tests only)
// ---------------------------------------------------------------------------------------

/// The spec of an OCM `ManagedCluster`, permissive: the few fields named here are typed,
/// any others are kept as they are. For test API servers that hold WECs; Bindery itself
/// only reads a ManagedCluster's name and labels.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cluster.open-cluster-management.io",
    version = "v1",
    kind = "ManagedCluster",
    plural = "managedclusters",
    singular = "managedcluster",
    shortname = "mcl",
    shortname = "mcls",
    status = "ManagedClusterStatus",
    derive = "PartialEq",
    doc = "ManagedCluster is a cluster registered with an OCM hub (a WEC in a KubeStellar ITS). Permissive test stand-in for OCM's CRD.",
    printcolumn = r#"{"name": "Hub Accepted", "type": "boolean", "jsonPath": ".spec.hubAcceptsClient"}"#,
    printcolumn = r#"{"name": "Managed Cluster URLs", "type": "string", "jsonPath": ".spec.managedClusterClientConfigs[*].url"}"#,
    printcolumn = r#"{"name": "Joined", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"ManagedClusterJoined\")].status"}"#,
    printcolumn = r#"{"name": "Available", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"ManagedClusterConditionAvailable\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterSpec {
    /// Whether the hub accepts the cluster's registration.
    #[serde(default)]
    pub hub_accepts_client: bool,

    /// The cluster's lease duration, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<i32>,

    /// How to reach the cluster's API server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_cluster_client_configs: Vec<ClientConfig>,

    /// Any other spec fields (taints, ...), kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One way to reach a managed cluster's API server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    /// The API server's URL.
    pub url: String,
    /// The CA bundle to trust, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
}

/// The status of a ManagedCluster, kept as it is (any fields).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(transparent)]
#[schemars(schema_with = "preserve_unknown_object_schema")]
pub struct ManagedClusterStatus(pub Map<String, Value>);

// ---------------------------------------------------------------------------------------
// Schemas schemars cannot derive
// ---------------------------------------------------------------------------------------

/// The schema of `metav1.LabelSelector`, as controller-gen renders it (k8s 1.30+ markers),
/// optionally with KubeStellar's label syntax patterns.
fn label_selector_schema(patterns: bool) -> Value {
    let mut key = json!({"description": "key is the label key that the selector applies to.", "type": "string"});
    let mut operator = json!({
        "description": "operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist.",
        "type": "string"
    });
    let mut value_item = json!({"type": "string"});
    let mut label_value = json!({"type": "string"});
    if patterns {
        key["pattern"] = LABEL_KEY_PATTERN.into();
        operator["pattern"] = LABEL_OPERATOR_PATTERN.into();
        value_item["pattern"] = LABEL_VALUE_PATTERN.into();
        label_value["pattern"] = LABEL_VALUE_PATTERN.into();
    }
    json!({
        "description": "A label selector: matchLabels and matchExpressions are ANDed; an empty selector matches every object.",
        "type": "object",
        "properties": {
            "matchExpressions": {
                "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                "type": "array",
                "items": {
                    "description": "A label selector requirement: a key, an operator, and values.",
                    "type": "object",
                    "properties": {
                        "key": key,
                        "operator": operator,
                        "values": {
                            "description": "values is a list of label values: non-empty for In and NotIn, empty for Exists and DoesNotExist.",
                            "type": "array",
                            "items": value_item,
                            "x-kubernetes-list-type": "atomic"
                        }
                    },
                    "required": ["key", "operator"]
                },
                "x-kubernetes-list-type": "atomic"
            },
            "matchLabels": {
                "description": "matchLabels is a map of {key,value} pairs, each equivalent to an In requirement with that single value.",
                "type": "object",
                "additionalProperties": label_value
            }
        },
        "x-kubernetes-map-type": "atomic"
    })
}

fn selector_list_schema(patterns: bool) -> Schema {
    let value = json!({"type": "array", "items": label_selector_schema(patterns)});
    Schema::try_from(value).expect("a schema object")
}

/// `clusterSelectors`: label selectors with KubeStellar's label syntax patterns.
fn cluster_selectors_schema(_: &mut SchemaGenerator) -> Schema {
    selector_list_schema(true)
}

/// `namespaceSelectors` and `objectSelectors`: plain label selectors.
fn label_selectors_schema(_: &mut SchemaGenerator) -> Schema {
    selector_list_schema(false)
}

fn preserve_unknown_object_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

// ---------------------------------------------------------------------------------------
// The CRDs
// ---------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(crd: &CustomResourceDefinition) -> Value {
        serde_json::to_value(crd).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            .clone()
    }

    /// Every schema node that has `properties` or `items` says its `type`, and no `$ref`,
    /// `nullable` or `default` is left anywhere.
    fn assert_structural(schema: &Value, path: &str) {
        let obj = schema
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not an object"));
        for key in [
            "$ref",
            "nullable",
            "default",
            "$defs",
            "definitions",
            "oneOf",
        ] {
            assert!(!obj.contains_key(key), "{path}: has {key}");
        }
        if obj.contains_key("properties") {
            assert_eq!(obj.get("type"), Some(&json!("object")), "{path}: type");
        }
        if obj.contains_key("items") {
            assert_eq!(obj.get("type"), Some(&json!("array")), "{path}: type");
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                assert_structural(sub, &format!("{path}.{name}"));
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = obj.get(key) {
                assert_structural(sub, &format!("{path}[{key}]"));
            }
        }
        if let Some(any_of) = obj.get("anyOf").and_then(Value::as_array) {
            for alt in any_of {
                let alt = alt.as_object().unwrap();
                assert!(alt.keys().all(|k| k == "required"), "{path}: anyOf {alt:?}");
            }
        }
    }

    #[test]
    fn schemas_are_structural() {
        for crd in crds() {
            let schema = schema_of(&crd);
            assert_eq!(schema["type"], "object");
            assert_structural(&schema, &crd.metadata.name.clone().unwrap());
        }
    }

    #[test]
    fn binding_round_trips_through_the_types() {
        let json = json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "Binding",
            "metadata": {"name": "nginx"},
            "spec": {
                "workload": {
                    "clusterScope": [{"group": "", "version": "v1", "resource": "namespaces",
                        "name": "nginx", "resourceVersion": "1001"}],
                    "namespaceScope": [{"group": "apps", "version": "v1", "resource": "deployments",
                        "namespace": "nginx", "name": "nginx-deployment", "resourceVersion": "1200",
                        "createOnly": true, "statusCollectors": ["a"],
                        "wantSingletonReportedState": true, "wantMultiWECReportedState": true}]
                },
                "destinations": [{"clusterId": "cluster1"}]
            }
        });
        let binding: Binding = serde_json::from_value(json.clone()).unwrap();
        let entry = &binding.spec.workload.namespace_scope[0];
        assert!(entry.modulation.create_only && entry.modulation.want_multi_wec_reported_state);
        assert_eq!(serde_json::to_value(&binding).unwrap(), json);
    }

    #[test]
    fn yaml_has_the_three_documents_in_order() {
        let yaml = crds_yaml();
        let names: Vec<&str> = yaml
            .lines()
            .filter_map(|l| l.strip_prefix("  name: "))
            .collect();
        assert_eq!(
            names,
            [
                "bindingpolicies.control.kubestellar.io",
                "bindings.control.kubestellar.io",
                "managedclusters.cluster.open-cluster-management.io"
            ]
        );
        assert_eq!(yaml.matches("---\n").count(), 3);
        assert_eq!(yaml, crds_yaml(), "stable output");
    }
}
