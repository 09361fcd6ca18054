//! The `bindery` binary's library: the pieces that wire ingest, the engine and the
//! sinks together, shared by the commands and by the integration tests.
//!
//! - [`pipeline`]: watch events → relist tracking → engine, epochs closed only when synced.
//! - [`replay`]: `bindery replay`.
//! - [`progress`]: progress bars and periodic progress lines.

#![warn(missing_docs)]

pub mod pipeline;
pub mod progress;
pub mod replay;
