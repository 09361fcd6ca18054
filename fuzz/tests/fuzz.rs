//! The fuzz targets as tests: each replays its corpus (`fuzz/corpus/<target>/`) and
//! runs on mutated corpus entries and generated inputs: 64 cases by default (a brief
//! run in `cargo test --workspace`), `BINDERY_FUZZ_CASES=N` or
//! `BINDERY_FUZZ_SECONDS=S` for more (`scripts/fuzz.sh`).

use bindery_fuzz::{Budget, mutated, run, seeds, targets};
use proptest::prelude::*;
use serde_json::Value;

#[test]
fn fuzz_watch_log() {
    run(
        "watch_log",
        targets::watch_log,
        mutated(seeds("watch_log", 8 * 1024)),
        Budget::from_env(),
    );
}

#[test]
fn fuzz_selector() {
    let inputs = prop_oneof![
        1 => mutated(seeds("selector", 4 * 1024)),
        1 => json_text(selector_vocabulary()),
    ];
    run(
        "selector",
        targets::selector,
        inputs.boxed(),
        Budget::from_env(),
    );
}

#[test]
fn fuzz_policy() {
    let inputs = prop_oneof![
        1 => mutated(seeds("policy", 4 * 1024)),
        2 => json_text(policy_vocabulary()),
    ];
    run(
        "policy",
        targets::policy,
        inputs.boxed(),
        Budget::from_env(),
    );
}

/// A JSON tree whose objects may repeat keys (so it is kept as pairs, and written by
/// hand).
#[derive(Clone, Debug)]
enum Tree {
    Leaf(Value),
    List(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl Tree {
    fn write(&self, out: &mut String) {
        match self {
            Tree::Leaf(v) => out.push_str(&v.to_string()),
            Tree::List(items) => {
                out.push('[');
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    t.write(out);
                }
                out.push(']');
            }
            Tree::Object(pairs) => {
                out.push('{');
                for (i, (k, t)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(k.as_str()).to_string());
                    out.push(':');
                    t.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn selector_vocabulary() -> Vec<&'static str> {
    vec![
        "matchLabels",
        "matchExpressions",
        "key",
        "operator",
        "values",
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
        "app",
        "tier",
        "example.com/team",
        "a",
        "b",
        "",
        "-x",
        "matchLabel",
    ]
}

fn policy_vocabulary() -> Vec<&'static str> {
    let mut v = selector_vocabulary();
    v.extend([
        "clusterSelectors",
        "downsync",
        "apiGroup",
        "resources",
        "namespaces",
        "objectNames",
        "objectSelectors",
        "namespaceSelectors",
        "createOnly",
        "statusCollectors",
        "wantSingletonReportedState",
        "wantMultiWECReportedState",
        "*",
        "configmaps",
        "namespaces",
        "deployments",
        "apps",
        "ns0",
        "ns1",
        "c1",
        "objectSelector",
    ]);
    v
}

/// JSON texts of trees over `words` (keys and strings), up to 6 levels deep, keys
/// sometimes repeated.
fn json_text(words: Vec<&'static str>) -> BoxedStrategy<Vec<u8>> {
    let word = prop::sample::select(words);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        word.clone().prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ]
    .prop_map(Tree::Leaf);
    leaf.prop_recursive(6, 96, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::List),
            prop::collection::vec((word.clone().prop_map(str::to_string), inner), 0..5)
                .prop_map(Tree::Object),
        ]
    })
    .prop_map(|t| {
        let mut out = String::new();
        t.write(&mut out);
        out.into_bytes()
    })
    .boxed()
}
