//! Timely's cluster mode through the binary, processes on loopback: `bindery replay`
//! gives byte-identical Bindings and deltas on 2 processes (1 and 2 workers each) and on
//! 3 processes as on one worker, for the acceptance logs and a generated log with churn;
//! the cluster options are checked with clear errors; when a process is lost, the
//! others exit with an error instead of hanging.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use bindery_tests::{bindery_command, free_port, stderr, workspace_root};

use crate::replayed::{
    Replayed, assert_churn_changes_bindings, check_acceptance_logs, generated_log,
};

/// A hosts file of `processes` loopback addresses on free ports.
fn hosts_file(dir: &Path, processes: usize) -> PathBuf {
    let path = dir.join("hosts");
    let lines: Vec<String> = (0..processes)
        .map(|i| format!("127.0.0.1:{}  # process {i}", free_port()))
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// The cluster flags of process `index`.
fn cluster_flags(hosts: &Path, processes: usize, index: usize, workers: usize) -> Vec<String> {
    [
        "--processes",
        &processes.to_string(),
        "--process-index",
        &index.to_string(),
        "--hosts",
        hosts.to_str().unwrap(),
        "--workers",
        &workers.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// A started process whose stdout and stderr go to files (a pipe nobody reads while
/// waiting could fill and block it).
struct Started {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// Starts `command` with its output to files `NAME.stdout` and `NAME.stderr` in `dir`.
fn start(mut command: Command, dir: &Path, name: &str) -> Started {
    let stdout = dir.join(format!("{name}.stdout"));
    let stderr = dir.join(format!("{name}.stderr"));
    let child = command
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Started {
        child,
        stdout,
        stderr,
    }
}

/// Waits for `started` up to a minute; its output.
fn wait(started: Started, what: &str) -> Output {
    let Started {
        mut child,
        stdout,
        stderr,
    } = started;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{what} still ran after 60 s: {}",
                std::fs::read_to_string(&stderr).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&stdout).unwrap(),
        stderr: std::fs::read(&stderr).unwrap(),
    }
}

/// Replays `log` with `processes` processes of `workers` workers each, every process
/// given the same command but its index; checks each says what it did.
fn replay(log: &Path, processes: usize, workers: usize, extra: &[&str]) -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path(), processes);
    let dump = dir.path().join("bindings.json");
    let start = |index: usize| {
        let mut command = bindery_command();
        command
            .args(["replay", log.to_str().unwrap(), "--emit-deltas"])
            .args(["--dump-bindings", dump.to_str().unwrap()])
            .args(cluster_flags(&hosts, processes, index, workers))
            .args(extra);
        start(command, dir.path(), &format!("process-{index}"))
    };
    // The others first: process 0 writes the output, and they wait for it.
    let peers: Vec<Started> = (1..processes).map(start).collect();
    let zero = wait(start(0), "process 0");
    let stderr = String::from_utf8_lossy(&zero.stderr);
    assert!(
        zero.status.success(),
        "{}: process 0: {stderr}",
        log.display()
    );
    let on = format!(" workers={} processes={processes} ", processes * workers);
    assert!(
        stderr.contains(&on),
        "{}: the summary says {on:?}: {stderr}",
        log.display()
    );
    for (i, peer) in peers.into_iter().enumerate() {
        let out = wait(peer, "a peer");
        let peer_err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "process {}: {peer_err}", i + 1);
        assert!(
            peer_err.contains("process 0 closed the dataflow"),
            "process {}: {peer_err}",
            i + 1
        );
        // Only process 0 writes output.
        assert!(out.stdout.is_empty(), "process {} wrote on stdout", i + 1);
    }
    Replayed {
        bindings: std::fs::read(&dump).unwrap(),
        deltas: zero.stdout,
    }
}

