//! Proptest strategies shared by the engine's property tests: label maps and label
//! selectors (mostly valid, some invalid) over a small vocabulary.

use bindery_engine::LabelMap;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Label keys the generated states use.
pub const KEYS: &[&str] = &["app", "tier", "example.com/team"];
/// Label values the generated states use.
pub const VALUES: &[&str] = &["a", "b", "c"];

/// A label map of up to two labels.
pub fn labels() -> impl Strategy<Value = LabelMap> {
    prop::collection::btree_map(
        prop::sample::select(KEYS),
        prop::sample::select(VALUES),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

/// A label selector as JSON: mostly valid, some invalid.
pub fn selector() -> impl Strategy<Value = Value> {
    let requirement = (
        prop::sample::select(KEYS),
        prop::sample::select(&["In", "NotIn", "Exists", "DoesNotExist", "Bogus"][..]),
        prop::collection::vec(prop::sample::select(VALUES), 0..3),
    )
        .prop_map(|(k, op, vals)| {
            // Mostly valid: drop values where the operator takes none, keep some invalid.
            let vals: Vec<&str> = match op {
                "Exists" | "DoesNotExist" if vals.len() < 2 => vec![],
                _ => vals,
            };
            json!({"key": k, "operator": op, "values": vals})
        });
    (
        prop::collection::btree_map(
            prop::sample::select(KEYS),
            prop::sample::select(VALUES),
            0..2,
        ),
        prop::collection::vec(requirement, 0..3),
    )
        .prop_map(|(ml, me)| {
            let mut s = serde_json::Map::new();
            if !ml.is_empty() {
                s.insert("matchLabels".into(), json!(ml));
            }
            if !me.is_empty() {
                s.insert("matchExpressions".into(), json!(me));
            }
            Value::Object(s)
        })
}

/// An optional list test (`resources`, `namespaces`, `objectNames`) over `names` and `*`.
pub fn name_list(
    names: &'static [&'static str],
) -> impl Strategy<Value = Option<Vec<&'static str>>> {
    prop::option::weighted(
        0.35,
        prop::collection::vec(prop::sample::select([names, &["*"]].concat()), 0..3),
    )
}
