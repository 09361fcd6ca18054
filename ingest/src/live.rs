//! The live side of ingest: kube-rs watches of the WDS and the ITS turned into the
//! same [`WatchEvent`]s a watch log holds, so live runs and replays share one
//! pipeline, and recording a live run is writing each event to a
//! [`LogWriter`](crate::LogWriter).
//!
//! [`LiveIngest::run`] watches
//! - ManagedClusters in the ITS (metadata only, space `its`),
//! - BindingPolicies in the WDS (trimmed metadata and `spec`),
//! - every workload resource of the WDS (`discovery`, metadata only),
//! - with [`LiveConfig::work_statuses`], the WorkStatuses of that WDS in the ITS
//!   (trimmed metadata, `spec.sourceRef` and `status`), while the ITS serves them
//!   (`work_status`: checked every [`LiveConfig::work_status_poll`]),
//! - with [`LiveConfig::status_collectors`], the StatusCollectors of the WDS (trimmed
//!   metadata and `spec`), while the WDS serves them (`discovery`),
//!
//! and sends every event on one channel. Before any watcher starts it sends a
//! synthetic `RESET` for every resource it is about to watch, so the pipeline counts
//! them all as unsynced from the start. It follows the WDS's CRDs: on a change
//! (debounced) it re-runs discovery and moves to the new set (`plan`). Watch
//! errors are logged and retried with backoff; an expired watch (`410 Gone`) relists,
//! which arrives as `RESET` ... `SYNCED`.
//!
//! ```no_run
//! use bindery_ingest::live::{CancellationToken, LiveConfig, LiveIngest};
//!
//! # async fn example(wds: kube::Client, its: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
//! let shutdown = CancellationToken::new();
//! let live = tokio::spawn(LiveIngest::new(LiveConfig::new(wds, its)).run(tx, shutdown.clone()));
//! while let Some(event) = rx.recv().await {
//!     // pipeline.push(event)?; log_writer.write(&event)?; ...
//! #   drop(event);
//! }
//! live.await??;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::watchlog::{Space, WatchEvent};

mod discovery;
mod event;
mod plan;
mod schedule;
mod supervisor;
mod target;
mod watch;
mod work_status;

pub use event::{marker_event, now_ms};
pub use target::{ORIGIN_WDS_LABEL, ObjectShape, WatchTarget};
/// The shutdown signal [`LiveIngest::run`] takes (re-exported from `tokio-util`).
pub use tokio_util::sync::CancellationToken;

/// How long after the last CRD change discovery re-runs, by default.
pub const DEFAULT_CRD_DEBOUNCE: Duration = Duration::from_millis(200);
/// How often the ITS is checked for the WorkStatus CRD, by default (as KubeStellar's
/// controller-manager does).
pub const DEFAULT_WORK_STATUS_POLL: Duration = Duration::from_secs(15);

/// What a live ingest watches.
#[derive(Clone)]
pub struct LiveConfig {
    /// Client of the WDS (BindingPolicies, workload, CRDs).
    pub wds: kube::Client,
    /// Client of the ITS (ManagedClusters).
    pub its: kube::Client,
    /// Restricts the workload to these API groups (the core group named `""` or
    /// `"core"`); core `namespaces` are always watched. `None`: every group.
    pub api_groups: Option<Vec<String>>,
    /// How long discovery waits after the last of a burst of CRD changes.
    pub crd_debounce: Duration,
    /// The name of this WDS: its WorkStatuses (label
    /// `transport.kubestellar.io/originWdsName=<name>`, filtered by the API server) are
    /// watched in the ITS while it serves them. `None`: no WorkStatus watch (status
    /// return off). The name must be a valid label value.
    pub work_statuses: Option<String>,
    /// How often the ITS is checked for the WorkStatus CRD appearing or going.
    pub work_status_poll: Duration,
    /// Whether the WDS's StatusCollectors (`control.kubestellar.io` `statuscollectors`,
    /// with their `spec`) are watched, while the WDS serves them (whatever
    /// `api_groups` says): found by discovery, so a CRD installed later is picked up
    /// as a workload CRD is. Set with status return.
    pub status_collectors: bool,
}

impl LiveConfig {
    /// Watches every workload group and no WorkStatuses, with the default CRD debounce.
    pub fn new(wds: kube::Client, its: kube::Client) -> LiveConfig {
        LiveConfig {
            wds,
            its,
            api_groups: None,
            crd_debounce: DEFAULT_CRD_DEBOUNCE,
            work_statuses: None,
            work_status_poll: DEFAULT_WORK_STATUS_POLL,
            status_collectors: false,
        }
    }
}

impl fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveConfig")
            .field("api_groups", &self.api_groups)
            .field("crd_debounce", &self.crd_debounce)
            .field("work_statuses", &self.work_statuses)
            .field("work_status_poll", &self.work_status_poll)
            .field("status_collectors", &self.status_collectors)
            .finish_non_exhaustive()
    }
}

/// Why a live ingest could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The initial API discovery failed (`/api`, `/apis` or the core group could not
    /// be read). Later discoveries that fail are logged and retried instead.
    #[error("API discovery in the {space} failed: {source}")]
    Discovery {
        /// The space whose discovery failed.
        space: Space,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// A live ingest (the events it sends are counted where they are received: the
/// pipeline's `bindery_watch_events_total`).
#[derive(Debug)]
pub struct LiveIngest {
    config: LiveConfig,
}

impl LiveIngest {
    /// A live ingest of `config`, not started.
    pub fn new(config: LiveConfig) -> LiveIngest {
        LiveIngest { config }
    }

    /// Watches until `shutdown` is cancelled or `tx`'s receiver is dropped (both end
    /// it with `Ok`), sending every event on `tx`; all watcher tasks are stopped
    /// before it returns. Fails only if the initial discovery fails.
    pub async fn run(
        self,
        tx: mpsc::Sender<WatchEvent>,
        shutdown: CancellationToken,
    ) -> Result<(), LiveError> {
        supervisor::Supervisor::new(self.config, tx, shutdown)
            .run()
            .await
    }
}

#[cfg(test)]
mod tests;
