//! Explanations: why a BindingPolicy does or does not bind a WEC, and why it does or
//! does not select a workload object, test by test, on the [`Oracle`]'s current state.
//!
//! Every verdict is computed here from the spec's tables, on strings, like the oracle;
//! `engine/tests/explain_vs_oracle.rs` checks that the verdicts equal the oracle's
//! Bindings. [`Explanation`] serializes to JSON (for scripts) and renders as indented
//! text ([`Explanation::to_text`]).

mod model;
#[cfg(test)]
mod tests;
mod text;

use std::collections::{BTreeMap, BTreeSet};

use crate::input::{LabelMap, PolicyInput, WorkloadState};
use crate::oracle::{ObjectKeyTuple, Oracle, selector_matches};
use crate::policy::ClauseSpec;
use crate::selector::{Operator, RequirementSpec, SelectorSpec};

pub use model::{
    Check, ClauseCount, ClauseExplanation, ClusterExplanation, DestinationMatch, ExplainError,
    Explanation, ModulationView, ObjectExplanation, ObjectKey, Overview, PolicyWecs, Query,
    ReportedStateExplanation, SelectorExplanation, TestExplanation, WorkStatusSeen,
};
use text::label;

impl Oracle {
    /// Explains policy `query.policy` on the current state: overall, or for the WEC
    /// and/or object of the query.
    pub fn explain(&self, query: &Query) -> Result<Explanation, ExplainError> {
        let policy =
            self.policy_map()
                .get(&query.policy)
                .ok_or_else(|| ExplainError::UnknownPolicy {
                    name: query.policy.clone(),
                    known: self.policy_map().keys().cloned().collect(),
                })?;
        let cluster = query
            .cluster
            .as_deref()
            .map(|c| self.explain_cluster(policy, c))
            .transpose()?;
        let object = query
            .object
            .as_ref()
            .map(|o| self.explain_object(policy, o))
            .transpose()?;
        let overview = (cluster.is_none() && object.is_none()).then(|| self.overview(policy));
        Ok(Explanation {
            policy: query.policy.clone(),
            uid: policy.uid.clone(),
            generation: policy.generation,
            problems: self.problems(&query.policy).unwrap_or_default(),
            overview,
            cluster,
            object,
        })
    }

    fn explain_cluster(
        &self,
        policy: &PolicyInput,
        cluster: &str,
    ) -> Result<ClusterExplanation, ExplainError> {
        let labels = self
            .wec_map()
            .get(cluster)
            .ok_or_else(|| ExplainError::ClusterNotFound {
                name: cluster.to_string(),
                known: self.wec_map().keys().cloned().collect(),
            })?;
        let selectors = cluster_selectors(policy, labels, "the cluster");
        Ok(ClusterExplanation {
            cluster: cluster.to_string(),
            labels: labels.clone(),
            destination: selectors.iter().any(|s| s.matches),
            selectors,
        })
    }

    fn explain_object(
        &self,
        policy: &PolicyInput,
        object: &ObjectKey,
    ) -> Result<ObjectExplanation, ExplainError> {
        let key = object.tuple();
        let (version, state) =
            self.object_map()
                .get(&key)
                .ok_or_else(|| ExplainError::ObjectNotFound {
                    object: object.clone(),
                    elsewhere: self
                        .object_map()
                        .keys()
                        .filter(|(g, r, _, n)| {
                            g == &object.group && r == &object.resource && n == &object.name
                        })
                        .map(|k| ObjectKey::from_tuple(k).to_string())
                        .collect(),
                })?;
        let clauses = self.explain_clauses(policy, &key, state);
        let selected = clauses.iter().any(|c| c.passed);
        let modulation = selected.then(|| {
            let mut m = ModulationView::default();
            for c in clauses.iter().filter(|c| c.passed) {
                m.merge(&c.modulation);
            }
            m
        });
        Ok(ObjectExplanation {
            object: object.clone(),
            version: version.clone(),
            resource_version: state.resource_version.clone(),
            labels: state.labels.clone(),
            selected,
            modulation,
            clauses,
            reported_state: self.explain_reported_state(object, state),
        })
    }

