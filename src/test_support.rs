//! What the crate's unit tests share: the watched resources they feed events of.

use bindery_ingest::{ResourceRef, Space};

/// OCM's ManagedClusters in the ITS (the WECs).
pub(crate) fn wecs() -> ResourceRef {
    ResourceRef::new(
        Space::Its,
        "cluster.open-cluster-management.io",
        "v1",
        "managedclusters",
    )
}

/// BindingPolicies in the WDS.
pub(crate) fn policies() -> ResourceRef {
    ResourceRef::new(
        Space::Wds,
        "control.kubestellar.io",
        "v1alpha1",
        "bindingpolicies",
    )
}

/// ConfigMaps in the WDS.
pub(crate) fn configmaps() -> ResourceRef {
    ResourceRef::new(Space::Wds, "", "v1", "configmaps")
}
