//! The attribution: which events of an epoch caused each Binding change of it.
//!
//! The candidates of a change are the epoch's events on what it depends on (see the
//! module above). They are narrowed in two steps:
//!
//! 1. By what each entity's events moved: its state after its last event of the epoch
//!    against its state before the epoch and before that last event (a destination or
//!    an entry's membership moves only with an entity's existence, its labels or, a
//!    policy, its spec; an entry's content also with the object's `resourceVersion`),
//!    or its event took it out of a listing that ended without listing it.
//! 2. With more than one candidate entity left: the counterfactual. The decision is
//!    evaluated by the oracle ([`bindery_engine::Oracle`], the rules written plainly)
//!    on the change's dependencies, each candidate in turn put back as it was before
//!    the epoch or before its last event; those that change the decision alone are the
//!    causes. When none does alone, or the causes put back together do not undo the
//!    change, every candidate is.
//!
//! Where step 1 leaves nothing (an input the narrowing does not model), the change keeps
//! every event on what it depends on, so it is never left without its candidates.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use bindery_engine::{
    Binding, BindingChange, Change as Input, Oracle, PolicyInput, WorkloadEntry, WorkloadRef,
    WorkloadState,
};
use bindery_ingest::{EventType, Meta, ObjectKind, StateChange, WatchEvent, classify, to_change};

use crate::input::loader::LoadError;
use crate::input::pipeline::Pipeline;

use super::{
    Cause, Change, Diff, Entity, Filter, NAMESPACES, POLICIES, WECS, What, entity, entry_entity,
    object_name, resource_name,
};

/// What the attribution keeps of an entity: what a cause's diff shows, the version it
/// was last seen in (what a relist of that version drops), and for a policy what the
/// engine reads of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Seen {
    labels: SeenLabels,
    /// `None`: absent (an empty `resourceVersion` reads as absent).
    resource_version: Option<String>,
    /// `None`: absent (a generation of 0 reads as absent).
    generation: Option<i64>,
    /// A policy as the engine takes it (`None`: being deleted, or not a policy).
    policy: Option<Rc<PolicyInput>>,
    /// The API version of its latest event (shared by every entity seen in it).
    version: Rc<str>,
}

impl Seen {
    fn of(meta: Meta, policy: Option<PolicyInput>, version: Rc<str>) -> Seen {
        Seen {
            labels: SeenLabels::of(meta.labels),
            resource_version: Some(meta.resource_version).filter(|rv| !rv.is_empty()),
            generation: Some(meta.generation).filter(|&g| g != 0),
            policy: policy.map(Rc::new),
            version,
        }
    }
}

/// An entity's labels, sorted by key: a slice rather than a `BTreeMap`, whose every
/// node holds room for eleven pairs (an entity's state is kept for every WEC, policy
/// and object of the log).
#[derive(Clone, Debug, Default, PartialEq)]
struct SeenLabels(Box<[(Box<str>, Box<str>)]>);

