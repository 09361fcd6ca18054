//! One verdict on a log's end for every command that reads a log: `replay` (with
//! `--with-policy`), `dry-run --log` and `explain --log` refuse the same logs with the
//! same message (a resource whose initial list never completed), warn the same way (a
//! relist in progress, a log without events), refuse a dry-run policy while
//! BindingPolicies relist, answer on a log without BindingPolicies, and are not held
//! back by resources no Binding depends on.

use std::path::{Path, PathBuf};
use std::process::Output;

use bindery_tests::{run_bindery, workspace_root};

/// The nginx example with `extra` lines appended, written to `dir/name`.
fn nginx_plus(dir: &Path, name: &str, keep: impl Fn(&str) -> bool, extra: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(workspace_root().join("examples/nginx.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    lines.extend_from_slice(extra);
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn marker(resource: &str, event_type: &str) -> String {
    let (space, rest) = resource.split_once(':').unwrap();
    let parts: Vec<&str> = rest.split('/').collect();
    let (group, version, res) = match parts.as_slice() {
        [version, res] => ("", *version, *res),
        [group, version, res] => (*group, *version, *res),
        _ => panic!("{resource}"),
    };
    format!(
        r#"{{"ts":1764151300000,"space":"{space}","group":"{group}","version":"{version}","resource":"{res}","type":"{event_type}"}}"#
    )
}

/// The three commands on `log`, each with the nginx policy (edited) where it takes one.
fn all_three(log: &Path) -> [(&'static str, Output); 3] {
    let log = log.to_str().unwrap();
    let policy = workspace_root().join("examples/nginx-edited.yaml");
    let policy = policy.to_str().unwrap();
    [
        (
            "replay",
            run_bindery(&["replay", log, "--with-policy", policy]),
        ),
        (
            "dry-run",
            run_bindery(&["dry-run", "--log", log, "--policy-file", policy]),
        ),
        (
            "explain",
            run_bindery(&["explain", "--log", log, "--policy", "nginx"]),
        ),
    ]
}

/// The WARN and ERROR lines of `out`, without their timestamps.
fn verdicts(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string())
        .collect()
}

#[test]
fn every_command_judges_a_logs_end_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let all = |_: &str| true;
    let late_crd = marker("wds:example.com/v1/widgets", "RESET");
    let policies_relist = marker(
        "wds:control.kubestellar.io/v1alpha1/bindingpolicies",
        "RESET",
    );
    let its_secrets = marker("its:v1/secrets", "RESET");
    let wds_events = marker("wds:v1/events", "RESET");

    // A resource whose initial list never completes: all three refuse, with one message.
    let late = nginx_plus(dir.path(), "late.jsonl", all, &[&late_crd]);
    let outs = all_three(&late);
    let want = format!(
        "ERROR bindery: {}: the log ends before every resource synced (not synced: wds:example.com/v1/widgets); nothing is computed from a partial view",
        late.display()
    );
    for (command, out) in &outs {
        assert!(!out.status.success(), "{command} must refuse the log");
        assert_eq!(verdicts(out), vec![want.clone()], "{command}");
        assert!(out.stdout.is_empty(), "{command} prints nothing");
    }

    // BindingPolicies relisting at the end: the same warning; both dry-runs refuse to
    // apply their policy, explain answers on the policies as last synced.
    let relisting = nginx_plus(dir.path(), "relisting.jsonl", all, &[&policies_relist]);
    let outs = all_three(&relisting);
    let warning = verdicts(&outs[2].1);
    assert_eq!(warning.len(), 1, "{warning:?}");
    assert!(
        warning[0].contains("the log ends during a relist"),
        "{warning:?}"
    );
    for (command, out) in &outs[..2] {
        assert!(!out.status.success(), "{command}");
        let lines = verdicts(out);
        assert_eq!(lines[0], warning[0], "{command}");
        assert!(
            lines[1].ends_with("the dry-run policy cannot be applied to a consistent view"),
            "{command}: {lines:?}"
        );
    }
    assert!(outs[2].1.status.success());

    // A log with only its header: the same warning, and answers on an empty state.
    let header = nginx_plus(dir.path(), "header.jsonl", |l| l.contains("watchLog"), &[]);
    let outs = all_three(&header);
    for (command, out) in &outs {
        let lines = verdicts(out);
        assert!(
            lines[0].contains("the log holds no watch event of a resource Bindery reads"),
            "{command}: {lines:?}"
        );
    }
    assert!(outs[0].1.status.success() && outs[1].1.status.success());
    assert_eq!(
        outs[0].1.stdout, outs[1].1.stdout,
        "the same dry-run Binding"
    );

    // Without any BindingPolicy, a complete log: both dry-runs print the same Binding.
    let no_policies = nginx_plus(
        dir.path(),
        "no-policies.jsonl",
        |l| !l.contains("bindingpolicies"),
        &[],
    );
    let outs = all_three(&no_policies);
    for (command, out) in &outs[..2] {
        assert!(out.status.success(), "{command}: {:?}", verdicts(out));
        assert!(verdicts(out).is_empty(), "{command}: {:?}", verdicts(out));
    }
    assert_eq!(
        outs[0].1.stdout, outs[1].1.stdout,
        "the same dry-run Binding"
    );
    let binding: serde_json::Value = serde_json::from_slice(&outs[1].1.stdout).unwrap();
    assert_eq!(binding["metadata"]["name"], "nginx");

    // Resources no Binding depends on, never synced, hold nothing back.
    let ignored = nginx_plus(
        dir.path(),
        "ignored.jsonl",
        all,
        &[&its_secrets, &wds_events],
    );
    let complete = nginx_plus(dir.path(), "complete.jsonl", all, &[]);
    let (outs, want) = (all_three(&ignored), all_three(&complete));
    for ((command, out), (_, want)) in outs.iter().zip(&want) {
        assert!(out.status.success(), "{command}: {:?}", verdicts(out));
        assert!(verdicts(out).is_empty(), "{command}: {:?}", verdicts(out));
        assert_eq!(out.stdout, want.stdout, "{command}");
    }
}
