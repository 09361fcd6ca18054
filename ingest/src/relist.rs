//! Turning the raw watch event stream into state changes, following the watch log's
//! `RESET` ... `SYNCED` relist rules, and tracking which resources are synced.
//!
//! A `RESET` starts a relist of one resource; the `ADDED`/`MODIFIED` events up to its
//! next `SYNCED` are its complete state, and at that `SYNCED` every object that was
//! present at the `RESET` and was not relisted is deleted.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::watchlog::{EventType, ResourceRef, WatchEvent};

mod key;

use key::ObjKey;

/// A change to the state of the watched objects, as the engine applies it.
#[derive(Clone, Debug, PartialEq)]
pub enum StateChange {
    /// The object now exists in this state.
    Upsert {
        /// The object's resource.
        resource: ResourceRef,
        /// The object.
        object: Value,
    },
    /// The object no longer exists.
    Delete {
        /// The object's resource.
        resource: ResourceRef,
        /// The object's namespace, `""` for cluster-scoped objects.
        namespace: String,
        /// The object's name.
        name: String,
    },
    /// The (re)list of this resource is complete.
    Synced {
        /// The resource.
        resource: ResourceRef,
    },
}

/// An event the tracker cannot apply. The caller knows the line number.
#[derive(Debug, thiserror::Error)]
pub enum RelistError {
    /// An `ADDED`/`MODIFIED`/`DELETED` event without an object.
    #[error("{resource}: {event_type} event without an object")]
    MissingObject {
        /// The event's resource.
        resource: ResourceRef,
        /// The event's type.
        event_type: EventType,
    },
    /// The object has no (or an empty) `metadata.name`.
    #[error("{resource}: the object has no metadata.name")]
    MissingName {
        /// The event's resource.
        resource: ResourceRef,
    },
    /// The object's `metadata.namespace` is neither absent nor a string.
    #[error("{resource}: the object's metadata.namespace is not a string")]
    BadNamespace {
        /// The event's resource.
        resource: ResourceRef,
    },
}

/// What the tracker knows about one resource.
#[derive(Debug, Default)]
struct ResourceState {
    /// Present objects; during a relist, only those (re)listed or added since the
    /// `RESET` (the others are in `stale`).
    present: HashSet<ObjKey>,
    /// During a relist: objects present at the `RESET` and not relisted since.
    /// Each present key is in exactly one of `present` and `stale`.
    stale: Option<HashSet<ObjKey>>,
    /// A `SYNCED` was seen and no `RESET` since.
    synced: bool,
}

impl ResourceState {
    fn upsert(&mut self, key: ObjKey) {
        if let Some(stale) = &mut self.stale
            && let Some(key) = stale.take(&key)
        {
            self.present.insert(key);
            return;
        }
        self.present.insert(key);
    }

    fn remove(&mut self, key: &ObjKey) {
        if !self.present.remove(key)
            && let Some(stale) = &mut self.stale
        {
            stale.remove(key);
        }
    }

    fn begin_relist(&mut self) {
        let mut seen = std::mem::take(&mut self.present);
        self.stale = Some(match self.stale.take() {
            // A relist restarted: what the aborted one listed counts as present.
            Some(mut stale) => {
                if stale.len() < seen.len() {
                    std::mem::swap(&mut stale, &mut seen);
                }
                stale.extend(seen);
                stale
            }
            None => seen,
        });
        self.synced = false;
    }

    /// Ends a relist (if any); returns the objects it deleted, sorted.
    fn end_relist(&mut self) -> Vec<ObjKey> {
        self.synced = true;
        let mut gone: Vec<ObjKey> = self.stale.take().unwrap_or_default().into_iter().collect();
        gone.sort_unstable();
        gone
    }

    fn contains(&self, key: &ObjKey) -> bool {
        self.present.contains(key) || self.stale.as_ref().is_some_and(|s| s.contains(key))
    }

    fn len(&self) -> usize {
        self.present.len() + self.stale.as_ref().map_or(0, HashSet::len)
    }

    fn keys(&self) -> impl Iterator<Item = &ObjKey> {
        self.present.iter().chain(self.stale.iter().flatten())
    }
}

/// Tracks, per resource, the objects present and the relist in progress, and turns
/// watch events into [`StateChange`]s.
#[derive(Debug, Default)]
pub struct RelistTracker {
    resources: BTreeMap<ResourceRef, ResourceState>,
}

impl RelistTracker {
    /// A tracker that has seen no event.
    pub fn new() -> RelistTracker {
        RelistTracker::default()
    }

    /// Applies one event (cloning its object); see [`apply_owned`](Self::apply_owned).
    pub fn apply(&mut self, event: &WatchEvent) -> Result<Vec<StateChange>, RelistError> {
        self.apply_owned(event.clone())
    }

