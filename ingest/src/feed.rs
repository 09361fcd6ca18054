//! Which watched objects are which, and how they become engine [`Change`]s: WECs from
//! the ITS's ManagedClusters, WorkStatuses from the ITS, BindingPolicies, and every
//! other non-excluded WDS object as workload (`docs/binding-semantics.md`,
//! `docs/status-semantics.md`, `docs/watch-log.md`).

use std::collections::BTreeMap;

use bindery_engine::{
    Change, CollectorInput, LabelMap, ObjectContent, ObjectKey, PolicyInput, PolicySpec,
    WorkStatusReport, WorkloadRef, WorkloadState,
};
use serde_json::Value;

use crate::relist::StateChange;
use crate::watchlog::{EventType, ResourceRef, Space};

/// API group of ManagedClusters (the inventory).
pub const INVENTORY_GROUP: &str = "cluster.open-cluster-management.io";
/// Resource of ManagedClusters.
pub const INVENTORY_RESOURCE: &str = "managedclusters";
/// API group of BindingPolicies and Bindings.
pub const POLICY_GROUP: &str = "control.kubestellar.io";
/// Resource of BindingPolicies.
pub const POLICY_RESOURCE: &str = "bindingpolicies";
/// API group of WorkStatuses (in the ITS).
pub const WORK_STATUS_GROUP: &str = "control.kubestellar.io";
/// Resource of WorkStatuses.
pub const WORK_STATUS_RESOURCE: &str = "workstatuses";
/// Resource of StatusCollectors (in the WDS, group `control.kubestellar.io`).
pub const COLLECTOR_RESOURCE: &str = "statuscollectors";
/// The watch log's resource (space `wds`, group `control.kubestellar.io`, version
/// `v1alpha1`) of the lines that tell Bindery's own status writes (no API server serves
/// it; a reader that predates it ignores the group).
pub const STATUS_WRITE_RESOURCE: &str = "binderystatuswrites";
/// The watch log's resource (like [`STATUS_WRITE_RESOURCE`]) of the lines that give the
/// content of a workload object Bindery fetched for a StatusCollector reading `obj`.
pub const CONTENT_RESOURCE: &str = "binderyobjectcontents";

/// API groups that are never workload.
pub const EXCLUDED_GROUPS: &[&str] = &[
    "flowcontrol.apiserver.k8s.io",
    "discovery.k8s.io",
    "apiregistration.k8s.io",
    "coordination.k8s.io",
    "control.kubestellar.io",
];

/// `(group, resource)` pairs that are never workload.
pub const EXCLUDED_RESOURCES: &[(&str, &str)] = &[
    ("", "events"),
    ("events.k8s.io", "events"),
    ("", "nodes"),
    ("storage.k8s.io", "csistoragecapacities"),
    ("storage.k8s.io", "csinodes"),
    ("", "endpoints"),
    ("control.kubestellar.io", "workstatuses"),
];

/// What a watched resource is to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// ManagedClusters in the ITS: the WECs.
    Inventory,
    /// BindingPolicies in the WDS.
    Policy,
    /// WorkStatuses in the ITS: the WECs' reports of the workload objects.
    WorkStatus,
    /// StatusCollectors in the WDS.
    Collector,
    /// Bindery's own status writes, as a live run records them: not a watched
    /// resource (no `RESET` or `SYNCED`), each line one write.
    StatusWrite,
    /// Workload objects' content, fetched for StatusCollectors that read `obj`, as a
    /// live run records it: like [`ObjectKind::StatusWrite`], each line one fetch.
    Content,
    /// Workload objects in the WDS.
    Workload,
    /// Excluded from the workload, or an ITS resource that is not inventory.
    Ignored,
}

/// True when WDS objects of `group`/`resource` are never workload.
pub fn is_excluded(group: &str, resource: &str) -> bool {
    EXCLUDED_GROUPS.contains(&group) || EXCLUDED_RESOURCES.contains(&(group, resource))
}

