//! Watcher events → watch-log [`WatchEvent`]s: pure mapping functions.
//!
//! | kube-runtime `watcher::Event` | watch log |
//! | --- | --- |
//! | `Init` | `RESET` |
//! | `InitApply(obj)` | `ADDED` |
//! | `InitDone` | `SYNCED` |
//! | `Apply(obj)` | `MODIFIED` |
//! | `Delete(obj)` | `DELETED` |
//!
//! The recorded `object` is trimmed to what the engine reads (`docs/watch-log.md`):
//! `apiVersion`, `kind` and `metadata` with `name`, `namespace`, `uid`,
//! `resourceVersion`, `generation`, `labels` and `deletionTimestamp` (each only when
//! set), plus `spec` for BindingPolicies and `spec.sourceRef` and `status` for
//! WorkStatuses. Nothing else is kept: no annotations, no managedFields, no Secret data.

use std::time::{SystemTime, UNIX_EPOCH};

use kube::core::{ApiResource, DynamicObject, ObjectMeta, PartialObjectMeta};
use kube::runtime::watcher::Event;
use serde_json::{Map, Value};

use super::target::{ObjectShape, WatchTarget};
use crate::watchlog::{EventType, ResourceRef, WatchEvent};

/// The watch-log event type of a watcher event (see the module table).
pub fn event_type<K>(event: &Event<K>) -> EventType {
    match event {
        Event::Init => EventType::Reset,
        Event::InitApply(_) => EventType::Added,
        Event::InitDone => EventType::Synced,
        Event::Apply(_) => EventType::Modified,
        Event::Delete(_) => EventType::Deleted,
    }
}

/// Maps one watcher event of `resource` to a watch-log event received at `ts` (Unix
/// ms); `render` turns the event's object (if any) into the recorded JSON.
pub fn to_event<K>(
    resource: &ResourceRef,
    event: Event<K>,
    ts: i64,
    render: impl FnOnce(K) -> Value,
) -> WatchEvent {
    let event_type = event_type(&event);
    let object = match event {
        Event::InitApply(obj) | Event::Apply(obj) | Event::Delete(obj) => Some(render(obj)),
        Event::Init | Event::InitDone => None,
    };
    WatchEvent {
        ts,
        resource: resource.clone(),
        event_type,
        object,
    }
}

/// Maps an event of a metadata-only watch of `target`.
pub fn metadata_event(
    target: &WatchTarget,
    event: Event<PartialObjectMeta<DynamicObject>>,
    ts: i64,
) -> WatchEvent {
    to_event(&target.resource, event, ts, |obj| {
        trimmed_object(&target.api_resource, &obj.metadata, [])
    })
}

/// Maps an event of a full-object watch of `target`: the trimmed metadata, plus what
/// the target's shape keeps of the body ([`body_fields`]).
pub fn full_event(target: &WatchTarget, event: Event<DynamicObject>, ts: i64) -> WatchEvent {
    to_event(&target.resource, event, ts, |mut obj| {
        let fields = body_fields(target.shape, &mut obj.data);
        let mut object = trimmed_object(&target.api_resource, &obj.metadata, fields);
        if target.shape == ObjectShape::WorkStatus
            && let Some(entry) = last_status_write(&obj.metadata)
        {
            object["metadata"]["managedFields"] = Value::Array(vec![entry]);
        }
        object
    })
}

/// Of a WorkStatus's `managedFields`, the latest entry that writes `status`, reduced to
/// `{"time", "fieldsV1": {"f:status": {}}}`: what a collector's
/// `propagation.lastReturnedUpdateTimestamp` reads.
fn last_status_write(meta: &ObjectMeta) -> Option<Value> {
    let time = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| {
            entry
                .fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:status").is_some())
        })
        .filter_map(|entry| entry.time.as_ref())
        .map(|t| t.0.to_string())
        .max()?;
    Some(serde_json::json!({"time": time, "fieldsV1": {"f:status": {}}}))
}

