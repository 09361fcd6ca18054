//! Turning the raw watch event stream into state changes, following the watch log's
//! `RESET` ... `SYNCED` relist rules, and tracking which resources are synced.
//!
//! A `RESET` starts a relist of one resource (one version of it); the
//! `ADDED`/`MODIFIED` events up to its next `SYNCED` are its complete state, and at
//! that `SYNCED` every object last seen in that version and not relisted is deleted.
//!
//! Objects are keyed without their version (`(space, group, resource, namespace,
//! name)`, as the engine keys them), and each remembers the version it was last seen
//! in: a relist of `v1` deletes only objects last seen in `v1`, never one seen in `v2`
//! since (a CRD version switch relists both versions, in either order).
//!
//! **Holding back.** Until every known resource has synced once (the first complete
//! view), every change is passed on at once: the caller publishes nothing until
//! [`complete`](RelistTracker::complete). From then on, a resource that is listing
//! (a relist in progress, or a resource first seen and not synced yet) holds back the
//! changes of its objects, as kube-runtime's reflector buffers a relist before it
//! swaps a store: they are kept, latest per object, and passed on at its `SYNCED`
//! as one difference (objects relisted are upserted, objects not relisted deleted).
//! Meanwhile every other resource's changes pass as they come, so the state passed on
//! so far is always a consistent view: each resource at its last synced state, or
//! later. Resources of one `(space, group, resource)` in several versions are held
//! together, until every version has synced.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::feed::{FeedError, check_object};
use crate::watchlog::{EventType, ResourceRef, Space, WatchEvent};

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
    /// An object held back during a relist whose metadata the engine cannot read: it
    /// is refused when it arrives, not when the relist is applied.
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// Set in an object's version slot when it was (re)listed since its version's `RESET`.
const LISTED: u16 = 0x8000;

/// Where one resource (one version of a family) stands in its lists.
///
/// ```text
///  Unlisted ──RESET──► Listing ──SYNCED──► Synced ──RESET──► Relisting
///     │                                     ▲  ▲                 │
///     └────────────────SYNCED───────────────┘  └─────SYNCED──────┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Seen in an object event, before any `RESET` or `SYNCED`.
    Unlisted,
    /// A `RESET` seen and no `SYNCED` yet: the initial list.
    Listing,
    /// A `SYNCED` seen and no `RESET` since.
    Synced,
    /// A `RESET` after a `SYNCED`: a relist in progress.
    Relisting,
}

impl Phase {
    /// A `SYNCED` was seen and no `RESET` since.
    fn synced(self) -> bool {
        self == Phase::Synced
    }

    /// A `SYNCED` was seen, ever.
    fn ever_synced(self) -> bool {
        matches!(self, Phase::Synced | Phase::Relisting)
    }

    /// A `RESET` was seen and no `SYNCED` since: objects last seen in this version and
    /// not (re)listed are deleted at the `SYNCED`.
    fn listing(self) -> bool {
        matches!(self, Phase::Listing | Phase::Relisting)
    }

    /// The phase after a `RESET`.
    fn reset(self) -> Phase {
        if self.ever_synced() {
            Phase::Relisting
        } else {
            Phase::Listing
        }
    }
}

/// What the tracker knows about one resource (one version of a family).
#[derive(Debug)]
struct ResourceState {
    /// Index of the resource's family in `RelistTracker::families`.
    family: usize,
    /// Index of this version in the family's `versions`.
    version: u16,
    /// Where it stands in its lists.
    phase: Phase,
}

/// A change held back: the object's latest state, or gone.
#[derive(Debug)]
enum Held {
    Upsert(u16, HeldObject),
    Delete(u16),
}

/// An object held back. A relist can hold a whole resource's objects: as compact JSON
/// text, an object takes about a third of the memory of its `Value` tree.
#[derive(Debug)]
enum HeldObject {
    Text(Box<[u8]>),
    /// An object nested deeper than serde_json parses back (none read from a log or a
    /// server is): kept as it is.
    Tree(Value),
}

/// serde_json's parser refuses JSON nested deeper than 128 levels.
const PARSABLE_DEPTH: usize = 127;

