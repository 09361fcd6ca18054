//! `bindery history` end to end: each Binding change of a log with the events that
//! caused it, checked against hand-written expectations on the nginx example and on a
//! relist.

use std::path::{Path, PathBuf};

use bindery_tests::watch_log::{self, CONFIGMAPS, POLICIES, WECS, event};
use bindery_tests::{run_bindery, stdout_ok, workspace_root};
use serde_json::{Value, json};

fn nginx_log() -> PathBuf {
    workspace_root().join("examples/nginx.jsonl")
}

fn history(log: &Path, extra: &[&str]) -> String {
    let mut args = vec!["history", "--log", log.to_str().unwrap()];
    args.extend_from_slice(extra);
    stdout_ok(&run_bindery(&args), &format!("history {extra:?}"))
}

#[test]
fn the_relabel_of_cluster3_is_the_cause_of_its_destination() {
    let text = history(
        &nginx_log(),
        &["--binding", "nginx", "--cluster", "cluster3"],
    );
    assert_eq!(
        text,
        "2025-11-26T10:00:00.08Z  epoch 13  nginx  + destination cluster3\n\
         \x20   line 17  MODIFIED cluster.open-cluster-management.io/managedclusters cluster3  \
         location-group: core → edge  resourceVersion 503 → 601\n"
    );
}

#[test]
fn an_objects_history_has_its_entries_and_the_destinations_that_carry_it() {
    let json = history(
        &nginx_log(),
        &[
            "--object",
            "apps/deployments/nginx/nginx-deployment",
            "-o",
            "json",
        ],
    );
    let changes: Value = serde_json::from_str(&json).unwrap();
    let summary: Vec<(u64, Value, Vec<u64>)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let lines = c["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|cause| cause["line"].as_u64().unwrap())
                .collect();
            (c["epoch"].as_u64().unwrap(), c["change"].clone(), lines)
        })
        .collect();
    let object = "apps/deployments/nginx/nginx-deployment";
    assert_eq!(
        summary,
        [
            // The policy's list (the epochs are those of `replay --emit-deltas`): the
            // WECs, namespaces and Deployments had listed before, with no Binding.
            (
                11,
                json!({"destinationAdded": {"cluster": "cluster1"}}),
                vec![14]
            ),
            (
                11,
                json!({"destinationAdded": {"cluster": "cluster2"}}),
                vec![14]
            ),
            (11, json!({"workloadAdded": {"object": object}}), vec![14]),
            // Its own update (a new resourceVersion).
            (12, json!({"workloadChanged": {"object": object}}), vec![16]),
            // cluster3 relabelled into the edge group.
            (
                13,
                json!({"destinationAdded": {"cluster": "cluster3"}}),
                vec![17]
            ),
        ]
    );
    let update = &changes[3]["causes"][0];
    assert_eq!(update["type"], "MODIFIED");
    assert_eq!(
        update["resourceVersion"],
        json!({"old": "1010", "new": "1200"})
    );
    assert!(update.get("labels").is_none(), "no label changed: {update}");
    let relabel = &changes[4]["causes"][0];
    assert_eq!(
        relabel["labels"],
        json!({"location-group": {"old": "core", "new": "edge"}})
    );
}

#[test]
fn since_and_until_bound_the_changes() {
    // The deployment's update is at ts ...075, the relabel at ...080.
    let only_update = history(
        &nginx_log(),
        &[
            "--binding",
            "nginx",
            "--since",
            "1764151200075",
            "--until",
            "1764151200079",
        ],
    );
    assert_eq!(
        only_update.lines().filter(|l| !l.starts_with(' ')).count(),
        1,
        "{only_update}"
    );
    assert!(
        only_update.contains("~ workload apps/deployments/nginx/nginx-deployment"),
        "{only_update}"
    );
}

