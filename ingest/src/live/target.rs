//! What one watch covers: [`WatchTarget`], and the fixed targets every live run has.

use kube::core::ApiResource;

use crate::feed::{INVENTORY_GROUP, INVENTORY_RESOURCE, POLICY_GROUP, POLICY_RESOURCE};
use crate::watchlog::{ResourceRef, Space};

/// Version of ManagedClusters watched in the ITS.
pub const INVENTORY_VERSION: &str = "v1";
/// Version of BindingPolicies watched in the WDS.
pub const POLICY_VERSION: &str = "v1alpha1";

/// How much of each object a watch records in its events' `object`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectShape {
    /// `apiVersion`, `kind` and the trimmed `metadata` only, from a metadata-only
    /// watch (no object bodies cross the wire).
    Metadata,
    /// The trimmed metadata plus `spec`, from a full-object watch (BindingPolicies).
    MetadataAndSpec,
}

/// One watched resource: its watch-log identity, how to reach it, and what to record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchTarget {
    /// The resource as the watch log names it (`space`, group, version, plural).
    pub resource: ResourceRef,
    /// The resource for kube's dynamic API (`Api::all_with`); its `api_version` and
    /// `kind` also fill the recorded objects' `apiVersion` and `kind`.
    pub api_resource: ApiResource,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// What the watch records of each object.
    pub shape: ObjectShape,
}

impl WatchTarget {
    /// A target for `group`/`version`/`plural` of kind `kind` in `space`.
    pub fn new(
        space: Space,
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        shape: ObjectShape,
    ) -> WatchTarget {
        let api_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        WatchTarget {
            resource: ResourceRef::new(space, group, version, plural),
            api_resource: ApiResource {
                group: group.to_owned(),
                version: version.to_owned(),
                api_version,
                kind: kind.to_owned(),
                plural: plural.to_owned(),
            },
            namespaced,
            shape,
        }
    }

    /// ManagedClusters (`cluster.open-cluster-management.io/v1`) in the ITS, metadata only.
    pub fn managed_clusters() -> WatchTarget {
        WatchTarget::new(
            Space::Its,
            INVENTORY_GROUP,
            INVENTORY_VERSION,
            INVENTORY_RESOURCE,
            "ManagedCluster",
            false,
            ObjectShape::Metadata,
        )
    }

    /// BindingPolicies (`control.kubestellar.io/v1alpha1`) in the WDS, with their `spec`.
    pub fn binding_policies() -> WatchTarget {
        WatchTarget::new(
            Space::Wds,
            POLICY_GROUP,
            POLICY_VERSION,
            POLICY_RESOURCE,
            "BindingPolicy",
            false,
            ObjectShape::MetadataAndSpec,
        )
    }

    /// The key a target is diffed by across discoveries: `(space, group, resource)`,
    /// without the version (a version change is a switch, not a new resource).
    pub fn key(&self) -> (Space, &str, &str) {
        (
            self.resource.space,
            self.resource.group.as_str(),
            self.resource.resource.as_str(),
        )
    }
}

/// The CRDs of the WDS (`apiextensions.k8s.io/v1`), watched (metadata only) to notice
/// resources appearing and vanishing. Not a [`WatchTarget`]: it produces no events.
pub(crate) fn crd_api_resource() -> ApiResource {
    ApiResource {
        group: "apiextensions.k8s.io".to_owned(),
        version: "v1".to_owned(),
        api_version: "apiextensions.k8s.io/v1".to_owned(),
        kind: "CustomResourceDefinition".to_owned(),
        plural: "customresourcedefinitions".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{ObjectKind, classify};

    #[test]
    fn fixed_targets_classify_as_inventory_and_policy() {
        let mc = WatchTarget::managed_clusters();
        assert_eq!(classify(&mc.resource), ObjectKind::Inventory);
        assert_eq!(
            mc.api_resource.api_version,
            "cluster.open-cluster-management.io/v1"
        );
        let bp = WatchTarget::binding_policies();
        assert_eq!(classify(&bp.resource), ObjectKind::Policy);
        assert_eq!(bp.shape, ObjectShape::MetadataAndSpec);
        assert_eq!(
            bp.api_resource.api_version,
            "control.kubestellar.io/v1alpha1"
        );
    }

    #[test]
    fn core_api_version_has_no_group() {
        let t = WatchTarget::new(
            Space::Wds,
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            ObjectShape::Metadata,
        );
        assert_eq!(t.api_resource.api_version, "v1");
        assert_eq!(t.key(), (Space::Wds, "", "namespaces"));
    }
}