impl SeenLabels {
    fn of(labels: BTreeMap<String, String>) -> SeenLabels {
        SeenLabels(
            labels
                .into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()?;
        Some(&self.0[i].1)
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }

    /// As the engine takes labels.
    fn to_map(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// One event read, kept while its epoch (or its resource's listing) is open: where it
/// is in the log and the entity's state before and after it, shared with
/// [`Attributor::last`]. Its [`Cause`] is written only for a change that keeps it.
#[derive(Clone, Debug)]
struct Read {
    line: u64,
    ts: i64,
    event_type: EventType,
    entity: Entity,
    before: Option<Rc<Seen>>,
    after: Option<Rc<Seen>>,
    /// The cause is the end of a listing (its `SYNCED`), not an event on the entity:
    /// it names no object and has no diff.
    listing: bool,
    /// A cause added beside the event that made the change (a listing that would have
    /// deleted what an event deleted): it moves nothing itself.
    extra: bool,
}

impl Read {
    /// The cause as the answer shows it: the event, and what it changed of the entity.
    fn cause(&self) -> Cause {
        let (group, resource, namespace, name) = &self.entity;
        let mut cause = Cause {
            line: self.line,
            ts: self.ts,
            event_type: self.event_type.as_str().to_string(),
            resource: resource_name(group, resource),
            namespace: String::new(),
            name: String::new(),
            labels: BTreeMap::new(),
            generation: None,
            resource_version: None,
        };
        if !self.listing {
            cause.namespace.clone_from(namespace);
            cause.name.clone_from(name);
            diff_into(&mut cause, self.before.as_deref(), self.after.as_deref());
        }
        cause
    }
}

/// The end of a listing, as the cause of what it dropped.
struct Listing {
    line: u64,
    ts: i64,
}

/// `(group, resource)`: a resource in all its versions, as the relist tracker's family.
type Resource = (String, String);

/// `(namespace, name)`.
type Id = (String, String);

/// Follows a log event by event and attributes each epoch's Binding changes. Each
/// event reaches the pipeline through it ([`push`](Attributor::push)): read before,
/// then applied (with whether the pipeline holds its resource back now) or refused.
#[derive(Default)]
pub struct Attributor {
    /// Each entity as its latest event showed it, by resource, then
    /// `(namespace, name)` (the `old` side of a diff). Only WECs, policies and workload
    /// objects: nothing else moves a Binding.
    last: HashMap<Resource, HashMap<Id, Rc<Seen>>>,
    /// The API versions seen, each held once.
    versions: Vec<Rc<str>>,
    /// The events of the open epoch.
    epoch: Vec<Read>,
    /// The versions of resources listing (after their `RESET`, until their `SYNCED`),
    /// each with what it listed (added or modified in that version) since its `RESET`:
    /// at the `SYNCED`, the entities last seen in that version and not listed are gone,
    /// as the relist tracker has it.
    listing: HashMap<(Resource, String), HashSet<Id>>,
    /// The events the pipeline holds back (a resource listing once the view was
    /// complete), by resource: they join the epoch of the `SYNCED` that releases them.
    held: HashMap<Resource, Vec<Read>>,
    /// What the event being pushed read: its resource and reads.
    pending: Option<(Resource, Vec<Read>)>,
    /// Not keeping the events for attribution (only each entity's state), until
    /// [`attribute_from_now`](Attributor::attribute_from_now).
    quiet: bool,
}

/// An entity's events of one epoch: its state before the first and after the last.
struct Moved<'a> {
    before: Option<&'a Seen>,
    /// Its state before its last event of the epoch (without that event alone).
    penultimate: Option<&'a Seen>,
    after: Option<&'a Seen>,
    causes: Vec<&'a Read>,
    /// Its event took it out of a listing that ended in the epoch without listing it:
    /// without that event, the listing would have deleted it.
    escaped: bool,
}

/// Whether existence, labels or (a policy's) spec differ between `a` and `b`: what can
/// move a destination or an entry in or out.
fn membership_differs(a: Option<&Seen>, b: Option<&Seen>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.labels != b.labels || a.policy != b.policy,
        (None, None) => false,
        _ => true,
    }
}

/// The same, or the `resourceVersion`: what can change an entry.
fn entry_differs(a: Option<&Seen>, b: Option<&Seen>) -> bool {
    membership_differs(a, b)
        || a.and_then(|s| s.resource_version.as_ref())
            != b.and_then(|s| s.resource_version.as_ref())
}

impl Moved<'_> {
    /// Whether its events moved what `moves` asks for: over the epoch, or its last
    /// event alone.
    fn moves(&self, moves: Moves) -> bool {
        let differs = match moves {
            Moves::Membership => membership_differs,
            Moves::Entry => entry_differs,
        };
        self.escaped || differs(self.before, self.after) || differs(self.penultimate, self.after)
    }

    /// What it would be without its last event, or without all its events of the epoch
    /// (a listing's end still dropping it, if its event escaped one).
    fn alternatives(&self) -> Vec<Option<&Seen>> {
        if self.escaped {
            vec![None]
        } else {
            vec![self.before, self.penultimate]
        }
    }
}

