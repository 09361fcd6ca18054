//! The attribution: which events of an epoch caused each Binding change of it.
//!
//! The candidates of a change are the epoch's events on what it depends on (see the
//! module above). They are narrowed in two steps:
//!
//! 1. By what each entity's events changed over the epoch: a destination or the
//!    membership of an entry moves only with an entity's existence, its labels or
//!    (a policy) its spec; an entry's content also with the object's
//!    `resourceVersion`. An entity relabelled and back within the epoch is no cause.
//! 2. For a destination or an entry added or removed with more than one candidate
//!    entity left: the counterfactual. The decision is evaluated by the oracle
//!    ([`bindery_engine::Oracle`], the rules written plainly) on just these entities,
//!    each candidate in turn put back as it was before the epoch; the candidates that
//!    flip the decision alone are the causes. When none does alone (each of two
//!    changes would have sufficed), all of them are.
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

use super::{
    Cause, Change, Diff, Entity, Filter, NAMESPACES, POLICIES, WECS, What, entity, entry_entity,
    entry_is, key_entity, object_name, resource_name,
};

/// What the attribution keeps of an entity: what a cause's diff shows, and for a
/// policy what the engine reads of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Seen {
    labels: BTreeMap<String, String>,
    /// `None`: absent (an empty `resourceVersion` reads as absent).
    resource_version: Option<String>,
    /// `None`: absent (a generation of 0 reads as absent).
    generation: Option<i64>,
    /// A policy as the engine takes it (`None`: being deleted, or not a policy).
    policy: Option<Rc<PolicyInput>>,
}

impl Seen {
    fn of(meta: Meta, policy: Option<PolicyInput>) -> Seen {
        Seen {
            labels: meta.labels,
            resource_version: Some(meta.resource_version).filter(|rv| !rv.is_empty()),
            generation: Some(meta.generation).filter(|&g| g != 0),
            policy: policy.map(Rc::new),
        }
    }
}

/// One event read, kept while its epoch (or its resource's listing) is open: its cause
/// line and the entity's state before and after it.
#[derive(Clone, Debug)]
struct Read {
    cause: Cause,
    entity: Entity,
    before: Option<Seen>,
    after: Option<Seen>,
}

/// `(group, resource)`.
type Resource = (String, String);

/// Follows a log event by event and attributes each epoch's Binding changes.
#[derive(Default)]
pub struct Attributor {
    /// Each entity as its latest event showed it, by resource, then
    /// `(namespace, name)` (the `old` side of a diff). Only WECs, policies and workload
    /// objects: nothing else moves a Binding.
    last: HashMap<Resource, HashMap<(String, String), Seen>>,
    /// The events of the open epoch.
    epoch: Vec<Read>,
    /// Resources that have synced and not relisted since.
    listed: HashSet<Resource>,
    /// The events of the resources listing (an initial list or a relist), held until
    /// their `SYNCED`, as the engine holds their changes; `true`: a relist (what it
    /// does not list is gone at its `SYNCED`).
    held: HashMap<Resource, (bool, Vec<Read>)>,
}

/// An entity's events of one epoch: its state before the first and after the last.
struct Moved<'a> {
    before: Option<&'a Seen>,
    after: Option<&'a Seen>,
    causes: Vec<&'a Cause>,
}

impl Moved<'_> {
    /// Whether the entity's existence, labels or (a policy's) spec moved: what can
    /// move a destination or an entry in or out.
    fn moves_membership(&self) -> bool {
        match (self.before, self.after) {
            (Some(b), Some(a)) => b.labels != a.labels || b.policy != a.policy,
            (None, None) => false,
            _ => true,
        }
    }

    /// The same, or the object's `resourceVersion` moved: what can change an entry.
    fn moves_entry(&self) -> bool {
        self.moves_membership()
            || self.before.and_then(|s| s.resource_version.as_ref())
                != self.after.and_then(|s| s.resource_version.as_ref())
    }
}