/// Classifies a watched resource.
pub fn classify(resource: &ResourceRef) -> ObjectKind {
    let (group, name) = (resource.group.as_str(), resource.resource.as_str());
    match resource.space {
        Space::Its if group == INVENTORY_GROUP && name == INVENTORY_RESOURCE => {
            ObjectKind::Inventory
        }
        Space::Its if group == WORK_STATUS_GROUP && name == WORK_STATUS_RESOURCE => {
            ObjectKind::WorkStatus
        }
        Space::Its => ObjectKind::Ignored,
        Space::Wds if group == POLICY_GROUP && name == POLICY_RESOURCE => ObjectKind::Policy,
        Space::Wds if group == POLICY_GROUP && name == COLLECTOR_RESOURCE => ObjectKind::Collector,
        Space::Wds if group == POLICY_GROUP && name == STATUS_WRITE_RESOURCE => {
            ObjectKind::StatusWrite
        }
        Space::Wds if group == POLICY_GROUP && name == CONTENT_RESOURCE => ObjectKind::Content,
        Space::Wds if is_excluded(group, name) => ObjectKind::Ignored,
        Space::Wds => ObjectKind::Workload,
    }
}

/// An object whose metadata the engine cannot read.
#[derive(Debug, thiserror::Error)]
#[error("{resource} {name:?}: {reason}")]
pub struct FeedError {
    /// The object's resource (`space:group/version/resource`).
    pub resource: String,
    /// The object's name.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

/// Turns a tracked state change into the engine's [`Change`], if the engine cares.
pub fn to_change(change: &StateChange) -> Result<Option<Change>, FeedError> {
    match change {
        StateChange::Synced { .. } => Ok(None),
        StateChange::Delete {
            resource,
            namespace,
            name,
        } => Ok(match classify(resource) {
            ObjectKind::Inventory => Some(Change::Wec {
                name: name.clone(),
                labels: None,
            }),
            ObjectKind::Policy => Some(Change::Policy {
                name: name.clone(),
                policy: None,
            }),
            ObjectKind::Workload => Some(Change::Workload {
                object: workload_ref(resource, namespace, name),
                state: None,
            }),
            ObjectKind::WorkStatus => Some(Change::WorkStatus {
                wec: namespace.clone(),
                name: name.clone(),
                report: None,
            }),
            ObjectKind::Collector => Some(Change::Collector {
                name: name.clone(),
                collector: None,
            }),
            ObjectKind::StatusWrite | ObjectKind::Content | ObjectKind::Ignored => None,
        }),
        StateChange::Upsert { resource, object } => {
            let meta = Meta::read(resource, object)?;
            Ok(match classify(resource) {
                ObjectKind::Inventory => Some(Change::Wec {
                    name: meta.name,
                    labels: Some(meta.labels),
                }),
                ObjectKind::Policy => {
                    let policy = (!meta.deleting).then(|| PolicyInput {
                        uid: meta.uid,
                        generation: meta.generation,
                        spec: PolicySpec::parse(object.get("spec")),
                    });
                    Some(Change::Policy {
                        name: meta.name,
                        policy,
                    })
                }
                ObjectKind::Workload => Some(Change::Workload {
                    object: workload_ref(resource, &meta.namespace, &meta.name),
                    state: Some(WorkloadState {
                        labels: meta.labels,
                        resource_version: meta.resource_version,
                        uid: meta.uid,
                        kind: object
                            .get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    }),
                }),
                ObjectKind::WorkStatus => {
                    let report = work_status_report(resource, &meta, object)?;
                    Some(Change::WorkStatus {
                        wec: meta.namespace,
                        name: meta.name,
                        report: Some(report),
                    })
                }
                ObjectKind::Collector => Some(Change::Collector {
                    name: meta.name,
                    collector: (!meta.deleting).then(|| CollectorInput {
                        generation: meta.generation,
                        spec: object.get("spec").cloned().unwrap_or(Value::Null),
                    }),
                }),
                ObjectKind::StatusWrite | ObjectKind::Content | ObjectKind::Ignored => None,
            })
        }
    }
}

/// The change a status-write line tells: `object` is `{"metadata": {"name",
/// "namespace", "resourceVersion"}, "target": {"group", "resource"}}`, the workload
/// object Bindery wrote a status into and its `resourceVersion` after the write.
pub fn status_written(resource: &ResourceRef, object: &Value) -> Result<Change, FeedError> {
    let (meta, object_key) = line_target(resource, object)?;
    if meta.resource_version.is_empty() {
        return Err(FeedError {
            resource: resource.to_string(),
            name: meta.name,
            reason: "a status write names its object and resourceVersion in metadata".into(),
        });
    }
    Ok(Change::StatusWritten {
        object: object_key,
        resource_version: meta.resource_version,
    })
}

/// The line that records a status write (what [`status_written`] reads): the object
/// `object` (group, resource, namespace, name) is at `resource_version` after it.
pub fn status_write_object(object: &ObjectKey, resource_version: &str) -> Value {
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".into(), Value::from(object.name.as_str()));
    if !object.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::from(object.namespace.as_str()));
    }
    metadata.insert("resourceVersion".into(), Value::from(resource_version));
    serde_json::json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": "BinderyStatusWrite",
        "metadata": metadata,
        "target": {"group": object.group, "resource": object.resource},
    })
}

