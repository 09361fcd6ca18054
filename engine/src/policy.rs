//! BindingPolicies: parsing and validation of `spec` into [`PolicySpec`] (string form,
//! with the problems found), and the interned `CompiledPolicy` the dataflow runs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::index::IndexKey;
use crate::intern::{Interner, Sym};
use crate::model::ObjectRecord;
use crate::selector::{Selector, SelectorSpec, json_kind};
use crate::strict_json::{describe_duplicates, duplicate_keys};

/// How a policy modulates the downsync of an object it selects.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Modulation {
    /// `createOnly`.
    pub create_only: bool,
    /// `wantSingletonReportedState`.
    pub want_singleton_reported_state: bool,
    /// `wantMultiWECReportedState`.
    pub want_multi_wec_reported_state: bool,
    /// `statusCollectors`, sorted by symbol, no duplicates.
    pub status_collectors: Vec<Sym>,
}

impl Modulation {
    /// Combines `other` into `self`: flags ORed, status collectors united.
    pub fn merge(&mut self, other: &Modulation) {
        self.create_only |= other.create_only;
        self.want_singleton_reported_state |= other.want_singleton_reported_state;
        self.want_multi_wec_reported_state |= other.want_multi_wec_reported_state;
        self.status_collectors
            .extend_from_slice(&other.status_collectors);
        self.status_collectors.sort_unstable();
        self.status_collectors.dedup();
    }
}

/// One `spec.downsync` clause in string form. Invalid selectors are `None`: they match
/// nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClauseSpec {
    /// `apiGroup` (`None` = any group).
    pub api_group: Option<String>,
    /// `resources`.
    pub resources: Vec<String>,
    /// `namespaces`.
    pub namespaces: Vec<String>,
    /// `objectNames`.
    pub object_names: Vec<String>,
    /// `objectSelectors`.
    pub object_selectors: Vec<Option<SelectorSpec>>,
    /// `namespaceSelectors`.
    pub namespace_selectors: Vec<Option<SelectorSpec>>,
    /// `createOnly`.
    pub create_only: bool,
    /// `statusCollectors`.
    pub status_collectors: Vec<String>,
    /// `wantSingletonReportedState`.
    pub want_singleton_reported_state: bool,
    /// `wantMultiWECReportedState`.
    pub want_multi_wec_reported_state: bool,
}

impl ClauseSpec {
    /// True when the clause holds for every workload object.
    pub fn discriminates_nothing(&self) -> bool {
        let any = |list: &[String]| list.is_empty() || list.iter().any(|s| s == "*");
        self.api_group.is_none()
            && any(&self.resources)
            && any(&self.namespaces)
            && any(&self.object_names)
            && holds_for_everything(&self.object_selectors)
            && holds_for_everything(&self.namespace_selectors)
    }
}

/// A policy's `spec` in string form, with every problem found in it. Parsing never
/// fails: what cannot be understood is reported and matches nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySpec {
    /// `clusterSelectors` (invalid ones are `None`).
    pub cluster_selectors: Vec<Option<SelectorSpec>>,
    /// `downsync` clauses that could be read (a clause that could not is left out).
    pub downsync: Vec<ClauseSpec>,
    /// Problems, each naming the field it is about.
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(rename = "clusterSelectors", default)]
    cluster_selectors: Option<Vec<Value>>,
    #[serde(default)]
    downsync: Option<Vec<Value>>,
}

/// A clause's fields: any other is an error (as a strict API server refuses it), so a
/// misspelled test (`objectSelector`) cannot silently widen the clause.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawClause {
    api_group: Option<String>,
    resources: Option<Vec<String>>,
    namespaces: Option<Vec<String>>,
    object_names: Option<Vec<String>>,
    object_selectors: Option<Vec<Value>>,
    namespace_selectors: Option<Vec<Value>>,
    create_only: Option<bool>,
    status_collectors: Option<Vec<String>>,
    want_singleton_reported_state: Option<bool>,
    #[serde(rename = "wantMultiWECReportedState")]
    want_multi_wec_reported_state: Option<bool>,
}

