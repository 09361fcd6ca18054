//! Bindings in string form, and their JSON exactly as KubeStellar's consumers expect
//! (field names, omission rules, entry order).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

/// API group and version of Bindings and BindingPolicies.
pub const API_VERSION: &str = "control.kubestellar.io/v1alpha1";

/// One `spec.workload` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadEntry {
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub resource: String,
    /// Namespace (`""` for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `resourceVersion`.
    pub resource_version: String,
    /// `createOnly`.
    pub create_only: bool,
    /// `statusCollectors`, sorted, no duplicates.
    pub status_collectors: Vec<String>,
    /// `wantSingletonReportedState`.
    pub want_singleton_reported_state: bool,
    /// `wantMultiWECReportedState`.
    pub want_multi_wec_reported_state: bool,
}

impl WorkloadEntry {
    /// True for a cluster-scoped object.
    pub fn is_cluster_scoped(&self) -> bool {
        self.namespace.is_empty()
    }

    /// The entry's JSON, with KubeStellar's field order and omission rules.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("group".into(), json!(self.group));
        m.insert("version".into(), json!(self.version));
        m.insert("resource".into(), json!(self.resource));
        if !self.is_cluster_scoped() {
            m.insert("namespace".into(), json!(self.namespace));
        }
        m.insert("name".into(), json!(self.name));
        m.insert("resourceVersion".into(), json!(self.resource_version));
        if self.create_only {
            m.insert("createOnly".into(), json!(true));
        }
        if !self.status_collectors.is_empty() {
            m.insert("statusCollectors".into(), json!(self.status_collectors));
        }
        if self.want_singleton_reported_state {
            m.insert("wantSingletonReportedState".into(), json!(true));
        }
        if self.want_multi_wec_reported_state {
            m.insert("wantMultiWECReportedState".into(), json!(true));
        }
        Value::Object(m)
    }
}

/// KubeStellar's entry order: by `"<group>/<version>, Resource=<resource>"`, then by
/// `name` or `"<namespace>/<name>"`, then by `resourceVersion`, as byte strings
/// (compared piece by piece, without building them).
pub fn entry_order(a: &WorkloadEntry, b: &WorkloadEntry) -> Ordering {
    joined_cmp(&gvr_pieces(a), &gvr_pieces(b))
        .then_with(|| joined_cmp(&object_pieces(a), &object_pieces(b)))
        .then_with(|| a.resource_version.cmp(&b.resource_version))
}

/// `"<group>/<version>, Resource=<resource>"` in pieces.
fn gvr_pieces(e: &WorkloadEntry) -> [&[u8]; 5] {
    [
        e.group.as_bytes(),
        b"/",
        e.version.as_bytes(),
        b", Resource=",
        e.resource.as_bytes(),
    ]
}

/// `name` or `"<namespace>/<name>"` in pieces.
fn object_pieces(e: &WorkloadEntry) -> [&[u8]; 3] {
    if e.is_cluster_scoped() {
        [e.name.as_bytes(), b"", b""]
    } else {
        [e.namespace.as_bytes(), b"/", e.name.as_bytes()]
    }
}

/// Compares the concatenations of `a`'s and `b`'s pieces as byte strings.
fn joined_cmp(mut a: &[&[u8]], mut b: &[&[u8]]) -> Ordering {
    let (mut x, mut y): (&[u8], &[u8]) = (b"", b"");
    loop {
        while x.is_empty()
            && let Some((first, rest)) = a.split_first()
        {
            (x, a) = (first, rest);
        }
        while y.is_empty()
            && let Some((first, rest)) = b.split_first()
        {
            (y, b) = (first, rest);
        }
        if x.is_empty() || y.is_empty() {
            return x.len().cmp(&y.len());
        }
        let n = x.len().min(y.len());
        match x[..n].cmp(&y[..n]) {
            Ordering::Equal => (x, y) = (&x[n..], &y[n..]),
            unequal => return unequal,
        }
    }
}

/// A Binding's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// Name (that of its BindingPolicy).
    pub name: String,
    /// UID of its BindingPolicy.
    pub policy_uid: String,
    /// `spec.destinations` cluster ids, sorted, unique.
    pub destinations: Vec<String>,
    /// `spec.workload.clusterScope`, in [`entry_order`].
    pub cluster_scope: Vec<WorkloadEntry>,
    /// `spec.workload.namespaceScope`, in [`entry_order`].
    pub namespace_scope: Vec<WorkloadEntry>,
}

impl Binding {
    /// Builds a Binding from unsorted parts.
    pub fn new(
        name: String,
        policy_uid: String,
        mut destinations: Vec<String>,
        workload: impl IntoIterator<Item = WorkloadEntry>,
    ) -> Binding {
        destinations.sort_unstable();
        destinations.dedup();
        let (mut cluster_scope, mut namespace_scope): (Vec<_>, Vec<_>) = workload
            .into_iter()
            .partition(WorkloadEntry::is_cluster_scoped);
        cluster_scope.sort_by(entry_order);
        namespace_scope.sort_by(entry_order);
        Binding {
            name,
            policy_uid,
            destinations,
            cluster_scope,
            namespace_scope,
        }
    }

