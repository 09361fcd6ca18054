//! `bindery dry-run --log` through the binary, on the seed's nginx example: the same
//! Binding and problems as `bindery replay --with-policy`, JSON or YAML, and its errors.
//! (The live form is in `live_explain.rs`.)

use std::path::PathBuf;
use std::process::Output;

use bindery_tests::{run_bindery, workspace_root};

fn nginx_log() -> String {
    workspace_root()
        .join("examples/nginx.jsonl")
        .display()
        .to_string()
}

fn bindery(args: &[&str]) -> Output {
    run_bindery(args)
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
    let dry = bindery(&["dry-run", "--log", &nginx_log(), "--policy-file", file]);
    let replay = bindery(&["replay", &nginx_log(), "--with-policy", file]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
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

#[test]
fn dry_run_prints_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy_file(&dir, EDITED);
    let out = bindery(&[
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
            format!("reading {missing}"),
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
            vec!["--policy-file", good],
            "<--log <LOG>|--wds-kubeconfig <FILE>>".to_string(),
        ),
        (
            vec!["--wds-kubeconfig", "w", "--policy-file", good],
            "--its-kubeconfig <FILE>".to_string(),
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["dry-run"];
        all.extend(&args);
        let out = bindery(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(stderr.contains(&want), "{args:?}: {want:?} not in {stderr}");
    }
}
