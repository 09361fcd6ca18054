//! The acceptance logs and the example logs through the engine with one epoch per event,
//! checked against the oracle after every event, statuses included (case2 and case4
//! carry invalid selectors).

use bindery_engine::{Engine, Oracle};
use bindery_ingest::{LogReader, RelistTracker, to_change};
use bindery_tests::{acceptance_cases, workspace_root};

#[test]
fn engine_equals_oracle_after_every_event_of_the_acceptance_logs() {
    let examples =
        ["examples/nginx.jsonl", "examples/churn.jsonl"].map(|l| workspace_root().join(l));
    let logs = acceptance_cases().into_iter().map(|(log, _)| log);
    for log in logs.chain(examples) {
        let mut engine = Engine::new();
        let mut oracle = Oracle::default();
        let mut tracker = RelistTracker::new();
        let mut problems_seen = 0;
        for line in LogReader::open(&log).unwrap() {
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
        let name = log.file_name().unwrap().to_str().unwrap();
        if name.starts_with("case2") || name.starts_with("case4") {
            assert!(
                problems_seen > 0,
                "{name} has invalid selectors that must show in statuses"
            );
        }
    }
}
