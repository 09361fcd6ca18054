//! How `bindery run` stops: at once when the WDS is unreachable, within
//! `--shutdown-timeout` when writes are still queued, and at once on a second signal.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bindery_tests::bindery_bin;
use bindery_tests::control_plane::{self, apply, eventually, res};
use serde_json::json;

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to `timeout` for `child` to exit; its exit code (or `None` if still running).
fn exited_within(child: &mut Child, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn run(args: &[&str], log: &std::path::Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bindery_bin())
        .arg("run")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env("BINDERY_LOG", "info,bindery=debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_stops_a_run_whose_wds_is_unreachable() {
    let dir = tempfile_dir("unreachable");
    let kubeconfig = dir.join("nowhere.kubeconfig");
    // Port 1 on loopback: nothing listens there.
    control_plane::write_token_kubeconfig(&kubeconfig, "nowhere", "https://127.0.0.1:1", "t")
        .unwrap();
    let kc = kubeconfig.to_str().unwrap();
    let log = dir.join("bindery.log");
    let mut child = run(&["--wds-kubeconfig", kc, "--its-kubeconfig", kc], &log);
    std::thread::sleep(Duration::from_secs(2));
    signal(&child, "TERM");
    let code = exited_within(&mut child, Duration::from_secs(10));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(code, Some(0), "bindery did not stop on SIGTERM:\n{text}");
}

fn tempfile_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bindery-shutdown-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A run with many Bindings to write at 1 request/s: its drain would take a minute.
async fn slow_writer(
    env: &bindery_tests::envtest::Envtest,
    wds: &kube::Client,
    its: &kube::Client,
    extra: &[&str],
    log: &str,
) -> Child {
    control_plane::apply_wecs(its, control_plane::THREE_WECS)
        .await
        .unwrap();
    let wds_kc = env.wds.kubeconfig.to_str().unwrap().to_string();
    let its_kc = env.its.kubeconfig.to_str().unwrap().to_string();
    let mut args = vec![
        "--wds-kubeconfig",
        &wds_kc,
        "--its-kubeconfig",
        &its_kc,
        "--qps",
        "1",
        "--burst",
        "1",
        "--concurrency",
        "1",
    ];
    args.extend_from_slice(extra);
    let child = run(&args, &env.dir().join(log));
    // Policies created after the start: the writes queue behind the rate limit.
    let log_path = env.dir().join(log);
    eventually("bindery publishes", Duration::from_secs(60), || async {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        Ok(text.contains("all watches synced").then_some(()))
    })
    .await
    .unwrap();
    for i in 0..20 {
        apply(
            wds,
            &res::binding_policies(),
            json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
                   "metadata": {"name": format!("p{i:02}")},
                   "spec": {"clusterSelectors": [{"matchLabels": {"location-group": "edge"}}]}}),
        )
        .await
        .unwrap();
    }
    // Let the engine hand them over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_is_bounded_and_a_second_signal_exits_at_once() {
    let (env, wds, its) = control_plane::start().await;

    let mut child = slow_writer(
        &env,
        &wds,
        &its,
        &["--shutdown-timeout", "3"],
        "bounded.log",
    )
    .await;
    let asked = Instant::now();
    signal(&child, "TERM");
    let code = exited_within(&mut child, Duration::from_secs(20));
    let text = std::fs::read_to_string(env.dir().join("bounded.log")).unwrap_or_default();
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("giving up on"), "{text}");
    eprintln!("bounded drain: exited {:?} after SIGTERM", asked.elapsed());

    let mut child = slow_writer(
        &env,
        &wds,
        &its,
        &["--shutdown-timeout", "120"],
        "twice.log",
    )
    .await;
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    signal(&child, "INT");
    let code = exited_within(&mut child, Duration::from_secs(10));
    let text = std::fs::read_to_string(env.dir().join("twice.log")).unwrap_or_default();
    assert_eq!(code, Some(130), "{text}");
    assert!(text.contains("second signal"), "{text}");
    eprintln!("second signal: exited {:?} after it", asked.elapsed());
}
