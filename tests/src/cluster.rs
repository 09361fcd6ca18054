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
    bindery::kube_client(kubeconfig).await.expect("a client")
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

/// The seed's three WECs: cluster1 and cluster2 in `location-group: edge`, cluster3 in
/// `core`.
pub const THREE_WECS: &[(&str, &str)] = &[
    ("cluster1", "edge"),
    ("cluster2", "edge"),
    ("cluster3", "core"),
];

/// Applies one ManagedCluster per `(name, location-group)` to the ITS `its`.
pub async fn apply_wecs(its: &kube::Client, wecs: &[(&str, &str)]) -> Result<()> {
    for &(name, group) in wecs {
        apply(
            its,
            &res::managed_clusters(),
            objects::managed_cluster(name, group),
        )
        .await?;
    }
    Ok(())
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

/// A control plane with Bindery's CRDs installed: BindingPolicy and Binding in the WDS,
/// OCM's ManagedCluster in the ITS; and a client of each.
pub async fn control_plane() -> (crate::envtest::Envtest, kube::Client, kube::Client) {
    control_plane_with(crate::envtest::EnvtestOptions::default()).await
}

/// [`control_plane`], started with `options`.
pub async fn control_plane_with(
    options: crate::envtest::EnvtestOptions,
) -> (crate::envtest::Envtest, kube::Client, kube::Client) {
    let env = crate::envtest::Envtest::start_with(options).expect("control plane");
    let wds = client(&env.wds.kubeconfig).await;
    let its = client(&env.its.kubeconfig).await;
    let crds = bindery_api::crds();
    install_crds(&wds, &crds[..2])
        .await
        .expect("the WDS CRDs install");
    install_crds(&its, &crds[2..])
        .await
        .expect("the ITS CRDs install");
    (env, wds, its)
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
///
/// The sink spells out empty `workload` lists as `[]` (so that a server-side apply removes
/// the last entry); they are dropped here so specs compare with the engine's rendering,
/// which omits them.
pub async fn binding(client: &kube::Client, name: &str) -> Result<Option<(Value, Value)>> {
    let Some(b) = get(client, &res::bindings(), None, name).await? else {
        return Ok(None);
    };
    let json = serde_json::to_value(&b)?;
    Ok(Some((
        json["metadata"]["ownerReferences"].clone(),
        rendered_form(&json["spec"]),
    )))
}

/// A stored Binding spec in the engine's rendered form: empty lists (`destinations`, and
/// those of `workload`), which the sink spells out as `[]`, dropped.
pub fn rendered_form(spec: &Value) -> Value {
    let mut spec = spec.clone();
    let non_empty = |_: &String, list: &mut Value| list.as_array().is_none_or(|l| !l.is_empty());
    if let Some(workload) = spec.get_mut("workload").and_then(Value::as_object_mut) {
        workload.retain(non_empty);
    }
    if let Some(spec) = spec.as_object_mut() {
        spec.retain(|k, v| k != "destinations" || non_empty(k, v));
    }
    spec
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
            // Tests run side by side: any free port, unless the test picks one.
            .args(
                (!extra.contains(&"--listen"))
                    .then_some(["--listen", "127.0.0.1:0"])
                    .into_iter()
                    .flatten(),
            )
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

    /// Starts `cmd` (a `bindery run` the caller set up: arguments, environment) with its
    /// stdout and stderr to `log`.
    pub fn start_command(mut cmd: Command, log: &Path) -> Result<BinderyRun> {
        let log_file = std::fs::File::create(log)?;
        let child = cmd
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
        let what = format!("bindery (log: {})", self.log.display());
        Ok(crate::terminate(&mut self.child, &what, Duration::from_secs(30))?.success())
    }

    /// Kills it with SIGKILL (no drain, no clean-up) and waits for it.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

// ---------------------------------------------------------------------------------------
// More helpers for the live scenarios (`tests/tests/live_scenarios/`)
// ---------------------------------------------------------------------------------------

/// The last `lines` lines of the text file at `path` (empty if it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl BinderyRun {
    /// The last `lines` lines of the log so far.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

/// Writes a kubeconfig (same form as the envtest admin kubeconfigs) for the API server at
/// `url`, authenticating with the bearer `token`.
pub fn write_token_kubeconfig(path: &Path, name: &str, url: &str, token: &str) -> Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\n\
         users:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: user\n\
         current-context: {name}\n"
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Waits up to `timeout` until Binding `name` has exactly `spec`; returns the whole
/// Binding as JSON.
pub async fn await_binding_spec_within(
    client: &kube::Client,
    name: &str,
    spec: &Value,
    timeout: Duration,
) -> Result<Value> {
    eventually(
        &format!("Binding {name} has the expected spec"),
        timeout,
        || async {
            match get(client, &res::bindings(), None, name).await {
                Ok(Some(b)) => {
                    let json = serde_json::to_value(&b).map_err(|e| e.to_string())?;
                    let got = rendered_form(&json["spec"]);
                    if &got == spec {
                        Ok(Some(json))
                    } else {
                        Err(format!("spec is {got}\nwant    {spec}"))
                    }
                }
                Ok(None) => Err("no Binding".into()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

/// Waits up to `timeout` until Binding `name` does not exist.
pub async fn await_binding_absent(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<()> {
    eventually(&format!("Binding {name} is gone"), timeout, || async {
        match get(client, &res::bindings(), None, name).await {
            Ok(None) => Ok(Some(())),
            Ok(Some(b)) => Err(format!(
                "it exists: {}",
                serde_json::to_value(&b).unwrap_or_default()["spec"]
            )),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// One version of a Binding as a watch served it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedBinding {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event: &'static str,
    /// The Binding's name.
    pub name: String,
    /// Its `metadata.resourceVersion`.
    pub resource_version: String,
    /// Its `metadata.ownerReferences`.
    pub owners: Value,
    /// Its `spec`.
    pub spec: Value,
}

/// Records every version of every Binding the WDS serves, from a watch started at
/// resourceVersion 0 (the current state, then every change), in a background task.
/// Restarts the watch where it left off when it ends (from 0 again after a `410 Gone`).
pub struct BindingHistory {
    seen: std::sync::Arc<std::sync::Mutex<Vec<ObservedBinding>>>,
    watching: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl BindingHistory {
    /// Starts recording and waits until the first watch is established.
    pub async fn start(client: &kube::Client) -> Result<BindingHistory> {
        use futures::StreamExt;
        use kube::api::{WatchEvent, WatchParams};
        use std::sync::atomic::Ordering;

        let api: Api<DynamicObject> = Api::all_with(client.clone(), &res::bindings());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, watching2) = (seen.clone(), watching.clone());
        let task = tokio::spawn(async move {
            let mut version = "0".to_string();
            loop {
                let params = WatchParams::default().timeout(120);
                let stream = match api.watch(&params, &version).await {
                    Ok(stream) => stream,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                watching2.store(true, Ordering::SeqCst);
                let mut stream = stream.boxed();
                while let Some(item) = stream.next().await {
                    let (event, obj) = match item {
                        Ok(WatchEvent::Added(o)) => ("ADDED", o),
                        Ok(WatchEvent::Modified(o)) => ("MODIFIED", o),
                        Ok(WatchEvent::Deleted(o)) => ("DELETED", o),
                        Ok(WatchEvent::Bookmark(b)) => {
                            version = b.metadata.resource_version;
                            continue;
                        }
                        Ok(WatchEvent::Error(e)) => {
                            if e.code == 410 {
                                version = "0".into();
                            }
                            break;
                        }
                        Err(_) => break,
                    };
                    version = rv(&obj);
                    let json = serde_json::to_value(&obj).unwrap_or_default();
                    seen2.lock().unwrap().push(ObservedBinding {
                        event,
                        name: obj.metadata.name.clone().unwrap_or_default(),
                        resource_version: rv(&obj),
                        owners: json["metadata"]["ownerReferences"].clone(),
                        spec: rendered_form(&json["spec"]),
                    });
                }
            }
        });
        let start = Instant::now();
        while !watching.load(Ordering::SeqCst) {
            if start.elapsed() > Duration::from_secs(30) {
                bail!("the Binding watch did not start in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(BindingHistory {
            seen,
            watching,
            task,
        })
    }

    /// Everything seen so far, in order.
    pub fn all(&self) -> Vec<ObservedBinding> {
        self.seen.lock().unwrap().clone()
    }

    /// How many versions have been seen so far.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// True when nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The versions of Binding `name` seen so far, in order.
    pub fn of(&self, name: &str) -> Vec<ObservedBinding> {
        self.all().into_iter().filter(|o| o.name == name).collect()
    }

    /// Whether a watch is (or was) established.
    pub fn watching(&self) -> bool {
        self.watching.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for BindingHistory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Creates every object of a multi-document YAML stream as it is written, by POSTing
/// each document as `application/yaml` to the collection discovery names for its
/// `apiVersion` and `kind` (namespaced objects need `metadata.namespace`). Returns the
/// created objects.
/// One document of a YAML stream (as `helm template` or a manifest writes them), with the
/// head fields read off its lines: top-level `apiVersion` and `kind`, and `name` and
/// `namespace` of its `metadata` block.
#[derive(Clone, Debug, Default)]
pub struct YamlDocument {
    /// `apiVersion`, if the document has one.
    pub api_version: Option<String>,
    /// `kind`, if the document has one.
    pub kind: Option<String>,
    /// `metadata.name` (empty if none).
    pub name: String,
    /// `metadata.namespace`, if any.
    pub namespace: Option<String>,
    /// The document's text, without its `---` line.
    pub text: String,
}

/// The documents of `yaml`, in order (those holding only comments included).
pub fn yaml_documents(yaml: &str) -> Vec<YamlDocument> {
    yaml.split("\n---")
        .map(|doc| {
            let doc = doc.trim_start_matches('-').trim();
            let top = |key: &str| {
                doc.lines()
                    .find_map(|l| l.strip_prefix(&format!("{key}: ")))
                    .map(|v| v.trim().to_string())
            };
            // An indented `key:` line of the metadata block.
            let meta = |key: &str| {
                doc.lines()
                    .skip_while(|l| !l.starts_with("metadata:"))
                    .skip(1)
                    .take_while(|l| l.starts_with(' '))
                    .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
                    .map(|v| v.trim().to_string())
            };
            YamlDocument {
                api_version: top("apiVersion"),
                kind: top("kind"),
                name: meta("name").unwrap_or_default(),
                namespace: meta("namespace"),
                text: doc.to_string(),
            }
        })
        .collect()
}

pub async fn create_yaml(client: &kube::Client, yaml: &str) -> Result<Vec<Value>> {
    create_yaml_with(client, yaml, &PostParams::default()).await
}

/// [`create_yaml`] with `params` (e.g. `dry_run: true` for a server-side dry-run: every
/// object is validated and admitted, nothing is stored).
pub async fn create_yaml_with(
    client: &kube::Client,
    yaml: &str,
    params: &PostParams,
) -> Result<Vec<Value>> {
    let mut created = Vec::new();
    for document in yaml_documents(yaml) {
        let (Some(api_version), Some(kind)) = (document.api_version, document.kind) else {
            continue; // comments only
        };
        let (namespace, doc) = (document.namespace, document.text.as_str());
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("discovering {api_version} {kind}"))?;
        let api: Api<DynamicObject> = match (&caps.scope, &namespace) {
            (kube::discovery::Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(client.clone(), ns, &ar)
            }
            (kube::discovery::Scope::Namespaced, None) => {
                bail!("{kind} is namespaced but its document has no metadata.namespace")
            }
            (kube::discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
        };
        let mut request = kube::core::Request::new(api.resource_url())
            .create(params, doc.as_bytes().to_vec())
            .context("building the request")?;
        request.headers_mut().insert(
            "content-type",
            "application/yaml".parse().expect("a header"),
        );
        let text = client
            .request_text(request)
            .await
            .with_context(|| format!("creating {kind} from:\n{doc}"))?;
        created.push(serde_json::from_str(&text).unwrap_or(Value::String(text)));
    }
    Ok(created)
}

/// A token for ServiceAccount `namespace/name` from the TokenRequest API (default
/// audiences, one hour).
pub async fn service_account_token(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<String> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("requesting a token for {namespace}/{name}"))?;
    answer
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .context("the TokenRequest answer has no token")
}

/// A simple CRD: one served and stored version `v1` whose schema keeps any fields
/// (`x-kubernetes-preserve-unknown-fields`).
pub fn simple_crd(
    group: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
) -> CustomResourceDefinition {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                      "singular": kind.to_lowercase()},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    }))
    .expect("a valid CRD")
}

/// Deletes CRD `name` and waits up to `timeout` until it is gone (its objects are
/// deleted first by the API server's CRD finalizer).
pub async fn delete_crd(client: &kube::Client, name: &str, timeout: Duration) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("deleting CRD {name}")),
    }
    let start = Instant::now();
    while api.get_opt(name).await?.is_some() {
        if start.elapsed() > timeout {
            bail!("CRD {name} still there {timeout:?} after its deletion");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// JSON of the objects the end-to-end tests create.
pub mod objects {
    use serde_json::{Value, json};

    /// An OCM ManagedCluster (a WEC) labelled `location-group: GROUP` and `name: NAME`.
    pub fn managed_cluster(name: &str, group: &str) -> Value {
        json!({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster",
               "metadata": {"name": name, "labels": {"location-group": group, "name": name}},
               "spec": {"hubAcceptsClient": true}})
    }

    /// A Namespace with `labels`.
    pub fn namespace(name: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    }

    /// A valid apps/v1 Deployment with `labels`.
    pub fn deployment(ns: &str, name: &str, labels: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                                     "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
    }

    /// A ConfigMap with `labels`.
    pub fn configmap(ns: &str, name: &str, labels: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": ns, "labels": labels},
               "data": {"k": "v"}})
    }
}
