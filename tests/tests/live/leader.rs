//! Two `bindery run --leader-elect` on one WDS, against real kube-apiservers (envtest):
//! exactly one writes; the follower keeps its engine hot and writes nothing; when the
//! leader is killed (SIGKILL) the follower takes over once the Lease expires, when it is
//! stopped (SIGTERM) at once (the Lease is released); either way the final Binding is
//! exact and the write history (a watch on Bindings) shows no blank Binding and no fight
//! (no spec ever comes back after another replaced it).

use std::time::{Duration, Instant};

use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::control_plane::{BindingHistory, eventually};
use bindery_tests::web::{self, EDGE, Writers, assert_history, setup, touch};
use bindery_tests::world::{World, fail};
use bindery_tests::{free_listen_address, http_get, metrics};
use kube::api::DynamicObject;
use serde_json::Value;

/// A bound for "it happened at all" (several lease durations), never a measured figure.
const SETTLE: Duration = Duration::from_secs(90);

/// One `bindery run --leader-elect` and its metrics endpoint.
struct Replica {
    run: BinderyRun,
    base: String,
}

impl Replica {
    fn start(w: &World, name: &str, lease: &[&str]) -> Replica {
        let (listen, base) = free_listen_address();
        let mut args = vec!["--leader-elect", "--listen", &listen, "--coalesce-ms", "50"];
        args.extend_from_slice(lease);
        Replica {
            run: w.bindery_with(&format!("{name}.log"), &args),
            base,
        }
    }

    /// One series of its `/metrics` (0 when absent); `None` when it does not answer.
    fn metric(&self, wanted: &str) -> Option<f64> {
        let text = metrics::scrape(&self.base).ok()?;
        Some(metrics::value(&text, wanted))
    }

    /// Its writes that reached the server: Bindings applied or deleted, statuses applied.
    fn writes(&self) -> f64 {
        [
            r#"bindery_sink_writes_total{object="binding",result="applied"}"#,
            r#"bindery_sink_writes_total{object="binding",result="deleted"}"#,
            r#"bindery_sink_writes_total{object="status",result="applied"}"#,
        ]
        .iter()
        .map(|s| self.metric(s).unwrap_or(0.0))
        .sum()
    }

    /// The changes of Binding `web` in its `/history` (what changed and each cause's
    /// object and resourceVersion diff: the line numbers are each process's own), once
    /// there are at least `n`.
    async fn history(&self, n: usize) -> Vec<(String, Vec<(String, String)>)> {
        eventually("the changes in /history", SETTLE, || async {
            let url = format!("{}/history?binding=web&output=json", self.base);
            let (code, body) = http_get(&url).map_err(|e| e.to_string())?;
            let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{code}: {e}"))?;
            let mut changes: Vec<_> = answer["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let causes = c["causes"].as_array().into_iter().flatten();
                    let causes = causes
                        .map(|k| (k["name"].to_string(), k["resourceVersion"].to_string()))
                        .collect();
                    (c["change"].to_string(), causes)
                })
                .collect();
            // In order of the changes (the two may batch them into other epochs).
            changes.sort();
            Ok((changes.len() >= n).then_some(changes))
        })
        .await
        .unwrap_or_else(|e| fail(&self.run, &e.to_string()))
    }

    async fn await_metric(&self, what: &str, series: &str, value: f64) {
        eventually(what, SETTLE, || async {
            match self.metric(series) {
                Some(v) if v == value => Ok(Some(())),
                other => Err(format!("{series} = {other:?}")),
            }
        })
        .await
        .unwrap_or_else(|e| fail(&self.run, &e.to_string()));
    }
}

