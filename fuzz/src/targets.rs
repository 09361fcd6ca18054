//! The fuzz targets: each takes bytes, never panics on any input, and checks what it
//! can cheaply (engine == oracle).

use std::collections::BTreeMap;
use std::io::Cursor;

use bindery::{DryRunPolicy, OracleLoader, Pipeline};
use bindery_engine::selector::{
    SelectorSpec, check_index_invariants, validate_label_key, validate_label_value,
};
use bindery_engine::{
    Change, Engine, LabelMap, Oracle, PolicyInput, PolicySpec, WorkloadRef, WorkloadState,
    strict_json,
};
use bindery_ingest::LogReader;
use serde_json::Value;

/// Inputs up to this size also go through the engine (the dataflow), not only the oracle.
const ENGINE_MAX_BYTES: usize = 32 * 1024;

/// The watch log reader: `bytes` as a log (plain or zstd), every event through the
/// relist tracker into the oracle and (for small inputs) the engine; both must give the
/// same Bindings.
pub fn watch_log(bytes: &[u8]) {
    let Ok(reader) = LogReader::from_reader("fuzz.jsonl".into(), Cursor::new(bytes.to_vec()))
    else {
        return;
    };
    let mut loader = OracleLoader::default();
    let mut pipeline = (bytes.len() <= ENGINE_MAX_BYTES).then(Pipeline::new);
    for line in reader {
        let Ok(line) = line else { break };
        let loaded = loader.push(line.event.clone());
        if let Some(p) = pipeline.as_mut() {
            let pushed = p.push(line.event);
            if loaded.is_err() || pushed.is_err() {
                // A replay stops at its first error: so do both, at the same event.
                assert_eq!(
                    loaded.is_err(),
                    pushed.is_err(),
                    "oracle and pipeline disagree on an event"
                );
                return;
            }
            if p.publishable() {
                p.close_epoch();
            }
        } else if loaded.is_err() {
            return;
        }
    }
    if let Some(mut p) = pipeline {
        p.close_epoch();
        assert_same(p.engine(), loader.oracle());
    }
}

/// The label selector parser: `bytes` as JSON (with duplicate keys kept track of); a
/// valid selector is compiled and matched against label sets, and every set it
/// matches carries one of its index keys. Any text also goes through the label key and
/// value checks.
pub fn selector(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = validate_label_key(text);
        let _ = validate_label_value(text);
    }
    let Ok(value) = strict_json::from_slice(bytes, 64) else {
        return;
    };
    let Ok(spec) = SelectorSpec::parse(&value) else {
        return;
    };
    if let Err(broken) = check_index_invariants(&spec, &label_sets(&spec)) {
        panic!("{broken}");
    }
}

/// Label sets around a selector: none, its `matchLabels`, and each expression's key
/// with one of its values, another value, or absent.
fn label_sets(spec: &SelectorSpec) -> Vec<LabelMap> {
    let mut sets = vec![LabelMap::new(), spec.match_labels.clone()];
    let mut all = spec.match_labels.clone();
    for r in &spec.match_expressions {
        let mut one = spec.match_labels.clone();
        one.insert(r.key.clone(), r.values.first().cloned().unwrap_or_default());
        sets.push(one);
        let mut other = spec.match_labels.clone();
        other.insert(r.key.clone(), "zz-other".into());
        sets.push(other);
        all.insert(r.key.clone(), r.values.last().cloned().unwrap_or_default());
    }
    sets.push(all);
    sets
}

/// The policy compiler: `bytes` as a policy file (YAML or JSON, as `bindery dry-run`
/// reads it), and as a JSON `spec` applied, beside a good policy, to a small state in
/// the engine and the oracle: both must give the same Bindings and statuses, and the
/// good policy's Binding must not change.
pub fn policy(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = DryRunPolicy::parse(text, "fuzz.yaml");
    }
    let Ok(spec) = strict_json::from_slice(bytes, 64) else {
        return;
    };
    let spec = PolicySpec::parse(Some(&spec));
    let good = PolicySpec::parse(Some(&serde_json::json!({
        "clusterSelectors": [{"matchLabels": {"app": "a"}}],
        "downsync": [{"resources": ["configmaps"]}]
    })));
    let mut engine = Engine::new();
    let mut oracle = Oracle::default();
    let mut alone = Oracle::default();
    let policies = [("good", good), ("fuzz", spec)];
    for change in state().iter().chain(
        policies
            .iter()
            .map(|(name, spec)| policy_change(name, spec.clone()))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        engine.apply(change);
        oracle.apply(change);
        if !matches!(change, Change::Policy { name, .. } if name == "fuzz") {
            alone.apply(change);
        }
    }
    engine.advance();
    assert_same(&engine, &oracle);
    assert_eq!(
        oracle.binding("good").map(|b| b.to_json()),
        alone.binding("good").map(|b| b.to_json()),
        "another policy changed the good one's Binding"
    );
}

fn policy_change(name: &str, spec: PolicySpec) -> Change {
    Change::Policy {
        name: name.to_string(),
        policy: Some(PolicyInput {
            uid: format!("u-{name}"),
            generation: 1,
            spec,
        }),
    }
}

fn labels(pairs: &[(&str, &str)]) -> LabelMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>()
}

/// Three WECs, two namespaces, objects in them and a cluster-scoped one.
fn state() -> Vec<Change> {
    let wec = |name: &str, l: &[(&str, &str)]| Change::Wec {
        name: name.to_string(),
        labels: Some(labels(l)),
    };
    let object =
        |group: &str, resource: &str, ns: &str, name: &str, l: &[(&str, &str)]| Change::Workload {
            object: WorkloadRef {
                group: group.to_string(),
                version: "v1".to_string(),
                resource: resource.to_string(),
                namespace: ns.to_string(),
                name: name.to_string(),
            },
            state: Some(WorkloadState {
                labels: labels(l),
                resource_version: "1".to_string(),
                ..Default::default()
            }),
        };
    vec![
        wec("c1", &[("app", "a")]),
        wec("c2", &[("tier", "b"), ("app", "b")]),
        wec("c3", &[]),
        object("", "namespaces", "", "ns0", &[("app", "a")]),
        object("", "namespaces", "", "ns1", &[]),
        object("", "configmaps", "ns0", "a", &[("app", "a")]),
        object("", "configmaps", "ns1", "b", &[("tier", "b")]),
        object("apps", "deployments", "ns0", "d", &[("app", "b")]),
        object("rbac.authorization.k8s.io", "clusterroles", "", "r", &[]),
    ]
}

fn assert_same(engine: &Engine, oracle: &Oracle) {
    let got: Vec<Value> = engine.bindings().iter().map(|b| b.to_json()).collect();
    let want: Vec<Value> = oracle.bindings().iter().map(|b| b.to_json()).collect();
    assert_eq!(got, want, "engine and oracle Bindings differ");
    assert_eq!(
        engine.statuses(),
        oracle.statuses(),
        "engine and oracle statuses differ"
    );
}
