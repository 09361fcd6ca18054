//! [`Engine`]: feeds [`Change`]s into the dataflow, one epoch at a time, and keeps the
//! Bindings it outputs materialized so they can be rendered.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use timely::communication::allocator::thread::Thread;
use timely::communication::{Allocator, AllocatorBuilder};
use timely::worker::Worker;
use timely::{CommunicationConfig, WorkerConfig};

use crate::binding::{Binding, WorkloadEntry};
use crate::dataflow::{self, Inputs, OutputBuffer, OutputRecord, Time};
use crate::explain::{ExplainError, Explanation, ObjectKey, Query};
use crate::input::{Change, PolicyInput, WorkloadRef, WorkloadState};
use crate::intern::{Interner, Sym};
use crate::labels::Labels;
use crate::model::{ObjectId, ObjectRecord, ObjectVersion};
use crate::oracle::Oracle;
use crate::policy::{CompiledPolicy, Modulation};

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

/// Current sizes of the engine's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sizes {
    /// WECs.
    pub wecs: usize,
    /// Workload objects.
    pub objects: usize,
    /// Policies.
    pub policies: usize,
    /// Binding workload entries, over all Bindings.
    pub workload_entries: usize,
    /// Binding destinations, over all Bindings.
    pub destinations: usize,
    /// Interned strings.
    pub interned: usize,
}

/// A policy as the engine keeps it.
struct StoredPolicy {
    /// As compiled for the dataflow.
    compiled: CompiledPolicy,
    /// As it was given (for [`Engine::to_oracle`] and [`Engine::policy`]).
    input: PolicyInput,
    /// The interner references its compilation took, released when it goes.
    syms: Vec<Sym>,
}

/// The incremental engine. Call [`Engine::apply`] for each change, then
/// [`Engine::advance`] to close the epoch and get its Binding changes.
///
/// Its dataflow runs on one or more timely workers ([`Engine::with_workers`]). Worker 0
/// runs on the calling thread and is the only one fed: it holds the engine's input state
/// (interned strings, object ids: one assignment for every worker) and receives every
/// output record; the others, on threads of their own, hold their shares of the
/// arrangements and do their part of each join. Output does not depend on the number of
/// workers.
pub struct Engine {
    /// The input sessions. Declared before `workers`, so they are dropped (closed) first.
    inputs: Inputs,
    probe: timely::dataflow::operators::probe::Handle<Time>,
    output: OutputBuffer,
    workers: Workers,
    interner: Interner,
    epoch: Time,
    wecs: HashMap<Sym, Labels>,
    object_ids: HashMap<(Sym, Sym, Sym, Sym), ObjectId>,
    objects: Vec<Option<(ObjectRecord, ObjectVersion)>>,
    free_ids: Vec<ObjectId>,
    /// Each policy as compiled for the dataflow, and as it was given.
    ///
    /// Interner references: a WEC holds its name and labels; an object its group,
    /// resource, namespace, name, version and labels; a policy its name and what its
    /// compilation interned. Released when replaced or removed, freed after the epoch.
    policies: HashMap<Sym, StoredPolicy>,
    store: BTreeMap<Sym, PolicyState>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

/// Worker 0 and the threads of the others.
struct Workers {
    worker: Worker,
    /// The threads of workers 1.. (empty with one worker).
    peers: Vec<JoinHandle<()>>,
    /// Keeps the communication threads of a multi-worker setup alive.
    _communication: Box<dyn Any + Send>,
}

impl Drop for Workers {
    /// With several workers (the engine's inputs are closed by now): steps worker 0
    /// until the dataflow has ended everywhere, so that every peer thread ends too, then
    /// joins them.
    fn drop(&mut self) {
        if self.peers.is_empty() || std::thread::panicking() {
            return;
        }
        while self.worker.has_dataflows() {
            self.worker.step_or_park(None);
        }
        for peer in self.peers.drain(..) {
            // A peer that panicked has already reported it.
            let _ = peer.join();
        }
    }
}

/// Runs worker `builder` of a multi-worker engine: builds the same dataflow, closes its
/// inputs (worker 0 alone feeds it) and does its share of the work until the dataflow
/// ends (when worker 0's engine is dropped).
fn serve_peer(builder: AllocatorBuilder, namespaces: Sym) {
    let mut worker = Worker::new(
        WorkerConfig::default(),
        allocator(builder),
        Some(Instant::now()),
    );
    let built = dataflow::build(&mut worker, namespaces);
    drop(built.inputs);
    while worker.has_dataflows() {
        worker.step_or_park(None);
    }
}

/// The allocator `builder` makes (timely keeps its own builder trait private).
fn allocator(builder: AllocatorBuilder) -> Allocator {
    match builder {
        AllocatorBuilder::Thread(_) => Allocator::Thread(Thread::default()),
        AllocatorBuilder::Process(process) => Allocator::Process(process.build()),
        AllocatorBuilder::Tcp(tcp) => Allocator::Tcp(tcp.build()),
    }
}

impl Engine {
    /// A new engine with one timely worker on the calling thread.
    pub fn new() -> Engine {
        let thread =
            AllocatorBuilder::Thread(timely::communication::allocator::thread::ThreadBuilder);
        Engine::from_builders(vec![thread], Box::new(()))
    }