/// Starts the first replica, waits until it leads and wrote the Binding, then the
/// second, until it is hot (its engine has the Binding) and follows.
async fn two_replicas(w: &World, cms: &[DynamicObject], lease: &[&str]) -> (Replica, Replica) {
    let a = Replica::start(w, "bindery-a", lease);
    a.await_metric("a leads", "bindery_leader", 1.0).await;
    let exact = web::spec(cms, &EDGE);
    w.expect_spec(&a.run, "web", &exact, "a wrote the Binding", SETTLE)
        .await;
    let b = Replica::start(w, "bindery-b", lease);
    b.await_metric("b is hot", "bindery_bindings", 1.0).await;
    assert_eq!(b.metric("bindery_leader"), Some(0.0), "b follows");
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_from_a_killed_leader() {
    let w = World::start().await;
    let mut cms = setup(&w, 10).await;
    let history = BindingHistory::start(&w.wds).await.unwrap();
    let lease = [
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=500ms",
    ];
    let (mut a, b) = two_replicas(&w, &cms, &lease).await;

    // Changes while both run: the leader writes them, the follower nothing.
    for (i, cm) in cms.iter_mut().enumerate().take(5) {
        *cm = touch(&w, i, 1).await;
    }
    let exact = web::spec(&cms, &EDGE);
    w.expect_spec(&a.run, "web", &exact, "a wrote the changes", SETTLE)
        .await;
    // The follower's watches follow too (its epochs may batch them differently).
    let modified =
        r#"bindery_watch_events_total{space="wds",resource="configmaps",type="MODIFIED"}"#;
    eventually("b sees the changes", SETTLE, || async {
        Ok((b.metric(modified) >= Some(5.0)).then_some(()))
    })
    .await
    .unwrap_or_else(|e| fail(&b.run, &e.to_string()));
    assert!(a.writes() >= 2.0, "a wrote: {}", a.writes());
    assert_eq!(b.writes(), 0.0, "the follower wrote something");
    assert_eq!(b.metric("bindery_leader_transitions_total"), Some(0.0));
    // The follower's history journal holds what the leader's does.
    let (on_a, on_b) = (a.history(5).await, b.history(5).await);
    assert_eq!(on_a, on_b, "the journals differ");

    // Kill the leader, change the workload: the follower takes over once the Lease expires.
    a.run.kill().unwrap();
    let killed = Instant::now();
    for (i, cm) in cms.iter_mut().enumerate() {
        *cm = touch(&w, i, 2).await;
    }
    b.await_metric("b leads", "bindery_leader", 1.0).await;
    w.step(&format!(
        "b leads {:.1?} after the kill (lease 4 s)",
        killed.elapsed()
    ));
    let exact = web::spec(&cms, &EDGE);
    let what = "b wrote the changes: Binding exact";
    w.expect_spec(&b.run, "web", &exact, what, SETTLE).await;
    w.step(&format!("{:.1?} after the kill", killed.elapsed()));
    assert!(b.writes() >= 1.0);
    assert_eq!(b.metric("bindery_leader_transitions_total"), Some(1.0));
    assert!(
        b.run.log_text().contains("the Lease expired"),
        "b took over an expired Lease"
    );
    assert_history(&history, &EDGE, cms.len(), Writers::NoFight);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_releases_the_lease_and_the_follower_takes_over_at_once() {
    let w = World::start().await;
    let mut cms = setup(&w, 10).await;
    let history = BindingHistory::start(&w.wds).await.unwrap();
    // A long lease: the follower could take it over by expiry only after 30 s.
    let lease = [
        "--leader-elect-lease-duration=30s",
        "--leader-elect-renew-deadline=20s",
        "--leader-elect-retry-period=500ms",
    ];
    let (mut a, b) = two_replicas(&w, &cms, &lease).await;
    assert_eq!(b.writes(), 0.0, "the follower wrote something");

    let stopping = Instant::now();
    assert!(a.run.stop().unwrap(), "a exits cleanly on SIGTERM");
    assert!(a.run.log_text().contains("released the Lease"));
    for (i, cm) in cms.iter_mut().enumerate() {
        *cm = touch(&w, i, 2).await;
    }
    b.await_metric("b leads", "bindery_leader", 1.0).await;
    w.step(&format!(
        "b leads {:.1?} after SIGTERM to a (lease 30 s)",
        stopping.elapsed()
    ));
    let exact = web::spec(&cms, &EDGE);
    let what = "b wrote the changes: Binding exact";
    w.expect_spec(&b.run, "web", &exact, what, SETTLE).await;
    // It took a free Lease, not an expired one.
    assert!(
        !b.run.log_text().contains("the Lease expired"),
        "b waited for the Lease to expire"
    );
    assert!(b.writes() >= 1.0);
    assert_history(&history, &EDGE, cms.len(), Writers::NoFight);
}
