//! What each arrangement of the dataflow holds, from differential's own logging: a
//! measurement ([`Engine::with_arrangement_log`]), off in normal runs (timely then logs
//! every operator's scheduling too).
//!
//! An arrangement's updates are the lengths of the batches it was given, less what
//! its merges compacted away; its batcher's are the updates waiting for their time to
//! close. (Differential's vector batchers log no bytes: a record's size is its type's,
//! plus what it owns on the heap.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use differential_dataflow::logging::{DifferentialEvent, DifferentialEventBuilder};
use serde::{Deserialize, Serialize};
use timely::logging::{TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

use super::Engine;

/// One arrangement (or batcher) of the dataflow, summed over this process's workers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrangementSize {
    /// The operator's id: the same on every worker, in the order the dataflow builds
    /// its operators.
    pub operator: usize,
    /// The operator's name (differential's: `Arrange`, `Reduce`, ...).
    pub name: String,
    /// Updates in its batches now.
    pub records: usize,
    /// The most updates its batches held at once (a merge holds its inputs and output).
    pub peak_records: usize,
    /// Updates waiting in its batcher now.
    pub batcher_records: usize,
    /// The most updates its batcher held at once.
    pub peak_batcher_records: usize,
}

impl ArrangementSize {
    fn add(&mut self, records: isize) {
        self.records = self.records.saturating_add_signed(records);
        self.peak_records = self.peak_records.max(self.records);
    }
}

/// The sizes of every arrangement, by operator, as this process's workers log them.
#[derive(Clone, Debug, Default)]
pub(super) struct ArrangementLog(Arc<Mutex<BTreeMap<usize, ArrangementSize>>>);

impl ArrangementLog {
    /// Follows `worker`'s arrangements from now on: call before it builds the dataflow.
    pub(super) fn register(&self, worker: &mut Worker) {
        let Some(mut registry) = worker.log_register() else {
            return;
        };
        let names = self.clone();
        registry.insert::<TimelyEventBuilder, _>(
            "timely",
            move |_: &Duration, events: &mut Option<Vec<(Duration, TimelyEvent)>>| {
                for (_, event) in events.iter().flatten() {
                    if let TimelyEvent::Operates(op) = event {
                        names.with(op.id, |size| size.name.clone_from(&op.name));
                    }
                }
            },
        );
        let sizes = self.clone();
        registry.insert::<DifferentialEventBuilder, _>(
            "differential/arrange",
            move |_: &Duration, events: &mut Option<Vec<(Duration, DifferentialEvent)>>| {
                for (_, event) in events.iter().flatten() {
                    sizes.apply(event);
                }
            },
        );
    }

    /// Counts one logged event.
    fn apply(&self, event: &DifferentialEvent) {
        match event {
            DifferentialEvent::Batch(b) => self.with(b.operator, |s| s.add(signed(b.length))),
            DifferentialEvent::Merge(m) => {
                if let Some(merged) = m.complete {
                    let inputs = signed(m.length1).saturating_add(signed(m.length2));
                    self.with(m.operator, |s| s.add(signed(merged).saturating_sub(inputs)));
                }
            }
            DifferentialEvent::Drop(d) => self.with(d.operator, |s| s.add(-signed(d.length))),
            DifferentialEvent::Batcher(b) => self.with(b.operator, |s| {
                s.batcher_records = s.batcher_records.saturating_add_signed(b.records_diff);
                s.peak_batcher_records = s.peak_batcher_records.max(s.batcher_records);
            }),
            DifferentialEvent::MergeShortfall(_) | DifferentialEvent::TraceShare(_) => {}
        }
    }

    fn with(&self, operator: usize, f: impl FnOnce(&mut ArrangementSize)) {
        let mut sizes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let size = sizes.entry(operator).or_insert_with(|| ArrangementSize {
            operator,
            ..ArrangementSize::default()
        });
        f(size);
    }

    /// The operators that arranged or batched anything, in operator order.
    fn sizes(&self) -> Vec<ArrangementSize> {
        let sizes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sizes
            .values()
            .filter(|s| s.peak_records > 0 || s.peak_batcher_records > 0)
            .cloned()
            .collect()
    }
}

fn signed(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

impl Engine {
    /// A new engine like [`Engine::with_workers`] whose arrangements are measured
    /// ([`arrangement_sizes`](Engine::arrangement_sizes)): for benchmarks, as timely then
    /// logs every operator's scheduling too.
    pub fn with_arrangement_log(workers: usize) -> Engine {
        let log = ArrangementLog::default();
        let (builders, communication) = super::workers::in_process(workers);
        let mut engine = Engine::from_builders_logged(builders, communication, Some(&log));
        engine.arrangement_log = Some(log);
        engine
    }

    /// What each arrangement holds now, summed over this process's workers (as of
    /// their last step), in operator order; empty unless the engine was made by
    /// [`with_arrangement_log`](Engine::with_arrangement_log).
    pub fn arrangement_sizes(&self) -> Vec<ArrangementSize> {
        self.arrangement_log
            .as_ref()
            .map(ArrangementLog::sizes)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{labels, object, policy};
    use super::*;

    #[test]
    fn the_log_counts_what_each_arrangement_holds() {
        let mut engine = Engine::with_arrangement_log(1);
        assert!(Engine::new().arrangement_sizes().is_empty());
        engine.apply(&crate::Change::Wec {
            name: "w".into(),
            labels: Some(labels(&[("loc", "eu")])),
        });
        engine.apply(&policy("p", 1, json_policy()));
        for i in 0..50 {
            let name = format!("c{i}");
            engine.apply(&object(
                "",
                "v1",
                "configmaps",
                "ns",
                &name,
                Some((&[("app", "a")], "1")),
            ));
        }
        engine.advance();
        let sizes = engine.arrangement_sizes();
        assert!(!sizes.is_empty(), "no arrangement logged");
        assert!(sizes.iter().all(|s| !s.name.is_empty()), "{sizes:?}");
        let total: usize = sizes.iter().map(|s| s.records).sum();
        // Every object is in the object index, its record and its version at least.
        assert!(total >= 150, "{total} updates for 50 objects: {sizes:?}");
        // Deleting them takes their updates back out, once merged.
        for i in 0..50 {
            engine.apply(&object(
                "",
                "v1",
                "configmaps",
                "ns",
                &format!("c{i}"),
                None,
            ));
        }
        engine.advance();
        let after = engine.arrangement_sizes();
        assert!(after.iter().all(|s| s.peak_records >= s.records));
        let peak: usize = after.iter().map(|s| s.peak_records).sum();
        assert!(peak >= total, "peak {peak} below {total}");
    }

    fn json_policy() -> serde_json::Value {
        serde_json::json!({
            "clusterSelectors": [{"matchLabels": {"loc": "eu"}}],
            "downsync": [{"objectSelectors": [{"matchLabels": {"app": "a"}}]}]
        })
    }
}
