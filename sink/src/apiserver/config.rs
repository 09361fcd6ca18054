//! [`SinkConfig`]: field manager, concurrency, rate limit and retry policy.

use std::time::Duration;

use crate::apiserver::SinkError;

/// How the API-server sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkConfig {
    /// Server-side apply field manager (`fieldManager`).
    pub field_manager: String,
    /// At most this many writes in flight at once (at least 1).
    pub concurrency: usize,
    /// Client-side rate limit over all requests, per second (0: unlimited).
    pub qps: u32,
    /// Requests that may go at once above the steady `qps` rate (at least 1 is used).
    pub burst: u32,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles per retry (with jitter).
    pub initial_backoff: Duration,
    /// Upper bound of one backoff (a server's `retryAfterSeconds` is honoured up to it).
    pub max_backoff: Duration,
    /// A Binding whose JSON is larger is not sent: the API server could not store it
    /// (etcd's default request limit is 1.5 MiB). The failure is reported in its policy's
    /// status instead, and retried only when the Binding changes.
    pub max_binding_bytes: usize,
    /// Watch the stored CombinedStatuses (status return is on): without it, none is
    /// ever counted as listed, so none is written.
    pub combined_statuses: bool,
}

/// etcd's default `--max-request-bytes` (1.5 MiB). A Binding whose own JSON is larger
/// can never be stored; one just below may still be refused once the API server has
/// added its metadata, and that refusal is a permanent failure (measured against
/// KubeStellar's controller in RELIABILITY.md: this limit lets Bindery write the largest
/// Binding KubeStellar's controller can write on the same server).
pub const DEFAULT_MAX_BINDING_BYTES: usize = 1536 * 1024;

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            field_manager: "bindery".into(),
            concurrency: 8,
            qps: 50,
            burst: 100,
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_binding_bytes: DEFAULT_MAX_BINDING_BYTES,
            combined_statuses: false,
        }
    }
}

impl SinkConfig {
    /// Checks the values that have no sensible meaning.
    pub fn validate(&self) -> Result<(), SinkError> {
        let bad = |what: &str| Err(SinkError::Config(what.to_string()));
        if self.field_manager.is_empty() {
            return bad("field_manager must not be empty");
        }
        if self.concurrency == 0 {
            return bad("concurrency must be at least 1");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if self.initial_backoff > self.max_backoff {
            return bad("initial_backoff must not exceed max_backoff");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_concurrency_is_not() {
        assert!(SinkConfig::default().validate().is_ok());
        let c = SinkConfig {
            concurrency: 0,
            ..SinkConfig::default()
        };
        assert!(matches!(c.validate(), Err(SinkError::Config(_))));
    }
}
