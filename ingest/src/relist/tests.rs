//! Tests of the relist tracker, including a model-based property test.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::watchlog::Space;

fn resource(name: &str) -> ResourceRef {
    ResourceRef::new(Space::Wds, "", "v1", name)
}

fn widgets(version: &str) -> ResourceRef {
    ResourceRef::new(Space::Wds, "example.com", version, "widgets")
}

fn object(ns: &str, name: &str) -> Value {
    let mut metadata = json!({"name": name});
    if !ns.is_empty() {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata})
}

fn event(res: &ResourceRef, event_type: EventType, key: Option<(&str, &str)>) -> WatchEvent {
    WatchEvent {
        ts: 0,
        resource: res.clone(),
        event_type,
        object: key.map(|(ns, name)| object(ns, name)),
    }
}

fn delete(res: &ResourceRef, ns: &str, name: &str) -> StateChange {
    StateChange::Delete {
        resource: res.clone(),
        namespace: ns.to_owned(),
        name: name.to_owned(),
    }
}

fn upsert(res: &ResourceRef, ns: &str, name: &str) -> StateChange {
    StateChange::Upsert {
        resource: res.clone(),
        object: object(ns, name),
    }
}

fn synced(res: &ResourceRef) -> StateChange {
    StateChange::Synced {
        resource: res.clone(),
    }
}

/// Applies `events` in order; returns the changes passed on by the last one.
fn run(t: &mut RelistTracker, events: &[WatchEvent]) -> Vec<StateChange> {
    let mut last = Vec::new();
    for ev in events {
        last = t.apply(ev).unwrap();
    }
    last
}

/// A tracker whose view is complete: `res` listed with `keys` and synced.
fn complete_with(res: &ResourceRef, keys: &[(&str, &str)]) -> RelistTracker {
    let mut t = RelistTracker::new();
    for &key in keys {
        t.apply(&event(res, EventType::Added, Some(key))).unwrap();
    }
    t.apply(&event(res, EventType::Synced, None)).unwrap();
    assert!(t.complete());
    t
}

#[test]
fn before_the_view_is_complete_a_relist_passes_at_once() {
    let cm = resource("configmaps");
    let pending = resource("secrets");
    let mut t = RelistTracker::new();
    // secrets never syncs: the view is never complete, nothing is held.
    t.apply(&event(&pending, EventType::Reset, None)).unwrap();
    for (ns, name) in [("a", "1"), ("a", "2"), ("b", "1"), ("", "c")] {
        let changes = t
            .apply(&event(&cm, EventType::Added, Some((ns, name))))
            .unwrap();
        assert_eq!(changes, vec![upsert(&cm, ns, name)]);
    }
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![synced(&cm)]
    );
    assert!(!t.complete());
    assert!(
        t.apply(&event(&cm, EventType::Reset, None))
            .unwrap()
            .is_empty()
    );
    assert!(t.is_relisting(&cm));
    assert!(!t.holds(&cm));
    assert_eq!(
        t.object_count(),
        4,
        "a relist deletes nothing before its SYNCED"
    );
    assert_eq!(
        t.apply(&event(&cm, EventType::Added, Some(("a", "2"))))
            .unwrap(),
        vec![upsert(&cm, "a", "2")]
    );
    t.apply(&event(&cm, EventType::Added, Some(("z", "new"))))
        .unwrap();
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![
            delete(&cm, "", "c"),
            delete(&cm, "a", "1"),
            delete(&cm, "b", "1"),
            synced(&cm),
        ]
    );
    assert_eq!(
        t.present_keys(&cm),
        vec![("a".into(), "2".into()), ("z".into(), "new".into())]
    );
    assert!(t.contains(&cm, "a", "2"));
    assert!(!t.contains(&cm, "a", "1"));
    assert!(!t.is_relisting(&cm));
    assert_eq!(t.held_count(), 0);
}

