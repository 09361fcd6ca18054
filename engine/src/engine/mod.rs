//! [`Engine`]: feeds [`Change`](crate::input::Change)s into the dataflow, one epoch at a time, and keeps the
//! Bindings it outputs materialized so they can be rendered.
//!
//! - `state`: the input state (interned strings, object ids, the current record of
//!   every input) and [`Engine::apply`];
//! - `workers`: the timely workers running the dataflow, and stepping them;
//! - `output`: the materialized output per policy, [`Engine::binding`],
//!   [`Engine::status`] and the types an epoch's changes are told in;
//! - `explain_copy`: the input state copied into an [`Oracle`](crate::oracle::Oracle)
//!   for [`Engine::to_oracle`] and [`Engine::explain`].

mod arrangements;
mod combined;
mod explain_copy;
mod output;
mod state;
#[cfg(test)]
mod test_support;
mod workers;

use std::any::Any;

use serde::Serialize;
use timely::communication::AllocatorBuilder;
use timely::dataflow::operators::probe::Handle as ProbeHandle;

use crate::collector::{CollectorStatus, CombinedResult};
use crate::dataflow::{CombinedBuffer, Inputs, OutputBuffer, ReportBuffer, Time, WellKnown};
use arrangements::ArrangementLog;
pub use arrangements::ArrangementSize;
use combined::CombinedStore;
pub use combined::{CombinedChange, EvaluationWork};
use output::Store;
pub use output::{BindingChange, EpochOutput, PolicyStatus};
use state::InputState;
use workers::Workers;
pub use workers::{ClusterError, ClusterLinks, serve_cluster};

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
    /// WorkStatuses.
    pub work_statuses: usize,
    /// Workload objects Bindery returns status into (or clears).
    pub reports: usize,
    /// CombinedStatuses.
    pub combined_statuses: usize,
    /// StatusCollectors whose spec has errors.
    pub invalid_collectors: usize,
    /// Interned strings.
    pub interned: usize,
}

