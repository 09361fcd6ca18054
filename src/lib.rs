//! The `bindery` binary's library: the pieces that wire ingest, the engine and the
//! sinks together, shared by the commands and by the integration tests.
//!
//! - [`cmd`]: one module per subcommand (`run`, `replay`, `explain`, `dry-run`,
//!   `generate`).
//! - [`input`]: what feeds the engine: the pipeline, the state sources and loaders,
//!   live snapshots, the timely topology.
//! - [`runtime`]: what a controller process needs: clients, leader election, shutdown,
//!   health, Events on policies.
//! - [`observe`]: metrics, the dashboard, the HTTP server, progress.

#![warn(missing_docs)]

pub mod cmd;
pub mod input;
pub mod observe;
pub mod runtime;