#[test]
fn once_complete_a_relist_is_held_and_applied_as_one_difference_at_its_synced() {
    let cm = resource("configmaps");
    let mut t = complete_with(&cm, &[("a", "1"), ("a", "2"), ("b", "1"), ("", "c")]);
    assert!(
        t.apply(&event(&cm, EventType::Reset, None))
            .unwrap()
            .is_empty()
    );
    assert!(t.holds(&cm));
    for ev in [
        event(&cm, EventType::Added, Some(("a", "2"))),
        event(&cm, EventType::Added, Some(("z", "new"))),
        event(&cm, EventType::Modified, Some(("a", "2"))),
        event(&cm, EventType::Added, Some(("b", "1"))),
        event(&cm, EventType::Deleted, Some(("b", "1"))),
    ] {
        assert!(t.apply(&ev).unwrap().is_empty(), "held: {ev:?}");
    }
    assert_eq!(t.held_count(), 3, "latest per object: a/2, z/new, b/1");
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![
            delete(&cm, "", "c"),
            delete(&cm, "a", "1"),
            upsert(&cm, "a", "2"),
            delete(&cm, "b", "1"),
            upsert(&cm, "z", "new"),
            synced(&cm),
        ]
    );
    assert_eq!(t.held_count(), 0);
    assert!(!t.holds(&cm));
    // Synced again: events pass at once.
    assert_eq!(
        t.apply(&event(&cm, EventType::Added, Some(("q", "q"))))
            .unwrap(),
        vec![upsert(&cm, "q", "q")]
    );
}

#[test]
fn a_held_relist_holds_back_only_its_own_resource() {
    let cm = resource("configmaps");
    let ns = resource("namespaces");
    let mut t = RelistTracker::new();
    run(
        &mut t,
        &[
            event(&cm, EventType::Added, Some(("a", "1"))),
            event(&cm, EventType::Synced, None),
            event(&ns, EventType::Added, Some(("", "a"))),
            event(&ns, EventType::Synced, None),
        ],
    );
    assert!(t.complete());
    t.apply(&event(&cm, EventType::Reset, None)).unwrap();
    assert!(!t.all_synced());
    assert!(t.complete(), "complete stays true during a relist");
    assert!(!t.holds(&ns));
    assert_eq!(
        t.apply(&event(&ns, EventType::Added, Some(("", "b"))))
            .unwrap(),
        vec![upsert(&ns, "", "b")]
    );
    assert_eq!(
        t.apply(&event(&ns, EventType::Deleted, Some(("", "a"))))
            .unwrap(),
        vec![delete(&ns, "", "a")]
    );
    assert!(
        t.apply(&event(&cm, EventType::Added, Some(("a", "2"))))
            .unwrap()
            .is_empty()
    );
    assert_eq!(t.unsynced(), vec![cm.clone()]);
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![delete(&cm, "a", "1"), upsert(&cm, "a", "2"), synced(&cm)]
    );
    assert!(t.all_synced());
}

#[test]
fn once_complete_a_new_resource_is_held_until_its_synced() {
    let cm = resource("configmaps");
    let mut t = complete_with(&cm, &[("a", "1")]);
    let fresh = resource("services");
    assert!(t.holds(&fresh), "an unknown resource would be listing");
    // A log's new resource need not start with RESET.
    assert!(
        t.apply(&event(&fresh, EventType::Added, Some(("a", "s"))))
            .unwrap()
            .is_empty()
    );
    assert!(!t.all_synced());
    assert_eq!(t.never_synced(), vec![fresh.clone()]);
    assert_eq!(
        t.apply(&event(&cm, EventType::Modified, Some(("a", "1"))))
            .unwrap(),
        vec![upsert(&cm, "a", "1")]
    );
    assert_eq!(
        t.apply(&event(&fresh, EventType::Synced, None)).unwrap(),
        vec![upsert(&fresh, "a", "s"), synced(&fresh)]
    );
    assert!(t.never_synced().is_empty());
    t.apply(&event(&fresh, EventType::Reset, None)).unwrap();
    assert!(
        t.never_synced().is_empty(),
        "a relist is not an initial list"
    );
}