impl Attributor {
    /// Pushes `event`, read at `line`, into `pipeline`, following what the pipeline
    /// makes of it (on an error, as [`Pipeline::push`], nothing is applied).
    pub fn push(
        &mut self,
        pipeline: &mut Pipeline,
        line: u64,
        event: WatchEvent,
    ) -> Result<(), LoadError> {
        self.read(line, &event);
        let resource = event.resource.clone();
        match pipeline.push(event) {
            Ok(()) => {
                self.applied(pipeline.holds(&resource));
                Ok(())
            }
            Err(e) => {
                self.refused();
                Err(e)
            }
        }
    }

    /// Notes `event`, read at `line`, before the pipeline takes it.
    fn read(&mut self, line: u64, event: &WatchEvent) {
        self.pending = None;
        let kind = classify(&event.resource);
        if !matches!(
            kind,
            ObjectKind::Inventory | ObjectKind::Policy | ObjectKind::Workload
        ) {
            return;
        }
        let r = &event.resource;
        let key: Resource = (r.group.clone(), r.resource.clone());
        let mut reads = Vec::new();
        match event.event_type {
            EventType::Reset => {
                // A restarted listing lists again; what it deleted stays deleted.
                let listing = self.listing.entry((key.clone(), r.version.clone()));
                listing.or_default().clear();
            }
            EventType::Synced => {
                let listing = self.listing.remove(&(key.clone(), r.version.clone()));
                if let Some(listed) = listing {
                    let synced = Listing { line, ts: event.ts };
                    self.drop_unlisted(&key, &r.version, listed, &synced, &mut reads);
                }
            }
            EventType::Added | EventType::Modified | EventType::Deleted => {
                // Malformed metadata: the pipeline refuses the event, naming its line.
                let Some(object) = event.object.as_ref() else {
                    return;
                };
                let Ok(meta) = Meta::read(r, object) else {
                    return;
                };
                let id = (meta.namespace.clone(), meta.name.clone());
                let version = self.version(&r.version);
                let after = (event.event_type != EventType::Deleted).then(|| {
                    let policy = (kind == ObjectKind::Policy)
                        .then(|| policy_input(event, object))
                        .flatten();
                    Rc::new(Seen::of(meta, policy, version))
                });
                let entities = self.last.entry(key.clone()).or_default();
                let before = match &after {
                    Some(seen) => entities.insert(id.clone(), Rc::clone(seen)),
                    None => entities.remove(&id),
                };
                self.note_listing(&key, &r.version, &id, after.is_some());
                reads.push(Read {
                    line,
                    ts: event.ts,
                    event_type: event.event_type,
                    entity: (key.0.clone(), key.1.clone(), id.0, id.1),
                    before,
                    after,
                    listing: false,
                    extra: false,
                });
            }
        }
        self.pending = Some((key, reads));
    }

    /// API version `v`, held once.
    fn version(&mut self, v: &str) -> Rc<str> {
        if let Some(held) = self.versions.iter().find(|h| &***h == v) {
            return Rc::clone(held);
        }
        let held: Rc<str> = Rc::from(v);
        self.versions.push(Rc::clone(&held));
        held
    }

    /// An object event listed the object in its version, if that version is listing.
    fn note_listing(&mut self, key: &Resource, version: &str, id: &Id, exists: bool) {
        if exists && let Some(listing) = self.listing.get_mut(&(key.clone(), version.to_string())) {
            listing.insert(id.clone());
        }
    }

    /// The event read last was applied; the pipeline now `holds` its resource back (or
    /// not: a `SYNCED` that leaves none of its versions listing releases what it held).
    fn applied(&mut self, holds: bool) {
        let Some((key, mut reads)) = self.pending.take() else {
            return;
        };
        if self.quiet {
            reads.clear();
        }
        if holds {
            self.held.entry(key).or_default().extend(reads);
        } else {
            if let Some(held) = self.held.remove(&key) {
                self.epoch.extend(held);
            }
            self.epoch.extend(reads);
        }
    }

