//! Helpers for end-to-end tests against the envtest API servers: clients, CRDs,
//! applying objects, running `bindery run`, waiting for Bindings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use crate::bindery_bin;

/// A client for `kubeconfig`.
pub async fn client(kubeconfig: &Path) -> kube::Client {
    bindery::live::client(kubeconfig).await.expect("a client")
}

/// Creates `crds` and waits until each is established.
pub async fn install_crds(client: &kube::Client, crds: &[CustomResourceDefinition]) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        api.create(&PostParams::default(), crd)
            .await
            .with_context(|| format!("creating CRD {:?}", crd.metadata.name))?;
    }
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let start = Instant::now();
        loop {
            let got = api.get(&name).await?;
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("CRD {name} not established after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The API resource of `apiVersion`/`kind` with plural `plural`.
pub fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Well-known resources of the tests.
pub mod res {
    use super::*;
    /// ManagedClusters (ITS).
    pub fn managed_clusters() -> ApiResource {
        resource(
            "cluster.open-cluster-management.io/v1",
            "ManagedCluster",
            "managedclusters",
        )
    }
    /// BindingPolicies (WDS).
    pub fn binding_policies() -> ApiResource {
        resource(
            "control.kubestellar.io/v1alpha1",
            "BindingPolicy",
            "bindingpolicies",
        )
    }
    /// Bindings (WDS).
    pub fn bindings() -> ApiResource {
        resource("control.kubestellar.io/v1alpha1", "Binding", "bindings")
    }
    /// Namespaces.
    pub fn namespaces() -> ApiResource {
        resource("v1", "Namespace", "namespaces")
    }
    /// Deployments.
    pub fn deployments() -> ApiResource {
        resource("apps/v1", "Deployment", "deployments")
    }
    /// ConfigMaps.
    pub fn configmaps() -> ApiResource {
        resource("v1", "ConfigMap", "configmaps")
    }
}

fn api(client: &kube::Client, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

/// Server-side applies `object` (field manager `e2e-test`) and returns the stored object.
pub async fn apply(
    client: &kube::Client,
    ar: &ApiResource,
    object: Value,
) -> Result<DynamicObject> {
    let name = object["metadata"]["name"]
        .as_str()
        .context("object has a name")?
        .to_string();
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
    let api = api(client, ar, namespace.as_deref());
    api.patch(
        &name,
        &PatchParams::apply("e2e-test").force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| format!("applying {name}"))
}

/// Deletes an object (ignoring "not found").
pub async fn delete(
    client: &kube::Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<()> {
    match api(client, ar, namespace)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Gets an object, `None` if it does not exist.
pub async fn get(
    client: &kube::Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<DynamicObject>> {
    Ok(api(client, ar, namespace).get_opt(name).await?)
}

/// The `metadata.resourceVersion` of an object.
pub fn rv(object: &DynamicObject) -> String {
    object.metadata.resource_version.clone().unwrap_or_default()
}

/// Polls until `check` returns `Ok(Some(t))`, failing with the last reason after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let start = Instant::now();
    let mut last = String::from("never checked");
    while start.elapsed() < timeout {
        match check().await {
            Ok(Some(t)) => return Ok(t),
            Ok(None) => {}
            Err(reason) => last = reason,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what}: not so after {timeout:?}: {last}")
}

/// The Binding `name` as `(ownerReferences, spec)` JSON, if it exists.
pub async fn binding(client: &kube::Client, name: &str) -> Result<Option<(Value, Value)>> {
    let Some(b) = get(client, &res::bindings(), None, name).await? else {
        return Ok(None);
    };
    let json = serde_json::to_value(&b)?;
    Ok(Some((
        json["metadata"]["ownerReferences"].clone(),
        json["spec"].clone(),
    )))
}

/// Waits until Binding `name` has exactly `spec` (and returns its owner references).
pub async fn await_binding_spec(client: &kube::Client, name: &str, spec: &Value) -> Result<Value> {
    eventually(
        &format!("Binding {name} has the expected spec"),
        Duration::from_secs(30),
        || async {
            match binding(client, name).await {
                Ok(Some((owners, got))) if &got == spec => Ok(Some(owners)),
                Ok(Some((_, got))) => Err(format!("spec is {got}\nwant {spec}")),
                Ok(None) => Err("no Binding".into()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

/// A running `bindery run`, stopped with SIGTERM when dropped.
pub struct BinderyRun {
    child: Child,
    /// Its stderr log.
    pub log: PathBuf,
}

impl BinderyRun {
    /// Starts `bindery run` against the two kubeconfigs, with `extra` arguments.
    pub fn start(wds: &Path, its: &Path, log: &Path, extra: &[&str]) -> Result<BinderyRun> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(bindery_bin())
            .arg("run")
            .arg("--wds-kubeconfig")
            .arg(wds)
            .arg("--its-kubeconfig")
            .arg(its)
            .args(extra)
            .env("BINDERY_LOG", "info,bindery=debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting bindery run")?;
        Ok(BinderyRun {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Sends SIGTERM and waits for the exit; true when it exited successfully.
    pub fn stop(&mut self) -> Result<bool> {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        bail!(
            "bindery did not stop within 30 s of SIGTERM; log: {}",
            self.log.display()
        )
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BinderyRun {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.stop();
        }
    }
}
