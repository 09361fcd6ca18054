//! Bindery's Helm chart (`deploy/chart/bindery`), rendered by a real `helm template` and
//! applied to real kube-apiservers (envtest): the default install validated by a
//! server-side dry-run in the WDS, the ITS's RBAC created in the ITS and checked with a
//! token of the identity it binds (with and without status return), status return's
//! flags, and values that make no sense refused with a reason.
//! (`live::scenarios::rbac::wds_rbac_manifest_suffices` runs Bindery with the WDS RBAC the
//! chart renders.)

use bindery_tests::chart::{self, Set};
use bindery_tests::control_plane::{self, res};
use bindery_tests::objects::{self, namespace};
use bindery_tests::world::World;
use kube::api::PostParams;
use serde_json::{Value, json};

const NS: &str = "bindery-system";

fn kinds(yaml: &str) -> Vec<String> {
    chart::documents(yaml)
        .into_iter()
        .map(|(kind, name, _)| format!("{kind}/{name}"))
        .collect()
}

fn document<'a>(docs: &'a [(String, String, String)], kind: &str) -> &'a str {
    &docs
        .iter()
        .find(|(k, _, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
        .2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_install_renders_and_a_real_api_server_accepts_it() {
    let yaml = chart::render(NS, &[Set::Str("metrics.serviceMonitor.enabled", "true")]).unwrap();
    assert_eq!(
        kinds(&yaml),
        [
            "Namespace/kubestellar-report",
            "ServiceAccount/bindery",
            "ConfigMap/bindery-dashboard",
            "ClusterRole/bindery",
            "ClusterRoleBinding/bindery",
            "Role/bindery-events",
            "Role/bindery-leader-election",
            "RoleBinding/bindery-events",
            "RoleBinding/bindery-leader-election",
            "Service/bindery-metrics",
            "Deployment/bindery",
            "ServiceMonitor/bindery",
        ],
        "rendered:\n{yaml}"
    );
    let docs = chart::documents(&yaml);
    let deployment = document(&docs, "Deployment");
    for wanted in [
        "replicas: 2",
        "- --leader-elect\n",
        "- --leader-elect-lease-namespace=bindery-system",
        "- --its-kubeconfig=/etc/bindery/its/kubeconfig",
        "- --listen=0.0.0.0:9477",
        "- --policy-events=true",
        "- --install-crds=true",
        "- --status-return=true",
        "- --max-binding-bytes=1572864",
        "path: /readyz",
        "path: /livez",
        "fieldPath: metadata.name",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(
            deployment.contains(wanted),
            "the Deployment lacks {wanted:?}:\n{deployment}"
        );
    }
    // In-cluster WDS by default: no WDS kubeconfig, the ServiceAccount token mounted.
    assert!(!deployment.contains("--wds-kubeconfig"), "{deployment}");
    // No WDS name by default (Bindery then turns status return off, saying so).
    assert!(!deployment.contains("--wds-name"), "{deployment}");
    assert!(
        deployment.contains("automountServiceAccountToken: true"),
        "{deployment}"
    );

    // The dashboard ConfigMap carries the dashboard file unchanged.
    let w = World::start().await;
    control_plane::install_crds(
        &w.wds,
        &[objects::simple_crd(
            "monitoring.coreos.com",
            "ServiceMonitor",
            "servicemonitors",
            true,
        )],
    )
    .await
    .unwrap();
    w.namespace(NS, json!({})).await;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let accepted = control_plane::create_yaml_with(&w.wds, &yaml, &dry_run)
        .await
        .unwrap();
    assert_eq!(accepted.len(), docs.len(), "every document was accepted");
    let configmap = accepted
        .iter()
        .find(|o| o["kind"] == "ConfigMap")
        .expect("the dashboard ConfigMap");
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(chart::chart_dir().join("dashboards/bindery.json")).unwrap(),
    )
    .unwrap();
    let rendered: Value =
        serde_json::from_str(configmap["data"]["bindery.json"].as_str().unwrap()).unwrap();
    assert_eq!(rendered, shipped);
    assert_eq!(configmap["metadata"]["labels"]["grafana_dashboard"], "1");
    // The Deployment the server admitted runs `bindery run` with the probes on the port.
    let admitted = accepted.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let container = &admitted["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"][0], "run");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(container["ports"][0]["containerPort"], 9477);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_wds_gets_its_kubeconfig_from_a_secret_and_no_token() {
    let yaml = chart::render(
        NS,
        &[
            Set::Str("wds.kubeconfigSecret", "bindery-wds-kubeconfig"),
            Set::Str("wds.context", "wds1"),
            Set::Str("rbac.wds.create", "false"),
            Set::Str("replicas", "1"),
            Set::Str("leaderElection.enabled", "false"),
        ],
    )
    .unwrap();
    assert_eq!(
        kinds(&yaml),
        [
            "ServiceAccount/bindery",
            "ConfigMap/bindery-dashboard",
            "Service/bindery-metrics",
            "Deployment/bindery",
        ]
    );
    let docs = chart::documents(&yaml);
    let deployment = document(&docs, "Deployment");
    for wanted in [
        "- --wds-kubeconfig=/etc/bindery/wds/kubeconfig",
        "- --wds-context=wds1",
        "secretName: bindery-wds-kubeconfig",
        "automountServiceAccountToken: false",
        "type: Recreate",
    ] {
        assert!(
            deployment.contains(wanted),
            "lacks {wanted:?}:\n{deployment}"
        );
    }
    assert!(!deployment.contains("--leader-elect"), "{deployment}");
}

#[test]
fn status_return_flags_follow_the_values() {
    let deployment = |sets: &[Set]| {
        let yaml = chart::render(NS, sets).unwrap();
        document(&chart::documents(&yaml), "Deployment").to_string()
    };
    let on = deployment(&[Set::Str("run.wdsName", "wds1")]);
    for wanted in ["- --status-return=true\n", "- --wds-name=wds1\n"] {
        assert!(on.contains(wanted), "lacks {wanted:?}:\n{on}");
    }
    let off = deployment(&[
        Set::Str("run.statusReturn", "false"),
        Set::Str("run.wdsName", "wds1"),
    ]);
    assert!(off.contains("- --status-return=false\n"), "{off}");
    // The WDS ClusterRole may patch workload objects and their status only with it on.
    let cluster_role = |sets: &[Set]| -> Value {
        let yaml = chart::render(NS, sets).unwrap();
        let docs = chart::documents(&yaml);
        let (_, _, text) = docs
            .iter()
            .find(|(kind, name, _)| kind == "ClusterRole" && !name.contains("inventory"))
            .expect("the WDS ClusterRole");
        serde_yaml_ng::from_str(text).unwrap()
    };
    let patches_status =
        |role: &Value| {
            role["rules"].as_array().unwrap().iter().any(|r| {
                r["resources"] == json!(["*", "*/status"]) && r["verbs"] == json!(["patch"])
            })
        };
    assert!(patches_status(&cluster_role(&[])));
    assert!(!patches_status(&cluster_role(&[Set::Str(
        "run.statusReturn",
        "false"
    )])));
    // CombinedStatuses are written, and their namespace for cluster-scoped objects is
    // rendered (Bindery may not create namespaces), only with it on.
    let writes_combined = |role: &Value| {
        role["rules"].as_array().unwrap().iter().any(|r| {
            r["resources"] == json!(["combinedstatuses"])
                && r["verbs"].as_array().unwrap().contains(&json!("delete"))
        })
    };
    assert!(writes_combined(&cluster_role(&[])));
    let off = [Set::Str("run.statusReturn", "false")];
    assert!(!writes_combined(&cluster_role(&off)));
    let report_namespace = |sets: &[Set]| {
        let yaml = chart::render(NS, sets).unwrap();
        chart::documents(&yaml)
            .iter()
            .any(|(kind, name, _)| kind == "Namespace" && name == "kubestellar-report")
    };
    assert!(report_namespace(&[]));
    assert!(!report_namespace(&off));
}

/// The ITS RBAC rendered with `sets` (and a ServiceAccount subject), as YAML.
fn its_rbac(sets: &[Set]) -> String {
    let mut all = vec![
        Set::Str("controller.enabled", "false"),
        Set::Str("rbac.wds.create", "false"),
        Set::Str("rbac.its.create", "true"),
        Set::Json(
            "rbac.its.subjects",
            json!([{"kind": "ServiceAccount", "name": "bindery-reader", "namespace": NS}]),
        ),
    ];
    for set in sets {
        all.push(match set {
            Set::Str(k, v) => Set::Str(k, v),
            Set::Json(k, v) => Set::Json(k, v.clone()),
        });
    }
    chart::render(NS, &all).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_its_rbac_grants_reading_managed_clusters_and_nothing_else() {
    let w = World::start().await;
    let its = &w.its;
    w.three_wecs().await;
    // Without status return first: no WorkStatuses.
    let yaml = its_rbac(&[Set::Str("run.statusReturn", "false")]);
    assert_eq!(
        kinds(&yaml),
        [
            "ClusterRole/bindery-inventory-reader",
            "ClusterRoleBinding/bindery-inventory-reader"
        ]
    );
    assert!(!yaml.contains("workstatuses"), "{yaml}");
    control_plane::apply(its, &res::namespaces(), namespace(NS, json!({})))
        .await
        .unwrap();
    control_plane::create_yaml(
        its,
        &format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: bindery-reader\n  namespace: {NS}\n"
        ),
    )
    .await
    .unwrap();
    control_plane::create_yaml(its, &yaml).await.unwrap();
    let token = control_plane::service_account_token(its, NS, "bindery-reader")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("its-reader.kubeconfig");
    control_plane::write_token_kubeconfig(&kubeconfig, "its", &w.env.its.url, &token).unwrap();
    let reader = control_plane::client(&kubeconfig).await;
    let wecs =
        kube::Api::<kube::api::DynamicObject>::all_with(reader.clone(), &res::managed_clusters())
            .list(&Default::default())
            .await
            .expect("the bound identity lists ManagedClusters");
    assert_eq!(wecs.items.len(), objects::THREE_WECS.len());
    let configmaps = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::all(reader.clone())
        .list(&Default::default())
        .await;
    assert!(
        matches!(&configmaps, Err(kube::Error::Api(s)) if s.code == 403),
        "nothing else is granted: {configmaps:?}"
    );
    let write =
        kube::Api::<kube::api::DynamicObject>::all_with(reader.clone(), &res::managed_clusters())
            .delete(objects::THREE_WECS[0].0, &Default::default())
            .await;
    assert!(
        matches!(&write, Err(kube::Error::Api(s)) if s.code == 403),
        "ManagedClusters are read only: {write:?}"
    );
    let work_statuses =
        || kube::Api::<kube::api::DynamicObject>::all_with(reader.clone(), &work_status_resource());
    let listed = work_statuses().list(&Default::default()).await;
    assert!(
        matches!(&listed, Err(kube::Error::Api(s)) if s.code == 403),
        "no WorkStatuses without status return: {listed:?}"
    );

    // With status return (the default): the same role reads WorkStatuses too.
    let yaml = its_rbac(&[]);
    let role = chart::documents(&yaml)
        .into_iter()
        .find(|(kind, _, _)| kind == "ClusterRole")
        .unwrap()
        .2;
    assert!(role.contains("resources: [\"workstatuses\"]"), "{role}");
    control_plane::delete(
        its,
        &control_plane::resource(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "clusterroles",
        ),
        None,
        "bindery-inventory-reader",
    )
    .await
    .unwrap();
    control_plane::create_yaml(its, &role).await.unwrap();
    control_plane::eventually(
        "the reader lists WorkStatuses",
        std::time::Duration::from_secs(30),
        || async {
            match work_statuses().list(&Default::default()).await {
                Ok(_) => Ok(Some(())),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
    .unwrap();
    let write = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        reader,
        "cluster1",
        &work_status_resource(),
    )
    .delete("any", &Default::default())
    .await;
    assert!(
        matches!(&write, Err(kube::Error::Api(s)) if s.code == 403),
        "WorkStatuses are read only: {write:?}"
    );
}

fn work_status_resource() -> kube::api::ApiResource {
    control_plane::resource(
        "control.kubestellar.io/v1alpha1",
        "WorkStatus",
        "workstatuses",
    )
}

#[test]
fn values_that_make_no_sense_are_refused_with_a_reason() {
    for (sets, reason) in [
        (
            vec![Set::Str("rbac.its.create", "true")],
            "rbac.its.subjects is required",
        ),
        (
            vec![Set::Str("leaderElection.enabled", "false")],
            "replicas > 1 needs leaderElection.enabled",
        ),
        (
            vec![Set::Str("its.kubeconfigSecret", "")],
            "its.kubeconfigSecret is required",
        ),
    ] {
        let err = chart::render(NS, &sets).expect_err(reason);
        assert!(
            format!("{err:#}").contains(reason),
            "expected {reason:?} in: {err:#}"
        );
    }
}
