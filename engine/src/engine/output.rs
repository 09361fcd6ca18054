//! The materialized output: the dataflow's output records applied per policy, so that
//! each epoch's changes can be listed and the current Bindings and statuses rendered.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::Engine;
use crate::binding::{Binding, WorkloadEntry};
use crate::dataflow::{OutputBuffer, OutputRecord, Time};
use crate::intern::{Interner, Sym};
use crate::model::ObjectVersion;
use crate::policy::Modulation;

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

/// What one epoch changed.
#[derive(Clone, Debug, Default)]
pub struct EpochOutput {
    /// The epoch (1 for the first `advance`).
    pub epoch: u64,
    /// Changed Bindings, sorted by name.
    pub changes: Vec<BindingChange>,
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
}

/// Every policy's materialized Binding and status, by policy name.
#[derive(Default, Debug)]
pub(super) struct Store {
    policies: BTreeMap<Sym, PolicyState>,
}

/// Takes the output updates of the epochs before `next` from `buffer`, consolidated.
pub(super) fn take_updates(buffer: &OutputBuffer, next: Time) -> Vec<((Sym, OutputRecord), isize)> {
    let mut updates: Vec<((Sym, OutputRecord), isize)> = buffer
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

    /// The status of policy `name`, if it exists.
    pub fn status(&self, name: &str) -> Option<PolicyStatus> {
        self.store.status(&self.state.interner, name)
    }

    /// `(observed generation, problems)` of every policy, by name.
    pub fn statuses(&self) -> BTreeMap<String, (i64, Vec<String>)> {
        self.store.statuses(&self.state.interner)
    }
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

    /// Every current Binding, sorted by name.
    pub(super) fn bindings(&self, interner: &Interner) -> Vec<Binding> {
        let mut names: Vec<&str> = self
            .policies
            .iter()
            .filter(|(_, s)| s.owner.is_some())
            .map(|(&p, _)| interner.resolve(p))
            .collect();
        names.sort_unstable();
        names
            .into_iter()
            .filter_map(|n| self.binding(interner, n))
            .collect()
    }

    /// The status of policy `name`, if it exists.
    pub(super) fn status(&self, interner: &Interner, name: &str) -> Option<PolicyStatus> {
        let state = self.policies.get(&interner.get(name)?)?;
        let (uid, generation) = state.owner.as_ref()?;
        Some(PolicyStatus {
            uid: uid.clone(),
            observed_generation: *generation,
            problems: state.problems.iter().cloned().collect(),
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