    /// The owner reference to the BindingPolicy.
    pub fn owner_reference(&self) -> Value {
        json!({
            "apiVersion": API_VERSION,
            "kind": "BindingPolicy",
            "name": self.name,
            "uid": self.policy_uid,
            "controller": true,
            "blockOwnerDeletion": false,
        })
    }

    /// The `spec` JSON: `workload` always present, empty lists omitted.
    pub fn spec_json(&self) -> Value {
        let mut workload = Map::new();
        if !self.cluster_scope.is_empty() {
            workload.insert(
                "clusterScope".into(),
                self.cluster_scope
                    .iter()
                    .map(WorkloadEntry::to_json)
                    .collect(),
            );
        }
        if !self.namespace_scope.is_empty() {
            workload.insert(
                "namespaceScope".into(),
                self.namespace_scope
                    .iter()
                    .map(WorkloadEntry::to_json)
                    .collect(),
            );
        }
        let mut spec = Map::new();
        spec.insert("workload".into(), Value::Object(workload));
        if !self.destinations.is_empty() {
            let dests: Vec<Value> = self
                .destinations
                .iter()
                .map(|d| json!({ "clusterId": d }))
                .collect();
            spec.insert("destinations".into(), Value::Array(dests));
        }
        Value::Object(spec)
    }

    /// The whole Binding object.
    pub fn to_json(&self) -> Value {
        json!({
            "apiVersion": API_VERSION,
            "kind": "Binding",
            "metadata": { "name": self.name, "ownerReferences": [self.owner_reference()] },
            "spec": self.spec_json(),
        })
    }
}

/// A Kubernetes `List` of Bindings, sorted by name.
pub fn binding_list(bindings: &[Binding]) -> Value {
    let mut sorted: Vec<&Binding> = bindings.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": sorted.into_iter().map(Binding::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        group: &str,
        version: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> WorkloadEntry {
        WorkloadEntry {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
            resource_version: "1".into(),
            create_only: false,
            status_collectors: vec![],
            want_singleton_reported_state: false,
            want_multi_wec_reported_state: false,
        }
    }

    #[test]
    fn entries_sort_by_gvr_string_then_object() {
        let b = Binding::new(
            "p".into(),
            "u".into(),
            vec!["c2".into(), "c1".into(), "c2".into()],
            vec![
                entry("apps", "v1", "deployments", "b", "x"),
                entry("", "v1", "namespaces", "", "z"),
                entry("", "v1", "configmaps", "a", "y"),
                entry("apps", "v1", "deployments", "a", "x"),
                entry("", "v1", "namespaces", "", "a"),
            ],
        );
        assert_eq!(b.destinations, vec!["c1", "c2"]);
        let names: Vec<_> = b
            .namespace_scope
            .iter()
            .map(|e| format!("{}/{}/{}", e.resource, e.namespace, e.name))
            .collect();
        // "/v1, Resource=configmaps" < "apps/v1, Resource=deployments"
        assert_eq!(
            names,
            vec!["configmaps/a/y", "deployments/a/x", "deployments/b/x"]
        );
        assert_eq!(
            b.cluster_scope
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "z"]
        );
    }

    /// The order as KubeStellar's code writes it: the strings built, then compared.
    fn entry_order_by_strings(a: &WorkloadEntry, b: &WorkloadEntry) -> Ordering {
        let gvr = |e: &WorkloadEntry| format!("{}/{}, Resource={}", e.group, e.version, e.resource);
        let object = |e: &WorkloadEntry| {
            if e.is_cluster_scoped() {
                e.name.clone()
            } else {
                format!("{}/{}", e.namespace, e.name)
            }
        };
        gvr(a)
            .cmp(&gvr(b))
            .then_with(|| object(a).cmp(&object(b)))
            .then_with(|| a.resource_version.cmp(&b.resource_version))
    }

    proptest::proptest! {
        /// Pieces from a small alphabet that holds the separators, so that prefixes,
        /// empty parts and separators inside names all occur.
        #[test]
        fn entry_order_compares_as_the_built_strings(
            a in proptest::collection::vec("[a/, =R]{0,3}", 6),
            b in proptest::collection::vec("[a/, =R]{0,3}", 6),
        ) {
            let make = |p: &[String]| WorkloadEntry {
                resource_version: p[5].clone(),
                ..entry(&p[0], &p[1], &p[2], &p[3], &p[4])
            };
            let (a, b) = (make(&a), make(&b));
            proptest::prop_assert_eq!(entry_order(&a, &b), entry_order_by_strings(&a, &b));
            proptest::prop_assert_eq!(entry_order(&a, &a), Ordering::Equal);
        }
    }

    #[test]
    fn empty_lists_are_omitted_but_workload_stays() {
        let b = Binding::new("p".into(), "u".into(), vec![], vec![]);
        assert_eq!(b.spec_json(), json!({"workload": {}}));
        let mut e = entry("", "v1", "configmaps", "ns", "n");
        e.create_only = true;
        e.status_collectors = vec!["a".into()];
        let keys: Vec<String> = e.to_json().as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "group",
                "version",
                "resource",
                "namespace",
                "name",
                "resourceVersion",
                "createOnly",
                "statusCollectors"
            ]
        );
    }
}