    /// The event read last was refused by the pipeline: its entity is as it was.
    fn refused(&mut self) {
        let Some((key, reads)) = self.pending.take() else {
            return;
        };
        let entities = self.last.entry(key).or_default();
        for read in reads.into_iter().rev() {
            let id = (read.entity.2, read.entity.3);
            match read.before {
                Some(seen) => entities.insert(id, seen),
                None => entities.remove(&id),
            };
        }
    }

    /// An attributor that follows each entity's state but keeps no event to attribute
    /// until [`attribute_from_now`](Attributor::attribute_from_now) (a live run's
    /// initial lists: its first publish is not attributed).
    pub fn quiet() -> Attributor {
        Attributor {
            quiet: true,
            ..Attributor::default()
        }
    }

    /// Keeps the events to attribute from now on; those kept so far (none, if quiet)
    /// are forgotten.
    pub fn attribute_from_now(&mut self) {
        self.quiet = false;
        self.epoch = Vec::new();
    }

    /// At the `SYNCED` (`synced`) of `version` of resource `key`: the entities last seen
    /// in that version that it did not list are gone, the listing their cause, and it
    /// is a cause too of the deletions it would have made.
    fn drop_unlisted(
        &mut self,
        key: &Resource,
        version: &str,
        listed: HashSet<Id>,
        synced: &Listing,
        reads: &mut Vec<Read>,
    ) {
        let Some(entities) = self.last.get_mut(key) else {
            return;
        };
        let gone: Vec<Id> = entities
            .iter()
            .filter(|(id, seen)| &*seen.version == version && !listed.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        let read = |id: Id, before: Option<Rc<Seen>>, extra: bool| Read {
            line: synced.line,
            ts: synced.ts,
            event_type: EventType::Synced,
            entity: (key.0.clone(), key.1.clone(), id.0, id.1),
            before,
            after: None,
            listing: true,
            extra,
        };
        for id in gone {
            let before = entities.remove(&id);
            reads.push(read(id, before, false));
        }
        // The entities an event of what this listing ends with (the open epoch, or what
        // is held back with it) deleted, or moved to another version, while last seen in
        // this version (another listing's end among those events): had that event not
        // been, this listing would have deleted them, so it is a cause of what the event
        // did too.
        let held = self.held.get(key).into_iter().flatten();
        let escaped: HashSet<Id> = self
            .epoch
            .iter()
            .chain(held)
            .filter(|r| !r.extra && (r.entity.0.as_str(), r.entity.1.as_str()) == (&key.0, &key.1))
            .filter(|r| {
                r.before.as_ref().is_some_and(|b| &*b.version == version)
                    && r.after.as_ref().is_none_or(|a| &*a.version != version)
            })
            .map(|r| (r.entity.2.clone(), r.entity.3.clone()))
            .filter(|id| !listed.contains(id))
            .filter(|id| {
                entities
                    .get(id)
                    .is_none_or(|seen| &*seen.version != version)
            })
            .collect();
        for id in escaped {
            reads.push(read(id, None, true));
        }
    }

    /// Attributes the changes of the epoch just closed (`epoch`, its last event at
    /// `ts`): those `filter` asks for. `binding(name)` gives a Binding as it is now
    /// (read only by the object and cluster filters: which Bindings list the object,
    /// or have the WEC).
    pub fn close(
        &mut self,
        epoch: u64,
        ts: i64,
        changes: &[BindingChange],
        filter: &Filter,
        binding: &mut dyn FnMut(&str) -> Option<Rc<Binding>>,
    ) -> Vec<Change> {
        let reads = std::mem::take(&mut self.epoch);
        let mut moved: HashMap<&Entity, Moved> = HashMap::new();
        for r in &reads {
            let m = moved.entry(&r.entity).or_insert_with(|| Moved {
                before: r.before.as_deref(),
                penultimate: r.before.as_deref(),
                after: None,
                causes: Vec::new(),
                escaped: false,
            });
            if r.extra {
                m.escaped = true;
            } else {
                m.penultimate = r.before.as_deref();
                m.after = r.after.as_deref();
            }
            m.causes.push(r);
        }
        let attribution = Attribution {
            moved: &moved,
            last: &self.last,
        };
        let mut out = Vec::new();
        for change in changes {
            attribution.attribute(epoch, ts, change, filter, binding, &mut out);
        }
        out
    }
}

/// The epoch's moved entities, and the attribution of its changes.
struct Attribution<'a> {
    moved: &'a HashMap<&'a Entity, Moved<'a>>,
    /// Every entity as it is now (those the epoch did not move, for the oracle).
    last: &'a HashMap<Resource, HashMap<Id, Rc<Seen>>>,
}

