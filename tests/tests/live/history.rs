//! `GET /history` of a live `bindery run` against real kube-apiservers (envtest): a WEC
//! relabelled, a namespace relabelled (and back), an object relabelled and a policy
//! edited, each change found with its cause; each cause's line is that event's line
//! in the recording (`--record`), and `bindery history --log` on the recording gives
//! the same changes with the same causes; with `--destination-events` each destination
//! change is an Event on the policy naming its cause.

use std::collections::BTreeSet;

use bindery_tests::control_plane::{eventually, res};
use bindery_tests::objects::{edge, entry, location_group, spec};
use bindery_tests::world::{SETTLE, World, policy_events};
use bindery_tests::{free_listen_address, http_get, run_bindery, stdout_ok};
use serde_json::{Value, json};

/// `(change, [(resource, namespace/name, labels changed)])` of each change: what both
/// the journal and the log's history must say.
type Summary = BTreeSet<(String, Vec<(String, String, String)>)>;

fn summary(changes: &[Value]) -> Summary {
    changes
        .iter()
        .map(|c| {
            let causes = c["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    let at = match k["namespace"].as_str() {
                        Some(ns) => format!("{ns}/{}", k["name"].as_str().unwrap_or("")),
                        None => k["name"].as_str().unwrap_or("").to_string(),
                    };
                    let labels = k.get("labels").map_or(String::new(), Value::to_string);
                    (k["resource"].as_str().unwrap().to_string(), at, labels)
                })
                .collect();
            (c["change"].to_string(), causes)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_finds_each_change_with_its_cause() {
    let w = World::start().await;
    for (name, group) in [("c1", "edge"), ("c2", "edge"), ("c3", "core")] {
        w.wec(name, group).await;
    }
    w.namespace("web", json!({"team": "a"})).await;
    let front = w.deployment("web", "front", json!({"app": "web"})).await;
    let clause = json!({"resources": ["deployments"],
                        "namespaceSelectors": [{"matchLabels": {"team": "a"}}],
                        "objectSelectors": [{"matchLabels": {"app": "web"}}]});
    let policy = w.policy("web", edge(), json!([clause.clone()])).await;
    let uid = policy.metadata.uid.clone().unwrap();

    let (listen, base) = free_listen_address();
    let recording = w.env.dir().join("recording.jsonl");
    let bindery = w.bindery_with(
        "bindery.log",
        &[
            "--listen",
            &listen,
            "--coalesce-ms",
            "50",
            "--record",
            recording.to_str().unwrap(),
            "--destination-events",
        ],
    );
    let front_entry = || vec![entry(&res::deployments(), &front)];
    let deployed = spec(front_entry(), &["c1", "c2"]);
    w.expect_spec(&bindery, "web", &deployed, "the first Binding", SETTLE)
        .await;

    // Each change, waited for in the Binding before the next.
    w.wec("c3", "edge").await;
    let on_three = spec(front_entry(), &["c1", "c2", "c3"]);
    w.expect_spec(
        &bindery,
        "web",
        &on_three,
        "c3 relabelled: a destination",
        SETTLE,
    )
    .await;
    w.namespace("web", json!({"team": "b"})).await;
    let none = spec(vec![], &["c1", "c2", "c3"]);
    w.expect_spec(
        &bindery,
        "web",
        &none,
        "namespace relabelled: front leaves",
        SETTLE,
    )
    .await;
    w.namespace("web", json!({"team": "a"})).await;
    w.expect_spec(
        &bindery,
        "web",
        &on_three,
        "namespace relabelled back",
        SETTLE,
    )
    .await;
    w.deployment("web", "front", json!({"app": "other"})).await;
    w.expect_spec(
        &bindery,
        "web",
        &none,
        "front relabelled: it leaves",
        SETTLE,
    )
    .await;
    w.policy("web", location_group("core"), json!([clause]))
        .await;
    let nowhere = spec(vec![], &[]);
    w.expect_spec(
        &bindery,
        "web",
        &nowhere,
        "policy edited: no destination",
        SETTLE,
    )
    .await;

    // The journal: every change since the first publish, with its cause.
    let journal: Value = eventually("the policy edit in /history", SETTLE, || async {
        let (code, body) = http_get(&format!("{base}/history?binding=web&output=json"))
            .map_err(|e| e.to_string())?;
        if code != 200 {
            return Err(format!("GET /history: {code} {body}"));
        }
        let answer: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        // The last change is the policy edit's.
        let last = answer["changes"].as_array().and_then(|c| c.last()).cloned();
        match last {
            Some(c) if c["causes"][0]["generation"]["new"] == 2 => Ok(Some(answer)),
            _ => Err(format!("not yet: {answer}")),
        }
    })
    .await
    .unwrap();
    assert_eq!(
        journal["recording"].as_str(),
        Some(recording.to_str().unwrap())
    );
    let changes = journal["changes"].as_array().unwrap().clone();
    let got = summary(&changes);
    let wec = "cluster.open-cluster-management.io/managedclusters";
    let policy = "control.kubestellar.io/bindingpolicies";
    let cause = |resource: &str, at: &str, labels: Value| {
        let labels = if labels.is_null() {
            String::new()
        } else {
            labels.to_string()
        };
        (resource.to_string(), at.to_string(), labels)
    };
    let change = |what: Value| what.to_string();
    let front_name = "apps/deployments/web/front";
    let team = |old: &str, new: &str| json!({"team": {"old": old, "new": new}});
    let expected: Summary = [
        (
            change(json!({"destinationAdded": {"cluster": "c3"}})),
            vec![cause(
                wec,
                "c3",
                json!({"location-group": {"old": "core", "new": "edge"}}),
            )],
        ),
        (
            change(json!({"workloadRemoved": {"object": front_name}})),
            vec![cause("namespaces", "web", team("a", "b"))],
        ),
        (
            change(json!({"workloadAdded": {"object": front_name}})),
            vec![cause("namespaces", "web", team("b", "a"))],
        ),
        (
            change(json!({"workloadRemoved": {"object": front_name}})),
            vec![cause(
                "apps/deployments",
                "web/front",
                json!({"app": {"old": "web", "new": "other"}}),
            )],
        ),
    ]
    .into_iter()
    .chain(["c1", "c2", "c3"].map(|c| {
        (
            change(json!({"destinationRemoved": {"cluster": c}})),
            vec![cause(policy, "web", Value::Null)],
        )
    }))
    .collect();
    for e in &expected {
        assert!(got.contains(e), "missing {e:?}\nin {got:#?}");
    }
    // The policy edit: its new generation.
    assert!(
        changes
            .iter()
            .any(|c| c["change"]["owner"]["generation"] == 2
                && c["causes"][0]["generation"] == json!({"old": 1, "new": 2})),
        "{changes:#?}"
    );

    // Each cause's line is its event's line in the recording.
    let text = std::fs::read_to_string(&recording).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for c in &changes {
        for k in c["causes"].as_array().unwrap() {
            let line = k["line"].as_u64().unwrap() as usize;
            let event: Value = serde_json::from_str(lines[line - 1]).unwrap();
            assert_eq!(
                event["object"]["metadata"]["name"], k["name"],
                "line {line}"
            );
            assert_eq!(event["type"], k["type"], "line {line}");
        }
    }

    // The recording's history: the same changes, with the same causes.
    let out = run_bindery(&[
        "history",
        "--log",
        recording.to_str().unwrap(),
        "--binding",
        "web",
        "-o",
        "json",
    ]);
    let logged: Value = serde_json::from_str(&stdout_ok(&out, "history --log")).unwrap();
    let first_publish = changes[0]["ts"].as_i64().unwrap();
    let logged: Vec<Value> = logged
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ts"].as_i64().unwrap() >= first_publish)
        .cloned()
        .collect();
    assert_eq!(summary(&logged), got);

    // Text, and a filter: the cluster's changes.
    let (code, text) = http_get(&format!("{base}/history?cluster=c3")).unwrap();
    assert_eq!(code, 200, "{text}");
    assert!(text.starts_with("# every change since "), "{text}");
    assert!(text.contains("  web  + destination c3\n"), "{text}");
    assert!(text.contains("  web  - destination c3\n"), "{text}");
    assert!(!text.contains("destination c1"), "{text}");
    let (code, body) = http_get(&format!("{base}/history?since=yesterday")).unwrap();
    assert_eq!(code, 400, "{body}");
    let (_, metrics) = http_get(&format!("{base}/metrics")).unwrap();
    let held = bindery_tests::metrics::value(&metrics, "bindery_engine_history_changes");
    assert_eq!(held, changes.len() as f64, "the journal's size in /metrics");

    // --destination-events: an Event on the policy for each destination change, naming
    // its cause (one per reason and minute: the three removals make one).
    let added = policy_events(&w.wds, "web", &uid, "DestinationAdded", "Normal", 1)
        .await
        .unwrap();
    assert_eq!(
        added,
        ["WEC c3 is now a destination; cause: MODIFIED cluster.open-cluster-management.io/managedclusters c3  location-group: core → edge  resourceVersion "
            .to_string()
            + &rv_change(&changes, "c3")]
    );
    let removed = policy_events(&w.wds, "web", &uid, "DestinationRemoved", "Normal", 1)
        .await
        .unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(
        removed[0].contains("is no longer a destination; cause: MODIFIED control.kubestellar.io/bindingpolicies web  generation 1 → 2"),
        "{removed:?}"
    );
}

/// `OLD → NEW` of the resourceVersion of the cause of WEC `cluster`'s destination added.
fn rv_change(changes: &[Value], cluster: &str) -> String {
    let change = changes
        .iter()
        .find(|c| c["change"]["destinationAdded"]["cluster"] == cluster)
        .unwrap();
    let rv = &change["causes"][0]["resourceVersion"];
    format!(
        "{} → {}",
        rv["old"].as_str().unwrap(),
        rv["new"].as_str().unwrap()
    )
}
