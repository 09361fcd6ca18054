//! Deployable: how `bindery` finds its servers (in-cluster, `KUBECONFIG`, environment
//! variables), its health probes (`/readyz`, `/livez`) and its JSON logs.
//!
//! The live test runs against real kube-apiservers (envtest) with no admin credentials
//! in sight of Bindery: the WDS through the in-cluster environment with a ServiceAccount
//! token, the ITS through a ServiceAccount token kubeconfig.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bindery_tests::bindery_run::BinderyRun;
use bindery_tests::chart::{self, Set};
use bindery_tests::control_plane;
use bindery_tests::objects::{edge, labelled};
use bindery_tests::world::World;
use bindery_tests::{bindery_bin, free_listen_address, http_get, workspace_root};
use serde_json::{Value, json};

/// The WECs of a stored Binding's spec, sorted.
fn destinations(spec: &Value) -> Vec<String> {
    let mut ids: Vec<String> = spec["destinations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["clusterId"].as_str().map(String::from))
        .collect();
    ids.sort();
    ids
}

/// `GET url` off the async runtime's threads; `None` while nothing listens.
async fn get(url: String) -> Option<(u16, String)> {
    tokio::task::spawn_blocking(move || http_get(&url).ok())
        .await
        .unwrap()
}

/// The chart's documents rendered with `values`, as JSON.
fn rendered(values: &[Set]) -> Vec<Value> {
    let text = chart::render("bindery-system", values).unwrap();
    chart::documents(&text)
        .iter()
        .map(|(_, _, d)| serde_yaml_ng::from_str(d).unwrap())
        .collect()
}

/// The args and the environment (variables with a value, and `POD_NAME` as the pod's
/// name would give it) of the container the chart's Deployment runs with `values`.
fn chart_container(values: &[Set]) -> (Vec<String>, Vec<(String, String)>) {
    let docs = rendered(values);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let mut vars: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
        .collect();
    vars.push(("POD_NAME".into(), "bindery-0".into()));
    (args, vars)
}

/// A `bindery` command with no kubeconfig to fall back on: `KUBECONFIG` unset, `HOME`
/// an empty directory, none of the test's `BINDERY_*` variables inherited.
fn bare_command(home: &Path) -> Command {
    let mut cmd = Command::new(bindery_bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("BINDERY_") || key.starts_with("KUBERNETES_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("KUBECONFIG")
        .env("HOME", home)
        .env("BINDERY_LOG", "info,bindery=debug");
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_container_runs_in_cluster_is_ready_once_synced_and_kubeconfig_env_reaches_the_wds()
 {
    let w = World::start().await;
    let (env, wds, its) = (&w.env, &w.wds, &w.its);
    let dir = env.dir().to_path_buf();
    let home = dir.join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    w.three_wecs().await;
    w.namespace("nginx", json!({"app": "nginx"})).await;
    let nginx = labelled(&[], json!({"app": "nginx"}));
    w.policy("nginx", edge(), json!([nginx])).await;

    // The WDS: Bindery's ServiceAccount (the chart's WDS RBAC), mounted as kubelet would.
    chart::create_wds_rbac(wds, "bindery-system").await.unwrap();
    let token = control_plane::service_account_token(wds, "bindery-system", "bindery")
        .await
        .unwrap();
    let sa_dir = dir.join("serviceaccount");
    std::fs::create_dir_all(&sa_dir).unwrap();
    std::fs::write(sa_dir.join("token"), &token).unwrap();
    // The API server's self-signed certificate and its CA.
    std::fs::copy(dir.join("wds/certs/apiserver.crt"), sa_dir.join("ca.crt")).unwrap();
    std::fs::write(sa_dir.join("namespace"), "bindery-system").unwrap();
    let wds_port = env.wds.url.rsplit_once(':').unwrap().1.to_string();

    // The ITS: a ServiceAccount that may not read ManagedClusters yet.
    control_plane::create_yaml(
        its,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bindery-system\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: bindery\n  namespace: bindery-system\n",
    )
    .await
    .unwrap();
    let its_token = control_plane::service_account_token(its, "bindery-system", "bindery")
        .await
        .unwrap();
    let its_kubeconfig = dir.join("its-sa.kubeconfig");
    control_plane::write_token_kubeconfig(&its_kubeconfig, "its", &env.its.url, &its_token)
        .unwrap();

    // The container the chart renders by default (in-cluster WDS, leader election, the
    // ITS kubeconfig from a Secret), run as is but for what a pod provides: the ITS
    // kubeconfig mounted where the chart says, and a port of its own on loopback.
    let (args, vars) = chart_container(&[]);
    let (listen, base) = free_listen_address();
    let its_arg = "--its-kubeconfig=/etc/bindery/its/kubeconfig";
    assert!(args.iter().any(|a| a == its_arg), "{args:?}");
    assert!(args.iter().any(|a| a == "--leader-elect"), "{args:?}");
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a == its_arg {
                format!("--its-kubeconfig={}", its_kubeconfig.display())
            } else if a.starts_with("--listen=") {
                format!("--listen={listen}")
            } else {
                a
            }
        })
        .collect();
    let mut cmd = bare_command(&home);
    cmd.args(&args)
        .envs(vars)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &wds_port)
        .env("BINDERY_SERVICEACCOUNT_DIR", &sa_dir);
    let run = BinderyRun::start_command(cmd, &dir.join("bindery-in-cluster.log")).unwrap();
    let fail = |what: &str| -> ! { panic!("{what}\nbindery's log:\n{}", run.log_tail(60)) };

    // Up, alive, and not ready: the ITS watch cannot sync.
    let (code, body) =
        control_plane::eventually("the server answers", Duration::from_secs(60), || {
            let url = format!("{base}/readyz");
            async move {
                get(url)
                    .await
                    .map(Some)
                    .ok_or_else(|| "no answer yet".to_string())
            }
        })
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    if (code, body.as_str()) != (503, "not every watch has synced yet: no epoch published\n") {
        fail(&format!("readyz before the ITS synced: {code} {body:?}"));
    }
    for path in ["/livez", "/healthz"] {
        assert_eq!(
            get(format!("{base}{path}")).await,
            Some((200, "ok\n".to_string())),
            "{path}"
        );
    }
    // The chart logs JSON: where each space's client comes from, as fields.
    let log = run.log_text();
    let origin =
        format!("\"wds\":\"in-cluster (https://127.0.0.1:{wds_port}, ServiceAccount files in ");
    assert!(log.contains(&origin), "{log}");
    assert!(log.contains("\"its\":\"kubeconfig "), "{log}");

    // The chart's ITS RBAC, bound to the ITS's ServiceAccount: the watch syncs.
    let its_rbac = chart::render(
        "bindery-system",
        &[
            Set::Str("controller.enabled", "false"),
            Set::Str("rbac.wds.create", "false"),
            Set::Str("rbac.its.create", "true"),
            Set::Json(
                "rbac.its.subjects",
                json!([{"kind": "ServiceAccount", "name": "bindery", "namespace": "bindery-system"}]),
            ),
        ],
    )
    .unwrap();
    control_plane::create_yaml(its, &its_rbac).await.unwrap();
    control_plane::eventually("readyz turns 200", Duration::from_secs(120), || {
        let url = format!("{base}/readyz");
        async move {
            match get(url).await {
                Some((200, body)) => Ok(Some(body)),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e.to_string()));
    // Written with the in-cluster ServiceAccount: the only credentials it has.
    control_plane::eventually("the nginx Binding", Duration::from_secs(30), || async {
        match control_plane::binding(wds, "nginx").await {
            Ok(Some((_, spec))) if destinations(&spec) == ["cluster1", "cluster2"] => Ok(Some(())),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e.to_string()));
    drop(run);

    // KUBECONFIG alone names the WDS (its current-context); the ITS by its variable.
    let policy = dir.join("edited.yaml");
    std::fs::write(
        &policy,
        "apiVersion: control.kubestellar.io/v1alpha1\nkind: BindingPolicy\nmetadata:\n  name: nginx\n\
         spec:\n  clusterSelectors:\n  - matchLabels:\n      location-group: core\n  \
         downsync:\n  - objectSelectors:\n    - matchLabels:\n        app: nginx\n",
    )
    .unwrap();
    let mut cmd = bare_command(&home);
    cmd.args(["dry-run", "--policy-file"])
        .arg(&policy)
        .env("KUBECONFIG", &env.wds.kubeconfig)
        .env("BINDERY_ITS_KUBECONFIG", &env.its.kubeconfig);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let binding: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(destinations(&binding["spec"]), ["cluster3"], "{binding}");
    let wds_origin = format!(
        "wds=kubeconfig KUBECONFIG={} (context wds)",
        env.wds.kubeconfig.display()
    );
    assert!(stderr.contains(&wds_origin), "{stderr}");

    // With neither a kubeconfig nor a cluster: an error naming both.
    let out = bare_command(&home)
        .args(["dry-run", "--policy-file"])
        .arg(&policy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("WDS: no kubeconfig (KUBECONFIG, ~/.kube/config: ")
            && stderr.contains("and not in a cluster"),
        "{stderr}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let out = Command::new(bindery_bin())
        .args(["replay", "--log-format", "json"])
        .arg(workspace_root().join("examples/nginx.jsonl"))
        .env("BINDERY_LOG", "info")
        .env_remove("BINDERY_LOG_FORMAT")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "no logs");
    let mut summary = false;
    for line in lines {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["timestamp"].is_string(), "{line}");
        let message = entry["fields"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{line}"));
        summary |= message == "replayed the log" && entry["fields"]["events"].is_u64();
    }
    assert!(summary, "the summary line is logged: {stderr}");

    // The environment variable does the same; an unknown format is refused.
    let out = Command::new(bindery_bin())
        .args(["replay"])
        .arg(workspace_root().join("examples/nginx.jsonl"))
        .env("BINDERY_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let first = String::from_utf8(out.stderr).unwrap();
    let first = first.lines().next().unwrap_or_default().to_string();
    assert!(serde_json::from_str::<Value>(&first).is_ok(), "{first}");
    let out = Command::new(bindery_bin())
        .args(["--log-format", "xml", "crds"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'xml'"));
}

/// The Helm chart's Deployment: its container's arguments and variables are accepted by
/// `bindery run` (which gets as far as reading the mounted WDS kubeconfig, or looking for
/// the in-cluster environment by default), and its probes and Service use the port it
/// listens on.
#[test]
fn the_charts_deployment_runs_bindery_with_probes_on_its_port() {
    for (values, reached) in [
        (
            vec![Set::Str("wds.kubeconfigSecret", "bindery-wds-kubeconfig")],
            "WDS: reading the kubeconfig /etc/bindery/wds/kubeconfig",
        ),
        (vec![], "WDS: "),
    ] {
        let docs = rendered(&values);
        let kind = |k: &str| {
            docs.iter()
                .find(|d| d["kind"] == k)
                .unwrap_or_else(|| panic!("no {k}"))
        };
        let container = &kind("Deployment")["spec"]["template"]["spec"]["containers"][0];
        let (args, vars) = chart_container(&values);
        let listen = args
            .iter()
            .find_map(|a| a.strip_prefix("--listen="))
            .expect("--listen");
        let port: u64 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
        assert_eq!(container["ports"][0]["containerPort"], port);
        assert_eq!(container["ports"][0]["name"], "metrics");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(container["readinessProbe"]["httpGet"]["port"], "metrics");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
        assert_eq!(kind("Service")["spec"]["ports"][0]["targetPort"], "metrics");

        let home = tempfile::tempdir().unwrap();
        let mut cmd = bare_command(home.path());
        cmd.args(&args).envs(vars);
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(reached), "{stderr}");
    }
}
