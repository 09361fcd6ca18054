//! The coalescing work queue: one pending state per key, latest wins, at most one write
//! per key in flight, keys served in the order they first became pending; work that cannot
//! start yet is parked until [`WorkQueue::unpark`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// Pending work by key. Invariant: `order` and `parked` together hold exactly the keys that
/// are pending and not in flight, each once.
#[derive(Debug)]
pub(crate) struct WorkQueue<K, V> {
    pending: HashMap<K, V>,
    order: VecDeque<K>,
    parked: HashSet<K>,
    in_flight: HashSet<K>,
}

impl<K: Clone + Eq + Hash, V> Default for WorkQueue<K, V> {
    fn default() -> Self {
        WorkQueue {
            pending: HashMap::new(),
            order: VecDeque::new(),
            parked: HashSet::new(),
            in_flight: HashSet::new(),
        }
    }
}

impl<K: Clone + Eq + Hash, V> WorkQueue<K, V> {
    /// Makes `value` the pending work of `key`, replacing older pending work (which keeps
    /// its place in line). Returns true when older pending work was replaced.
    pub(crate) fn push(&mut self, key: K, value: V) -> bool {
        match self.pending.insert(key.clone(), value) {
            Some(_) => true,
            None => {
                if !self.in_flight.contains(&key) && !self.parked.contains(&key) {
                    self.order.push_back(key);
                }
                false
            }
        }
    }

    /// The pending work of `key`, if any (not the work in flight).
    pub(crate) fn peek(&self, key: &K) -> Option<&V> {
        self.pending.get(key)
    }

    /// Takes the next pending work whose key is not in flight and that `can_start`, and
    /// marks its key in flight. Work that cannot start is parked on the way.
    pub(crate) fn pop_ready(
        &mut self,
        mut can_start: impl FnMut(&K, &V) -> bool,
    ) -> Option<(K, V)> {
        loop {
            let key = self.order.pop_front()?;
            let value = self.pending.get(&key).expect("queued keys are pending");
            if !can_start(&key, value) {
                self.parked.insert(key);
                continue;
            }
            let value = self.pending.remove(&key).expect("queued keys are pending");
            self.in_flight.insert(key.clone());
            return Some((key, value));
        }
    }

    /// [`pop_ready`](Self::pop_ready) where all work can start.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Option<(K, V)> {
        self.pop_ready(|_, _| true)
    }

    /// Puts parked work for `key` back in line (at the end).
    pub(crate) fn unpark(&mut self, key: &K) {
        if self.parked.remove(key) {
            self.order.push_back(key.clone());
        }
    }

    /// True when work for `key` waits (in line or parked).
    pub(crate) fn is_pending(&self, key: &K) -> bool {
        self.pending.contains_key(key)
    }

    /// True when work for `key` is in flight.
    pub(crate) fn is_in_flight(&self, key: &K) -> bool {
        self.in_flight.contains(key)
    }

    /// Marks the write of `key` finished; work that arrived for it meanwhile gets in line.
    pub(crate) fn done(&mut self, key: &K) {
        if self.in_flight.remove(key) && self.pending.contains_key(key) {
            self.order.push_back(key.clone());
        }
    }

    /// Drops all pending work (work in flight stays in flight); returns how much.
    pub(crate) fn clear_pending(&mut self) -> usize {
        let n = self.pending.len();
        self.pending.clear();
        self.order.clear();
        self.parked.clear();
        n
    }

    /// Pending work not yet started.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Pending plus in flight: zero when everything submitted is done.
    pub(crate) fn outstanding(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_pending_state_wins_and_keeps_its_place() {
        let mut q = WorkQueue::default();
        assert!(!q.push("a", 1));
        assert!(!q.push("b", 1));
        assert!(q.push("a", 2));
        assert_eq!(q.pop(), Some(("a", 2)));
        assert_eq!(q.pop(), Some(("b", 1)));
        assert_eq!(q.pop(), None);
        assert_eq!(q.outstanding(), 2);
    }

    #[test]
    fn work_for_a_key_in_flight_waits_until_it_is_done() {
        let mut q = WorkQueue::default();
        q.push("a", 1);
        assert_eq!(q.pop(), Some(("a", 1)));
        q.push("a", 2);
        q.push("a", 3);
        q.push("b", 1);
        // "a" is in flight: "b" goes first.
        assert_eq!(q.pop(), Some(("b", 1)));
        assert_eq!(q.pop(), None);
        assert_eq!((q.pending(), q.in_flight()), (1, 2));
        q.done(&"a");
        assert_eq!(q.pop(), Some(("a", 3)));
        q.done(&"a");
        q.done(&"b");
        assert_eq!(q.outstanding(), 0);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn clearing_drops_pending_work_and_keeps_work_in_flight() {
        let mut q = WorkQueue::default();
        q.push("a", 1);
        q.push("s", 1);
        assert_eq!(q.pop_ready(|k, _| *k == "a"), Some(("a", 1)));
        q.push("a", 2);
        q.push("b", 1);
        assert_eq!(q.clear_pending(), 3);
        assert_eq!((q.pending(), q.in_flight()), (0, 1));
        q.unpark(&"s");
        assert_eq!(q.pop(), None);
        q.done(&"a");
        assert_eq!((q.outstanding(), q.pop()), (0, None));
        // The queue works on as before.
        q.push("b", 2);
        assert_eq!(q.pop(), Some(("b", 2)));
    }

    #[test]
    fn parked_work_waits_for_unpark_and_can_still_be_replaced() {
        let mut q = WorkQueue::default();
        q.push("s", 1);
        q.push("b", 1);
        assert_eq!(q.pop_ready(|k, _| *k != "s"), Some(("b", 1)));
        assert_eq!(q.pop_ready(|_, _| true), None);
        assert!(q.is_pending(&"s") && q.is_in_flight(&"b"));
        assert!(q.push("s", 2));
        q.done(&"b");
        q.unpark(&"s");
        assert_eq!(q.pop_ready(|_, _| true), Some(("s", 2)));
        q.done(&"s");
        assert_eq!(q.outstanding(), 0);
    }
}