/// How a candidate entity qualifies for a kind of change.
#[derive(Clone, Copy)]
enum Moves {
    Membership,
    Entry,
}

impl Attribution<'_> {
    /// Pushes the changes of `change` that `filter` asks for onto `out`, each with its
    /// causes (attributed only once kept).
    fn attribute(
        &self,
        epoch: u64,
        ts: i64,
        change: &BindingChange,
        filter: &Filter,
        binding: &mut dyn FnMut(&str) -> Option<Rc<Binding>>,
        out: &mut Vec<Change>,
    ) {
        let name = &change.binding;
        if !filter.may_keep(name, ts) {
            return;
        }
        let policy = entity(POLICIES, "", name);
        let mut keep = |what: What, causes: &dyn Fn() -> Vec<Cause>| {
            if filter.keeps(name, ts, &what, binding) {
                out.push(Change {
                    ts,
                    epoch,
                    binding: name.clone(),
                    change: what,
                    causes: causes(),
                });
            }
        };
        // The policy's own changes; its problems also count its WECs (a singleton's).
        if change.owner_changed {
            let what = What::Owner {
                exists: change.exists,
                generation: change.generation,
            };
            keep(what, &|| self.causes(std::slice::from_ref(&policy)));
        }
        if let Some(problems) = &change.problems {
            let what = What::Problems {
                problems: problems.clone(),
            };
            keep(what, &|| {
                let mut depends = vec![policy.clone()];
                depends.extend(
                    self.moved
                        .iter()
                        .filter(|(e, m)| {
                            (e.0.as_str(), e.1.as_str()) == WECS && m.moves(Moves::Membership)
                        })
                        .map(|(e, _)| (*e).clone()),
                );
                self.narrowed(&depends, Moves::Membership, |_, _| None)
            });
        }
        let destinations = [
            (&change.destinations_added, true),
            (&change.destinations_removed, false),
        ];
        for (clusters, added) in destinations {
            for cluster in clusters {
                let what = if added {
                    What::DestinationAdded {
                        cluster: cluster.clone(),
                    }
                } else {
                    What::DestinationRemoved {
                        cluster: cluster.clone(),
                    }
                };
                keep(what, &|| {
                    let depends = [entity(WECS, "", cluster), policy.clone()];
                    let decides = |states: &States| {
                        states
                            .binding(name)
                            .is_some_and(|b| b.destinations.contains(cluster))
                    };
                    self.narrowed(&depends, Moves::Membership, |depends, candidates| {
                        self.counterfactual(depends, candidates, added, decides)
                    })
                });
            }
        }
        // Workload entries: an object removed and added in one epoch changed.
        let mut entries: BTreeMap<Entity, (bool, bool)> = BTreeMap::new();
        for e in &change.workload_added {
            entries.entry(entry_entity(e)).or_default().1 = true;
        }
        for e in &change.workload_removed {
            entries.entry(entry_entity(e)).or_default().0 = true;
        }
        for (object, (removed, added)) in entries {
            let object_name = object_name(&object);
            let what = match (removed, added) {
                (true, true) => What::WorkloadChanged {
                    object: object_name,
                },
                (false, _) => What::WorkloadAdded {
                    object: object_name,
                },
                (true, false) => What::WorkloadRemoved {
                    object: object_name,
                },
            };
            keep(what, &|| {
                let mut depends = vec![object.clone(), policy.clone()];
                if !object.2.is_empty() {
                    depends.push(entity(NAMESPACES, "", &object.2));
                }
                // The entry as the oracle has it, with the object's version left out
                // (the oracle is given none).
                let entry_of = |states: &States| {
                    let binding = states.binding(name)?;
                    let mut entries = binding
                        .cluster_scope
                        .into_iter()
                        .chain(binding.namespace_scope);
                    entries.find(|e| entry_entity(e) == object)
                };
                if removed && added {
                    let now = change
                        .workload_added
                        .iter()
                        .find(|e| entry_entity(e) == object)
                        .map(|e| WorkloadEntry {
                            version: String::new(),
                            ..e.clone()
                        });
                    self.narrowed(&depends, Moves::Entry, |depends, candidates| {
                        self.counterfactual(depends, candidates, now, entry_of)
                    })
                } else {
                    self.narrowed(&depends, Moves::Membership, |depends, candidates| {
                        self.counterfactual(depends, candidates, added, |states| {
                            entry_of(states).is_some()
                        })
                    })
                }
            });
        }
    }

    /// Every event of the epoch on `entities`, in log order.
    fn causes(&self, entities: &[Entity]) -> Vec<Cause> {
        let mut causes: Vec<Cause> = entities
            .iter()
            .filter_map(|e| self.moved.get(e))
            .flat_map(|m| m.causes.iter().map(|r| r.cause()))
            .collect();
        causes.sort_by_key(|c| c.line);
        causes.dedup();
        causes
    }

    /// The causes among `depends`: the entities whose events moved what `moves` asks
    /// for, narrowed further by `decide` when it can (it returns the deciding ones, or
    /// `None`); every event on `depends` when none moved it.
    fn narrowed(
        &self,
        depends: &[Entity],
        moves: Moves,
        decide: impl FnOnce(&[Entity], &[&Entity]) -> Option<Vec<Entity>>,
    ) -> Vec<Cause> {
        let candidates: Vec<&Entity> = depends
            .iter()
            .filter(|e| self.moved.get(e).is_some_and(|m| m.moves(moves)))
            .collect();
        if candidates.is_empty() {
            return self.causes(depends);
        }
        if candidates.len() > 1
            && let Some(deciding) = decide(depends, &candidates)
        {
            return self.causes(&deciding);
        }
        let candidates: Vec<Entity> = candidates.into_iter().cloned().collect();
        self.causes(&candidates)
    }

    /// The causes among `candidates` (of the entities `depends`) by the counterfactual:
    /// those that alone, put back as they were before the epoch or before their last
    /// event, change the decision `decides` (whether the destination or entry is there,
    /// or the entry), the others as they are now. If together, put back as they were
    /// before the epoch, they do not give the decision every candidate put back gives
    /// (or none does alone), every candidate is a cause. `None` when the decision with everything as it is now is not `now`
    /// (something the oracle is not given here decides: no narrowing).
    fn counterfactual<T: PartialEq>(
        &self,
        depends: &[Entity],
        candidates: &[&Entity],
        now: T,
        decides: impl Fn(&States) -> T,
    ) -> Option<Vec<Entity>> {
        let after = States(depends.iter().map(|e| (e, self.now(e))).collect());
        if decides(&after) != now {
            return None;
        }
        let moved = |e: &Entity| self.moved.get(e);
        let flips = |e: &Entity| {
            let m = moved(e)?;
            let alone = m
                .alternatives()
                .into_iter()
                .any(|alt| decides(&after.with(&[e], |_| alt)) != now);
            alone.then(|| e.clone())
        };
        let causes: Vec<Entity> = candidates.iter().filter_map(|c| flips(c)).collect();
        let before = |e: &Entity| moved(e).and_then(|m| m.before);
        let refs: Vec<&Entity> = causes.iter().collect();
        let without_causes = decides(&after.with(&refs, before));
        if causes.is_empty() || without_causes != decides(&after.with(candidates, before)) {
            Some(candidates.iter().map(|c| (*c).clone()).collect())
        } else {
            Some(causes)
        }
    }

    /// Entity `e` as it is after the epoch.
    fn now(&self, e: &Entity) -> Option<&Seen> {
        match self.moved.get(e) {
            Some(m) => m.after,
            None => self
                .last
                .get(&(e.0.clone(), e.1.clone()))?
                .get(&(e.2.clone(), e.3.clone()))
                .map(|seen| &**seen),
        }
    }
}