/// What `shape` records of an object's body (`data`, taken from it), each field only
/// when the object has it: nothing for [`ObjectShape::Metadata`]; `spec` for
/// [`ObjectShape::MetadataAndSpec`]; `spec` holding only `sourceRef`, and `status`, for
/// [`ObjectShape::WorkStatus`].
pub fn body_fields(shape: ObjectShape, data: &mut Value) -> Vec<(&'static str, Value)> {
    let mut take = |key: &str| data.get_mut(key).map(Value::take).filter(|v| !v.is_null());
    match shape {
        ObjectShape::Metadata => Vec::new(),
        ObjectShape::MetadataAndSpec => take("spec").map(|s| ("spec", s)).into_iter().collect(),
        ObjectShape::WorkStatus => {
            let source_ref = take("spec")
                .and_then(|mut spec| spec.get_mut("sourceRef").map(Value::take))
                .filter(|r| !r.is_null());
            let spec = source_ref.map(|r| {
                let mut spec = Map::new();
                spec.insert("sourceRef".into(), r);
                ("spec", Value::Object(spec))
            });
            let status = take("status").map(|s| ("status", s));
            spec.into_iter().chain(status).collect()
        }
    }
}

/// The recorded form of an object: `apiVersion` and `kind` from `api_resource` (a
/// metadata-only response carries `meta.k8s.io/v1 PartialObjectMetadata` instead, and
/// list items may carry none), [`trimmed_metadata`], then `fields` in order.
pub fn trimmed_object(
    api_resource: &ApiResource,
    meta: &ObjectMeta,
    fields: impl IntoIterator<Item = (&'static str, Value)>,
) -> Value {
    let mut object = Map::new();
    object.insert(
        "apiVersion".into(),
        Value::String(api_resource.api_version.clone()),
    );
    object.insert("kind".into(), Value::String(api_resource.kind.clone()));
    object.insert("metadata".into(), trimmed_metadata(meta));
    for (key, value) in fields {
        object.insert(key.into(), value);
    }
    Value::Object(object)
}

/// The metadata fields the engine reads, each only when set (labels only when
/// non-empty): `name`, `namespace`, `uid`, `resourceVersion`, `generation`, `labels`,
/// `deletionTimestamp`.
pub fn trimmed_metadata(meta: &ObjectMeta) -> Value {
    let mut out = Map::new();
    let strings = [
        ("name", &meta.name),
        ("namespace", &meta.namespace),
        ("uid", &meta.uid),
        ("resourceVersion", &meta.resource_version),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            out.insert(key.into(), Value::String(value.clone()));
        }
    }
    if let Some(generation) = meta.generation {
        out.insert("generation".into(), Value::from(generation));
    }
    if let Some(labels) = meta.labels.as_ref().filter(|l| !l.is_empty()) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        out.insert("labels".into(), Value::Object(labels));
    }
    if let Some(time) = &meta.deletion_timestamp {
        let time = serde_json::to_value(time).unwrap_or_else(|_| Value::String(time.0.to_string()));
        out.insert("deletionTimestamp".into(), time);
    }
    Value::Object(out)
}

/// A synthetic `RESET` or `SYNCED` of `resource` (events without an object).
pub fn marker_event(resource: &ResourceRef, event_type: EventType, ts: i64) -> WatchEvent {
    debug_assert!(!event_type.has_object(), "{event_type} needs an object");
    WatchEvent {
        ts,
        resource: resource.clone(),
        event_type,
        object: None,
    }
}

