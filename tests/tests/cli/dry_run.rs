//! `bindery dry-run --log` through the binary, on the seed's nginx example: the same
//! Binding and problems as `bindery replay --with-policy`, JSON or YAML, and its errors.
//! (The live form is in `live/explain.rs`.)

use std::path::PathBuf;
use std::process::Output;

use bindery_tests::{assert_success, run_bindery, workspace_root};

fn nginx_log() -> String {
    workspace_root()
        .join("examples/nginx.jsonl")
        .display()
        .to_string()
}

fn policy_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

const EDITED: &str = "apiVersion: control.kubestellar.io/v1alpha1
kind: BindingPolicy
metadata:
  name: nginx
spec:
  clusterSelectors:
  - matchLabels: {location-group: edge}
  - matchExpressions: [{key: x, operator: Exists, values: [y]}]
  downsync:
  - resources: [namespaces, configmaps]
    objectSelectors: [{matchLabels: {app.kubernetes.io/name: nginx}}]
";

#[test]
fn dry_run_on_a_log_prints_what_replay_with_policy_prints() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy_file(&dir, EDITED);
    let file = file.to_str().unwrap();
    let dry = run_bindery(&["dry-run", "--log", &nginx_log(), "--policy-file", file]);
    let replay = run_bindery(&["replay", &nginx_log(), "--with-policy", file]);
    assert_success(&dry, "dry-run");
    assert!(replay.status.success());
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout),
        String::from_utf8_lossy(&replay.stdout)
    );
    let problems = "dry-run BindingPolicy \"nginx\": 1 problem(s):\n  spec.clusterSelectors[1]: invalid label selector";
    for out in [&dry, &replay] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(problems), "{stderr}");
    }
    // Nothing written next to the policy file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A policy of every kind of clause on the churn example's end state (an edit of an
/// existing policy, and a new one), where the dry-run (the oracle, this policy alone)
/// and `replay --with-policy` (the engine, every policy) must agree byte for byte.
#[test]
fn dry_run_on_the_churn_example_agrees_with_replay_with_policy() {
    let log = workspace_root()
        .join("examples/churn.jsonl")
        .display()
        .to_string();
    let spec = "spec:
  clusterSelectors:
  - matchExpressions: [{key: name, operator: In, values: [wec0, wec1]}]
  - matchLabels: {location-group: edge}
  downsync:
  - resources: [configmaps]
    objectSelectors: [{matchLabels: {tier: gold}}]
    createOnly: true
  - resources: ['*']
    objectSelectors: [{matchExpressions: [{key: tier, operator: NotIn, values: [gold]}]}]
    wantSingletonReportedState: true
    statusCollectors: [count]
";
    for name in ["gold-configs", "dry-new"] {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("kind: BindingPolicy\nmetadata: {{name: {name}}}\n{spec}");
        let file = policy_file(&dir, &text);
        let file = file.to_str().unwrap();
        let dry = run_bindery(&["dry-run", "--log", &log, "--policy-file", file]);
        let replay = run_bindery(&["replay", &log, "--with-policy", file]);
        assert!(
            dry.status.success() && replay.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&dry.stderr),
            String::from_utf8_lossy(&replay.stderr)
        );
        let (dry_out, replay_out) = (
            String::from_utf8_lossy(&dry.stdout),
            String::from_utf8_lossy(&replay.stdout),
        );
        assert_eq!(dry_out, replay_out, "{name}");
        let binding: serde_json::Value = serde_json::from_str(&dry_out).unwrap();
        assert!(
            binding["spec"]["workload"]["namespaceScope"]
                .as_array()
                .is_some_and(|entries| entries.len() > 1),
            "{name}: the policy selects objects: {dry_out}"
        );
        // Several WECs and a singleton clause: the status problem, the same both ways.
        let problem = |out: &Output| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .skip_while(|l| !l.starts_with("dry-run BindingPolicy"))
                .take_while(|l| l.starts_with("dry-run BindingPolicy") || l.starts_with("  "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            problem(&dry).contains("wantSingletonReportedState"),
            "{}",
            problem(&dry)
        );
        assert_eq!(problem(&dry), problem(&replay), "{name}");
    }
}

#[test]
fn dry_run_prints_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy_file(&dir, EDITED);
    let out = run_bindery(&[
        "dry-run",
        "--log",
        &nginx_log(),
        "--policy-file",
        file.to_str().unwrap(),
        "-o",
        "yaml",
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "apiVersion: control.kubestellar.io/v1alpha1
kind: Binding
metadata:
  name: nginx
  ownerReferences:
  - apiVersion: control.kubestellar.io/v1alpha1
    kind: BindingPolicy
    name: nginx
    uid: bp-nginx
    controller: true
    blockOwnerDeletion: false
spec:
  workload:
    clusterScope:
    - group: ''
      version: v1
      resource: namespaces
      name: nginx
      resourceVersion: '1001'
    namespaceScope:
    - group: ''
      version: v1
      resource: configmaps
      namespace: nginx
      name: nginx-config
      resourceVersion: '1012'
  destinations:
  - clusterId: cluster1
  - clusterId: cluster2
  - clusterId: cluster3
"
    );
}

#[test]
fn dry_run_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    let bad = policy_file(&dir, "kind: Binding\nmetadata: {name: x}\n");
    let bad = bad.to_str().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, EDITED).unwrap();
    let good = good.to_str().unwrap();
    let log = nginx_log();
    let cases: [(Vec<&str>, String); 5] = [
        (
            vec!["--log", &log, "--policy-file", missing],
            format!("reading the policy file {missing}"),
        ),
        (
            vec!["--log", &log, "--policy-file", bad],
            format!("{bad}: kind is \"Binding\""),
        ),
        (
            vec!["--log", "/no/such.jsonl", "--policy-file", good],
            "/no/such.jsonl".to_string(),
        ),
        (
            vec![
                "--log",
                &log,
                "--its-context",
                "its1",
                "--policy-file",
                good,
            ],
            "'--log <LOG>' cannot be used with '--its-context <NAME>'".to_string(),
        ),
        (
            vec!["--wds-kubeconfig", "w", "--policy-file", good],
            "WDS: reading the kubeconfig w".to_string(),
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["dry-run"];
        all.extend(&args);
        let out = run_bindery(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(stderr.contains(&want), "{args:?}: {want:?} not in {stderr}");
    }
}
