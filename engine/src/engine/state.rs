//! The engine's input state: the interned strings, the object ids, and the current
//! record of every WEC, workload object and policy, so that a change retracts exactly
//! the previous record from the dataflow's inputs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Engine;
use crate::collector::{CollectorSpec, compile_collector};
use crate::dataflow::Inputs;
use crate::input::{
    Change, CollectorInput, PolicyInput, WorkStatusReport, WorkloadRef, WorkloadState,
};
use crate::intern::{Interner, Sym};
use crate::labels::Labels;
use crate::model::{Json, ObjectId, ObjectKey, ObjectRecord, ObjectVersion, WorkStatusRecord};
use crate::policy::CompiledPolicy;

/// A policy as the engine keeps it.
pub(super) struct StoredPolicy {
    /// As compiled for the dataflow.
    pub(super) compiled: CompiledPolicy,
    /// As it was given (for [`Engine::to_oracle`] and [`Engine::policy`]).
    pub(super) input: PolicyInput,
    /// The interner references its compilation took, released when it goes.
    pub(super) syms: Vec<Sym>,
}

/// What the engine has been told so far, interned; only worker 0 holds it.
///
/// Interner references: a WEC holds its name and labels; an object its group,
/// resource, namespace, name, version, labels and kind; a policy its name and what its
/// compilation interned; a WorkStatus its WEC, name and the key of the object it
/// reports on. Released when replaced or removed, freed after the epoch.
#[derive(Default)]
pub(super) struct InputState {
    pub(super) interner: Interner,
    pub(super) wecs: HashMap<Sym, Labels>,
    pub(super) object_ids: HashMap<(Sym, Sym, Sym, Sym), ObjectId>,
    pub(super) objects: Vec<Option<(ObjectRecord, ObjectVersion)>>,
    /// Per object id in use: its `uid` and `kind` (not in the dataflow: only what
    /// worker 0 renders, a CombinedStatus's name and owner, reads them).
    pub(super) identities: Vec<(Box<str>, Sym)>,
    pub(super) free_ids: Vec<ObjectId>,
    /// Each policy as compiled for the dataflow, and as it was given.
    pub(super) policies: HashMap<Sym, StoredPolicy>,
    /// Each WorkStatus by `(WEC, name)`: the object it reports on, and its record.
    pub(super) work_statuses: HashMap<(Sym, Sym), (ObjectKey, WorkStatusRecord)>,
    /// Bindery's own status writes (`Change::StatusWritten`): see [`OwnWrites`].
    pub(super) own_writes: OwnWrites,
    /// The symbols of the two status-return labels.
    pub(super) status_labels: [Sym; 2],
    /// Each StatusCollector as given and as compiled (or its errors).
    pub(super) collectors: HashMap<Sym, StoredCollector>,
    /// The content of the objects whose collectors read `obj` (`Change::Content`), by
    /// object id: its `resourceVersion` and the object. Dropped with the object.
    pub(super) contents: HashMap<ObjectId, (Box<str>, Json)>,
    /// What changed since the last epoch beside the dataflow, whose CombinedStatuses
    /// worker 0 renders again: collectors, objects' uid or kind, policies' uid.
    pub(super) touched: Touched,
}

/// A StatusCollector as the engine keeps it.
pub(super) struct StoredCollector {
    /// As given (for [`Engine::to_oracle`]).
    pub(super) input: CollectorInput,
    pub(super) generation: i64,
    /// Compiled, shared by the renderings that use it (its pointer tells a new spec).
    pub(super) spec: Result<Arc<CollectorSpec>, Vec<String>>,
}

/// See [`InputState::touched`].
#[derive(Default)]
pub(super) struct Touched {
    pub(super) collectors: HashSet<Sym>,
    pub(super) objects: HashSet<ObjectKey>,
    pub(super) policies: HashSet<Sym>,
    /// Objects with content whose `resourceVersion` moved past it: fetched again if
    /// still read.
    pub(super) stale_contents: HashSet<ObjectKey>,
}

/// What keeps Bindery's own status writes from changing Binding entries. Only objects
/// carrying a status-return label (those Bindery writes status into) are tracked.
#[derive(Default)]
pub(super) struct OwnWrites {
    /// Per object whose last update changed its `resourceVersion` alone: the one
    /// shown before (what the object's entries go back to if that update is found
    /// to be Bindery's own write).
    previous: HashMap<ObjectId, String>,
    /// Per object: the `resourceVersion`s of own writes whose update has not arrived
    /// yet (at most [`OwnWrites::EXPECTED`], the oldest dropped).
    expected: HashMap<ObjectId, Vec<String>>,
}

