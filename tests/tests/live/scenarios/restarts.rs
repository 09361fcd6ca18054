//! Restarts: of Bindery (never a partial Binding, unchanged Bindings not rewritten) and
//! of the WDS API server mid-run.

use std::time::Duration;

use bindery_tests::control_plane::{BindingHistory, res, rv};
use bindery_tests::objects::{edge, entry, labelled, spec};
use bindery_tests::world::{TAIL, World, stop};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// 4. Restart safety
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindery_restart_never_publishes_a_partial_view() {
    let w = World::start().await;
    w.three_wecs().await;
    let (deps, cms) = (res::deployments(), res::configmaps());
    let history = BindingHistory::start(&w.wds).await.unwrap();

    // Enough objects across several resources that the watches sync at different times.
    w.namespace("ns-a", json!({"team": "a"})).await;
    w.namespace("ns-b", json!({"team": "b"})).await;
    let mut x_objects = Vec::new();
    for i in 0..5 {
        let ns = if i % 2 == 0 { "ns-a" } else { "ns-b" };
        let d = w
            .deployment(ns, &format!("app-{i}"), json!({"tier": "x"}))
            .await;
        x_objects.push(entry(&deps, &d));
        let c = w
            .configmap(ns, &format!("cfg-{i}"), json!({"tier": "x"}))
            .await;
        x_objects.push(entry(&cms, &c));
    }
    let y_cm = w.configmap("ns-a", "y-config", json!({"tier": "y"})).await;
    let z_cm = w.configmap("ns-b", "z-config", json!({"tier": "z"})).await;
    let tier = |t: &str| json!([labelled(&["deployments", "configmaps"], json!({"tier": t}))]);
    let px = w.policy("x", edge(), tier("x")).await;
    let cluster1 = json!([{"matchLabels": {"name": "cluster1"}}]);
    let py = w.policy("y", cluster1, tier("y")).await;
    let pz = w.policy("z", edge(), tier("z")).await;

    let mut first = w.bindery("bindery-1.log");
    let x_before = spec(x_objects.clone(), &["cluster1", "cluster2"]);
    let y_spec = spec(vec![entry(&cms, &y_cm)], &["cluster1"]);
    let z_before = spec(vec![entry(&cms, &z_cm)], &["cluster1", "cluster2"]);
    w.expect(&first, &px, &x_before, "x before the restart")
        .await;
    let y_binding = w.expect(&first, &py, &y_spec, "y before the restart").await;
    w.expect(&first, &pz, &z_before, "z before the restart")
        .await;
    for p in ["x", "y", "z"] {
        w.expect_ready(&first, p).await;
    }
    stop(&mut first);
    // The first run wrote each Binding once, complete.
    for name in ["x", "y", "z"] {
        let events: Vec<&str> = history.of(name).iter().map(|o| o.event).collect();
        assert_eq!(
            events,
            ["ADDED"],
            "Binding {name} versions served during the first run\n--- first bindery log ---\n{}",
            first.log_tail(TAIL)
        );
    }
    let y_rv = y_binding["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // The world changes while bindery is down: new objects for x, a WEC joins edge,
    // policy z goes.
    let seen_before_restart = history.len();
    for i in 5..8 {
        let d = w
            .deployment("ns-b", &format!("app-{i}"), json!({"tier": "x"}))
            .await;
        x_objects.push(entry(&deps, &d));
    }
    w.wec("cluster3", "edge").await;
    w.delete(&res::binding_policies(), None, "z").await;
    let x_after = spec(x_objects.clone(), &["cluster1", "cluster2", "cluster3"]);

    let mut second = w.bindery("bindery-2.log");
    w.expect(&second, &px, &x_after, "x after the restart")
        .await;
    w.expect_absent(
        &second,
        "z",
        "z deleted after the restart (its policy went while down)",
    )
    .await;
    w.expect_ready(&second, "x").await;
    w.expect_ready(&second, "y").await;
    // Let anything late arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let all = history.all();
    let show = |name: &str| {
        history
            .of(name)
            .iter()
            .map(|o| format!("  {} rv={} {}", o.event, o.resource_version, o.spec))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let context = || {
        format!(
            "\nx:\n{}\ny:\n{}\nz:\n{}\n--- second bindery log ---\n{}",
            show("x"),
            show("y"),
            show("z"),
            second.log_tail(TAIL)
        )
    };
    for o in &all {
        let allowed: &[&Value] = match o.name.as_str() {
            "x" => &[&x_before, &x_after],
            "y" => &[&y_spec],
            "z" => &[&z_before],
            other => panic!("an unexpected Binding {other}{}", context()),
        };
        assert!(
            allowed.contains(&&o.spec),
            "Binding {} was served with a spec that is neither before nor after the restart: {}{}",
            o.name,
            o.spec,
            context()
        );
    }
    // Each Binding was written once by the first run; after the restart x once, y never,
    // z deleted.
    let after: Vec<_> = all[seen_before_restart..].to_vec();
    let count = |name: &str, event: &str| {
        after
            .iter()
            .filter(|o| o.name == name && o.event == event)
            .count()
    };
    assert_eq!(
        (
            count("x", "MODIFIED"),
            count("y", "MODIFIED"),
            count("z", "DELETED")
        ),
        (1, 0, 1),
        "writes after the restart (x modified, y modified, z deleted){}",
        context()
    );
    let y_now = w.get(&res::bindings(), None, "y").await.expect("Binding y");
    assert_eq!(rv(&y_now), y_rv, "Binding y was rewritten{}", context());

    stop(&mut second);
}

// ---------------------------------------------------------------------------------------
// 5. The WDS API server restarts mid-run
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wds_apiserver_restart_mid_run() {
    let mut w = World::start().await;
    w.three_wecs().await;
    let (deps, cms) = (res::deployments(), res::configmaps());
    w.namespace("ns-a", json!({"env": "prod"})).await;
    let d1 = w.deployment("ns-a", "d1", json!({"app": "web"})).await;
    let c1 = w.configmap("ns-a", "c1", json!({"app": "web"})).await;
    let web = labelled(&["deployments", "configmaps"], json!({"app": "web"}));
    let p = w.policy("web", edge(), json!([web])).await;

    let mut bindery = w.bindery("bindery.log");
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![entry(&deps, &d1), entry(&cms, &c1)],
            &["cluster1", "cluster2"],
        ),
        "before the API server restart",
    )
    .await;

    w.restart_wds().await;

    // Changes after the restart: a new object, an update, a delete, a WEC relabel.
    let d2 = w.deployment("ns-a", "d2", json!({"app": "web"})).await;
    let d1 = w
        .deployment("ns-a", "d1", json!({"app": "web", "rev": "2"}))
        .await;
    w.delete(&cms, Some("ns-a"), "c1").await;
    w.wec("cluster3", "edge").await;
    let p_now = w
        .get(&res::binding_policies(), None, "web")
        .await
        .expect("policy web");
    w.expect_within(
        &bindery,
        &p_now,
        &spec(
            vec![entry(&deps, &d1), entry(&deps, &d2)],
            &["cluster1", "cluster2", "cluster3"],
        ),
        "after the API server restart",
        Duration::from_secs(120),
    )
    .await;
    // And the watches keep following.
    let c2 = w.configmap("ns-a", "c2", json!({"app": "web"})).await;
    w.expect(
        &bindery,
        &p,
        &spec(
            vec![entry(&deps, &d1), entry(&deps, &d2), entry(&cms, &c2)],
            &["cluster1", "cluster2", "cluster3"],
        ),
        "a later change",
    )
    .await;
    w.expect_ready(&bindery, "web").await;

    stop(&mut bindery);
}
