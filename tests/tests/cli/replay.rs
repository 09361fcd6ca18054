//! `bindery replay` end to end: the acceptance logs give exactly the expected Bindings,
//! deltas add up to the final Bindings, and log errors are reported as the watch-log
//! spec says.

use std::io::Write;
use std::path::Path;
use std::process::Output;

use bindery_tests::objects::{self, as_stored, labelled, namespaced_entries, policy};
use bindery_tests::watch_log::{self, CONFIGMAPS, POLICIES, WECS, event};
use bindery_tests::{acceptance_cases, assert_success, bindery_command, workspace_root};
use serde_json::{Value, json};

fn replay(log: &Path, extra: &[&str]) -> Output {
    bindery_command()
        .arg("replay")
        .arg(log)
        .args(extra)
        .output()
        .expect("running bindery")
}

fn dump(log: &Path) -> Value {
    let out = replay(log, &["--dump-bindings", "-"]);
    assert_success(&out, &format!("replay {}", log.display()));
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
        stderr.contains("events_per_second=") && stderr.contains("epochs="),
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
    let log = watch_log::write_lines(dir.path(), "bad.jsonl", &lines);
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
    let log = watch_log::write_lines(dir.path(), "nokey.jsonl", &lines);
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
    let log = watch_log::write_lines(dir.path(), "v2.jsonl", &lines);
    let out = replay(&log, &["--dump-bindings", "-"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported watch log version 2"));
    let log = watch_log::write_lines(dir.path(), "nohdr.jsonl", &lines[1..]);
    let out = replay(&log, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a watch log header"));
}

#[test]
fn a_torn_last_line_is_a_warning_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let lines = sample_lines();
    let whole = watch_log::write_lines(dir.path(), "whole.jsonl", &lines[..lines.len() - 1]);
    let last = &lines[lines.len() - 1];
    let torn_text = lines[..lines.len() - 1].join("\n") + "\n" + &last[..last.len() / 2];
    // The last line without its second half and without a newline.
    let torn = dir.path().join("torn.jsonl");
    std::fs::write(&torn, torn_text).unwrap();
    let out = replay(&torn, &["--dump-bindings", "-"]);
    assert_success(&out, "replay of a torn log");
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

/// WEC `name`, labelled `env: prod`, as a log holds it.
fn wec(name: &str) -> Option<Value> {
    Some(json!({
        "apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
        "metadata": {"name": name, "uid": format!("u-{name}"), "resourceVersion": "1", "labels": {"env": "prod"}},
    }))
}

/// ConfigMap `ns/name` at resourceVersion `rv`, labelled `app: a`, as a log holds it.
fn configmap(name: &str, rv: &str) -> Option<Value> {
    let cm = objects::configmap("ns", name, json!({"app": "a"}));
    Some(as_stored(cm, &format!("u-{name}"), rv))
}

/// A complete initial sync (after a RESET of each resource): WEC `c1`, policy `p` (every
/// `app=a` ConfigMap to every `env=prod` WEC), ConfigMaps `cm1` and `cm2`. Timestamps
/// 0..=7.
fn synced_prefix() -> Vec<Value> {
    let prod = json!([{"matchLabels": {"env": "prod"}}]);
    let app_a = json!([labelled(&["configmaps"], json!({"app": "a"}))]);
    let mut policy = as_stored(policy("p", prod, app_a), "u-p", "1");
    policy["metadata"]["generation"] = json!(1);
    vec![
        // As a live recording starts: every resource unsynced before any lists.
        event(0, WECS, "RESET", None),
        event(0, POLICIES, "RESET", None),
        event(0, CONFIGMAPS, "RESET", None),
        event(1, WECS, "ADDED", wec("c1")),
        event(2, WECS, "SYNCED", None),
        event(3, POLICIES, "ADDED", Some(policy)),
        event(4, POLICIES, "SYNCED", None),
        event(5, CONFIGMAPS, "ADDED", configmap("cm1", "10")),
        event(6, CONFIGMAPS, "ADDED", configmap("cm2", "11")),
        event(7, CONFIGMAPS, "SYNCED", None),
    ]
}

/// The `(clusterIds, ConfigMap names@resourceVersion)` of Binding `p` in a dump.
fn binding_p(list: &Value) -> (Vec<String>, Vec<String>) {
    let items = list["items"].as_array().unwrap();
    let p = items.iter().find(|b| b["metadata"]["name"] == "p").unwrap();
    let dests = p["spec"]["destinations"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|d| d["clusterId"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (dests, namespaced_entries(&p["spec"]))
}

/// A log that ends before every resource synced has no consistent view to publish:
/// an error naming the unsynced resources, a non-zero exit, nothing dumped or emitted.
#[test]
fn a_log_ending_before_every_resource_synced_is_an_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = synced_prefix();
    events.pop(); // configmaps never sync
    events.push(event(8, "wds:apps/v1/deployments", "RESET", None));
    let log = watch_log::write(dir.path(), "unsynced.jsonl", &events);
    let file = dir.path().join("out.json");
    let out = replay(
        &log,
        &["--dump-bindings", file.to_str().unwrap(), "--emit-deltas"],
    );
    assert!(!out.status.success(), "must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsynced.jsonl: the log ends before every resource synced")
            && stderr.contains("wds:v1/configmaps, wds:apps/v1/deployments"),
        "{stderr}"
    );
    assert!(!file.exists(), "no Bindings dumped");
    assert!(out.stdout.is_empty(), "no deltas emitted");
    let out = replay(&log, &["--dump-bindings", "-"]);
    assert!(!out.status.success() && out.stdout.is_empty());

    // Without the RESETs, the view is complete after the WECs' SYNCED (a log's resource
    // not seen yet does not count); a resource whose initial list never completes is
    // still an error.
    events.retain(|e| e["type"] != "RESET");
    let log = watch_log::write(dir.path(), "late.jsonl", &events);
    let out = replay(&log, &["--dump-bindings", "-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{stderr}");
    assert!(
        stderr.contains(
            "late.jsonl: the log ends before every resource synced (not synced: wds:v1/configmaps)"
        ),
        "{stderr}"
    );
}

/// A relist still pending when the log ends is not applied: the Bindings keep the
/// relisting resource as it was at its last SYNCED (cm2 stays, cm1 keeps its old
/// version), while the other resources' changes since (a new WEC) are in; a warning
/// names the resource. The same log with the relist's SYNCED applies it.
#[test]
fn a_relist_pending_at_the_end_of_the_log_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = synced_prefix();
    events.extend([
        event(10, CONFIGMAPS, "RESET", None),
        event(11, CONFIGMAPS, "ADDED", configmap("cm1", "20")),
        event(12, WECS, "ADDED", wec("c2")),
        event(13, CONFIGMAPS, "ADDED", configmap("cm3", "21")),
    ]);
    let pending = watch_log::write(dir.path(), "pending.jsonl", &events);
    let out = replay(&pending, &["--dump-bindings", "-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARN")
            && stderr.contains("the log ends during a relist")
            && stderr.contains("pending.jsonl")
            && stderr.contains("relisting=\"wds:v1/configmaps\"")
            && stderr.contains("not applied"),
        "{stderr}"
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        binding_p(&list),
        (
            vec!["c1".to_string(), "c2".to_string()],
            vec!["cm1@10".to_string(), "cm2@11".to_string()]
        )
    );

    events.push(event(14, CONFIGMAPS, "SYNCED", None));
    let done = watch_log::write(dir.path(), "done.jsonl", &events);
    let out = replay(&done, &["--dump-bindings", "-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("WARN"), "{stderr}");
    assert_eq!(
        binding_p(&serde_json::from_slice(&out.stdout).unwrap()),
        (
            vec!["c1".to_string(), "c2".to_string()],
            vec!["cm1@20".to_string(), "cm3@21".to_string()]
        )
    );
}

/// During a relist of one resource, the other resources' changes keep reaching the
/// Bindings in epochs of their own; the relist arrives as one difference at its SYNCED.
#[test]
fn a_relist_holds_back_only_its_own_resource_in_the_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = synced_prefix();
    events.extend([
        event(10, CONFIGMAPS, "RESET", None),
        event(11, CONFIGMAPS, "ADDED", configmap("cm1", "20")),
        event(12, WECS, "ADDED", wec("c2")),
        event(13, CONFIGMAPS, "ADDED", configmap("cm3", "21")),
        event(14, WECS, "ADDED", wec("c3")),
        event(15, CONFIGMAPS, "SYNCED", None),
    ]);
    let log = watch_log::write(dir.path(), "relist.jsonl", &events);
    let out = replay(&log, &["--emit-deltas"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deltas: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(Value, Value)> = deltas
        .iter()
        .map(|d| (d["destinations"]["added"].clone(), d["workload"].clone()))
        .collect();
    assert_eq!(deltas.len(), 4, "{summary:#?}");
    // The first publish, then c2 and c3 each in its own epoch with no workload change,
    // then the relist's difference alone.
    let epochs: Vec<u64> = deltas
        .iter()
        .map(|d| d["epoch"].as_u64().unwrap())
        .collect();
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_str().map(str::to_string).unwrap_or_else(|| {
                    format!(
                        "{}@{}",
                        e["name"].as_str().or(e["clusterId"].as_str()).unwrap(),
                        e["resourceVersion"].as_str().unwrap_or("")
                    )
                })
            })
            .collect()
    };
    for (i, wec) in [(1, "c2"), (2, "c3")] {
        assert_eq!(
            names(&deltas[i]["destinations"]["added"]),
            vec![wec.to_string()]
        );
        assert!(
            names(&deltas[i]["workload"]["added"]).is_empty(),
            "{summary:#?}"
        );
        assert!(
            names(&deltas[i]["workload"]["removed"]).is_empty(),
            "{summary:#?}"
        );
    }
    assert!(names(&deltas[3]["destinations"]["added"]).is_empty());
    let mut added = names(&deltas[3]["workload"]["added"]);
    let mut removed = names(&deltas[3]["workload"]["removed"]);
    added.sort();
    removed.sort();
    assert_eq!(added, ["cm1@20", "cm3@21"], "{summary:#?}");
    assert_eq!(removed, ["cm1@10", "cm2@11"], "{summary:#?}");
}

/// `examples/status-return.jsonl` (a singleton status, a multi-WEC aggregate over two
/// WECs, a labelled object to clear, a ConfigMap whose WorkStatus has no status; a
/// CombinedStatus of an aggregating and a selecting collector, an invalid one and a
/// missing one) gives the hand-checked `examples/status-return.statuses.json`, on one
/// worker and on two; only one output may take stdout.
#[test]
fn returned_statuses_are_dumped_as_expected() {
    let log = workspace_root().join("examples/status-return.jsonl");
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("examples/status-return.statuses.json"))
            .unwrap(),
    )
    .unwrap();
    for workers in ["1", "2"] {
        let out = replay(&log, &["--dump-statuses", "-", "--workers", workers]);
        assert_success(&out, "replay --dump-statuses");
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got, want, "on {workers} workers");
    }
    let labels: Vec<&str> = want["objectStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap_or("clear"))
        .collect();
    assert_eq!(labels, ["clear", "singleton", "multiwec"]);
    let combined = &want["combinedStatuses"][0];
    assert_eq!(
        combined["metadata"]["name"],
        "dep-nginx-multi.bp-nginx-multi"
    );
    let results: Vec<&str> = combined["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        ["per-wec", "replicas"],
        "sorted; bad and missing left out"
    );
    assert_eq!(
        want["statusCollectors"][0]["errors"][0],
        "groupBy and combinedFields must be empty if select is not"
    );
    let out = replay(&log, &["--dump-statuses", "-", "--dump-bindings", "-"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only one output can go to stdout"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The status-write lines a live run records (`wds:control.kubestellar.io/v1alpha1/
/// binderystatuswrites`) make the update of a labelled object to that resourceVersion
/// Bindery's own: its Binding entry keeps the resourceVersion it showed, whether the
/// line comes after the update or before it; another update is shown.
/// A collector reading `obj`: its CombinedStatus waits for the object's content, which
/// a `binderyobjectcontents` line of the log gives (a `DELETED` line takes it away).
#[test]
fn object_contents_in_the_log_feed_collectors_reading_obj() {
    let example =
        std::fs::read_to_string(workspace_root().join("examples/status-return.jsonl")).unwrap();
    let mut lines: Vec<String> = example.lines().map(str::to_string).collect();
    let collector = json!({"ts": 1796637606000u64, "space": "wds", "group": "control.kubestellar.io",
        "version": "v1alpha1", "resource": "statuscollectors", "type": "MODIFIED",
        "object": {"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "StatusCollector",
                   "metadata": {"name": "per-wec", "uid": "sc-per-wec", "resourceVersion": "40", "generation": 2},
                   "spec": {"select": [{"name": "wec", "def": "inventory.name"},
                                       {"name": "want", "def": "obj.spec.replicas"}], "limit": 20}}});
    lines.push(collector.to_string());
    let content = |event_type: &str, with: bool| {
        let mut object = json!({"apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "BinderyObjectContent",
            "metadata": {"name": "nginx-multi", "namespace": "nginx"},
            "target": {"group": "apps", "resource": "deployments"}});
        if with {
            object["metadata"]["resourceVersion"] = json!("22");
            object["content"] = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "nginx-multi", "namespace": "nginx", "resourceVersion": "22"},
                "spec": {"replicas": 3}});
        }
        json!({"ts": 1796637607000u64, "space": "wds", "group": "control.kubestellar.io",
               "version": "v1alpha1", "resource": "binderyobjectcontents", "type": event_type,
               "object": object})
        .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let combined = |lines: &[String], name: &str| -> Value {
        let log = watch_log::write_lines(dir.path(), name, lines);
        let out = replay(&log, &["--dump-statuses", "-"]);
        assert_success(&out, "replay --dump-statuses");
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        got["combinedStatuses"].clone()
    };
    assert_eq!(
        combined(&lines, "waiting.jsonl"),
        json!([]),
        "no content yet: nothing computed"
    );
    lines.push(content("MODIFIED", true));
    let with = combined(&lines, "content.jsonl");
    let per_wec = with[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "per-wec")
        .expect("per-wec computed")
        .clone();
    assert_eq!(per_wec["columnNames"], json!(["wec", "want"]));
    for row in per_wec["rows"].as_array().unwrap() {
        assert_eq!(row["columns"][1], json!({"type": "Number", "float": "3"}));
    }
    lines.push(content("DELETED", false));
    assert_eq!(
        combined(&lines, "gone.jsonl"),
        json!([]),
        "the content gone"
    );
}

#[test]
fn own_status_writes_keep_the_entries_resource_version() {
    const WRITES: &str = "wds:control.kubestellar.io/v1alpha1/binderystatuswrites";
    let marked = |name: &str, rv: &str| {
        let mut cm = configmap(name, rv).unwrap();
        cm["metadata"]["labels"]["managed-by.kubestellar.io/singletonstatus"] = json!("true");
        Some(cm)
    };
    let write = |name: &str, rv: &str| {
        Some(
            json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BinderyStatusWrite",
                    "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv},
                    "target": {"group": "", "resource": "configmaps"}}),
        )
    };
    let mut events = synced_prefix();
    events.extend([
        event(8, CONFIGMAPS, "MODIFIED", marked("cm1", "20")),
        event(8, CONFIGMAPS, "MODIFIED", marked("cm2", "21")),
        // cm1: the update, then the line; cm2: the line, then the update.
        event(9, CONFIGMAPS, "MODIFIED", marked("cm1", "22")),
        event(9, WRITES, "MODIFIED", write("cm1", "22")),
        event(10, WRITES, "MODIFIED", write("cm2", "23")),
        event(11, CONFIGMAPS, "MODIFIED", marked("cm2", "23")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let log = watch_log::write(dir.path(), "own.jsonl", &events);
    assert_eq!(binding_p(&dump(&log)).1, ["cm1@20", "cm2@21"]);
    // Without the lines, the updates are shown as any others.
    let without: Vec<Value> = events
        .iter()
        .filter(|e| e["resource"] != "binderystatuswrites")
        .cloned()
        .collect();
    let log = watch_log::write(dir.path(), "plain.jsonl", &without);
    assert_eq!(binding_p(&dump(&log)).1, ["cm1@22", "cm2@23"]);
    // A line that names no object is an error naming the line.
    let mut bad = events.clone();
    bad.push(event(
        12,
        WRITES,
        "MODIFIED",
        Some(json!({"metadata": {"name": "cm1"}})),
    ));
    let log = watch_log::write(dir.path(), "bad.jsonl", &bad);
    let out = replay(&log, &["--dump-bindings", "-"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl:"), "{stderr}");
}

/// The `ts` of every event line of `text` (a watch log), in order.
fn timestamps(text: &str) -> Vec<i64> {
    text.lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["ts"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[test]
fn until_gives_the_bindings_as_they_were_then() {
    let log = workspace_root().join("examples/churn.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let ts = timestamps(&text);
    assert!(ts.is_sorted(), "the example's events are in time order");
    let lines: Vec<&str> = text.lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let end = dump(&log);
    let mut changed = 0;
    for quarter in 1..=3 {
        // A cut between two timestamps and one on an event's own timestamp.
        let at = ts[ts.len() * quarter / 4];
        for until in [at, at - 1] {
            let kept = ts.iter().filter(|&&t| t <= until).count();
            let cut = dir.path().join(format!("cut-{until}.jsonl"));
            std::fs::write(&cut, lines[..=kept].join("\n") + "\n").unwrap();
            let out = replay(
                &log,
                &["--until", &until.to_string(), "--dump-bindings", "-"],
            );
            assert_success(&out, "replay --until");
            let then: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                then,
                dump(&cut),
                "--until {until} is the log cut after line {kept}"
            );
            changed += usize::from(then != end);
        }
    }
    assert!(
        changed > 0,
        "the Bindings at some cut differ from the end's"
    );

    // The same moment in RFC 3339.
    let at = ts[ts.len() / 2];
    let rfc3339 = jiff::Timestamp::from_millisecond(at).unwrap().to_string();
    let by_ms = replay(&log, &["--until", &at.to_string(), "--dump-bindings", "-"]);
    let by_time = replay(&log, &["--until", &rfc3339, "--dump-bindings", "-"]);
    assert_success(&by_time, "replay --until RFC3339");
    assert_eq!(by_ms.stdout, by_time.stdout);

    let out = replay(&log, &["--until", "noon", "--dump-bindings", "-"]);
    assert!(!out.status.success());
    let err = bindery_tests::stderr(&out);
    assert!(err.contains("\"noon\" is not a time"), "{err}");
}
