//! Tests of the relist tracker, including a model-based property test.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::watchlog::Space;

fn resource(name: &str) -> ResourceRef {
    ResourceRef::new(Space::Wds, "", "v1", name)
}

fn event(res: &ResourceRef, event_type: EventType, key: Option<(&str, &str)>) -> WatchEvent {
    WatchEvent {
        ts: 0,
        resource: res.clone(),
        event_type,
        object: key.map(|(ns, name)| {
            let mut metadata = json!({"name": name});
            if !ns.is_empty() {
                metadata["namespace"] = json!(ns);
            }
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata})
        }),
    }
}

fn delete(res: &ResourceRef, ns: &str, name: &str) -> StateChange {
    StateChange::Delete {
        resource: res.clone(),
        namespace: ns.to_owned(),
        name: name.to_owned(),
    }
}

#[test]
fn relist_deletes_only_what_was_not_relisted() {
    let cm = resource("configmaps");
    let mut t = RelistTracker::new();
    for (ns, name) in [("a", "1"), ("a", "2"), ("b", "1"), ("", "c")] {
        let changes = t
            .apply(&event(&cm, EventType::Added, Some((ns, name))))
            .unwrap();
        assert!(matches!(&changes[..], [StateChange::Upsert { .. }]));
    }
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![StateChange::Synced {
            resource: cm.clone()
        }]
    );
    assert!(
        t.apply(&event(&cm, EventType::Reset, None))
            .unwrap()
            .is_empty()
    );
    assert!(t.is_relisting(&cm));
    assert_eq!(
        t.object_count(),
        4,
        "a relist deletes nothing before its SYNCED"
    );
    t.apply(&event(&cm, EventType::Added, Some(("a", "2"))))
        .unwrap();
    t.apply(&event(&cm, EventType::Added, Some(("z", "new"))))
        .unwrap();
    assert_eq!(
        t.apply(&event(&cm, EventType::Synced, None)).unwrap(),
        vec![
            delete(&cm, "", "c"),
            delete(&cm, "a", "1"),
            delete(&cm, "b", "1"),
            StateChange::Synced {
                resource: cm.clone()
            },
        ]
    );
    assert_eq!(
        t.present_keys(&cm),
        vec![("a".into(), "2".into()), ("z".into(), "new".into())]
    );
    assert!(t.contains(&cm, "a", "2"));
    assert!(!t.contains(&cm, "a", "1"));
    assert!(!t.is_relisting(&cm));
}

#[test]
fn restarted_relist_keeps_what_the_aborted_one_listed() {
    let cm = resource("configmaps");
    let mut t = RelistTracker::new();
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
        vec![
            delete(&cm, "a", "2"),
            StateChange::Synced {
                resource: cm.clone()
            }
        ]
    );
}

#[test]
fn deleted_during_relist_is_not_deleted_again() {
    let cm = resource("configmaps");
    let mut t = RelistTracker::new();
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
        vec![StateChange::Synced {
            resource: cm.clone()
        }]
    );
    // A DELETED of an unknown object still yields a Delete.
    assert_eq!(
        t.apply(&event(&cm, EventType::Deleted, Some(("q", "q"))))
            .unwrap(),
        vec![delete(&cm, "q", "q")]
    );
}

