//! Least privilege: the WDS RBAC the Helm chart renders suffices, and Bindery never reads
//! workload contents (the audit log).

use bindery_tests::control_plane::{self, res};
use bindery_tests::objects::{edge, namespace, nginx_spec};
use bindery_tests::world::{TAIL, World, fail, policy_events, stop};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// 7. Least privilege: the WDS RBAC the Helm chart renders suffices
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wds_rbac_manifest_suffices() {
    let w = World::start().await;
    w.three_wecs().await;
    // What `helm template` renders for a WDS that Bindery reaches with the chart's
    // ServiceAccount: `kubestellar-report` (status return), the account, the ClusterRole, the Events and Lease Roles, and their
    // bindings.
    let created = bindery_tests::chart::create_wds_rbac(&w.wds, "bindery-system")
        .await
        .unwrap();
    let kinds: Vec<&str> = created.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding"
        ]
    );
    let kubeconfig = w
        .wds_kubeconfig_as("bindery-system", "bindery", "bindery-sa.kubeconfig")
        .await;
    // The token works and is not an admin's.
    let sa = control_plane::client(&kubeconfig).await;
    let forbidden = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(sa.clone())
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(namespace("nope", json!({}))).unwrap(),
        )
        .await;
    assert!(
        matches!(&forbidden, Err(kube::Error::Api(s)) if s.code == 403),
        "the service account may not create namespaces: {forbidden:?}"
    );

    // The seed's nginx example, and a Secret whose contents must never reach Bindery.
    let (ns, dep, p) = w.nginx().await;
    const SECRET_VALUE: &str = "c2VjcmV0LW5ldmVyLXJlYWQtYnktYmluZGVyeQ==";
    w.wds(
        &control_plane::resource("v1", "Secret", "secrets"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "creds", "namespace": "nginx"},
               "data": {"password": SECRET_VALUE}}),
    )
    .await;

    // Bindery's requests from here on (before: the test's own, as the same account).
    let audit_from = std::fs::metadata(w.env.wds.audit_log()).map_or(0, |m| m.len() as usize);
    // With leader election: the account may take and renew its Lease.
    let mut bindery = w.bindery_as(
        &kubeconfig,
        "bindery.log",
        &[
            "--coalesce-ms",
            "100",
            "--leader-elect",
            "--leader-elect-lease-namespace",
            "bindery-system",
        ],
    );
    w.expect(
        &bindery,
        &p,
        &nginx_spec(&ns, Some(&dep), &["cluster1", "cluster2"]),
        "nginx Binding written with the service account",
    )
    .await;
    w.expect_ready(&bindery, "nginx").await;

    // A policy with a problem gets its Event, published with the account's rights.
    let broken = w
        .policy(
            "broken",
            edge(),
            json!([{"objectSelectors": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}]),
        )
        .await;
    let uid = broken.metadata.uid.clone().expect("a uid");
    policy_events(&w.wds, "broken", &uid, "PolicyProblem", "Warning", 1)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));

    // Changes keep flowing, and a deleted policy's Binding is deleted.
    w.wec("cluster3", "edge").await;
    w.expect(
        &bindery,
        &p,
        &nginx_spec(&ns, Some(&dep), &["cluster1", "cluster2", "cluster3"]),
        "cluster3 joins",
    )
    .await;
    w.delete(&res::binding_policies(), None, "nginx").await;
    w.expect_absent(&bindery, "nginx", "policy deleted: Binding deleted")
        .await;

    let log = bindery.log_text();
    for needle in ["forbidden", "Forbidden"] {
        assert!(
            !log.contains(needle),
            "the bindery log reports a permission problem ({needle}):\n{}",
            bindery.log_tail(TAIL)
        );
    }
    stop(&mut bindery);
    assert!(
        !log.contains(SECRET_VALUE),
        "a Secret's contents in the log"
    );

    // The audit log of every request Bindery made as the service account: workload is
    // only ever listed and watched, and every list answered metadata-only.
    let audit = std::fs::read_to_string(w.env.wds.audit_log()).unwrap();
    let audit = &audit[audit_from..];
    assert!(
        !audit.contains(SECRET_VALUE),
        "a Secret's contents reached Bindery"
    );
    let (mut lists, mut secret_requests, mut lease_requests, mut event_writes) = (0, 0, 0, 0);
    for line in audit.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["user"]["username"] != bindery_tests::envtest::AUDITED_USER
            || event["stage"] != "ResponseComplete"
        {
            continue;
        }
        let object = &event["objectRef"];
        let group = object["apiGroup"].as_str().unwrap_or("");
        let resource = object["resource"].as_str().unwrap_or("");
        let verb = event["verb"].as_str().unwrap_or("");
        if resource == "secrets" {
            secret_requests += 1;
        }
        if (group, resource) == ("coordination.k8s.io", "leases") {
            lease_requests += 1;
            assert!(
                matches!(verb, "get" | "create" | "update"),
                "Bindery sent {verb} to its Lease: {line}"
            );
            continue;
        }
        // Events on BindingPolicies: written, never read back.
        if (group, resource) == ("events.k8s.io", "events") {
            event_writes += 1;
            assert!(
                matches!(verb, "create" | "patch") && object["namespace"] == "default",
                "Bindery sent {verb} to events: {line}"
            );
            continue;
        }
        if matches!(group, "control.kubestellar.io" | "apiextensions.k8s.io") || resource.is_empty()
        {
            continue;
        }
        assert!(
            matches!(verb, "list" | "watch"),
            "Bindery sent {verb} to {group}/{resource}: {line}"
        );
        if verb == "list" && event["responseStatus"]["code"] == 200 {
            lists += 1;
            assert_eq!(
                event["responseObject"]["kind"], "PartialObjectMetadataList",
                "a list of {group}/{resource} that was not metadata-only: {line}"
            );
        }
    }
    assert!(lists > 5, "only {lists} workload lists audited");
    assert!(secret_requests > 0, "Secrets were not watched at all");
    assert!(lease_requests > 0, "the Lease was never taken");
    assert!(event_writes > 0, "no Event was written");
}
