//! Proptest strategies shared by the engine's property tests: label maps, label
//! selectors (mostly valid, some invalid) and `downsync` clauses over a small
//! vocabulary.

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
        prop::bool::weighted(0.05),
    )
        .prop_map(|(ml, me, misspelled)| {
            let mut s = serde_json::Map::new();
            if misspelled {
                // An unknown field: the selector is invalid (it matches nothing).
                s.insert("matchLabel".into(), json!({"app": "a"}));
            }
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

/// What a generated `downsync` clause may name, and how often its optional parts appear.
pub struct ClauseVocabulary {
    /// `apiGroup` values (present in 30% of clauses).
    pub groups: &'static [&'static str],
    /// `resources` values.
    pub resources: &'static [&'static str],
    /// `objectNames` values.
    pub names: &'static [&'static str],
    /// `statusCollectors` values.
    pub collectors: &'static [&'static str],
    /// Probability that a clause has `namespaceSelectors`.
    pub namespace_selectors: f64,
    /// Probability that a clause cannot be read (parsing leaves it out and reports it).
    pub unreadable: f64,
}

/// A `downsync` clause as JSON, with every field optional and every modulation.
pub fn clause(v: ClauseVocabulary) -> impl Strategy<Value = Value> {
    let namespaces: &'static [&'static str] = &["ns0", "ns1", ""];
    (
        prop::option::weighted(0.3, prop::sample::select(v.groups)),
        name_list(v.resources),
        name_list(namespaces),
        name_list(v.names),
        prop::option::weighted(0.5, prop::collection::vec(selector(), 0..3)),
        prop::option::weighted(
            v.namespace_selectors,
            prop::collection::vec(selector(), 0..2),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::collection::vec(prop::sample::select(v.collectors), 0..3),
        prop::bool::weighted(v.unreadable),
        0..3usize,
    )
        .prop_map(
            |(
                group,
                res,
                ns,
                names,
                osel,
                nsel,
                (create_only, single, multi),
                collectors,
                bad,
                how,
            )| {
                if bad {
                    return match how {
                        // `resources` must be a list.
                        0 => json!({"resources": "configmaps"}),
                        // A clause must be an object (serde would read a list by position).
                        1 => json!([null, ["configmaps"]]),
                        // An unknown (misspelled) field.
                        _ => json!({"resources": ["configmaps"], "objectSelector": []}),
                    };
                }
                let mut c = serde_json::Map::new();
                let mut put = |field: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        c.insert(field.into(), value);
                    }
                };
                put("apiGroup", group.map(|g| json!(g)));
                put("resources", res.map(|r| json!(r)));
                put("namespaces", ns.map(|n| json!(n)));
                put("objectNames", names.map(|n| json!(n)));
                put("objectSelectors", osel.map(|s| json!(s)));
                put("namespaceSelectors", nsel.map(|s| json!(s)));
                put("createOnly", create_only.then(|| json!(true)));
                put("wantSingletonReportedState", single.then(|| json!(true)));
                put("wantMultiWECReportedState", multi.then(|| json!(true)));
                put(
                    "statusCollectors",
                    (!collectors.is_empty()).then(|| json!(collectors)),
                );
                Value::Object(c)
            },
        )
}