    /// Where `object`'s status comes from: the same request, decision and report as
    /// [`Oracle::reports`], spelled out.
    fn explain_reported_state(
        &self,
        object: &ObjectKey,
        state: &WorkloadState,
    ) -> ReportedStateExplanation {
        let mut singleton = Vec::new();
        let mut multi_wec = Vec::new();
        for binding in self.bindings() {
            let entry = binding
                .cluster_scope
                .iter()
                .chain(&binding.namespace_scope)
                .find(|e| {
                    (&e.group, &e.resource, &e.namespace, &e.name)
                        == (
                            &object.group,
                            &object.resource,
                            &object.namespace,
                            &object.name,
                        )
                });
            let Some(e) = entry else { continue };
            let asking = PolicyWecs {
                policy: binding.name.clone(),
                wecs: binding.destinations.clone(),
            };
            if e.want_singleton_reported_state {
                singleton.push(asking.clone());
            }
            if e.want_multi_wec_reported_state {
                multi_wec.push(asking);
            }
        }
        let work_statuses: Vec<WorkStatusSeen> = self
            .work_status_map()
            .iter()
            .filter(|(_, r)| r.object == *object)
            .map(|((wec, name), r)| WorkStatusSeen {
                wec: wec.clone(),
                name: name.clone(),
                has_status: r.status.is_some(),
            })
            .collect();
        let labelled = crate::reported::is_labelled(state.labels.keys().map(String::as_str));
        use crate::reported::{Label, Plan, Report};
        let (decision, writes) = match self.report_of_object(object) {
            None => (
                "none: its status is not the WECs' to set".to_string(),
                "nothing".to_string(),
            ),
            Some((plan, report)) => {
                let writes = match report {
                    Some(Report::Status(_, Label::Singleton)) => {
                        "its status, with the singleton label".to_string()
                    }
                    Some(Report::Status(_, Label::MultiWec)) => {
                        "the aggregate, with the multi-WEC label".to_string()
                    }
                    Some(Report::Clear) => {
                        "status {} and no status-return label (it carries one)".to_string()
                    }
                    None if !labelled && plan == Plan::Clear => {
                        "nothing: nothing asked, and no status-return label to clear".to_string()
                    }
                    None => "nothing: the status stays as it is (no status reported, or a kind \
                             KubeStellar does not aggregate)"
                        .to_string(),
                };
                let decision = match plan {
                    Plan::Copy(wec) => format!("copy from WEC {wec}"),
                    Plan::Aggregate(wecs) => format!(
                        "aggregate over {}",
                        wecs.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                    Plan::Clear => "clear".to_string(),
                };
                (decision, writes)
            }
        };
        ReportedStateExplanation {
            singleton,
            multi_wec,
            decision,
            work_statuses,
            labelled,
            writes,
        }
    }

    /// Every clause of `policy` (unreadable ones included, at their written index) on
    /// the object `key`.
    fn explain_clauses(
        &self,
        policy: &PolicyInput,
        key: &ObjectKeyTuple,
        state: &WorkloadState,
    ) -> Vec<ClauseExplanation> {
        written_clauses(policy)
            .into_iter()
            .map(|(path, clause)| {
                let problems = problems_at(&policy.spec.problems, &path);
                match clause {
                    Some(clause) => {
                        let tests = self.clause_tests(policy, &path, clause, key, state);
                        ClauseExplanation {
                            passed: tests.iter().all(|t| t.held),
                            path,
                            problems,
                            tests,
                            modulation: ModulationView::of_clause(clause),
                        }
                    }
                    None => ClauseExplanation {
                        path,
                        passed: false,
                        problems,
                        tests: Vec::new(),
                        modulation: ModulationView::default(),
                    },
                }
            })
            .collect()
    }

    fn clause_tests(
        &self,
        policy: &PolicyInput,
        path: &str,
        clause: &ClauseSpec,
        key: &ObjectKeyTuple,
        state: &WorkloadState,
    ) -> Vec<TestExplanation> {
        let (group, resource, namespace, name) = key;
        vec![
            api_group_test(clause.api_group.as_deref(), group),
            list_test("resources", "resource", &clause.resources, resource),
            list_test("namespaces", "namespace", &clause.namespaces, namespace),
            list_test("objectNames", "name", &clause.object_names, name),
            object_selectors_test(policy, path, clause, &state.labels),
            self.namespace_selectors_test(policy, path, clause, namespace),
        ]
    }

    fn namespace_selectors_test(
        &self,
        policy: &PolicyInput,
        path: &str,
        clause: &ClauseSpec,
        namespace: &str,
    ) -> TestExplanation {
        let list = &clause.namespace_selectors;
        let test = |held: bool, reason: String| TestExplanation {
            test: "namespaceSelectors".to_string(),
            held,
            reason,
            namespace_labels: None,
            selectors: Vec::new(),
        };
        if list.is_empty() {
            return test(true, "empty: any namespace".to_string());
        }
        if let Some(j) = list
            .iter()
            .position(|s| s.as_ref().is_some_and(SelectorSpec::is_empty))
        {
            return test(
                true,
                format!(
                    "namespaceSelectors[{j}] is the empty selector {{}}: it holds for every object"
                ),
            );
        }
        if namespace.is_empty() {
            return test(
                false,
                "cluster-scoped object: it is in no namespace, so no namespace selector but {} matches it"
                    .to_string(),
            );
        }
        let ns_key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            namespace.to_string(),
        );
        let Some((_, ns)) = self.object_map().get(&ns_key) else {
            return test(
                false,
                format!("the Namespace object {namespace:?} does not exist"),
            );
        };
        let subject = format!("the Namespace {namespace}");
        let selectors = selector_list(
            policy,
            &format!("{path}.namespaceSelectors"),
            list,
            &ns.labels,
            &subject,
        );
        let (held, reason) = selector_list_verdict(&selectors, &format!("{subject}'s labels"));
        TestExplanation {
            test: "namespaceSelectors".to_string(),
            held,
            reason,
            namespace_labels: Some(ns.labels.clone()),
            selectors,
        }
    }

