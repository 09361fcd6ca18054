//! The materialized output: the dataflow's output records applied per policy, so that
//! each epoch's changes can be listed and the current Bindings and statuses rendered;
//! and its report records per object, each rendered into the object's [`Report`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::Engine;
use crate::binding::{Binding, WorkloadEntry};
use crate::dataflow::{OutputRecord, ReportRecord, Time};
use crate::input::WorkloadRef;
use crate::intern::{Interner, Sym};
use crate::model::{ObjectKey, ObjectVersion};
use crate::policy::Modulation;
use crate::reported::{Report, aggregated_kind, desired};

/// The materialized Binding and status of one policy.
#[derive(Default, Debug)]
struct PolicyState {
    owner: Option<(String, i64)>,
    destinations: BTreeSet<Sym>,
    workload: BTreeSet<(ObjectVersion, Modulation)>,
    problems: BTreeSet<String>,
}

impl PolicyState {
    fn is_empty(&self) -> bool {
        self.owner.is_none()
            && self.destinations.is_empty()
            && self.workload.is_empty()
            && self.problems.is_empty()
    }
}

/// How one epoch changed one Binding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindingChange {
    /// Binding (and policy) name.
    pub binding: String,
    /// Whether the Binding exists after the epoch.
    pub exists: bool,
    /// Policy generation the Binding reflects after the epoch (when it exists).
    pub generation: Option<i64>,
    /// Destinations added.
    pub destinations_added: Vec<String>,
    /// Destinations removed.
    pub destinations_removed: Vec<String>,
    /// Workload entries added (an object whose resourceVersion changed is removed in its
    /// old form and added in its new one).
    pub workload_added: Vec<WorkloadEntry>,
    /// Workload entries removed.
    pub workload_removed: Vec<WorkloadEntry>,
    /// The policy's problems after the epoch, when they changed.
    pub problems: Option<Vec<String>>,
    /// Whether the Binding's owner (the policy's uid and generation, hence `exists` and
    /// `generation`) changed in the epoch.
    pub owner_changed: bool,
}

impl BindingChange {
    /// The change as one JSON object (the `--emit-deltas` line format, less `epoch`).
    pub fn to_json(&self) -> Value {
        let entries =
            |es: &[WorkloadEntry]| es.iter().map(WorkloadEntry::to_json).collect::<Vec<_>>();
        let mut v = json!({
            "binding": self.binding,
            "exists": self.exists,
            "destinations": { "added": self.destinations_added, "removed": self.destinations_removed },
            "workload": { "added": entries(&self.workload_added), "removed": entries(&self.workload_removed) },
        });
        if let Some(g) = self.generation {
            v["generation"] = json!(g);
        }
        if let Some(p) = &self.problems {
            v["problems"] = json!(p);
        }
        v
    }
}

/// How one epoch changed what Bindery writes into one workload object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportChange {
    /// The object (in the version it was last seen in).
    pub object: WorkloadRef,
    /// What to write into it now; `None`: nothing (any more).
    pub report: Option<Report>,
}

/// What one epoch changed.
#[derive(Clone, Debug, Default)]
pub struct EpochOutput {
    /// The epoch (1 for the first `advance`).
    pub epoch: u64,
    /// Changed Bindings, sorted by name.
    pub changes: Vec<BindingChange>,
    /// Changed reports, sorted by object (group, resource, namespace, name).
    pub reports: Vec<ReportChange>,
    /// Changed CombinedStatuses, sorted by namespace and name.
    pub combined: Vec<super::CombinedChange>,
    /// The statuses of the StatusCollectors created or changed, sorted by name.
    pub collectors: Vec<crate::collector::CollectorStatus>,
    /// Workload objects whose content became wanted this epoch (`Engine::contents_wanted`),
    /// sorted, with their `resourceVersion` now: to be fetched and told as
    /// `Change::Content`. Their CombinedStatuses wait for it.
    pub content_requests: Vec<(WorkloadRef, String)>,
    /// The StatusCollectors' row evaluations this epoch.
    pub evaluations: super::combined::EvaluationWork,
    /// The policies whose missing StatusCollectors ([`PolicyStatus::missing_collectors`])
    /// changed, sorted by name (a policy gone with some missing included).
    pub missing_collectors: Vec<String>,
}

