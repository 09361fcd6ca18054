//! The API-server sink: writes Bindings and BindingPolicy statuses to the WDS.
//!
//! [`BindingSink::start`] starts a watch on the stored Bindings and waits for its first
//! list, reads the policies' statuses, then runs a dispatcher task that serves a
//! [`SinkHandle`]:
//!
//! - **Idempotent**: a Binding is written (`metadata.ownerReferences` and `spec` only, so
//!   that labels, annotations and finalizers others put on it are kept; as a JSON merge
//!   patch, which replaces lists whole, so the stored spec ends up exactly the desired one
//!   whoever wrote it before, or as a create) only when its normalized `spec` and
//!   `ownerReferences` differ from what is stored; a policy status only when it differs
//!   from the stored one.
//! - **Owning only its own**: a Binding is deleted only when its controller owner
//!   reference is a BindingPolicy; others are left alone unless a policy of their name
//!   exists (then that policy's Binding is written, as KubeStellar does).
//! - **Restoring drift**: the watch keeps the sink's view of what is stored; a Binding
//!   another writer changes or deletes while no write of it is queued is reported on the
//!   [`SinkEvents`] channel ([`SinkEvent::Drift`]), for the caller to submit it again; one
//!   that keeps being changed is restored with exponential backoff, and reported as a
//!   problem ([`SinkEvent::Problem`]).
//! - **Coalesced**: one pending write per Binding and per policy status, the latest
//!   desired state wins; a write for a name in flight is followed by the newest one.
//! - **Ordered** per policy: a status waits for the Binding write submitted before it.
//! - **Bounded**: at most [`SinkConfig::concurrency`] writes in flight, every request
//!   through one client-side rate limiter ([`SinkConfig::qps`] / [`SinkConfig::burst`]).
//! - **Retried** with bounded exponential backoff on 409, 429, 5xx and transport errors;
//!   other failures (and a Binding larger than [`SinkConfig::max_binding_bytes`], not
//!   sent at all) are permanent: logged, counted, and for Bindings told as a problem
//!   ([`SinkEvent::Problem`]) until a later write of that Binding succeeds.
//! - **Leader-gated**: started with [`BindingSink::start_elected`], it writes only while
//!   the leader election says so. A follower keeps its view of the stored Bindings up to
//!   date but drops submissions and sends nothing; on becoming leader it re-reads the
//!   policies' statuses, then writes what it is given (only what differs from what is
//!   stored); on losing the lease it drops what is queued and sends no further attempt
//!   (requests already sent may finish). [`SinkHandle::leading`] tells when it writes.
//! - **Returning status**: [`SinkHandle::submit_report`] writes a workload object's
//!   returned status and status-return label (`docs/status-semantics.md`), coalesced,
//!   rate-limited, retried and leader-gated as the rest; a report the sink last wrote
//!   into the object is not written again.
//! - **Combining status**: [`SinkHandle::submit_combined`] creates, patches or deletes
//!   a CombinedStatus (`combined`'s docs: its own watch of the stored ones, drift
//!   restored, only objects with KubeStellar's five labels deleted), and
//!   [`SinkHandle::submit_collector_status`] writes a StatusCollector's status.
//! - **Finishing KubeStellar's deletions**: [`SinkHandle::remove_finalizer`] takes
//!   KubeStellar's finalizer off a policy being deleted, after its Binding is gone.

mod combined;
mod config;
mod desired;
mod dispatch;
mod error;
mod objects;
mod observer;
mod queue;
mod report;
mod stats;
mod status;
mod stored;
mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

pub use combined::{CombinedDrift, DesiredCollectorStatus, DesiredCombined, combined_key};
pub use config::{DEFAULT_MAX_BINDING_BYTES, SinkConfig};
pub use desired::{DesiredBinding, DesiredStatus};
pub use error::SinkError;
pub use observer::{SinkObserver, WriteObject, WriteReport, WriteResult};
pub use report::{DesiredReport, workload_api};
pub use stats::SinkStats;
pub use stored::{Drift, SinkEvent};
pub use writer::KUBESTELLAR_FINALIZER;

use dispatch::{Closer, Job, Shared};
use tokio::sync::{mpsc, oneshot, watch};
use writer::Writer;

/// What the sink tells as it happens: drift found (Bindings to submit again, after each
/// one's delay), and the problems to report in the policies' statuses as they change.
pub type SinkEvents = mpsc::UnboundedReceiver<SinkEvent>;

/// The API-server sink. See the [module docs](self).
#[derive(Debug)]
pub struct BindingSink;

impl BindingSink {
    /// Starts the watch on the stored Bindings and waits for its first list, lists the
    /// BindingPolicies for their statuses, then starts the dispatcher task. Returns the
    /// handle to submit writes with, the drift found from now on, and the task, which ends
    /// (with the watch) once [`SinkHandle::shutdown`] has drained everything (or every
    /// handle is dropped and the work submitted is done).
    pub async fn start(
        client: kube::Client,
        config: SinkConfig,
    ) -> Result<(SinkHandle, SinkEvents, JoinHandle<()>), SinkError> {
        Self::start_observed(client, config, Arc::new(observer::NoObserver)).await
    }

    /// [`start`](Self::start), with `observer` told how every write ends.
    pub async fn start_observed(
        client: kube::Client,
        config: SinkConfig,
        observer: Arc<dyn SinkObserver>,
    ) -> Result<(SinkHandle, SinkEvents, JoinHandle<()>), SinkError> {
        let (_always, leader) = watch::channel(true);
        Self::start_elected(client, config, observer, leader).await
    }

