//! Bindery's ingest side: the watch log format (reading and writing, plain or
//! zstd-compressed), the relist tracker that turns a raw watch event stream
//! (including `RESET` ... `SYNCED` relists) into state changes, and the [`live`]
//! watches of the WDS and ITS that produce the same events.
//!
//! The format contract is `docs/watch-log.md`; [`watchlog`] follows it.
//!
//! ```no_run
//! use std::path::Path;
//! use bindery_ingest::{LogReader, RelistTracker};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut reader = LogReader::open(Path::new("case3.jsonl"))?;
//! let name = reader.name().to_owned();
//! let mut tracker = RelistTracker::new();
//! for line in reader.by_ref() {
//!     let line = line?;
//!     let changes = tracker
//!         .apply_owned(line.event)
//!         .map_err(|e| format!("{name}:{}: {e}", line.line))?;
//!     // ... hand `changes` to the engine; publish only once `tracker.complete()`.
//! #   drop(changes);
//! }
//! if let Some(line) = reader.torn_last_line() {
//!     eprintln!("ignored the incomplete last line {line}");
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod feed;
pub mod live;
pub mod relist;
pub mod watchlog;

pub use feed::{
    FeedError, Meta, ObjectKind, classify, object_content, object_content_line,
    status_write_object, status_written, to_change,
};
pub use live::{LiveConfig, LiveError, LiveIngest, WatchTarget};
pub use relist::{RelistError, RelistTracker, StateChange};
pub use watchlog::{
    EventType, LogError, LogHeader, LogLine, LogReader, LogWriter, MAX_LINE_BYTES, ReadAhead,
    ResourceRef, SUPPORTED_VERSIONS, Space, WATCH_LOG_VERSION, WatchEvent,
};
