//! [`ManagedCluster`]: a permissive stand-in for OCM's inventory type, for test API
//! servers that hold WECs.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schema::preserve_unknown_object_schema;

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
