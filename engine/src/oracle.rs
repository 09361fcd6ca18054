//! The oracle: a plain full recomputation of every Binding from the current state,
//! written straight from the semantics spec, with no indexing and no incrementality.
//! The dataflow must always agree with it.

use std::collections::{BTreeMap, BTreeSet};

use crate::binding::{Binding, WorkloadEntry};
use serde_json::Value;

use crate::collector::status::computable;
use crate::collector::{
    CollectorSpec, CollectorStatus, CombinedResult, TableRow, combine, compile_collector,
    evaluate_row,
};
use crate::input::{
    Change, CollectorInput, LabelMap, ObjectContent, PolicyInput, WorkStatusReport, WorkloadRef,
    WorkloadState,
};
use crate::policy::{ClauseSpec, singleton_problem};
use crate::reported::{
    Plan, Report, Request, aggregated_kind, decide, desired, is_labelled, returnable_resource,
};
use crate::selector::{Operator, SelectorSpec};

/// Current state, kept as plain maps.
#[derive(Default, Clone, Debug)]
pub struct Oracle {
    wecs: BTreeMap<String, LabelMap>,
    /// (group, resource, namespace, name) -> (version, state)
    objects: BTreeMap<(String, String, String, String), (String, WorkloadState)>,
    policies: BTreeMap<String, PolicyInput>,
    /// (WEC, WorkStatus name) -> content
    work_statuses: BTreeMap<(String, String), WorkStatusReport>,
    /// Objects whose last update changed only their resourceVersion, while carrying a
    /// status-return label -> the resourceVersion shown before it.
    previous_rv: BTreeMap<ObjectKeyTuple, String>,
    /// Objects -> resourceVersions of Bindery's status writes not seen yet (the last 4).
    expected_writes: BTreeMap<ObjectKeyTuple, Vec<String>>,
    /// StatusCollectors, by name.
    collectors: BTreeMap<String, CollectorInput>,
    /// Objects' contents (`Change::Content`), kept while the object exists.
    contents: BTreeMap<ObjectKeyTuple, ObjectContent>,
}

/// Does `selector` match `labels`? Kubernetes semantics, on strings.
pub fn selector_matches(selector: &SelectorSpec, labels: &LabelMap) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector.match_expressions.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator {
                Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
}

fn list_test(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|s| s == "*" || s == value)
}

/// The oracle's key of a workload object: `(group, resource, namespace, name)`.
pub(crate) type ObjectKeyTuple = (String, String, String, String);

/// The object `key` in `version`.
fn workload_ref((group, resource, namespace, name): ObjectKeyTuple, version: &str) -> WorkloadRef {
    WorkloadRef {
        group,
        version: version.to_string(),
        resource,
        namespace,
        name,
    }
}

impl Oracle {
    /// The WECs and their labels, by name.
    pub(crate) fn wec_map(&self) -> &BTreeMap<String, LabelMap> {
        &self.wecs
    }

    /// The workload objects: key -> (version, state).
    pub(crate) fn object_map(&self) -> &BTreeMap<ObjectKeyTuple, (String, WorkloadState)> {
        &self.objects
    }

    /// The policies, by name.
    pub(crate) fn policy_map(&self) -> &BTreeMap<String, PolicyInput> {
        &self.policies
    }

    /// Policy `name` as given, if it exists.
    pub fn policy(&self, name: &str) -> Option<&PolicyInput> {
        self.policies.get(name)
    }

