//! History: each change of a Binding with the watch events that caused it
//! (`bindery history`, issue 20's first slice).
//!
//! A change's causes are the events of its epoch on what that part of the Binding
//! depends on: a destination on its WEC and on the policy; a workload entry on its
//! object, the object's namespace and the policy; the policy's owner, generation and
//! problems on the policy. A resource's events while it lists (its initial list, or a
//! relist from its `RESET`) count in the epoch of its `SYNCED`, where the engine applies
//! them; an object a relist no longer lists has the relist itself as its cause. Each cause carries its log line
//! and what it changed of the entity (labels old → new, `generation`,
//! `resourceVersion`, created or deleted), from the entity's previous event in the log.
//!
//! Not yet: narrowing the candidates to those that flip the deciding predicate (in a
//! recorded log an epoch is the events of one millisecond, so there are rarely
//! several), the live journal (`GET /history`) and Events on the policies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use anyhow::{Context, Result};

use bindery_engine::{Binding, BindingChange, ObjectKey, WorkloadEntry};
use bindery_ingest::feed::{INVENTORY_GROUP, INVENTORY_RESOURCE, POLICY_GROUP, POLICY_RESOURCE};
use bindery_ingest::{EventType, Meta, ResourceRef, WatchEvent};
use serde::Serialize;

use crate::input::pipeline::Pipeline;

/// The resource of ManagedClusters (the WECs), of BindingPolicies and of Namespaces.
const WECS: (&str, &str) = (INVENTORY_GROUP, INVENTORY_RESOURCE);
const POLICIES: (&str, &str) = (POLICY_GROUP, POLICY_RESOURCE);
const NAMESPACES: (&str, &str) = ("", "namespaces");

/// What a history query asks for (every part optional).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this Binding's changes.
    pub binding: Option<String>,
    /// Only changes of this object's entries (and of the destinations of Bindings that
    /// list it).
    pub object: Option<ObjectKey>,
    /// Only changes of this WEC as a destination (and of the entries of Bindings that
    /// have it).
    pub cluster: Option<String>,
    /// Only changes at or after this time (Unix ms).
    pub since: Option<i64>,
}

/// One entity of the log: `(group, resource, namespace, name)`.
type Entity = (String, String, String, String);

/// What a cause's diff shows of an entity, as the feed reads its metadata (an empty
/// `resourceVersion` and a generation of 0 are absent).
#[derive(Clone, Debug, Default, PartialEq)]
struct Seen {
    labels: BTreeMap<String, String>,
    resource_version: Option<String>,
    generation: Option<i64>,
}

impl Seen {
    fn of(meta: Meta) -> Seen {
        Seen {
            labels: meta.labels,
            resource_version: Some(meta.resource_version).filter(|rv| !rv.is_empty()),
            generation: Some(meta.generation).filter(|&g| g != 0),
        }
    }
}

/// A value before and after (`None`: absent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff<T> {
    /// Before.
    pub old: Option<T>,
    /// After.
    pub new: Option<T>,
}

/// One watch event that caused a change, with what it changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cause {
    /// Its line in the log.
    pub line: u64,
    /// Its time (Unix ms).
    pub ts: i64,
    /// `ADDED`, `MODIFIED`, `DELETED`, or `SYNCED` for a relist that no longer listed
    /// the object.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `group/resource` (`resource` for the core group).
    pub resource: String,
    /// The entity's namespace (empty: cluster-scoped, or a relist).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The entity's name (empty: a relist).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Labels that changed, by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Diff<String>>,
    /// `metadata.generation`, if it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<Diff<i64>>,
    /// `metadata.resourceVersion`, if it changed.
    #[serde(rename = "resourceVersion", skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<Diff<String>>,
}

