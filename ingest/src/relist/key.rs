//! A compact `(namespace, name)` object key.

use std::cmp::Ordering;

use serde_json::Value;

use super::RelistError;
use crate::watchlog::{EventType, ResourceRef};

/// An object's `(namespace, name)` in one allocation (`namespace` is `""` for
/// cluster-scoped objects). Ordered by namespace, then name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ObjKey {
    text: Box<str>,
    namespace_len: usize,
}

impl ObjKey {
    pub(crate) fn new(namespace: &str, name: &str) -> ObjKey {
        let mut text = String::with_capacity(namespace.len() + name.len());
        text.push_str(namespace);
        text.push_str(name);
        ObjKey {
            text: text.into_boxed_str(),
            namespace_len: namespace.len(),
        }
    }

    /// Takes the key from an event's object (`metadata.namespace`, `metadata.name`).
    pub(crate) fn of_object(
        resource: &ResourceRef,
        event_type: EventType,
        object: Option<&Value>,
    ) -> Result<ObjKey, RelistError> {
        let object = object.ok_or_else(|| RelistError::MissingObject {
            resource: resource.clone(),
            event_type,
        })?;
        let metadata = object.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| RelistError::MissingName {
                resource: resource.clone(),
            })?;
        let namespace = match metadata.and_then(|m| m.get("namespace")) {
            None | Some(Value::Null) => "",
            Some(Value::String(namespace)) => namespace,
            Some(_) => {
                return Err(RelistError::BadNamespace {
                    resource: resource.clone(),
                });
            }
        };
        Ok(ObjKey::new(namespace, name))
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.text[..self.namespace_len]
    }

    pub(crate) fn name(&self) -> &str {
        &self.text[self.namespace_len..]
    }
}

impl Ord for ObjKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.namespace(), self.name()).cmp(&(other.namespace(), other.name()))
    }
}

impl PartialOrd for ObjKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
