//! The test control plane as the end-to-end tests use it: envtest's API servers (see
//! [`crate::envtest`]) with Bindery's CRDs and an admin client of each; applying, getting
//! and deleting objects; CRDs, YAML manifests, ServiceAccount tokens and kubeconfigs;
//! waiting for Bindings and recording every version of them.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::Value;

use crate::envtest::{Envtest, EnvtestOptions};

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
    /// WorkStatuses (ITS), of the status add-on's stand-in CRD.
    pub fn work_statuses() -> ApiResource {
        resource(
            "control.kubestellar.io/v1alpha1",
            "WorkStatus",
            "workstatuses",
        )
    }
    /// KubeStellar's CombinedStatuses (WDS): what status return combines per object and
    /// policy.
    pub fn combined_statuses() -> ApiResource {
        resource(
            "control.kubestellar.io/v1alpha1",
            "CombinedStatus",
            "combinedstatuses",
        )
    }
    /// KubeStellar's StatusCollectors (WDS).
    pub fn status_collectors() -> ApiResource {
        resource(
            "control.kubestellar.io/v1alpha1",
            "StatusCollector",
            "statuscollectors",
        )
    }
    /// Widgets, of the test CRD [`crate::objects::widget_crd`].
    pub fn widgets() -> ApiResource {
        resource("example.com/v1", "Widget", "widgets")
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
        .with_context(|| format!("a {} to apply without a name: {object}", ar.kind))?
        .to_string();
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
    let api = api(client, ar, namespace.as_deref());
    api.patch(
        &name,
        &PatchParams::apply("e2e-test").force(),
        &Patch::Apply(&object),
    )
    .await
    .with_context(|| {
        let path = namespace.map_or(name.clone(), |ns| format!("{ns}/{name}"));
        format!("applying {} {path}", ar.kind)
    })
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

/// Starts a control plane with Bindery's CRDs installed: BindingPolicy and Binding in the
/// WDS, OCM's ManagedCluster in the ITS; returns it with an admin client of the WDS and
/// one of the ITS.
pub async fn start() -> (Envtest, kube::Client, kube::Client) {
    start_with(EnvtestOptions::default()).await
}

/// [`start`] with `options`.
pub async fn start_with(options: EnvtestOptions) -> (Envtest, kube::Client, kube::Client) {
    let env = Envtest::start_with(options).expect("the envtest control plane starts");
    let wds = client(&env.wds.kubeconfig).await;
    let its = client(&env.its.kubeconfig).await;
    install_crds(&wds, &bindery_api::crds())
        .await
        .expect("the WDS CRDs install");
    install_crds(&its, &bindery_api::its_crds())
        .await
        .expect("the ITS CRDs install");
    (env, wds, its)
}

/// A control plane whose WDS has no CRD of KubeStellar's yet (a test installs them, or
/// has Bindery do it); the ITS has its stand-ins, as [`start`]'s.
pub async fn start_without_wds_crds() -> (Envtest, kube::Client, kube::Client) {
    let env =
        Envtest::start_with(EnvtestOptions::default()).expect("the envtest control plane starts");
    let wds = client(&env.wds.kubeconfig).await;
    let its = client(&env.its.kubeconfig).await;
    install_crds(&its, &bindery_api::its_crds())
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
pub async fn await_binding_spec(
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

/// Creates every object of a multi-document YAML stream as it is written, by POSTing
/// each document as `application/yaml` to the collection discovery names for its
/// `apiVersion` and `kind` (namespaced objects need `metadata.namespace`). Returns the
/// created objects.
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

/// Writes WorkStatus `wec/name` in the ITS as KubeStellar's OCM status add-on does: when
/// `create`, creates it ([`crate::objects::work_status`], labelled with origin WDS `wds`
/// and binding key `binding`; a 409 taken as already there), then applies `status`
/// through the status subresource; returns it as stored.
pub async fn write_work_status(
    its: &kube::Client,
    (wec, name): (&str, &str),
    (wds, binding): (&str, &str),
    source_ref: Value,
    status: &Value,
    create: bool,
) -> Result<DynamicObject> {
    if create {
        let api: Api<DynamicObject> = Api::namespaced_with(its.clone(), wec, &res::work_statuses());
        let mut object = crate::objects::work_status(wec, name, wds, source_ref);
        object["metadata"]["labels"]["transport.kubestellar.io/originOwnerReferenceBindingKey"] =
            serde_json::json!(binding);
        let object: DynamicObject = serde_json::from_value(object)?;
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    work_status_status(its, wec, name, status).await
}

/// Applies `status` to WorkStatus `wec/name` through its status subresource, as the
/// status add-on does; returns it as stored.
pub async fn work_status_status(
    its: &kube::Client,
    wec: &str,
    name: &str,
    status: &Value,
) -> Result<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(its.clone(), wec, &res::work_statuses());
    let patch = serde_json::json!({"apiVersion": "control.kubestellar.io/v1alpha1",
                                   "kind": "WorkStatus", "status": status});
    api.patch_status(
        name,
        &PatchParams::apply("e2e-status-addon").force(),
        &Patch::Apply(&patch),
    )
    .await
    .with_context(|| format!("writing the status of WorkStatus {wec}/{name}"))
}
