//! StatusCollectors, live: `bindery run --wds-name wds1` watches them in the WDS (from
//! when their CRD comes, without holding its first Bindings back while it is absent),
//! and writes the `StatusCollectorsAvailable` condition on a policy whose downsync
//! clause names collectors: `False` with the missing ones, `True` once all exist.

use std::time::Duration;

use bindery_tests::control_plane;
use bindery_tests::world::{World, condition, stop};
use serde_json::{Value, json};

const CRD: &str = "statuscollectors.control.kubestellar.io";

/// A valid StatusCollector `name`: the WECs' names.
fn collector(name: &str) -> Value {
    let spec = json!({"select": [{"name": "wec", "def": "inventory.name"}], "limit": 20});
    bindery_tests::objects::status_collector(name, spec)
}

/// A check of a policy status: its `StatusCollectorsAvailable` condition is `ok` with
/// `message`.
fn collectors_condition(ok: bool, message: &str) -> impl Fn(&Value) -> Result<(), String> {
    let want = (if ok { "True" } else { "False" }).to_string();
    let reason = if ok {
        "ReconcileSuccess"
    } else {
        "ReconcileError"
    };
    let message = message.to_string();
    move |status| {
        let c = condition(status, "StatusCollectorsAvailable").ok_or("no condition")?;
        if c["status"] == want.as_str() && c["reason"] == reason && c["message"] == message.as_str()
        {
            Ok(())
        } else {
            Err(format!("StatusCollectorsAvailable is {c}"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_are_watched_once_their_crd_comes_and_the_condition_follows() {
    let w = World::start().await;
    // KubeStellar's StatusCollector CRD is installed after Bindery starts.
    control_plane::delete_crd(&w.wds, CRD, Duration::from_secs(60))
        .await
        .unwrap();
    w.wec("cluster1", "edge").await;
    w.namespace("nginx", json!({})).await;
    let app = json!({"app.kubernetes.io/name": "nginx"});
    w.deployment("nginx", "nginx-deployment", app).await;
    w.policy(
        "nginx",
        json!([{"matchLabels": {"location-group": "edge"}}]),
        json!([{"objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}],
                "resources": ["deployments"], "statusCollectors": ["b", "a"]}]),
    )
    .await;
    let record = w.env.dir().join("recording.jsonl");
    let mut bindery = w.bindery_returning("bindery.log", &["--record", record.to_str().unwrap()]);
    // No StatusCollector watch: nothing waits for it, the status is written.
    let (_, first) = w
        .settled_status(
            &bindery,
            "nginx",
            collectors_condition(false, "Missing StatusCollector(s) [a b]"),
        )
        .await;
    w.step("both collectors missing");

    let crd = bindery_api::crds()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(CRD))
        .unwrap();
    control_plane::install_crds(&w.wds, &[crd]).await.unwrap();
    w.wds(&control_plane::res::status_collectors(), collector("a"))
        .await;
    let (_, one) = w
        .settled_status(
            &bindery,
            "nginx",
            collectors_condition(false, "Missing StatusCollector(s) [b]"),
        )
        .await;
    w.step("collector a found once its CRD came");
    let time = |s: &Value| {
        condition(s, "StatusCollectorsAvailable").unwrap()["lastTransitionTime"].clone()
    };
    assert_eq!(time(&one), time(&first), "still False: the same transition");

    w.wds(&control_plane::res::status_collectors(), collector("b"))
        .await;
    w.settled_status(
        &bindery,
        "nginx",
        collectors_condition(true, "All StatusCollector(s) are available"),
    )
    .await;
    w.step("all collectors available");
    // An invalid collector counts as missing.
    let mut invalid = collector("b");
    invalid["spec"]["groupBy"] = json!([{"name": "g", "def": "1"}]);
    w.wds(&control_plane::res::status_collectors(), invalid)
        .await;
    w.settled_status(
        &bindery,
        "nginx",
        collectors_condition(false, "Missing StatusCollector(s) [b]"),
    )
    .await;
    w.step("an invalid collector is missing");
    stop(&mut bindery);

    // The recording holds the collectors with their spec.
    let text = std::fs::read_to_string(&record).unwrap();
    let recorded: Vec<Value> = text
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["resource"] == "statuscollectors" && e["space"] == "wds")
        .filter_map(|e| e.get("object").cloned())
        .collect();
    // Each spec once (Bindery's own writes of the collectors' status add updates of
    // the same generation).
    let mut specs: Vec<(&str, i64)> = recorded
        .iter()
        .filter_map(|o| {
            let meta = &o["metadata"];
            Some((meta["name"].as_str()?, meta["generation"].as_i64()?))
        })
        .collect();
    specs.dedup();
    assert_eq!(specs, [("a", 1), ("b", 1), ("b", 2)], "{recorded:?}");
    assert_eq!(recorded[0]["spec"]["select"][0]["def"], "inventory.name");
    assert!(recorded[0]["metadata"]["generation"].is_i64());
}
