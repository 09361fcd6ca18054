//! KubeStellar's API objects as Rust types, and the CustomResourceDefinitions generated
//! from them.
//!
//! - [`binding_policy`]: [`BindingPolicy`] (`control.kubestellar.io/v1alpha1`), what a user
//!   writes: which WECs get which workload objects, and how they are downsynced.
//! - [`binding`]: [`Binding`], the resolution of one policy (same name): exactly which
//!   objects go to which WECs.
//! - [`condition`]: the conditions of both (`Ready`, `Synced`), KubeStellar's condition
//!   type and the reasons Bindery writes.
//! - [`status_collector`]: [`StatusCollector`], a query collecting a workload object's
//!   status over the WECs it goes to; [`combined_status`]: [`CombinedStatus`], its
//!   results per (workload object, BindingPolicy).
//! - [`custom_transform`]: [`CustomTransform`] (the transport reads it; Bindery installs its
//!   CRD).
//! - [`managed_cluster`]: [`ManagedCluster`] (`cluster.open-cluster-management.io/v1`), a
//!   permissive stand-in for OCM's inventory type, so that a test API server can hold WECs;
//!   [`work_status`]: [`WorkStatus`], a stand-in for the OCM status add-on's report of one
//!   object in one WEC.
//! - [`crd`]: KubeStellar's five CRDs (`bindery crds`) and the test ITS's two, in the form
//!   controller-gen gives KubeStellar's own.
//!
//! The types are shaped like KubeStellar's CRDs (`config/crd/bases` plus the extra
//! validations its kustomization patches in): the same fields, required fields, list types
//! and list-map keys, label pattern validations on `clusterSelectors`, the "at least one
//! test" rule on downsync clauses, printer columns, short names, scope and status
//! subresource.

#![warn(missing_docs)]

pub mod binding;
pub mod binding_policy;
pub mod combined_status;
pub mod condition;
pub mod crd;
pub mod custom_transform;
pub mod managed_cluster;
mod schema;
pub mod status_collector;
pub mod work_status;

pub use binding::{
    Binding, BindingSpec, BindingStatus, ClusterScopeDownsyncClause, Destination,
    DownsyncObjectClauses, NamespaceScopeDownsyncClause,
};
pub use binding_policy::{
    BindingPolicy, BindingPolicySpec, BindingPolicyStatus, DownsyncModulation, DownsyncObjectTest,
    DownsyncPolicyClause,
};
pub use combined_status::{
    CombinedStatus, ErrorInColumn, NamedStatusCombination, REPORT_NAMESPACE, RowEvaluationError,
    StatusCombinationRow, Value,
};
pub use condition::BindingPolicyCondition;
pub use crd::{crds, its_crds, to_yaml};
pub use custom_transform::{CustomTransform, CustomTransformSpec, CustomTransformStatus};
pub use managed_cluster::{ClientConfig, ManagedCluster, ManagedClusterSpec, ManagedClusterStatus};
pub use schema::{LABEL_KEY_PATTERN, LABEL_OPERATOR_PATTERN, LABEL_VALUE_PATTERN};
pub use status_collector::{
    NamedAggregator, NamedExpression, StatusCollector, StatusCollectorSpec, StatusCollectorStatus,
};
pub use work_status::{SourceRef, WorkStatus, WorkStatusSpec};

/// KubeStellar's API group.
pub const GROUP: &str = "control.kubestellar.io";
/// `apiVersion` of KubeStellar's objects: `control.kubestellar.io/v1alpha1`.
pub const API_VERSION: &str = "control.kubestellar.io/v1alpha1";

fn is_false(b: &bool) -> bool {
    !*b
}