/// What changed of a Binding.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum What {
    /// A WEC became a destination.
    DestinationAdded {
        /// The WEC.
        cluster: String,
    },
    /// A WEC stopped being a destination.
    DestinationRemoved {
        /// The WEC.
        cluster: String,
    },
    /// An object's entry was added.
    WorkloadAdded {
        /// `GROUP/RESOURCE/[NAMESPACE/]NAME`.
        object: String,
    },
    /// An object's entry was removed.
    WorkloadRemoved {
        /// `GROUP/RESOURCE/[NAMESPACE/]NAME`.
        object: String,
    },
    /// An object's entry changed (its `resourceVersion` or modulation).
    WorkloadChanged {
        /// `GROUP/RESOURCE/[NAMESPACE/]NAME`.
        object: String,
    },
    /// The Binding appeared, went, or follows another generation of its policy.
    Owner {
        /// Whether the Binding exists now.
        exists: bool,
        /// The policy generation it follows.
        generation: Option<i64>,
    },
    /// The policy's problems became these.
    Problems {
        /// The problems (none: resolved).
        problems: Vec<String>,
    },
}

/// One change of a Binding and its causes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// When its epoch closed: the time of the epoch's last event (Unix ms).
    pub ts: i64,
    /// The epoch (as `bindery replay --emit-deltas` numbers them).
    pub epoch: u64,
    /// The Binding (its policy's name).
    pub binding: String,
    /// What changed.
    pub change: What,
    /// The events that caused it, in log order.
    pub causes: Vec<Cause>,
}

/// An event read, kept while its epoch (or its resource's relist) is open.
#[derive(Clone, Debug)]
struct Read {
    cause: Cause,
    entity: Option<Entity>,
}

/// Follows a log event by event and attributes each epoch's Binding changes.
#[derive(Default)]
pub struct Attributor {
    /// Each entity as its latest event showed it (the `old` side of a diff).
    last: HashMap<Entity, Seen>,
    /// The events of the open epoch.
    epoch: Vec<Read>,
    /// Resources that have synced and not relisted since.
    listed: HashSet<(String, String)>,
    /// The events of the resources listing (an initial list or a relist), held until
    /// their `SYNCED`, as the engine holds their changes.
    held: HashMap<(String, String), Vec<Read>>,
    /// Resources whose list completes in the open epoch, with their `SYNCED` line.
    synced: Vec<((String, String), Cause)>,
}

fn gr(r: &ResourceRef) -> (String, String) {
    (r.group.clone(), r.resource.clone())
}

fn resource_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{group}/{resource}")
    }
}

impl Attributor {
    /// Notes `event`, read at `line`, before it is applied.
    pub fn read(&mut self, line: u64, event: &WatchEvent) {
        let (group, resource) = gr(&event.resource);
        let mut cause = Cause {
            line,
            ts: event.ts,
            event_type: event.event_type.as_str().to_string(),
            resource: resource_name(&group, &resource),
            namespace: String::new(),
            name: String::new(),
            labels: BTreeMap::new(),
            generation: None,
            resource_version: None,
        };
        match event.event_type {
            EventType::Reset => {
                self.listed.remove(&(group.clone(), resource.clone()));
                self.held.insert((group, resource), Vec::new());
                return;
            }
            EventType::Synced => {
                let key = (group, resource);
                if let Some(held) = self.held.remove(&key) {
                    self.epoch.extend(held);
                }
                self.listed.insert(key.clone());
                self.synced.push((key, cause));
                return;
            }
            _ => {}
        }
        // Malformed metadata: the pipeline refuses the event, naming its line.
        let Some(meta) = event
            .object
            .as_ref()
            .and_then(|o| Meta::read(&event.resource, o).ok())
        else {
            return;
        };
        cause.namespace = meta.namespace.clone();
        cause.name = meta.name.clone();
        let entity = (
            group.clone(),
            resource.clone(),
            cause.namespace.clone(),
            cause.name.clone(),
        );
        let new = (event.event_type != EventType::Deleted).then(|| Seen::of(meta));
        let old = match &new {
            Some(m) => self.last.insert(entity.clone(), m.clone()),
            None => self.last.remove(&entity),
        };
        diff_into(&mut cause, old.as_ref(), new.as_ref());
        let read = Read {
            cause,
            entity: Some(entity),
        };
        let key = (group, resource);
        if self.listed.contains(&key) {
            self.epoch.push(read);
        } else {
            self.held.entry(key).or_default().push(read);
        }
    }

