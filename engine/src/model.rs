//! The engine's input model, in interned form: what the dataflow knows of WECs,
//! workload objects and policies.

use serde::{Deserialize, Serialize};

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