/// A log with WEC c1, policy p selecting ConfigMaps labelled app=a, ConfigMaps x and y;
/// then a relist of ConfigMaps that no longer lists y and lists x relabelled.
fn relist_log(dir: &Path) -> PathBuf {
    let cm = |name: &str, rv: &str, app: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}"),
                            "resourceVersion": rv, "labels": {"app": app}}})
    };
    let wec = json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
                     "metadata": {"name": "c1", "uid": "mc-c1", "resourceVersion": "1", "labels": {"env": "edge"}}});
    let policy = json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
                        "metadata": {"name": "p", "uid": "bp-p", "resourceVersion": "2", "generation": 1},
                        "spec": {"clusterSelectors": [{"matchLabels": {"env": "edge"}}],
                                 "downsync": [{"resources": ["configmaps"],
                                               "objectSelectors": [{"matchLabels": {"app": "a"}}]}]}});
    let events = [
        event(1, WECS, "ADDED", Some(wec)),
        event(1, WECS, "SYNCED", None),
        event(1, POLICIES, "ADDED", Some(policy)),
        event(1, POLICIES, "SYNCED", None),
        event(1, CONFIGMAPS, "ADDED", Some(cm("x", "10", "a"))),
        event(1, CONFIGMAPS, "ADDED", Some(cm("y", "11", "a"))),
        event(1, CONFIGMAPS, "SYNCED", None),
        // The relist: x relabelled (it leaves), y not listed (deleted meanwhile).
        event(5, CONFIGMAPS, "RESET", None),
        event(6, CONFIGMAPS, "ADDED", Some(cm("x", "20", "b"))),
        event(7, CONFIGMAPS, "SYNCED", None),
    ];
    watch_log::write(dir, "relist.jsonl", &events)
}

#[test]
fn a_relist_is_the_cause_of_what_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let log = relist_log(dir.path());
    // The epoch `replay --emit-deltas` gives the relist's changes.
    let out = bindery_tests::run_bindery(&["replay", log.to_str().unwrap(), "--emit-deltas"]);
    let deltas = stdout_ok(&out, "replay --emit-deltas");
    let last: Value = serde_json::from_str(deltas.lines().last().unwrap()).unwrap();
    let epoch = last["epoch"].as_u64().unwrap();
    let text = history(&log, &["--binding", "p", "--since", "2"]);
    assert_eq!(
        text,
        format!(
            "1970-01-01T00:00:00.007Z  epoch {epoch}  p  - workload /configmaps/ns/x\n\
             \x20   line 10  ADDED configmaps ns/x  app: a → b  resourceVersion 10 → 20\n\
             1970-01-01T00:00:00.007Z  epoch {epoch}  p  - workload /configmaps/ns/y\n\
             \x20   line 11  SYNCED configmaps (relist)\n"
        )
    );
}