/// The object a [`CONTENT_RESOURCE`] line names: `metadata.name` and `namespace`, and
/// `target.group` and `target.resource`.
fn line_target(resource: &ResourceRef, object: &Value) -> Result<(Meta, ObjectKey), FeedError> {
    let meta = Meta::read(resource, object)?;
    let fail = |reason: String| FeedError {
        resource: resource.to_string(),
        name: meta.name.clone(),
        reason,
    };
    let target = |key: &str| -> Result<String, FeedError> {
        match object.get("target").and_then(|t| t.get(key)) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) if key == "group" => Ok(String::new()),
            other => Err(fail(format!(
                "target.{key} must be a string, got {}",
                other.map_or("nothing".to_string(), Value::to_string)
            ))),
        }
    };
    if meta.name.is_empty() {
        return Err(fail("a line names its object in metadata.name".into()));
    }
    let key = ObjectKey {
        group: target("group")?,
        resource: target("resource")?,
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
    };
    Ok((meta, key))
}

/// The change a [`CONTENT_RESOURCE`] line gives: the object's content (`content`, at
/// `metadata.resourceVersion`), or, for a `DELETED` line, that it was not found.
pub fn object_content(
    resource: &ResourceRef,
    event_type: EventType,
    object: &Value,
) -> Result<Change, FeedError> {
    let (meta, key) = line_target(resource, object)?;
    if event_type == EventType::Deleted {
        return Ok(Change::Content {
            object: key,
            content: None,
        });
    }
    match object.get("content") {
        Some(content @ Value::Object(_)) if !meta.resource_version.is_empty() => {
            Ok(Change::Content {
                object: key,
                content: Some(ObjectContent {
                    resource_version: meta.resource_version,
                    object: content.clone(),
                }),
            })
        }
        _ => Err(FeedError {
            resource: resource.to_string(),
            name: meta.name,
            reason: "a content line carries metadata.resourceVersion and the object as `content`"
                .into(),
        }),
    }
}

/// The line that records a fetched object (what [`object_content`] reads), and its
/// event type: `MODIFIED` with `content` at its `resourceVersion`, or `DELETED` when it
/// was not found.
pub fn object_content_line(
    object: &ObjectKey,
    content: Option<&ObjectContent>,
) -> (EventType, Value) {
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".into(), Value::from(object.name.as_str()));
    if !object.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::from(object.namespace.as_str()));
    }
    if let Some(c) = content {
        metadata.insert(
            "resourceVersion".into(),
            Value::from(c.resource_version.as_str()),
        );
    }
    let mut line = serde_json::json!({
        "apiVersion": "control.kubestellar.io/v1alpha1",
        "kind": "BinderyObjectContent",
        "metadata": metadata,
        "target": {"group": object.group, "resource": object.resource},
    });
    match content {
        Some(c) => {
            line["content"] = c.object.clone();
            (EventType::Modified, line)
        }
        None => (EventType::Deleted, line),
    }
}

/// Whether [`to_change`] can read `object`'s metadata (always, for an ignored
/// resource): the check an object held back during a relist gets when it arrives.
pub fn check_object(resource: &ResourceRef, object: &Value) -> Result<(), FeedError> {
    match classify(resource) {
        ObjectKind::Ignored => Ok(()),
        ObjectKind::StatusWrite => status_written(resource, object).map(drop),
        ObjectKind::Content => line_target(resource, object).map(drop),
        ObjectKind::WorkStatus => {
            let meta = Meta::read(resource, object)?;
            work_status_report(resource, &meta, object).map(drop)
        }
        _ => Meta::read(resource, object).map(drop),
    }
}

