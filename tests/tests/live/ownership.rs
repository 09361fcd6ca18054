//! `bindery run` beside other writers of Bindings, on real kube-apiservers (envtest):
//! taking over Bindings that KubeStellar's controller wrote (Update, field manager
//! `Binding`), leaving alone Bindings no BindingPolicy owns, deleting those whose policy
//! is gone, restoring a managed Binding another writer edits or deletes, finishing the
//! deletion of a policy that carries KubeStellar's finalizer, and writing a Binding of
//! 10,000 objects (which a server-side apply could not store) or, over the size limit,
//! reporting it in the policy's status while the other Bindings are written.

use std::collections::BTreeSet;
use std::time::Duration;

use bindery_tests::control_plane::{self, BindingHistory, eventually, res, rv};
use bindery_tests::free_listen_address;
use bindery_tests::metrics::{self, value as metric};
use bindery_tests::objects::{
    configmap, destinations, edge, entry, labelled, namespaced_entries, owners, policy, spec,
};
use bindery_tests::world::{SETTLE, World, fail, stop};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use serde_json::{Value, json};

const KS_FINALIZER: &str = "bindingpolicy.kubestellar.io/kscontroller";

/// A Binding as another controller writes it (KubeStellar: a create, then Updates, field
/// manager `Binding`), owned as `owner` says.
fn foreign_binding(name: &str, owner: Option<(&str, &str)>, spec: Value) -> DynamicObject {
    let mut b = json!({"apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
                       "metadata": {"name": name}, "spec": spec});
    if let Some((policy, uid)) = owner {
        b["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "BindingPolicy",
            "name": policy, "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
    }
    serde_json::from_value(b).unwrap()
}

fn as_manager(manager: &str) -> PostParams {
    PostParams {
        field_manager: Some(manager.into()),
        ..PostParams::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_from_another_writer_drift_unmanaged_bindings_and_kubestellars_finalizer() {
    let w = World::start().await;
    let wds = &w.wds;
    w.three_wecs().await;
    let cms = res::configmaps();
    w.namespace("app", json!({})).await;
    let cm_a = w.configmap("app", "a", json!({"app": "web"})).await;
    let cm_b = w.configmap("app", "b", json!({"app": "other"})).await;
    // The policy as a WDS that KubeStellar's controller ran on has it: with its finalizer.
    let web = labelled(&["configmaps"], json!({"app": "web"}));
    let mut with_finalizer = policy("web", edge(), json!([web]));
    with_finalizer["metadata"]["finalizers"] = json!([KS_FINALIZER]);
    let policy = w.wds(&res::binding_policies(), with_finalizer).await;
    let uid = policy.metadata.uid.clone().unwrap();

    // KubeStellar's controller wrote the policy's Binding with Update: an extra WEC and an
    // extra object that Bindery must remove although field manager `Binding` owns them.
    let bindings: Api<DynamicObject> = Api::all_with(wds.clone(), &res::bindings());
    let stale = spec(
        vec![entry(&cms, &cm_a), entry(&cms, &cm_b)],
        &["cluster1", "cluster2", "cluster3"],
    );
    bindings
        .create(
            &as_manager("Binding"),
            &foreign_binding("web", Some(("web", &uid)), stale),
        )
        .await
        .unwrap();
    // A Binding a person maintains (no owner, no policy of its name): never touched.
    let handmade = json!({"destinations": destinations(&["cluster3"]), "workload": {}});
    let handmade = bindings
        .create(
            &as_manager("person"),
            &foreign_binding("handmade", None, handmade),
        )
        .await
        .unwrap();
    // A Binding whose owning policy is gone: deleted.
    let orphan = json!({"destinations": destinations(&["cluster1"]), "workload": {}});
    bindings
        .create(
            &as_manager("Binding"),
            &foreign_binding(
                "orphan",
                Some(("orphan", "uid-of-a-deleted-policy")),
                orphan,
            ),
        )
        .await
        .unwrap();

    let history = BindingHistory::start(wds).await.unwrap();
    let (listen, base) = free_listen_address();
    let mut bindery = w.bindery_with(
        "bindery.log",
        &["--coalesce-ms", "100", "--listen", &listen],
    );

    let want = |clusters: &[&str]| spec(vec![entry(&cms, &cm_a)], clusters);
    let expect = |spec: Value, what: &'static str| {
        let (w, bindery) = (&w, &bindery);
        async move {
            w.expect_spec(bindery, "web", &spec, what, SETTLE).await;
        }
    };
    expect(
        want(&["cluster1", "cluster2"]),
        "adopted: the other writer's extra WEC and object are gone",
    )
    .await;
    let adopted = w.get(&res::bindings(), None, "web").await.unwrap();
    let adopted_owners = serde_json::to_value(&adopted.metadata.owner_references).unwrap();
    assert_eq!(adopted_owners, owners(&policy));
    w.expect_absent(
        &bindery,
        "orphan",
        "the Binding whose policy is gone is deleted",
    )
    .await;

    // The case that left Bindings wrong for good: a WEC relabel removes a destination
    // whose list entry field manager `Binding` still owns.
    w.wec("cluster1", "core").await;
    expect(want(&["cluster2"]), "a WEC relabel removes the destination").await;

    // Drift: another writer edits the spec (Update, as KubeStellar would), then deletes it.
    let mut edited = w.get(&res::bindings(), None, "web").await.unwrap();
    edited.data["spec"]["destinations"] = destinations(&["cluster2", "cluster3"]);
    bindings
        .replace("web", &as_manager("Binding"), &edited)
        .await
        .unwrap();
    expect(want(&["cluster2"]), "an edited managed Binding is restored").await;
    bindings
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    expect(
        want(&["cluster2"]),
        "a deleted managed Binding is re-created",
    )
    .await;

    // An unmanaged Binding created while Bindery runs is left alone too.
    let late = json!({"destinations": destinations(&["cluster1"]), "workload": {}});
    let late = bindings
        .create(&as_manager("person"), &foreign_binding("late", None, late))
        .await
        .unwrap();

    let metrics = eventually("drift in /metrics", SETTLE, || async {
        let body = metrics::scrape(&base).map_err(|e| e.to_string())?;
        let drift = metric(&body, "bindery_binding_drift_total");
        let unmanaged = metric(&body, "bindery_unmanaged_bindings");
        if drift >= 2.0 && unmanaged == 2.0 {
            Ok(Some(body))
        } else {
            Err(format!("drift {drift}, unmanaged {unmanaged}"))
        }
    })
    .await
    .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    assert!(metric(&metrics, "bindery_binding_drift_total") >= 2.0);
    w.step("drift and unmanaged Bindings counted: ok");

    // Deleting the policy completes although KubeStellar's finalizer is on it.
    let policies: Api<DynamicObject> = Api::all_with(wds.clone(), &res::binding_policies());
    policies
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the policy is gone", SETTLE, || async {
        match control_plane::get(wds, &res::binding_policies(), None, "web").await {
            Ok(None) => Ok(Some(())),
            Ok(Some(p)) => Err(format!("finalizers {:?}", p.metadata.finalizers)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    let what = "a policy with KubeStellar's finalizer is deleted, and its Binding";
    w.expect_absent(&bindery, "web", what).await;

    // The unmanaged Bindings were never written.
    for (name, before) in [("handmade", &handmade), ("late", &late)] {
        let now = w
            .get(&res::bindings(), None, name)
            .await
            .expect("still there");
        assert_eq!(rv(&now), rv(before), "{name} was written");
    }
    assert!(history.of("handmade").len() == 1 && history.of("late").len() == 1);
    // No version of the Binding ever lacked what the policy selected all along.
    for seen in history.of("web") {
        if seen.event == "DELETED" {
            continue;
        }
        let dests = seen.spec["destinations"].to_string();
        let workload = seen.spec["workload"].to_string();
        assert!(
            dests.contains("cluster2") && workload.contains(&rv(&cm_a)),
            "a version of Binding web dropped what was selected: {seen:?}"
        );
    }
    stop(&mut bindery);
}

/// Creates `n` ConfigMaps `cm-00000`... labelled `bulk: yes` in namespace `ns`, 32 at a time.
async fn bulk_configmaps(wds: &kube::Client, ns: &str, n: usize) -> Vec<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(wds.clone(), ns, &res::configmaps());
    let created: Vec<DynamicObject> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let obj: DynamicObject = serde_json::from_value(configmap(
                    ns,
                    &format!("cm-{i:05}"),
                    json!({"bulk": "yes"}),
                ))
                .unwrap();
                api.create(&PostParams::default(), &obj).await.unwrap()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_of_ten_thousand_objects_is_written_and_one_over_the_limit_is_reported() {
    const N: usize = 10_000;
    let w = World::start().await;
    let wds = &w.wds;
    w.three_wecs().await;
    w.namespace("bulk", json!({})).await;
    let cms = bulk_configmaps(wds, "bulk", N).await;
    w.step(&format!("{N} ConfigMaps created"));
    let wanted: BTreeSet<String> = cms
        .iter()
        .map(|c| format!("{}@{}", c.metadata.name.clone().unwrap(), rv(c)))
        .collect();
    let bulk = |value: &str| json!([labelled(&["configmaps"], json!({"bulk": value}))]);
    w.policy("all", edge(), bulk("yes")).await;
    w.policy("none", edge(), bulk("no")).await;

    // Over a (deliberately small) limit: not sent, reported, and the other Binding written.
    let mut bindery = w.bindery_with(
        "bindery-limited.log",
        &["--coalesce-ms", "100", "--max-binding-bytes", "500000"],
    );
    let empty = spec(vec![], &["cluster1", "cluster2"]);
    w.expect_spec(&bindery, "none", &empty, "Binding none", SETTLE)
        .await;
    let (_, status) = w
        .settled_status(&bindery, "all", |status| {
            if status["errors"]
                .to_string()
                .contains("more than the 500000 bytes")
            {
                Ok(())
            } else {
                Err("no size problem reported".into())
            }
        })
        .await;
    let stored = w.get(&res::bindings(), None, "all").await;
    assert!(stored.is_none(), "{status}");
    let ready = &status["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("False"))
    );
    // Not written: the SYNCED column says False, with the reason KubeStellar uses.
    let synced = &status["conditions"][1];
    assert_eq!(
        (
            synced["type"].as_str(),
            synced["status"].as_str(),
            synced["reason"].as_str()
        ),
        (Some("Synced"), Some("False"), Some("ReconcileError"))
    );
    assert!(
        synced["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than the 500000 bytes")),
        "{status}"
    );
    stop(&mut bindery);
    w.step("over the limit: reported, not sent");

    // With the default limit the 10,000-entry Binding is stored (about 1.2 MB of spec;
    // the API server drops the managedFields that would not fit, which it never does for
    // a server-side apply).
    let mut bindery = w.bindery("bindery.log");
    let binding = eventually(
        "Binding all with every ConfigMap",
        Duration::from_secs(120),
        || async {
            let b = w
                .get(&res::bindings(), None, "all")
                .await
                .ok_or("no Binding")?;
            let json = serde_json::to_value(&b).unwrap();
            let got: BTreeSet<String> = namespaced_entries(&json["spec"]).into_iter().collect();
            if got == wanted {
                Ok(Some(json))
            } else {
                Err(format!("{} entries of {N}", got.len()))
            }
        },
    )
    .await
    .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    assert_eq!(
        binding["spec"]["destinations"],
        destinations(&["cluster1", "cluster2"])
    );
    let size = binding["spec"].to_string().len();
    w.step(&format!(
        "Binding of {N} entries written: {size} bytes of spec"
    ));
    assert!(size > 1_000_000, "{size}");
    // And its policy is ready again.
    w.settled_status(&bindery, "all", |status| {
        match status["errors"].as_array() {
            Some(errors) if !errors.is_empty() => Err(format!("errors {errors:?}")),
            _ => Ok(()),
        }
    })
    .await;
    stop(&mut bindery);
}