/// The entities given to the oracle, each in a state (`None`: absent).
struct States<'a>(Vec<(&'a Entity, Option<&'a Seen>)>);

impl<'a> States<'a> {
    /// The same, with `which` in the state `state` gives them.
    fn with(&self, which: &[&Entity], state: impl Fn(&Entity) -> Option<&'a Seen>) -> States<'a> {
        States(
            self.0
                .iter()
                .map(|(e, s)| match which.contains(e) {
                    true => (*e, state(e)),
                    false => (*e, *s),
                })
                .collect(),
        )
    }

    /// The Binding of policy `name` the oracle gives on these entities.
    fn binding(&self, name: &str) -> Option<Binding> {
        let mut oracle = Oracle::default();
        self.apply(&mut oracle);
        oracle.binding(name)
    }

    /// Gives the oracle these entities, as the engine would have them.
    fn apply(&self, oracle: &mut Oracle) {
        for ((group, resource, namespace, name), seen) in &self.0 {
            let Some(seen) = seen else { continue };
            let input = if (group.as_str(), resource.as_str()) == WECS {
                Input::Wec {
                    name: name.clone(),
                    labels: Some(seen.labels.to_map()),
                }
            } else if (group.as_str(), resource.as_str()) == POLICIES {
                Input::Policy {
                    name: name.clone(),
                    policy: seen.policy.as_deref().cloned(),
                }
            } else {
                Input::Workload {
                    object: WorkloadRef {
                        group: group.clone(),
                        version: String::new(),
                        resource: resource.clone(),
                        namespace: namespace.clone(),
                        name: name.clone(),
                    },
                    state: Some(WorkloadState {
                        labels: seen.labels.to_map(),
                        resource_version: seen.resource_version.clone().unwrap_or_default(),
                        uid: String::new(),
                        kind: String::new(),
                    }),
                }
            };
            oracle.apply(&input);
        }
    }
}

/// A policy as the engine reads it (`None`: being deleted, or unreadable).
fn policy_input(event: &WatchEvent, object: &serde_json::Value) -> Option<PolicyInput> {
    let upsert = StateChange::Upsert {
        resource: event.resource.clone(),
        object: object.clone(),
    };
    match to_change(&upsert) {
        Ok(Some(Input::Policy { policy, .. })) => policy,
        _ => None,
    }
}

/// Fills `cause`'s diff from `old` to `new` (`None`: absent).
fn diff_into(cause: &mut Cause, old: Option<&Seen>, new: Option<&Seen>) {
    let empty = Seen::default();
    let (o, n) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    for key in o.labels.keys().chain(n.labels.keys()) {
        let (a, b) = (o.labels.get(key), n.labels.get(key));
        if a != b {
            cause.labels.insert(
                key.to_string(),
                Diff {
                    old: a.map(str::to_string),
                    new: b.map(str::to_string),
                },
            );
        }
    }
    let (og, ng) = (
        old.and_then(|m| m.generation),
        new.and_then(|m| m.generation),
    );
    if og != ng {
        cause.generation = Some(Diff { old: og, new: ng });
    }
    let (orv, nrv) = (
        old.and_then(|m| m.resource_version.clone()),
        new.and_then(|m| m.resource_version.clone()),
    );
    if orv != nrv {
        cause.resource_version = Some(Diff { old: orv, new: nrv });
    }
}
