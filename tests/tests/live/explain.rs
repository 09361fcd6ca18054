//! `bindery explain` and `bindery dry-run` against real kube-apiservers (envtest): the
//! state they work on is a snapshot of the live WDS and ITS (`bindery::read_until_synced`), and
//! nothing is written to either server.
//!
//! One control plane for every assertion (starting one takes most of the time): WECs,
//! namespaces, objects and a policy are created once; then explain (JSON and text), the
//! dry-run of an edited and of a new policy, and the errors.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use bindery::{LiveSource, StateSource};
use bindery_ingest::{EventType, RelistTracker};
use bindery_tests::control_plane::{self, res, rv};
use bindery_tests::envtest::{Envtest, free_port};
use bindery_tests::objects::{edge, entry, modulated, owners};
use bindery_tests::world::World;
use bindery_tests::{run_bindery, stderr, stdout_ok};
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};

/// Runs the bindery binary with `args` (off the async runtime's threads).
async fn bindery(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bindery(&args)
    })
    .await
    .expect("the bindery process")
}

/// The live-source arguments for the envtest servers.
fn live(env: &Envtest) -> Vec<String> {
    vec![
        "--wds-kubeconfig".into(),
        env.wds.kubeconfig.display().to_string(),
        "--its-kubeconfig".into(),
        env.its.kubeconfig.display().to_string(),
    ]
}

