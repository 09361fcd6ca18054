//! Random watch histories, shared by the oracle property tests: six watched resources
//! (WECs, policies, namespaces, ConfigMaps, and widgets in two versions of one CRD),
//! three policy specs, objects whose labels, specs and `resourceVersion`s vary, and
//! relists (`RESET` ... `SYNCED`) interleaved with the other events.

use std::collections::{BTreeMap, BTreeSet};

use bindery_engine::Oracle;
use bindery_ingest::{EventType, ResourceRef, Space, StateChange, WatchEvent, to_change};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The watched resources; widgets v1 and v2 are one resource in two versions.
pub fn resources() -> Vec<ResourceRef> {
    vec![
        ResourceRef::new(
            Space::Its,
            "cluster.open-cluster-management.io",
            "v1",
            "managedclusters",
        ),
        ResourceRef::new(
            Space::Wds,
            "control.kubestellar.io",
            "v1alpha1",
            "bindingpolicies",
        ),
        ResourceRef::new(Space::Wds, "", "v1", "namespaces"),
        ResourceRef::new(Space::Wds, "", "v1", "configmaps"),
        ResourceRef::new(Space::Wds, "example.com", "v1", "widgets"),
        ResourceRef::new(Space::Wds, "example.com", "v2", "widgets"),
    ]
}

/// How many resources [`resources`] lists.
pub const RESOURCES: usize = 6;
/// The family (resource without version) of each resource.
pub const FAMILY: [usize; RESOURCES] = [0, 1, 2, 3, 4, 4];
/// How many families there are.
pub const FAMILIES: usize = 5;
const NAMES: [&str; 3] = ["a", "b", "c"];
const NAMESPACES: [&str; 2] = ["ns0", "ns1"];

/// A policy spec by number: what the policies can be.
fn policy_spec(n: usize) -> Value {
    match n % 3 {
        0 => json!({
            "clusterSelectors": [{"matchLabels": {"env": "prod"}}],
            "downsync": [{"objectSelectors": [{"matchLabels": {"app": "x"}}]}],
        }),
        1 => json!({
            "clusterSelectors": [{"matchExpressions": [{"key": "env", "operator": "Exists"}]}],
            "downsync": [
                {"resources": ["widgets"], "apiGroup": "example.com"},
                {"resources": ["configmaps"], "namespaceSelectors": [{"matchLabels": {"team": "t1"}}]},
            ],
        }),
        _ => json!({
            "clusterSelectors": [{"matchLabels": {"env": "dev"}}],
            "downsync": [{"resources": ["namespaces", "configmaps"], "objectSelectors": [{"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["y"]}]}]}],
        }),
    }
}

/// The object of resource `r`, `(namespace index, name index)`, variant `v`, written at
/// `step` (its resourceVersion, so every write differs).
pub fn object(r: usize, ns: usize, name: usize, v: usize, step: usize) -> (String, String, Value) {
    let values = ["x", "y", "z"];
    let teams = ["t1", "t2", "t3"];
    let rv = step.to_string();
    match FAMILY[r] {
        0 => {
            let envs = ["prod", "dev", "test"];
            let env = envs[v % 3];
            let n = format!("c{}", NAMES[name]);
            let o = json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
                "metadata": {"name": n, "uid": format!("u-{n}"), "resourceVersion": rv, "labels": {"env": env}}});
            (String::new(), n, o)
        }
        1 => {
            let n = format!("p{}", NAMES[name]);
            let o = json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
                "metadata": {"name": n, "uid": format!("u-{n}"), "resourceVersion": rv, "generation": step},
                "spec": policy_spec(v)});
            (String::new(), n, o)
        }
        2 => {
            let n = NAMESPACES[name % 2].to_string();
            let o = json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": n, "uid": format!("u-{n}"), "resourceVersion": rv,
                    "labels": {"team": teams[v % 3], "app": values[v % 3]}}});
            (String::new(), n, o)
        }
        _ => {
            let namespace = NAMESPACES[ns % 2].to_string();
            let n = NAMES[name].to_string();
            let version = &resources()[r].version;
            let kind = if FAMILY[r] == 3 {
                "ConfigMap"
            } else {
                "Widget"
            };
            let api = if FAMILY[r] == 3 {
                "v1".to_string()
            } else {
                format!("example.com/{version}")
            };
            let o = json!({"apiVersion": api, "kind": kind,
                "metadata": {"name": n, "namespace": namespace, "uid": format!("u-{namespace}-{n}"),
                    "resourceVersion": rv, "labels": {"app": values[v % 3]}}});
            (namespace, n, o)
        }
    }
}

/// One step of a history.
#[derive(Clone, Debug)]
pub enum Op {
    /// An `ADDED` (`v` even) or `MODIFIED` (`v` odd) of an object in variant `v`.
    Upsert {
        r: usize,
        ns: usize,
        name: usize,
        v: usize,
    },
    /// A `DELETED`.
    Delete { r: usize, ns: usize, name: usize },
    /// A `RESET` of resource `r`.
    Reset(usize),
    /// A `SYNCED` of resource `r`.
    Synced(usize),
    /// Close an epoch, if the pipeline is publishable.
    Close,
}

/// A watch event of an [`Op`], written at `step`.
pub struct Event {
    /// The resource's index in [`resources`].
    pub r: usize,
    /// The event's type.
    pub event_type: EventType,
    /// The object's `(namespace, name)` (none for `RESET` and `SYNCED`).
    pub key: Option<(String, String)>,
    /// The object (none for `RESET` and `SYNCED`).
    pub object: Option<Value>,
}

