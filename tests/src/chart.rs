//! Rendering Bindery's Helm chart (`deploy/chart/bindery`) with a real `helm template`
//! (helm built from its Go module by `scripts/helm-binary.sh`, cached under
//! `target/envtest/bin/`).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{control_plane, objects};

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    crate::workspace_root().join("deploy/chart/bindery")
}

/// The helm binary: `$HELM_BIN`, or `target/envtest/bin/helm`.
pub fn helm_bin() -> Result<PathBuf> {
    let path = std::env::var_os("HELM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/envtest/bin/helm"));
    if !path.is_file() {
        bail!(
            "no helm at {}: run scripts/helm-binary.sh (it builds helm from its Go module)",
            path.display()
        );
    }
    Ok(path)
}

/// A chart value set on the command line.
pub enum Set<'a> {
    /// `--set key=value`.
    Str(&'a str, &'a str),
    /// `--set-json key=json`.
    Json(&'a str, Value),
}

/// `helm template bindery deploy/chart/bindery --namespace NS` with `sets`: the rendered
/// YAML text, or helm's error output.
pub fn render(namespace: &str, sets: &[Set]) -> Result<String> {
    let mut cmd = Command::new(helm_bin()?);
    cmd.args(["template", "bindery"])
        .arg(chart_dir())
        .args(["--namespace", namespace]);
    for set in sets {
        match set {
            Set::Str(k, v) => cmd.arg("--set").arg(format!("{k}={v}")),
            Set::Json(k, v) => cmd.arg("--set-json").arg(format!("{k}={v}")),
        };
    }
    let out = cmd.output().context("running helm template")?;
    if !out.status.success() {
        bail!(
            "helm template failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("helm's output is UTF-8")
}

/// The documents of a rendered chart, as `(kind, name, document text)`, comments and
/// empty documents left out.
pub fn documents(yaml: &str) -> Vec<(String, String, String)> {
    control_plane::yaml_documents(yaml)
        .into_iter()
        .filter_map(|d| Some((d.kind?, d.name, d.text)))
        .collect()
}

/// Creates in the WDS behind `client` what the chart renders for a WDS that Bindery
/// reaches with the chart's ServiceAccount (`controller.enabled=false`): namespace
/// `namespace`, ServiceAccount `bindery` there, the ClusterRole, the Lease Role in
/// `namespace`, and their bindings. Returns the created objects (the namespace left out).
pub async fn create_wds_rbac(client: &kube::Client, namespace: &str) -> Result<Vec<Value>> {
    let rbac = render(namespace, &[Set::Str("controller.enabled", "false")])?;
    control_plane::apply(
        client,
        &control_plane::res::namespaces(),
        objects::namespace(namespace, serde_json::json!({})),
    )
    .await?;
    control_plane::create_yaml(client, &rbac).await
}