impl Held {
    /// `object` held back in `version`.
    fn upsert(version: u16, object: Value) -> Held {
        let held = if depth_within(&object, PARSABLE_DEPTH) {
            let text = serde_json::to_vec(&object).expect("a JSON value serializes");
            HeldObject::Text(text.into_boxed_slice())
        } else {
            HeldObject::Tree(object)
        };
        Held::Upsert(version, held)
    }
}

impl HeldObject {
    /// The object, as it was when held back.
    fn into_value(self) -> Value {
        match self {
            HeldObject::Text(text) => serde_json::from_slice(&text)
                .expect("JSON text serialized here, within its depth limit, parses"),
            HeldObject::Tree(value) => value,
        }
    }
}

/// Whether `value` nests no deeper than `depth` arrays and objects.
fn depth_within(value: &Value, depth: usize) -> bool {
    match value {
        Value::Array(items) => depth > 0 && items.iter().all(|v| depth_within(v, depth - 1)),
        Value::Object(map) => depth > 0 && map.values().all(|v| depth_within(v, depth - 1)),
        _ => true,
    }
}

/// The objects of one `(space, group, resource)`, over all its versions.
#[derive(Debug, Default)]
struct Family {
    /// The versions seen, by index.
    versions: Vec<ResourceRef>,
    /// How many versions are not synced.
    unsynced: usize,
    /// Present objects, each with the index of the version it was last seen in (plus
    /// [`LISTED`]).
    objects: HashMap<ObjKey, u16>,
    /// Changes held back while a version lists (only once the view was complete).
    held: Option<BTreeMap<ObjKey, Held>>,
}

/// Tracks, per resource, the objects present and the relist in progress, and turns
/// watch events into [`StateChange`]s (holding relists back once the view was
/// complete: see the module documentation).
#[derive(Debug, Default)]
pub struct RelistTracker {
    resources: BTreeMap<ResourceRef, ResourceState>,
    families: Vec<Family>,
    family_index: HashMap<(Space, String, String), usize>,
    /// Every known resource was synced at once: relists are held back from now on.
    complete: bool,
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

    /// Applies one event and returns the state changes to pass on now
    /// ([`apply_each`](Self::apply_each), collected).
    pub fn apply_owned(&mut self, event: WatchEvent) -> Result<Vec<StateChange>, RelistError> {
        let mut changes = Vec::new();
        self.apply_each(event, |change| {
            changes.push(change);
            Ok::<(), RelistError>(())
        })?;
        Ok(changes)
    }

