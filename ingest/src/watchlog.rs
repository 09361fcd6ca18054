//! The watch log format, version 1 (`docs/watch-log.md`): one header line, then one
//! JSON event per line, optionally zstd-compressed.
//!
//! [`LogReader`] reads a log (detecting zstd by its magic bytes) and yields
//! [`LogLine`]s; [`LogWriter`] writes one.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod counting;
mod error;
mod event;
mod header;
mod read_ahead;
mod reader;
mod writer;

pub use error::LogError;
pub use header::LogHeader;
pub use read_ahead::ReadAhead;
pub use reader::{LogReader, MAX_LINE_BYTES};
pub use writer::LogWriter;

/// The watch log format version this crate writes.
pub const WATCH_LOG_VERSION: u64 = 1;

/// The watch log format versions this crate can read.
pub const SUPPORTED_VERSIONS: &[u64] = &[WATCH_LOG_VERSION];

/// Which API server an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// The workload description space (`"wds"`).
    Wds,
    /// The inventory and transport space (`"its"`).
    Its,
}

impl Space {
    /// The name used in the log (`"wds"` or `"its"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Space::Wds => "wds",
            Space::Its => "its",
        }
    }

    /// The name used in messages (`"WDS"` or `"ITS"`).
    pub fn title(self) -> &'static str {
        match self {
            Space::Wds => "WDS",
            Space::Its => "ITS",
        }
    }

    /// Parses the name used in the log.
    pub fn parse(s: &str) -> Option<Space> {
        match s {
            "wds" => Some(Space::Wds),
            "its" => Some(Space::Its),
            _ => None,
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The object now exists in this state (new).
    Added,
    /// The object now exists in this state (changed).
    Modified,
    /// The object no longer exists; `object` is its last known state.
    Deleted,
    /// The initial list (or a relist) of this resource is complete.
    Synced,
    /// A relist of this resource begins.
    Reset,
}

impl EventType {
    /// The name used in the log (`"ADDED"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Synced => "SYNCED",
            EventType::Reset => "RESET",
        }
    }

    /// Parses the name used in the log.
    pub fn parse(s: &str) -> Option<EventType> {
        match s {
            "ADDED" => Some(EventType::Added),
            "MODIFIED" => Some(EventType::Modified),
            "DELETED" => Some(EventType::Deleted),
            "SYNCED" => Some(EventType::Synced),
            "RESET" => Some(EventType::Reset),
            _ => None,
        }
    }

    /// Whether events of this type carry an `object` (`ADDED`, `MODIFIED`, `DELETED`).
    pub fn has_object(self) -> bool {
        matches!(
            self,
            EventType::Added | EventType::Modified | EventType::Deleted
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A watched resource: `(space, group, version, resource)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    /// The API server.
    pub space: Space,
    /// The API group, `""` for the core group.
    pub group: String,
    /// The API version, e.g. `"v1"`.
    pub version: String,
    /// The lower-case plural resource name, e.g. `"deployments"`.
    pub resource: String,
}

impl ResourceRef {
    /// Builds a resource reference.
    pub fn new(
        space: Space,
        group: impl Into<String>,
        version: impl Into<String>,
        resource: impl Into<String>,
    ) -> ResourceRef {
        ResourceRef {
            space,
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }
}

/// Shown as `space:group/version/resource`, or `space:version/resource` for the
/// core group (e.g. `wds:apps/v1/deployments`, `wds:v1/namespaces`).
impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}:{}/{}", self.space, self.version, self.resource)
        } else {
            write!(
                f,
                "{}:{}/{}/{}",
                self.space, self.group, self.version, self.resource
            )
        }
    }
}

/// One event line of a watch log.
///
/// Serializes to (and deserializes from) exactly the log's flat line format, keys in
/// the order `ts, space, group, version, resource, type, object`. `object` is written
/// only for `ADDED`/`MODIFIED`/`DELETED`; when reading it is required (and must be a
/// JSON object) for those types and ignored for `SYNCED`/`RESET`.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    /// When the event was received, Unix epoch milliseconds.
    pub ts: i64,
    /// The resource the event is about.
    pub resource: ResourceRef,
    /// The event type.
    pub event_type: EventType,
    /// The Kubernetes object (`None` for `SYNCED` and `RESET`).
    pub object: Option<Value>,
}

/// One event read from a log, with its 1-based line number in the file (the header
/// is line 1).
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    /// The line number in the (decompressed) file, 1-based.
    pub line: u64,
    /// The event on that line.
    pub event: WatchEvent,
}

#[cfg(test)]
mod tests;
