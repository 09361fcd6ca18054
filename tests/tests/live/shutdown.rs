//! How `bindery run` stops: at once when the WDS is unreachable, within
//! `--shutdown-timeout` when writes are still queued, and at once on a second signal.

use std::time::{Duration, Instant};

use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::control_plane::{self, eventually, res};
use bindery_tests::world::World;
use serde_json::json;

/// Waits up to `timeout` for `bindery` to exit: its exit code, or `None` (and it is killed)
/// if it still runs.
fn exited_within(bindery: &mut BinderyRun, timeout: Duration) -> Option<i32> {
    let status = bindery.exit_within(timeout).unwrap();
    if status.is_none() {
        bindery.kill().unwrap();
    }
    status.map(|s| s.code().unwrap_or(-1))
}

#[test]
fn sigterm_stops_a_run_whose_wds_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("nowhere.kubeconfig");
    // Port 1 on loopback: nothing listens there.
    control_plane::write_token_kubeconfig(&kubeconfig, "nowhere", "https://127.0.0.1:1", "t")
        .unwrap();
    let log = dir.path().join("bindery.log");
    let mut bindery = BinderyRun::start(&kubeconfig, &kubeconfig, &log, &[]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    bindery.signal(libc::SIGTERM);
    let code = exited_within(&mut bindery, Duration::from_secs(10));
    let text = bindery.log_text();
    assert_eq!(code, Some(0), "bindery did not stop on SIGTERM:\n{text}");
}

/// A run with many Bindings to write at 1 request/s: its drain would take a minute.
async fn slow_writer(w: &World, extra: &[&str], log: &str) -> BinderyRun {
    let mut args = vec!["--qps", "1", "--burst", "1", "--concurrency", "1"];
    args.extend_from_slice(extra);
    let bindery = w.bindery_with(log, &args);
    // Policies created after the start: the writes queue behind the rate limit.
    eventually("bindery publishes", Duration::from_secs(60), || async {
        Ok(bindery
            .log_text()
            .contains("all watches synced")
            .then_some(()))
    })
    .await
    .unwrap();
    for i in 0..20 {
        w.wds(
            &res::binding_policies(),
            json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
                   "metadata": {"name": format!("p{i:02}")},
                   "spec": {"clusterSelectors": [{"matchLabels": {"location-group": "edge"}}]}}),
        )
        .await;
    }
    // Let the engine hand them over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    bindery
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_is_bounded_and_a_second_signal_exits_at_once() {
    let w = World::start().await;
    w.three_wecs().await;

    let mut bindery = slow_writer(&w, &["--shutdown-timeout", "3"], "bounded.log").await;
    let asked = Instant::now();
    bindery.signal(libc::SIGTERM);
    let code = exited_within(&mut bindery, Duration::from_secs(20));
    let text = bindery.log_text();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("giving up on"), "{text}");
    eprintln!("bounded drain: exited {:?} after SIGTERM", asked.elapsed());

    let mut bindery = slow_writer(&w, &["--shutdown-timeout", "120"], "twice.log").await;
    bindery.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    bindery.signal(libc::SIGINT);
    let code = exited_within(&mut bindery, Duration::from_secs(10));
    let text = bindery.log_text();
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("second signal"), "{text}");
    eprintln!("second signal: exited {:?} after it", asked.elapsed());
}
