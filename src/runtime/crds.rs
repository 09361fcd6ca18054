//! Installing KubeStellar's CRDs in the WDS (`bindery run --install-crds`), as
//! KubeStellar's controller-manager does at its start (`pkg/crd/crds.go`, `ApplyCRDs`):
//! each CRD is applied (server-side apply, field manager `bindery`, taking over the
//! fields another manager set) and then waited for until the API server says it is
//! `Established`, so that the watches and writes that follow find its resource.
//!
//! A CRD whose stored objects a changed schema would prune cannot come from this: the
//! five are KubeStellar's own, node by node (`tests/tests/deploy/crds.rs`).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};

/// The field manager of the CRDs Bindery applies.
pub const FIELD_MANAGER: &str = "bindery";

/// How long each CRD may take to be established (KubeStellar waits a minute for all).
pub const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the CRDs could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The API server refused the CRD.
    #[error("installing the CRD {name} in the WDS: {reason}")]
    Apply {
        /// The CRD.
        name: String,
        /// What the server said.
        reason: String,
    },
    /// The CRD was applied but not established in time.
    #[error("the CRD {name} was not established within {} s: {last}", .timeout.as_secs())]
    NotEstablished {
        /// The CRD.
        name: String,
        /// How long it was waited for.
        timeout: Duration,
        /// The last condition seen.
        last: String,
    },
}

/// Applies `crds` to the WDS of `client` and waits until each is established, at most
/// `timeout` each.
pub async fn install(
    client: &kube::Client,
    crds: &[CustomResourceDefinition],
    timeout: Duration,
) -> Result<(), CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let applied = api
            .patch(&name, &params, &Patch::Apply(crd))
            .await
            .map_err(|e| CrdError::Apply {
                name: name.clone(),
                reason: describe(&e),
            })?;
        tracing::debug!(
            crd = %name,
            generation = applied.metadata.generation,
            "CRD applied"
        );
        established(&api, &name, timeout).await?;
    }
    tracing::info!(
        crds = crds.len(),
        "KubeStellar's CRDs installed and established"
    );
    Ok(())
}

/// Waits until CRD `name` has the condition `Established: True`.
async fn established(
    api: &Api<CustomResourceDefinition>,
    name: &str,
    timeout: Duration,
) -> Result<(), CrdError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = "no condition yet".to_string();
    loop {
        match api.get(name).await {
            Ok(crd) => {
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                if let Some(c) = conditions.iter().find(|c| c.type_ == "Established") {
                    if c.status == "True" {
                        return Ok(());
                    }
                    last = format!(
                        "Established {} ({})",
                        c.status,
                        c.message.as_deref().unwrap_or("")
                    );
                }
            }
            Err(e) => last = describe(&e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CrdError::NotEstablished {
                name: name.to_string(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A request's error in one line: `HTTP 403 Forbidden: <server message>` for the API's.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}