    fn overview(&self, policy: &PolicyInput) -> Overview {
        let destinations = self
            .wec_map()
            .iter()
            .filter_map(|(id, labels)| {
                let matched_by: Vec<String> = cluster_selectors(policy, labels, "the cluster")
                    .into_iter()
                    .filter(|s| s.matches)
                    .map(|s| s.path)
                    .collect();
                (!matched_by.is_empty()).then(|| DestinationMatch {
                    cluster: id.clone(),
                    matched_by,
                })
            })
            .collect();
        let written = written_clauses(policy);
        let mut counts = vec![0usize; written.len()];
        let mut selected = 0;
        for (key, (_, state)) in self.object_map() {
            let mut any = false;
            for (i, (path, clause)) in written.iter().enumerate() {
                let Some(clause) = clause else { continue };
                if self
                    .clause_tests(policy, path, clause, key, state)
                    .iter()
                    .all(|t| t.held)
                {
                    counts[i] += 1;
                    any = true;
                }
            }
            selected += usize::from(any);
        }
        Overview {
            cluster_selectors: policy.spec.cluster_selectors.len(),
            wecs: self.wec_map().len(),
            destinations,
            objects: self.object_map().len(),
            selected,
            clauses: written
                .into_iter()
                .zip(counts)
                .map(|((path, clause), selects)| ClauseCount {
                    path,
                    selects,
                    readable: clause.is_some(),
                })
                .collect(),
        }
    }
}

