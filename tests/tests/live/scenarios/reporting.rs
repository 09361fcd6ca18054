//! Bad input reported: invalid selectors in the status and in Events, while the other
//! policies keep working.

use bindery_tests::control_plane::res;
use bindery_tests::objects::{edge, entry, labelled, spec};
use bindery_tests::world::{World, condition, fail, policy_events, stop};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// 6. Invalid selectors are reported; other policies keep working
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_selector_is_reported_and_other_policies_keep_working() {
    let w = World::start().await;
    w.three_wecs().await;
    let (deps, cms) = (res::deployments(), res::configmaps());
    w.namespace("ns-a", json!({})).await;
    let d = w.deployment("ns-a", "web", json!({"app": "web"})).await;
    let c = w.configmap("ns-a", "web", json!({"app": "web"})).await;

    // `In` without values: the CRD admits it (objectSelectors are plain label
    // selectors), Kubernetes' selector rules make it invalid.
    let invalid = json!({"matchExpressions": [{"key": "app", "operator": "In"}]});
    let web = json!({"app": "web"});
    let bad_downsync = |first_selector: Value| {
        json!([{"resources": ["configmaps"], "objectSelectors": [first_selector]},
               labelled(&["deployments"], web.clone())])
    };
    let bad = w.policy("bad", edge(), bad_downsync(invalid)).await;
    let good = w
        .policy("good", edge(), json!([labelled(&[], web.clone())]))
        .await;
    let dests = ["cluster1", "cluster2"];

    let mut bindery = w.bindery("bindery.log");
    // The invalid selector matches nothing; the policy's other clause still works.
    w.expect(
        &bindery,
        &bad,
        &spec(vec![entry(&deps, &d)], &dests),
        "bad: only its valid clause selects",
    )
    .await;
    w.expect(
        &bindery,
        &good,
        &spec(vec![entry(&deps, &d), entry(&cms, &c)], &dests),
        "good",
    )
    .await;
    let (_, status) = w
        .settled_status(&bindery, "bad", |s| {
            let errors = s["errors"].as_array().ok_or("no errors")?;
            if errors.len() != 1 {
                return Err(format!("{} errors", errors.len()));
            }
            Ok(())
        })
        .await;
    let error = status["errors"][0].as_str().unwrap().to_string();
    assert!(
        error.starts_with("spec.downsync[0].objectSelectors[0]: invalid label selector")
            && error.contains("matchExpressions[0]")
            && error.contains("needs at least one value"),
        "the error names the selector and what is wrong with it: {error}"
    );
    let ready = condition(&status, "Ready")
        .expect("a Ready condition")
        .clone();
    assert_eq!(ready["status"], "False", "{ready}");
    assert_eq!(ready["reason"], "Problems", "{ready}");
    assert_eq!(ready["message"], json!(error), "{ready}");
    assert!(
        ready["lastTransitionTime"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(status["observedGeneration"], 1);
    w.expect_ready(&bindery, "good").await;

    // A Warning Event on the policy says the same (what `kubectl describe` shows).
    let uid = bad.metadata.uid.clone().expect("a uid");
    let notes = policy_events(&w.wds, "bad", &uid, "PolicyProblem", "Warning", 1)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    assert_eq!(notes, std::slice::from_ref(&error));

    // The good policy follows changes while the bad one is reported.
    let c2 = w.configmap("ns-a", "web-2", json!({"app": "web"})).await;
    w.expect(
        &bindery,
        &good,
        &spec(
            vec![entry(&deps, &d), entry(&cms, &c), entry(&cms, &c2)],
            &dests,
        ),
        "good follows a new object",
    )
    .await;

    // Fixing the selector clears the error and the condition.
    let fixed = json!({"matchLabels": web});
    let bad = w.policy("bad", edge(), bad_downsync(fixed)).await;
    w.expect(
        &bindery,
        &bad,
        &spec(
            vec![entry(&deps, &d), entry(&cms, &c), entry(&cms, &c2)],
            &dests,
        ),
        "bad fixed",
    )
    .await;
    let status = w.expect_ready(&bindery, "bad").await;
    assert_eq!(status["observedGeneration"], 2);
    assert!(status.get("errors").is_none(), "{status}");
    policy_events(&w.wds, "bad", &uid, "ProblemsResolved", "Normal", 1)
        .await
        .unwrap_or_else(|e| fail(&bindery, &e.to_string()));
    // The good policy never had a problem: no Event.
    let good_uid = good.metadata.uid.clone().expect("a uid");
    let none = policy_events(&w.wds, "good", &good_uid, "PolicyProblem", "Warning", 0).await;
    assert!(none.is_ok_and(|n| n.is_empty()));

    stop(&mut bindery);
}
