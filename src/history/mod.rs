//! History: each change of a Binding with the watch events that caused it
//! (`bindery history` on a log, `GET /history` on a running `bindery run`).
//!
//! A change's candidates are the events of its epoch on what that part of the Binding
//! depends on: a destination on its WEC and on the policy; a workload entry on its
//! object, the object's namespace and the policy; the policy's owner and generation on
//! the policy, its problems also on its WECs. The attributor (`attribute.rs`) narrows
//! them to the causes.
//! A resource's events while it lists (its initial list, or a relist from its `RESET`)
//! count in the epoch of its `SYNCED`, where the engine applies them; an object a
//! relist no longer lists has the relist itself as its cause. Each cause carries its
//! log line and what it changed of the entity (labels old → new, `generation`,
//! `resourceVersion`, created or deleted), from the entity's previous event.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use anyhow::{Context, Result};
use bindery_engine::{Binding, ObjectKey, WorkloadEntry};
use bindery_ingest::WatchEvent;
use bindery_ingest::feed::{INVENTORY_GROUP, INVENTORY_RESOURCE, POLICY_GROUP, POLICY_RESOURCE};
use serde::Serialize;

use crate::input::pipeline::Pipeline;

mod attribute;
pub mod journal;
mod text;

pub use attribute::Attributor;
pub use text::{cause_text, journal_text, to_text};

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

impl Filter {
    /// Whether it may keep some change of Binding `binding` at `ts` (by the Binding
    /// and the time alone).
    pub fn may_keep(&self, binding: &str, ts: i64) -> bool {
        self.binding.as_ref().is_none_or(|b| b == binding) && self.since.is_none_or(|s| ts >= s)
    }

    /// Whether it keeps `what`, a change of Binding `binding` at `ts`; `bindings(name)`
    /// gives a Binding (read only by the object and cluster filters: the destinations
    /// of the Bindings listing the object, the entries of the Bindings that have the
    /// WEC).
    pub fn keeps(
        &self,
        binding: &str,
        ts: i64,
        what: &What,
        bindings: &mut dyn FnMut(&str) -> Option<Rc<Binding>>,
    ) -> bool {
        if !self.may_keep(binding, ts) {
            return false;
        }
        match what {
            What::Owner { .. } | What::Problems { .. } => {
                self.object.is_none() && self.cluster.is_none()
            }
            What::DestinationAdded { cluster } | What::DestinationRemoved { cluster } => {
                self.cluster.as_ref().is_none_or(|c| c == cluster)
                    && self.object.as_ref().is_none_or(|o| {
                        bindings(binding).is_some_and(|b| {
                            b.cluster_scope
                                .iter()
                                .chain(&b.namespace_scope)
                                .any(|e| entry_is(e, o))
                        })
                    })
            }
            What::WorkloadAdded { object }
            | What::WorkloadRemoved { object }
            | What::WorkloadChanged { object } => {
                self.object
                    .as_ref()
                    .is_none_or(|o| object_name(&key_entity(o)) == *object)
                    && self.cluster.as_ref().is_none_or(|c| {
                        bindings(binding).is_some_and(|b| b.destinations.contains(c))
                    })
            }
        }
    }
}

/// One entity of the log: `(group, resource, namespace, name)`.
type Entity = (String, String, String, String);

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

fn resource_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{group}/{resource}")
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
        attributor
            .push(&mut pipeline, line, event)
            .with_context(|| format!("{name}:{line}"))?;
    }
    pipeline.view().judge(name)?;
    if pipeline.pending() > 0 {
        emit(&close(&mut pipeline, &mut attributor, last_ts))?;
    }
    Ok(())
}