impl PolicySpec {
    /// Reads a BindingPolicy's `spec` (`None` when the object has none). A spec that is
    /// not an object, or has duplicate keys, is a problem and binds nothing.
    pub fn parse(spec: Option<&Value>) -> PolicySpec {
        let mut out = PolicySpec::default();
        let raw = match spec {
            None | Some(Value::Null) => return out,
            Some(spec @ Value::Object(map)) => {
                if let Some(keys) = duplicate_keys(map) {
                    out.problems.push(format!(
                        "spec: {}, so the policy binds nothing",
                        describe_duplicates(&keys)
                    ));
                    return out;
                }
                match RawSpec::deserialize(spec) {
                    Ok(raw) => raw,
                    Err(e) => {
                        out.problems.push(format!("spec: cannot be read: {e}"));
                        return out;
                    }
                }
            }
            // serde would read a struct from a list by position: refuse it.
            Some(other) => {
                out.problems.push(format!(
                    "spec is not an object (it is {}), so the policy binds nothing",
                    json_kind(other)
                ));
                return out;
            }
        };
        for (i, sel) in raw.cluster_selectors.unwrap_or_default().iter().enumerate() {
            let path = format!("spec.clusterSelectors[{i}]");
            out.cluster_selectors
                .push(parse_selector(sel, &path, &mut out.problems));
        }
        for (i, clause) in raw.downsync.unwrap_or_default().iter().enumerate() {
            let path = format!("spec.downsync[{i}]");
            let unreadable = match clause {
                Value::Object(map) => duplicate_keys(map).map(|keys| describe_duplicates(&keys)),
                other => Some(format!("is not an object (it is {})", json_kind(other))),
            };
            if let Some(why) = unreadable {
                out.problems.push(format!(
                    "{path}: cannot be read, so it selects nothing: {why}"
                ));
                continue;
            }
            let raw = match RawClause::deserialize(clause) {
                Ok(raw) => raw,
                Err(e) => {
                    out.problems.push(format!(
                        "{path}: cannot be read, so it selects nothing: {e}"
                    ));
                    continue;
                }
            };
            let mut selectors =
                |list: Option<Vec<Value>>, field: &str| -> Vec<Option<SelectorSpec>> {
                    list.unwrap_or_default()
                        .iter()
                        .enumerate()
                        .map(|(j, s)| {
                            parse_selector(s, &format!("{path}.{field}[{j}]"), &mut out.problems)
                        })
                        .collect()
                };
            let object_selectors = selectors(raw.object_selectors, "objectSelectors");
            let namespace_selectors = selectors(raw.namespace_selectors, "namespaceSelectors");
            let clause = ClauseSpec {
                api_group: raw.api_group,
                resources: raw.resources.unwrap_or_default(),
                namespaces: raw.namespaces.unwrap_or_default(),
                object_names: raw.object_names.unwrap_or_default(),
                object_selectors,
                namespace_selectors,
                create_only: raw.create_only.unwrap_or(false),
                status_collectors: raw.status_collectors.unwrap_or_default(),
                want_singleton_reported_state: raw.want_singleton_reported_state.unwrap_or(false),
                want_multi_wec_reported_state: raw.want_multi_wec_reported_state.unwrap_or(false),
            };
            if clause.discriminates_nothing() {
                out.problems.push(format!(
                    "{path}: clause discriminates nothing: no apiGroup, resources, namespaces, objectNames, \
                     objectSelectors or namespaceSelectors narrows it, so it selects every workload object"
                ));
            }
            out.downsync.push(clause);
        }
        out
    }
}

fn parse_selector(value: &Value, path: &str, problems: &mut Vec<String>) -> Option<SelectorSpec> {
    match SelectorSpec::parse(value) {
        Ok(spec) => Some(spec),
        Err(e) => {
            problems.push(format!(
                "{path}: invalid label selector, it matches nothing: {e}"
            ));
            None
        }
    }
}

/// A list test (`resources`, `namespaces`, `objectNames`) in interned form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum NameSet {
    /// Empty or containing `"*"`: holds for every object.
    Any,
    /// Holds for these symbols only (sorted, no duplicates).
    Only(Vec<Sym>),
}

impl NameSet {
    fn compile(list: &[String], interner: &mut Interner) -> NameSet {
        if list.is_empty() || list.iter().any(|s| s == "*") {
            return NameSet::Any;
        }
        let mut syms: Vec<Sym> = list.iter().map(|s| interner.intern(s)).collect();
        syms.sort_unstable();
        syms.dedup();
        NameSet::Only(syms)
    }

    fn holds(&self, sym: Sym) -> bool {
        match self {
            NameSet::Any => true,
            NameSet::Only(syms) => syms.binary_search(&sym).is_ok(),
        }
    }
}

/// A selector-list test (`objectSelectors`, `namespaceSelectors`) in interned form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum SelectorSet {
    /// Holds for everything (empty list, or one that always matches).
    Any,
    /// Holds when one of these (valid) selectors matches; an empty list holds for nothing.
    OneOf(Vec<Selector>),
}

