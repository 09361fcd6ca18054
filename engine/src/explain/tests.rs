//! Unit tests of the explanations, on the nginx example and small variations.

use super::*;
use crate::input::{Change, WorkloadRef};
use crate::policy::PolicySpec;
use serde_json::{Value, json};

fn labels(pairs: &[(&str, &str)]) -> LabelMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn object(o: &mut Oracle, group: &str, resource: &str, ns: &str, name: &str, l: &[(&str, &str)]) {
    o.apply(&Change::Workload {
        object: WorkloadRef {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
        },
        state: Some(WorkloadState {
            labels: labels(l),
            resource_version: "7".into(),
            ..Default::default()
        }),
    });
}

fn policy(o: &mut Oracle, name: &str, spec: Value) {
    o.apply(&Change::Policy {
        name: name.into(),
        policy: Some(PolicyInput {
            uid: format!("uid-{name}"),
            generation: 2,
            spec: PolicySpec::parse(Some(&spec)),
        }),
    });
}

/// The nginx example's state, with cluster3 still in the `core` group.
fn nginx() -> Oracle {
    let mut o = Oracle::default();
    for (c, g) in [
        ("cluster1", "edge"),
        ("cluster2", "edge"),
        ("cluster3", "core"),
    ] {
        o.apply(&Change::Wec {
            name: c.into(),
            labels: Some(labels(&[("location-group", g), ("name", c)])),
        });
    }
    let app = [("app.kubernetes.io/name", "nginx")];
    object(&mut o, "", "namespaces", "", "nginx", &app);
    object(&mut o, "", "namespaces", "", "default", &[]);
    object(
        &mut o,
        "apps",
        "deployments",
        "nginx",
        "nginx-deployment",
        &app,
    );
    object(
        &mut o,
        "apps",
        "deployments",
        "default",
        "other",
        &[("app", "other")],
    );
    object(&mut o, "", "configmaps", "nginx", "nginx-config", &app);
    policy(
        &mut o,
        "nginx",
        json!({
            "clusterSelectors": [{"matchLabels": {"location-group": "edge"}}],
            "downsync": [
                {"objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}], "resources": ["namespaces"]},
                {"createOnly": true, "objectSelectors": [{"matchLabels": {"app.kubernetes.io/name": "nginx"}}], "resources": ["deployments"]}
            ]
        }),
    );
    o
}

fn query(policy: &str, object: Option<&str>, cluster: Option<&str>) -> Query {
    Query {
        policy: policy.into(),
        object: object.map(|o| o.parse().unwrap()),
        cluster: cluster.map(Into::into),
    }
}

#[test]
fn object_keys_parse_and_print() {
    let k: ObjectKey = "/namespaces/nginx".parse().unwrap();
    assert_eq!(
        (
            k.group.as_str(),
            k.resource.as_str(),
            k.namespace.as_str(),
            k.name.as_str()
        ),
        ("", "namespaces", "", "nginx")
    );
    assert_eq!(k.to_string(), "/namespaces/nginx");
    let k: ObjectKey = "apps/deployments/nginx/nginx-deployment".parse().unwrap();
    assert_eq!(
        (k.namespace.as_str(), k.name.as_str()),
        ("nginx", "nginx-deployment")
    );
    assert_eq!(k.to_string(), "apps/deployments/nginx/nginx-deployment");
    for bad in [
        "",
        "nginx",
        "apps/deployments",
        "a/b/c/d/e",
        "apps//x",
        "apps/deployments/",
        "apps/deployments//x",
    ] {
        let err = bad.parse::<ObjectKey>().unwrap_err();
        assert!(
            matches!(err, ExplainError::MalformedObject { .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains("GROUP/RESOURCE"), "{err}");
    }
}

#[test]
fn cluster_selector_failure_names_the_label() {
    let o = nginx();
    let e = o.explain(&query("nginx", None, Some("cluster3"))).unwrap();
    let c = e.cluster.as_ref().unwrap();
    assert!(!c.destination);
    assert_eq!(c.selectors.len(), 1);
    assert_eq!(
        c.selectors[0].requirements,
        vec![Check {
            test: "matchLabels location-group=edge".into(),
            held: false,
            reason: "the cluster has location-group=core".into(),
        }]
    );
    let text = e.to_text();
    assert!(
        text.contains("cluster cluster3: not a destination"),
        "{text}"
    );
    assert!(
        text.contains("✗ matchLabels location-group=edge: the cluster has location-group=core"),
        "{text}"
    );
    let e = o.explain(&query("nginx", None, Some("cluster1"))).unwrap();
    assert!(e.cluster.unwrap().destination);
}

#[test]
fn object_clauses_are_explained_test_by_test() {
    let o = nginx();
    let e = o
        .explain(&query(
            "nginx",
            Some("apps/deployments/nginx/nginx-deployment"),
            None,
        ))
        .unwrap();
    let obj = e.object.as_ref().unwrap();
    assert!(obj.selected);
    assert!(obj.modulation.as_ref().unwrap().create_only);
    assert_eq!(obj.clauses.len(), 2);
    assert!(!obj.clauses[0].passed && obj.clauses[1].passed);
    let failed: Vec<&TestExplanation> = obj.clauses[0].tests.iter().filter(|t| !t.held).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].test, "resources");
    assert_eq!(
        failed[0].reason,
        "the object's resource \"deployments\" is not in [\"namespaces\"]"
    );
    let text = e.to_text();
    assert!(
        text.contains("✓ spec.downsync[1] selects it (modulation: createOnly)"),
        "{text}"
    );
    assert!(
        text.contains(
            "object apps/deployments/nginx/nginx-deployment: selected (modulation: createOnly)"
        ),
        "{text}"
    );
    assert!(
        text.contains("✗ spec.downsync[0] does not select it"),
        "{text}"
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["object"]["selected"], json!(true));
    assert_eq!(json["object"]["modulation"]["createOnly"], json!(true));
}

#[test]
fn namespace_selectors_explain_the_namespace() {
    let mut o = nginx();
    object(&mut o, "", "configmaps", "ghost", "c", &[]);
    policy(
        &mut o,
        "ns",
        json!({"downsync": [{"namespaceSelectors": [
            {"matchLabels": {"app.kubernetes.io/name": "nginx"}},
            {"matchExpressions": [{"key": "x", "operator": "In"}]}
        ]}]}),
    );
    let test = |obj: &str| {
        let e = o.explain(&query("ns", Some(obj), None)).unwrap();
        e.object.unwrap().clauses[0].tests[5].clone()
    };
    let t = test("/configmaps/nginx/nginx-config");
    assert!(t.held);
    assert_eq!(
        t.namespace_labels,
        Some(labels(&[("app.kubernetes.io/name", "nginx")]))
    );
    assert_eq!(t.selectors.len(), 2);
    assert!(
        t.selectors[1]
            .problem
            .as_deref()
            .unwrap()
            .contains("needs at least one value")
    );
    assert_eq!(
        t.reason,
        "matched by spec.downsync[0].namespaceSelectors[0]"
    );
    let t = test("apps/deployments/default/other");
    assert!(!t.held);
    assert_eq!(
        t.selectors[0].requirements[0].reason,
        "the Namespace default has no label app.kubernetes.io/name"
    );
    let t = test("/configmaps/ghost/c");
    assert!(!t.held);
    assert_eq!(t.reason, "the Namespace object \"ghost\" does not exist");
    let t = test("/namespaces/nginx");
    assert!(!t.held);
    assert!(
        t.reason.starts_with("cluster-scoped object"),
        "{}",
        t.reason
    );
}

#[test]
fn unreadable_clauses_keep_their_written_index() {
    let mut o = nginx();
    policy(
        &mut o,
        "odd",
        json!({
            "clusterSelectors": [{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, {}],
            "downsync": [{"resources": "configmaps"}, {"resources": ["configmaps"], "objectNames": ["*"]}]
        }),
    );
    let e = o
        .explain(&query(
            "odd",
            Some("/configmaps/nginx/nginx-config"),
            Some("cluster1"),
        ))
        .unwrap();
    let c = e.cluster.unwrap();
    assert!(c.destination);
    assert!(
        c.selectors[0]
            .problem
            .as_deref()
            .unwrap()
            .contains("takes no values")
    );
    assert!(c.selectors[1].empty && c.selectors[1].matches);
    let obj = e.object.unwrap();
    assert_eq!(obj.clauses[0].path, "spec.downsync[0]");
    assert!(!obj.clauses[0].passed);
    assert!(obj.clauses[0].problems[0].starts_with("cannot be read"));
    assert_eq!(obj.clauses[1].path, "spec.downsync[1]");
    assert!(obj.clauses[1].passed);
    assert!(obj.selected);
}

#[test]
fn overview_counts_destinations_and_objects() {
    let o = nginx();
    let e = o.explain(&query("nginx", None, None)).unwrap();
    let ov = e.overview.as_ref().unwrap();
    assert_eq!(
        ov.destinations,
        vec![
            DestinationMatch {
                cluster: "cluster1".into(),
                matched_by: vec!["spec.clusterSelectors[0]".into()],
            },
            DestinationMatch {
                cluster: "cluster2".into(),
                matched_by: vec!["spec.clusterSelectors[0]".into()],
            },
        ]
    );
    assert_eq!((ov.wecs, ov.objects, ov.selected), (3, 5, 2));
    assert_eq!(
        ov.clauses.iter().map(|c| c.selects).collect::<Vec<_>>(),
        vec![1, 1]
    );
    let text = e.to_text();
    assert!(text.contains("destinations: 2 of 3 WECs"), "{text}");
    assert!(text.contains("workload: 2 of 5 objects selected"), "{text}");
}

#[test]
fn errors_name_what_was_not_found() {
    let o = nginx();
    let err = o.explain(&query("nope", None, None)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no BindingPolicy named \"nope\"; existing policies: nginx"
    );
    let err = o
        .explain(&query("nginx", None, Some("cluster9")))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no WEC (ManagedCluster) named \"cluster9\"")
    );
    let err = o
        .explain(&query(
            "nginx",
            Some("apps/deployments/nginx-deployment"),
            None,
        ))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "object apps/deployments/nginx-deployment not found: there is no such workload object; \
         objects of that resource and name: apps/deployments/nginx/nginx-deployment"
    );
}

#[test]
fn verdicts_agree_with_the_oracle_on_the_example() {
    let o = nginx();
    let (dests, selected) = verdicts(&o, "nginx").unwrap();
    let b = o.binding("nginx").unwrap();
    assert_eq!(dests, b.destinations);
    let names: Vec<String> = selected.keys().map(ToString::to_string).collect();
    assert_eq!(
        names,
        vec![
            "/namespaces/nginx",
            "apps/deployments/nginx/nginx-deployment"
        ]
    );
}