impl Attributor {
    /// Notes `event`, read at `line`, before it is applied.
    pub fn read(&mut self, line: u64, event: &WatchEvent) {
        let kind = classify(&event.resource);
        if !matches!(
            kind,
            ObjectKind::Inventory | ObjectKind::Policy | ObjectKind::Workload
        ) {
            return;
        }
        let key: Resource = (
            event.resource.group.clone(),
            event.resource.resource.clone(),
        );
        let mut cause = Cause {
            line,
            ts: event.ts,
            event_type: event.event_type.as_str().to_string(),
            resource: resource_name(&key.0, &key.1),
            namespace: String::new(),
            name: String::new(),
            labels: BTreeMap::new(),
            generation: None,
            resource_version: None,
        };
        match event.event_type {
            EventType::Reset => {
                let relist = self.listed.remove(&key);
                self.held.insert(key, (relist, Vec::new()));
                return;
            }
            EventType::Synced => {
                if let Some((relist, reads)) = self.held.remove(&key) {
                    if relist {
                        self.drop_unlisted(&key, &reads, &cause);
                    }
                    self.epoch.extend(reads);
                }
                self.listed.insert(key);
                return;
            }
            _ => {}
        }
        // Malformed metadata: the pipeline refuses the event, naming its line.
        let Some(object) = event.object.as_ref() else {
            return;
        };
        let Ok(meta) = Meta::read(&event.resource, object) else {
            return;
        };
        cause.namespace = meta.namespace.clone();
        cause.name = meta.name.clone();
        let id = (cause.namespace.clone(), cause.name.clone());
        let after = (event.event_type != EventType::Deleted).then(|| {
            let policy = (kind == ObjectKind::Policy)
                .then(|| policy_input(event, object))
                .flatten();
            Seen::of(meta, policy)
        });
        let entities = self.last.entry(key.clone()).or_default();
        let before = match &after {
            Some(seen) => entities.insert(id.clone(), seen.clone()),
            None => entities.remove(&id),
        };
        diff_into(&mut cause, before.as_ref(), after.as_ref());
        let read = Read {
            cause,
            entity: (key.0.clone(), key.1.clone(), id.0, id.1),
            before,
            after,
        };
        match self.held.get_mut(&key) {
            Some((_, reads)) => reads.push(read),
            None if self.listed.contains(&key) => self.epoch.push(read),
            // Before its first list began: held until its SYNCED, as the engine does.
            None => self.held.entry(key).or_default().1.push(read),
        }
    }

    /// Forgets the open epoch's events without attributing its changes (the first
    /// publish of a live run: every Binding appearing at once).
    pub fn skip_epoch(&mut self) {
        self.epoch.clear();
    }

    /// At a relist's `SYNCED` (`synced`): the resource's entities it did not list are
    /// gone, the relist their cause.
    fn drop_unlisted(&mut self, key: &Resource, listed: &[Read], synced: &Cause) {
        let Some(entities) = self.last.get_mut(key) else {
            return;
        };
        let seen: HashSet<(&str, &str)> = listed
            .iter()
            .map(|r| (r.entity.2.as_str(), r.entity.3.as_str()))
            .collect();
        let gone: Vec<(String, String)> = entities
            .keys()
            .filter(|(ns, name)| !seen.contains(&(ns.as_str(), name.as_str())))
            .cloned()
            .collect();
        for id in gone {
            let before = entities.remove(&id);
            self.epoch.push(Read {
                cause: synced.clone(),
                entity: (key.0.clone(), key.1.clone(), id.0, id.1),
                before,
                after: None,
            });
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
        if filter.since.is_some_and(|since| ts < since) {
            return Vec::new();
        }
        let mut moved: HashMap<&Entity, Moved> = HashMap::new();
        for r in &reads {
            let m = moved.entry(&r.entity).or_insert_with(|| Moved {
                before: r.before.as_ref(),
                after: None,
                causes: Vec::new(),
            });
            m.after = r.after.as_ref();
            m.causes.push(&r.cause);
        }
        let attribution = Attribution { moved: &moved };
        let mut out = Vec::new();
        for change in changes {
            if filter
                .binding
                .as_ref()
                .is_some_and(|b| *b != change.binding)
            {
                continue;
            }
            attribution.attribute(epoch, ts, change, filter, binding, &mut out);
        }
        out
    }
}

/// The epoch's moved entities, and the attribution of its changes.
struct Attribution<'a> {
    moved: &'a HashMap<&'a Entity, Moved<'a>>,
}

