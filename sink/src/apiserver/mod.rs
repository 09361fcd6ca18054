//! The API-server sink: writes Bindings and BindingPolicy statuses to the WDS.
//!
//! [`BindingSink::start`] lists what is stored, then runs a dispatcher task that serves a
//! [`SinkHandle`]:
//!
//! - **Idempotent**: a Binding is written (server-side apply of `apiVersion`, `kind`,
//!   `metadata.name`, `metadata.ownerReferences` and `spec` only, so that labels,
//!   annotations and finalizers others put on it are kept) only when its normalized
//!   `spec` and `ownerReferences` differ from what is stored; a policy status only when it
//!   differs from the stored one.
//! - **Coalesced**: one pending write per Binding and per policy status, the latest
//!   desired state wins; a write for a name in flight is followed by the newest one.
//! - **Ordered** per policy: a status waits for the Binding write submitted before it.
//! - **Bounded**: at most [`SinkConfig::concurrency`] writes in flight, every request
//!   through one client-side rate limiter ([`SinkConfig::qps`] / [`SinkConfig::burst`]).
//! - **Retried** with bounded exponential backoff on 409, 429, 5xx and transport errors;
//!   other failures are permanent: logged, counted, and for Bindings kept in
//!   [`SinkHandle::write_errors`] until a later write of that Binding succeeds.

mod config;
mod desired;
mod dispatch;
mod error;
mod objects;
mod observer;
mod queue;
mod stats;
pub mod status;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

pub use config::SinkConfig;
pub use desired::{DesiredBinding, DesiredStatus};
pub use error::SinkError;
pub use observer::{SinkObserver, WriteObject, WriteReport, WriteResult};
pub use stats::SinkStats;

use dispatch::{Closer, Job, Shared};
use writer::Writer;

/// The API-server sink. See the [module docs](self).
#[derive(Debug)]
pub struct BindingSink;

impl BindingSink {
    /// Lists the stored Bindings (and BindingPolicies, for their statuses), then starts the
    /// dispatcher task. Returns the handle to submit writes with, and the task, which ends
    /// once [`SinkHandle::shutdown`] has drained everything (or every handle is dropped
    /// and the work submitted is done).
    pub async fn start(
        client: kube::Client,
        config: SinkConfig,
    ) -> Result<(SinkHandle, JoinHandle<()>), SinkError> {
        Self::start_observed(client, config, Arc::new(observer::NoObserver)).await
    }

    /// [`start`](Self::start), with `observer` told how every write ends.
    pub async fn start_observed(
        client: kube::Client,
        config: SinkConfig,
        observer: Arc<dyn SinkObserver>,
    ) -> Result<(SinkHandle, JoinHandle<()>), SinkError> {
        config.validate()?;
        let shared = Arc::new(Shared::new(config.concurrency));
        let writer = Writer::new(client, config, shared.clone(), observer);
        writer.load_stored().await?;
        let task = tokio::spawn(dispatch::run(shared.clone(), Arc::new(writer)));
        let handle = SinkHandle {
            _closer: Arc::new(Closer(shared.clone())),
            shared,
        };
        Ok((handle, task))
    }
}

/// Submits writes to a running [`BindingSink`] and reads its state. Cheap to clone; when
/// the last clone is dropped, the sink finishes the work submitted and stops.
#[derive(Clone, Debug)]
pub struct SinkHandle {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

impl SinkHandle {
    /// Asks for the Binding to be as `desired` says. Never blocks: replaces a pending
    /// write of the same Binding that has not started yet.
    pub fn submit(&self, desired: DesiredBinding) {
        self.shared.submit(Job::Binding(desired));
    }

    /// Asks for the policy's status to be as `desired` says. Never blocks: replaces a
    /// pending status write of the same policy that has not started yet. It is written only
    /// after the write of the policy's Binding that was submitted before it (if one is
    /// pending or in flight) is done, so that a reader who sees the new
    /// `observedGeneration` finds the Binding that reflects it.
    pub fn submit_status(&self, desired: DesiredStatus) {
        self.shared.submit(Job::Status(desired, None));
    }

    /// The names of the Bindings stored when the sink started, sorted: the caller deletes
    /// those it has no policy for.
    pub fn stored_names(&self) -> Vec<String> {
        self.shared.lock().stored_at_start.clone()
    }

    /// Bindings whose last write failed permanently, with the error (e.g. `HTTP 422
    /// Invalid: ...`, `HTTP 413 ...` for a Binding too large): name → message. An entry
    /// goes when a later write of that Binding succeeds (or is found unnecessary).
    pub fn write_errors(&self) -> HashMap<String, String> {
        self.shared.lock().failed.clone()
    }

    /// Forgets what is known to be stored for `name` (its Binding and its policy's
    /// status), so the next desired state submitted is written even if it is unchanged:
    /// for when something else may have changed or deleted them.
    pub fn forget(&self, name: &str) {
        self.shared.forget(name);
    }

    /// The counters now.
    pub fn stats(&self) -> SinkStats {
        self.shared.stats()
    }

    /// Waits until everything submitted so far has been written, found unnecessary, or
    /// has failed permanently.
    pub async fn flush(&self) {
        self.shared.wait_idle().await;
    }

    /// Stops taking submissions (later ones are dropped with a warning), waits like
    /// [`flush`](Self::flush), and lets the dispatcher task end. For a clean SIGTERM.
    pub async fn shutdown(&self) {
        self.shared.close();
        self.shared.wait_idle().await;
    }
}