/// A policy's status as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyStatus {
    /// The policy's uid (of the generation the Binding reflects).
    pub uid: String,
    /// The generation the Binding reflects.
    pub observed_generation: i64,
    /// Problems, sorted.
    pub problems: Vec<String>,
    /// The StatusCollectors its Binding's entries name that do not exist or are
    /// invalid, sorted (KubeStellar's `StatusCollectorsAvailable` condition).
    pub missing_collectors: Vec<String>,
}

/// Every policy's materialized Binding and status, by policy name; every object's
/// report record and the report rendered from it.
#[derive(Default, Debug)]
pub(super) struct Store {
    policies: BTreeMap<Sym, PolicyState>,
    reports: BTreeMap<ObjectKey, (ReportRecord, Option<Report>)>,
}

/// Takes the output updates of the epochs before `next` from `buffer`, consolidated.
pub(super) fn take_updates<D: Ord>(
    buffer: &std::cell::RefCell<Vec<(D, Time, isize)>>,
    next: Time,
) -> Vec<(D, isize)> {
    let mut updates: Vec<(D, isize)> = buffer
        .borrow_mut()
        .drain(..)
        .map(|(data, time, diff)| {
            debug_assert!(time < next);
            (data, diff)
        })
        .collect();
    differential_dataflow::consolidation::consolidate(&mut updates);
    updates
}

impl Engine {
    /// The current Binding of policy `name`, if it has one.
    pub fn binding(&self, name: &str) -> Option<Binding> {
        self.store.binding(&self.state.interner, name)
    }

    /// Every current Binding, sorted by name.
    pub fn bindings(&self) -> Vec<Binding> {
        self.store.bindings(&self.state.interner)
    }

    /// The names of the current Bindings, sorted (each renders with
    /// [`binding`](Engine::binding)).
    pub fn binding_names(&self) -> Vec<String> {
        self.store.binding_names(&self.state.interner)
    }

    /// How many Bindings [`bindings`](Engine::bindings) would render.
    pub fn binding_count(&self) -> usize {
        self.store.binding_count()
    }

    /// The status of policy `name`, if it exists.
    pub fn status(&self, name: &str) -> Option<PolicyStatus> {
        let mut status = self.store.status(&self.state.interner, name)?;
        let p = self.state.interner.get(name)?;
        status.missing_collectors = self.combined.missing(p);
        Some(status)
    }

    /// `(observed generation, problems)` of every policy, by name.
    pub fn statuses(&self) -> BTreeMap<String, (i64, Vec<String>)> {
        self.store.statuses(&self.state.interner)
    }

    /// What Bindery writes into each workload object it returns status into (or
    /// clears), sorted by object (group, resource, namespace, name).
    pub fn reports(&self) -> Vec<(WorkloadRef, Report)> {
        let i = &self.state.interner;
        let mut out: Vec<(WorkloadRef, Report)> = self
            .store
            .reports
            .iter()
            .filter_map(|(key, (record, report))| {
                Some((object_ref(i, key, record.version), report.clone()?))
            })
            .collect();
        out.sort_by(|a, b| a.0.identity().cmp(&b.0.identity()));
        out
    }
}

/// The object of `key`, seen in `version`.
fn object_ref(interner: &Interner, key: &ObjectKey, version: Sym) -> WorkloadRef {
    let s = |sym| interner.resolve(sym).to_string();
    WorkloadRef {
        group: s(key.0),
        version: s(version),
        resource: s(key.1),
        namespace: s(key.2),
        name: s(key.3),
    }
}