#[test]
fn restarted_relist_keeps_what_the_aborted_one_listed() {
    let cm = resource("configmaps");
    let pending = resource("secrets");
    let mut t = RelistTracker::new();
    t.apply(&event(&pending, EventType::Reset, None)).unwrap();
    t.apply(&event(&cm, EventType::Added, Some(("a", "1"))))
        .unwrap();
    t.apply(&event(&cm, EventType::Reset, None)).unwrap();
    t.apply(&event(&cm, EventType::Added, Some(("a", "2"))))
        .unwrap();
    t.apply(&event(&cm, EventType::Reset, None)).unwrap();
    t.apply(&event(&cm, EventType::Modified, Some(("a", "1"))))
        .unwrap();
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![delete(&cm, "a", "2"), synced(&cm)]
    );
}

#[test]
fn a_restarted_held_relist_is_applied_once_as_the_last_list_says() {
    let cm = resource("configmaps");
    let mut t = complete_with(&cm, &[("a", "1"), ("a", "3")]);
    let changes = run(
        &mut t,
        &[
            event(&cm, EventType::Reset, None),
            event(&cm, EventType::Added, Some(("a", "1"))),
            event(&cm, EventType::Added, Some(("a", "2"))),
            event(&cm, EventType::Reset, None),
            event(&cm, EventType::Added, Some(("a", "3"))),
            event(&cm, EventType::Synced, None),
        ],
    );
    assert_eq!(
        changes,
        vec![
            delete(&cm, "a", "1"),
            delete(&cm, "a", "2"),
            upsert(&cm, "a", "3"),
            synced(&cm)
        ]
    );
    assert_eq!(t.present_keys(&cm), vec![("a".into(), "3".into())]);
}

#[test]
fn deleted_during_relist_is_not_deleted_again() {
    let cm = resource("configmaps");
    let pending = resource("secrets");
    let mut t = RelistTracker::new();
    t.apply(&event(&pending, EventType::Reset, None)).unwrap();
    t.apply(&event(&cm, EventType::Added, Some(("a", "1"))))
        .unwrap();
    t.apply(&event(&cm, EventType::Reset, None)).unwrap();
    assert_eq!(
        t.apply(&event(&cm, EventType::Deleted, Some(("a", "1"))))
            .unwrap(),
        vec![delete(&cm, "a", "1")]
    );
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![synced(&cm)]
    );
    // A DELETED of an unknown object still yields a Delete.
    assert_eq!(
        t.apply(&event(&cm, EventType::Deleted, Some(("q", "q"))))
            .unwrap(),
        vec![delete(&cm, "q", "q")]
    );
}

/// A CRD version switch where the new version lists first, then the old one's empty
/// relist (its watch stopped) clears it: the object seen in `v2` stays.
#[test]
fn a_relist_of_one_version_keeps_objects_seen_in_another_new_version_first() {
    for complete in [false, true] {
        let (v1, v2) = (widgets("v1"), widgets("v2"));
        let mut t = if complete {
            complete_with(&v1, &[("a", "w"), ("a", "old")])
        } else {
            let mut t = RelistTracker::new();
            t.apply(&event(&resource("secrets"), EventType::Reset, None))
                .unwrap();
            run(
                &mut t,
                &[
                    event(&v1, EventType::Added, Some(("a", "w"))),
                    event(&v1, EventType::Added, Some(("a", "old"))),
                    event(&v1, EventType::Synced, None),
                ],
            );
            t
        };
        let mut passed = Vec::new();
        for ev in [
            event(&v2, EventType::Reset, None),
            event(&v2, EventType::Added, Some(("a", "w"))),
            event(&v2, EventType::Synced, None),
            event(&v1, EventType::Reset, None),
            event(&v1, EventType::Synced, None),
        ] {
            passed.extend(t.apply(&ev).unwrap());
        }
        let passed: Vec<StateChange> = passed
            .into_iter()
            .filter(|c| !matches!(c, StateChange::Synced { .. }))
            .collect();
        assert_eq!(
            passed,
            vec![upsert(&v2, "a", "w"), delete(&v1, "a", "old")],
            "complete: {complete}"
        );
        assert!(t.contains(&v2, "a", "w"));
        assert!(!t.contains(&v1, "a", "w"));
        assert_eq!(t.present_keys(&v1), Vec::<(String, String)>::new());
        assert_eq!(t.object_count(), 1);
    }
}