fn args(command: &str, env: &Envtest, extra: &[&str]) -> Vec<String> {
    let mut a = vec![command.to_string()];
    a.extend(live(env));
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// `bindery explain --policy POLICY --object OBJECT --cluster CLUSTER -o json` on the
/// envtest servers, parsed.
async fn explain_json(env: &Envtest, policy: &str, object: &str, cluster: &str) -> Value {
    let flags = [
        "--policy",
        policy,
        "--object",
        object,
        "--cluster",
        cluster,
        "-o",
        "json",
    ];
    let out = bindery(args("explain", env, &flags)).await;
    serde_json::from_str(&stdout_ok(&out, &format!("explain {object}"))).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn stored_bindings(wds: &kube::Client) -> Vec<String> {
    let api: Api<DynamicObject> = Api::all_with(wds.clone(), &res::bindings());
    api.list(&ListParams::default())
        .await
        .expect("listing Bindings")
        .items
        .into_iter()
        .filter_map(|b| b.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_dry_run_against_live_servers() {
    let w = World::start().await;
    let (env, wds) = (&w.env, &w.wds);
    let dir = tempfile::tempdir().unwrap();

    w.three_wecs().await;
    let (nss, deps, cms) = (res::namespaces(), res::deployments(), res::configmaps());
    w.namespace("ns-a", json!({"env": "prod"})).await;
    let ns_b = w.namespace("ns-b", json!({"env": "dev"})).await;
    let a_web = w.deployment("ns-a", "web", json!({"app": "web"})).await;
    w.deployment("ns-b", "web", json!({"app": "web"})).await;
    let a_cfg = w.configmap("ns-a", "cfg", json!({"app": "web"})).await;
    let policy = w
        .policy(
            "web",
            edge(),
            json!([{"apiGroup": "apps", "resources": ["deployments"],
                    "objectSelectors": [{"matchLabels": {"app": "web"}}],
                    "namespaceSelectors": [{"matchLabels": {"env": "prod"}}]}]),
        )
        .await;
    let uid = policy.metadata.uid.clone().unwrap();

    // --- The snapshot itself (the library): every resource synced, the policy in it.
    let mut events = Vec::new();
    let summary = bindery::read_until_synced(
        &LiveSource::new(&env.wds.kubeconfig, &env.its.kubeconfig),
        |e| {
            events.push(e);
            Ok(())
        },
    )
    .await
    .expect("a snapshot of the live servers");
    assert_eq!(summary.events, events.len() as u64);
    let mut tracker = RelistTracker::new();
    for e in &events {
        tracker.apply(e).unwrap();
    }
    assert!(tracker.all_synced(), "unsynced: {:?}", tracker.unsynced());
    assert_eq!(summary.resources, tracker.resource_count());
    assert!(summary.resources > 5, "{summary:?}");
    assert_eq!(events.last().unwrap().event_type, EventType::Synced);
    assert!(
        events
            .iter()
            .any(|e| e.resource.resource == "bindingpolicies"
                && e.object
                    .as_ref()
                    .is_some_and(|o| o["metadata"]["name"] == "web")),
        "the policy is in the snapshot"
    );

    // --- explain, JSON: selected, a destination, and the label that decides.
    let e = explain_json(env, "web", "apps/deployments/ns-a/web", "cluster1").await;
    assert_eq!(e["policy"], json!("web"));
    assert_eq!(e["uid"], json!(uid));
    assert_eq!(e["generation"], json!(1));
    assert_eq!(e["problems"], json!([]));
    assert_eq!(e["object"]["selected"], json!(true));
    assert_eq!(e["object"]["resourceVersion"], json!(rv(&a_web)));
    assert_eq!(e["object"]["labels"], json!({"app": "web"}));
    assert_eq!(e["cluster"]["destination"], json!(true));
    assert_eq!(
        e["cluster"]["selectors"][0]["requirements"],
        json!([{"test": "matchLabels location-group=edge", "held": true,
                "reason": "the cluster has location-group=edge"}])
    );

    // Not selected (its Namespace is env=dev), not a destination (location-group=core).
    let e = explain_json(env, "web", "apps/deployments/ns-b/web", "cluster3").await;
    assert_eq!(e["object"]["selected"], json!(false));
    let clause = &e["object"]["clauses"][0];
    assert_eq!(clause["passed"], json!(false));
    let failed: Vec<&Value> = clause["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["held"] == json!(false))
        .collect();
    assert_eq!(failed.len(), 1, "only the namespace test fails: {clause}");
    assert_eq!(failed[0]["test"], json!("namespaceSelectors"));
    assert_eq!(
        failed[0]["namespaceLabels"],
        json!({"env": "dev", "kubernetes.io/metadata.name": "ns-b"})
    );
    assert_eq!(
        failed[0]["selectors"][0]["requirements"],
        json!([{"test": "matchLabels env=prod", "held": false,
                "reason": "the Namespace ns-b has env=dev"}])
    );
    assert_eq!(e["cluster"]["destination"], json!(false));
    assert_eq!(
        e["cluster"]["selectors"][0]["requirements"][0]["reason"],
        json!("the cluster has location-group=core")
    );

    // --- explain, text: the policy overall, from the live state.
    let out = bindery(args("explain", env, &["--policy", "web"])).await;
    let text = stdout_ok(&out, "explain web");
    for want in [
        format!("BindingPolicy web (uid {uid}, generation 1)"),
        "destinations: 2 of 3 WECs".to_string(),
        "cluster1: matched by spec.clusterSelectors[0]".to_string(),
        "workload: 1 of ".to_string(),
        "spec.downsync[0]: selects 1".to_string(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }

    // --- dry-run of an edited policy: the exact Binding, and nothing written.
    let edited = write(
        dir.path(),
        "edited.yaml",
        "apiVersion: control.kubestellar.io/v1alpha1
kind: BindingPolicy
metadata:
  name: web
spec:
  clusterSelectors:
  - matchLabels: {location-group: edge}
  - matchLabels: {name: cluster3}
  downsync:
  - resources: [deployments, configmaps]
    objectSelectors: [{matchLabels: {app: web}}]
    namespaceSelectors: [{matchLabels: {env: prod}}]
    createOnly: true
  - resources: [namespaces]
    objectNames: [ns-b]
    statusCollectors: [sc]
",
    );
    let edited_arg = edited.display().to_string();
    let out = bindery(args(
        "dry-run",
        env,
        &["--policy-file", &edited_arg, "-o", "json"],
    ))
    .await;
    let binding: Value = serde_json::from_str(&stdout_ok(&out, "dry-run edited")).unwrap();
    assert_eq!(
        binding,
        json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "Binding",
            "metadata": {"name": "web", "ownerReferences": owners(&policy)},
            "spec": {
                "workload": {
                    "clusterScope": [modulated(entry(&nss, &ns_b), json!({"statusCollectors": ["sc"]}))],
                    "namespaceScope": [
                        modulated(entry(&cms, &a_cfg), json!({"createOnly": true})),
                        modulated(entry(&deps, &a_web), json!({"createOnly": true})),
                    ],
                },
                "destinations": [{"clusterId": "cluster1"}, {"clusterId": "cluster2"}, {"clusterId": "cluster3"}],
            },
        })
    );
    assert!(
        stderr(&out).contains("dry-run BindingPolicy \"web\": no problems"),
        "{}",
        stderr(&out)
    );

    // --api-groups restricts the workload as for `bindery run` (namespaces always).
    let out = bindery(args(
        "dry-run",
        env,
        &["--api-groups", "apps", "--policy-file", &edited_arg],
    ))
    .await;
    let binding: Value =
        serde_json::from_str(&stdout_ok(&out, "dry-run edited, apps only")).unwrap();
    assert_eq!(
        binding["spec"]["workload"],
        json!({
            "clusterScope": [modulated(entry(&nss, &ns_b), json!({"statusCollectors": ["sc"]}))],
            "namespaceScope": [modulated(entry(&deps, &a_web), json!({"createOnly": true}))],
        })
    );

    // --- dry-run of a new policy, as YAML: the `dry-run` uid, problems on stderr.
    let new = write(
        dir.path(),
        "new.yaml",
        r#"{"kind": "BindingPolicy", "metadata": {"name": "web-new"},
            "spec": {"clusterSelectors": [{"matchLabels": {"location-group": "core"}}],
                     "downsync": [{"resources": ["configmaps"], "namespaces": ["ns-a"],
                                   "wantSingletonReportedState": true},
                                  {"objectSelectors": [{"matchLabels": {"app": "no such"}}]}]}}"#,
    );
    let out = bindery(args(
        "dry-run",
        env,
        &["--policy-file", &new.display().to_string(), "-o", "yaml"],
    ))
    .await;
    let yaml = stdout_ok(&out, "dry-run new");
    let want_yaml = format!(
        "apiVersion: control.kubestellar.io/v1alpha1
kind: Binding
metadata:
  name: web-new
  ownerReferences:
  - apiVersion: control.kubestellar.io/v1alpha1
    kind: BindingPolicy
    name: web-new
    uid: dry-run
    controller: true
    blockOwnerDeletion: false
spec:
  workload:
    namespaceScope:
    - group: ''
      version: v1
      resource: configmaps
      namespace: ns-a
      name: cfg
      resourceVersion: '{}'
      wantSingletonReportedState: true
  destinations:
  - clusterId: cluster3
",
        rv(&a_cfg)
    );
    assert_eq!(yaml, want_yaml);
    let err = stderr(&out);
    assert!(
        err.contains("dry-run BindingPolicy \"web-new\": 1 problem(s):")
            && err.contains("spec.downsync[1].objectSelectors[0]: invalid label selector"),
        "{err}"
    );

    // Nothing was written: no Binding at all, the policy as it was, no new policy.
    assert_eq!(stored_bindings(wds).await, Vec::<String>::new());
    let now = control_plane::get(wds, &res::binding_policies(), None, "web")
        .await
        .unwrap()
        .expect("the policy still exists");
    assert_eq!(rv(&now), rv(&policy), "the policy was not modified");
    assert_eq!(now.metadata.generation, Some(1));
    assert_eq!(now.data["spec"], policy.data["spec"]);
    assert!(
        control_plane::get(wds, &res::binding_policies(), None, "web-new")
            .await
            .unwrap()
            .is_none()
    );

    // --- Errors name what and where.
    let out = bindery(args("explain", env, &["--policy", "nope"])).await;
    assert!(!out.status.success(), "an unknown policy fails");
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("no BindingPolicy named \"nope\"; existing policies: web")
            && err.contains(&env.wds.kubeconfig.display().to_string()),
        "{err}"
    );
    let out = bindery(args(
        "explain",
        env,
        &["--policy", "web", "--cluster", "cluster9"],
    ))
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "no WEC (ManagedCluster) named \"cluster9\"; existing WECs: cluster1, cluster2, cluster3"
        ),
        "{}",
        stderr(&out)
    );

    // A kubeconfig that cannot be read: named, with its space.
    let missing = dir.path().join("missing.kubeconfig");
    let out = bindery(vec![
        "explain".into(),
        "--wds-kubeconfig".into(),
        missing.display().to_string(),
        "--its-kubeconfig".into(),
        env.its.kubeconfig.display().to_string(),
        "--policy".into(),
        "web".into(),
    ])
    .await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "WDS: reading the kubeconfig {}",
            missing.display()
        )),
        "{err}"
    );

    // An ITS that never answers: the snapshot times out naming what never synced.
    let dead = dir.path().join("dead-its.kubeconfig");
    let url = format!("https://127.0.0.1:{}", free_port());
    control_plane::write_token_kubeconfig(&dead, "dead", &url, "t").unwrap();
    let mut a = vec!["dry-run".to_string()];
    a.extend([
        "--wds-kubeconfig".into(),
        env.wds.kubeconfig.display().to_string(),
        "--its-kubeconfig".into(),
        dead.display().to_string(),
        "--sync-timeout".into(),
        "3".into(),
        "--policy-file".into(),
        edited_arg.clone(),
    ]);
    let out = bindery(a).await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("not every watched resource synced within 3 s")
            && err.contains("its:cluster.open-cluster-management.io/v1/managedclusters")
            && err.contains(&dead.display().to_string()),
        "{err}"
    );

    // The library form of the same: the source names both kubeconfigs.
    let source = StateSource::Live(LiveSource {
        sync_timeout: Duration::from_secs(1),
        ..LiveSource::new(&env.wds.kubeconfig, &dead)
    });
    let err = tokio::task::spawn_blocking(move || bindery::load_state(&source))
        .await
        .unwrap()
        .unwrap_err();
    assert!(format!("{err:#}").contains("managedclusters"), "{err:#}");
}
