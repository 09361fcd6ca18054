//! [`WorkStatus`]: what KubeStellar's OCM status add-on reports from a WEC: one per
//! (workload object, WEC), in the WEC's namespace of the ITS, holding the WEC object's
//! `.status`. A stand-in of the add-on's CRD (`control.kubestellar.io/v1alpha1`
//! `workstatuses`), so that a test ITS can hold WorkStatuses as the add-on writes them;
//! its `status` and `statusDetails` sit at the top level, so the type and its CRD are
//! written here rather than derived.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The label the transport puts on a ManifestWork (and the add-on copies onto each
/// WorkStatus): the name of the WDS the object came from.
pub const ORIGIN_WDS_LABEL: &str = "transport.kubestellar.io/originWdsName";
/// The label naming the Binding whose ManifestWork carried the object.
pub const ORIGIN_BINDING_LABEL: &str = "transport.kubestellar.io/originOwnerReferenceBindingKey";

/// A WEC object's reported state, as KubeStellar's OCM status add-on writes it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatus {
    /// `control.kubestellar.io/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// `WorkStatus`.
    #[serde(default)]
    pub kind: String,
    /// Name, namespace (the WEC's), the origin labels.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Which object it reports on.
    #[serde(default)]
    pub spec: WorkStatusSpec,
    /// The WEC object's `.status`, as it is (absent when the object has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// About the downsync's propagation (not read by the status controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<Value>,
}

/// What a WorkStatus reports on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatusSpec {
    /// The object in the WEC (as in the WDS).
    #[serde(default)]
    pub source_ref: SourceRef,
}

/// The object a WorkStatus reports on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceRef {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Resource (lowercase plural).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// Kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace (`""` for a cluster-scoped object).
    pub namespace: String,
}

impl kube::Resource for WorkStatus {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "WorkStatus".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        crate::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "workstatuses".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