/// The switch in the order the live plan sends it: the new version's `RESET`, the old
/// version's empty relist, then the new version's list. Once complete, the widgets are
/// held from the first `RESET` to the new version's `SYNCED`, so no epoch sees them
/// gone.
#[test]
fn a_relist_of_one_version_keeps_objects_seen_in_another_old_version_first() {
    for complete in [false, true] {
        let (v1, v2) = (widgets("v1"), widgets("v2"));
        let mut t = if complete {
            complete_with(&v1, &[("a", "w"), ("a", "old")])
        } else {
            let mut t = RelistTracker::new();
            t.apply(&event(&resource("secrets"), EventType::Reset, None))
                .unwrap();
            run(
                &mut t,
                &[
                    event(&v1, EventType::Added, Some(("a", "w"))),
                    event(&v1, EventType::Added, Some(("a", "old"))),
                    event(&v1, EventType::Synced, None),
                ],
            );
            t
        };
        let mut by_event = Vec::new();
        for ev in [
            event(&v2, EventType::Reset, None),
            event(&v1, EventType::Reset, None),
            event(&v1, EventType::Synced, None),
            event(&v2, EventType::Reset, None),
            event(&v2, EventType::Added, Some(("a", "w"))),
            event(&v2, EventType::Synced, None),
        ] {
            by_event.push(
                t.apply(&ev)
                    .unwrap()
                    .into_iter()
                    .filter(|c| !matches!(c, StateChange::Synced { .. }))
                    .collect::<Vec<_>>(),
            );
        }
        if complete {
            assert!(by_event[..5].iter().all(Vec::is_empty), "{by_event:?}");
            assert_eq!(
                by_event[5],
                vec![delete(&v1, "a", "old"), upsert(&v2, "a", "w")]
            );
        } else {
            assert_eq!(
                by_event.concat(),
                vec![
                    delete(&v1, "a", "old"),
                    delete(&v1, "a", "w"),
                    upsert(&v2, "a", "w")
                ]
            );
        }
        assert!(t.contains(&v2, "a", "w"));
        assert_eq!(t.object_count(), 1);
        assert!(t.is_synced(&v1) && t.is_synced(&v2));
    }
}

#[test]
fn all_synced_transitions() {
    let cm = resource("configmaps");
    let ns = resource("namespaces");
    let mut t = RelistTracker::new();
    assert!(!t.all_synced(), "nothing known is not synced");
    assert!(!t.complete());
    t.apply(&event(&cm, EventType::Added, Some(("a", "1"))))
        .unwrap();
    t.apply(&event(&ns, EventType::Added, Some(("", "a"))))
        .unwrap();
    assert_eq!(t.unsynced(), vec![cm.clone(), ns.clone()]);
    t.apply(&event(&cm, EventType::Synced, None)).unwrap();
    assert!(!t.all_synced());
    assert!(!t.complete());
    assert_eq!(t.unsynced(), vec![ns.clone()]);
    assert_eq!(t.unsynced_names(), vec![ns.to_string()]);
    assert_eq!((t.synced_count(), t.resource_count()), (1, 2));
    t.apply(&event(&ns, EventType::Synced, None)).unwrap();
    assert!(t.all_synced());
    assert!(t.complete());
    assert!(t.unsynced().is_empty());
    assert_eq!(t.synced_count(), 2);
    t.apply(&event(&ns, EventType::Added, Some(("", "b"))))
        .unwrap();
    assert!(t.all_synced(), "events after SYNCED keep it synced");
    t.apply(&event(&ns, EventType::Reset, None)).unwrap();
    assert!(!t.all_synced());
    assert!(!t.is_synced(&ns));
    assert_eq!(t.unsynced(), vec![ns.clone()]);
    t.apply(&event(&ns, EventType::Synced, None)).unwrap();
    assert!(t.all_synced());
    let other = resource("secrets");
    t.apply(&event(&other, EventType::Reset, None)).unwrap();
    assert_eq!(t.unsynced(), vec![other]);
}

