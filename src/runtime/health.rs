//! Readiness and liveness, for `GET /readyz` and `GET /livez` (Kubernetes probes).
//!
//! One [`Health`] is shared (an `Arc`) by the engine thread, which calls
//! [`Health::heartbeat`] on every iteration of its loop (at least once a second: the
//! loop's idle poll) and [`Health::mark_published`] when its first epoch is published,
//! and the HTTP server, which asks [`Health::ready`] and [`Health::live`]. A follower
//! (leader election) runs the same engine without writing: it marks itself published in
//! the same way, so it is ready once hot and can take over at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `/livez` fails when the engine loop's last heartbeat is older than this.
pub const LIVENESS_THRESHOLD: Duration = Duration::from_secs(60);

/// The shared health state (all atomics: cheap to update from the engine loop).
#[derive(Debug)]
pub struct Health {
    /// What heartbeats count from.
    start: Instant,
    /// Milliseconds from `start` to the last heartbeat.
    heartbeat_ms: AtomicU64,
    /// The first epoch is published (or, for `replay`, the server is up).
    published: AtomicBool,
    /// The engine thread has ended (normally or not).
    stopped: AtomicBool,
    /// Heartbeats are watched (`false`: `replay`, whose engine has no loop to watch).
    watched: bool,
    /// How old a heartbeat may be.
    threshold: Duration,
}

impl Health {
    /// For `bindery run`: not ready until [`Health::mark_published`]; live while the
    /// heartbeats are fresher than `threshold` (the first counts from now).
    pub fn new(threshold: Duration) -> Health {
        Health {
            start: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            published: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            watched: true,
            threshold,
        }
    }

    /// For `bindery replay --dashboard`: ready and live while serving.
    pub fn serving() -> Health {
        let health = Health {
            watched: false,
            ..Health::new(LIVENESS_THRESHOLD)
        };
        health.mark_published();
        health
    }

    /// The engine loop is making progress.
    pub fn heartbeat(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// The first epoch is published: Bindings are being kept up to date.
    pub fn mark_published(&self) {
        self.published.store(true, Ordering::Relaxed);
    }

    /// The engine thread has ended (call it from a guard, so a panic counts too).
    pub fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Ready to serve: `Err(reason)` before the first epoch is published, or once the
    /// engine has stopped.
    pub fn ready(&self) -> Result<(), String> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err("the engine has stopped".into());
        }
        if !self.published.load(Ordering::Relaxed) {
            return Err("not every watch has synced yet: no epoch published".into());
        }
        Ok(())
    }

    /// Alive: `Err(reason)` if the engine thread has ended or its last heartbeat is
    /// older than the threshold.
    pub fn live(&self) -> Result<(), String> {
        self.live_at(Instant::now())
    }

    /// [`Health::live`] as of `now`.
    fn live_at(&self, now: Instant) -> Result<(), String> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err("the engine thread has stopped".into());
        }
        if !self.watched {
            return Ok(());
        }
        let last = self.start + Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        let age = now.saturating_duration_since(last);
        if age > self.threshold {
            return Err(format!(
                "the engine loop has made no progress for {} s (threshold {} s)",
                age.as_secs(),
                self.threshold.as_secs()
            ));
        }
        Ok(())
    }
}

/// Marks the engine stopped when dropped: however the engine thread ends.
#[derive(Debug)]
pub struct StoppedOnDrop(pub std::sync::Arc<Health>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.mark_stopped();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn ready_once_published_until_the_engine_stops() {
        let health = Arc::new(Health::new(LIVENESS_THRESHOLD));
        assert!(health.ready().unwrap_err().contains("no epoch published"));
        health.mark_published();
        assert_eq!(health.ready(), Ok(()));
        drop(StoppedOnDrop(health.clone()));
        assert_eq!(health.ready().unwrap_err(), "the engine has stopped");
        assert_eq!(health.live().unwrap_err(), "the engine thread has stopped");
    }

    #[test]
    fn live_while_heartbeats_are_fresh() {
        let health = Health::new(Duration::from_secs(60));
        let start = health.start;
        assert_eq!(health.live_at(start + Duration::from_secs(59)), Ok(()));
        let e = health.live_at(start + Duration::from_secs(61)).unwrap_err();
        assert_eq!(
            e,
            "the engine loop has made no progress for 61 s (threshold 60 s)"
        );
        health.heartbeat();
        let beat = start + Duration::from_millis(health.heartbeat_ms.load(Ordering::Relaxed));
        assert_eq!(health.live_at(beat + Duration::from_secs(60)), Ok(()));
        assert!(health.live_at(beat + Duration::from_secs(61)).is_err());
    }

    #[test]
    fn a_replay_server_is_ready_and_live_without_heartbeats() {
        let health = Health::serving();
        assert_eq!(health.ready(), Ok(()));
        assert_eq!(
            health.live_at(health.start + Duration::from_secs(3600)),
            Ok(())
        );
    }
}
