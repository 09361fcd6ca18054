//! KubeStellar's API objects as Rust types, and the CustomResourceDefinitions generated
//! from them.
//!
//! - [`binding_policy`]: [`BindingPolicy`] (`control.kubestellar.io/v1alpha1`), what a user
//!   writes: which WECs get which workload objects, and how they are downsynced.
//! - [`binding`]: [`Binding`], the resolution of one policy (same name): exactly which
//!   objects go to which WECs.
//! - [`condition`]: the conditions of both (`Ready`, `Synced`), KubeStellar's condition
//!   type and the reasons Bindery writes.
//! - [`managed_cluster`]: [`ManagedCluster`] (`cluster.open-cluster-management.io/v1`), a
//!   permissive stand-in for OCM's inventory type, so that a test API server can hold WECs.
//! - [`crd`]: the three CRDs (`bindery crds`), in the form controller-gen gives
//!   KubeStellar's own.
//!
//! The types are shaped like KubeStellar's CRDs (`config/crd/bases` plus the extra
//! validations its kustomization patches in): the same fields, required fields, list types
//! and list-map keys, label pattern validations on `clusterSelectors`, the "at least one
//! test" rule on downsync clauses, printer columns, short names, scope and status
//! subresource.

#![warn(missing_docs)]

pub mod binding;
pub mod binding_policy;
pub mod condition;
pub mod crd;
pub mod managed_cluster;
mod schema;

pub use binding::{
    Binding, BindingSpec, BindingStatus, ClusterScopeDownsyncClause, Destination,
    DownsyncObjectClauses, NamespaceScopeDownsyncClause,
};
pub use binding_policy::{
    BindingPolicy, BindingPolicySpec, BindingPolicyStatus, DownsyncModulation, DownsyncObjectTest,
    DownsyncPolicyClause,
};
pub use condition::BindingPolicyCondition;
pub use crd::{crds, crds_yaml};
pub use managed_cluster::{ClientConfig, ManagedCluster, ManagedClusterSpec, ManagedClusterStatus};
pub use schema::{LABEL_KEY_PATTERN, LABEL_OPERATOR_PATTERN, LABEL_VALUE_PATTERN};

/// KubeStellar's API group.
pub const GROUP: &str = "control.kubestellar.io";
/// `apiVersion` of KubeStellar's objects: `control.kubestellar.io/v1alpha1`.
pub const API_VERSION: &str = "control.kubestellar.io/v1alpha1";

fn is_false(b: &bool) -> bool {
    !*b
}
