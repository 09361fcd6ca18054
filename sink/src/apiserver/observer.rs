//! [`SinkObserver`]: told how every write ended, for metrics. The sink keeps its own
//! counters ([`SinkStats`](super::SinkStats)); an observer sees each write one by one,
//! with the name and the age of the change it carried.

use std::fmt;
use std::time::{Duration, SystemTime};

/// What a write was about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WriteObject {
    /// A Binding object.
    Binding,
    /// A BindingPolicy's status.
    Status,
    /// A workload object's returned status (and its status-return label).
    ObjectStatus,
    /// A CombinedStatus object.
    CombinedStatus,
    /// A StatusCollector's status.
    CollectorStatus,
}

impl WriteObject {
    /// `binding` or `status`, as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteObject::Binding => "binding",
            WriteObject::Status => "status",
            WriteObject::ObjectStatus => "object_status",
            WriteObject::CombinedStatus => "combined_status",
            WriteObject::CollectorStatus => "collector_status",
        }
    }
}

/// How a write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WriteResult {
    /// Applied: created or changed on the server.
    Applied,
    /// Not sent: the server already had the desired state.
    Unchanged,
    /// The Binding was deleted (or was already gone).
    Deleted,
    /// A status not written because its policy is gone.
    Dropped,
    /// Failed permanently (after retries).
    Failed,
}

impl WriteResult {
    /// Lower-case name, as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Applied => "applied",
            WriteResult::Unchanged => "unchanged",
            WriteResult::Deleted => "deleted",
            WriteResult::Dropped => "dropped",
            WriteResult::Failed => "failed",
        }
    }
}

/// One finished write.
#[derive(Clone, Copy, Debug)]
pub struct WriteReport<'a> {
    /// Binding, status or object status.
    pub object: WriteObject,
    /// The Binding's (= its policy's) name; for an object status,
    /// `group/resource/namespace/name`.
    pub name: &'a str,
    /// How it ended.
    pub result: WriteResult,
    /// How long the request took, retries and rate-limit waits included, when one was
    /// sent (`None` for [`WriteResult::Unchanged`] and writes that failed before sending).
    pub latency: Option<Duration>,
    /// For Bindings: when the oldest change this write carries was received
    /// ([`DesiredBinding::changed_at`](super::DesiredBinding::changed_at)).
    pub changed_at: Option<SystemTime>,
}

/// Told how every write of a sink ended. Called on the sink's tasks: keep it quick and
/// non-blocking (e.g. bump counters).
pub trait SinkObserver: Send + Sync {
    /// One write ended.
    fn write_done(&self, report: &WriteReport<'_>);
}

/// The observer of a sink started without one.
pub(crate) struct NoObserver;

impl SinkObserver for NoObserver {
    fn write_done(&self, _: &WriteReport<'_>) {}
}

impl fmt::Debug for dyn SinkObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkObserver")
    }
}
