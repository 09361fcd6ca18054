//! `bindery explain` and the `bindery replay --with-policy` dry-run, through the binary,
//! on the seed's nginx example (`examples/nginx.jsonl`).

use std::path::{Path, PathBuf};
use std::process::Output;

use bindery_tests::{bindery_command, run_bindery, stdout_ok, workspace_root};
use serde_json::{Value, json};

fn nginx_log() -> PathBuf {
    workspace_root().join("examples/nginx.jsonl")
}

fn explain(log: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["explain", "--log", log.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_bindery(&args)
}

/// What [`explain`] prints, which must succeed.
fn explain_ok(log: &Path, extra: &[&str]) -> String {
    stdout_ok(&explain(log, extra), &format!("explain {extra:?}"))
}

/// The nginx example without its last event (cluster3 joining the `edge` group).
fn nginx_before_relabel(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(nginx_log()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.last().unwrap().contains("\"cluster3\""),
        "the example's last event relabels cluster3"
    );
    let path = dir.join("nginx-before.jsonl");
    std::fs::write(&path, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    path
}

#[test]
fn explains_the_createonly_deployment_clause_by_clause() {
    let deployment = "apps/deployments/nginx/nginx-deployment";
    let text = explain_ok(&nginx_log(), &["--policy", "nginx", "--object", deployment]);
    for want in [
        "BindingPolicy nginx (uid bp-nginx, generation 1)",
        "problems: none",
        "object apps/deployments/nginx/nginx-deployment: selected (modulation: createOnly)",
        "version v1, resourceVersion 1200",
        "✗ spec.downsync[0] does not select it",
        "✗ resources: the object's resource \"deployments\" is not in [\"namespaces\"]",
        "✓ spec.downsync[1] selects it (modulation: createOnly)",
        "✓ resources: the object's resource \"deployments\" is listed",
        "✓ matchLabels app.kubernetes.io/name=nginx: the object has app.kubernetes.io/name=nginx",
        "✓ namespaceSelectors: empty: any namespace",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    // The JSON form says the same.
    let out = explain(
        &nginx_log(),
        &["--policy", "nginx", "--object", deployment, "-o", "json"],
    );
    let e: Value =
        serde_json::from_str(&stdout_ok(&out, "explain -o json")).expect("JSON on stdout");
    assert_eq!(e["policy"], json!("nginx"));
    assert_eq!(e["problems"], json!([]));
    let o = &e["object"];
    assert_eq!(
        o["object"],
        json!({"group": "apps", "resource": "deployments", "namespace": "nginx", "name": "nginx-deployment"})
    );
    assert_eq!(o["selected"], json!(true));
    assert_eq!(
        o["modulation"],
        json!({"createOnly": true, "statusCollectors": [], "wantSingletonReportedState": false, "wantMultiWECReportedState": false})
    );
    let clauses = o["clauses"].as_array().unwrap();
    assert_eq!(clauses.len(), 2);
    assert_eq!(clauses[0]["path"], json!("spec.downsync[0]"));
    assert_eq!(clauses[0]["passed"], json!(false));
    let failed: Vec<&Value> = clauses[0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["held"] == json!(false))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["test"], json!("resources"));
    assert_eq!(clauses[1]["passed"], json!(true));
    assert!(
        clauses[1]["tests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["held"] == json!(true))
    );
    assert!(e.get("cluster").is_none() && e.get("overview").is_none());
}

#[test]
fn cluster3_is_a_destination_only_after_its_relabel() {
    let dir = tempfile::tempdir().unwrap();
    let before = nginx_before_relabel(dir.path());
    let text = explain_ok(&before, &["--policy", "nginx", "--cluster", "cluster3"]);
    for want in [
        "cluster cluster3: not a destination",
        "labels: location-group=core, name=cluster3",
        "✗ spec.clusterSelectors[0] does not match",
        "✗ matchLabels location-group=edge: the cluster has location-group=core",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    let text = explain_ok(
        &nginx_log(),
        &["--policy", "nginx", "--cluster", "cluster3"],
    );
    for want in [
        "cluster cluster3: a destination",
        "✓ spec.clusterSelectors[0] matches",
        "✓ matchLabels location-group=edge: the cluster has location-group=edge",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    for (log, destination, value) in [(&before, false, "core"), (&nginx_log(), true, "edge")] {
        let out = explain(
            log,
            &["--policy", "nginx", "--cluster", "cluster3", "-o", "json"],
        );
        let e: Value = serde_json::from_str(&stdout_ok(&out, "explain -o json")).unwrap();
        assert_eq!(
            e["cluster"],
            json!({
                "cluster": "cluster3",
                "labels": {"location-group": value, "name": "cluster3"},
                "destination": destination,
                "selectors": [{
                    "path": "spec.clusterSelectors[0]",
                    "matches": destination,
                    "requirements": [{
                        "test": "matchLabels location-group=edge",
                        "held": destination,
                        "reason": format!("the cluster has location-group={value}"),
                    }],
                }],
            })
        );
    }
}

#[test]
fn explains_the_policy_overall() {
    let text = explain_ok(&nginx_log(), &["--policy", "nginx"]);
    for want in [
        "destinations: 3 of 3 WECs",
        "cluster1: matched by spec.clusterSelectors[0]",
        "cluster3: matched by spec.clusterSelectors[0]",
        "workload: 2 of 5 objects selected",
        "spec.downsync[0]: selects 1",
        "spec.downsync[1]: selects 1",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let out = explain(&nginx_log(), &["--policy", "nginx", "-o", "json"]);
    let e: Value = serde_json::from_str(&stdout_ok(&out, "explain -o json")).unwrap();
    assert_eq!(e["overview"]["selected"], json!(2));
    assert_eq!(e["overview"]["destinations"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_requests_fail_with_clear_errors() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--policy", "nope"],
            "no BindingPolicy named \"nope\"; existing policies: nginx",
        ),
        (
            &[
                "--policy",
                "nginx",
                "--object",
                "deployments/nginx-deployment",
            ],
            "malformed object \"deployments/nginx-deployment\"",
        ),
        (
            &[
                "--policy",
                "nginx",
                "--object",
                "apps/deployments/nginx-deployment",
            ],
            "object apps/deployments/nginx-deployment not found: there is no such workload object; \
             objects of that resource and name: apps/deployments/nginx/nginx-deployment",
        ),
        (
            &["--policy", "nginx", "--object", "/configmaps/nginx/missing"],
            "object /configmaps/nginx/missing not found",
        ),
        (
            &["--policy", "nginx", "--cluster", "cluster9"],
            "no WEC (ManagedCluster) named \"cluster9\"; existing WECs: cluster1, cluster2, cluster3",
        ),
    ];
    for (args, want) in cases {
        let out = explain(&nginx_log(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(stderr.contains(want), "{args:?}: {want:?} not in {stderr}");
    }
    let out = run_bindery(&[
        "explain",
        "--policy",
        "nginx",
        "--wds-kubeconfig",
        "wds.kubeconfig",
    ]);
    // The live form: the ITS defaults to the WDS's server; the WDS's file is named.
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WDS: reading the kubeconfig wds.kubeconfig"),
        "{stderr}"
    );
}

fn dry_run(policy_yaml: &str, extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy_yaml).unwrap();
    let mut args = vec![
        "replay".to_owned(),
        nginx_log().to_str().unwrap().to_owned(),
        "--with-policy".to_owned(),
        file.to_str().unwrap().to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = bindery_command()
        .args(&args)
        .output()
        .expect("running bindery");
    (out, dir)
}

#[test]
fn dry_run_of_a_new_policy_prints_its_binding() {
    let (out, dir) = dry_run(
        "apiVersion: control.kubestellar.io/v1alpha1
kind: BindingPolicy
metadata:
  name: nginx-config
spec:
  clusterSelectors:
  - matchLabels: {name: cluster1}
  - matchExpressions: [{key: name, operator: In, values: [cluster2]}]
  downsync:
  - resources: [configmaps]
    namespaces: [nginx]
    statusCollectors: [sc-b, sc-a]
  - apiGroup: apps
    objectNames: [other]
    wantMultiWECReportedState: true
",
        &[],
    );
    let binding: Value =
        serde_json::from_str(&stdout_ok(&out, "replay --with-policy")).expect("one JSON Binding");
    assert_eq!(
        binding,
        json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "Binding",
            "metadata": {
                "name": "nginx-config",
                "ownerReferences": [{
                    "apiVersion": "control.kubestellar.io/v1alpha1",
                    "kind": "BindingPolicy",
                    "name": "nginx-config",
                    "uid": "dry-run",
                    "controller": true,
                    "blockOwnerDeletion": false,
                }],
            },
            "spec": {
                "workload": {
                    "namespaceScope": [
                        {
                            "group": "",
                            "version": "v1",
                            "resource": "configmaps",
                            "namespace": "nginx",
                            "name": "nginx-config",
                            "resourceVersion": "1012",
                            "statusCollectors": ["sc-a", "sc-b"],
                        },
                        {
                            "group": "apps",
                            "version": "v1",
                            "resource": "deployments",
                            "namespace": "default",
                            "name": "other",
                            "resourceVersion": "1011",
                            "wantMultiWECReportedState": true,
                        },
                    ],
                },
                "destinations": [{"clusterId": "cluster1"}, {"clusterId": "cluster2"}],
            },
        })
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dry-run BindingPolicy \"nginx-config\": no problems"),
        "{stderr}"
    );
    // Nothing written next to the policy file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn dry_run_of_an_edited_policy_includes_the_configmap_and_reports_problems() {
    let edited = r#"{"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
 "metadata": {"name": "nginx"},
 "spec": {
  "clusterSelectors": [{"matchLabels": {"location-group": "edge"}},
                       {"matchExpressions": [{"key": "x", "operator": "Exists", "values": ["y"]}]}],
  "downsync": [
   {"resources": ["namespaces", "configmaps"], "objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}]},
   {"resources": ["deployments"], "createOnly": true, "objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}]}
  ]}}"#;
    let (out, dir) = dry_run(edited, &[]);
    let binding: Value = serde_json::from_str(&stdout_ok(&out, "replay --with-policy")).unwrap();
    // An edit keeps the existing policy's uid when the file has none.
    assert_eq!(
        binding["metadata"]["ownerReferences"][0]["uid"],
        json!("bp-nginx")
    );
    let names: Vec<(&str, &str)> = binding["spec"]["workload"]["namespaceScope"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["resource"].as_str().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("configmaps", "nginx-config"),
            ("deployments", "nginx-deployment")
        ]
    );
    assert_eq!(
        binding["spec"]["destinations"],
        json!([{"clusterId": "cluster1"}, {"clusterId": "cluster2"}, {"clusterId": "cluster3"}])
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dry-run BindingPolicy \"nginx\": 1 problem(s):")
            && stderr.contains("spec.clusterSelectors[1]: invalid label selector"),
        "{stderr}"
    );

    // --dump-bindings to a file includes the dry-run policy's Binding.
    let dump = dir.path().join("dump.json");
    let (out, _dir) = dry_run(edited, &["--dump-bindings", dump.to_str().unwrap()]);
    let printed: Value = serde_json::from_str(&stdout_ok(&out, "replay --with-policy")).unwrap();
    let list: Value = serde_json::from_str(&std::fs::read_to_string(&dump).unwrap()).unwrap();
    assert_eq!(list["items"], json!([printed]));
}

#[test]
fn dry_run_rejects_bad_policy_files() {
    let cases = [
        (
            "- a\n- b\n",
            "expected one BindingPolicy object, got a list",
        ),
        (
            "kind: Binding\nmetadata: {name: x}\n",
            "kind is \"Binding\"",
        ),
        (
            "kind: BindingPolicy\nspec: {}\n",
            "metadata.name is required",
        ),
        ("a: 1\n---\nb: 2\n", "expected one BindingPolicy object"),
        (
            "metadata: {name: x, labels: {a: [1]}}\n",
            "metadata.labels[\"a\"] must be a string",
        ),
    ];
    for (yaml, want) in cases {
        let (out, _dir) = dry_run(yaml, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{yaml:?} should fail");
        assert!(stderr.contains(want), "{yaml:?}: {want:?} not in {stderr}");
    }
    let (out, _dir) = dry_run("metadata: {name: x}\n", &["--dump-bindings", "-"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --dump-bindings a file"));
}

/// `--object` says where the object's status comes from: who asks, KubeStellar's
/// decision, the WECs' WorkStatuses and what Bindery writes (`examples/status-return.jsonl`).
#[test]
fn explains_where_an_objects_status_comes_from() {
    let log = workspace_root().join("examples/status-return.jsonl");
    let text = explain_ok(
        &log,
        &[
            "--policy",
            "nginx-multi",
            "--object",
            "apps/deployments/nginx/nginx-multi",
        ],
    );
    for line in [
        "status return: aggregate over cluster1, cluster2; Bindery writes the aggregate, with the multi-WEC label",
        "  multi-WEC asked by: nginx-multi (to cluster1, cluster2)",
        "  WorkStatuses: cluster1/w-nginx-multi (a status), cluster2/w-nginx-multi (a status)",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    // A WorkStatus without a status: nothing written; a labelled object nothing asks for: cleared.
    let text = explain_ok(
        &log,
        &[
            "--policy",
            "nginx-singleton",
            "--object",
            "/configmaps/nginx/settings",
        ],
    );
    assert!(
        text.contains("status return: copy from WEC cluster1; Bindery writes nothing"),
        "{text}"
    );
    let text = explain_ok(
        &log,
        &[
            "--policy",
            "nginx-singleton",
            "--object",
            "apps/deployments/nginx/left-behind",
        ],
    );
    assert!(
        text.contains("status return: clear; Bindery writes status {} and no status-return label"),
        "{text}"
    );
    assert!(text.contains("carries a status-return label"), "{text}");
}

#[test]
fn explain_at_a_time_explains_the_state_then() {
    let dir = tempfile::tempdir().unwrap();
    let before = nginx_before_relabel(dir.path());
    let text = std::fs::read_to_string(nginx_log()).unwrap();
    let ts: Vec<i64> = text
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["ts"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let (last, before_last) = (ts[ts.len() - 1], ts[ts.len() - 2]);
    assert!(before_last < last, "the relabel has a time of its own");
    let rfc3339 = jiff::Timestamp::from_millisecond(before_last)
        .unwrap()
        .to_string();
    for format in ["text", "json"] {
        let query = ["--policy", "nginx", "--cluster", "cluster3", "-o", format];
        let then = explain_ok(&before, &query);
        for at in [before_last.to_string(), rfc3339.clone()] {
            let mut args = vec!["--at", at.as_str()];
            args.extend_from_slice(&query);
            assert_eq!(explain_ok(&nginx_log(), &args), then, "--at {at}");
        }
        let mut args = vec!["--at".to_string(), last.to_string()];
        args.extend(query.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(
            explain_ok(&nginx_log(), &args),
            explain_ok(&nginx_log(), &query),
            "at the last event's time: the end"
        );
    }
    // Live servers have no past.
    let out = run_bindery(&["explain", "--policy", "nginx", "--at", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--log"), "{err}");
}