impl OwnWrites {
    /// Own writes remembered per object before their update arrives.
    const EXPECTED: usize = 4;

    fn forget(&mut self, id: ObjectId) {
        self.previous.remove(&id);
        self.expected.remove(&id);
    }

    /// Takes `rv` out of the object's expected writes, if it is one.
    fn take_expected(&mut self, id: ObjectId, rv: &str) -> bool {
        let Some(list) = self.expected.get_mut(&id) else {
            return false;
        };
        let Some(i) = list.iter().position(|r| r == rv) else {
            return false;
        };
        list.remove(i);
        if list.is_empty() {
            self.expected.remove(&id);
        }
        true
    }

    fn expect(&mut self, id: ObjectId, rv: &str) {
        let list = self.expected.entry(id).or_default();
        if list.len() == Self::EXPECTED {
            list.remove(0);
        }
        list.push(rv.to_string());
    }
}

impl Engine {
    /// Applies one change to the current epoch.
    pub fn apply(&mut self, change: &Change) {
        self.input_changed = true;
        self.state.apply(&mut self.inputs, change);
    }

    /// Policy `name` as given (uid, generation, parsed spec), if it exists.
    pub fn policy(&self, name: &str) -> Option<&PolicyInput> {
        self.state
            .policies
            .get(&self.state.interner.get(name)?)
            .map(|stored| &stored.input)
    }
}

impl InputState {
    /// Records `change` and tells `inputs` what it retracts and inserts.
    pub(super) fn apply(&mut self, inputs: &mut Inputs, change: &Change) {
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
                        inputs.wecs.remove((name, old));
                    }
                    if let Some(new) = new {
                        inputs.wecs.insert((name, new));
                    }
                }
            }
            Change::Workload { object, state } => {
                self.apply_workload(inputs, object, state.as_ref())
            }
            Change::WorkStatus { wec, name, report } => {
                self.apply_work_status(inputs, wec, name, report.as_ref())
            }
            Change::StatusWritten {
                object,
                resource_version,
            } => self.apply_status_written(inputs, object, resource_version),
            Change::Content { object, content } => self.apply_content(object, content.as_ref()),
            Change::Collector { name, collector } => {
                let name = self.interner.intern(name);
                let stored = collector.as_ref().map(|c| StoredCollector {
                    input: c.clone(),
                    generation: c.generation,
                    spec: compile_collector(&c.spec).map(Arc::new),
                });
                let old = match stored {
                    Some(stored) => self.collectors.insert(name, stored),
                    None => {
                        self.interner.release(name);
                        self.collectors.remove(&name)
                    }
                };
                if old.is_some() {
                    self.interner.release(name);
                }
                self.touched.collectors.insert(name);
            }
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
                if old.as_ref().map(|o| &o.uid) != new.as_ref().map(|n| &n.uid) {
                    self.touched.policies.insert(name);
                }
                if old != new {
                    if let Some(old) = old {
                        inputs.policies.remove((name, old));
                    }
                    if let Some(new) = new {
                        inputs.policies.insert((name, new));
                    }
                }
            }
        }
    }

    fn apply_workload(
        &mut self,
        inputs: &mut Inputs,
        object: &WorkloadRef,
        state: Option<&WorkloadState>,
    ) {
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
                self.own_writes.forget(id);
                self.contents.remove(&id);
                let (record, version) = self.objects[id as usize].take().expect("object id in use");
                release_object(i, &record, &version);
                let (_, kind) = std::mem::take(&mut self.identities[id as usize]);
                i.release(kind);
                // Created again in the same epoch, it has the same records but not the
                // same uid.
                self.touched.objects.insert(key);
                inputs.objects.remove((id, record));
                inputs.versions.remove((id, version));
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
                let identity = &mut self.identities[id as usize];
                if *identity.0 != *state.uid || i.resolve(identity.1) != state.kind {
                    let kind = i.intern(&state.kind);
                    i.release(std::mem::replace(identity, (state.uid.as_str().into(), kind)).1);
                    self.touched.objects.insert(key);
                }
                let slot = self.objects[id as usize]
                    .as_mut()
                    .expect("object id in use");
                let rv_only = slot.0 == record
                    && slot.1.version == version.version
                    && slot.1.resource_version != version.resource_version;
                if self
                    .contents
                    .get(&id)
                    .is_some_and(|(rv, _)| **rv != *version.resource_version)
                {
                    self.touched.stale_contents.insert(key);
                }
                let labelled = self
                    .status_labels
                    .iter()
                    .any(|&l| record.labels.get(l).is_some());
                if rv_only && labelled {
                    if self.own_writes.take_expected(id, &version.resource_version) {
                        // Bindery's own status write: the entries keep what they show.
                        release_object(i, &record, &version);
                        return;
                    }
                    self.own_writes
                        .previous
                        .insert(id, slot.1.resource_version.clone());
                } else {
                    self.own_writes.previous.remove(&id);
                }
                // The new record and version took their references: give back the old ones.
                release_object(i, &slot.0, &slot.1);
                if slot.0 != record {
                    inputs
                        .objects
                        .remove((id, std::mem::replace(&mut slot.0, record.clone())));
                    inputs.objects.insert((id, record));
                }
                if slot.1 != version {
                    inputs
                        .versions
                        .remove((id, std::mem::replace(&mut slot.1, version.clone())));
                    inputs.versions.insert((id, version));
                }
            }
            None => {
                let id = self.free_ids.pop().unwrap_or_else(|| {
                    self.objects.push(None);
                    self.identities.push(Default::default());
                    (self.objects.len() - 1) as ObjectId
                });
                self.identities[id as usize] = (state.uid.as_str().into(), i.intern(&state.kind));
                self.object_ids.insert(key, id);
                inputs.objects.insert((id, record.clone()));
                inputs.versions.insert((id, version.clone()));
                self.objects[id as usize] = Some((record, version));
            }
        }
    }
}