    /// Attributes the changes of the epoch just closed (`epoch`, its last event at
    /// `ts`); `binding(name)` gives a Binding as it is now (read only by the object
    /// and cluster filters: which Bindings list the object, or have the WEC).
    pub fn close(
        &mut self,
        epoch: u64,
        ts: i64,
        changes: &[BindingChange],
        filter: &Filter,
        binding: &mut dyn FnMut(&str) -> Option<Rc<Binding>>,
    ) -> Vec<Change> {
        let reads = std::mem::take(&mut self.epoch);
        let synced = std::mem::take(&mut self.synced);
        let mut by_entity: HashMap<&Entity, Vec<&Cause>> = HashMap::new();
        for r in &reads {
            if let Some(e) = &r.entity {
                by_entity.entry(e).or_default().push(&r.cause);
            }
        }
        let mut out = Vec::new();
        if filter.since.is_some_and(|since| ts < since) {
            return out;
        }
        for change in changes {
            if filter
                .binding
                .as_ref()
                .is_some_and(|b| *b != change.binding)
            {
                continue;
            }
            let policy = entity(POLICIES, "", &change.binding);
            let causes_of = |entities: &[Entity]| -> Vec<Cause> {
                let mut causes: Vec<Cause> = entities
                    .iter()
                    .filter_map(|e| by_entity.get(e))
                    .flatten()
                    .map(|c| (*c).clone())
                    .collect();
                causes.sort_by_key(|c| c.line);
                causes
            };
            let mut push = |what: What, causes: Vec<Cause>| {
                out.push(Change {
                    ts,
                    epoch,
                    binding: change.binding.clone(),
                    change: what,
                    causes,
                })
            };
            // The policy's own changes.
            let owner_or_problems = filter.object.is_none() && filter.cluster.is_none();
            if change.owner_changed && owner_or_problems {
                push(
                    What::Owner {
                        exists: change.exists,
                        generation: change.generation,
                    },
                    causes_of(std::slice::from_ref(&policy)),
                );
            }
            if let (Some(problems), true) = (&change.problems, owner_or_problems) {
                push(
                    What::Problems {
                        problems: problems.clone(),
                    },
                    causes_of(std::slice::from_ref(&policy)),
                );
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
                    let causes = causes_of(&[entity(WECS, "", cluster), policy.clone()]);
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
                let mut causes = causes_of(&depends);
                if causes.is_empty() {
                    // Not listed by a relist that completed here.
                    causes.extend(
                        synced
                            .iter()
                            .filter(|(r, _)| r.0 == object.0 && r.1 == object.1)
                            .map(|(_, c)| c.clone()),
                    );
                }
                let name = object_name(&object);
                push(
                    match (removed, added) {
                        (true, true) => What::WorkloadChanged { object: name },
                        (false, _) => What::WorkloadAdded { object: name },
                        (true, false) => What::WorkloadRemoved { object: name },
                    },
                    causes,
                );
            }
        }
        out
    }
}

fn entity((group, resource): (&str, &str), namespace: &str, name: &str) -> Entity {
    (
        group.to_string(),
        resource.to_string(),
        namespace.to_string(),
        name.to_string(),
    )
}

fn entry_entity(e: &WorkloadEntry) -> Entity {
    (
        e.group.clone(),
        e.resource.clone(),
        e.namespace.clone(),
        e.name.clone(),
    )
}

fn key_entity(o: &ObjectKey) -> Entity {
    (
        o.group.clone(),
        o.resource.clone(),
        o.namespace.clone(),
        o.name.clone(),
    )
}

fn entry_is(e: &WorkloadEntry, o: &ObjectKey) -> bool {
    entry_entity(e) == key_entity(o)
}