/// A WorkStatus's report: the object `spec.sourceRef` names (`group`, `resource`,
/// `namespace`, `name`; as the OCM status add-on writes it) and the top-level `status`.
/// Its namespace is its WEC's name, so it must have one.
fn work_status_report(
    resource: &ResourceRef,
    meta: &Meta,
    object: &Value,
) -> Result<WorkStatusReport, FeedError> {
    let fail = |reason: String| FeedError {
        resource: resource.to_string(),
        name: meta.name.clone(),
        reason,
    };
    if meta.namespace.is_empty() {
        return Err(fail(
            "a WorkStatus has a namespace (its WEC's name); this one has none".into(),
        ));
    }
    let source = object.get("spec").and_then(|s| s.get("sourceRef"));
    let field = |key: &str| -> Result<String, FeedError> {
        match source.and_then(|s| s.get(key)) {
            None | Some(Value::Null) if key == "group" || key == "namespace" => Ok(String::new()),
            Some(Value::String(s)) if !s.is_empty() || key == "group" || key == "namespace" => {
                Ok(s.clone())
            }
            None | Some(Value::Null) => Err(fail(format!("spec.sourceRef.{key} is missing"))),
            Some(other) => Err(fail(format!(
                "spec.sourceRef.{key} must be a non-empty string, got {other}"
            ))),
        }
    };
    let status = match object.get("status") {
        None | Some(Value::Null) => None,
        Some(status) => Some(status.clone()),
    };
    // KubeStellar's `lastReturnedUpdateTimestamp`: the latest time of a managedFields
    // entry that writes `status`.
    let last_update = object
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| {
            entry
                .get("fieldsV1")
                .is_some_and(|f| f.get("f:status").is_some())
        })
        .filter_map(|entry| entry.get("time").and_then(Value::as_str))
        .max()
        .map(str::to_string);
    Ok(WorkStatusReport {
        object: ObjectKey {
            group: field("group")?,
            resource: field("resource")?,
            namespace: field("namespace")?,
            name: field("name")?,
        },
        status,
        last_update,
    })
}