/// An empty input state, and the symbols the dataflow is built with (interned first,
/// so every process of a cluster has the same ones).
fn initial_state() -> (InputState, WellKnown) {
    let mut state = InputState::default();
    let i = &mut state.interner;
    let known = WellKnown {
        namespaces: i.intern("namespaces"),
        singleton_label: i.intern(crate::reported::SINGLETON_LABEL),
        multi_wec_label: i.intern(crate::reported::MULTI_WEC_LABEL),
        crd_group: i.intern("apiextensions.k8s.io"),
        crds: i.intern("customresourcedefinitions"),
    };
    state.status_labels = [known.singleton_label, known.multi_wec_label];
    (state, known)
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
    probe: ProbeHandle<Time>,
    output: OutputBuffer,
    reports: ReportBuffer,
    combined_output: CombinedBuffer,
    workers: Workers,
    state: InputState,
    /// Epochs closed (published) so far.
    epoch: u64,
    /// The dataflow's input time: it advances at each epoch with changes only.
    time: Time,
    /// Whether a change was applied since the last `advance` (true at first: the
    /// dataflow starts with what `initial_state` knows). Without one the epoch's output
    /// is empty, and `advance` closes it without stepping the dataflow.
    input_changed: bool,
    store: Store,
    combined: CombinedStore,
    /// What each arrangement holds, when measured ([`Engine::with_arrangement_log`]).
    arrangement_log: Option<ArrangementLog>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// An engine on worker 0 of `builders`; a thread is spawned for each other builder.
    fn from_builders(
        builders: Vec<AllocatorBuilder>,
        communication: Box<dyn Any + Send>,
    ) -> Engine {
        Engine::from_builders_logged(builders, communication, None)
    }

    /// The same, each worker's arrangements followed by `log`, if given.
    fn from_builders_logged(
        builders: Vec<AllocatorBuilder>,
        communication: Box<dyn Any + Send>,
        log: Option<&ArrangementLog>,
    ) -> Engine {
        let (state, known) = initial_state();
        let (workers, built) = Workers::start(builders, communication, known, log);
        Engine {
            inputs: built.inputs,
            probe: built.probe,
            output: built.output,
            reports: built.reports,
            combined_output: built.combined,
            workers,
            state,
            epoch: 0,
            time: 0,
            input_changed: true,
            store: Store::default(),
            combined: CombinedStore::default(),
            arrangement_log: None,
        }
    }

    /// Number of epochs closed so far.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Closes the current epoch: runs the dataflow until its output for the epoch is
    /// complete, applies that output to the materialized Bindings and returns what changed.
    /// An epoch without applied changes changes nothing: it is closed without a step of
    /// the dataflow.
    pub fn advance(&mut self) -> EpochOutput {
        self.epoch += 1;
        let epoch = self.epoch;
        if !std::mem::take(&mut self.input_changed) {
            return EpochOutput {
                epoch,
                ..EpochOutput::default()
            };
        }
        self.step_dataflow();
        let next = self.time;
        let updates = output::take_updates(&self.output, next);
        let report_updates = output::take_updates(&self.reports, next);
        let changes = self.store.apply(&self.state.interner, updates);
        let reports = self
            .store
            .apply_reports(&self.state.interner, report_updates);
        let combined_updates = output::take_updates(&self.combined_output, next);
        let touched = std::mem::take(&mut self.state.touched);
        let collectors = combined::collector_statuses(&self.state, Some(&touched.collectors));
        let (combined, missing_collectors) =
            self.combined.apply(&self.state, combined_updates, touched);
        let content_requests = self.combined.take_content_requests(&self.state);
        let evaluations = self.combined.take_work();
        // The epoch's retractions are rendered: strings no record uses can go.
        self.state.interner.collect();
        EpochOutput {
            epoch,
            changes,
            reports,
            combined,
            collectors,
            content_requests,
            missing_collectors,
            evaluations,
        }
    }

    /// Advances the input time and steps the dataflow until it is complete up to it.
    fn step_dataflow(&mut self) {
        self.time += 1;
        self.inputs.advance_to(self.time);
        self.workers.step_until(&self.probe, self.time);
    }

    /// Every workload object whose content is wanted now (a Binding entry of it names a
    /// valid StatusCollector that reads `obj`, and its content is missing or of another
    /// `resourceVersion`), sorted, with its `resourceVersion`. Each is also in the
    /// [`EpochOutput::content_requests`] of the epoch it became so.
    pub fn contents_wanted(&self) -> Vec<(crate::WorkloadRef, String)> {
        self.combined.contents_wanted(&self.state)
    }

    /// Every CombinedStatus, sorted by namespace and name.
    pub fn combined_statuses(&self) -> Vec<CombinedResult> {
        self.combined.all()
    }

    /// The StatusCollectors each policy's Binding entries name that do not exist or are
    /// invalid, sorted, by policy name (policies with none missing left out).
    pub fn missing_collectors(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.combined.all_missing(&self.state)
    }

    /// Every StatusCollector's status, sorted by name.
    pub fn collector_statuses(&self) -> Vec<CollectorStatus> {
        combined::collector_statuses(&self.state, None)
    }

    /// Current sizes.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            wecs: self.state.wecs.len(),
            objects: self.state.object_ids.len(),
            policies: self.state.policies.len(),
            workload_entries: self.store.workload_entries(),
            destinations: self.store.destinations(),
            work_statuses: self.state.work_statuses.len(),
            reports: self.store.reports(),
            combined_statuses: self.combined.len(),
            invalid_collectors: self
                .state
                .collectors
                .values()
                .filter(|c| c.spec.is_err())
                .count(),
            interned: self.state.interner.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Engine;
    use super::test_support::{labels, object, oracle_of, policy};
    use crate::input::Change;

    /// Epochs without changes are skipped by the dataflow; the epochs after them are
    /// computed as if they had not been, on one worker and on two.
    #[test]
    fn epochs_without_changes_skip_the_dataflow_and_change_nothing() {
        for workers in [1, 2] {
            let mut e = Engine::with_workers(workers);
            let mut applied = vec![
                Change::Wec {
                    name: "c1".into(),
                    labels: Some(labels(&[("loc", "x")])),
                },
                policy(
                    "p",
                    1,
                    json!({"clusterSelectors": [{"matchLabels": {"loc": "x"}}],
                           "downsync": [{"resources": ["configmaps"]}]}),
                ),
                object("", "v1", "configmaps", "ns", "a", Some((&[], "1"))),
            ];
            for c in &applied {
                e.apply(c);
            }
            assert_eq!(e.advance().changes.len(), 1);
            for epoch in 2..=5 {
                let out = e.advance();
                assert_eq!(out.epoch, epoch);
                assert!(out.changes.is_empty() && out.reports.is_empty());
            }
            let b = object("", "v1", "configmaps", "ns", "b", Some((&[], "2")));
            e.apply(&b);
            applied.push(b);
            let out = e.advance();
            assert_eq!(out.epoch, 6);
            assert_eq!(out.changes.len(), 1, "{workers} workers");
            assert_eq!(e.binding("p").unwrap().namespace_scope.len(), 2);
            assert_eq!(e.bindings(), oracle_of(&applied).bindings());
            assert_eq!(e.binding_count(), 1);
            e.apply(&Change::Policy {
                name: "p".into(),
                policy: None,
            });
            e.advance();
            assert_eq!(e.binding_count(), e.bindings().len());
            assert_eq!(e.binding_count(), 0);
        }
    }
}
