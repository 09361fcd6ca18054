//! `--log-format json` of a live run: every line one JSON object, and the logs can be
//! queried by what they are about: a watch task's lines carry its resource (in the
//! `watch` span), the engine thread's lines the `engine` span, and a Binding write's
//! lines the Binding (in the `sink_write` span).

use bindery_tests::control_plane::res;
use bindery_tests::objects::{edge, entry, labelled, spec};
use bindery_tests::world::{SETTLE, World, stop};
use serde_json::{Value, json};

/// The spans of a JSON log line, outermost first.
fn spans(line: &Value) -> Vec<&Value> {
    line["spans"]
        .as_array()
        .map(|s| s.iter().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_resource_and_the_binding_as_fields() {
    let w = World::start().await;
    w.wec("c1", "edge").await;
    let cm = w
        .configmap("default", "settings", json!({"app": "web"}))
        .await;
    let clause = labelled(&["configmaps"], json!({"app": "web"}));
    w.policy("web", edge(), json!([clause])).await;
    let mut bindery = w.bindery_with(
        "bindery.json.log",
        &["--log-format", "json", "--coalesce-ms", "100"],
    );
    let want = spec(vec![entry(&res::configmaps(), &cm)], &["c1"]);
    w.expect_spec(&bindery, "web", &want, "Binding web", SETTLE)
        .await;
    stop(&mut bindery);

    let text = bindery.log_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10, "{text}");
    let in_span = |name: &str, field: &str, value: &str| {
        lines.iter().any(|l| {
            spans(l)
                .iter()
                .any(|s| s["name"] == name && s[field].as_str() == Some(value))
        })
    };
    assert!(
        in_span("watch", "resource", "wds:v1/configmaps"),
        "a watch task's lines carry its resource: {text}"
    );
    assert!(
        in_span(
            "watch",
            "resource",
            "its:cluster.open-cluster-management.io/v1/managedclusters"
        ),
        "{text}"
    );
    assert!(
        in_span("sink_write", "binding", "web"),
        "a Binding write's lines carry the Binding: {text}"
    );
    let started = lines
        .iter()
        .find(|l| l["fields"]["message"] == "engine started")
        .unwrap_or_else(|| panic!("no 'engine started': {text}"));
    assert_eq!(started["fields"]["workers"], 1, "{started}");
    assert!(
        spans(started).iter().any(|s| s["name"] == "engine"),
        "the engine thread's lines are in its span: {started}"
    );
    // The summary lines' values are fields, not spliced into the message.
    let serving = lines
        .iter()
        .find(|l| l["fields"]["message"] == "serving")
        .unwrap_or_else(|| panic!("no 'serving': {text}"));
    assert!(
        serving["fields"]["metrics"]
            .as_str()
            .is_some_and(|m| m.starts_with("http://127.0.0.1:") && m.ends_with("/metrics")),
        "{serving}"
    );
}