    /// Applies one change.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Wec { name, labels } => match labels {
                Some(l) => {
                    self.wecs.insert(name.clone(), l.clone());
                }
                None => {
                    self.wecs.remove(name);
                }
            },
            Change::Workload { object, state } => {
                let key = (
                    object.group.clone(),
                    object.resource.clone(),
                    object.namespace.clone(),
                    object.name.clone(),
                );
                match state {
                    Some(s) => {
                        // Bindery's own status writes do not change what entries show
                        // (`Change::StatusWritten`).
                        let before = self.objects.get(&key);
                        let rv_only = before.is_some_and(|(v, old)| {
                            *v == object.version
                                && old.labels == s.labels
                                && old.resource_version != s.resource_version
                        });
                        if rv_only && is_labelled(s.labels.keys().map(String::as_str)) {
                            let expected = self.expected_writes.entry(key.clone()).or_default();
                            if let Some(i) =
                                expected.iter().position(|rv| *rv == s.resource_version)
                            {
                                expected.remove(i);
                                if expected.is_empty() {
                                    self.expected_writes.remove(&key);
                                }
                                return;
                            }
                            if expected.is_empty() {
                                self.expected_writes.remove(&key);
                            }
                            let shown = before.expect("rv_only").1.resource_version.clone();
                            self.previous_rv.insert(key.clone(), shown);
                        } else {
                            self.previous_rv.remove(&key);
                        }
                        self.objects
                            .insert(key, (object.version.clone(), s.clone()));
                    }
                    None => {
                        self.objects.remove(&key);
                        self.previous_rv.remove(&key);
                        self.expected_writes.remove(&key);
                        self.contents.remove(&key);
                    }
                }
            }
            Change::Content { object, content } => {
                let key = object.tuple();
                if !self.objects.contains_key(&key) {
                    return;
                }
                match content {
                    Some(c) => {
                        self.contents.insert(key, c.clone());
                    }
                    None => {
                        self.contents.remove(&key);
                    }
                }
            }
            Change::Collector { name, collector } => match collector {
                Some(c) => {
                    self.collectors.insert(name.clone(), c.clone());
                }
                None => {
                    self.collectors.remove(name);
                }
            },
            Change::StatusWritten {
                object,
                resource_version,
            } => {
                let key = object.tuple();
                let Some((_, state)) = self.objects.get_mut(&key) else {
                    return;
                };
                if state.resource_version == *resource_version {
                    if let Some(previous) = self.previous_rv.remove(&key) {
                        state.resource_version = previous;
                    }
                } else {
                    let expected = self.expected_writes.entry(key).or_default();
                    if expected.len() == 4 {
                        expected.remove(0);
                    }
                    expected.push(resource_version.clone());
                }
            }
            Change::Policy { name, policy } => match policy {
                Some(p) => {
                    self.policies.insert(name.clone(), p.clone());
                }
                None => {
                    self.policies.remove(name);
                }
            },
            Change::WorkStatus { wec, name, report } => {
                let key = (wec.clone(), name.clone());
                match report {
                    Some(r) => {
                        self.work_statuses.insert(key, r.clone());
                    }
                    None => {
                        self.work_statuses.remove(&key);
                    }
                }
            }
        }
    }

    /// Every StatusCollector's status, by name: its generation and the errors of its
    /// spec.
    pub fn collector_statuses(&self) -> Vec<CollectorStatus> {
        self.collectors
            .iter()
            .map(|(name, c)| CollectorStatus {
                name: name.clone(),
                observed_generation: c.generation,
                errors: compile_collector(&c.spec).err().unwrap_or_default(),
            })
            .collect()
    }

    /// Every CombinedStatus (`docs/status-semantics.md`), sorted by namespace and name:
    /// one per Binding entry naming collectors, each collector that exists and is valid
    /// evaluated on a row per destination (the WEC's one WorkStatus of the object, if
    /// it has exactly one) and the rows combined.
    pub fn combined_statuses(&self) -> Vec<CombinedResult> {
        let compiled: BTreeMap<&String, _> = self
            .collectors
            .iter()
            .filter_map(|(name, c)| Some((name, compile_collector(&c.spec).ok()?)))
            .collect();
        let mut out = Vec::new();
        for binding in self.bindings() {
            let policy = &self.policies[&binding.name];
            for e in binding.cluster_scope.iter().chain(&binding.namespace_scope) {
                if e.status_collectors.is_empty() {
                    continue;
                }
                let key = (
                    e.group.clone(),
                    e.resource.clone(),
                    e.namespace.clone(),
                    e.name.clone(),
                );
                let (version, state) = &self.objects[&key];
                let mut names = e.status_collectors.clone();
                names.sort();
                names.dedup();
                let specs: Vec<(&String, &CollectorSpec)> = names
                    .iter()
                    .filter_map(|name| Some((name, compiled.get(name)?)))
                    .collect();
                let obj = self.contents.get(&key).map(|c| &c.object);
                if !computable(specs.iter().map(|(_, s)| *s), obj) {
                    continue;
                }
                let reports: Vec<Vec<&WorkStatusReport>> = binding
                    .destinations
                    .iter()
                    .map(|wec| {
                        self.work_statuses
                            .iter()
                            .filter(|((w, _), r)| w == wec && r.object.tuple() == key)
                            .map(|(_, r)| r)
                            .collect()
                    })
                    .collect();
                let rows: Vec<TableRow> = binding
                    .destinations
                    .iter()
                    .zip(&reports)
                    .map(|(wec, found)| match found.as_slice() {
                        [one] => TableRow {
                            wec,
                            obj,
                            status: one.status.as_ref(),
                            last_update: one.last_update.as_deref(),
                        },
                        _ => TableRow {
                            wec,
                            obj,
                            status: None,
                            last_update: None,
                        },
                    })
                    .collect();
                let results = specs
                    .iter()
                    .map(|(name, spec)| {
                        let evaluations: Vec<_> = rows
                            .iter()
                            .map(|r| (r.wec.to_string(), evaluate_row(spec, r)))
                            .collect();
                        combine(name, spec, &evaluations)
                    })
                    .collect();
                out.push(CombinedResult {
                    policy: binding.name.clone(),
                    policy_uid: policy.uid.clone(),
                    object: WorkloadRef {
                        group: e.group.clone(),
                        version: version.clone(),
                        resource: e.resource.clone(),
                        namespace: e.namespace.clone(),
                        name: e.name.clone(),
                    },
                    object_uid: state.uid.clone(),
                    object_kind: state.kind.clone(),
                    results,
                });
            }
        }
        out.sort_by(|a, b| a.order().cmp(&b.order()));
        out
    }

    /// Every object whose content is wanted now, sorted, with its `resourceVersion`: a
    /// Binding entry of it names a valid collector that reads `obj`, and its content is
    /// missing or of another `resourceVersion`.
    pub fn contents_wanted(&self) -> Vec<(WorkloadRef, String)> {
        let reads_obj: BTreeSet<&String> = self
            .collectors
            .iter()
            .filter(|(_, c)| compile_collector(&c.spec).is_ok_and(|s| s.uses().obj))
            .map(|(name, _)| name)
            .collect();
        let mut wanted = BTreeSet::new();
        for binding in self.bindings() {
            for e in binding.cluster_scope.iter().chain(&binding.namespace_scope) {
                if e.status_collectors.iter().any(|c| reads_obj.contains(c)) {
                    wanted.insert((
                        e.group.clone(),
                        e.resource.clone(),
                        e.namespace.clone(),
                        e.name.clone(),
                    ));
                }
            }
        }
        wanted
            .into_iter()
            .filter_map(|key| {
                let (version, state) = self.objects.get(&key)?;
                let fresh = self
                    .contents
                    .get(&key)
                    .is_some_and(|c| c.resource_version == state.resource_version);
                (!fresh).then(|| (workload_ref(key, version), state.resource_version.clone()))
            })
            .collect()
    }

    /// Each policy's missing StatusCollectors (`docs/status-semantics.md`, "The
    /// policy's condition"): the collectors named by its Binding's entries that do not
    /// exist or are invalid, sorted, by policy name; policies with none missing left out.
    pub fn missing_collectors(&self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for binding in self.bindings() {
            let missing: BTreeSet<String> = binding
                .cluster_scope
                .iter()
                .chain(&binding.namespace_scope)
                .flat_map(|e| &e.status_collectors)
                .filter(|name| {
                    self.collectors
                        .get(*name)
                        .is_none_or(|c| compile_collector(&c.spec).is_err())
                })
                .cloned()
                .collect();
            if !missing.is_empty() {
                out.insert(binding.name, missing.into_iter().collect());
            }
        }
        out
    }

    /// The WorkStatuses: (WEC, name) -> content.
    pub(crate) fn work_status_map(&self) -> &BTreeMap<(String, String), WorkStatusReport> {
        &self.work_statuses
    }

    /// Every object's request: the flags ORed and the destinations united over the
    /// policies selecting it with a flag.
    fn requests(&self) -> BTreeMap<ObjectKeyTuple, Request> {
        let mut requests: BTreeMap<ObjectKeyTuple, Request> = BTreeMap::new();
        for binding in self.bindings() {
            for e in binding.cluster_scope.iter().chain(&binding.namespace_scope) {
                let (s, m) = (
                    e.want_singleton_reported_state,
                    e.want_multi_wec_reported_state,
                );
                if !(s || m) {
                    continue;
                }
                let key = (
                    e.group.clone(),
                    e.resource.clone(),
                    e.namespace.clone(),
                    e.name.clone(),
                );
                let request = requests.entry(key).or_default();
                request.singleton |= s;
                request.multi |= m;
                for d in &binding.destinations {
                    if s {
                        request.singleton_wecs.insert(d.clone());
                    }
                    if m {
                        request.multi_wecs.insert(d.clone());
                    }
                }
            }
        }
        requests
    }

    /// KubeStellar's decision for the object of `key` (in `state`) given its `request`,
    /// and what Bindery writes into it: from its WorkStatuses, per WEC in name order.
    fn report_of(
        &self,
        key: &ObjectKeyTuple,
        state: &WorkloadState,
        request: &Request,
    ) -> (Plan, Option<Report>) {
        let (group, resource, namespace, name) = key;
        let plan = decide(request);
        let mut statuses: BTreeMap<String, Vec<Option<Value>>> = BTreeMap::new();
        for ((wec, _name), report) in &self.work_statuses {
            let o = &report.object;
            if (&o.group, &o.resource, &o.namespace, &o.name) == (group, resource, namespace, name)
            {
                statuses
                    .entry(wec.clone())
                    .or_default()
                    .push(report.status.clone());
            }
        }
        let labelled = is_labelled(state.labels.keys().map(String::as_str));
        let desired = desired(&plan, group, aggregated_kind(group, resource), &statuses);
        let report = Report::of(desired, labelled);
        (plan, report)
    }

    /// The decision and report of one object ([`Oracle::reports`]'s, for explain), if it
    /// exists; `None` for both when its status is not the WECs' to set.
    pub(crate) fn report_of_object(
        &self,
        object: &crate::explain::ObjectKey,
    ) -> Option<(Plan, Option<Report>)> {
        let key = object.tuple();
        let (_, state) = self.objects.get(&key)?;
        if !returnable_resource(&key.0, &key.1) {
            return None;
        }
        let request = self.requests().remove(&key).unwrap_or_default();
        Some(self.report_of(&key, state, &request))
    }

    /// What Bindery writes into each workload object (`docs/status-semantics.md`),
    /// sorted by object: from every Binding's entries and destinations, each object's
    /// request, KubeStellar's decision and its WorkStatuses.
    pub fn reports(&self) -> Vec<(WorkloadRef, Report)> {
        let requests = self.requests();
        let mut out = Vec::new();
        for (key, (version, state)) in &self.objects {
            if !returnable_resource(&key.0, &key.1) {
                continue;
            }
            let request = requests.get(key).cloned().unwrap_or_default();
            if let (_, Some(report)) = self.report_of(key, state, &request) {
                out.push((workload_ref(key.clone(), version), report));
            }
        }
        out
    }

    fn clause_passes(
        &self,
        clause: &ClauseSpec,
        key: &(String, String, String, String),
        labels: &LabelMap,
    ) -> bool {
        let (group, resource, namespace, name) = key;
        let api_group = clause.api_group.as_ref().is_none_or(|g| g == group);
        let object_selectors = clause.object_selectors.is_empty()
            || clause
                .object_selectors
                .iter()
                .flatten()
                .any(|s| selector_matches(s, labels));
        let namespace_selectors = clause.namespace_selectors.is_empty()
            || clause
                .namespace_selectors
                .iter()
                .flatten()
                .any(|s| s.is_empty())
            || (!namespace.is_empty()
                && self
                    .objects
                    .get(&(
                        String::new(),
                        "namespaces".to_string(),
                        String::new(),
                        namespace.clone(),
                    ))
                    .is_some_and(|(_, ns)| {
                        clause
                            .namespace_selectors
                            .iter()
                            .flatten()
                            .any(|s| selector_matches(s, &ns.labels))
                    }));
        api_group
            && list_test(&clause.resources, resource)
            && list_test(&clause.namespaces, namespace)
            && list_test(&clause.object_names, name)
            && object_selectors
            && namespace_selectors
    }

    /// The Binding of policy `name`, if the policy exists.
    pub fn binding(&self, name: &str) -> Option<Binding> {
        let policy = self.policies.get(name)?;
        let destinations: Vec<String> = self
            .wecs
            .iter()
            .filter(|(_, labels)| {
                policy
                    .spec
                    .cluster_selectors
                    .iter()
                    .flatten()
                    .any(|s| selector_matches(s, labels))
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut workload = Vec::new();
        for (key, (version, state)) in &self.objects {
            let passed: Vec<&ClauseSpec> = policy
                .spec
                .downsync
                .iter()
                .filter(|c| self.clause_passes(c, key, &state.labels))
                .collect();
            if passed.is_empty() {
                continue;
            }
            let collectors: BTreeSet<String> = passed
                .iter()
                .flat_map(|c| c.status_collectors.iter().cloned())
                .collect();
            workload.push(WorkloadEntry {
                group: key.0.clone(),
                version: version.clone(),
                resource: key.1.clone(),
                namespace: key.2.clone(),
                name: key.3.clone(),
                resource_version: state.resource_version.clone(),
                create_only: passed.iter().any(|c| c.create_only),
                status_collectors: collectors.into_iter().collect(),
                want_singleton_reported_state: passed
                    .iter()
                    .any(|c| c.want_singleton_reported_state),
                want_multi_wec_reported_state: passed
                    .iter()
                    .any(|c| c.want_multi_wec_reported_state),
            });
        }
        Some(Binding::new(
            name.to_string(),
            policy.uid.clone(),
            destinations,
            workload,
        ))
    }

    /// Every Binding, sorted by name.
    pub fn bindings(&self) -> Vec<Binding> {
        self.policies
            .keys()
            .filter_map(|name| self.binding(name))
            .collect()
    }

    /// The problems of policy `name`, sorted: those of its spec and a
    /// `wantSingletonReportedState` bound to other than one WEC.
    pub fn problems(&self, name: &str) -> Option<Vec<String>> {
        self.binding_and_problems(name)
            .map(|(_, problems)| problems)
    }

    /// The Binding of policy `name` and its problems ([`Oracle::binding`] and
    /// [`Oracle::problems`], the Binding computed once).
    pub fn binding_and_problems(&self, name: &str) -> Option<(Binding, Vec<String>)> {
        let policy = self.policies.get(name)?;
        let binding = self.binding(name)?;
        let mut problems = policy.spec.problems.clone();
        let singleton = binding
            .cluster_scope
            .iter()
            .chain(&binding.namespace_scope)
            .any(|e| e.want_singleton_reported_state);
        if singleton && binding.destinations.len() != 1 {
            problems.push(singleton_problem(binding.destinations.len()));
        }
        problems.sort();
        problems.dedup();
        Some((binding, problems))
    }

    /// `(generation, problems)` of every policy, by name.
    pub fn statuses(&self) -> BTreeMap<String, (i64, Vec<String>)> {
        self.policies
            .iter()
            .map(|(name, p)| {
                (
                    name.clone(),
                    (p.generation, self.problems(name).unwrap_or_default()),
                )
            })
            .collect()
    }
}
