//! The live-test harness: a [`World`] is a control plane with Bindery's CRDs and an admin
//! client of each space; it starts `bindery run`s on it, and waits for Bindings and
//! policy statuses, failing with what was awaited, the policy's status and the end of
//! Bindery's log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::bindery_run::BinderyRun;
use crate::control_plane::{self, apply, await_binding_absent, await_binding_spec, res};
use crate::envtest::{Envtest, EnvtestOptions};
use crate::objects::{self, managed_cluster, owners};

/// How long a Binding may take to reflect a change in normal operation.
pub const SETTLE: Duration = Duration::from_secs(60);
/// Lines of the bindery log shown when a wait fails.
pub const TAIL: usize = 80;

/// A control plane with Bindery's CRDs ([`control_plane::start`]), a client of each
/// space, and when it started (progress lines say how long into the test).
pub struct World {
    /// The servers, their kubeconfigs and the directory of the test's logs.
    pub env: Envtest,
    /// An admin client of the WDS.
    pub wds: kube::Client,
    /// An admin client of the ITS.
    pub its: kube::Client,
    /// When the test started its control plane.
    pub started: Instant,
}

impl World {
    /// Starts a control plane with KubeStellar's CRDs (WDS) and OCM's ManagedCluster CRD
    /// (ITS).
    pub async fn start() -> World {
        World::start_with(EnvtestOptions::default()).await
    }

    /// [`World::start`] with `options`.
    pub async fn start_with(options: EnvtestOptions) -> World {
        let started = Instant::now();
        let (env, wds, its) = control_plane::start_with(options).await;
        eprintln!("control plane up in {:?}", started.elapsed());
        World {
            env,
            wds,
            its,
            started,
        }
    }

    /// A world whose WDS has no CRD of KubeStellar's yet ([`control_plane::start_without_wds_crds`]).
    pub async fn start_without_wds_crds() -> World {
        let started = Instant::now();
        let (env, wds, its) = control_plane::start_without_wds_crds().await;
        eprintln!("control plane up in {:?}", started.elapsed());
        World {
            env,
            wds,
            its,
            started,
        }
    }

    /// Stops the WDS API server and starts it again on the same port and data, and
    /// connects the `wds` client anew.
    pub async fn restart_wds(&mut self) {
        let start = Instant::now();
        self.env
            .restart_wds()
            .unwrap_or_else(|e| panic!("restarting the WDS API server: {e:#}"));
        self.step(&format!(
            "WDS API server restarted in {:?}",
            start.elapsed()
        ));
        self.wds = control_plane::client(&self.env.wds.kubeconfig).await;
    }

    /// Starts `bindery run` on the admin kubeconfigs with 100 ms coalescing, logging to
    /// `log` (a file name in the control plane's directory).
    pub fn bindery(&self, log: &str) -> BinderyRun {
        self.bindery_with(log, &["--coalesce-ms", "100"])
    }

    /// Starts `bindery run` with status return for WDS `wds1` (the name the tests'
    /// WorkStatuses carry), a 50 ms coalescing window and `extra`, logging to `log`.
    pub fn bindery_returning(&self, log: &str, extra: &[&str]) -> BinderyRun {
        let mut args = vec!["--coalesce-ms", "50", "--wds-name", "wds1"];
        args.extend_from_slice(extra);
        self.bindery_with(log, &args)
    }

    /// Starts `bindery run` on the admin kubeconfigs with `args`, logging to `log`.
    pub fn bindery_with(&self, log: &str, args: &[&str]) -> BinderyRun {
        self.bindery_as(&self.env.wds.kubeconfig, log, args)
    }