    /// A new engine whose dataflow runs on `workers` timely workers (at least one):
    /// worker 0 on the calling thread, the others on threads of their own, which end
    /// when the engine is dropped.
    pub fn with_workers(workers: usize) -> Engine {
        if workers <= 1 {
            return Engine::new();
        }
        let (builders, communication) = CommunicationConfig::Process(workers)
            .try_build()
            .expect("an in-process timely configuration always builds");
        Engine::from_builders(builders, communication)
    }

    /// The number of timely workers running the dataflow.
    pub fn workers(&self) -> usize {
        self.workers.worker.peers()
    }

    /// An engine on worker 0 of `builders`; a thread is spawned for each other builder.
    fn from_builders(
        mut builders: Vec<AllocatorBuilder>,
        communication: Box<dyn Any + Send>,
    ) -> Engine {
        let mut interner = Interner::default();
        let namespaces = interner.intern("namespaces");
        let first = builders.remove(0);
        let peers = builders
            .into_iter()
            .enumerate()
            .map(|(i, builder)| {
                std::thread::Builder::new()
                    .name(format!("bindery-worker-{}", i + 1))
                    .spawn(move || serve_peer(builder, namespaces))
                    .expect("spawning a timely worker thread")
            })
            .collect();
        let mut worker = Worker::new(
            WorkerConfig::default(),
            allocator(first),
            Some(Instant::now()),
        );
        let built = dataflow::build(&mut worker, namespaces);
        Engine {
            inputs: built.inputs,
            probe: built.probe,
            output: built.output,
            workers: Workers {
                worker,
                peers,
                _communication: communication,
            },
            interner,
            epoch: 0,
            wecs: HashMap::new(),
            object_ids: HashMap::new(),
            objects: Vec::new(),
            free_ids: Vec::new(),
            policies: HashMap::new(),
            store: BTreeMap::new(),
        }
    }

