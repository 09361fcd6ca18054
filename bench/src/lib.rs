//! What Bindery's benchmarks share (the benches themselves are the bench targets in
//! `bench/benches/`, one file each; `BENCHMARKS.md` says how to run them):
//!
//! - [`cli`]: the arguments after `cargo bench ... --`, and counts such as `100_000,1M`;
//! - [`rng`]: the seeded generator of the synthetic states and changes;
//! - [`changes`]: the engine's input (objects, labels, policies) and the Binding entries
//!   an epoch changed;
//! - [`live`]: what the benches against envtest's API servers share (bulk creation,
//!   watches, the stand-in status add-on's writes, the status controllers side by side);
//! - [`memory`]: resident memory (`VmRSS`, `VmHWM`) of this or another process;
//! - [`stats`]: quantiles of a sample;
//! - [`fmt`]: times and sizes as the tables print them.

pub mod changes;
pub mod cli;
pub mod fmt;
pub mod live;
pub mod memory;
pub mod rng;
pub mod stats;

pub use rng::Rng;