impl SelectorSet {
    fn compile(list: &[Option<SelectorSpec>], interner: &mut Interner) -> SelectorSet {
        if holds_for_everything(list) {
            return SelectorSet::Any;
        }
        SelectorSet::OneOf(
            list.iter()
                .flatten()
                .map(|s| Selector::compile(s, interner))
                .collect(),
        )
    }
}

/// True when a selector-list test holds for every object: the list is empty, or one of
/// its (valid) selectors is the empty selector.
fn holds_for_everything(list: &[Option<SelectorSpec>]) -> bool {
    list.is_empty()
        || list
            .iter()
            .any(|s| s.as_ref().is_some_and(SelectorSpec::is_empty))
}

/// A compiled `spec.downsync` clause.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Clause {
    /// `apiGroup`.
    pub api_group: Option<Sym>,
    /// `resources`.
    pub resources: NameSet,
    /// `namespaces`.
    pub namespaces: NameSet,
    /// `objectNames`.
    pub object_names: NameSet,
    /// `objectSelectors`.
    pub object_selectors: SelectorSet,
    /// `namespaceSelectors`: evaluated by the dataflow against Namespace objects.
    pub namespace_selectors: SelectorSet,
    /// What selection through this clause implies.
    pub modulation: Modulation,
}

/// Where the dataflow looks for a clause's candidate objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClauseKeys {
    /// Objects carrying one of these keys (none: the clause can select nothing).
    Static(Vec<IndexKey>),
    /// Objects in the namespaces its `namespaceSelectors` match; of these resources
    /// only, unless the list is empty ([`IndexKey::NamespacedResource`] keys, else
    /// [`IndexKey::Namespace`]).
    MatchedNamespaces(Vec<Sym>),
}

impl Clause {
    fn compile(spec: &ClauseSpec, interner: &mut Interner) -> Clause {
        let mut status_collectors: Vec<Sym> = spec
            .status_collectors
            .iter()
            .map(|s| interner.intern(s))
            .collect();
        status_collectors.sort_unstable();
        status_collectors.dedup();
        let object_selectors = SelectorSet::compile(&spec.object_selectors, interner);
        let namespace_selectors = SelectorSet::compile(&spec.namespace_selectors, interner);
        Clause {
            api_group: spec.api_group.as_deref().map(|g| interner.intern(g)),
            resources: NameSet::compile(&spec.resources, interner),
            namespaces: NameSet::compile(&spec.namespaces, interner),
            object_names: NameSet::compile(&spec.object_names, interner),
            object_selectors,
            namespace_selectors,
            modulation: Modulation {
                create_only: spec.create_only,
                want_singleton_reported_state: spec.want_singleton_reported_state,
                want_multi_wec_reported_state: spec.want_multi_wec_reported_state,
                status_collectors,
            },
        }
    }

    /// Every test but `namespaceSelectors` (which needs the Namespace object).
    pub fn passes_object_tests(&self, object: &ObjectRecord) -> bool {
        self.api_group.is_none_or(|g| g == object.group)
            && self.resources.holds(object.resource)
            && self.namespaces.holds(object.namespace)
            && self.object_names.holds(object.name)
            && match &self.object_selectors {
                SelectorSet::Any => true,
                SelectorSet::OneOf(sels) => sels.iter().any(|s| s.matches(&object.labels)),
            }
    }

    /// The keys the dataflow joins this clause on: those of its most selective positive
    /// test (names, namespaces, object selectors, namespace selectors with resources,
    /// resources, group, namespace selectors, in that order).
    pub fn keys(&self) -> ClauseKeys {
        if let NameSet::Only(names) = &self.object_names {
            return ClauseKeys::Static(names.iter().map(|&n| IndexKey::Name(n)).collect());
        }
        if let NameSet::Only(nss) = &self.namespaces {
            return ClauseKeys::Static(nss.iter().map(|&n| IndexKey::Namespace(n)).collect());
        }
        if let SelectorSet::OneOf(sels) = &self.object_selectors
            && sels.iter().all(Selector::is_indexed)
        {
            let mut keys: Vec<IndexKey> = sels.iter().flat_map(Selector::index_keys).collect();
            keys.sort_unstable();
            keys.dedup();
            return ClauseKeys::Static(keys);
        }
        if let (SelectorSet::OneOf(_), NameSet::Only(resources)) =
            (&self.namespace_selectors, &self.resources)
        {
            return ClauseKeys::MatchedNamespaces(resources.clone());
        }
        if let NameSet::Only(resources) = &self.resources {
            return ClauseKeys::Static(resources.iter().map(|&r| IndexKey::Resource(r)).collect());
        }
        if let Some(group) = self.api_group {
            return ClauseKeys::Static(vec![IndexKey::Group(group)]);
        }
        if let SelectorSet::OneOf(_) = &self.namespace_selectors {
            return ClauseKeys::MatchedNamespaces(Vec::new());
        }
        ClauseKeys::Static(vec![IndexKey::All])
    }
}