    /// Number of epochs closed so far.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Applies one change to the current epoch.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Wec { name, labels } => {
                let name = self.interner.intern(name);
                let new = labels
                    .as_ref()
                    .map(|l| Labels::intern(l, &mut self.interner));
                let old = match &new {
                    Some(l) => self.wecs.insert(name, l.clone()),
                    None => {
                        self.interner.release(name);
                        self.wecs.remove(&name)
                    }
                };
                if let Some(old) = &old {
                    self.interner.release(name);
                    old.release(&mut self.interner);
                }
                if old != new {
                    if let Some(old) = old {
                        self.inputs.wecs.remove((name, old));
                    }
                    if let Some(new) = new {
                        self.inputs.wecs.insert((name, new));
                    }
                }
            }
            Change::Workload { object, state } => self.apply_workload(object, state.as_ref()),
            Change::Policy { name, policy } => {
                let name = self.interner.intern(name);
                let stored = policy.as_ref().map(|p| {
                    let (compiled, syms) = self
                        .interner
                        .recording(|i| CompiledPolicy::compile(&p.uid, p.generation, &p.spec, i));
                    StoredPolicy {
                        compiled,
                        input: p.clone(),
                        syms,
                    }
                });
                let new = stored.as_ref().map(|s| s.compiled.clone());
                let old = match stored {
                    Some(stored) => self.policies.insert(name, stored),
                    None => {
                        self.interner.release(name);
                        self.policies.remove(&name)
                    }
                };
                let old = old.map(|old| {
                    self.interner.release(name);
                    self.interner.release_all(old.syms);
                    old.compiled
                });
                if old != new {
                    if let Some(old) = old {
                        self.inputs.policies.remove((name, old));
                    }
                    if let Some(new) = new {
                        self.inputs.policies.insert((name, new));
                    }
                }
            }
        }
    }

    fn apply_workload(&mut self, object: &WorkloadRef, state: Option<&WorkloadState>) {
        let i = &mut self.interner;
        let key = (
            i.intern(&object.group),
            i.intern(&object.resource),
            i.intern(&object.namespace),
            i.intern(&object.name),
        );
        let Some(state) = state else {
            i.release_all([key.0, key.1, key.2, key.3]);
            if let Some(id) = self.object_ids.remove(&key) {
                let (record, version) = self.objects[id as usize].take().expect("object id in use");
                release_object(i, &record, &version);
                self.inputs.objects.remove((id, record));
                self.inputs.versions.remove((id, version));
                self.free_ids.push(id);
            }
            return;
        };
        let record = ObjectRecord {
            group: key.0,
            resource: key.1,
            namespace: key.2,
            name: key.3,
            labels: Labels::intern(&state.labels, i),
        };
        let version = ObjectVersion {
            group: key.0,
            version: i.intern(&object.version),
            resource: key.1,
            namespace: key.2,
            name: key.3,
            resource_version: state.resource_version.clone(),
        };
        match self.object_ids.get(&key) {
            Some(&id) => {
                let slot = self.objects[id as usize]
                    .as_mut()
                    .expect("object id in use");
                // The new record and version took their references: give back the old ones.
                release_object(i, &slot.0, &slot.1);
                if slot.0 != record {
                    self.inputs
                        .objects
                        .remove((id, std::mem::replace(&mut slot.0, record.clone())));
                    self.inputs.objects.insert((id, record));
                }
                if slot.1 != version {
                    self.inputs
                        .versions
                        .remove((id, std::mem::replace(&mut slot.1, version.clone())));
                    self.inputs.versions.insert((id, version));
                }
            }
            None => {
                let id = self.free_ids.pop().unwrap_or_else(|| {
                    self.objects.push(None);
                    (self.objects.len() - 1) as ObjectId
                });
                self.object_ids.insert(key, id);
                self.inputs.objects.insert((id, record.clone()));
                self.inputs.versions.insert((id, version.clone()));
                self.objects[id as usize] = Some((record, version));
            }
        }
    }

    /// Closes the current epoch: runs the dataflow until its output for the epoch is
    /// complete, applies that output to the materialized Bindings and returns what changed.
    pub fn advance(&mut self) -> EpochOutput {
        let next = self.epoch + 1;
        self.inputs.advance_to(next);
        while self.probe.less_than(&next) {
            self.workers.worker.step();
        }
        let mut updates: Vec<((Sym, OutputRecord), isize)> = self
            .output
            .borrow_mut()
            .drain(..)
            .map(|(data, time, diff)| {
                debug_assert!(time < next);
                (data, diff)
            })
            .collect();
        differential_dataflow::consolidation::consolidate(&mut updates);
        self.epoch = next;
        let changes = self.apply_output(updates);
        // The epoch's retractions are rendered: strings no record uses can go.
        self.interner.collect();
        EpochOutput {
            epoch: next,
            changes,
        }
    }

    fn apply_output(&mut self, updates: Vec<((Sym, OutputRecord), isize)>) -> Vec<BindingChange> {
        let mut changes: BTreeMap<Sym, BindingChange> = BTreeMap::new();
        let mut problems_changed = BTreeSet::new();
        for ((policy, record), diff) in updates {
            debug_assert!(
                diff == 1 || diff == -1,
                "unexpected multiplicity {diff} for {record:?}"
            );
            let state = self.store.entry(policy).or_default();
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
                    let name = self.interner.resolve(wec).to_string();
                    if added {
                        state.destinations.insert(wec);
                        change.destinations_added.push(name);
                    } else {
                        state.destinations.remove(&wec);
                        change.destinations_removed.push(name);
                    }
                }
                OutputRecord::Workload(version, modulation) => {
                    let entry = render_entry(&self.interner, &version, &modulation);
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
            let state = &self.store[&policy];
            change.binding = self.interner.resolve(policy).to_string();
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
                self.store.remove(&policy);
            }
            out.push(change);
        }
        out.sort_by(|a, b| a.binding.cmp(&b.binding));
        out
    }

    /// The current Binding of policy `name`, if it has one.
    pub fn binding(&self, name: &str) -> Option<Binding> {
        let state = self.store.get(&self.interner.get(name)?)?;
        let (uid, _) = state.owner.as_ref()?;
        Some(Binding::new(
            name.to_string(),
            uid.clone(),
            state
                .destinations
                .iter()
                .map(|&d| self.interner.resolve(d).to_string())
                .collect(),
            state
                .workload
                .iter()
                .map(|(v, m)| render_entry(&self.interner, v, m)),
        ))
    }

    /// Every current Binding, sorted by name.
    pub fn bindings(&self) -> Vec<Binding> {
        let mut names: Vec<&str> = self
            .store
            .iter()
            .filter(|(_, s)| s.owner.is_some())
            .map(|(&p, _)| self.interner.resolve(p))
            .collect();
        names.sort_unstable();
        names.into_iter().filter_map(|n| self.binding(n)).collect()
    }

    /// Policy `name` as given (uid, generation, parsed spec), if it exists.
    pub fn policy(&self, name: &str) -> Option<&PolicyInput> {
        self.policies
            .get(&self.interner.get(name)?)
            .map(|stored| &stored.input)
    }

    /// The status of policy `name`, if it exists.
    pub fn status(&self, name: &str) -> Option<PolicyStatus> {
        let state = self.store.get(&self.interner.get(name)?)?;
        let (uid, generation) = state.owner.as_ref()?;
        Some(PolicyStatus {
            uid: uid.clone(),
            observed_generation: *generation,
            problems: state.problems.iter().cloned().collect(),
        })
    }

    /// `(observed generation, problems)` of every policy, by name.
    pub fn statuses(&self) -> BTreeMap<String, (i64, Vec<String>)> {
        self.store
            .iter()
            .filter_map(|(&p, s)| {
                let (_, g) = s.owner.as_ref()?;
                Some((
                    self.interner.resolve(p).to_string(),
                    (*g, s.problems.iter().cloned().collect()),
                ))
            })
            .collect()
    }

    /// The engine's current input state — every WEC with its labels, every workload
    /// object with the version it was last seen in, its labels and resourceVersion, and
    /// every policy as given (uid, generation, parsed spec) — as an [`Oracle`], so that
    /// what works on the oracle (e.g. [`Oracle::explain`]) works on a live engine's state.
    ///
    /// It is the state as applied so far, including the changes of the open epoch
    /// (which [`Engine::bindings`] reflects only after the next [`Engine::advance`]);
    /// after `advance`, its Bindings and statuses equal the engine's.
    ///
    /// Cost: O(state) time and memory (a full copy, in strings: every WEC, object and
    /// policy is resolved and inserted into the oracle's maps, O(n log n) overall); it
    /// does not touch the dataflow. Meant for one-off questions, not for every epoch.
    pub fn to_oracle(&self) -> Oracle {
        let mut oracle = Oracle::default();
        self.copy_wecs_and_policies(&mut oracle);
        for (record, version) in self.objects.iter().flatten() {
            oracle.apply(&self.object_change(record, version));
        }
        oracle
    }

    /// Explains policy `query.policy` on the engine's current input state: the same
    /// answer as [`Oracle::explain`] on [`Engine::to_oracle`], but copying only what
    /// the question needs. Every WEC and policy is copied (they are few); of the
    /// workload objects, only the one asked about and its Namespace (or, when it does
    /// not exist, those of the same resource and name elsewhere, for the error).
    /// Every object is copied only for an overview (no object, no cluster: it counts
    /// what every clause selects) and for a policy with a `wantSingletonReportedState`
    /// clause (whose problem depends on every object it selects).
    pub fn explain(&self, query: &Query) -> Result<Explanation, ExplainError> {
        let policy = self
            .interner
            .get(&query.policy)
            .and_then(|name| self.policies.get(&name));
        let every_object = policy.is_some_and(|stored| {
            (query.object.is_none() && query.cluster.is_none())
                || stored
                    .input
                    .spec
                    .downsync
                    .iter()
                    .any(|c| c.want_singleton_reported_state)
        });
        if every_object {
            return self.to_oracle().explain(query);
        }
        let mut oracle = Oracle::default();
        self.copy_wecs_and_policies(&mut oracle);
        if let Some(object) = &query.object {
            for id in self.objects_to_explain(object) {
                let (record, version) = self.objects[id as usize]
                    .as_ref()
                    .expect("object id in use");
                oracle.apply(&self.object_change(record, version));
            }
        }
        oracle.explain(query)
    }

    /// The ids of the objects that explaining `object` reads: the object and its
    /// Namespace when it exists, else the objects of its group, resource and name in
    /// other namespaces.
    fn objects_to_explain(&self, object: &ObjectKey) -> Vec<ObjectId> {
        let sym = |s: &str| self.interner.get(s);
        let (Some(group), Some(resource), Some(name)) =
            (sym(&object.group), sym(&object.resource), sym(&object.name))
        else {
            return Vec::new();
        };
        let namespace = sym(&object.namespace);
        if let Some(&id) =
            namespace.and_then(|ns| self.object_ids.get(&(group, resource, ns, name)))
        {
            let namespace_object = match (namespace, sym("namespaces")) {
                (Some(ns), Some(namespaces)) if ns != Sym::EMPTY => self
                    .object_ids
                    .get(&(Sym::EMPTY, namespaces, Sym::EMPTY, ns))
                    .copied(),
                _ => None,
            };
            return std::iter::once(id).chain(namespace_object).collect();
        }
        self.object_ids
            .iter()
            .filter(|((g, r, _, n), _)| (*g, *r, *n) == (group, resource, name))
            .map(|(_, &id)| id)
            .collect()
    }

    /// Copies every WEC and every policy into `oracle`.
    fn copy_wecs_and_policies(&self, oracle: &mut Oracle) {
        for (&name, wec) in &self.wecs {
            oracle.apply(&Change::Wec {
                name: self.interner.resolve(name).to_string(),
                labels: Some(wec.resolve(&self.interner)),
            });
        }
        for (&name, stored) in &self.policies {
            oracle.apply(&Change::Policy {
                name: self.interner.resolve(name).to_string(),
                policy: Some(stored.input.clone()),
            });
        }
    }

    /// The change that creates one stored workload object, in strings.
    fn object_change(&self, record: &ObjectRecord, version: &ObjectVersion) -> Change {
        let resolve = |sym: Sym| self.interner.resolve(sym).to_string();
        Change::Workload {
            object: WorkloadRef {
                group: resolve(version.group),
                version: resolve(version.version),
                resource: resolve(version.resource),
                namespace: resolve(version.namespace),
                name: resolve(version.name),
            },
            state: Some(WorkloadState {
                labels: record.labels.resolve(&self.interner),
                resource_version: version.resource_version.clone(),
            }),
        }
    }

    /// Current sizes.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            wecs: self.wecs.len(),
            objects: self.object_ids.len(),
            policies: self.policies.len(),
            workload_entries: self.store.values().map(|s| s.workload.len()).sum(),
            destinations: self.store.values().map(|s| s.destinations.len()).sum(),
            interned: self.interner.len(),
        }
    }
}

