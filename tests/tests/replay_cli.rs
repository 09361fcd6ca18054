//! `bindery replay` end to end: the acceptance logs give exactly the expected Bindings,
//! deltas add up to the final Bindings, and log errors are reported as the watch-log
//! spec says.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use bindery_tests::{acceptance_cases, bindery_bin, workspace_root};
use serde_json::Value;

fn replay(log: &Path, extra: &[&str]) -> Output {
    Command::new(bindery_bin())
        .arg("replay")
        .arg(log)
        .args(extra)
        .env("BINDERY_LOG", "info")
        .output()
        .expect("running bindery")
}

fn dump(log: &Path) -> Value {
    let out = replay(log, &["--dump-bindings", "-"]);
    assert!(
        out.status.success(),
        "{}: {}",
        log.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON List on stdout")
}

#[test]
fn acceptance_logs_give_exactly_the_expected_bindings() {
    let cases = acceptance_cases();
    assert!(cases.len() >= 6, "acceptance data missing");
    for (log, expected) in cases {
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
        assert_eq!(dump(&log), want, "{}", log.display());
    }
}

#[test]
fn dump_to_a_file_equals_dump_to_stdout() {
    let (log, _) = &acceptance_cases()[1];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.json");
    let out = replay(log, &["--dump-bindings", file.to_str().unwrap()]);
    assert!(out.status.success());
    let from_file: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(from_file, dump(log));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("events/s") && stderr.contains("epochs"),
        "summary line missing: {stderr}"
    );
}

/// Applying every emitted delta, in order, to nothing gives the final Bindings.
#[test]
fn deltas_add_up_to_the_final_bindings() {
    for (log, _) in acceptance_cases() {
        let out = replay(&log, &["--emit-deltas"]);
        assert!(out.status.success());
        let mut bindings: std::collections::BTreeMap<
            String,
            (
                std::collections::BTreeSet<String>,
                std::collections::BTreeSet<String>,
            ),
        > = Default::default();
        let mut last_epoch = 0;
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let d: Value = serde_json::from_str(line).unwrap();
            let epoch = d["epoch"].as_u64().unwrap();
            assert!(epoch >= last_epoch, "epochs go forward");
            last_epoch = epoch;
            let name = d["binding"].as_str().unwrap().to_string();
            let entry = bindings.entry(name.clone()).or_default();
            for (list, set) in [("destinations", &mut entry.0), ("workload", &mut entry.1)] {
                for removed in d[list]["removed"].as_array().unwrap() {
                    assert!(
                        set.remove(&removed.to_string()),
                        "{}: {name}: removed {removed} was not there",
                        log.display()
                    );
                }
                for added in d[list]["added"].as_array().unwrap() {
                    assert!(
                        set.insert(added.to_string()),
                        "{}: {name}: added {added} twice",
                        log.display()
                    );
                }
            }
            if !d["exists"].as_bool().unwrap() {
                assert!(
                    entry.0.is_empty() && entry.1.is_empty(),
                    "a deleted Binding keeps nothing"
                );
                bindings.remove(&name);
            }
        }
        let final_list = dump(&log);
        let items = final_list["items"].as_array().unwrap();
        assert_eq!(items.len(), bindings.len(), "{}", log.display());
        for item in items {
            let (dests, work) = &bindings[item["metadata"]["name"].as_str().unwrap()];
            let spec = &item["spec"];
            let want_dests: std::collections::BTreeSet<String> = spec["destinations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| Value::String(d["clusterId"].as_str().unwrap().into()).to_string())
                .collect();
            let want_work: std::collections::BTreeSet<String> = ["clusterScope", "namespaceScope"]
                .iter()
                .flat_map(|k| {
                    spec["workload"][k]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(Value::to_string)
                })
                .collect();
            assert_eq!(dests, &want_dests);
            assert_eq!(work, &want_work);
        }
    }
}

fn write_log(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn sample_lines() -> Vec<String> {
    let (log, _) = &acceptance_cases()[0];
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_corrupt_line_is_named_and_fails_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = sample_lines();
    lines[3] = "{\"ts\": 1, \"space\": \"wds\", oops".to_string();
    let log = write_log(dir.path(), "bad.jsonl", &(lines.join("\n") + "\n"));
    let out = replay(&log, &["--dump-bindings", "-"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl:4: invalid JSON"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing is dumped from a failed replay"
    );
}

#[test]
fn a_line_missing_a_required_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = sample_lines();
    lines[5] = lines[5].replace("\"type\":\"ADDED\",", "");
    let log = write_log(dir.path(), "nokey.jsonl", &(lines.join("\n") + "\n"));
    let out = replay(&log, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nokey.jsonl:6") && stderr.contains("`type`"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_header_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = sample_lines();
    lines[0] = "{\"watchLog\": 2}".to_string();
    let log = write_log(dir.path(), "v2.jsonl", &(lines.join("\n") + "\n"));
    let out = replay(&log, &["--dump-bindings", "-"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported watch log version 2"));
    let log = write_log(dir.path(), "nohdr.jsonl", &(lines[1..].join("\n") + "\n"));
    let out = replay(&log, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a watch log header"));
}

#[test]
fn a_torn_last_line_is_a_warning_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let lines = sample_lines();
    let whole = write_log(
        dir.path(),
        "whole.jsonl",
        &(lines[..lines.len() - 1].join("\n") + "\n"),
    );
    let last = &lines[lines.len() - 1];
    let torn_text = lines[..lines.len() - 1].join("\n") + "\n" + &last[..last.len() / 2];
    let torn = write_log(dir.path(), "torn.jsonl", &torn_text);
    let out = replay(&torn, &["--dump-bindings", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("torn.jsonl:{}", lines.len())) && stderr.contains("WARN"),
        "{stderr}"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        dump(&whole)
    );
}

#[test]
fn zstd_logs_replay_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for (log, expected) in acceptance_cases().into_iter().take(3) {
        let zst = dir.path().join(format!(
            "{}.zst",
            log.file_name().unwrap().to_str().unwrap()
        ));
        let mut enc = zstd::Encoder::new(std::fs::File::create(&zst).unwrap(), 3).unwrap();
        enc.write_all(&std::fs::read(&log).unwrap()).unwrap();
        enc.finish().unwrap();
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
        assert_eq!(dump(&zst), want, "{}", zst.display());
    }
}

#[test]
fn server_options_without_the_dashboard_are_refused() {
    let log = workspace_root().join("examples/nginx.jsonl");
    for flag in [
        &["--listen", "127.0.0.1:0"][..],
        &["--per-policy-metrics"][..],
    ] {
        let out = replay(&log, flag);
        assert!(
            !out.status.success(),
            "{flag:?} without --dashboard must fail"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag[0]) && stderr.contains("--dashboard"),
            "{stderr}"
        );
    }
    let out = replay(&log, &["--speed", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a speed"));
}