    /// [`start_observed`](Self::start_observed), writing only while `leader` says true
    /// (see the [module docs](self)); once its sender is gone, the last value holds.
    pub async fn start_elected(
        client: kube::Client,
        config: SinkConfig,
        observer: Arc<dyn SinkObserver>,
        leader: watch::Receiver<bool>,
    ) -> Result<(SinkHandle, SinkEvents, JoinHandle<()>), SinkError> {
        config.validate()?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let leading = *leader.borrow();
        let shared = Arc::new(Shared::new(config.concurrency, events_tx, leading));
        let combined = config
            .combined_statuses
            .then(|| tokio::spawn(combined::watch(shared.clone(), client.clone())));
        let writer = Writer::new(client, config, shared.clone(), observer);
        let (synced_tx, synced_rx) = oneshot::channel();
        let watch = tokio::spawn(stored::watch(shared.clone(), writer.bindings(), synced_tx));
        let listed = match synced_rx.await {
            Ok(Ok(())) => writer.load_statuses().await,
            Ok(Err(source)) => Err(SinkError::List {
                resource: "bindings",
                source,
            }),
            Err(_) => Err(SinkError::WatchEnded),
        };
        if let Err(e) = listed {
            watch.abort();
            combined.iter().for_each(JoinHandle::abort);
            return Err(e);
        }
        let writer = Arc::new(writer);
        let following = tokio::spawn(follow_leader(shared.clone(), writer.clone(), leader));
        let dispatcher = dispatch::run(shared.clone(), writer);
        let task = tokio::spawn(async move {
            dispatcher.await;
            following.abort();
            watch.abort();
            combined.iter().for_each(JoinHandle::abort);
        });
        let handle = SinkHandle {
            _closer: Arc::new(Closer(shared.clone())),
            shared,
        };
        Ok((handle, events_rx, task))
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

    /// Asks for a workload object's returned status to be as `desired` says (see
    /// `report`'s docs). Never blocks: replaces a pending write for the same object;
    /// an unchanged report is not written again.
    pub fn submit_report(&self, desired: DesiredReport) {
        self.shared.submit(Job::Report(desired));
    }

    /// Asks for a CombinedStatus to be as `desired` says (created, patched, or deleted
    /// if it carries KubeStellar's five labels). Never blocks: replaces a pending write of
    /// the same one; one already so is not written.
    pub fn submit_combined(&self, desired: DesiredCombined) {
        self.shared.submit(Job::Combined(desired));
    }

    /// Asks for a StatusCollector's status to be as `desired` says. Never blocks; one the
    /// sink last wrote the same is not written again.
    pub fn submit_collector_status(&self, desired: DesiredCollectorStatus) {
        self.shared.submit(Job::CollectorStatus(desired));
    }

    /// Whether the stored CombinedStatuses have been listed (with
    /// [`SinkConfig::combined_statuses`]; never without): until then none is compared
    /// or deleted.
    pub fn combined_listed(&self) -> bool {
        self.shared.lock().combined.synced
    }

    /// The stored CombinedStatuses carrying KubeStellar's `binding-policy` label, by
    /// `namespace/name`, sorted, each with whether it carries all five (only those
    /// are Bindery's to delete).
    pub fn stored_combined(&self) -> Vec<(String, bool)> {
        self.shared.lock().combined.stored()
    }

    /// Asks for KubeStellar's finalizer to be removed from policy `name` if it is being
    /// deleted, after the write of its Binding submitted before (its deletion).
    pub fn remove_finalizer(&self, name: impl Into<String>) {
        self.shared.submit(Job::Finalizer(name.into(), None));
    }

    /// The Bindings stored now, sorted by name, each with whether it is managed (its
    /// controller owner reference is a BindingPolicy): the caller deletes the managed ones
    /// it has no policy for, and leaves the others alone. From this call on, unmanaged
    /// Bindings that appear are logged once each.
    pub fn stored_bindings(&self) -> Vec<(String, bool)> {
        self.shared.stored_bindings()
    }

    /// Problems to report in the policies' statuses now (each change is also told as a
    /// [`SinkEvent::Problem`]), name → message: Bindings whose last
    /// write failed permanently (`Binding cannot be written: HTTP 422 Invalid: ...`; an
    /// entry goes when a later write of that Binding succeeds or is found unnecessary),
    /// and Bindings another writer keeps changing (while the fight lasts).
    pub fn problems(&self) -> HashMap<String, String> {
        self.shared.problems()
    }

    /// Whether the sink writes now, and each change: true once it is leading (after
    /// re-reading the policies' statuses; submissions from then on are written), false
    /// once it stopped (submissions are dropped).
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.shared.leading()
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

/// Follows the leader election: on winning, re-reads the policies' statuses (the previous
/// leader wrote them) and then lets the sink write; on losing, stops it at once.
async fn follow_leader(
    shared: Arc<Shared>,
    writer: Arc<Writer>,
    mut leader: watch::Receiver<bool>,
) {
    loop {
        let wanted = *leader.borrow_and_update();
        if wanted && !shared.is_leading() {
            if let Err(e) = writer.load_statuses().await {
                // Each status is then read before it is written.
                tracing::warn!(error = %e, "re-reading the policies' statuses");
                shared.lock().statuses.clear();
            }
            // The lease may have gone meanwhile.
            if *leader.borrow() {
                tracing::info!("leading: writing Bindings and statuses");
                shared.set_leading(true);
            }
        } else if !wanted && shared.is_leading() {
            tracing::info!("not leading: writing nothing");
            shared.set_leading(false);
        }
        if leader.changed().await.is_err() {
            return;
        }
    }
}
