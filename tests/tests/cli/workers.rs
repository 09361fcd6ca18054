//! `--workers N` through the binary: `bindery replay` gives byte-identical Bindings and
//! deltas on 1, 2 and 3 timely workers, for the acceptance logs, the examples and a
//! generated log with churn; the summary line names the workers the engine ran on; bad
//! worker counts are refused with a clear error.

use std::path::{Path, PathBuf};

use bindery_tests::{bindery_command, run_bindery, workspace_root};

use crate::replayed::{
    Replayed, assert_churn_changes_bindings, check_acceptance_logs, generated_log,
};

/// Replays `log` on `workers` workers with `extra` arguments; checks the summary line
/// says the engine ran on that many.
fn replay(log: &Path, workers: usize, extra: &[&str]) -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("bindings.json");
    let workers_arg = workers.to_string();
    let mut args = vec![
        "replay",
        log.to_str().unwrap(),
        "--workers",
        &workers_arg,
        "--dump-bindings",
        dump.to_str().unwrap(),
        "--emit-deltas",
    ];
    args.extend_from_slice(extra);
    let out = run_bindery(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} on {workers} workers: {stderr}",
        log.display()
    );
    let on = format!(" workers={workers} ");
    assert!(
        stderr.contains("replayed the log") && stderr.contains(&on),
        "{}: the summary names {workers} workers: {stderr}",
        log.display()
    );
    Replayed {
        bindings: std::fs::read(&dump).unwrap(),
        deltas: out.stdout,
    }
}

/// Replays `log` on 1, 2 and 3 workers: the same bytes each time. Returns one worker's.
fn same_on_1_2_and_3_workers(log: &Path, extra: &[&str]) -> Replayed {
    let one = replay(log, 1, extra);
    for workers in [2, 3] {
        let many = replay(log, workers, extra);
        assert!(
            many.bindings == one.bindings,
            "{} {extra:?}: --dump-bindings on {workers} workers differs from 1 worker\n--- 1 ---\n{}\n--- {workers} ---\n{}",
            log.display(),
            String::from_utf8_lossy(&one.bindings),
            String::from_utf8_lossy(&many.bindings)
        );
        assert!(
            many.deltas == one.deltas,
            "{} {extra:?}: --emit-deltas on {workers} workers differs from 1 worker\n--- 1 ---\n{}\n--- {workers} ---\n{}",
            log.display(),
            String::from_utf8_lossy(&one.deltas),
            String::from_utf8_lossy(&many.deltas)
        );
    }
    one
}

#[test]
fn acceptance_logs_replay_the_same_on_1_2_and_3_workers() {
    check_acceptance_logs(|log| same_on_1_2_and_3_workers(log, &[]));
}

#[test]
fn examples_replay_the_same_on_1_2_and_3_workers() {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 2, "examples missing: {logs:?}");
    for log in logs {
        let one = same_on_1_2_and_3_workers(&log, &[]);
        let list: serde_json::Value = serde_json::from_slice(&one.bindings).unwrap();
        assert!(
            list["items"].as_array().is_some_and(|i| !i.is_empty()),
            "{}: no Binding",
            log.display()
        );
    }
}

/// A generated log (every churn kind and both herds): one event per epoch, and with
/// many events per epoch (`--window-ms`).
#[test]
fn a_generated_log_with_churn_replays_the_same_on_1_2_and_3_workers() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path(), 7);
    let one = same_on_1_2_and_3_workers(&log, &[]);
    assert_churn_changes_bindings(&one);
    let batched = same_on_1_2_and_3_workers(&log, &["--window-ms", "25"]);
    assert_eq!(
        batched.bindings, one.bindings,
        "the final Bindings do not depend on the epochs"
    );
}

#[test]
fn the_worker_count_is_checked_and_can_come_from_the_environment() {
    let log = workspace_root().join("examples/nginx.jsonl");
    let log = log.to_str().unwrap();
    for bad in ["0", "65", "-1", "two", "", "18446744073709551617"] {
        let flag = format!("--workers={bad}");
        for command in [
            vec!["replay", log, &flag],
            vec!["run", "--wds-kubeconfig", "/nonexistent", &flag],
        ] {
            let out = run_bindery(&command);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?}: {stderr}");
            assert!(
                stderr.contains("is not a number of workers (1 to 64"),
                "{command:?}: {stderr}"
            );
        }
    }
    let out = bindery_command()
        .args(["replay", log])
        .env("BINDERY_WORKERS", "3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" workers=3 "), "{stderr}");
    // The default is one worker.
    let out = run_bindery(&["replay", log]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(" workers=1 "), "{stderr}");
    // 64 is allowed.
    let out = run_bindery(&["replay", log, "--workers", "64"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(" workers=64 "), "{stderr}");
}
