//! [`CustomTransform`]: how KubeStellar's transport transforms the objects of one resource
//! on their way from the WDS to the WECs (`remove`: JSONPath expressions of parts to
//! drop). Bindery does not read it; it installs its CRD, which only KubeStellar's
//! controller-manager did, and the transport needs.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which objects a CustomTransform selects (`apiGroup` and `resource`) and how it
/// transforms them.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "control.kubestellar.io",
    version = "v1alpha1",
    kind = "CustomTransform",
    plural = "customtransforms",
    singular = "customtransform",
    shortname = "ct",
    category = "all",
    status = "CustomTransformStatus",
    derive = "PartialEq",
    doc = "CustomTransform describes how to select and transform some objects on their way from WDS to WEC, without regard to the WEC (i.e., not changes that are specific to the individual WEC). The transformation specified here is in addition to, and follows, whatever is built into KubeStellar for that object.",
    printcolumn = r#"{"name": "SUBJECT_GROUP", "type": "string", "jsonPath": ".spec.apiGroup"}"#,
    printcolumn = r#"{"name": "SUBJECT_RESOURCE", "type": "string", "jsonPath": ".spec.resource"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct CustomTransformSpec {
    /// `apiGroup` holds just the group, not also the version.
    pub api_group: String,
    /// `resource` is the lowercase plural way of identifying a sort of object.
    pub resource: String,
    /// `remove` is a list of JSONPath expressions that identify parts of the object to
    /// remove if present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

/// The observed state of a CustomTransform.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomTransformStatus {
    /// The generation the status is about.
    pub observed_generation: i64,
    /// What is wrong with the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// What may be wrong with the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}