/// `GROUP/RESOURCE/[NAMESPACE/]NAME`, as `--object` takes it.
fn object_name((group, resource, namespace, name): &Entity) -> String {
    if namespace.is_empty() {
        format!("{group}/{resource}/{name}")
    } else {
        format!("{group}/{resource}/{namespace}/{name}")
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

/// The changes as text, one block per change: its time, epoch, Binding and what
/// changed, then a line per cause.
pub fn to_text(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        let what = match &c.change {
            What::DestinationAdded { cluster } => format!("+ destination {cluster}"),
            What::DestinationRemoved { cluster } => format!("- destination {cluster}"),
            What::WorkloadAdded { object } => format!("+ workload {object}"),
            What::WorkloadRemoved { object } => format!("- workload {object}"),
            What::WorkloadChanged { object } => format!("~ workload {object}"),
            What::Owner {
                exists: true,
                generation,
            } => format!(
                "~ Binding of policy generation {}",
                generation.map_or_else(|| "?".to_string(), |g| g.to_string())
            ),
            What::Owner { exists: false, .. } => "- Binding".to_string(),
            What::Problems { problems } if problems.is_empty() => "~ problems: none".to_string(),
            What::Problems { problems } => format!("~ problems: {}", problems.join("; ")),
        };
        out.push_str(&format!(
            "{}  epoch {}  {}  {}\n",
            crate::cmd::log_time::display(c.ts),
            c.epoch,
            c.binding,
            what
        ));
        if c.causes.is_empty() {
            out.push_str("    cause: none found in the epoch's events\n");
        }
        for cause in &c.causes {
            let mut line = format!(
                "    line {}  {} {}",
                cause.line, cause.event_type, cause.resource
            );
            match (cause.namespace.is_empty(), cause.name.is_empty()) {
                (_, true) => line.push_str(" (relist)"),
                (true, false) => line.push_str(&format!(" {}", cause.name)),
                (false, false) => line.push_str(&format!(" {}/{}", cause.namespace, cause.name)),
            }
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
            for (key, d) in &cause.labels {
                line.push_str(&format!("  {key}: {} → {}", show(&d.old), show(&d.new)));
            }
            if let Some(g) = &cause.generation {
                let show =
                    |v: Option<i64>| v.map_or_else(|| "(none)".to_string(), |g| g.to_string());
                line.push_str(&format!("  generation {} → {}", show(g.old), show(g.new)));
            }
            if let Some(rv) = &cause.resource_version {
                line.push_str(&format!(
                    "  resourceVersion {} → {}",
                    show(&rv.old),
                    show(&rv.new)
                ));
            }
            line.push('\n');
            out.push_str(&line);
        }
    }
    out
}

/// Replays `events` (each with its log line; up to the first later than `until`) and
/// hands the changes `filter` asks for to `emit`, epoch by epoch, in time order. Epochs
/// are those of `bindery replay` (the events of one timestamp, by
/// [`Pipeline::closes_before`]); `name` names the log in errors.
pub fn replay(
    events: impl Iterator<Item = Result<(u64, WatchEvent)>>,
    filter: &Filter,
    until: Option<i64>,
    name: &str,
    emit: &mut dyn FnMut(&[Change]) -> Result<()>,
) -> Result<()> {
    let mut pipeline = Pipeline::new();
    let mut attributor = Attributor::default();
    let (mut epoch_start, mut last_ts) = (None, 0);
    let close = |pipeline: &mut Pipeline, attributor: &mut Attributor, ts: i64| {
        let out = pipeline.close_epoch();
        let engine = pipeline.engine();
        let mut rendered: HashMap<String, Option<Rc<Binding>>> = HashMap::new();
        let mut binding = |name: &str| {
            rendered
                .entry(name.to_string())
                .or_insert_with(|| engine.binding(name).map(Rc::new))
                .clone()
        };
        attributor.close(out.epoch, ts, &out.changes, filter, &mut binding)
    };
    for event in events {
        let (line, event) = event?;
        let ts = event.ts;
        if until.is_some_and(|t| ts > t) {
            break;
        }
        if pipeline.closes_before(epoch_start, ts, 0) {
            emit(&close(&mut pipeline, &mut attributor, last_ts))?;
            epoch_start = None;
        }
        epoch_start.get_or_insert(ts);
        last_ts = ts;
        attributor.read(line, &event);
        pipeline
            .push(event)
            .with_context(|| format!("{name}:{line}"))?;
    }
    pipeline.view().judge(name)?;
    if pipeline.pending() > 0 {
        emit(&close(&mut pipeline, &mut attributor, last_ts))?;
    }
    Ok(())
}
