//! What the live benches (against envtest's API servers) share: creating many objects,
//! watching a resource, and the controllers compared side by side.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::control_plane;
use bindery_tests::world::World;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::api::{WatchEvent, WatchParams};
use serde_json::Value;

/// Creates `objects` of `ar` (each in its `metadata.namespace`, if any), 32 requests in
/// flight, printing progress as `[BENCH] WHAT: n/total`.
pub async fn create_all(
    bench: &str,
    client: &kube::Client,
    ar: &ApiResource,
    objects: Vec<Value>,
    what: &str,
) -> Result<()> {
    let total = objects.len();
    let started = Instant::now();
    let done = AtomicUsize::new(0);
    futures::stream::iter(objects)
        .map(|object| {
            let client = client.clone();
            let done = &done;
            async move {
                let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
                let api: Api<DynamicObject> = match &ns {
                    Some(ns) => Api::namespaced_with(client, ns, ar),
                    None => Api::all_with(client, ar),
                };
                let object: DynamicObject = serde_json::from_value(object)?;
                api.create(&PostParams::default(), &object).await?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(5000) {
                    eprintln!("[{bench}] {what}: {n}/{total}");
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .with_context(|| format!("creating {what}"))?;
    eprintln!(
        "[{bench}] created {total} {what} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Watches `resource` in all namespaces from now on, for as long as the task runs: calls
/// `on(object, true)` for each object of the first list, then `on(object, false)` for
/// each object of a watch event (added, modified or deleted), re-watching from the last
/// version seen when a watch ends, or after `on(object, true)` for each object of a new
/// list when that version is gone (410).
pub async fn watch<F>(
    client: kube::Client,
    resource: ApiResource,
    mut on: F,
) -> Result<tokio::task::JoinHandle<()>>
where
    F: FnMut(&DynamicObject, bool) + Send + 'static,
{
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let plural = resource.plural.clone();
    let list = api.list(&ListParams::default()).await?;
    for object in &list.items {
        on(object, true);
    }
    let mut version = list.metadata.resource_version.unwrap_or_default();
    Ok(tokio::spawn(async move {
        loop {
            let Ok(stream) = api
                .watch(&WatchParams::default().timeout(290), &version)
                .await
            else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut stream = stream.boxed();
            let mut expired = false;
            while let Some(event) = stream.next().await {
                let object = match event {
                    Ok(WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o)) => {
                        o
                    }
                    Ok(WatchEvent::Bookmark(b)) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    Ok(WatchEvent::Error(e)) => {
                        expired = e.code == 410;
                        eprintln!("[watch {}] {}; watching again", plural, e.message);
                        break;
                    }
                    Err(e) => {
                        eprintln!("[watch {}] {e}; watching again", plural);
                        break;
                    }
                };
                version = control_plane::rv(&object);
                on(&object, false);
            }
            // The version is gone: list again (objects as listed, whether they changed or
            // not).
            if expired && let Ok(list) = api.list(&ListParams::default()).await {
                for object in &list.items {
                    on(object, true);
                }
                version = list.metadata.resource_version.unwrap_or_default();
            }
        }
    }))
}

/// `BENCH-FILE` in the temporary directory (outside the servers', which goes with them),
/// where controller `name` logs; says so.
pub fn log_path(bench: &str, file: &str, name: &str) -> PathBuf {
    let log = std::env::temp_dir().join(format!("{bench}-{file}"));
    eprintln!("[{bench}] {name} logs to {}", log.display());
    log
}

/// A KubeStellar controller binary on `env`'s servers (`--wds-kubeconfig`,
/// `--its-kubeconfig`), `--qps 50 --burst 100` (Bindery's defaults) and `extra`.
pub fn kubestellar_command(
    binary: &std::path::Path,
    env: &bindery_tests::envtest::Envtest,
    extra: &[&str],
) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .arg("--wds-kubeconfig")
        .arg(&env.wds.kubeconfig)
        .arg("--its-kubeconfig")
        .arg(&env.its.kubeconfig)
        .args(["--qps", "50", "--burst", "100"])
        .args(extra);
    command
}

/// A status return controller under test.
#[derive(Clone, Debug)]
pub enum StatusController {
    /// `bindery run --wds-name WDS` with its defaults.
    Bindery,
    /// KubeStellar's `ks-controller-manager` (binding and status controllers) of
    /// `bench/kubestellar/build.sh --main ks-controller-manager`.
    KubeStellar(PathBuf),
}

impl StatusController {
    pub fn name(&self) -> &'static str {
        match self {
            StatusController::Bindery => "Bindery",
            StatusController::KubeStellar(_) => "KubeStellar's ks-controller-manager",
        }
    }

    /// Bindery, and KubeStellar's with `kubestellar` (its binary; a relative path is
    /// taken from the workspace root, as cargo runs a bench in `bench/`).
    pub fn all(kubestellar: Option<&str>) -> Result<Vec<StatusController>> {
        let mut controllers = vec![StatusController::Bindery];
        if let Some(path) = kubestellar {
            let binary = bindery_tests::workspace_root().join(path);
            let binary = std::fs::canonicalize(&binary)
                .with_context(|| format!("--kubestellar {}", binary.display()))?;
            controllers.push(StatusController::KubeStellar(binary));
        }
        Ok(controllers)
    }

    /// Starts it on `w`'s servers for WDS `wds_name`, logging to `BENCH-WHO.log` in the
    /// temporary directory (outside the servers', which goes with them); Bindery serves
    /// `/readyz` at `listen` and logs at `info`. KubeStellar's runs with `--qps 50 --burst
    /// 100`, Bindery's defaults.
    pub fn start(
        &self,
        bench: &str,
        w: &World,
        listen: &str,
        wds_name: &str,
    ) -> Result<BinderyRun> {
        let who = match self {
            StatusController::Bindery => "bindery",
            StatusController::KubeStellar(_) => "kubestellar",
        };
        let log = log_path(bench, &format!("{who}.log"), self.name());
        match self {
            // At `info`, as an operator runs it (the tests' `bindery=debug` logs every
            // write, a cost KubeStellar's default verbosity does not pay).
            StatusController::Bindery => {
                let mut command = bindery_tests::bindery_command();
                command
                    .arg("run")
                    .arg("--wds-kubeconfig")
                    .arg(&w.env.wds.kubeconfig)
                    .arg("--its-kubeconfig")
                    .arg(&w.env.its.kubeconfig)
                    .args(["--listen", listen, "--wds-name", wds_name]);
                BinderyRun::start_command(command, &log)
            }
            StatusController::KubeStellar(binary) => BinderyRun::start_command(
                kubestellar_command(binary, &w.env, &["--wds-name", wds_name]),
                &log,
            ),
        }
    }

    /// Bindery: its `/readyz`. KubeStellar's: 15 s (its start took ~8 s in
    /// `smoke-status.sh`; it has no readiness endpoint unless asked for one).
    pub async fn ready(&self, listen: &str) -> Result<()> {
        match self {
            StatusController::Bindery => {
                let deadline = Instant::now() + Duration::from_secs(300);
                while Instant::now() < deadline {
                    if let Ok((200, _)) =
                        bindery_tests::http_get(&format!("http://{listen}/readyz"))
                    {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                bail!("bindery was not ready in 300 s")
            }
            StatusController::KubeStellar(_) => {
                tokio::time::sleep(Duration::from_secs(15)).await;
                Ok(())
            }
        }
    }
}