/// The report `record` makes for the object of `key`: KubeStellar's decision with the
/// WECs' and WorkStatuses' names (whose order matters to an aggregation).
fn render_report(interner: &Interner, key: &ObjectKey, record: &ReportRecord) -> Option<Report> {
    let s = |sym| interner.resolve(sym).to_string();
    let mut named: Vec<(String, String, Option<Value>)> = record
        .work_statuses
        .iter()
        .map(|ws| {
            let status = ws.status.as_ref().map(|j| j.value().clone());
            (s(ws.wec), s(ws.name), status)
        })
        .collect();
    named.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut by_wec: BTreeMap<String, Vec<Option<Value>>> = BTreeMap::new();
    for (wec, _name, status) in named {
        by_wec.entry(wec).or_default().push(status);
    }
    let (group, resource) = (interner.resolve(key.0), interner.resolve(key.1));
    let plan = record.plan.map(|&w| s(w));
    let desired = desired(&plan, group, aggregated_kind(group, resource), &by_wec);
    Report::of(desired, record.labelled)
}

impl Store {
    /// Applies an epoch's consolidated `updates`, returning the changed Bindings.
    pub(super) fn apply(
        &mut self,
        interner: &Interner,
        updates: Vec<((Sym, OutputRecord), isize)>,
    ) -> Vec<BindingChange> {
        let mut changes: BTreeMap<Sym, BindingChange> = BTreeMap::new();
        let mut problems_changed = BTreeSet::new();
        for ((policy, record), diff) in updates {
            debug_assert!(
                diff == 1 || diff == -1,
                "unexpected multiplicity {diff} for {record:?}"
            );
            let state = self.policies.entry(policy).or_default();
            let change = changes.entry(policy).or_default();
            let added = diff > 0;
            match record {
                OutputRecord::Owner { uid, generation } => {
                    change.owner_changed = true;
                    if added {
                        state.owner = Some((uid, generation));
                    } else if state
                        .owner
                        .as_ref()
                        .is_some_and(|(u, g)| *u == uid && *g == generation)
                    {
                        state.owner = None;
                    }
                }
                OutputRecord::Destination(wec) => {
                    let name = interner.resolve(wec).to_string();
                    if added {
                        state.destinations.insert(wec);
                        change.destinations_added.push(name);
                    } else {
                        state.destinations.remove(&wec);
                        change.destinations_removed.push(name);
                    }
                }
                OutputRecord::Workload(version, modulation) => {
                    let entry = render_entry(interner, &version, &modulation);
                    if added {
                        state.workload.insert((version, modulation));
                        change.workload_added.push(entry);
                    } else {
                        state.workload.remove(&(version, modulation));
                        change.workload_removed.push(entry);
                    }
                }
                OutputRecord::Problem(problem) => {
                    problems_changed.insert(policy);
                    if added {
                        state.problems.insert(problem);
                    } else {
                        state.problems.remove(&problem);
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(changes.len());
        for (policy, mut change) in changes {
            let state = &self.policies[&policy];
            change.binding = interner.resolve(policy).to_string();
            change.exists = state.owner.is_some();
            change.generation = state.owner.as_ref().map(|(_, g)| *g);
            if problems_changed.contains(&policy) {
                change.problems = Some(state.problems.iter().cloned().collect());
            }
            change.destinations_added.sort();
            change.destinations_removed.sort();
            change.workload_added.sort_by(crate::binding::entry_order);
            change.workload_removed.sort_by(crate::binding::entry_order);
            if state.is_empty() {
                self.policies.remove(&policy);
            }
            out.push(change);
        }
        out.sort_by(|a, b| a.binding.cmp(&b.binding));
        out
    }

    /// The current Binding of policy `name`, if it has one.
    pub(super) fn binding(&self, interner: &Interner, name: &str) -> Option<Binding> {
        let state = self.policies.get(&interner.get(name)?)?;
        let (uid, _) = state.owner.as_ref()?;
        Some(Binding::new(
            name.to_string(),
            uid.clone(),
            state
                .destinations
                .iter()
                .map(|&d| interner.resolve(d).to_string())
                .collect(),
            state
                .workload
                .iter()
                .map(|(v, m)| render_entry(interner, v, m)),
        ))
    }

    /// The policies that have a Binding (an owner record).
    fn bound_policies(&self) -> impl Iterator<Item = Sym> + '_ {
        self.policies
            .iter()
            .filter(|(_, s)| s.owner.is_some())
            .map(|(&p, _)| p)
    }

    /// How many Bindings there are.
    pub(super) fn binding_count(&self) -> usize {
        self.bound_policies().count()
    }

    /// Every current Binding, sorted by name.
    pub(super) fn bindings(&self, interner: &Interner) -> Vec<Binding> {
        self.sorted_names(interner)
            .into_iter()
            .filter_map(|n| self.binding(interner, n))
            .collect()
    }

    /// The names of the current Bindings, sorted.
    pub(super) fn binding_names(&self, interner: &Interner) -> Vec<String> {
        self.sorted_names(interner)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn sorted_names<'i>(&self, interner: &'i Interner) -> Vec<&'i str> {
        let mut names: Vec<&str> = self.bound_policies().map(|p| interner.resolve(p)).collect();
        names.sort_unstable();
        names
    }

    /// The status of policy `name`, if it exists.
    pub(super) fn status(&self, interner: &Interner, name: &str) -> Option<PolicyStatus> {
        let state = self.policies.get(&interner.get(name)?)?;
        let (uid, generation) = state.owner.as_ref()?;
        Some(PolicyStatus {
            uid: uid.clone(),
            observed_generation: *generation,
            problems: state.problems.iter().cloned().collect(),
            missing_collectors: Vec::new(),
        })
    }

    /// `(observed generation, problems)` of every policy, by name.
    pub(super) fn statuses(&self, interner: &Interner) -> BTreeMap<String, (i64, Vec<String>)> {
        self.policies
            .iter()
            .filter_map(|(&p, s)| {
                let (_, g) = s.owner.as_ref()?;
                Some((
                    interner.resolve(p).to_string(),
                    (*g, s.problems.iter().cloned().collect()),
                ))
            })
            .collect()
    }

    /// Applies an epoch's consolidated report `updates`, returning the objects whose
    /// report changed.
    pub(super) fn apply_reports(
        &mut self,
        interner: &Interner,
        updates: Vec<((ObjectKey, ReportRecord), isize)>,
    ) -> Vec<ReportChange> {
        // Per object: the record before (retracted) and after (inserted).
        let mut touched: BTreeMap<ObjectKey, Option<ReportRecord>> = BTreeMap::new();
        for ((key, record), diff) in updates {
            debug_assert!(
                diff == 1 || diff == -1,
                "multiplicity {diff} for {record:?}"
            );
            let after = touched.entry(key).or_insert(None);
            if diff > 0 {
                *after = Some(record);
            }
        }
        let mut out = Vec::new();
        for (key, after) in touched {
            let before = self.reports.remove(&key);
            let report = after
                .as_ref()
                .and_then(|r| render_report(interner, &key, r));
            let old_report = before.as_ref().and_then(|(_, report)| report.clone());
            let version = after
                .as_ref()
                .or(before.as_ref().map(|(r, _)| r))
                .map(|r| r.version)
                .expect("a touched object has a record before or after");
            if report != old_report {
                out.push(ReportChange {
                    object: object_ref(interner, &key, version),
                    report: report.clone(),
                });
            }
            if let Some(record) = after {
                self.reports.insert(key, (record, report));
            }
        }
        out.sort_by(|a, b| a.object.identity().cmp(&b.object.identity()));
        out
    }

    /// Objects with a report record.
    pub(super) fn reports(&self) -> usize {
        self.reports.len()
    }

    /// Workload entries over all Bindings.
    pub(super) fn workload_entries(&self) -> usize {
        self.policies.values().map(|s| s.workload.len()).sum()
    }

    /// Destinations over all Bindings.
    pub(super) fn destinations(&self) -> usize {
        self.policies.values().map(|s| s.destinations.len()).sum()
    }
}

fn render_entry(interner: &Interner, v: &ObjectVersion, m: &Modulation) -> WorkloadEntry {
    let mut status_collectors: Vec<String> = m
        .status_collectors
        .iter()
        .map(|&s| interner.resolve(s).to_string())
        .collect();
    status_collectors.sort();
    WorkloadEntry {
        group: interner.resolve(v.group).to_string(),
        version: interner.resolve(v.version).to_string(),
        resource: interner.resolve(v.resource).to_string(),
        namespace: interner.resolve(v.namespace).to_string(),
        name: interner.resolve(v.name).to_string(),
        resource_version: v.resource_version.clone(),
        create_only: m.create_only,
        status_collectors,
        want_singleton_reported_state: m.want_singleton_reported_state,
        want_multi_wec_reported_state: m.want_multi_wec_reported_state,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{labels, object, policy};
    use crate::engine::Engine;
    use crate::explain::ObjectKey;
    use crate::input::{Change, WorkStatusReport};
    use crate::reported::{Label, Report};

    fn wec(name: &str, loc: &str) -> Change {
        Change::Wec {
            name: name.into(),
            labels: Some(labels(&[("loc", loc)])),
        }
    }

    fn work_status(wec: &str, status: Option<serde_json::Value>) -> Change {
        Change::WorkStatus {
            wec: wec.into(),
            name: format!("w-{wec}"),
            report: Some(WorkStatusReport {
                object: ObjectKey {
                    group: "apps".into(),
                    resource: "deployments".into(),
                    namespace: "ns".into(),
                    name: "d".into(),
                },
                status,
                last_update: None,
            }),
        }
    }

    /// The epoch's report of the one object, as `(changed, report)`.
    fn report_of(engine: &mut Engine) -> Vec<Option<Report>> {
        engine
            .advance()
            .reports
            .into_iter()
            .map(|c| c.report)
            .collect()
    }

    #[test]
    fn reports_follow_work_statuses_destinations_and_labels() {
        let mut e = Engine::new();
        let spec = |loc: &str, flag: &str| {
            json!({"clusterSelectors": [{"matchLabels": {"loc": loc}}],
                   "downsync": [{"resources": ["deployments"], flag: true}]})
        };
        e.apply(&wec("c1", "x"));
        e.apply(&wec("c2", "y"));
        e.apply(&policy("p", 1, spec("x", "wantSingletonReportedState")));
        e.apply(&object(
            "apps",
            "v1",
            "deployments",
            "ns",
            "d",
            Some((&[], "1")),
        ));
        // Asked for, but no WorkStatus yet: nothing to write (the object has no label).
        assert_eq!(report_of(&mut e), Vec::<Option<Report>>::new());
        let s1 = json!({"replicas": 1, "availableReplicas": 1});
        e.apply(&work_status("c1", Some(s1.clone())));
        // A WorkStatus in a WEC the object does not go to is not read.
        e.apply(&work_status("c2", Some(json!({"replicas": 5}))));
        assert_eq!(
            report_of(&mut e),
            vec![Some(Report::Status(s1.clone(), Label::Singleton))]
        );
        // A status-only change of the object changes nothing.
        e.apply(&object(
            "apps",
            "v1",
            "deployments",
            "ns",
            "d",
            Some((&[], "2")),
        ));
        assert_eq!(report_of(&mut e), Vec::<Option<Report>>::new());
        // The label Bindery wrote arrives: nothing changes either.
        let marked: &[(&str, &str)] = &[("managed-by.kubestellar.io/singletonstatus", "true")];
        e.apply(&object(
            "apps",
            "v1",
            "deployments",
            "ns",
            "d",
            Some((marked, "3")),
        ));
        assert_eq!(report_of(&mut e), Vec::<Option<Report>>::new());
        // Multi-WEC over both WECs: the aggregate.
        e.apply(&policy("q", 1, spec("y", "wantMultiWECReportedState")));
        let out = report_of(&mut e);
        let [Some(Report::Status(agg, Label::MultiWec))] = out.as_slice() else {
            panic!("{out:?}")
        };
        // The least over the WECs reporting each field (c2 reports no availableReplicas).
        assert_eq!(
            (agg["replicas"].clone(), agg["availableReplicas"].clone()),
            (json!(1), json!(1))
        );
        // Both policies gone: the labelled object is cleared.
        e.apply(&Change::Policy {
            name: "p".into(),
            policy: None,
        });
        e.apply(&Change::Policy {
            name: "q".into(),
            policy: None,
        });
        assert_eq!(report_of(&mut e), vec![Some(Report::Clear)]);
        // Once the label is gone, there is nothing left to write.
        e.apply(&object(
            "apps",
            "v1",
            "deployments",
            "ns",
            "d",
            Some((&[], "4")),
        ));
        assert_eq!(report_of(&mut e), vec![None]);
        assert!(e.reports().is_empty());
        assert_eq!(e.to_oracle().reports(), e.reports());
    }
}

#[cfg(test)]
mod own_write_tests {
    use serde_json::json;

    use super::super::test_support::{labels, object, policy};
    use crate::engine::Engine;
    use crate::explain::ObjectKey;
    use crate::input::Change;

    fn written(rv: &str) -> Change {
        Change::StatusWritten {
            object: ObjectKey {
                group: "apps".into(),
                resource: "deployments".into(),
                namespace: "ns".into(),
                name: "d".into(),
            },
            resource_version: rv.into(),
        }
    }

    /// The resourceVersion the Binding's entry shows.
    fn shown(e: &Engine) -> String {
        e.binding("p").unwrap().namespace_scope[0]
            .resource_version
            .clone()
    }

    #[test]
    fn own_status_writes_do_not_change_the_entries_in_either_order() {
        let mut e = Engine::new();
        e.apply(&Change::Wec {
            name: "c1".into(),
            labels: Some(labels(&[])),
        });
        e.apply(&policy(
            "p",
            1,
            json!({"clusterSelectors": [{}], "downsync": [{"resources": ["deployments"]}]}),
        ));
        let marked: &[(&str, &str)] = &[("managed-by.kubestellar.io/singletonstatus", "true")];
        let d = |rv: &str| object("apps", "v1", "deployments", "ns", "d", Some((marked, rv)));
        e.apply(&d("1"));
        e.advance();
        assert_eq!(shown(&e), "1");
        // The update arrives first, then Bindery learns its write made it: undone.
        e.apply(&d("2"));
        e.apply(&written("2"));
        assert!(e.advance().changes.is_empty());
        assert_eq!(shown(&e), "1");
        // Told first, then the update: never applied.
        e.apply(&written("3"));
        e.apply(&d("3"));
        assert!(e.advance().changes.is_empty());
        assert_eq!(shown(&e), "1");
        // Another writer's update (not told) is shown.
        e.apply(&d("4"));
        assert_eq!(e.advance().changes.len(), 1);
        assert_eq!(shown(&e), "4");
        // An unlabelled object's updates are always shown.
        let plain = object("apps", "v1", "deployments", "ns", "d", Some((&[], "5")));
        e.apply(&plain);
        e.apply(&written("5"));
        e.advance();
        assert_eq!(shown(&e), "5");
        assert_eq!(e.to_oracle().bindings(), e.bindings());
    }
}
