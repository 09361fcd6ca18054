//! Shared helpers for Bindery's integration tests: the built `bindery` binary and the
//! test data (here); the test control plane ([`envtest`], [`control_plane`]), `bindery
//! run` processes ([`bindery_run`]), builders of objects and expected Bindings
//! ([`objects`]), the live-test harness ([`world`]), watch logs ([`watch_log`]), the
//! Helm chart ([`chart`]) and `/metrics` ([`metrics`]).

pub mod bindery_run;
pub mod chart;
pub mod control_plane;
pub mod envtest;
pub mod metrics;
pub mod objects;
pub mod watch_log;
pub mod web;
pub mod world;

pub use envtest::free_port;

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Path of the `bindery` binary, built once per test process (same profile as the tests).
///
/// The build runs without the variables cargo sets for the crate it runs (the test
/// binary's `CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...): build scripts track some of
/// them (ring's does), so with them set this build and the next `cargo test` from a shell
/// would each find ring changed and build it and everything above it (kube, Bindery)
/// again.
///
/// With `BINDERY_BIN` set, that binary instead, unbuilt (e.g. a release build for a
/// benchmark's CPU figures: `cargo build --release -p bindery --bin bindery`).
pub fn bindery_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("BINDERY_BIN") {
            return PathBuf::from(path);
        }
        let mut build = escargot::CargoBuild::new()
            .manifest_path(workspace_root().join("Cargo.toml"))
            .package("bindery")
            .bin("bindery");
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(set_by_cargo_for_its_crate) {
                build = build.env_remove(key);
            }
        }
        let run = build.run().expect("building the bindery binary");
        run.path().to_path_buf()
    })
    .clone()
}

/// Whether `key` is a variable cargo sets for the crate it builds or runs (not one of
/// cargo's own settings, such as `CARGO_HOME` or `CARGO_TARGET_DIR`).
fn set_by_cargo_for_its_crate(key: &str) -> bool {
    ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CFG_"]
        .iter()
        .any(|prefix| key.starts_with(prefix))
        || [
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ]
        .contains(&key)
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The acceptance sample logs (`tests/data/acceptance/*.jsonl`), sorted, with their
/// expected Bindings files.
pub fn acceptance_cases() -> Vec<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/acceptance");
    let mut cases: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(&dir)
        .expect("tests/data/acceptance exists")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jsonl")?
                .to_string();
            Some((path.clone(), dir.join(format!("{name}.bindings.json"))))
        })
        .collect();
    cases.sort();
    cases
}

/// The built `bindery` as a command: log filter `info`, and none of the `BINDERY_*`
/// variables of the test's environment (a `BINDERY_WORKERS` set in a developer's shell
/// would change what the tests check).
pub fn bindery_command() -> Command {
    let mut cmd = Command::new(bindery_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("BINDERY_")) {
            cmd.env_remove(key);
        }
    }
    cmd.env("BINDERY_LOG", "info");
    cmd
}

/// Runs [`bindery_command`] with `args` to its end.
pub fn run_bindery(args: &[&str]) -> Output {
    bindery_command()
        .args(args)
        .output()
        .expect("running bindery")
}

/// What `out` wrote on stderr (invalid UTF-8 replaced).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `bindery replay LOG --dump-statuses -`'s document for `log`; fails unless it
/// succeeds.
pub fn replayed_statuses(log: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new(bindery_bin())
        .arg("replay")
        .arg(log)
        .args(["--dump-statuses", "-"])
        .output()
        .expect("running bindery replay");
    assert_success(&out, "replay of the recording");
    serde_json::from_slice(&out.stdout).expect("replay --dump-statuses writes JSON")
}

/// Fails naming `what`, with its stderr, unless `out` is of a process that exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: bindery failed ({}):\n{}",
        out.status,
        stderr(out)
    );
}

/// What `out` wrote on stdout, which must be UTF-8; fails naming `what`, with its stderr,
/// unless it exited 0.
pub fn stdout_ok(out: &Output, what: &str) -> String {
    assert_success(out, what);
    String::from_utf8(out.stdout.clone()).unwrap_or_else(|e| panic!("{what}: stdout: {e}"))
}

/// A free loopback address for a server to listen on, `127.0.0.1:PORT`, and its base URL,
/// `http://127.0.0.1:PORT`.
pub fn free_listen_address() -> (String, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{listen}");
    (listen, base)
}

/// Sends SIGTERM to `child` and waits for it to exit, at most `timeout`; past that it is
/// killed and this is an error naming `what`.
pub fn terminate(child: &mut Child, what: &str, timeout: Duration) -> Result<ExitStatus> {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    bail!("{what} did not stop within {timeout:?} of SIGTERM")
}

/// `GET url` with curl: the status code and the body.
pub fn http_get(url: &str) -> Result<(u16, String)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}", url])
        .output()
        .context("running curl")?;
    if !out.status.success() {
        bail!(
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8(out.stdout).context("a UTF-8 response")?;
    let (body, code) = text
        .rsplit_once('\n')
        .context("curl printed the status code")?;
    Ok((code.trim().parse()?, body.to_string()))
}