/// How a candidate entity qualifies for a kind of change.
#[derive(Clone, Copy)]
enum Moves {
    Membership,
    Entry,
}

impl Attribution<'_> {
    /// Pushes the changes of `change` that `filter` asks for onto `out`, each with its
    /// causes.
    fn attribute(
        &self,
        epoch: u64,
        ts: i64,
        change: &BindingChange,
        filter: &Filter,
        binding: &mut dyn FnMut(&str) -> Option<Rc<Binding>>,
        out: &mut Vec<Change>,
    ) {
        let policy = entity(POLICIES, "", &change.binding);
        let mut push = |what: What, causes: Vec<Cause>| {
            out.push(Change {
                ts,
                epoch,
                binding: change.binding.clone(),
                change: what,
                causes,
            })
        };
        // The policy's own changes; its problems also count its WECs (a singleton's).
        let owner_or_problems = filter.object.is_none() && filter.cluster.is_none();
        if change.owner_changed && owner_or_problems {
            let what = What::Owner {
                exists: change.exists,
                generation: change.generation,
            };
            push(what, self.causes(std::slice::from_ref(&policy)));
        }
        if let (Some(problems), true) = (&change.problems, owner_or_problems) {
            let mut depends = vec![policy.clone()];
            depends.extend(
                self.moved
                    .iter()
                    .filter(|(e, m)| (e.0.as_str(), e.1.as_str()) == WECS && m.moves_membership())
                    .map(|(e, _)| (*e).clone()),
            );
            let what = What::Problems {
                problems: problems.clone(),
            };
            push(what, self.narrowed(&depends, Moves::Membership, |_| None));
        }
        // Destinations (of a Binding that lists the object, if one is asked for).
        let object_listed = filter.object.as_ref().is_none_or(|o| {
            binding(&change.binding).is_some_and(|b| {
                b.cluster_scope
                    .iter()
                    .chain(&b.namespace_scope)
                    .any(|e| entry_is(e, o))
            })
        });
        let destinations = [
            (&change.destinations_added, true),
            (&change.destinations_removed, false),
        ];
        for (clusters, added) in destinations {
            for cluster in clusters {
                if filter.cluster.as_ref().is_some_and(|c| c != cluster) || !object_listed {
                    continue;
                }
                let wec = entity(WECS, "", cluster);
                let decides = |states: &States| {
                    let mut oracle = Oracle::default();
                    states.apply(&mut oracle);
                    oracle
                        .binding(&change.binding)
                        .is_some_and(|b| b.destinations.contains(cluster))
                };
                let depends = [wec, policy.clone()];
                let causes = self.narrowed(&depends, Moves::Membership, |candidates| {
                    self.counterfactual(candidates, added, decides)
                });
                let cluster = cluster.clone();
                push(
                    if added {
                        What::DestinationAdded { cluster }
                    } else {
                        What::DestinationRemoved { cluster }
                    },
                    causes,
                );
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
            if filter
                .object
                .as_ref()
                .is_some_and(|o| key_entity(o) != object)
            {
                continue;
            }
            if let Some(cluster) = &filter.cluster
                && !binding(&change.binding).is_some_and(|b| b.destinations.contains(cluster))
            {
                continue;
            }
            let mut depends = vec![object.clone(), policy.clone()];
            if !object.2.is_empty() {
                depends.push(entity(NAMESPACES, "", &object.2));
            }
            let name = object_name(&object);
            let what = match (removed, added) {
                (true, true) => What::WorkloadChanged { object: name },
                (false, _) => What::WorkloadAdded { object: name },
                (true, false) => What::WorkloadRemoved { object: name },
            };
            // The entry as the oracle has it, with the object's version left out (the
            // oracle is given none).
            let entry_of = |states: &States| {
                let mut oracle = Oracle::default();
                states.apply(&mut oracle);
                let binding = oracle.binding(&change.binding)?;
                let mut entries = binding
                    .cluster_scope
                    .into_iter()
                    .chain(binding.namespace_scope);
                entries.find(|e| entry_entity(e) == object)
            };
            let causes = if removed && added {
                let now = change
                    .workload_added
                    .iter()
                    .find(|e| entry_entity(e) == object)
                    .map(|e| WorkloadEntry {
                        version: String::new(),
                        ..e.clone()
                    });
                self.narrowed(&depends, Moves::Entry, |candidates| {
                    self.counterfactual(candidates, now, entry_of)
                })
            } else {
                self.narrowed(&depends, Moves::Membership, |candidates| {
                    self.counterfactual(candidates, added, |states| entry_of(states).is_some())
                })
            };
            push(what, causes);
        }
    }

    /// Every event of the epoch on `entities`, in log order.
    fn causes(&self, entities: &[Entity]) -> Vec<Cause> {
        let mut causes: Vec<Cause> = entities
            .iter()
            .filter_map(|e| self.moved.get(e))
            .flat_map(|m| m.causes.iter().map(|c| (*c).clone()))
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
        decide: impl FnOnce(&[&Entity]) -> Option<Vec<Entity>>,
    ) -> Vec<Cause> {
        let candidates: Vec<&Entity> = depends
            .iter()
            .filter(|e| {
                self.moved.get(e).is_some_and(|m| match moves {
                    Moves::Membership => m.moves_membership(),
                    Moves::Entry => m.moves_entry(),
                })
            })
            .collect();
        if candidates.is_empty() {
            return self.causes(depends);
        }
        if candidates.len() > 1
            && let Some(deciding) = decide(&candidates)
        {
            return self.causes(&deciding);
        }
        let candidates: Vec<Entity> = candidates.into_iter().cloned().collect();
        self.causes(&candidates)
    }

    /// The candidates that alone, put back as they were before the epoch, change the
    /// decision `decides` (whether the destination or entry is there, or the entry);
    /// all of them when none does alone; `None` when the decision with every candidate
    /// as it is now is not `now` (something the oracle is not given here decides: no
    /// narrowing).
    fn counterfactual<T: PartialEq>(
        &self,
        candidates: &[&Entity],
        now: T,
        decides: impl Fn(&States) -> T,
    ) -> Option<Vec<Entity>> {
        let after = States::after(self.moved, candidates);
        if decides(&after) != now {
            return None;
        }
        let flipping: Vec<Entity> = candidates
            .iter()
            .filter(|c| decides(&after.with_before(self.moved, c)) != now)
            .map(|c| (*c).clone())
            .collect();
        if flipping.is_empty() {
            Some(candidates.iter().map(|c| (*c).clone()).collect())
        } else {
            Some(flipping)
        }
    }
}

