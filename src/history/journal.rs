//! The live journal of `bindery run`: the recent Binding changes with their causes,
//! bounded by count and age (`--history-limit`, `--history-max-age`), answering
//! `GET /history`. Older changes are in the recording (`--record`), for
//! `bindery history --log`.
//!
//! The journal follows every event the engine takes, leader or not, so a follower's
//! journal holds what the leader's does. The first publish (every Binding appearing
//! at once) is not attributed: the journal starts after it.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use bindery_engine::{Binding, BindingChange};
use bindery_ingest::WatchEvent;
use serde::Serialize;

use super::{Attributor, Change, Filter};
use crate::input::loader::LoadError;
use crate::input::pipeline::Pipeline;

/// How much the journal keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimit {
    /// At most this many changes (0: no journal).
    pub count: usize,
    /// None older than this.
    pub max_age: Duration,
}

/// The journal.
pub struct Journal {
    attributor: Attributor,
    limit: JournalLimit,
    changes: VecDeque<Change>,
    /// Since when every change is kept (Unix ms; `None` before the first publish).
    complete_since: Option<i64>,
    /// The latest event's time (Unix ms).
    latest_ts: i64,
    /// The recording, for older changes.
    recording: Option<String>,
}

/// What `GET /history` answers.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalAnswer {
    /// Since when the journal holds every change (Unix ms): older ones are in the
    /// recording.
    pub complete_since: Option<i64>,
    /// The recording (`--record`), where every change is, if there is one.
    pub recording: Option<String>,
    /// The changes asked for, oldest first.
    pub changes: Vec<Change>,
}

impl Journal {
    /// An empty journal keeping `limit`, pointing to `recording` for older changes.
    pub fn new(limit: JournalLimit, recording: Option<String>) -> Journal {
        Journal {
            attributor: Attributor::quiet(),
            limit,
            changes: VecDeque::new(),
            complete_since: None,
            latest_ts: 0,
            recording,
        }
    }

    /// Pushes `event` (the `line`-th of the recording, or of the stream without one)
    /// into `pipeline`, the engine's ([`Attributor::push`]).
    pub fn push(
        &mut self,
        pipeline: &mut Pipeline,
        line: u64,
        event: WatchEvent,
    ) -> Result<(), LoadError> {
        self.latest_ts = self.latest_ts.max(event.ts);
        self.attributor.push(pipeline, line, event)
    }

    /// Attributes the changes of the epoch just closed and returns them (none for
    /// the first publish, which only starts the journal).
    pub fn close(
        &mut self,
        epoch: u64,
        changes: &[BindingChange],
        first: bool,
    ) -> std::collections::vec_deque::Iter<'_, Change> {
        let ts = self.latest_ts;
        if first {
            self.attributor.attribute_from_now();
            self.complete_since = Some(ts);
            return self.changes.range(self.changes.len()..);
        }
        let found = self
            .attributor
            .close(epoch, ts, changes, &Filter::default(), &mut |_| None);
        let n = found.len();
        self.changes.extend(found);
        self.trim(ts);
        let len = self.changes.len();
        self.changes.range(len - n.min(len)..)
    }

    /// Drops what is past the limit at `now` (Unix ms).
    fn trim(&mut self, now: i64) {
        let age = i64::try_from(self.limit.max_age.as_millis()).unwrap_or(i64::MAX);
        let oldest = now.saturating_sub(age);
        while let Some(front) = self.changes.front()
            && (self.changes.len() > self.limit.count || front.ts < oldest)
        {
            let dropped = self.changes.pop_front().map(|c| c.ts);
            // Complete from just after the dropped change's time.
            self.complete_since = dropped.map(|ts| ts + 1).max(self.complete_since);
        }
        if self.changes.is_empty() && self.complete_since.is_some() {
            self.complete_since = self.complete_since.max(Some(oldest));
        }
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether it holds no change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes `filter` asks for, up to `until` (Unix ms), the latest `last` of
    /// them; `binding(name)` gives a Binding as it is now (the object and cluster
    /// filters read which Bindings list the object or have the WEC).
    pub fn query(
        &mut self,
        filter: &Filter,
        until: Option<i64>,
        last: Option<usize>,
        now: i64,
        binding: &mut dyn FnMut(&str) -> Option<Rc<Binding>>,
    ) -> JournalAnswer {
        self.trim(now.max(self.latest_ts));
        let mut changes: Vec<Change> = self
            .changes
            .iter()
            .rev()
            .filter(|c| until.is_none_or(|u| c.ts <= u))
            .filter(|c| filter.keeps(&c.binding, c.ts, &c.change, binding))
            .take(last.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        changes.reverse();
        JournalAnswer {
            complete_since: self.complete_since,
            recording: self.recording.clone(),
            changes,
        }
    }
}

#[cfg(test)]
mod tests;
