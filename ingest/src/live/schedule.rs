//! When to re-run discovery: after CRD changes (debounced), once more a little later
//! (the API server publishes a new CRD's discovery asynchronously, after it is
//! established), and again after failures (with exponential backoff).

use std::time::Duration;

use tokio::time::Instant;

/// A burst of CRD changes postpones discovery at most this many debounce periods.
const MAX_WAIT_PERIODS: u32 = 10;
/// How long after a change-triggered discovery it is repeated once.
pub(crate) const RECHECK_DELAY: Duration = Duration::from_secs(2);
/// The first retry delay after a failed (or partly failed) discovery.
const RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest retry delay.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// The rediscovery timer.
#[derive(Debug)]
pub(crate) struct Schedule {
    debounce: Duration,
    /// When discovery should run next, if at all.
    due: Option<Instant>,
    /// When the current burst of changes began.
    burst_start: Option<Instant>,
    /// Whether a change has been seen since the last run began.
    changed: bool,
    /// Consecutive failed runs.
    failures: u32,
}

/// Why a run is happening; tells [`Schedule::finished`] what comes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    after_change: bool,
}

impl Schedule {
    pub(crate) fn new(debounce: Duration) -> Schedule {
        Schedule {
            debounce,
            due: None,
            burst_start: None,
            changed: false,
            failures: 0,
        }
    }

    /// When discovery should run next.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A CRD changed at `now`: run `debounce` after the last change of a burst, but
    /// no later than `MAX_WAIT_PERIODS` debounces after its first.
    pub(crate) fn changed(&mut self, now: Instant) {
        let start = *self.burst_start.get_or_insert(now);
        let latest = start + self.debounce * MAX_WAIT_PERIODS;
        self.due = Some((now + self.debounce).min(latest));
        self.changed = true;
    }

    /// A run starts (its due time has come).
    pub(crate) fn start(&mut self) -> Run {
        let run = Run {
            after_change: self.changed,
        };
        self.due = None;
        self.burst_start = None;
        self.changed = false;
        run
    }

    /// `run` ended at `now`; `complete` is false when it failed, in whole or for some
    /// groups. A failure schedules a retry; a complete run after a change schedules
    /// one recheck. A change seen meanwhile keeps its own (earlier) time.
    pub(crate) fn finished(&mut self, run: Run, now: Instant, complete: bool) {
        let next = if !complete {
            self.failures = self.failures.saturating_add(1);
            let exp = self.failures.saturating_sub(1).min(16);
            Some((RETRY_MIN * 2u32.pow(exp)).min(RETRY_MAX))
        } else {
            self.failures = 0;
            run.after_change.then_some(RECHECK_DELAY)
        };
        if let Some(delay) = next {
            let at = now + delay;
            self.due = Some(self.due.map_or(at, |due| due.min(at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn changes_are_debounced_with_a_cap() {
        let t0 = Instant::now();
        let mut s = Schedule::new(200 * MS);
        assert_eq!(s.due(), None);
        s.changed(t0);
        assert_eq!(s.due(), Some(t0 + 200 * MS));
        s.changed(t0 + 150 * MS);
        assert_eq!(s.due(), Some(t0 + 350 * MS));
        // A steady stream of changes cannot postpone it past 10 periods.
        s.changed(t0 + 1950 * MS);
        assert_eq!(s.due(), Some(t0 + 2000 * MS));
    }

    #[test]
    fn a_run_after_a_change_is_rechecked_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(200 * MS);
        s.changed(t0);
        let run = s.start();
        assert_eq!(s.due(), None);
        s.finished(run, t0 + 300 * MS, true);
        assert_eq!(s.due(), Some(t0 + 300 * MS + RECHECK_DELAY));
        let recheck = s.start();
        s.finished(recheck, t0 + 3 * RECHECK_DELAY, true);
        assert_eq!(s.due(), None);
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let t0 = Instant::now();
        let mut s = Schedule::new(200 * MS);
        let mut delays = Vec::new();
        for _ in 0..9 {
            let run = s.start();
            s.finished(run, t0, false);
            delays.push(s.due().unwrap() - t0);
        }
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        let run = s.start();
        s.finished(run, t0, true);
        assert_eq!(s.due(), None);
        let run = s.start();
        s.finished(run, t0, false);
        assert_eq!(s.due(), Some(t0 + RETRY_MIN));
    }

    #[test]
    fn a_change_during_a_run_is_not_lost() {
        let t0 = Instant::now();
        let mut s = Schedule::new(200 * MS);
        s.changed(t0);
        let run = s.start();
        s.changed(t0 + 100 * MS);
        s.finished(run, t0 + 150 * MS, true);
        // The new change's debounce is earlier than the recheck.
        assert_eq!(s.due(), Some(t0 + 300 * MS));
        let next = s.start();
        assert!(next.after_change);
    }
}
