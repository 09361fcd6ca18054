//! [`StatusCollector`]: one way to collect the status of a workload object from the WECs
//! it goes to, modelled on an SQL `SELECT` (`filter` the WHERE, `select` plain columns,
//! or `combinedFields` aggregated over groups of `groupBy`), in CEL expressions over
//! `inventory`, `obj`, `returned` and `propagation`. Policies name collectors in their
//! downsync clauses (`statusCollectors`); the results go into [`CombinedStatus`]
//! objects.
//!
//! [`CombinedStatus`]: crate::CombinedStatus

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The desired state of a StatusCollector: an SQL-like query over one row per WEC of a
/// workload object.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "control.kubestellar.io",
    version = "v1alpha1",
    kind = "StatusCollector",
    plural = "statuscollectors",
    singular = "statuscollector",
    shortname = "sc",
    status = "StatusCollectorStatus",
    derive = "PartialEq",
    doc = "StatusCollector defines one way to collect status about a given workload object from the set of WECs that it propagates to. This is modeled after an SQL SELECT statement that does aggregation."
)]
#[serde(rename_all = "camelCase")]
pub struct StatusCollectorSpec {
    /// `filter`, if given, is applied first: a CEL expression that must evaluate to a
    /// boolean or null. This is like the WHERE clause of an SQL SELECT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,

    /// `groupBy` says how to group the rows for aggregation; each expression must
    /// evaluate to an atomic value. It must be empty if `combinedFields` is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<NamedExpression>,

    /// `combinedFields` defines the aggregations to do, if any. It must be empty if
    /// `select` is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub combined_fields: Vec<NamedAggregator>,

    /// `select` defines named values to extract from each row. It must be empty when
    /// `combinedFields` is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<NamedExpression>,

    /// `limit` limits the number of rows returned (documented default 20).
    pub limit: i64,
}

/// A name paired with a CEL expression extracting a value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct NamedExpression {
    /// The column's name.
    pub name: String,
    /// The CEL expression.
    pub def: String,
}

/// A name paired with an aggregation: `COUNT` (no `subject`), or `SUM`, `AVG`, `MIN`,
/// `MAX` of the `subject` expression.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct NamedAggregator {
    /// The column's name.
    pub name: String,
    /// `COUNT`, `SUM`, `AVG`, `MIN` or `MAX` (not an enum in KubeStellar's CRD either: an
    /// unknown type is reported when aggregating).
    #[serde(rename = "type")]
    pub type_: String,
    /// The CEL expression aggregated (absent for `COUNT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The observed state of a StatusCollector: the problems of its spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCollectorStatus {
    /// The generation of the spec these errors are about.
    pub observed_generation: i64,
    /// What is wrong with the spec (an invalid collector collects nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}
