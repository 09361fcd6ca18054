//! [`Binding`]: the resolution of one BindingPolicy (same name), exactly which workload
//! objects go to which WECs.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::binding_policy::DownsyncModulation;
use crate::condition::BindingPolicyCondition;

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
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["type"]
    ))]
    pub conditions: Vec<BindingPolicyCondition>,

    /// Problems with the Binding, one message each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,

    /// The `metadata.generation` this status is about.
    pub observed_generation: i64,
}