    /// Starts `bindery run` reaching the WDS through `wds_kubeconfig` (e.g. a
    /// ServiceAccount's), the ITS as its admin, with `args`, logging to `log`.
    pub fn bindery_as(&self, wds_kubeconfig: &Path, log: &str, args: &[&str]) -> BinderyRun {
        let log = self.env.dir().join(log);
        BinderyRun::start(wds_kubeconfig, &self.env.its.kubeconfig, &log, args)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Applies `object` (of resource `ar`) to the WDS; returns it as stored.
    pub async fn wds(&self, ar: &ApiResource, object: Value) -> DynamicObject {
        apply(&self.wds, ar, object)
            .await
            .unwrap_or_else(|e| panic!("in the WDS: {e:#}"))
    }

    /// Applies Namespace `name` with `labels` to the WDS; returns it as stored.
    pub async fn namespace(&self, name: &str, labels: Value) -> DynamicObject {
        self.wds(&res::namespaces(), objects::namespace(name, labels))
            .await
    }

    /// Applies Deployment `ns/name` with `labels` to the WDS; returns it as stored.
    pub async fn deployment(&self, ns: &str, name: &str, labels: Value) -> DynamicObject {
        self.wds(&res::deployments(), objects::deployment(ns, name, labels))
            .await
    }

    /// Applies ConfigMap `ns/name` with `labels` to the WDS; returns it as stored.
    pub async fn configmap(&self, ns: &str, name: &str, labels: Value) -> DynamicObject {
        self.wds(&res::configmaps(), objects::configmap(ns, name, labels))
            .await
    }

    /// Applies BindingPolicy `name` (see [`objects::policy`]) to the WDS; returns it as
    /// stored.
    pub async fn policy(
        &self,
        name: &str,
        cluster_selectors: Value,
        downsync: Value,
    ) -> DynamicObject {
        self.wds(
            &res::binding_policies(),
            objects::policy(name, cluster_selectors, downsync),
        )
        .await
    }

    /// Applies the seed's nginx example (`examples/nginx.jsonl`) to the WDS: Namespace
    /// `nginx` and Deployment `nginx/nginx-deployment`, both labelled
    /// `app.kubernetes.io/name: nginx`, and the nginx policy ([`objects::nginx_policy`]);
    /// returns them as stored, in that order.
    pub async fn nginx(&self) -> (DynamicObject, DynamicObject, DynamicObject) {
        let nginx = json!({"app.kubernetes.io/name": "nginx"});
        let namespace = self.namespace("nginx", nginx.clone()).await;
        let deployment = self.deployment("nginx", "nginx-deployment", nginx).await;
        let policy = self
            .wds(&res::binding_policies(), objects::nginx_policy())
            .await;
        (namespace, deployment, policy)
    }

    /// Deletes object `namespace/name` of resource `ar` from the WDS (done if it is not
    /// there).
    pub async fn delete(&self, ar: &ApiResource, namespace: Option<&str>, name: &str) {
        control_plane::delete(&self.wds, ar, namespace, name)
            .await
            .unwrap_or_else(|e| panic!("deleting {} {name} in the WDS: {e:#}", ar.kind));
    }

    /// Object `namespace/name` of resource `ar` in the WDS, if it exists.
    pub async fn get(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<DynamicObject> {
        control_plane::get(&self.wds, ar, namespace, name)
            .await
            .unwrap_or_else(|e| panic!("getting {} {name} from the WDS: {e:#}", ar.kind))
    }

    /// Writes `file` (in the control plane's directory): a kubeconfig for the WDS as
    /// ServiceAccount `namespace/name`, with a token from the TokenRequest API; returns
    /// its path.
    pub async fn wds_kubeconfig_as(&self, namespace: &str, name: &str, file: &str) -> PathBuf {
        let token = control_plane::service_account_token(&self.wds, namespace, name)
            .await
            .unwrap_or_else(|e| panic!("in the WDS: {e:#}"));
        let path = self.env.dir().join(file);
        control_plane::write_token_kubeconfig(&path, "wds", &self.env.wds.url, &token)
            .unwrap_or_else(|e| panic!("{e:#}"));
        path
    }

    /// Creates the WDS RBAC the Helm chart renders (namespace `bindery-system`) and
    /// returns a kubeconfig of its ServiceAccount `bindery`, whose requests the WDS
    /// audits ([`crate::envtest::AUDITED_USER`]) and limits as any non-admin's.
    pub async fn chart_service_account(&self) -> PathBuf {
        crate::chart::create_wds_rbac(&self.wds, "bindery-system")
            .await
            .unwrap_or_else(|e| panic!("the chart's WDS RBAC: {e:#}"));
        self.wds_kubeconfig_as("bindery-system", "bindery", "bindery-sa.kubeconfig")
            .await
    }

    /// Applies WEC `name` in `location-group: GROUP` to the ITS.
    pub async fn wec(&self, name: &str, group: &str) {
        apply(
            &self.its,
            &res::managed_clusters(),
            managed_cluster(name, group),
        )
        .await
        .unwrap_or_else(|e| panic!("in the ITS: {e:#}"));
    }

    /// Creates WorkStatus `wec/name` in the ITS as the status add-on does (the WEC's
    /// namespace created if need be; [`objects::work_status`]), then writes `status`
    /// through the status subresource when it is not null; returns it as stored.
    pub async fn work_status(
        &self,
        wec: &str,
        name: &str,
        wds: &str,
        source_ref: Value,
        status: Value,
    ) -> DynamicObject {
        apply(
            &self.its,
            &res::namespaces(),
            objects::namespace(wec, json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("in the ITS: {e:#}"));
        let object = objects::work_status(wec, name, wds, source_ref);
        let created = apply(&self.its, &res::work_statuses(), object)
            .await
            .unwrap_or_else(|e| panic!("in the ITS: {e:#}"));
        if status.is_null() {
            return created;
        }
        control_plane::work_status_status(&self.its, wec, name, &status)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The three WECs of most tests: cluster1 and cluster2 in `edge`, cluster3 in `core`.
    pub async fn three_wecs(&self) {
        for &(name, group) in objects::THREE_WECS {
            self.wec(name, group).await;
        }
    }

    /// Prints `what` as a progress line, with the time since the control plane started.
    pub fn step(&self, what: &str) {
        eprintln!("[{:>6.1?}] {what}", self.started.elapsed());
    }

    /// Waits until Binding `policy` has exactly `spec` and the owner reference to
    /// `policy`; returns the Binding.
    pub async fn expect(
        &self,
        bindery: &BinderyRun,
        policy: &DynamicObject,
        spec: &Value,
        what: &str,
    ) -> Value {
        self.expect_within(bindery, policy, spec, what, SETTLE)
            .await
    }

    /// [`World::expect`], waiting up to `timeout`.
    pub async fn expect_within(
        &self,
        bindery: &BinderyRun,
        policy: &DynamicObject,
        spec: &Value,
        what: &str,
        timeout: Duration,
    ) -> Value {
        let name = policy.metadata.name.as_deref().expect("a stored policy");
        let binding = self.expect_spec(bindery, name, spec, what, timeout).await;
        assert_eq!(
            binding["metadata"]["ownerReferences"],
            owners(policy),
            "{what}: owner references of Binding {name}"
        );
        binding
    }

    /// Waits up to `timeout` until Binding `name` has exactly `spec` (owners unchecked);
    /// returns the Binding.
    pub async fn expect_spec(
        &self,
        bindery: &BinderyRun,
        name: &str,
        spec: &Value,
        what: &str,
        timeout: Duration,
    ) -> Value {
        match await_binding_spec(&self.wds, name, spec, timeout).await {
            Ok(binding) => {
                self.step(&format!("{what}: ok"));
                binding
            }
            Err(e) => {
                let status = self.policy_status(name).await;
                fail(
                    bindery,
                    &format!("{what}: {e}\npolicy {name} status: {status}"),
                )
            }
        }
    }

    /// Policy `name`'s status, for failure messages.
    pub async fn policy_status(&self, name: &str) -> Value {
        match control_plane::get(&self.wds, &res::binding_policies(), None, name).await {
            Ok(Some(p)) => p.data["status"].clone(),
            Ok(None) => json!("no such policy"),
            Err(e) => json!(e.to_string()),
        }
    }

    /// Waits until Binding `name` is gone.
    pub async fn expect_absent(&self, bindery: &BinderyRun, name: &str, what: &str) {
        await_binding_absent(&self.wds, name, SETTLE)
            .await
            .unwrap_or_else(|e| fail(bindery, &format!("{what}: {e}")));
        self.step(&format!("{what}: ok"));
    }

    /// Waits until policy `name`'s status has `observedGeneration` equal to its
    /// generation and `check` accepts it; returns `(policy, status)`.
    pub async fn settled_status(
        &self,
        bindery: &BinderyRun,
        name: &str,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> (Value, Value) {
        let wds = &self.wds;
        let check = &check;
        control_plane::eventually(&format!("status of policy {name}"), SETTLE, || async move {
            let p = control_plane::get(wds, &res::binding_policies(), None, name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no policy")?;
            let p = serde_json::to_value(p).unwrap();
            let status = p["status"].clone();
            if status["observedGeneration"] != p["metadata"]["generation"] {
                return Err(format!(
                    "generation {} but status {status}",
                    p["metadata"]["generation"]
                ));
            }
            check(&status).map_err(|e| format!("{e}; status {status}"))?;
            Ok(Some((p, status)))
        })
        .await
        .unwrap_or_else(|e| fail(bindery, &e.to_string()))
    }

    /// Waits until policy `name` is reported ready with no errors.
    pub async fn expect_ready(&self, bindery: &BinderyRun, name: &str) -> Value {
        let (_, status) = self
            .settled_status(bindery, name, ready_without_errors)
            .await;
        status
    }
}

/// The notes of the Events (events.k8s.io, in `default`) on BindingPolicy `policy` with
/// `uid`, `reason` and `type_`, once there are at least `min` (an error after 20 s; with
/// `min` 0, those there are now).
pub async fn policy_events(
    wds: &kube::Client,
    policy: &str,
    uid: &str,
    reason: &str,
    type_: &str,
    min: usize,
) -> anyhow::Result<Vec<String>> {
    let api: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(wds.clone(), "default");
    control_plane::eventually(
        &format!("{reason} Events on {policy}"),
        Duration::from_secs(20),
        || async {
            let list = api
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let notes: Vec<String> = list
                .items
                .into_iter()
                .filter(|e| {
                    e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("BindingPolicy")
                            && r.name.as_deref() == Some(policy)
                            && r.uid.as_deref() == Some(uid)
                    }) && e.reason.as_deref() == Some(reason)
                        && e.type_.as_deref() == Some(type_)
                        && e.reporting_controller.as_deref() == Some("bindery")
                })
                .map(|e| e.note.unwrap_or_default())
                .collect();
            if notes.len() >= min {
                Ok(Some(notes))
            } else {
                Err(format!("{} of them", notes.len()))
            }
        },
    )
    .await
}

/// The condition of `type_` in a policy's `status`.
pub fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// A policy `status` with no errors, `Ready` (`Applied`) and `Synced` (`ReconcileSuccess`),
/// or what is not so.
pub fn ready_without_errors(status: &Value) -> Result<(), String> {
    if status["errors"].as_array().is_some_and(|e| !e.is_empty()) {
        return Err("has errors".into());
    }
    let ready = condition(status, "Ready").ok_or("no Ready condition")?;
    if ready["status"] != "True" || ready["reason"] != "Applied" {
        return Err(format!("Ready is {ready}"));
    }
    let synced = condition(status, "Synced").ok_or("no Synced condition")?;
    if synced["status"] != "True" || synced["reason"] != "ReconcileSuccess" {
        return Err(format!("Synced is {synced}"));
    }
    Ok(())
}

/// Panics with `msg` and the last [`TAIL`] lines of `bindery`'s log.
pub fn fail(bindery: &BinderyRun, msg: &str) -> ! {
    panic!(
        "{msg}\n--- bindery log ({}), last {TAIL} lines ---\n{}",
        bindery.log.display(),
        bindery.log_tail(TAIL)
    )
}

/// Stops `bindery` with SIGTERM; fails unless it exits 0.
pub fn stop(bindery: &mut BinderyRun) {
    let clean = bindery.stop().unwrap_or(false);
    if !clean {
        fail(bindery, "bindery did not exit 0 on SIGTERM");
    }
}
