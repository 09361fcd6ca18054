//! The acceptance logs and the example logs through the engine with one epoch per event,
//! checked against the oracle after every event, statuses included (case2 and case4
//! carry invalid selectors).

use bindery_engine::{Engine, Oracle};
use bindery_ingest::{LogReader, RelistTracker, to_change};
use bindery_tests::{acceptance_cases, assert_success, workspace_root};

#[test]
fn engine_equals_oracle_after_every_event_of_the_acceptance_logs() {
    let examples =
        ["examples/nginx.jsonl", "examples/churn.jsonl"].map(|l| workspace_root().join(l));
    let logs = acceptance_cases().into_iter().map(|(log, _)| log);
    for log in logs.chain(examples) {
        let problems_seen = engine_equals_oracle_after_every_event(&log);
        let name = log.file_name().unwrap().to_str().unwrap();
        if name.starts_with("case2") || name.starts_with("case4") {
            assert!(
                problems_seen > 0,
                "{name} has invalid selectors that must show in statuses"
            );
        }
    }
}

/// Replays `log` with one epoch per event, asserting after each that the engine's
/// Bindings and statuses are the oracle's. Returns how many policy statuses with
/// problems were seen over all epochs.
fn engine_equals_oracle_after_every_event(log: &std::path::Path) -> usize {
    let mut engine = Engine::new();
    let mut oracle = Oracle::default();
    let mut tracker = RelistTracker::new();
    let mut problems_seen = 0;
    for line in LogReader::open(log).unwrap() {
        let line = line.unwrap();
        for state_change in tracker.apply_owned(line.event).unwrap() {
            if let Some(change) = to_change(&state_change).unwrap() {
                engine.apply(&change);
                oracle.apply(&change);
            }
        }
        engine.advance();
        assert_eq!(
            engine.bindings(),
            oracle.bindings(),
            "{}:{}",
            log.display(),
            line.line
        );
        assert_eq!(
            engine.statuses(),
            oracle.statuses(),
            "{}:{}",
            log.display(),
            line.line
        );
        problems_seen += engine
            .statuses()
            .values()
            .filter(|(_, p)| !p.is_empty())
            .count();
    }
    problems_seen
}

/// A log from `bindery generate` (every churn kind and both herds), compressed: the
/// engine equals the oracle after every event, and `replay --dump-bindings` gives the
/// oracle's final Bindings, the herd policy bound to every WEC.
#[test]
fn engine_equals_oracle_after_every_event_of_a_generated_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("generated.jsonl.zst");
    let log_arg = log.to_str().unwrap();
    let out = bindery_tests::run_bindery(&[
        "generate",
        "--out",
        log_arg,
        "--wecs",
        "30",
        "--objects",
        "400",
        "--policies",
        "20",
        "--namespaces",
        "8",
        "--churn",
        "600",
        "--seed",
        "42",
    ]);
    assert_success(&out, "bindery generate");
    engine_equals_oracle_after_every_event(&log);

    let mut oracle = Oracle::default();
    let mut tracker = RelistTracker::new();
    for line in LogReader::open(&log).unwrap() {
        for state_change in tracker.apply_owned(line.unwrap().event).unwrap() {
            if let Some(change) = to_change(&state_change).unwrap() {
                oracle.apply(&change);
            }
        }
    }
    let dump = dir.path().join("bindings.json");
    let out =
        bindery_tests::run_bindery(&["replay", log_arg, "--dump-bindings", dump.to_str().unwrap()]);
    assert_success(&out, "replay --dump-bindings");
    let dumped: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    assert_eq!(dumped, bindery_engine::binding_list(&oracle.bindings()));
    let items = dumped["items"].as_array().unwrap();
    assert_eq!(items.len(), 21, "20 policies and the herd's");
    let herd = items
        .iter()
        .find(|b| b["metadata"]["name"] == "herd-everything")
        .expect("the herd policy's Binding");
    assert_eq!(herd["spec"]["destinations"].as_array().unwrap().len(), 30);
}
