//! What the tests of several timely workers ([`crate::workers`]) and of several processes
//! ([`crate::timely_cluster`]) share: what a replay wrote, the acceptance logs' check of
//! it, and a generated log with churn.

use std::path::{Path, PathBuf};

use bindery_tests::{acceptance_cases, run_bindery, stderr};
use serde_json::Value;

/// What a replay wrote: the `--dump-bindings` file and the `--emit-deltas` lines.
#[derive(PartialEq, Eq)]
pub(crate) struct Replayed {
    pub(crate) bindings: Vec<u8>,
    pub(crate) deltas: Vec<u8>,
}

/// Each acceptance log, replayed by `replay_everywhere` (which checks that every way of
/// running it gives the same bytes, and returns one), gives exactly the expected
/// Bindings, and some deltas: the bytes compared are the right ones (not, say, empty).
pub(crate) fn check_acceptance_logs(replay_everywhere: impl Fn(&Path) -> Replayed) {
    let cases = acceptance_cases();
    assert!(cases.len() >= 6, "acceptance data missing");
    for (log, expected) in cases {
        let one = replay_everywhere(&log);
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
        let got: Value = serde_json::from_slice(&one.bindings).unwrap();
        assert_eq!(got, want, "{}", log.display());
        assert!(!one.deltas.is_empty(), "{}: no deltas", log.display());
    }
}

/// Writes `dir/generated.jsonl` with `bindery generate` (every churn kind and both herds:
/// 20 WECs, 300 objects, 12 policies, 600 changes) from `seed`; returns its path.
pub(crate) fn generated_log(dir: &Path, seed: u64) -> PathBuf {
    let log = dir.join("generated.jsonl");
    let seed = seed.to_string();
    let out = run_bindery(&[
        "generate",
        "--out",
        log.to_str().unwrap(),
        "--wecs",
        "20",
        "--objects",
        "300",
        "--policies",
        "12",
        "--churn",
        "600",
        "--seed",
        &seed,
    ]);
    assert!(out.status.success(), "bindery generate: {}", stderr(&out));
    log
}

/// The churn of a [`generated_log`] changes Bindings: more than 100 delta lines.
pub(crate) fn assert_churn_changes_bindings(replayed: &Replayed) {
    let lines = String::from_utf8_lossy(&replayed.deltas).lines().count();
    assert!(
        lines > 100,
        "the churn changes Bindings: {lines} delta lines"
    );
}