#[test]
fn missing_name_is_an_error_and_changes_nothing() {
    let cm = resource("configmaps");
    let mut t = RelistTracker::new();
    for object in [
        json!({"metadata": {}}),
        json!({"metadata": {"name": ""}}),
        json!({}),
    ] {
        let ev = WatchEvent {
            object: Some(object),
            ..event(&cm, EventType::Added, None)
        };
        let err = t.apply(&ev).unwrap_err();
        assert!(matches!(err, RelistError::MissingName { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "wds:v1/configmaps: the object has no metadata.name"
        );
    }
    let err = t.apply(&event(&cm, EventType::Deleted, None)).unwrap_err();
    assert!(matches!(err, RelistError::MissingObject { .. }), "{err}");
    let ev = WatchEvent {
        object: Some(json!({"metadata": {"name": "x", "namespace": 3}})),
        ..event(&cm, EventType::Added, None)
    };
    assert!(matches!(
        t.apply(&ev),
        Err(RelistError::BadNamespace { .. })
    ));
    assert_eq!(t.object_count(), 0);
    assert!(
        t.unsynced().is_empty(),
        "a rejected event does not make a resource known"
    );
}

#[test]
fn a_held_object_the_engine_cannot_read_is_refused_when_it_arrives() {
    let cm = resource("configmaps");
    let mut t = complete_with(&cm, &[("a", "1")]);
    t.apply(&event(&cm, EventType::Reset, None)).unwrap();
    let ev = WatchEvent {
        object: Some(json!({"metadata": {"name": "1", "namespace": "a", "labels": {"k": 1}}})),
        ..event(&cm, EventType::Added, None)
    };
    let err = t.apply(&ev).unwrap_err();
    assert!(matches!(err, RelistError::Feed(_)), "{err}");
    assert!(err.to_string().contains("metadata.labels"), "{err}");
    assert_eq!(t.held_count(), 0);
    // Not relisted, so the relist deletes it.
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![delete(&cm, "a", "1"), synced(&cm)]
    );
}

/// One step of a random history.
#[derive(Clone, Debug)]
enum Op {
    Upsert(usize, usize, bool),
    Delete(usize, usize),
    Reset(usize),
    Synced(usize),
}

/// Three resources; the last two are one family in two versions.
fn resources() -> [ResourceRef; 3] {
    [resource("configmaps"), widgets("v1"), widgets("v2")]
}

/// The family of each resource.
const FAMILY: [usize; 3] = [0, 1, 1];
const KEYS: [(&str, &str); 5] = [("", "x"), ("", "y"), ("a", "x"), ("a", "y"), ("b", "x")];

fn op() -> impl Strategy<Value = Op> {
    let r = 0..3usize;
    let k = 0..KEYS.len();
    prop_oneof![
        4 => (r.clone(), k.clone(), any::<bool>()).prop_map(|(r, k, m)| Op::Upsert(r, k, m)),
        2 => (r.clone(), k).prop_map(|(r, k)| Op::Delete(r, k)),
        1 => r.clone().prop_map(Op::Reset),
        2 => r.prop_map(Op::Synced),
    ]
}

/// An object as the model and the consumer see it: `(resource, step it was written)`.
type Obj = (usize, usize);
type Key = (String, String);

/// The spec's rules, written as plainly as possible.
#[derive(Default)]
struct Model {
    /// Per family, the present objects and the resource they were last seen in.
    state: [BTreeMap<Key, Obj>; 2],
    /// Resources seen, and whether each is synced.
    synced: BTreeMap<usize, bool>,
    /// Per resource relisting: the keys relisted since its RESET.
    relist: BTreeMap<usize, BTreeSet<Key>>,
    /// Every seen resource was synced at once.
    complete: bool,
    /// Per family held back: its state when holding began.
    frozen: BTreeMap<usize, BTreeMap<Key, Obj>>,
}

impl Model {
    fn family_unsynced(&self, family: usize) -> bool {
        self.synced
            .iter()
            .any(|(r, synced)| FAMILY[*r] == family && !synced)
    }

    fn apply(&mut self, step: usize, op: &Op) {
        let r = match *op {
            Op::Upsert(r, ..) | Op::Delete(r, _) | Op::Reset(r) | Op::Synced(r) => r,
        };
        let f = FAMILY[r];
        let before = self.state[f].clone();
        let held_before = self.complete && self.family_unsynced(f);
        let complete_before = self.complete;
        let key = |k: usize| (KEYS[k].0.to_owned(), KEYS[k].1.to_owned());
        self.synced.entry(r).or_insert(false);
        match *op {
            Op::Upsert(_, k, _) => {
                if let Some(seen) = self.relist.get_mut(&r) {
                    seen.insert(key(k));
                }
                self.state[f].insert(key(k), (r, step));
            }
            Op::Delete(_, k) => {
                self.state[f].remove(&key(k));
            }
            Op::Reset(_) => {
                self.relist.insert(r, BTreeSet::new());
                self.synced.insert(r, false);
            }
            Op::Synced(_) => {
                if let Some(seen) = self.relist.remove(&r) {
                    // Objects last seen in this version and not relisted are gone.
                    self.state[f].retain(|key, obj| obj.0 != r || seen.contains(key));
                }
                self.synced.insert(r, true);
            }
        }
        if complete_before && !held_before && self.family_unsynced(f) {
            // Held from this event on: the consumer keeps the state from before it.
            self.frozen.insert(f, before);
        }
        if !self.family_unsynced(f) {
            self.frozen.remove(&f);
        }
        if self.synced.values().all(|s| *s) {
            self.complete = true;
        }
    }

    /// What the consumer of the tracker's changes must hold.
    fn passed_on(&self, family: usize) -> &BTreeMap<Key, Obj> {
        self.frozen.get(&family).unwrap_or(&self.state[family])
    }
}

proptest! {
    /// After every event, what the tracker passed on adds up to the model's view:
    /// every family as the spec's rules say, except that once the view was complete a
    /// family with a listing version stays as it was when it began listing; and the
    /// tracker's own state (objects, synced, complete) is the model's.
    #[test]
    fn tracker_matches_model(ops in proptest::collection::vec(op(), 0..100)) {
        let resources = resources();
        let mut tracker = RelistTracker::new();
        let mut model = Model::default();
        // What the tracker passed on, per family.
        let mut consumer: [BTreeMap<Key, Obj>; 2] = Default::default();
        for (step, op) in ops.iter().enumerate() {
            let ev = match *op {
                Op::Upsert(r, k, modified) => {
                    let ty = if modified { EventType::Modified } else { EventType::Added };
                    let mut ev = event(&resources[r], ty, Some(KEYS[k]));
                    ev.object.as_mut().unwrap()["metadata"]["labels"] = json!({"step": step.to_string()});
                    ev
                }
                Op::Delete(r, k) => event(&resources[r], EventType::Deleted, Some(KEYS[k])),
                Op::Reset(r) => event(&resources[r], EventType::Reset, None),
                Op::Synced(r) => event(&resources[r], EventType::Synced, None),
            };
            model.apply(step, op);
            let changes = tracker.apply(&ev).unwrap();
            for change in changes {
                match change {
                    StateChange::Upsert { resource, object } => {
                        let r = resources.iter().position(|x| *x == resource).unwrap();
                        let step: usize = object["metadata"]["labels"]["step"].as_str().unwrap().parse().unwrap();
                        let m = &object["metadata"];
                        let key = (m["namespace"].as_str().unwrap_or("").to_owned(), m["name"].as_str().unwrap().to_owned());
                        consumer[FAMILY[r]].insert(key, (r, step));
                    }
                    StateChange::Delete { resource, namespace, name } => {
                        let r = resources.iter().position(|x| *x == resource).unwrap();
                        consumer[FAMILY[r]].remove(&(namespace, name));
                    }
                    StateChange::Synced { resource } => prop_assert_eq!(&resource, &ev.resource),
                }
            }
            for (f, passed) in consumer.iter().enumerate() {
                prop_assert_eq!(passed, model.passed_on(f), "family {} after step {} {:?}", f, step, op);
            }
            for (r, res) in resources.iter().enumerate() {
                let want: Vec<Key> = model.state[FAMILY[r]]
                    .iter()
                    .filter(|(_, obj)| obj.0 == r)
                    .map(|(key, _)| key.clone())
                    .collect();
                prop_assert_eq!(tracker.present_keys(res), want);
                prop_assert_eq!(tracker.is_synced(res), model.synced.get(&r) == Some(&true));
                prop_assert_eq!(tracker.is_relisting(res), model.relist.contains_key(&r));
                prop_assert_eq!(
                    tracker.holds(res),
                    model.complete && (model.family_unsynced(FAMILY[r]) || !model.synced.contains_key(&r))
                );
            }
            let unsynced: Vec<ResourceRef> = model
                .synced
                .iter()
                .filter(|(_, s)| !**s)
                .map(|(r, _)| resources[*r].clone())
                .collect();
            prop_assert_eq!(tracker.all_synced(), unsynced.is_empty() && !model.synced.is_empty());
            prop_assert_eq!(tracker.unsynced(), unsynced);
            prop_assert_eq!(tracker.complete(), model.complete);
            prop_assert_eq!(
                tracker.object_count(),
                model.state.iter().map(BTreeMap::len).sum::<usize>()
            );
            if !model.complete || model.frozen.is_empty() {
                prop_assert_eq!(tracker.held_count(), 0);
            }
        }
    }
}

#[test]
fn held_objects_come_back_as_they_were_however_deep() {
    let cm = resource("configmaps");
    let mut t = complete_with(&cm, &[("a", "1")]);
    let fresh = resource("services");
    let mut deep = json!("leaf");
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let objects = [
        json!({"metadata": {"namespace": "a", "name": "s", "labels": {"x": "1"}},
               "spec": {"f": 1.5, "big": u64::MAX, "n": -3, "s": "é\u{1}"}}),
        json!({"metadata": {"namespace": "a", "name": "t"}, "data": deep}),
    ];
    for object in &objects {
        let event = WatchEvent {
            object: Some(object.clone()),
            ..event(&fresh, EventType::Added, None)
        };
        assert!(t.apply(&event).unwrap().is_empty(), "held back");
    }
    let released = t.apply(&event(&fresh, EventType::Synced, None)).unwrap();
    let back: Vec<&Value> = released
        .iter()
        .filter_map(|c| match c {
            StateChange::Upsert { object, .. } => Some(object),
            _ => None,
        })
        .collect();
    assert_eq!(back, objects.iter().collect::<Vec<_>>());
}
