//! [`BindingPolicy`]: which WECs get which workload objects, and how they are downsynced.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::BindingPolicyCondition;
use crate::is_false;
use crate::schema::{cluster_selectors_schema, label_selectors_schema};

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
    /// The policy's conditions, one per type ([`READY`](crate::condition::READY),
    /// [`SYNCED`](crate::condition::SYNCED), ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["type"]
    ))]
    pub conditions: Vec<BindingPolicyCondition>,

    /// The `metadata.generation` that the policy's Binding reflects.
    pub observed_generation: i64,

    /// Problems with the policy, one message each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}