impl Event {
    /// The watch event at time `ts`.
    pub fn watch_event(&self, ts: i64) -> WatchEvent {
        WatchEvent {
            ts,
            resource: resources()[self.r].clone(),
            event_type: self.event_type,
            object: self.object.clone(),
        }
    }
}

impl Op {
    /// The op's event, written at `step` (none for [`Op::Close`]).
    pub fn event(&self, step: usize) -> Option<Event> {
        let (r, event_type, key, object) = match *self {
            Op::Close => return None,
            Op::Upsert { r, ns, name, v } => {
                let (ns, name, object) = object(r, ns, name, v, step);
                let ty = if v % 2 == 0 {
                    EventType::Added
                } else {
                    EventType::Modified
                };
                (r, ty, Some((ns, name)), Some(object))
            }
            Op::Delete { r, ns, name } => {
                let (ns, name, object) = object(r, ns, name, 0, step);
                (r, EventType::Deleted, Some((ns, name)), Some(object))
            }
            Op::Reset(r) => (r, EventType::Reset, None, None),
            Op::Synced(r) => (r, EventType::Synced, None, None),
        };
        Some(Event {
            r,
            event_type,
            key,
            object,
        })
    }
}

/// One op: object writes most often, then closes, deletes, `SYNCED`s and `RESET`s.
pub fn op() -> impl Strategy<Value = Op> {
    let r = 0..RESOURCES;
    prop_oneof![
        6 => (r.clone(), 0..2usize, 0..3usize, 0..3usize).prop_map(|(r, ns, name, v)| Op::Upsert { r, ns, name, v }),
        2 => (r.clone(), 0..2usize, 0..3usize).prop_map(|(r, ns, name)| Op::Delete { r, ns, name }),
        1 => r.clone().prop_map(Op::Reset),
        2 => r.prop_map(Op::Synced),
        3 => Just(Op::Close),
    ]
}

/// A history: up to `before` ops, then every resource's SYNCED (in a random order) and
/// a close, then up to `after` more.
pub fn history(before: usize, after: usize) -> impl Strategy<Value = Vec<Op>> {
    (
        prop::collection::vec(op(), 0..before),
        Just((0..RESOURCES).collect::<Vec<usize>>()).prop_shuffle(),
        prop::collection::vec(op(), 0..after),
    )
        .prop_map(|(before, order, after)| {
            let mut ops = before;
            ops.extend(order.into_iter().map(Op::Synced));
            ops.push(Op::Close);
            ops.extend(after);
            ops
        })
}

/// An object's `(namespace, name)`.
pub type Key = (String, String);
/// An object: the resource it was last seen in, and its state.
pub type Obj = (usize, Value);

/// The watch-log rules, per family.
#[derive(Default)]
pub struct Model {
    /// Every object, per family, as the events say (a relist's `SYNCED` deletes the
    /// objects last seen in its version that it did not list).
    pub state: Vec<BTreeMap<Key, Obj>>,
    /// Resources seen, synced or not.
    pub synced: BTreeMap<usize, bool>,
    /// Resources relisting: the keys relisted since the RESET.
    relist: BTreeMap<usize, BTreeSet<Key>>,
    /// Every resource has synced once.
    pub complete: bool,
    /// Families held back, with their state when holding began.
    frozen: BTreeMap<usize, BTreeMap<Key, Obj>>,
}

impl Model {
    /// No resource seen yet.
    pub fn new() -> Model {
        Model {
            state: vec![BTreeMap::new(); FAMILIES],
            ..Model::default()
        }
    }

    fn family_unsynced(&self, f: usize) -> bool {
        self.synced.iter().any(|(r, s)| FAMILY[*r] == f && !s)
    }

    /// Applies one event.
    pub fn apply(&mut self, r: usize, ty: EventType, key: Option<Key>, object: Option<Value>) {
        let f = FAMILY[r];
        let before = self.state[f].clone();
        let held_before = self.complete && self.family_unsynced(f);
        let complete_before = self.complete;
        self.synced.entry(r).or_insert(false);
        match ty {
            EventType::Added | EventType::Modified => {
                let key = key.unwrap();
                if let Some(seen) = self.relist.get_mut(&r) {
                    seen.insert(key.clone());
                }
                self.state[f].insert(key, (r, object.unwrap()));
            }
            EventType::Deleted => {
                self.state[f].remove(&key.unwrap());
            }
            EventType::Reset => {
                self.relist.insert(r, BTreeSet::new());
                self.synced.insert(r, false);
            }
            EventType::Synced => {
                if let Some(seen) = self.relist.remove(&r) {
                    self.state[f].retain(|k, o| o.0 != r || seen.contains(k));
                }
                self.synced.insert(r, true);
            }
        }
        if complete_before && !held_before && self.family_unsynced(f) {
            self.frozen.insert(f, before);
        }
        if !self.family_unsynced(f) {
            self.frozen.remove(&f);
        }
        if self.synced.values().all(|s| *s) {
            self.complete = true;
        }
    }

    /// The oracle on the state the pipeline considers current.
    pub fn oracle(&self) -> Oracle {
        let resources = resources();
        let mut oracle = Oracle::default();
        for f in 0..FAMILIES {
            let objects = self.frozen.get(&f).unwrap_or(&self.state[f]);
            for (r, object) in objects.values() {
                let change = StateChange::Upsert {
                    resource: resources[*r].clone(),
                    object: object.clone(),
                };
                if let Some(change) = to_change(&change).unwrap() {
                    oracle.apply(&change);
                }
            }
        }
        oracle
    }
}

/// The number of cases: `PROPTEST_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