    /// Applies one event and hands `emit` the state changes to pass on now, one at a
    /// time (a relist's `SYNCED` can release a whole resource's objects: they are
    /// never all materialized at once):
    /// - `ADDED`/`MODIFIED`: an `Upsert`;
    /// - `DELETED`: a `Delete` (also for an object that was not present);
    /// - `RESET`: nothing; a relist of the resource begins (restarts, if one was
    ///   in progress);
    /// - `SYNCED`: if a relist was in progress, a `Delete` per object last seen in
    ///   this version that was neither relisted nor deleted since the `RESET`, in
    ///   `(namespace, name)` order; then `Synced`.
    ///
    /// Once the view was [`complete`](Self::complete), the `Upsert`s and `Delete`s of
    /// a resource that is listing are held back instead, and passed on (latest per
    /// object, in `(namespace, name)` order) before the `Synced` of the `SYNCED` that
    /// leaves no version of the resource unsynced. An object held back must be
    /// readable by the engine ([`check_object`]), else it is refused now.
    ///
    /// On a [`RelistError`] nothing changes and nothing is emitted. An error of `emit`
    /// stops the emission there (the tracker has applied the event).
    pub fn apply_each<E: From<RelistError>>(
        &mut self,
        event: WatchEvent,
        mut emit: impl FnMut(StateChange) -> Result<(), E>,
    ) -> Result<(), E> {
        let WatchEvent {
            resource,
            event_type,
            object,
            ..
        } = event;
        match event_type {
            EventType::Added | EventType::Modified | EventType::Deleted => {
                let key = ObjKey::of_object(&resource, event_type, object.as_ref())?;
                let holding = self.holds(&resource);
                if holding && event_type != EventType::Deleted {
                    check_object(&resource, object.as_ref().expect("of_object checked"))
                        .map_err(RelistError::from)?;
                }
                let (f, version, relisting) = self.state_mut(&resource);
                let family = &mut self.families[f];
                let change = if event_type == EventType::Deleted {
                    family.objects.remove(&key);
                    if holding {
                        Held::Delete(version)
                    } else {
                        return emit(delete(&resource, &key));
                    }
                } else {
                    let slot = if relisting { version | LISTED } else { version };
                    let object = object.expect("of_object checked it is there");
                    if holding {
                        family.objects.insert(key.clone(), slot);
                        Held::upsert(version, object)
                    } else {
                        family.objects.insert(key, slot);
                        return emit(StateChange::Upsert { resource, object });
                    }
                };
                family
                    .held
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key, change);
                Ok(())
            }
            EventType::Reset => {
                tracing::debug!(%resource, "relist begins");
                let (f, version, _) = self.state_mut(&resource);
                let state = self
                    .resources
                    .get_mut(&resource)
                    .expect("state_mut made it");
                let family = &mut self.families[f];
                if state.phase.synced() {
                    family.unsynced += 1;
                }
                state.phase = state.phase.reset();
                // A restarted relist: what the aborted one listed must be relisted again.
                for slot in family.objects.values_mut() {
                    if *slot == version | LISTED {
                        *slot = version;
                    }
                }
                Ok(())
            }
            EventType::Synced => {
                let (f, version, relisting) = self.state_mut(&resource);
                let state = self
                    .resources
                    .get_mut(&resource)
                    .expect("state_mut made it");
                if !state.phase.synced() {
                    self.families[f].unsynced -= 1;
                }
                state.phase = Phase::Synced;
                let family = &mut self.families[f];
                let mut released = Vec::new();
                if relisting {
                    let mut gone: Vec<ObjKey> = Vec::new();
                    family.objects.retain(|key, slot| {
                        if *slot == version {
                            gone.push(key.clone());
                            false
                        } else {
                            if *slot == version | LISTED {
                                *slot = version;
                            }
                            true
                        }
                    });
                    gone.sort_unstable();
                    if !gone.is_empty() {
                        tracing::debug!(%resource, deleted = gone.len(), "relist deleted objects");
                    }
                    if self.complete {
                        let held = family.held.get_or_insert_with(BTreeMap::new);
                        for key in gone {
                            held.insert(key, Held::Delete(version));
                        }
                    } else {
                        released.extend(gone.iter().map(|key| delete(&resource, key)));
                    }
                }
                let held = if family.unsynced == 0 {
                    family.held.take()
                } else {
                    None
                };
                if !self.complete && self.all_synced() {
                    self.complete = true;
                }
                let versions = &self.families[f].versions;
                for change in released {
                    emit(change)?;
                }
                if let Some(held) = held {
                    tracing::debug!(%resource, changes = held.len(), "relist applied");
                    for (key, held) in held {
                        emit(match held {
                            Held::Upsert(v, held) => StateChange::Upsert {
                                resource: versions[usize::from(v)].clone(),
                                object: held.into_value(),
                            },
                            Held::Delete(v) => delete(&versions[usize::from(v)], &key),
                        })?;
                    }
                }
                emit(StateChange::Synced { resource })
            }
        }
    }

    /// Whether every known resource has been synced at once (and at least one is
    /// known): the changes passed on so far are a complete view, and from now on
    /// relists are held back.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Whether at least one resource is known and every known resource is synced
    /// (a `SYNCED` seen, and no `RESET` since).
    pub fn all_synced(&self) -> bool {
        !self.resources.is_empty() && self.families.iter().all(|f| f.unsynced == 0)
    }

    /// Whether the changes of `resource`'s objects are held back now (the view was
    /// complete, and a version of the resource is listing).
    pub fn holds(&self, resource: &ResourceRef) -> bool {
        if !self.complete {
            return false;
        }
        match self.resources.get(resource) {
            Some(state) => self.families[state.family].unsynced > 0,
            // A resource first seen now is listing.
            None => true,
        }
    }

    /// Whether `resource` was seen in at least one event.
    pub fn knows(&self, resource: &ResourceRef) -> bool {
        self.resources.contains_key(resource)
    }

    /// The number of changes held back, over all resources.
    pub fn held_count(&self) -> usize {
        self.families
            .iter()
            .map(|f| f.held.as_ref().map_or(0, BTreeMap::len))
            .sum()
    }

    /// The number of known resources (those seen in at least one event), synced or not.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// The known resources that are not synced, in order.
    pub fn unsynced(&self) -> Vec<ResourceRef> {
        self.resources
            .iter()
            .filter(|(_, state)| !state.phase.synced())
            .map(|(resource, _)| resource.clone())
            .collect()
    }

    /// The known resources that never synced (their initial list is incomplete), in
    /// order. A log can make the view [`complete`](Self::complete) before a resource
    /// first appears: such a resource is held back until its `SYNCED`, and is listed
    /// here until then.
    pub fn never_synced(&self) -> Vec<ResourceRef> {
        self.resources
            .iter()
            .filter(|(_, state)| !state.phase.ever_synced())
            .map(|(resource, _)| resource.clone())
            .collect()
    }

    /// Whether some known resource for which `which` is true has synced at least once.
    pub fn has_synced(&self, which: impl Fn(&ResourceRef) -> bool) -> bool {
        self.resources
            .iter()
            .any(|(resource, state)| which(resource) && state.phase.ever_synced())
    }

    /// [`unsynced`](Self::unsynced), named for messages (`wds:apps/v1/deployments`).
    pub fn unsynced_names(&self) -> Vec<String> {
        self.unsynced().iter().map(ToString::to_string).collect()
    }

    /// The number of known resources that are synced.
    pub fn synced_count(&self) -> usize {
        self.resources.values().filter(|s| s.phase.synced()).count()
    }

    /// Whether a `SYNCED` was seen for `resource` and no `RESET` since.
    pub fn is_synced(&self, resource: &ResourceRef) -> bool {
        self.resources
            .get(resource)
            .is_some_and(|s| s.phase.synced())
    }

    /// Whether a relist of `resource` is in progress.
    pub fn is_relisting(&self, resource: &ResourceRef) -> bool {
        self.resources
            .get(resource)
            .is_some_and(|s| s.phase.listing())
    }

    /// Whether the object `(namespace, name)` is present, last seen in `resource`'s
    /// version (held-back changes included).
    pub fn contains(&self, resource: &ResourceRef, namespace: &str, name: &str) -> bool {
        self.resources.get(resource).is_some_and(|s| {
            self.families[s.family]
                .objects
                .get(&ObjKey::new(namespace, name))
                .is_some_and(|slot| slot & !LISTED == s.version)
        })
    }

    /// The number of objects present, over all resources (held-back changes included).
    pub fn object_count(&self) -> usize {
        self.families.iter().map(|f| f.objects.len()).sum()
    }

    /// The `(namespace, name)` of the objects present and last seen in `resource`'s
    /// version (held-back changes included), sorted.
    pub fn present_keys(&self, resource: &ResourceRef) -> Vec<(String, String)> {
        let Some(state) = self.resources.get(resource) else {
            return Vec::new();
        };
        let mut keys: Vec<&ObjKey> = self.families[state.family]
            .objects
            .iter()
            .filter(|(_, slot)| **slot & !LISTED == state.version)
            .map(|(key, _)| key)
            .collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|k| (k.namespace().to_owned(), k.name().to_owned()))
            .collect()
    }

    /// The state of `resource` (made, unsynced, if new): its family, its version's
    /// index and whether it is relisting.
    fn state_mut(&mut self, resource: &ResourceRef) -> (usize, u16, bool) {
        if let Some(state) = self.resources.get(resource) {
            return (state.family, state.version, state.phase.listing());
        }
        let family_key = (
            resource.space,
            resource.group.clone(),
            resource.resource.clone(),
        );
        let next = self.families.len();
        let f = *self.family_index.entry(family_key).or_insert(next);
        if f == next {
            self.families.push(Family::default());
        }
        let family = &mut self.families[f];
        let version = u16::try_from(family.versions.len())
            .ok()
            .filter(|v| v & LISTED == 0)
            .expect("fewer than 32768 versions of one resource");
        family.versions.push(resource.clone());
        family.unsynced += 1;
        self.resources.insert(
            resource.clone(),
            ResourceState {
                family: f,
                version,
                phase: Phase::Unlisted,
            },
        );
        (f, version, false)
    }
}

fn delete(resource: &ResourceRef, key: &ObjKey) -> StateChange {
    StateChange::Delete {
        resource: resource.clone(),
        namespace: key.namespace().to_owned(),
        name: key.name().to_owned(),
    }
}

#[cfg(test)]
mod tests;