fn workload_ref(resource: &ResourceRef, namespace: &str, name: &str) -> WorkloadRef {
    WorkloadRef {
        group: resource.group.clone(),
        version: resource.version.clone(),
        resource: resource.resource.clone(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// The metadata fields the engine reads (a missing string empty, a missing generation
/// 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (empty: cluster-scoped).
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `metadata.labels`.
    pub labels: LabelMap,
    /// A `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl Meta {
    /// Reads the metadata of `object` (of `resource`, for errors): an error names a
    /// field of the wrong type.
    pub fn read(resource: &ResourceRef, object: &Value) -> Result<Meta, FeedError> {
        let meta = object.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let fail = |reason: String| FeedError {
            resource: resource.to_string(),
            name: name.clone(),
            reason,
        };
        let string = |key: &str| -> Result<String, FeedError> {
            match meta.and_then(|m| m.get(key)) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(fail(format!(
                    "metadata.{key} must be a string, got {other}"
                ))),
            }
        };
        let namespace = string("namespace")?;
        let uid = string("uid")?;
        let resource_version = string("resourceVersion")?;
        let generation = match meta.and_then(|m| m.get("generation")) {
            None | Some(Value::Null) => 0,
            Some(g) => g
                .as_i64()
                .ok_or_else(|| fail(format!("metadata.generation must be an integer, got {g}")))?,
        };
        let labels = match meta.and_then(|m| m.get("labels")) {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(fail(format!(
                        "metadata.labels[{k:?}] must be a string, got {other}"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(fail(format!(
                    "metadata.labels must be an object, got {other}"
                )));
            }
        };
        let deleting = meta
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|t| !t.is_null());
        Ok(Meta {
            name,
            namespace,
            uid,
            resource_version,
            generation,
            labels,
            deleting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wds(group: &str, resource: &str) -> ResourceRef {
        ResourceRef::new(Space::Wds, group, "v1", resource)
    }

    #[test]
    fn classification_follows_the_spec() {
        assert_eq!(
            classify(&ResourceRef::new(
                Space::Its,
                INVENTORY_GROUP,
                "v1",
                INVENTORY_RESOURCE
            )),
            ObjectKind::Inventory
        );
        assert_eq!(
            classify(&ResourceRef::new(Space::Its, "", "v1", "configmaps")),
            ObjectKind::Ignored
        );
        assert_eq!(
            classify(&wds(POLICY_GROUP, POLICY_RESOURCE)),
            ObjectKind::Policy
        );
        assert_eq!(classify(&wds("", "namespaces")), ObjectKind::Workload);
        assert_eq!(
            classify(&wds("example.com", "widgets")),
            ObjectKind::Workload
        );
        for (g, r) in [
            ("", "events"),
            ("", "nodes"),
            ("", "endpoints"),
            ("coordination.k8s.io", "leases"),
            ("control.kubestellar.io", "bindings"),
        ] {
            assert_eq!(classify(&wds(g, r)), ObjectKind::Ignored, "{g}/{r}");
        }
        assert_eq!(
            classify(&ResourceRef::new(Space::Its, "", "v1", "events")),
            ObjectKind::Ignored
        );
    }

    #[test]
    fn policies_being_deleted_have_no_binding() {
        let object = json!({"metadata": {"name": "p", "uid": "u", "generation": 3, "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}});
        let change = to_change(&StateChange::Upsert {
            resource: wds(POLICY_GROUP, POLICY_RESOURCE),
            object,
        })
        .unwrap();
        assert_eq!(
            change,
            Some(Change::Policy {
                name: "p".into(),
                policy: None
            })
        );
    }

    #[test]
    fn workload_objects_keep_labels_and_resource_version() {
        let object = json!({"metadata": {"name": "d", "namespace": "ns", "resourceVersion": "7", "labels": {"a": "b"},
                            "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        let Some(Change::Workload {
            object,
            state: Some(state),
        }) = to_change(&StateChange::Upsert {
            resource: wds("apps", "deployments"),
            object,
        })
        .unwrap()
        else {
            panic!("not a workload change");
        };
        assert_eq!(
            (object.namespace.as_str(), object.name.as_str()),
            ("ns", "d")
        );
        assert_eq!(state.resource_version, "7");
        assert_eq!(state.labels.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn work_statuses_report_on_their_source_object() {
        let its = ResourceRef::new(
            Space::Its,
            WORK_STATUS_GROUP,
            "v1alpha1",
            WORK_STATUS_RESOURCE,
        );
        assert_eq!(classify(&its), ObjectKind::WorkStatus);
        let object = json!({"metadata": {"name": "w1", "namespace": "cluster1"},
            "spec": {"sourceRef": {"group": "apps", "version": "v1", "resource": "deployments",
                                   "kind": "Deployment", "namespace": "ns", "name": "d"}},
            "status": {"replicas": 2}});
        let change = to_change(&StateChange::Upsert {
            resource: its.clone(),
            object,
        })
        .unwrap();
        let Some(Change::WorkStatus {
            wec,
            name,
            report: Some(report),
        }) = change
        else {
            panic!("{change:?}")
        };
        assert_eq!((wec.as_str(), name.as_str()), ("cluster1", "w1"));
        assert_eq!(
            (
                report.object.group.as_str(),
                report.object.resource.as_str(),
                report.object.name.as_str()
            ),
            ("apps", "deployments", "d")
        );
        assert_eq!(report.status, Some(json!({"replicas": 2})));
        // A core, cluster-scoped object without status: group and namespace may be empty.
        let object = json!({"metadata": {"name": "w2", "namespace": "cluster1"},
            "spec": {"sourceRef": {"group": "", "resource": "namespaces", "name": "ns"}}});
        let Some(Change::WorkStatus {
            report: Some(report),
            ..
        }) = to_change(&StateChange::Upsert {
            resource: its.clone(),
            object,
        })
        .unwrap()
        else {
            panic!()
        };
        assert_eq!(report.status, None);
        // Deleted: no report.
        let gone = to_change(&StateChange::Delete {
            resource: its.clone(),
            namespace: "cluster1".into(),
            name: "w1".into(),
        })
        .unwrap();
        assert_eq!(
            gone,
            Some(Change::WorkStatus {
                wec: "cluster1".into(),
                name: "w1".into(),
                report: None
            })
        );
        // What a WorkStatus must have, named.
        for (object, reason) in [
            (
                json!({"metadata": {"name": "w"}, "spec": {"sourceRef": {"resource": "r", "name": "n"}}}),
                "a WorkStatus has a namespace (its WEC's name); this one has none",
            ),
            (
                json!({"metadata": {"name": "w", "namespace": "c"}}),
                "spec.sourceRef.resource is missing",
            ),
            (
                json!({"metadata": {"name": "w", "namespace": "c"}, "spec": {"sourceRef": {"resource": "r", "name": 3}}}),
                "spec.sourceRef.name must be a non-empty string, got 3",
            ),
        ] {
            let err = check_object(&its, &object).unwrap_err();
            assert_eq!(err.reason, reason);
        }
    }

    #[test]
    fn collectors_and_the_time_a_status_was_returned() {
        let collectors = wds(POLICY_GROUP, COLLECTOR_RESOURCE);
        assert_eq!(classify(&collectors), ObjectKind::Collector);
        let object = json!({"metadata": {"name": "sc", "generation": 3}, "spec": {"limit": 1}});
        let change = to_change(&StateChange::Upsert {
            resource: collectors.clone(),
            object,
        })
        .unwrap();
        assert_eq!(
            change,
            Some(Change::Collector {
                name: "sc".into(),
                collector: Some(CollectorInput {
                    generation: 3,
                    spec: json!({"limit": 1})
                })
            })
        );
        // The latest managedFields entry writing `status` (not the one writing `spec`).
        let its = ResourceRef::new(
            Space::Its,
            WORK_STATUS_GROUP,
            "v1alpha1",
            WORK_STATUS_RESOURCE,
        );
        let object = json!({"metadata": {"name": "w", "namespace": "c1", "managedFields": [
                {"manager": "a", "time": "2026-12-07T10:00:00Z", "fieldsV1": {"f:status": {}}},
                {"manager": "b", "time": "2026-12-07T11:00:00Z", "fieldsV1": {"f:spec": {}}},
                {"manager": "c", "time": "2026-12-07T10:30:00Z", "fieldsV1": {"f:status": {".": {}}}}]},
            "spec": {"sourceRef": {"resource": "configmaps", "name": "x"}}, "status": {}});
        let Some(Change::WorkStatus {
            report: Some(report),
            ..
        }) = to_change(&StateChange::Upsert {
            resource: its,
            object,
        })
        .unwrap()
        else {
            panic!()
        };
        assert_eq!(report.last_update.as_deref(), Some("2026-12-07T10:30:00Z"));
    }

    #[test]
    fn status_write_lines_round_trip() {
        let resource = wds(POLICY_GROUP, STATUS_WRITE_RESOURCE);
        assert_eq!(classify(&resource), ObjectKind::StatusWrite);
        let key = ObjectKey {
            group: "apps".into(),
            resource: "deployments".into(),
            namespace: "ns".into(),
            name: "d".into(),
        };
        let line = status_write_object(&key, "42");
        assert_eq!(
            status_written(&resource, &line).unwrap(),
            Change::StatusWritten {
                object: key,
                resource_version: "42".into()
            }
        );
        let line = json!({"metadata": {"name": "d"}, "target": {"resource": "deployments"}});
        let err = status_written(&resource, &line).unwrap_err();
        assert!(err.reason.contains("resourceVersion"), "{err}");
        let err = status_written(&resource, &json!({"metadata": {"name": "d"}})).unwrap_err();
        assert!(err.reason.contains("target.resource"), "{err}");
        // Other KubeStellar resources stay ignored.
        assert_eq!(
            classify(&wds(POLICY_GROUP, "bindings")),
            ObjectKind::Ignored
        );
    }

    #[test]
    fn content_lines_round_trip() {
        let resource = wds(POLICY_GROUP, CONTENT_RESOURCE);
        assert_eq!(classify(&resource), ObjectKind::Content);
        let key = ObjectKey {
            group: "".into(),
            resource: "configmaps".into(),
            namespace: "".into(),
            name: "c".into(),
        };
        let content = ObjectContent {
            resource_version: "7".into(),
            object: json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        };
        let (event_type, line) = object_content_line(&key, Some(&content));
        assert_eq!(event_type, EventType::Modified);
        assert_eq!(
            object_content(&resource, event_type, &line).unwrap(),
            Change::Content {
                object: key.clone(),
                content: Some(content)
            }
        );
        let (event_type, line) = object_content_line(&key, None);
        assert_eq!(event_type, EventType::Deleted);
        assert_eq!(
            object_content(&resource, event_type, &line).unwrap(),
            Change::Content {
                object: key,
                content: None
            }
        );
        let bad = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "target": {"resource": "configmaps"}, "content": 3});
        let err = object_content(&resource, EventType::Modified, &bad).unwrap_err();
        assert!(err.reason.contains("content"), "{err}");
        let err = object_content(
            &resource,
            EventType::Modified,
            &json!({"metadata": {"name": "c"}}),
        )
        .unwrap_err();
        assert!(err.reason.contains("target.resource"), "{err}");
    }

    #[test]
    fn bad_metadata_is_named() {
        let object = json!({"metadata": {"name": "d", "labels": {"a": 1}}});
        let err = to_change(&StateChange::Upsert {
            resource: wds("apps", "deployments"),
            object,
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "wds:apps/v1/deployments \"d\": metadata.labels[\"a\"] must be a string, got 1"
        );
    }
}