/// Gives back the interner references a stored object holds.
fn release_object(interner: &mut Interner, record: &ObjectRecord, version: &ObjectVersion) {
    interner.release_all([
        record.group,
        record.resource,
        record.namespace,
        record.name,
        version.version,
    ]);
    record.labels.release(interner);
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

    use super::*;
    use crate::input::LabelMap;
    use crate::policy::PolicySpec;

    fn labels(pairs: &[(&str, &str)]) -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn object(
        group: &str,
        version: &str,
        resource: &str,
        ns: &str,
        name: &str,
        state: Option<(&[(&str, &str)], &str)>,
    ) -> Change {
        Change::Workload {
            object: WorkloadRef {
                group: group.into(),
                version: version.into(),
                resource: resource.into(),
                namespace: ns.into(),
                name: name.into(),
            },
            state: state.map(|(l, rv)| WorkloadState {
                labels: labels(l),
                resource_version: rv.into(),
            }),
        }
    }

    fn policy(name: &str, generation: i64, spec: serde_json::Value) -> Change {
        Change::Policy {
            name: name.into(),
            policy: Some(PolicyInput {
                uid: format!("uid-{name}"),
                generation,
                spec: PolicySpec::parse(Some(&spec)),
            }),
        }
    }

    /// The oracle holding exactly `changes`, applied in order.
    fn oracle_of(changes: &[Change]) -> Oracle {
        let mut oracle = Oracle::default();
        for c in changes {
            oracle.apply(c);
        }
        oracle
    }

    #[test]
    fn to_oracle_holds_the_current_inputs_after_updates_and_deletes() {
        let mut engine = Engine::new();
        let history = [
            Change::Wec {
                name: "c1".into(),
                labels: Some(labels(&[("group", "edge")])),
            },
            Change::Wec {
                name: "c2".into(),
                labels: Some(labels(&[("group", "core")])),
            },
            object(
                "",
                "v1",
                "namespaces",
                "",
                "ns1",
                Some((&[("env", "prod")], "1")),
            ),
            object(
                "apps",
                "v1",
                "deployments",
                "ns1",
                "web",
                Some((&[("app", "web")], "2")),
            ),
            object("", "v1", "configmaps", "ns1", "cfg", Some((&[], "3"))),
            object(
                "example.com",
                "v1",
                "widgets",
                "ns1",
                "w",
                Some((&[("a", "b")], "4")),
            ),
            policy(
                "p",
                1,
                json!({"clusterSelectors": [{"matchLabels": {"group": "edge"}}],
                       "downsync": [{"resources": ["deployments"], "wantSingletonReportedState": true}]}),
            ),
            policy("gone", 1, json!({"downsync": [{"resources": ["*"]}]})),
        ];
        for c in &history {
            engine.apply(c);
        }
        engine.advance();
        // Later: a relabel, a version switch, a new resourceVersion, deletes, an edit.
        let later = [
            Change::Wec {
                name: "c2".into(),
                labels: Some(labels(&[("group", "edge")])),
            },
            object(
                "apps",
                "v1",
                "deployments",
                "ns1",
                "web",
                Some((&[("app", "web"), ("tier", "1")], "5")),
            ),
            object(
                "example.com",
                "v2",
                "widgets",
                "ns1",
                "w",
                Some((&[("a", "b")], "6")),
            ),
            object("", "v1", "configmaps", "ns1", "cfg", None),
            Change::Policy {
                name: "gone".into(),
                policy: None,
            },
            policy(
                "p",
                2,
                json!({"clusterSelectors": [{"matchLabels": {"group": "edge"}}, {"matchLabels": {"x": "y z"}}],
                       "downsync": [{"resources": ["deployments", "widgets"], "wantSingletonReportedState": true}]}),
            ),
        ];
        for c in &later {
            engine.apply(c);
        }
        // Before `advance` the oracle already holds the open epoch's inputs.
        let want = oracle_of(&history.iter().chain(&later).cloned().collect::<Vec<_>>());
        let got = engine.to_oracle();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        engine.advance();
        let got = engine.to_oracle();
        let json = |bs: Vec<Binding>| bs.iter().map(Binding::to_json).collect::<Vec<_>>();
        assert_eq!(json(got.bindings()), json(engine.bindings()));
        assert_eq!(got.statuses(), engine.statuses());
        // The widget in the version it was last seen in; the deleted ConfigMap is gone.
        let p = got.binding("p").unwrap().to_json();
        let entries = p["spec"]["workload"]["namespaceScope"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{p}");
        assert_eq!(entries[1]["version"], json!("v2"));
        assert_eq!(entries[1]["resourceVersion"], json!("6"));
        assert_eq!(
            got.problems("p").unwrap().len(),
            2,
            "the invalid selector and the singleton problem"
        );
        assert!(got.binding("gone").is_none());
    }

    #[test]
    fn strings_no_record_uses_are_freed_and_their_symbols_reused() {
        let mut engine = Engine::new();
        let fresh = engine.sizes().interned;
        let wec = |labels: Option<LabelMap>| Change::Wec {
            name: "c1".into(),
            labels,
        };
        engine.apply(&wec(Some(labels(&[("group", "edge")]))));
        engine.apply(&policy(
            "p",
            1,
            json!({"clusterSelectors": [{"matchLabels": {"group": "edge"}}],
                   "downsync": [{"resources": ["configmaps"], "statusCollectors": ["sc"]}]}),
        ));
        engine.advance();
        let base = engine.sizes().interned;
        let cm = |i: usize, present: bool| {
            let (name, hash, rv) = (format!("cm-{i}"), format!("h-{i}"), format!("{i}"));
            let l: &[(&str, &str)] = &[("hash", &hash)];
            object(
                "",
                "v1",
                "configmaps",
                "ns-x",
                &name,
                present.then_some((l, &rv)),
            )
        };
        let mut history = Vec::new();
        for round in 0..3 {
            // Delete the previous round's objects and create new ones in the same epoch:
            // the deleted ones' strings are freed only after the epoch is rendered.
            let start = history.len();
            for i in 0..50 {
                if round > 0 {
                    history.push(cm(100 * (round - 1) + i, false));
                }
                history.push(cm(100 * round + i, true));
            }
            for c in &history[start..] {
                engine.apply(c);
            }
            let out = engine.advance();
            let removed: Vec<usize> = out.changes[0]
                .workload_removed
                .iter()
                .map(|e| e.name["cm-".len()..].parse().unwrap())
                .collect();
            let previous = 100 * round.max(1) - 100..100 * round.max(1) - 50;
            assert_eq!(removed.len(), if round > 0 { 50 } else { 0 });
            assert!(removed.iter().all(|n| previous.contains(n)), "{removed:?}");
            let b = engine.binding("p").unwrap().to_json();
            let want = oracle_of(
                &std::iter::once(wec(Some(labels(&[("group", "edge")]))))
                    .chain(std::iter::once(policy(
                        "p",
                        1,
                        json!({"clusterSelectors": [{"matchLabels": {"group": "edge"}}],
                               "downsync": [{"resources": ["configmaps"], "statusCollectors": ["sc"]}]}),
                    )))
                    .chain(history.iter().cloned())
                    .collect::<Vec<_>>(),
            );
            assert_eq!(b, want.binding("p").unwrap().to_json());
            // 50 objects, each with its name and label value; their namespace, label key
            // and version.
            assert_eq!(engine.sizes().interned, base + 50 * 2 + 3, "round {round}");
        }
        for i in 0..50 {
            engine.apply(&cm(200 + i, false));
        }
        engine.advance();
        assert_eq!(engine.sizes().interned, base);
        engine.apply(&wec(None));
        engine.apply(&Change::Policy {
            name: "p".into(),
            policy: None,
        });
        engine.advance();
        assert_eq!(engine.sizes().interned, fresh);
        assert!(engine.bindings().is_empty());
    }

    #[test]
    fn to_oracle_of_a_new_engine_is_empty() {
        let oracle = Engine::new().to_oracle();
        assert!(oracle.bindings().is_empty());
        assert!(oracle.statuses().is_empty());
    }
}