/// Now, in Unix epoch milliseconds (the events' `ts`).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
    use serde_json::json;

    use super::*;
    use crate::watchlog::Space;

    fn deployments() -> WatchTarget {
        WatchTarget::new(
            Space::Wds,
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            ObjectShape::Metadata,
        )
    }

    /// Metadata with everything the server may send, wanted or not.
    fn full_meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("nginx".into()),
            namespace: Some("web".into()),
            uid: Some("u1".into()),
            resource_version: Some("42".into()),
            generation: Some(3),
            labels: Some(BTreeMap::from([("app".into(), "nginx".into())])),
            annotations: Some(BTreeMap::from([(
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "{\"secret\":\"x\"}".into(),
            )])),
            managed_fields: Some(vec![ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                ..Default::default()
            }]),
            finalizers: Some(vec!["f".into()]),
            owner_references: Some(vec![]),
            deletion_timestamp: Some(Time("2026-01-02T03:04:05Z".parse().unwrap())),
            ..Default::default()
        }
    }

    fn partial(meta: ObjectMeta) -> PartialObjectMeta<DynamicObject> {
        PartialObjectMeta {
            // What a metadata-only response says, which must not be recorded.
            types: Some(kube::core::TypeMeta {
                api_version: "meta.k8s.io/v1".into(),
                kind: "PartialObjectMetadata".into(),
            }),
            metadata: meta,
            _phantom: Default::default(),
        }
    }

    #[test]
    fn event_types_follow_the_table() {
        let t = deployments();
        let obj = || partial(full_meta());
        let cases = [
            (Event::Init, EventType::Reset, false),
            (Event::InitApply(obj()), EventType::Added, true),
            (Event::InitDone, EventType::Synced, false),
            (Event::Apply(obj()), EventType::Modified, true),
            (Event::Delete(obj()), EventType::Deleted, true),
        ];
        for (event, want, has_object) in cases {
            let e = metadata_event(&t, event, 1234);
            assert_eq!(e.event_type, want);
            assert_eq!(e.object.is_some(), has_object, "{want}");
            assert_eq!(e.ts, 1234);
            assert_eq!(e.resource, t.resource);
        }
    }

    #[test]
    fn metadata_watch_records_only_the_trimmed_metadata() {
        let e = metadata_event(&deployments(), Event::Apply(partial(full_meta())), 1);
        let object = e.object.unwrap();
        assert_eq!(
            object,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "nginx",
                    "namespace": "web",
                    "uid": "u1",
                    "resourceVersion": "42",
                    "generation": 3,
                    "labels": {"app": "nginx"},
                    "deletionTimestamp": "2026-01-02T03:04:05Z"
                }
            })
        );
        // Key order is the documented one.
        let keys: Vec<&str> = object["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "labels",
                "deletionTimestamp"
            ]
        );
        let text = object.to_string();
        for unwanted in [
            "annotations",
            "managedFields",
            "finalizers",
            "ownerReferences",
            "secret",
        ] {
            assert!(!text.contains(unwanted), "{unwanted} leaked: {text}");
        }
    }

    #[test]
    fn unset_fields_are_omitted() {
        let meta = ObjectMeta {
            name: Some("c1".into()),
            uid: Some("u".into()),
            resource_version: Some("1".into()),
            labels: Some(BTreeMap::new()),
            ..Default::default()
        };
        let e = metadata_event(
            &WatchTarget::managed_clusters(),
            Event::InitApply(partial(meta)),
            1,
        );
        assert_eq!(
            e.object.unwrap(),
            json!({
                "apiVersion": "cluster.open-cluster-management.io/v1",
                "kind": "ManagedCluster",
                "metadata": {"name": "c1", "uid": "u", "resourceVersion": "1"}
            })
        );
    }

    fn policy(data: Value) -> DynamicObject {
        DynamicObject {
            types: None,
            metadata: full_meta(),
            data,
        }
    }

    #[test]
    fn policies_keep_spec_and_nothing_else() {
        let spec = json!({"clusterSelectors": [{"matchLabels": {"a": "b"}}], "downsync": []});
        let obj =
            policy(json!({"spec": spec.clone(), "status": {"errors": ["x"]}, "data": {"k": "v"}}));
        let e = full_event(&WatchTarget::binding_policies(), Event::Apply(obj), 5);
        let object = e.object.unwrap();
        assert_eq!(object["apiVersion"], "control.kubestellar.io/v1alpha1");
        assert_eq!(object["kind"], "BindingPolicy");
        assert_eq!(object["spec"], spec);
        assert_eq!(
            object.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["apiVersion", "kind", "metadata", "spec"]
        );
        let meta = object["metadata"].as_object().unwrap();
        assert!(!meta.contains_key("annotations") && !meta.contains_key("managedFields"));
        assert_eq!(meta["generation"], 3);
    }

    #[test]
    fn a_policy_without_spec_has_no_spec_key() {
        let e = full_event(
            &WatchTarget::binding_policies(),
            Event::Delete(policy(json!({}))),
            5,
        );
        assert_eq!(e.event_type, EventType::Deleted);
        assert!(e.object.unwrap().get("spec").is_none());
    }

    #[test]
    fn full_watches_of_metadata_targets_drop_the_spec() {
        let obj = policy(json!({"spec": {"replicas": 1}, "data": {"password": "x"}}));
        let e = full_event(&deployments(), Event::InitApply(obj), 5);
        let object = e.object.unwrap();
        assert!(object.get("spec").is_none() && object.get("data").is_none());
    }

    fn work_status(data: Value) -> DynamicObject {
        let mut meta = full_meta();
        meta.namespace = Some("cluster1".into());
        meta.labels = Some(BTreeMap::from([(
            "transport.kubestellar.io/originWdsName".into(),
            "wds1".into(),
        )]));
        DynamicObject {
            types: None,
            metadata: meta,
            data,
        }
    }

    #[test]
    fn work_statuses_keep_the_source_ref_and_the_status_and_nothing_else() {
        let source_ref = json!({"group": "apps", "version": "v1", "resource": "deployments",
                                "kind": "Deployment", "namespace": "web", "name": "nginx"});
        let status =
            json!({"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]});
        let obj = work_status(json!({
            "spec": {"sourceRef": source_ref.clone(), "other": "dropped"},
            "status": status.clone(),
            "statusDetails": {"lastGeneration": 4},
        }));
        let ws = WatchTarget::work_statuses("wds1");
        let e = full_event(&ws, Event::Apply(obj), 5);
        assert_eq!(e.resource, ws.resource);
        let object = e.object.unwrap();
        assert_eq!(
            object,
            json!({
                "apiVersion": "control.kubestellar.io/v1alpha1",
                "kind": "WorkStatus",
                "metadata": {
                    "name": "nginx",
                    "namespace": "cluster1",
                    "uid": "u1",
                    "resourceVersion": "42",
                    "generation": 3,
                    "labels": {"transport.kubestellar.io/originWdsName": "wds1"},
                    "deletionTimestamp": "2026-01-02T03:04:05Z"
                },
                "spec": {"sourceRef": source_ref},
                "status": status
            })
        );
        assert_eq!(
            object.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["apiVersion", "kind", "metadata", "spec", "status"]
        );
        // What the engine reads of it.
        let change = crate::feed::to_change(&crate::relist::StateChange::Upsert {
            resource: ws.resource.clone(),
            object,
        })
        .unwrap();
        assert!(
            matches!(&change, Some(bindery_engine::Change::WorkStatus { wec, report: Some(r), .. })
                if wec == "cluster1" && r.object.name == "nginx" && r.status.is_some()),
            "{change:?}"
        );
    }

    #[test]
    fn a_work_status_without_status_or_source_ref_has_no_such_key() {
        let ws = WatchTarget::work_statuses("wds1");
        let only_ref = work_status(
            json!({"spec": {"sourceRef": {"group": "", "namespace": ""}},
                                          "status": null}),
        );
        let object = full_event(&ws, Event::InitApply(only_ref), 5)
            .object
            .unwrap();
        assert_eq!(
            object.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["apiVersion", "kind", "metadata", "spec"]
        );
        let bare = work_status(json!({"spec": {"other": 1}}));
        let object = full_event(&ws, Event::Delete(bare), 5).object.unwrap();
        assert_eq!(
            object.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["apiVersion", "kind", "metadata"]
        );
    }

    #[test]
    fn markers_and_clock() {
        let t = deployments();
        let e = marker_event(&t.resource, EventType::Reset, 7);
        assert_eq!((e.event_type, e.object, e.ts), (EventType::Reset, None, 7));
        // After 2020-01-01 and a sane number of digits.
        assert!(now_ms() > 1_577_836_800_000);
    }

    #[test]
    fn recorded_events_round_trip_through_the_log_format() {
        let e = metadata_event(&deployments(), Event::Apply(partial(full_meta())), 9);
        let line = serde_json::to_string(&e).unwrap();
        let back: WatchEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }
}
