//! The generated CRDs (`bindery_api::crds`, `its_crds`): KubeStellar's names, scope,
//! subresources, list types, required fields and validations, node by node against
//! KubeStellar's own (`tests/data/kubestellar/crds.yaml`); valid structural schemas; and
//! the schemas accept the Bindings the engine renders and the BindingPolicies of the test
//! logs.

use std::collections::BTreeSet;
use std::path::Path;

use bindery_api::{self as crds, Binding, BindingPolicy};
use bindery_tests::{acceptance_cases, workspace_root};
use serde_json::{Value, json};

/// Every generated CRD as JSON: the WDS's five (`crds()`), then the test ITS's two.
fn crd_values() -> Vec<Value> {
    crds::crds()
        .iter()
        .chain(&crds::its_crds())
        .map(|crd| serde_json::to_value(crd).unwrap())
        .collect()
}

fn crd(name: &str) -> Value {
    crd_values()
        .into_iter()
        .find(|c| c["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no CRD {name}"))
}

fn schema(name: &str) -> Value {
    crd(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

const BP: &str = "bindingpolicies.control.kubestellar.io";
const BDG: &str = "bindings.control.kubestellar.io";
const CT: &str = "customtransforms.control.kubestellar.io";
const SC: &str = "statuscollectors.control.kubestellar.io";
const CS: &str = "combinedstatuses.control.kubestellar.io";
const MC: &str = "managedclusters.cluster.open-cluster-management.io";
const WS: &str = "workstatuses.control.kubestellar.io";

/// Follows a path of property names (`[]` steps into `items`) from a schema.
fn at<'a>(schema: &'a Value, path: &str) -> &'a Value {
    let mut s = schema;
    for step in path.split('.') {
        s = if step == "[]" {
            &s["items"]
        } else {
            &s["properties"][step]
        };
        assert!(s.is_object(), "no schema at {path} (step {step})");
    }
    s
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// The names of the `properties` of an object schema.
fn property_names(schema: &Value) -> BTreeSet<&str> {
    schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties in {schema}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn required(schema: &Value) -> BTreeSet<&str> {
    schema
        .get("required")
        .map(|r| strings(r).into_iter().collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// A small validator for the structural-schema subset the CRDs use
// ---------------------------------------------------------------------------------------

/// Validates `value` against `schema` roughly as the API server would (types, required
/// fields, unknown fields that would be pruned, `anyOf` of `required`, list-map key
/// uniqueness); patterns and formats are not checked. Returns the problems found.
fn validate(value: &Value, schema: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(value, schema, "", &mut errs);
    errs
}

fn check(value: &Value, schema: &Value, path: &str, errs: &mut Vec<String>) {
    let ty = schema["type"].as_str();
    let type_ok = match ty {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some(other) => {
            errs.push(format!("{path}: unknown schema type {other}"));
            return;
        }
        None => true,
    };
    if !type_ok {
        errs.push(format!("{path}: {value} is not of type {}", ty.unwrap()));
        return;
    }
    if let Some(obj) = value.as_object() {
        for r in required(schema) {
            if !obj.contains_key(r) {
                errs.push(format!("{path}: missing required field {r}"));
            }
        }
        if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array)
            && !any_of
                .iter()
                .any(|alt| required(alt).iter().all(|r| obj.contains_key(*r)))
        {
            errs.push(format!("{path}: matches no anyOf alternative"));
        }
        let props = schema.get("properties").and_then(Value::as_object);
        let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
        for (key, sub) in obj {
            let sub_path = format!("{path}.{key}");
            if let Some(prop) = props.and_then(|p| p.get(key)) {
                check(sub, prop, &sub_path, errs);
            } else if let Some(additional) = schema.get("additionalProperties") {
                check(sub, additional, &sub_path, errs);
            } else if !(preserve || (props.is_none() && path == ".metadata")) {
                errs.push(format!("{sub_path}: unknown field (would be pruned)"));
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check(item, &schema["items"], &format!("{path}[{i}]"), errs);
        }
        if schema["x-kubernetes-list-type"] == "map" {
            let keys = strings(&schema["x-kubernetes-list-map-keys"]);
            let mut seen = BTreeSet::new();
            for item in items {
                let tuple: Vec<String> = keys.iter().map(|k| item[*k].to_string()).collect();
                if !seen.insert(tuple.clone()) {
                    errs.push(format!("{path}: duplicate list-map key {tuple:?}"));
                }
            }
        }
    }
}

/// Every schema node in the tree: (path, node).
fn walk<'a>(schema: &'a Value, path: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.clone(), schema));
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            walk(sub, format!("{path}.{name}"), out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = schema.get(key).filter(|s| s.is_object()) {
            walk(sub, format!("{path}[{key}]"), out);
        }
    }
}

/// Whether any object anywhere in `v` has the key `key`.
fn has_key_anywhere(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.contains_key(key) || m.values().any(|x| has_key_anywhere(x, key)),
        Value::Array(a) => a.iter().any(|x| has_key_anywhere(x, key)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// The CRDs themselves
// ---------------------------------------------------------------------------------------

#[test]
fn names_scope_versions_and_subresources() {
    let names: Vec<Value> = crd_values()
        .iter()
        .map(|c| c["metadata"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        [BP, BDG, CT, SC, CS, MC, WS].map(|n| json!(n)).to_vec()
    );

    for (name, group, version, kind, plural, short) in [
        (
            BP,
            "control.kubestellar.io",
            "v1alpha1",
            "BindingPolicy",
            "bindingpolicies",
            vec!["bp"],
        ),
        (
            BDG,
            "control.kubestellar.io",
            "v1alpha1",
            "Binding",
            "bindings",
            vec!["bdg"],
        ),
        (
            MC,
            "cluster.open-cluster-management.io",
            "v1",
            "ManagedCluster",
            "managedclusters",
            vec!["mcl", "mcls"],
        ),
    ] {
        let c = crd(name);
        let spec = &c["spec"];
        assert_eq!(spec["group"], group, "{name}");
        assert_eq!(spec["scope"], "Cluster", "{name}");
        assert_eq!(spec["names"]["kind"], kind, "{name}");
        assert_eq!(spec["names"]["listKind"], format!("{kind}List"), "{name}");
        assert_eq!(spec["names"]["plural"], plural, "{name}");
        assert_eq!(spec["names"]["singular"], kind.to_lowercase(), "{name}");
        assert_eq!(strings(&spec["names"]["shortNames"]), short, "{name}");
        let versions = spec["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 1, "{name}");
        let v = &versions[0];
        assert_eq!(v["name"], version, "{name}");
        assert_eq!(
            (v["served"].clone(), v["storage"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(
            v["subresources"],
            json!({"status": {}}),
            "{name}: status subresource"
        );
        let root = &v["schema"]["openAPIV3Schema"];
        assert_eq!(root["type"], "object");
        for p in ["apiVersion", "kind", "metadata", "spec", "status"] {
            assert!(root["properties"][p].is_object(), "{name}: no {p}");
        }
        assert!(!required(root).contains("spec"), "{name}: spec is optional");
    }
}

#[test]
fn schemas_are_structural() {
    for c in crd_values() {
        let name = c["metadata"]["name"].as_str().unwrap().to_string();
        for key in [
            "$ref",
            "$defs",
            "definitions",
            "nullable",
            "default",
            "oneOf",
            "allOf",
        ] {
            assert!(!has_key_anywhere(&c, key), "{name}: has {key}");
        }
        let root = &c["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let mut nodes = Vec::new();
        walk(root, String::new(), &mut nodes);
        for (path, node) in nodes {
            // `metadata` is `{type: object}`; everything else says its type too, but for
            // a node that keeps any JSON (`x-kubernetes-preserve-unknown-fields`).
            let any_json = node["x-kubernetes-preserve-unknown-fields"] == true;
            assert!(
                node["type"].is_string() || any_json,
                "{name}{path}: no type"
            );
            if node.get("properties").is_some() || node.get("additionalProperties").is_some() {
                assert_eq!(node["type"], "object", "{name}{path}");
            }
            if node.get("items").is_some() {
                assert_eq!(node["type"], "array", "{name}{path}");
            }
            if node["type"] == "array" {
                assert!(
                    node["items"]["type"].is_string(),
                    "{name}{path}: untyped items"
                );
            }
            if let Some(any_of) = node.get("anyOf") {
                for alt in any_of.as_array().unwrap() {
                    let keys: Vec<&String> = alt.as_object().unwrap().keys().collect();
                    assert_eq!(keys, ["required"], "{name}{path}: anyOf may only require");
                }
            }
            // list-map keys must be required in the items.
            if node["x-kubernetes-list-type"] == "map" {
                let req = required(&node["items"]);
                for key in strings(&node["x-kubernetes-list-map-keys"]) {
                    assert!(
                        req.contains(key),
                        "{name}{path}: map key {key} not required"
                    );
                }
            }
        }
    }
}

#[test]
fn binding_policy_schema_matches_kubestellar() {
    let s = schema(BP);
    let spec = at(&s, "spec");
    let spec_fields: BTreeSet<&str> = property_names(spec);
    assert_eq!(
        spec_fields,
        BTreeSet::from(["clusterSelectors", "downsync"])
    );

    // clusterSelectors: atomic label selectors with KubeStellar's syntax patterns.
    let sel = at(&s, "spec.clusterSelectors.[]");
    assert_eq!(sel["x-kubernetes-map-type"], "atomic");
    let expr = at(&s, "spec.clusterSelectors.[].matchExpressions");
    assert_eq!(expr["x-kubernetes-list-type"], "atomic");
    assert_eq!(
        required(&expr["items"]),
        BTreeSet::from(["key", "operator"])
    );
    assert_eq!(
        at(&s, "spec.clusterSelectors.[].matchExpressions.[].key")["pattern"],
        crds::LABEL_KEY_PATTERN
    );
    assert_eq!(
        at(&s, "spec.clusterSelectors.[].matchExpressions.[].operator")["pattern"],
        "^(In|NotIn|Exists|DoesNotExist)$"
    );
    assert_eq!(
        at(&s, "spec.clusterSelectors.[].matchExpressions.[].values.[]")["pattern"],
        crds::LABEL_VALUE_PATTERN
    );
    assert_eq!(
        at(&s, "spec.clusterSelectors.[].matchLabels")["additionalProperties"]["pattern"],
        crds::LABEL_VALUE_PATTERN
    );

    // downsync clauses: the object test, the modulation, and "at least one test".
    let clause = at(&s, "spec.downsync.[]");
    let fields: BTreeSet<&str> = property_names(clause);
    assert_eq!(
        fields,
        BTreeSet::from([
            "apiGroup",
            "resources",
            "namespaces",
            "namespaceSelectors",
            "objectNames",
            "objectSelectors",
            "createOnly",
            "statusCollectors",
            "wantSingletonReportedState",
            "wantMultiWECReportedState",
        ])
    );
    assert!(required(clause).is_empty());
    let any_of: Vec<Vec<&str>> = clause["anyOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alt| strings(&alt["required"]))
        .collect();
    assert_eq!(
        any_of,
        [
            ["apiGroup"],
            ["resources"],
            ["namespaces"],
            ["namespaceSelectors"],
            ["objectSelectors"],
            ["objectNames"]
        ]
    );
    for f in [
        "createOnly",
        "wantSingletonReportedState",
        "wantMultiWECReportedState",
    ] {
        assert_eq!(clause["properties"][f]["type"], "boolean", "{f}");
    }
    // The other selectors are plain (KubeStellar patches only clusterSelectors).
    for f in ["namespaceSelectors", "objectSelectors"] {
        let key = at(
            &s,
            &format!("spec.downsync.[].{f}.[].matchExpressions.[].key"),
        );
        assert!(key.get("pattern").is_none(), "{f}");
        assert_eq!(
            at(&s, &format!("spec.downsync.[].{f}.[]"))["x-kubernetes-map-type"],
            "atomic"
        );
    }

    // status: KubeStellar's own condition type.
    let status = at(&s, "status");
    assert_eq!(required(status), BTreeSet::from(["observedGeneration"]));
    assert_eq!(at(&s, "status.observedGeneration")["format"], "int64");
    assert_eq!(at(&s, "status.errors.[]")["type"], "string");
    // One condition per type: a map list, so that a status apply keeps the conditions
    // of other types that other writers own.
    let conditions = at(&s, "status.conditions");
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    let cond = at(&s, "status.conditions.[]");
    assert_eq!(
        required(cond),
        BTreeSet::from(["type", "status", "lastTransitionTime", "reason", "message"])
    );
    assert_eq!(
        cond["properties"]["lastTransitionTime"]["format"],
        "date-time"
    );

    // printer columns.
    let cols: Vec<(Value, Value, Value)> =
        crd(BP)["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].clone(), c["type"].clone(), c["jsonPath"].clone()))
            .collect();
    assert_eq!(
        cols,
        [
            (
                json!("SYNCED"),
                json!("string"),
                json!(".status.conditions[?(@.type=='Synced')].status")
            ),
            (
                json!("READY"),
                json!("string"),
                json!(".status.conditions[?(@.type=='Ready')].status")
            ),
            (json!("TYPE"), json!("string"), json!(".spec.type")),
            (
                json!("AGE"),
                json!("date"),
                json!(".metadata.creationTimestamp")
            ),
        ]
    );
}

#[test]
fn binding_schema_matches_kubestellar() {
    let s = schema(BDG);
    let dest = at(&s, "spec.destinations");
    assert_eq!(dest["x-kubernetes-list-type"], "map");
    assert_eq!(strings(&dest["x-kubernetes-list-map-keys"]), ["clusterId"]);
    assert_eq!(required(&dest["items"]), BTreeSet::from(["clusterId"]));

    let modulation = [
        "createOnly",
        "statusCollectors",
        "wantSingletonReportedState",
        "wantMultiWECReportedState",
    ];
    for (list, keys, req) in [
        (
            "clusterScope",
            vec!["group", "resource", "name"],
            vec!["group", "version", "resource", "name", "resourceVersion"],
        ),
        (
            "namespaceScope",
            vec!["group", "resource", "namespace", "name"],
            vec![
                "group",
                "version",
                "resource",
                "namespace",
                "name",
                "resourceVersion",
            ],
        ),
    ] {
        let l = at(&s, &format!("spec.workload.{list}"));
        assert_eq!(l["x-kubernetes-list-type"], "map", "{list}");
        assert_eq!(strings(&l["x-kubernetes-list-map-keys"]), keys, "{list}");
        assert_eq!(
            required(&l["items"]),
            req.iter().copied().collect(),
            "{list}"
        );
        let fields: BTreeSet<&str> = property_names(&l["items"]);
        let want: BTreeSet<&str> = req.iter().chain(modulation.iter()).copied().collect();
        assert_eq!(fields, want, "{list}");
    }
    assert_eq!(
        required(at(&s, "status")),
        BTreeSet::from(["observedGeneration"])
    );
    assert!(at(&s, "status.conditions.[]")["properties"]["lastTransitionTime"].is_object());
    assert!(
        crd(BDG)["spec"]["versions"][0]
            .get("additionalPrinterColumns")
            .is_none()
    );
}

#[test]
fn managed_cluster_schema_is_permissive() {
    let s = schema(MC);
    assert_eq!(at(&s, "spec.hubAcceptsClient")["type"], "boolean");
    assert_eq!(at(&s, "spec")["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(
        at(&s, "status")["x-kubernetes-preserve-unknown-fields"],
        true
    );
    let wec = json!({
        "apiVersion": "cluster.open-cluster-management.io/v1",
        "kind": "ManagedCluster",
        "metadata": {"name": "cluster1", "labels": {"location-group": "edge"}},
        "spec": {"hubAcceptsClient": true, "leaseDurationSeconds": 60,
                 "taints": [{"key": "k", "effect": "NoSelect"}]},
        "status": {"conditions": [{"type": "ManagedClusterJoined", "status": "True"}]}
    });
    assert_eq!(validate(&wec, &s), Vec::<String>::new());
    // And with no spec at all (only the labels matter to Bindery).
    let bare = json!({"apiVersion": "cluster.open-cluster-management.io/v1",
                      "kind": "ManagedCluster", "metadata": {"name": "c"}});
    assert_eq!(validate(&bare, &s), Vec::<String>::new());
}

#[test]
fn yaml_streams_hold_the_crds_in_order() {
    for (crds, names) in [
        (crds::crds(), &[BP, BDG, CT, SC, CS][..]),
        (crds::its_crds(), &[MC, WS][..]),
    ] {
        let yaml = crds::to_yaml(&crds);
        assert_eq!(yaml, crds::to_yaml(&crds), "stable");
        let docs: Vec<&str> = yaml.split("---\n").collect();
        assert_eq!(docs.len(), names.len() + 1, "one document each, after ---");
        assert!(docs[0].is_empty());
        for (doc, name) in docs[1..].iter().zip(names) {
            assert!(doc.starts_with(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
            ));
            assert!(doc.contains(&format!("\n  name: {name}\n")), "{name}");
        }
        assert!(!yaml.contains("$ref"));
    }
}

// ---------------------------------------------------------------------------------------
// Node by node against KubeStellar's own CRDs
// ---------------------------------------------------------------------------------------

/// KubeStellar's five CRDs (`tests/data/kubestellar/crds.yaml`), by name.
fn kubestellars_crds() -> std::collections::BTreeMap<String, Value> {
    let path = workspace_root().join("tests/data/kubestellar/crds.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    text.split("\n---\n")
        .map(|doc| {
            let crd: Value = serde_yaml_ng::from_str(doc).unwrap();
            (crd["metadata"]["name"].as_str().unwrap().to_string(), crd)
        })
        .collect()
}

/// The differences between two schema nodes and everything under them, by path:
/// types, formats, required fields, list and map types, validations; descriptions
/// aside.
fn schema_differences(ours: &Value, theirs: &Value, path: &str, out: &mut Vec<String>) {
    for key in [
        "type",
        "format",
        "pattern",
        "enum",
        "minItems",
        "maxItems",
        "minLength",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "anyOf",
    ] {
        if ours.get(key) != theirs.get(key) {
            out.push(format!(
                "{path}: {key} {:?} vs KubeStellar's {:?}",
                ours.get(key),
                theirs.get(key)
            ));
        }
    }
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    // KubeStellar's roots do not require `spec`; neither do ours.
    if set(&ours["required"]) != set(&theirs["required"]) {
        out.push(format!(
            "{path}: required {:?} vs KubeStellar's {:?}",
            set(&ours["required"]),
            set(&theirs["required"])
        ));
    }
    let props = |v: &Value| -> BTreeSet<String> {
        v["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (a, b) = (props(ours), props(theirs));
    for missing in b.difference(&a) {
        out.push(format!("{path}.{missing}: missing (KubeStellar's has it)"));
    }
    for extra in a.difference(&b) {
        out.push(format!("{path}.{extra}: not in KubeStellar's"));
    }
    // `metadata` is `{type: object}` on both sides: what is inside is the API server's.
    for p in a
        .intersection(&b)
        .filter(|p| path.is_empty() || *p != "metadata")
    {
        schema_differences(
            &ours["properties"][p],
            &theirs["properties"][p],
            &format!("{path}.{p}"),
            out,
        );
    }
    for key in ["items", "additionalProperties"] {
        if ours.get(key).is_some() || theirs.get(key).is_some() {
            schema_differences(&ours[key], &theirs[key], &format!("{path}.{key}"), out);
        }
    }
}

/// The one deliberate difference: the policies' and Bindings' `status.conditions` are a
/// map list keyed by `type` (KubeStellar's are atomic), so that the server-side apply of
/// a policy's status by Bindery owns its conditions per type and another writer's
/// conditions stay (the conditions are one per type on both sides).
const DELIBERATE: [&str; 2] = [
    ".status.conditions: x-kubernetes-list-type Some(String(\"map\")) vs KubeStellar's None",
    ".status.conditions: x-kubernetes-list-map-keys Some(Array [String(\"type\")]) vs KubeStellar's None",
];

/// Installing Bindery's CRDs over KubeStellar's changes nothing that matters: the same
/// names, scope, printer columns and subresources, and every schema node alike (so no
/// field of a stored object is pruned, and no object KubeStellar accepts is refused),
/// but for [`DELIBERATE`].
#[test]
fn the_five_crds_match_kubestellars_own_node_by_node() {
    let theirs = kubestellars_crds();
    assert_eq!(
        theirs.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        [BP, BDG, CT, SC, CS].into_iter().collect::<BTreeSet<_>>()
    );
    for ours in crds::crds() {
        let ours = serde_json::to_value(&ours).unwrap();
        let name = ours["metadata"]["name"].as_str().unwrap().to_string();
        let theirs = &theirs[&name];
        let (o, t) = (&ours["spec"], &theirs["spec"]);
        for key in ["group", "scope"] {
            assert_eq!(o[key], t[key], "{name}: {key}");
        }
        for key in [
            "kind",
            "listKind",
            "plural",
            "singular",
            "shortNames",
            "categories",
        ] {
            assert_eq!(o["names"][key], t["names"][key], "{name}: names.{key}");
        }
        let (ov, tv) = (&o["versions"][0], &t["versions"][0]);
        for key in ["name", "served", "storage", "subresources"] {
            let want = if key == "subresources" && tv[key].is_null() {
                json!({})
            } else {
                tv[key].clone()
            };
            let got = if ov[key].is_null() {
                json!({})
            } else {
                ov[key].clone()
            };
            if key == "subresources" {
                assert_eq!(got, want, "{name}: {key}");
            } else {
                assert_eq!(ov[key], tv[key], "{name}: {key}");
            }
        }
        let columns = |v: &Value| -> Vec<(String, String, String)> {
            v["additionalPrinterColumns"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                            (s("name"), s("type"), s("jsonPath"))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(columns(ov), columns(tv), "{name}: printer columns");
        let mut differences = Vec::new();
        schema_differences(
            &ov["schema"]["openAPIV3Schema"],
            &tv["schema"]["openAPIV3Schema"],
            "",
            &mut differences,
        );
        let want: Vec<String> = if name == BP || name == BDG {
            DELIBERATE.map(String::from).to_vec()
        } else {
            Vec::new()
        };
        assert_eq!(differences, want, "{name}:\n{}", differences.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------
// The schemas accept what the engine renders and what the logs hold
// ---------------------------------------------------------------------------------------

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every Binding in a `List` file validates against the Binding schema and round-trips
/// through `bindery_api::Binding` unchanged.
fn check_bindings_file(path: &Path, s: &Value) -> usize {
    let list = read_json(path);
    let items = list["items"].as_array().unwrap();
    for item in items {
        let errs = validate(item, s);
        assert!(
            errs.is_empty(),
            "{}: {}: {errs:#?}",
            path.display(),
            item["metadata"]["name"]
        );
        let typed: Binding = serde_json::from_value(item.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            &serde_json::to_value(&typed).unwrap(),
            item,
            "{}",
            path.display()
        );
    }
    items.len()
}

#[test]
fn binding_schema_accepts_the_rendered_nginx_binding() {
    let s = schema(BDG);
    let path = workspace_root().join("examples/nginx.bindings.json");
    let list = read_json(&path);
    let item = &list["items"][0];

    // Every field path of the rendered Binding exists in the schema.
    fn paths(v: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, sub) in m {
                    let p = format!("{path}.{k}");
                    let sub_schema = &schema["properties"][k];
                    if path == ".metadata" {
                        continue; // metadata is the API server's, not the CRD's
                    }
                    assert!(sub_schema.is_object(), "{p} is not in the Binding schema");
                    out.push(p.clone());
                    paths(sub, sub_schema, &p, out);
                }
            }
            Value::Array(a) => a
                .iter()
                .for_each(|x| paths(x, &schema["items"], &format!("{path}[]"), out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    paths(item, &s, "", &mut found);
    for p in [
        ".spec.workload.clusterScope[].resourceVersion",
        ".spec.workload.namespaceScope[].namespace",
        ".spec.workload.namespaceScope[].createOnly",
        ".spec.destinations[].clusterId",
    ] {
        assert!(found.iter().any(|f| f == p), "{p} not exercised");
    }

    assert_eq!(check_bindings_file(&path, &s), 1);
}

#[test]
fn binding_schema_accepts_every_expected_acceptance_binding() {
    let s = schema(BDG);
    let mut n = 0;
    for (_, expected) in acceptance_cases() {
        n += check_bindings_file(&expected, &s);
    }
    assert!(n > 0);
}

/// `v` without the object fields that are `false` or `[]` (the typed form omits them).
fn without_empties(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| **x != json!(false) && **x != json!([]))
                .map(|(k, x)| (k.clone(), without_empties(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_empties).collect()),
        other => other.clone(),
    }
}

#[test]
fn binding_policy_schema_accepts_the_policies_of_the_logs() {
    let s = schema(BP);
    let mut logs = vec![workspace_root().join("examples/nginx.jsonl")];
    logs.extend(acceptance_cases().into_iter().map(|(log, _)| log));
    let mut n = 0;
    for log in logs {
        let text = std::fs::read_to_string(&log).unwrap();
        for (i, line) in text.lines().enumerate() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if event["resource"] != "bindingpolicies" || !event["object"]["spec"].is_object() {
                continue;
            }
            let obj = &event["object"];
            let errs = validate(obj, &s);
            assert!(errs.is_empty(), "{}:{}: {errs:#?}", log.display(), i + 1);
            let typed: BindingPolicy = serde_json::from_value(obj.clone())
                .unwrap_or_else(|e| panic!("{}:{}: {e}", log.display(), i + 1));
            assert_eq!(
                without_empties(&serde_json::to_value(&typed).unwrap()["spec"]),
                without_empties(&obj["spec"]),
                "{}:{}",
                log.display(),
                i + 1
            );
            n += 1;
        }
    }
    assert!(n > 100, "only {n} policies found");
}

#[test]
fn the_validator_rejects_what_the_api_server_would() {
    let s = schema(BDG);
    let good = json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
        "metadata": {"name": "b"},
        "spec": {"workload": {"clusterScope": [{"group": "", "version": "v1",
            "resource": "namespaces", "name": "ns", "resourceVersion": "1"}]},
            "destinations": [{"clusterId": "c1"}]}
    });
    assert_eq!(validate(&good, &s), Vec::<String>::new());

    let mut unknown = good.clone();
    unknown["spec"]["workload"]["clusterScope"][0]["bogus"] = json!(1);
    assert_eq!(validate(&unknown, &s).len(), 1);

    let mut missing = good.clone();
    missing["spec"]["workload"]["clusterScope"][0]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    assert_eq!(validate(&missing, &s).len(), 1);

    let mut dup = good.clone();
    dup["spec"]["destinations"] = json!([{"clusterId": "c1"}, {"clusterId": "c1"}]);
    assert_eq!(validate(&dup, &s).len(), 1);

    let mut wrong_type = good;
    wrong_type["spec"]["workload"]["clusterScope"][0]["createOnly"] = json!("yes");
    assert_eq!(validate(&wrong_type, &s).len(), 1);

    let bp = schema(BP);
    let no_test = json!({"spec": {"clusterSelectors": [{}], "downsync": [{"createOnly": true}]}});
    assert_eq!(
        validate(&no_test, &bp).len(),
        1,
        "a clause with no test is rejected"
    );
    let spec_level = json!({"spec": {"wantSingletonReportedState": true}});
    assert_eq!(
        validate(&spec_level, &bp).len(),
        1,
        "wantSingletonReportedState is per clause since KubeStellar 0.26"
    );
}
