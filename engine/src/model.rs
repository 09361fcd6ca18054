//! The engine's input model, in interned form: what the dataflow knows of WECs,
//! workload objects and policies.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::intern::Sym;
use crate::labels::Labels;

/// Identifies a workload object in the dataflow. Assigned by the engine per
/// `(group, resource, namespace, name)`, so an object keeps its id across versions.
pub type ObjectId = u32;

/// The part of a workload object that selection depends on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// API group (`Sym::EMPTY` for core).
    pub group: Sym,
    /// Plural resource name.
    pub resource: Sym,
    /// Namespace (`Sym::EMPTY` for cluster-scoped objects).
    pub namespace: Sym,
    /// Name.
    pub name: Sym,
    /// Labels.
    pub labels: Labels,
}

impl ObjectRecord {
    /// True for objects of the core `namespaces` resource.
    pub fn is_namespace(&self, namespaces: Sym) -> bool {
        self.group == Sym::EMPTY && self.resource == namespaces
    }
}

/// What a Binding entry shows of an object besides selection: its identity, the
/// version it was seen in, and its `resourceVersion`. Kept apart from
/// [`ObjectRecord`] so a status-only update touches only this.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectVersion {
    /// API group.
    pub group: Sym,
    /// API version the object was seen in.
    pub version: Sym,
    /// Plural resource name.
    pub resource: Sym,
    /// Namespace (`Sym::EMPTY` when cluster-scoped).
    pub namespace: Sym,
    /// Name.
    pub name: Sym,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
}

/// A workload object's identity in the dataflow: `(group, resource, namespace, name)`.
pub type ObjectKey = (Sym, Sym, Sym, Sym);

/// A JSON value in a dataflow record: its compact text (what it is compared, hashed
/// and sent between processes as) and the parsed value, shared, so that records
/// copied through arrangements share one copy.
#[derive(Clone, Debug)]
pub struct Json(Arc<(String, Value)>);

impl Json {
    /// Wraps `value`.
    pub fn new(value: Value) -> Json {
        Json(Arc::new((value.to_string(), value)))
    }

    /// The value.
    pub fn value(&self) -> &Value {
        &self.0.1
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.0 == other.0.0
    }
}

impl Eq for Json {}

impl PartialOrd for Json {
    fn partial_cmp(&self, other: &Json) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Json {
    fn cmp(&self, other: &Json) -> std::cmp::Ordering {
        self.0.0.cmp(&other.0.0)
    }
}

impl std::hash::Hash for Json {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.0.hash(state)
    }
}

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.0)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        let text = String::deserialize(deserializer)?;
        let value = serde_json::from_str(&text).map_err(serde::de::Error::custom)?;
        Ok(Json(Arc::new((text, value))))
    }
}

/// A WorkStatus as the dataflow knows it, keyed by the object it reports on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkStatusRecord {
    /// The WEC (the WorkStatus's namespace).
    pub wec: Sym,
    /// The WorkStatus's name.
    pub name: Sym,
    /// Its `status`, if it has one.
    pub status: Option<Json>,
    /// When its `status` was last written (RFC 3339), if known.
    pub last_update: Option<String>,
}
