//! [`CombinedStatus`]: the combined status from the WECs of one (workload object,
//! BindingPolicy) pair, one [`NamedStatusCombination`] per StatusCollector the policy
//! names for the object. Its `results` sit at the top level (there is no `spec` or
//! `status`), so the type and its CRD are written here rather than derived.
//!
//! Naming (KubeStellar's API): namespace = the workload object's namespace, or
//! [`REPORT_NAMESPACE`] for a cluster-scoped object; name = `<object UID>.<policy UID>`;
//! exactly the five [`LABELS`].

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::binding::Destination;

/// Where the CombinedStatuses of cluster-scoped objects go.
pub const REPORT_NAMESPACE: &str = "kubestellar-report";

/// The label holding the workload object's API group (not version).
pub const LABEL_API_GROUP: &str = "status.kubestellar.io/api-group";
/// The label holding the workload object's resource (lowercase plural).
pub const LABEL_RESOURCE: &str = "status.kubestellar.io/resource";
/// The label holding the workload object's namespace.
pub const LABEL_NAMESPACE: &str = "status.kubestellar.io/namespace";
/// The label holding the workload object's name.
pub const LABEL_NAME: &str = "status.kubestellar.io/name";
/// The label holding the BindingPolicy's name.
pub const LABEL_BINDING_POLICY: &str = "status.kubestellar.io/binding-policy";
/// The five labels every CombinedStatus carries (and no other).
pub const LABELS: [&str; 5] = [
    LABEL_API_GROUP,
    LABEL_RESOURCE,
    LABEL_NAMESPACE,
    LABEL_NAME,
    LABEL_BINDING_POLICY,
];

/// The combined status from the WECs for one (workload object, BindingPolicy) pair.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CombinedStatus {
    /// `control.kubestellar.io/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// `CombinedStatus`.
    #[serde(default)]
    pub kind: String,
    /// Name, namespace, the five labels, the owner reference to the workload object.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// One entry per applicable StatusCollector, sorted by its name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<NamedStatusCombination>,
}

/// The schema of a CombinedStatus's own fields (`results`), for its CRD.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub(crate) struct CombinedStatusFields {
    /// `results` has an entry for every applicable StatusCollector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<NamedStatusCombination>,
}

impl kube::Resource for CombinedStatus {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "CombinedStatus".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        crate::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "combinedstatuses".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The rows that come from evaluating one StatusCollector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedStatusCombination {
    /// The StatusCollector's name.
    pub name: String,
    /// The columns' names: the `select` names, or the `groupBy` then `combinedFields`
    /// names.
    pub column_names: Vec<String>,
    /// The rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<StatusCombinationRow>,
    /// Errors evaluating expressions, at least one per column that had one; rows with
    /// errors are left out of aggregations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_errors: Vec<RowEvaluationError>,
    /// Errors applying the aggregations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregation_errors: Vec<ErrorInColumn>,
}

/// One row of a result.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StatusCombinationRow {
    /// One value per column.
    pub columns: Vec<Value>,
}

/// A JSON value, as a union: `type` says which of the other fields holds it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Value {
    /// `String`, `Number`, `Bool`, `Null`, `Object` or `Array`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A `String`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    /// A `Number`, integer or floating-point, written as JSON writes it (the key is
    /// `float`, as in KubeStellar's API).
    #[serde(default, rename = "float", skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// A `Bool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bool: Option<bool>,
    /// An `Object` (any JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_schema")]
    pub object: Option<Json>,
    /// An `Array` (any JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_schema")]
    pub array: Option<Json>,
}

/// An error specific to a WEC and a column.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowEvaluationError {
    /// The WEC.
    pub wec: Destination,
    /// The column (`""` for the filter expression).
    pub column_name: String,
    /// The error.
    pub error: String,
}

/// An error specific to a column.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInColumn {
    /// The column.
    pub column_name: String,
    /// The error.
    pub error: String,
}
