//! The `bindery` binary's library: the pieces that wire ingest, the engine and the
//! sinks together, shared by the commands and by the integration tests.
//!
//! - `cmd`: one module per subcommand (`run`, `replay`, `explain`, `dry-run`,
//!   `generate`, `history`).
//! - `history`: each Binding change with the watch events that caused it.
//! - `input`: what feeds the engine: the pipeline, the state sources and loaders,
//!   live snapshots, the timely topology.
//! - `runtime`: what a controller process needs: clients, leader election, shutdown,
//!   health, Events on policies.
//! - `observe`: metrics, the dashboard, the HTTP server, progress.

#![warn(missing_docs)]

mod cli;
mod cmd;
mod files;
pub mod history;
mod input;
mod observe;
mod runtime;
#[cfg(test)]
mod test_support;

// What the integration tests, benchmarks and fuzz targets use.
pub use cli::{Cli, error_report, stdout_closed};
pub use cmd::dry_run::DryRunPolicy;
pub use input::loader::{OracleLoader, load as load_state};
pub use input::pipeline::Pipeline;
pub use input::snapshot::{LiveSource, StateSource, read_until_synced};
pub use input::synthetic::{ChurnKind, GenerateSpec, generate_events, generate_to};
pub use input::topology::{ProcessPlan, Topology};
pub use runtime::client_args::kube_client;

/// Measurements of internals for the benchmarks (BENCHMARKS.md), not an API.
#[doc(hidden)]
pub mod bench_hooks {
    pub use crate::cmd::run::first_publish::{FirstPublish, measure_first_publish};
    pub use crate::input::loader::{LoadError, Loader, Target, View};
}