/// The candidate entities' states given to the oracle.
struct States<'a>(Vec<(&'a Entity, Option<&'a Seen>)>);

impl<'a> States<'a> {
    /// Every candidate as it is after the epoch.
    fn after(moved: &'a HashMap<&Entity, Moved<'a>>, candidates: &[&'a Entity]) -> States<'a> {
        States(
            candidates
                .iter()
                .map(|e| (*e, moved.get(e).and_then(|m| m.after)))
                .collect(),
        )
    }

    /// The same, with `which` as it was before the epoch.
    fn with_before(&self, moved: &'a HashMap<&Entity, Moved<'a>>, which: &Entity) -> States<'a> {
        States(
            self.0
                .iter()
                .map(|(e, s)| match *e == which {
                    true => (*e, moved.get(e).and_then(|m| m.before)),
                    false => (*e, *s),
                })
                .collect(),
        )
    }

    /// Gives the oracle these entities, as the engine would have them.
    fn apply(&self, oracle: &mut Oracle) {
        for ((group, resource, namespace, name), seen) in &self.0 {
            let Some(seen) = seen else { continue };
            let input = if (group.as_str(), resource.as_str()) == WECS {
                Input::Wec {
                    name: name.clone(),
                    labels: Some(seen.labels.clone()),
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
                        labels: seen.labels.clone(),
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
                key.clone(),
                Diff {
                    old: a.cloned(),
                    new: b.cloned(),
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