impl InputState {
    /// The content of `object` (`None`: not found), kept if the object is known; its
    /// CombinedStatuses are computed again.
    fn apply_content(
        &mut self,
        object: &crate::explain::ObjectKey,
        content: Option<&crate::input::ObjectContent>,
    ) {
        let Some((key, id)) = self.object_id(object) else {
            return;
        };
        match content {
            Some(c) => {
                let value = (
                    c.resource_version.as_str().into(),
                    Json::new(c.object.clone()),
                );
                self.contents.insert(id, value);
            }
            None => {
                self.contents.remove(&id);
            }
        }
        self.touched.objects.insert(key);
    }

    /// The key and id of a known object.
    fn object_id(&self, object: &crate::explain::ObjectKey) -> Option<(ObjectKey, ObjectId)> {
        let i = &self.interner;
        let key = (
            i.get(&object.group)?,
            i.get(&object.resource)?,
            i.get(&object.namespace)?,
            i.get(&object.name)?,
        );
        Some((key, *self.object_ids.get(&key)?))
    }

    /// Bindery wrote a status into `object`, now at `rv`: if the object's last update
    /// took it to `rv` changing nothing else, its entries go back to what they showed
    /// before; if that update has not arrived yet, it is expected.
    fn apply_status_written(
        &mut self,
        inputs: &mut Inputs,
        object: &crate::explain::ObjectKey,
        rv: &str,
    ) {
        let Some((_, id)) = self.object_id(object) else {
            return;
        };
        let slot = self.objects[id as usize]
            .as_mut()
            .expect("object id in use");
        if slot.1.resource_version != rv {
            self.own_writes.expect(id, rv);
            return;
        }
        if let Some(previous) = self.own_writes.previous.remove(&id) {
            let mut shown = slot.1.clone();
            shown.resource_version = previous;
            inputs
                .versions
                .remove((id, std::mem::replace(&mut slot.1, shown.clone())));
            inputs.versions.insert((id, shown));
        }
    }

    fn apply_work_status(
        &mut self,
        inputs: &mut Inputs,
        wec: &str,
        name: &str,
        report: Option<&WorkStatusReport>,
    ) {
        let i = &mut self.interner;
        let new = report.map(|r| {
            let o = &r.object;
            let key = (
                i.intern(&o.group),
                i.intern(&o.resource),
                i.intern(&o.namespace),
                i.intern(&o.name),
            );
            let record = WorkStatusRecord {
                wec: i.intern(wec),
                name: i.intern(name),
                status: r.status.clone().map(Json::new),
                last_update: r.last_update.clone(),
            };
            (key, record)
        });
        let id = match &new {
            Some((_, record)) => (record.wec, record.name),
            None => match (i.get(wec), i.get(name)) {
                (Some(w), Some(n)) => (w, n),
                _ => return,
            },
        };
        let old = match &new {
            Some(new) => self.work_statuses.insert(id, new.clone()),
            None => self.work_statuses.remove(&id),
        };
        if let Some((key, record)) = &old {
            i.release_all([key.0, key.1, key.2, key.3, record.wec, record.name]);
        }
        if old != new {
            if let Some(old) = old {
                inputs.work_statuses.remove(old);
            }
            if let Some(new) = new {
                inputs.work_statuses.insert(new);
            }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{labels, object, oracle_of, policy};
    use crate::engine::Engine;
    use crate::input::{Change, LabelMap};

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
}
