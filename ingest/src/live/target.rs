//! What one watch covers: [`WatchTarget`], the fixed targets every live run has, and
//! the ITS's WorkStatuses of one WDS.

use kube::core::ApiResource;

use crate::feed::{
    INVENTORY_GROUP, INVENTORY_RESOURCE, POLICY_GROUP, POLICY_RESOURCE, WORK_STATUS_GROUP,
    WORK_STATUS_RESOURCE,
};
use crate::watchlog::{ResourceRef, Space};

/// Version of ManagedClusters watched in the ITS.
pub const INVENTORY_VERSION: &str = "v1";
/// Version of BindingPolicies watched in the WDS.
pub const POLICY_VERSION: &str = "v1alpha1";
/// Version of WorkStatuses watched in the ITS (the only one KubeStellar serves).
pub const WORK_STATUS_VERSION: &str = "v1alpha1";
/// The label KubeStellar's transport puts on a ManifestWork, and its status add-on on
/// each WorkStatus: the name of the WDS the object came from.
pub const ORIGIN_WDS_LABEL: &str = "transport.kubestellar.io/originWdsName";

/// How much of each object a watch records in its events' `object`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectShape {
    /// `apiVersion`, `kind` and the trimmed `metadata` only, from a metadata-only
    /// watch (no object bodies cross the wire).
    Metadata,
    /// The trimmed metadata plus `spec`, from a full-object watch (BindingPolicies).
    MetadataAndSpec,
    /// The trimmed metadata plus `spec.sourceRef` (nothing else of `spec`) and the
    /// top-level `status`, from a full-object watch (WorkStatuses).
    WorkStatus,
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
    /// A server-side label selector of the watch (`None`: every object).
    pub label_selector: Option<String>,
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
            label_selector: None,
        }
    }

    /// This target, watching only the objects `selector` (a label selector) matches.
    pub fn with_label_selector(mut self, selector: impl Into<String>) -> WatchTarget {
        self.label_selector = Some(selector.into());
        self
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

    /// WorkStatuses (`control.kubestellar.io/v1alpha1`, namespaced) in the ITS, of the
    /// WDS named `wds_name` only (label `transport.kubestellar.io/originWdsName`), with
    /// their `spec.sourceRef` and `status`. `wds_name` must be a valid label value
    /// (else the selector matches nothing or is refused).
    pub fn work_statuses(wds_name: &str) -> WatchTarget {
        WatchTarget::new(
            Space::Its,
            WORK_STATUS_GROUP,
            WORK_STATUS_VERSION,
            WORK_STATUS_RESOURCE,
            "WorkStatus",
            true,
            ObjectShape::WorkStatus,
        )
        .with_label_selector(format!("{ORIGIN_WDS_LABEL}={wds_name}"))
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
    fn work_statuses_are_an_its_resource_of_one_wds() {
        let ws = WatchTarget::work_statuses("wds1");
        assert_eq!(classify(&ws.resource), ObjectKind::WorkStatus);
        assert_eq!(
            ws.resource.to_string(),
            "its:control.kubestellar.io/v1alpha1/workstatuses"
        );
        assert_eq!(ws.api_resource.kind, "WorkStatus");
        assert!(ws.namespaced);
        assert_eq!(ws.shape, ObjectShape::WorkStatus);
        assert_eq!(
            ws.label_selector.as_deref(),
            Some("transport.kubestellar.io/originWdsName=wds1")
        );
        // Another WDS's watch is the same resource, watched differently.
        let other = WatchTarget::work_statuses("wds2");
        assert_eq!(ws.key(), other.key());
        assert_ne!(ws, other);
        assert_eq!(WatchTarget::managed_clusters().label_selector, None);
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