#[test]
fn every_delta_of_a_churning_log_is_in_the_history_with_a_cause() {
    let log = workspace_root().join("examples/churn.jsonl");
    let out = run_bindery(&["replay", log.to_str().unwrap(), "--emit-deltas"]);
    let deltas = stdout_ok(&out, "replay --emit-deltas");
    // What the deltas say changed, as history names it: (epoch, binding, change).
    let mut want = Vec::new();
    for line in deltas.lines() {
        let d: Value = serde_json::from_str(line).unwrap();
        let (epoch, binding) = (d["epoch"].as_u64().unwrap(), d["binding"].as_str().unwrap());
        for (key, what) in [
            ("added", "destinationAdded"),
            ("removed", "destinationRemoved"),
        ] {
            for c in d["destinations"][key].as_array().unwrap() {
                want.push((epoch, binding.to_string(), json!({what: {"cluster": c}})));
            }
        }
        let name = |e: &Value| {
            let ns = e["namespace"].as_str().unwrap_or("");
            let (g, r, n) = (
                e["group"].as_str().unwrap(),
                e["resource"].as_str().unwrap(),
                e["name"].as_str().unwrap(),
            );
            if ns.is_empty() {
                format!("{g}/{r}/{n}")
            } else {
                format!("{g}/{r}/{ns}/{n}")
            }
        };
        let added: Vec<String> = d["workload"]["added"]
            .as_array()
            .unwrap()
            .iter()
            .map(name)
            .collect();
        let removed: Vec<String> = d["workload"]["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(name)
            .collect();
        let mut objects: Vec<&String> = added.iter().chain(&removed).collect();
        objects.sort();
        objects.dedup();
        for o in objects {
            let what = match (removed.contains(o), added.contains(o)) {
                (true, true) => "workloadChanged",
                (false, _) => "workloadAdded",
                (true, false) => "workloadRemoved",
            };
            want.push((epoch, binding.to_string(), json!({what: {"object": o}})));
        }
    }
    let json = history(&log, &["-o", "json"]);
    let changes: Value = serde_json::from_str(&json).unwrap();
    let mut got = Vec::new();
    for c in changes.as_array().unwrap() {
        let what = &c["change"];
        if what.get("owner").is_some() || what.get("problems").is_some() {
            continue;
        }
        assert!(
            !c["causes"].as_array().unwrap().is_empty(),
            "a change without a cause: {c}"
        );
        got.push((
            c["epoch"].as_u64().unwrap(),
            c["binding"].as_str().unwrap().to_string(),
            what.clone(),
        ));
    }
    let key = |v: &(u64, String, Value)| (v.0, v.1.clone(), v.2.to_string());
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert!(want.len() > 100, "the churn moves things: {}", want.len());
    assert_eq!(got, want, "the history's changes are the deltas'");
}

/// A log where one epoch (ts 5) holds several candidates for each change: the WEC
/// relabelled into the policy's selector, the policy's downsync edited (not its cluster
/// selector), configmap `x` relabelled into the object selector and its namespace
/// relabelled (no selector reads namespace labels), and configmap `z` only touched
/// (its resourceVersion).
fn crowded_epoch_log(dir: &Path) -> PathBuf {
    let cm = |name: &str, rv: &str, app: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}"),
                            "resourceVersion": rv, "labels": {"app": app}}})
    };
    let ns = |rv: &str, team: &str| {
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "ns", "uid": "u-ns", "resourceVersion": rv, "labels": {"team": team}}})
    };
    let wec = |rv: &str, env: &str| {
        json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
               "metadata": {"name": "c1", "uid": "mc-c1", "resourceVersion": rv, "labels": {"env": env}}})
    };
    let policy = |rv: &str, generation: i64, apps: &[&str]| {
        json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
               "metadata": {"name": "p", "uid": "bp-p", "resourceVersion": rv, "generation": generation},
               "spec": {"clusterSelectors": [{"matchLabels": {"env": "edge"}}],
                        "downsync": [{"resources": ["configmaps"],
                                      "objectSelectors": [{"matchExpressions": [
                                          {"key": "app", "operator": "In", "values": apps}]}]}]}})
    };
    let events = [
        event(1, WECS, "ADDED", Some(wec("1", "core"))),
        event(1, WECS, "SYNCED", None),
        event(1, POLICIES, "ADDED", Some(policy("2", 1, &["a"]))),
        event(1, POLICIES, "SYNCED", None),
        event(1, watch_log::NAMESPACES, "ADDED", Some(ns("3", "t1"))),
        event(1, watch_log::NAMESPACES, "SYNCED", None),
        event(1, CONFIGMAPS, "ADDED", Some(cm("x", "10", "b"))),
        event(1, CONFIGMAPS, "ADDED", Some(cm("z", "11", "a"))),
        event(1, CONFIGMAPS, "SYNCED", None),
        // One epoch, five events.
        event(5, WECS, "MODIFIED", Some(wec("20", "edge"))),
        event(5, POLICIES, "MODIFIED", Some(policy("21", 2, &["a", "c"]))),
        event(5, CONFIGMAPS, "MODIFIED", Some(cm("x", "22", "a"))),
        event(5, watch_log::NAMESPACES, "MODIFIED", Some(ns("23", "t2"))),
        event(5, CONFIGMAPS, "MODIFIED", Some(cm("z", "24", "a"))),
    ];
    watch_log::write(dir, "crowded.jsonl", &events)
}

#[test]
fn of_several_events_in_one_epoch_the_causes_are_those_that_decide() {
    let dir = tempfile::tempdir().unwrap();
    let log = crowded_epoch_log(dir.path());
    let text = history(&log, &["--binding", "p", "--since", "5"]);
    // c1: its relabel alone decides (the policy edit left the cluster selector alone).
    // x: its relabel alone decides (the edit added `c`, not `a`; no selector reads
    // the namespace's labels). z: its entry changed with its resourceVersion only.
    assert_eq!(
        text,
        "1970-01-01T00:00:00.005Z  epoch 2  p  ~ Binding of policy generation 2\n\
         \x20   line 12  MODIFIED control.kubestellar.io/bindingpolicies p  generation 1 → 2  resourceVersion 2 → 21\n\
         1970-01-01T00:00:00.005Z  epoch 2  p  + destination c1\n\
         \x20   line 11  MODIFIED cluster.open-cluster-management.io/managedclusters c1  env: core → edge  resourceVersion 1 → 20\n\
         1970-01-01T00:00:00.005Z  epoch 2  p  + workload /configmaps/ns/x\n\
         \x20   line 13  MODIFIED configmaps ns/x  app: b → a  resourceVersion 10 → 22\n\
         1970-01-01T00:00:00.005Z  epoch 2  p  ~ workload /configmaps/ns/z\n\
         \x20   line 15  MODIFIED configmaps ns/z  resourceVersion 11 → 24\n"
    );
}