#[test]
fn all_synced_transitions() {
    let cm = resource("configmaps");
    let ns = resource("namespaces");
    let mut t = RelistTracker::new();
    assert!(!t.all_synced(), "nothing known is not synced");
    t.apply(&event(&cm, EventType::Added, Some(("a", "1"))))
        .unwrap();
    t.apply(&event(&ns, EventType::Added, Some(("", "a"))))
        .unwrap();
    assert_eq!(t.unsynced(), vec![cm.clone(), ns.clone()]);
    t.apply(&event(&cm, EventType::Synced, None)).unwrap();
    assert!(!t.all_synced());
    assert_eq!(t.unsynced(), vec![ns.clone()]);
    assert_eq!(t.unsynced_names(), vec![ns.to_string()]);
    assert_eq!((t.synced_count(), t.resource_count()), (1, 2));
    t.apply(&event(&ns, EventType::Synced, None)).unwrap();
    assert!(t.all_synced());
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

/// One step of a random history.
#[derive(Clone, Debug)]
enum Op {
    Upsert(usize, usize, bool),
    Delete(usize, usize),
    Reset(usize),
    Synced(usize),
}

const RESOURCES: [&str; 2] = ["configmaps", "namespaces"];
const KEYS: [(&str, &str); 5] = [("", "x"), ("", "y"), ("a", "x"), ("a", "y"), ("b", "x")];

fn op() -> impl Strategy<Value = Op> {
    let r = 0..RESOURCES.len();
    let k = 0..KEYS.len();
    prop_oneof![
        4 => (r.clone(), k.clone(), any::<bool>()).prop_map(|(r, k, m)| Op::Upsert(r, k, m)),
        2 => (r.clone(), k).prop_map(|(r, k)| Op::Delete(r, k)),
        1 => r.clone().prop_map(Op::Reset),
        1 => r.prop_map(Op::Synced),
    ]
}

type Key = (String, String);

/// The spec's rules, written as plainly as possible.
#[derive(Default)]
struct Model {
    present: BTreeSet<Key>,
    /// During a relist: the keys present at the RESET, and those relisted since.
    relist: Option<(BTreeSet<Key>, BTreeSet<Key>)>,
    synced: bool,
}

proptest! {
    #[test]
    fn tracker_matches_model(ops in proptest::collection::vec(op(), 0..80)) {
        let mut tracker = RelistTracker::new();
        let mut model: BTreeMap<usize, Model> = BTreeMap::new();
        for op in ops {
            let (r, ev) = match op {
                Op::Upsert(r, k, modified) => {
                    let ty = if modified { EventType::Modified } else { EventType::Added };
                    (r, event(&resource(RESOURCES[r]), ty, Some(KEYS[k])))
                }
                Op::Delete(r, k) => (r, event(&resource(RESOURCES[r]), EventType::Deleted, Some(KEYS[k]))),
                Op::Reset(r) => (r, event(&resource(RESOURCES[r]), EventType::Reset, None)),
                Op::Synced(r) => (r, event(&resource(RESOURCES[r]), EventType::Synced, None)),
            };
            let res = resource(RESOURCES[r]);
            let m = model.entry(r).or_default();
            let mut expected = Vec::new();
            match op {
                Op::Upsert(_, k, _) => {
                    let key = (KEYS[k].0.to_owned(), KEYS[k].1.to_owned());
                    m.present.insert(key.clone());
                    if let Some((_, seen)) = &mut m.relist {
                        seen.insert(key);
                    }
                    expected.push(StateChange::Upsert { resource: res.clone(), object: ev.object.clone().unwrap() });
                }
                Op::Delete(_, k) => {
                    m.present.remove(&(KEYS[k].0.to_owned(), KEYS[k].1.to_owned()));
                    expected.push(delete(&res, KEYS[k].0, KEYS[k].1));
                }
                Op::Reset(_) => {
                    m.relist = Some((m.present.clone(), BTreeSet::new()));
                    m.synced = false;
                }
                Op::Synced(_) => {
                    if let Some((before, seen)) = m.relist.take() {
                        for key in before.difference(&seen) {
                            if m.present.remove(key) {
                                expected.push(delete(&res, &key.0, &key.1));
                            }
                        }
                    }
                    m.synced = true;
                    expected.push(StateChange::Synced { resource: res.clone() });
                }
            }
            let changes = tracker.apply(&ev).unwrap();
            prop_assert_eq!(changes, expected);
            for (r, m) in &model {
                let want: Vec<Key> = m.present.iter().cloned().collect();
                prop_assert_eq!(tracker.present_keys(&resource(RESOURCES[*r])), want);
                prop_assert_eq!(tracker.is_synced(&resource(RESOURCES[*r])), m.synced);
                prop_assert_eq!(tracker.is_relisting(&resource(RESOURCES[*r])), m.relist.is_some());
            }
            let unsynced: Vec<ResourceRef> = model
                .iter()
                .filter(|(_, m)| !m.synced)
                .map(|(r, _)| resource(RESOURCES[*r]))
                .collect();
            prop_assert_eq!(tracker.all_synced(), unsynced.is_empty());
            prop_assert_eq!(tracker.unsynced(), unsynced);
            prop_assert_eq!(
                tracker.object_count(),
                model.values().map(|m| m.present.len()).sum::<usize>()
            );
        }
    }
}
