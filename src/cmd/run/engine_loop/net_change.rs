//! The net of a Binding's changes while it waits for its coalescing window: a change
//! undone within the window leaves nothing to hand over, so the Binding is not
//! rendered again. The usual case: Bindery's own status write moves an object's
//! `resourceVersion` (the watch event) and the write's answer moves it back
//! (`Change::StatusWritten`), in two epochs.

use std::collections::HashMap;
use std::hash::Hash;

use bindery_engine::{BindingChange, WorkloadEntry};

/// Entries and destinations netted per Binding at most: past this, a change this large
/// is handed over without netting (netting it would copy every entry).
const MAX_NETTED: usize = 4096;

/// The changes of one Binding since it was last handed over, netted.
#[derive(Clone, Debug, Default)]
pub(super) struct NetChange {
    entries: HashMap<WorkloadEntry, i32>,
    destinations: HashMap<String, i32>,
    /// Something not netted changed: the owner, the problems, or more than
    /// [`MAX_NETTED`] entries.
    other: bool,
}

impl NetChange {
    /// Adds one epoch's change of the Binding.
    pub(super) fn add(&mut self, change: &BindingChange) {
        if self.other {
            return;
        }
        let size = change.workload_added.len()
            + change.workload_removed.len()
            + change.destinations_added.len()
            + change.destinations_removed.len();
        if change.owner_changed
            || change.problems.is_some()
            || self.entries.len() + self.destinations.len() + size > MAX_NETTED
        {
            self.other = true;
            self.entries = HashMap::new();
            self.destinations = HashMap::new();
            return;
        }
        for e in &change.workload_added {
            bump(&mut self.entries, e, 1);
        }
        for e in &change.workload_removed {
            bump(&mut self.entries, e, -1);
        }
        for d in &change.destinations_added {
            bump(&mut self.destinations, d, 1);
        }
        for d in &change.destinations_removed {
            bump(&mut self.destinations, d, -1);
        }
    }

    /// Whether the changes undid each other: the Binding is as it was handed over.
    pub(super) fn is_empty(&self) -> bool {
        !self.other && self.entries.is_empty() && self.destinations.is_empty()
    }
}

fn bump<K: Clone + Eq + Hash>(counts: &mut HashMap<K, i32>, key: &K, diff: i32) {
    let count = counts.entry(key.clone()).or_default();
    *count += diff;
    if *count == 0 {
        counts.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rv: &str) -> WorkloadEntry {
        WorkloadEntry {
            group: String::new(),
            version: "v1".into(),
            resource: "configmaps".into(),
            namespace: "ns".into(),
            name: "a".into(),
            resource_version: rv.into(),
            create_only: false,
            status_collectors: vec![],
            want_singleton_reported_state: true,
            want_multi_wec_reported_state: false,
        }
    }

    fn moved(from: &str, to: &str) -> BindingChange {
        BindingChange {
            binding: "p".into(),
            exists: true,
            generation: Some(1),
            workload_added: vec![entry(to)],
            workload_removed: vec![entry(from)],
            ..BindingChange::default()
        }
    }

    #[test]
    fn a_change_undone_nets_to_nothing() {
        let mut net = NetChange::default();
        net.add(&moved("5", "6"));
        assert!(!net.is_empty());
        net.add(&moved("6", "5"));
        assert!(net.is_empty());
    }

    #[test]
    fn a_change_moved_on_does_not() {
        let mut net = NetChange::default();
        net.add(&moved("5", "6"));
        net.add(&moved("6", "7"));
        assert!(!net.is_empty());
    }

    #[test]
    fn destinations_net_too() {
        let mut net = NetChange::default();
        let mut c = BindingChange {
            destinations_added: vec!["c1".into()],
            ..BindingChange::default()
        };
        net.add(&c);
        std::mem::swap(&mut c.destinations_added, &mut c.destinations_removed);
        net.add(&c);
        assert!(net.is_empty());
    }

    #[test]
    fn owner_and_problem_changes_are_never_netted() {
        for change in [
            BindingChange {
                owner_changed: true,
                ..BindingChange::default()
            },
            BindingChange {
                problems: Some(vec![]),
                ..BindingChange::default()
            },
        ] {
            let mut net = NetChange::default();
            net.add(&change);
            net.add(&moved("5", "6"));
            net.add(&moved("6", "5"));
            assert!(!net.is_empty(), "{change:?}");
        }
    }

    #[test]
    fn a_large_change_is_not_netted() {
        let mut net = NetChange::default();
        let many: Vec<WorkloadEntry> = (0..=MAX_NETTED).map(|i| entry(&i.to_string())).collect();
        let mut c = BindingChange {
            workload_added: many,
            ..BindingChange::default()
        };
        net.add(&c);
        std::mem::swap(&mut c.workload_added, &mut c.workload_removed);
        net.add(&c);
        assert!(!net.is_empty());
    }
}