/// A policy as the dataflow sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct CompiledPolicy {
    /// `metadata.uid`, for the Binding's owner reference.
    pub uid: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// The valid `clusterSelectors`.
    pub cluster_selectors: Vec<Selector>,
    /// The readable `downsync` clauses.
    pub clauses: Vec<Arc<Clause>>,
    /// Problems found in `spec`.
    pub problems: Vec<String>,
}

impl CompiledPolicy {
    /// Interns a parsed policy.
    pub fn compile(
        uid: &str,
        generation: i64,
        spec: &PolicySpec,
        interner: &mut Interner,
    ) -> CompiledPolicy {
        CompiledPolicy {
            uid: uid.to_string(),
            generation,
            cluster_selectors: spec
                .cluster_selectors
                .iter()
                .flatten()
                .map(|s| Selector::compile(s, interner))
                .collect(),
            clauses: spec
                .downsync
                .iter()
                .map(|c| Arc::new(Clause::compile(c, interner)))
                .collect(),
            problems: spec.problems.clone(),
        }
    }
}

/// The status problem of a policy that wants a singleton reported state but is bound
/// to `wecs` WECs (any number but one).
pub fn singleton_problem(wecs: usize) -> String {
    format!(
        "wantSingletonReportedState is requested, but the policy selects {wecs} WECs instead of exactly 1"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problems_name_their_field_and_others_still_work() {
        let spec = PolicySpec::parse(Some(&json!({
            "clusterSelectors": [{"matchLabels": {"a": "b"}}, {"matchExpressions": [{"key": "a", "operator": "In"}]}],
            "downsync": [
                {"resources": ["*"]},
                {"objectSelectors": [{"matchLabels": {"x": "y"}}], "wantMultiWECReportedState": true},
                {"resources": "deployments"}
            ]
        })));
        assert_eq!(spec.cluster_selectors.len(), 2);
        assert!(spec.cluster_selectors[0].is_some() && spec.cluster_selectors[1].is_none());
        assert_eq!(spec.downsync.len(), 2);
        assert!(spec.downsync[1].want_multi_wec_reported_state);
        assert_eq!(spec.problems.len(), 3, "{:?}", spec.problems);
        assert!(spec.problems[0].starts_with("spec.clusterSelectors[1]: invalid label selector"));
        assert!(spec.problems[1].starts_with("spec.downsync[0]: clause discriminates nothing"));
        assert!(spec.problems[2].starts_with("spec.downsync[2]: cannot be read"));
    }

    #[test]
    fn a_spec_or_clause_written_as_a_list_binds_nothing() {
        // serde reads a struct from a list by position: `[[{}]]` would be
        // `clusterSelectors: [{}]`, every WEC.
        let spec = PolicySpec::parse(Some(&json!([[{}], [{"resources": ["*"]}]])));
        assert!(spec.cluster_selectors.is_empty() && spec.downsync.is_empty());
        assert_eq!(
            spec.problems,
            vec!["spec is not an object (it is a list), so the policy binds nothing"]
        );
        let spec = PolicySpec::parse(Some(&json!("x")));
        assert!(spec.problems[0].starts_with("spec is not an object (it is a string)"));
        let spec = PolicySpec::parse(Some(&json!({
            "clusterSelectors": [{}],
            "downsync": [["configmaps"], {"resources": ["configmaps"]}]
        })));
        assert_eq!(spec.downsync.len(), 1);
        assert_eq!(
            spec.problems,
            vec![
                "spec.downsync[0]: cannot be read, so it selects nothing: is not an object (it is a list)"
            ]
        );
    }

    #[test]
    fn unknown_fields_in_clauses_and_selectors_are_problems() {
        let spec = PolicySpec::parse(Some(&json!({
            "clusterSelectors": [{"matchLabel": {"a": "b"}}, {"matchLabels": {"a": "b"}}],
            "downsync": [
                {"resources": ["configmaps"], "objectSelector": [{"matchLabels": {"x": "y"}}]},
                {"objectSelectors": [{"matchExpressions": [{"key": "x", "operator": "Exists", "value": ["y"]}]}]},
                {"resources": ["secrets"]}
            ]
        })));
        assert!(spec.cluster_selectors[0].is_none() && spec.cluster_selectors[1].is_some());
        assert_eq!(
            spec.downsync.len(),
            2,
            "the misspelled clause selects nothing"
        );
        assert_eq!(spec.downsync[0].object_selectors, vec![None]);
        assert_eq!(spec.problems.len(), 3, "{:?}", spec.problems);
        assert!(
            spec.problems[0].starts_with(
                "spec.clusterSelectors[0]: invalid label selector, it matches nothing: unknown field \"matchLabel\""
            ),
            "{:?}",
            spec.problems
        );
        assert!(
            spec.problems[1].starts_with("spec.downsync[0]: cannot be read, so it selects nothing: unknown field `objectSelector`"),
            "{:?}",
            spec.problems
        );
        assert!(
            spec.problems[2].starts_with("spec.downsync[1].objectSelectors[0]: invalid label selector, it matches nothing: matchExpressions[0]: unknown field \"value\""),
            "{:?}",
            spec.problems
        );
    }

    #[test]
    fn duplicate_keys_are_problems_where_they_are() {
        let parse = |text: &str| {
            let v = crate::strict_json::from_slice(text.as_bytes(), 64).unwrap();
            PolicySpec::parse(Some(&v))
        };
        let spec = parse(
            r#"{"clusterSelectors": [{"matchLabels": {"a": "b", "a": "c"}}, {"matchLabels": {"a": "b"}, "matchLabels": {}}],
            "downsync": [{"resources": ["a"], "resources": ["b"]}, {"resources": ["c"], "objectSelectors": [{"matchExpressions": [{"key": "x", "key": "y", "operator": "Exists"}]}]}]}"#,
        );
        assert_eq!(spec.cluster_selectors, vec![None, None]);
        assert_eq!(spec.downsync.len(), 1);
        assert_eq!(spec.downsync[0].object_selectors, vec![None]);
        assert_eq!(
            spec.problems,
            vec![
                "spec.clusterSelectors[0]: invalid label selector, it matches nothing: matchLabels: duplicate key \"a\"",
                "spec.clusterSelectors[1]: invalid label selector, it matches nothing: duplicate key \"matchLabels\"",
                "spec.downsync[0]: cannot be read, so it selects nothing: duplicate key \"resources\"",
                "spec.downsync[1].objectSelectors[0]: invalid label selector, it matches nothing: matchExpressions[0]: duplicate key \"key\"",
            ]
        );
        let spec = parse(r#"{"clusterSelectors": [{}], "downsync": [], "clusterSelectors": []}"#);
        assert!(spec.cluster_selectors.is_empty());
        assert_eq!(
            spec.problems,
            vec!["spec: duplicate key \"clusterSelectors\", so the policy binds nothing"]
        );
    }

    #[test]
    fn clause_keys_prefer_selective_tests() {
        let mut i = Interner::default();
        let spec = PolicySpec::parse(Some(&json!({"downsync": [
            {"objectNames": ["a"], "resources": ["deployments"]},
            {"resources": ["deployments"], "objectSelectors": [{"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["y"]}]}]},
            {"namespaceSelectors": [{"matchLabels": {"team": "a"}}]},
            {"objectSelectors": [{"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}]},
            {"objectSelectors": [{"matchExpressions": [{"key": "x", "operator": "In"}]}]},
            {"resources": ["services", "deployments"], "namespaceSelectors": [{"matchLabels": {"team": "a"}}]},
            {"resources": ["*"], "namespaceSelectors": [{"matchLabels": {"team": "a"}}]}
        ]})));
        let p = CompiledPolicy::compile("u", 1, &spec, &mut i);
        let (a, deployments) = (i.intern("a"), i.intern("deployments"));
        assert_eq!(
            p.clauses[0].keys(),
            ClauseKeys::Static(vec![IndexKey::Name(a)])
        );
        assert_eq!(
            p.clauses[1].keys(),
            ClauseKeys::Static(vec![IndexKey::Resource(deployments)])
        );
        assert_eq!(p.clauses[2].keys(), ClauseKeys::MatchedNamespaces(vec![]));
        assert_eq!(p.clauses[3].keys(), ClauseKeys::Static(vec![IndexKey::All]));
        // Only an invalid object selector: the clause can select nothing.
        assert_eq!(p.clauses[4].keys(), ClauseKeys::Static(vec![]));
        // Namespace selectors and resources: the matched namespaces' objects of those
        // resources (sorted by symbol).
        let mut both = vec![deployments, i.intern("services")];
        both.sort_unstable();
        assert_eq!(p.clauses[5].keys(), ClauseKeys::MatchedNamespaces(both));
        assert_eq!(p.clauses[6].keys(), ClauseKeys::MatchedNamespaces(vec![]));
    }
}