/// The policy's `downsync` clauses as written: `(path, clause)`, `None` for a clause that
/// could not be read (parsing leaves those out of `spec.downsync`, and reports
/// `spec.downsync[i]: cannot be read`).
fn written_clauses(policy: &PolicyInput) -> Vec<(String, Option<&ClauseSpec>)> {
    let unreadable: BTreeSet<usize> = policy
        .spec
        .problems
        .iter()
        .filter_map(|p| {
            let rest = p.strip_prefix("spec.downsync[")?;
            let (index, rest) = rest.split_once(']')?;
            if rest.starts_with(": cannot be read") {
                index.parse().ok()
            } else {
                None
            }
        })
        .collect();
    let mut readable = policy.spec.downsync.iter();
    let mut out = Vec::new();
    let total = policy.spec.downsync.len() + unreadable.len();
    for i in 0..total {
        let path = format!("spec.downsync[{i}]");
        if unreadable.contains(&i) {
            out.push((path, None));
        } else if let Some(clause) = readable.next() {
            out.push((path, Some(clause)));
        }
    }
    out
}

/// The problems reported about `path` itself, without the `path: ` prefix.
fn problems_at(problems: &[String], path: &str) -> Vec<String> {
    let prefix = format!("{path}: ");
    problems
        .iter()
        .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn cluster_selectors(
    policy: &PolicyInput,
    labels: &LabelMap,
    subject: &str,
) -> Vec<SelectorExplanation> {
    selector_list(
        policy,
        "spec.clusterSelectors",
        &policy.spec.cluster_selectors,
        labels,
        subject,
    )
}

/// Each selector of a list (`field` is its path) on `labels`.
fn selector_list(
    policy: &PolicyInput,
    field: &str,
    list: &[Option<SelectorSpec>],
    labels: &LabelMap,
    subject: &str,
) -> Vec<SelectorExplanation> {
    list.iter()
        .enumerate()
        .map(|(j, sel)| {
            let path = format!("{field}[{j}]");
            match sel {
                Some(sel) => explain_selector(path, sel, labels, subject),
                None => SelectorExplanation {
                    problem: Some(
                        problems_at(&policy.spec.problems, &path)
                            .into_iter()
                            .next()
                            .unwrap_or_else(|| {
                                "invalid label selector, it matches nothing".to_string()
                            }),
                    ),
                    path,
                    matches: false,
                    empty: false,
                    requirements: Vec::new(),
                },
            }
        })
        .collect()
}

/// `(held, reason)` of a selector-list test that is not trivially true.
fn selector_list_verdict(selectors: &[SelectorExplanation], labels_of: &str) -> (bool, String) {
    let matched: Vec<&str> = selectors
        .iter()
        .filter(|s| s.matches)
        .map(|s| s.path.as_str())
        .collect();
    if !matched.is_empty() {
        return (true, format!("matched by {}", matched.join(", ")));
    }
    if selectors.iter().all(|s| s.problem.is_some()) {
        return (
            false,
            "every selector is invalid, and an invalid selector matches nothing".to_string(),
        );
    }
    (false, format!("no selector matches {labels_of}"))
}

fn explain_selector(
    path: String,
    sel: &SelectorSpec,
    labels: &LabelMap,
    subject: &str,
) -> SelectorExplanation {
    let mut requirements: Vec<Check> = sel
        .match_labels
        .iter()
        .map(|(k, v)| Check {
            test: format!("matchLabels {}", label(k, v)),
            held: labels.get(k) == Some(v),
            reason: describe_label(subject, labels, k),
        })
        .collect();
    requirements.extend(
        sel.match_expressions
            .iter()
            .enumerate()
            .map(|(j, r)| requirement_check(j, r, labels, subject)),
    );
    let matches = requirements.iter().all(|c| c.held);
    debug_assert_eq!(matches, selector_matches(sel, labels));
    SelectorExplanation {
        path,
        matches,
        problem: None,
        empty: sel.is_empty(),
        requirements,
    }
}

fn requirement_check(j: usize, r: &RequirementSpec, labels: &LabelMap, subject: &str) -> Check {
    let value = labels.get(&r.key);
    let held = match r.operator {
        Operator::In => value.is_some_and(|v| r.values.contains(v)),
        Operator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
        Operator::Exists => value.is_some(),
        Operator::DoesNotExist => value.is_none(),
    };
    let values = match r.operator {
        Operator::In | Operator::NotIn => format!(" ({})", r.values.join(", ")),
        Operator::Exists | Operator::DoesNotExist => String::new(),
    };
    Check {
        test: format!("matchExpressions[{j}] {} {:?}{values}", r.key, r.operator),
        held,
        reason: describe_label(subject, labels, &r.key),
    }
}

/// `the cluster has key=value` or `the cluster has no label key`.
fn describe_label(subject: &str, labels: &LabelMap, key: &str) -> String {
    match labels.get(key) {
        Some(v) => format!("{subject} has {}", label(key, v)),
        None => format!("{subject} has no label {key}"),
    }
}

fn quoted_list(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

fn api_group_test(api_group: Option<&str>, group: &str) -> TestExplanation {
    let shown = if group.is_empty() {
        "\"\" (core)".to_string()
    } else {
        format!("{group:?}")
    };
    let (held, reason) = match api_group {
        None => (true, "absent: any API group".to_string()),
        Some(g) if g == group => (true, format!("the object's group is {shown}")),
        Some(g) => (false, format!("the object's group is {shown}, not {g:?}")),
    };
    TestExplanation {
        test: "apiGroup".to_string(),
        held,
        reason,
        namespace_labels: None,
        selectors: Vec::new(),
    }
}

/// A `resources`, `namespaces` or `objectNames` test.
fn list_test(field: &str, what: &str, list: &[String], value: &str) -> TestExplanation {
    let shown = if value.is_empty() {
        "\"\" (cluster-scoped)".to_string()
    } else {
        format!("{value:?}")
    };
    let (held, reason) = if list.is_empty() {
        (true, format!("empty: any {what}"))
    } else if list.iter().any(|s| s == "*") {
        (true, format!("contains \"*\": any {what}"))
    } else if list.iter().any(|s| s == value) {
        (true, format!("the object's {what} {shown} is listed"))
    } else {
        (
            false,
            format!(
                "the object's {what} {shown} is not in {}",
                quoted_list(list)
            ),
        )
    };
    TestExplanation {
        test: field.to_string(),
        held,
        reason,
        namespace_labels: None,
        selectors: Vec::new(),
    }
}

fn object_selectors_test(
    policy: &PolicyInput,
    path: &str,
    clause: &ClauseSpec,
    labels: &LabelMap,
) -> TestExplanation {
    if clause.object_selectors.is_empty() {
        return TestExplanation {
            test: "objectSelectors".to_string(),
            held: true,
            reason: "empty: any labels".to_string(),
            namespace_labels: None,
            selectors: Vec::new(),
        };
    }
    let selectors = selector_list(
        policy,
        &format!("{path}.objectSelectors"),
        &clause.object_selectors,
        labels,
        "the object",
    );
    let (held, reason) = selector_list_verdict(&selectors, "the object's labels");
    TestExplanation {
        test: "objectSelectors".to_string(),
        held,
        reason,
        namespace_labels: None,
        selectors,
    }
}

/// The verdicts of the explanations of every WEC and every object for one policy:
/// `(destinations, selected objects with their combined modulation)`, which must be
/// what [`Oracle::binding`] lists.
pub fn verdicts(
    oracle: &Oracle,
    policy: &str,
) -> Result<(Vec<String>, BTreeMap<ObjectKey, ModulationView>), ExplainError> {
    let p = oracle
        .policy_map()
        .get(policy)
        .ok_or_else(|| ExplainError::UnknownPolicy {
            name: policy.to_string(),
            known: oracle.policy_map().keys().cloned().collect(),
        })?;
    let mut destinations = Vec::new();
    for id in oracle.wec_map().keys() {
        if oracle.explain_cluster(p, id)?.destination {
            destinations.push(id.clone());
        }
    }
    let mut selected = BTreeMap::new();
    for key in oracle.object_map().keys() {
        let object = ObjectKey::from_tuple(key);
        let e = oracle.explain_object(p, &object)?;
        if let Some(m) = e.modulation {
            selected.insert(object, m);
        }
    }
    Ok((destinations, selected))
}