    /// Applies one event and returns the resulting state changes:
    /// - `ADDED`/`MODIFIED`: an `Upsert`;
    /// - `DELETED`: a `Delete` (also for an object that was not present);
    /// - `RESET`: nothing; a relist of the resource begins (restarts, if one was
    ///   in progress);
    /// - `SYNCED`: if a relist was in progress, a `Delete` per object present at the
    ///   `RESET` that was neither relisted nor deleted since, in `(namespace, name)`
    ///   order; then `Synced`.
    ///
    /// On error nothing changes.
    pub fn apply_owned(&mut self, event: WatchEvent) -> Result<Vec<StateChange>, RelistError> {
        let WatchEvent {
            resource,
            event_type,
            object,
            ..
        } = event;
        match event_type {
            EventType::Added | EventType::Modified | EventType::Deleted => {
                let key = ObjKey::of_object(&resource, event_type, object.as_ref())?;
                let state = self.state_mut(&resource);
                if event_type == EventType::Deleted {
                    state.remove(&key);
                    Ok(vec![StateChange::Delete {
                        resource,
                        namespace: key.namespace().to_owned(),
                        name: key.name().to_owned(),
                    }])
                } else {
                    state.upsert(key);
                    let object = object.expect("of_object checked it is there");
                    Ok(vec![StateChange::Upsert { resource, object }])
                }
            }
            EventType::Reset => {
                tracing::debug!(%resource, "relist begins");
                self.state_mut(&resource).begin_relist();
                Ok(Vec::new())
            }
            EventType::Synced => {
                let gone = self.state_mut(&resource).end_relist();
                if !gone.is_empty() {
                    tracing::debug!(%resource, deleted = gone.len(), "relist deleted objects");
                }
                let mut changes: Vec<StateChange> = gone
                    .iter()
                    .map(|key| StateChange::Delete {
                        resource: resource.clone(),
                        namespace: key.namespace().to_owned(),
                        name: key.name().to_owned(),
                    })
                    .collect();
                changes.push(StateChange::Synced { resource });
                Ok(changes)
            }
        }
    }

    /// Whether at least one resource is known and every known resource is synced
    /// (a `SYNCED` seen, and no `RESET` since).
    pub fn all_synced(&self) -> bool {
        !self.resources.is_empty() && self.resources.values().all(|s| s.synced)
    }

    /// The number of known resources (those seen in at least one event), synced or not.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// The known resources that are not synced, in order.
    pub fn unsynced(&self) -> Vec<ResourceRef> {
        self.resources
            .iter()
            .filter(|(_, state)| !state.synced)
            .map(|(resource, _)| resource.clone())
            .collect()
    }

    /// [`unsynced`](Self::unsynced), named for messages (`wds:apps/v1/deployments`).
    pub fn unsynced_names(&self) -> Vec<String> {
        self.unsynced().iter().map(ToString::to_string).collect()
    }

    /// The number of known resources that are synced.
    pub fn synced_count(&self) -> usize {
        self.resources.values().filter(|s| s.synced).count()
    }

    /// Whether a `SYNCED` was seen for `resource` and no `RESET` since.
    pub fn is_synced(&self, resource: &ResourceRef) -> bool {
        self.resources.get(resource).is_some_and(|s| s.synced)
    }

    /// Whether a relist of `resource` is in progress.
    pub fn is_relisting(&self, resource: &ResourceRef) -> bool {
        self.resources
            .get(resource)
            .is_some_and(|s| s.stale.is_some())
    }

    /// Whether the object `(namespace, name)` of `resource` is present.
    pub fn contains(&self, resource: &ResourceRef, namespace: &str, name: &str) -> bool {
        self.resources
            .get(resource)
            .is_some_and(|s| s.contains(&ObjKey::new(namespace, name)))
    }

    /// The number of objects present, over all resources.
    pub fn object_count(&self) -> usize {
        self.resources.values().map(ResourceState::len).sum()
    }

    /// The `(namespace, name)` of the objects of `resource` present, sorted.
    pub fn present_keys(&self, resource: &ResourceRef) -> Vec<(String, String)> {
        let mut keys: Vec<&ObjKey> = self
            .resources
            .get(resource)
            .map(|s| s.keys().collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys.into_iter()
            .map(|k| (k.namespace().to_owned(), k.name().to_owned()))
            .collect()
    }

    fn state_mut(&mut self, resource: &ResourceRef) -> &mut ResourceState {
        if !self.resources.contains_key(resource) {
            self.resources
                .insert(resource.clone(), ResourceState::default());
        }
        self.resources
            .get_mut(resource)
            .expect("inserted above if missing")
    }
}

#[cfg(test)]
mod tests;