/// `log` on one worker in one process.
fn replay_alone(log: &Path, extra: &[&str]) -> Replayed {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("bindings.json");
    let out = bindery_command()
        .args(["replay", log.to_str().unwrap(), "--emit-deltas"])
        .args(["--dump-bindings", dump.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    Replayed {
        bindings: std::fs::read(&dump).unwrap(),
        deltas: out.stdout,
    }
}

/// `log` replays to the same bytes on one worker, on 2 processes of 1 and of 2 workers,
/// and on 3 processes of 1 worker. Returns one worker's.
fn same_in_every_cluster(log: &Path, extra: &[&str]) -> Replayed {
    let one = replay_alone(log, extra);
    for (processes, workers) in [(2, 1), (2, 2), (3, 1)] {
        let many = replay(log, processes, workers, extra);
        let what = format!(
            "{} {extra:?} on {processes} processes × {workers}",
            log.display()
        );
        assert!(
            many.bindings == one.bindings,
            "{what}: --dump-bindings differs from 1 worker\n--- 1 ---\n{}\n--- cluster ---\n{}",
            String::from_utf8_lossy(&one.bindings),
            String::from_utf8_lossy(&many.bindings)
        );
        assert!(
            many.deltas == one.deltas,
            "{what}: --emit-deltas differs from 1 worker"
        );
    }
    one
}

#[test]
fn acceptance_logs_replay_the_same_on_several_processes() {
    check_acceptance_logs(|log| same_in_every_cluster(log, &[]));
}

/// A generated log (every churn kind and both herds), one event per epoch and with many
/// events per epoch.
#[test]
fn a_generated_log_with_churn_replays_the_same_on_several_processes() {
    let dir = tempfile::tempdir().unwrap();
    let log = generated_log(dir.path(), 11);
    let one = same_in_every_cluster(&log, &[]);
    assert_churn_changes_bindings(&one);
    same_in_every_cluster(&log, &["--window-ms", "25"]);
}

/// Bad cluster options are refused before anything runs, naming what is wrong.
#[test]
fn cluster_options_are_checked_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let log = workspace_root().join("examples/nginx.jsonl");
    let log = log.to_str().unwrap();
    let two = dir.path().join("two");
    std::fs::write(&two, "127.0.0.1:1\n127.0.0.1:2\n").unwrap();
    let bad_line = dir.path().join("bad");
    std::fs::write(&bad_line, "127.0.0.1:1\n\nnot-an-address\n").unwrap();
    let two = two.to_str().unwrap();
    let bad_line = bad_line.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--processes", "2"], "--processes 2 needs --hosts"),
        (
            &["--process-index", "1"],
            "--process-index 1 needs --processes and --hosts",
        ),
        (
            &["--processes", "3", "--hosts", two],
            "lists 2 process address(es), but --processes is 3",
        ),
        (
            &["--processes", "2", "--process-index", "2", "--hosts", two],
            "--process-index 2 is not one of the 2 processes (0 to 1)",
        ),
        (
            &["--processes", "2", "--hosts", bad_line],
            "line 3: \"not-an-address\" is not HOST:PORT",
        ),
        (
            &["--processes", "0"],
            "is not a number of processes (1 to 1024)",
        ),
        (
            &["--processes", "2", "--hosts", "/nonexistent/hosts"],
            "reading the hosts file /nonexistent/hosts",
        ),
    ];
    for (flags, want) in cases {
        for command in [vec!["replay", log], vec!["run"]] {
            let out = bindery_command()
                .args(&command)
                .args(*flags)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} {flags:?}: {stderr}");
            assert!(stderr.contains(want), "{command:?} {flags:?}: {stderr}");
        }
    }
}

/// Two processes that disagree on their workers stop at the handshake, each saying so.
#[test]
fn processes_that_disagree_on_workers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path(), 2);
    let log = workspace_root().join("examples/nginx.jsonl");
    let start = |index: usize, workers: usize| {
        let mut command = bindery_command();
        command
            .args(["replay", log.to_str().unwrap()])
            .args(cluster_flags(&hosts, 2, index, workers));
        start(command, dir.path(), &format!("process-{index}"))
    };
    let one = start(1, 2);
    let zero = wait(start(0, 1), "process 0");
    let one = wait(one, "process 1");
    for (out, want) in [
        (&zero, "process 0 and process 1"),
        (&one, "process 1 and process 0"),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("worker(s)"),
            "{stderr}"
        );
    }
}

/// A paced replay on two processes; `victim` is killed once both run: the other exits
/// with an error (timely's cluster cannot go on without it) instead of hanging.
fn a_lost_process_ends_the_other(victim: usize) {
    let dir = tempfile::tempdir().unwrap();
    let hosts = hosts_file(dir.path(), 2);
    // A minute of churn, paced: still running when the victim goes.
    let log = workspace_root().join("examples/churn.jsonl");
    let start = |index: usize| {
        let mut command = bindery_command();
        command
            .args(["replay", log.to_str().unwrap(), "--speed", "1"])
            .args(cluster_flags(&hosts, 2, index, 1));
        start(command, dir.path(), &format!("process-{index}"))
    };
    let one = start(1);
    let mut children = [start(0), one];
    std::thread::sleep(Duration::from_secs(3));
    for started in &mut children {
        assert!(
            started.child.try_wait().unwrap().is_none(),
            "both still run after 3 s"
        );
    }
    let [zero, one] = children;
    let (mut victim_run, survivor) = if victim == 0 {
        (zero, one)
    } else {
        (one, zero)
    };
    victim_run.child.kill().unwrap();
    victim_run.child.wait().unwrap();
    let out = wait(survivor, "the surviving process");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("lost the connection to another process of the timely cluster"),
        "{stderr}"
    );
}

#[test]
fn a_lost_peer_ends_process_zero() {
    a_lost_process_ends_the_other(1);
}

#[test]
fn a_lost_process_zero_ends_its_peer() {
    a_lost_process_ends_the_other(0);
}
