//! The `bindery` binary's library: the pieces that wire ingest, the engine and the
//! sinks together, shared by the commands and by the integration tests.
//!
//! - [`pipeline`]: watch events → relist tracking → engine, epochs closed only when synced.
//! - [`replay`]: `bindery replay` (and its `--with-policy` dry-run).
//! - [`live`]: `bindery run`, the live engine; [`leader`]: its leader election.
//! - [`cluster`]: timely's cluster mode (`--processes`, `--process-index`, `--hosts`).
//! - [`snapshot`]: reading live servers once until every watch has synced.
//! - [`state`]: a log's end or a live snapshot loaded into the oracle.
//! - [`explain`], [`dry_run`]: `bindery explain` and `bindery dry-run`, on that state.
//! - [`metrics`], [`dashboard`], [`server`]: Prometheus metrics, the live dashboard's
//!   samples, and the HTTP server of both (and of `GET /explain`).
//! - [`shutdown`]: SIGTERM/SIGINT: a graceful shutdown, then an immediate exit.
//! - [`generate`]: seeded synthetic watch logs at any scale (`bindery generate`).
//! - [`client_args`]: the `--wds-*`/`--its-*` flags and the kube clients they make.
//! - [`health`]: readiness and liveness of `/readyz` and `/livez`.
//! - [`policy_events`]: Kubernetes Events on BindingPolicies (new problems, write
//!   failures, problems resolved), rate-limited.
//! - [`progress`]: progress bars and periodic progress lines.
//! - [`stdout`]: every write to stdout (a closed stdout ends a command quietly).

#![warn(missing_docs)]

pub mod client_args;
pub mod cluster;
pub mod dashboard;
pub mod dry_run;
pub mod explain;
pub mod generate;
pub mod health;
pub mod leader;
pub mod live;
pub mod metrics;
pub mod pipeline;
pub mod policy_events;
pub mod progress;
pub mod replay;
pub mod server;
pub mod shutdown;
pub mod snapshot;
pub mod state;
pub mod stdout;
