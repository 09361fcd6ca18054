//! What every scenario shares: the builders of objects and expected Bindings, and the
//! `World` (a control plane, Bindery runs on it, and waiting for Bindings and statuses).

pub(crate) use std::time::{Duration, Instant};

pub(crate) use bindery_tests::bindery_run::BinderyRun;
pub(crate) use bindery_tests::control_plane::{
    self, BindingHistory, apply, await_binding_absent, await_binding_spec, res, rv,
};
pub(crate) use bindery_tests::envtest::Envtest;
pub(crate) use bindery_tests::objects::{
    configmap, deployment, edge, entry, managed_cluster, namespace, owners, policy, spec, widget,
    widget_crd,
};
pub(crate) use kube::api::{ApiResource, DynamicObject};
pub(crate) use serde_json::{Value, json};

/// How long a Binding may take to reflect a change in normal operation.
pub(crate) const SETTLE: Duration = Duration::from_secs(60);
/// Lines of the bindery log shown when a wait fails.
pub(crate) const TAIL: usize = 80;

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

pub(crate) struct World {
    pub(crate) env: Envtest,
    pub(crate) wds: kube::Client,
    pub(crate) its: kube::Client,
    pub(crate) started: Instant,
}

impl World {
    /// A control plane with KubeStellar's CRDs (WDS) and OCM's ManagedCluster CRD (ITS).
    pub(crate) async fn start() -> World {
        let started = Instant::now();
        let (env, wds, its) = control_plane::start().await;
        eprintln!("control plane up in {:?}", started.elapsed());
        World {
            env,
            wds,
            its,
            started,
        }
    }

    /// Starts `bindery run` (admin kubeconfigs, 100 ms coalescing), logging to `log`.
    pub(crate) fn bindery(&self, log: &str) -> BinderyRun {
        self.bindery_with(&self.env.wds.kubeconfig, log)
    }

    pub(crate) fn bindery_with(&self, wds_kubeconfig: &std::path::Path, log: &str) -> BinderyRun {
        BinderyRun::start(
            wds_kubeconfig,
            &self.env.its.kubeconfig,
            &self.env.dir().join(log),
            &["--coalesce-ms", "100"],
        )
        .expect("bindery starts")
    }

    pub(crate) async fn wds(&self, ar: &ApiResource, object: Value) -> DynamicObject {
        apply(&self.wds, ar, object).await.unwrap()
    }

    pub(crate) async fn wec(&self, name: &str, group: &str) {
        apply(
            &self.its,
            &res::managed_clusters(),
            managed_cluster(name, group),
        )
        .await
        .unwrap();
    }

    /// The three WECs of most tests: cluster1 and cluster2 in `edge`, cluster3 in `core`.
    pub(crate) async fn three_wecs(&self) {
        control_plane::apply_wecs(&self.its, control_plane::THREE_WECS)
            .await
            .unwrap();
    }

    /// Waits until Binding `policy` has exactly `spec` and the owner reference to
    /// `policy`; returns the Binding.
    pub(crate) async fn expect(
        &self,
        bindery: &BinderyRun,
        policy: &DynamicObject,
        spec: &Value,
        what: &str,
    ) -> Value {
        self.expect_within(bindery, policy, spec, what, SETTLE)
            .await
    }

    pub(crate) async fn expect_within(
        &self,
        bindery: &BinderyRun,
        policy: &DynamicObject,
        spec: &Value,
        what: &str,
        timeout: Duration,
    ) -> Value {
        let name = policy.metadata.name.clone().unwrap();
        let binding = match await_binding_spec(&self.wds, &name, spec, timeout).await {
            Ok(binding) => binding,
            Err(e) => {
                let status = self.policy_status(&name).await;
                fail(
                    bindery,
                    &format!("{what}: {e}\npolicy {name} status: {status}"),
                )
            }
        };
        assert_eq!(
            binding["metadata"]["ownerReferences"],
            owners(policy),
            "{what}: owner references of Binding {name}"
        );
        eprintln!("[{:>6.1?}] {what}: ok", self.started.elapsed());
        binding
    }

    /// Policy `name`'s status, for failure messages.
    pub(crate) async fn policy_status(&self, name: &str) -> Value {
        match control_plane::get(&self.wds, &res::binding_policies(), None, name).await {
            Ok(Some(p)) => serde_json::to_value(p).unwrap()["status"].clone(),
            Ok(None) => json!("no such policy"),
            Err(e) => json!(e.to_string()),
        }
    }

    pub(crate) async fn expect_absent(&self, bindery: &BinderyRun, name: &str, what: &str) {
        await_binding_absent(&self.wds, name, SETTLE)
            .await
            .unwrap_or_else(|e| fail(bindery, &format!("{what}: {e}")));
        eprintln!("[{:>6.1?}] {what}: ok", self.started.elapsed());
    }

    /// Waits until policy `name`'s status has `observedGeneration` equal to its
    /// generation and `check` accepts it; returns `(policy, status)`.
    pub(crate) async fn settled_status(
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
    pub(crate) async fn expect_ready(&self, bindery: &BinderyRun, name: &str) -> Value {
        let (_, status) = self
            .settled_status(bindery, name, ready_without_errors)
            .await;
        status
    }
}

/// The notes of the Events (events.k8s.io, in `default`) on BindingPolicy `policy` with
/// `uid`, `reason` and `type_`, once there are at least `min` (an error after 20 s; with
/// `min` 0, those there are now).
pub(crate) async fn policy_events(
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

pub(crate) fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub(crate) fn ready_without_errors(status: &Value) -> Result<(), String> {
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

pub(crate) fn fail(bindery: &BinderyRun, msg: &str) -> ! {
    panic!(
        "{msg}\n--- bindery log ({}), last {TAIL} lines ---\n{}",
        bindery.log.display(),
        bindery.log_tail(TAIL)
    )
}

pub(crate) fn stop(bindery: &mut BinderyRun) {
    let clean = bindery.stop().unwrap_or(false);
    if !clean {
        fail(bindery, "bindery did not exit 0 on SIGTERM");
    }
}
