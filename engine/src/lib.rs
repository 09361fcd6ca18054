//! Bindery's engine: turns WECs, workload objects and BindingPolicies into KubeStellar
//! Bindings, incrementally, with a differential dataflow. Pure: no I/O of its own
//! (in a timely cluster, timely's threads use the sockets it is given), deterministic.
//!
//! - [`input`]: the changes the engine is told ([`Change`]).
//! - [`policy`], [`selector`]: BindingPolicy and label selector parsing, validation and
//!   the tests of the semantics spec.
//! - [`engine`]: [`Engine`], which runs the differential dataflow (the private
//!   `dataflow` module builds it) on a timely worker, feeds it and materializes its
//!   output. The input model (`model`, `labels`, `intern`) and the dataflow's index
//!   keys (`index`) are private to the crate.
//! - [`binding`]: Bindings and their exact JSON.
//! - [`collector`]: StatusCollectors: their CEL expressions and the cells of their
//!   results; [`reported`]: the reported state returned into workload objects (the
//!   decision table, the multi-WEC aggregations). Status return,
//!   `docs/status-semantics.md`.
//! - [`oracle`]: a plain full recomputation the dataflow is tested against.
//! - [`explain`]: why a policy binds a WEC or selects an object, test by test.
//! - [`strict_json`]: JSON/YAML values with duplicate keys marked and nesting bounded.

#![warn(missing_docs)]

pub mod binding;
pub mod collector;
pub(crate) mod dataflow;
pub mod engine;
pub mod explain;
pub(crate) mod index;
pub mod input;
pub(crate) mod intern;
pub(crate) mod labels;
pub(crate) mod model;
pub mod oracle;
pub mod policy;
pub mod reported;
pub mod selector;
pub mod strict_json;

pub use binding::{Binding, WorkloadEntry, binding_list};
pub use engine::{
    ArrangementSize, BindingChange, ClusterError, ClusterLinks, CombinedChange, Engine,
    EpochOutput, PolicyStatus, serve_cluster,
};
pub use explain::{ExplainError, Explanation, ObjectKey, Query};
pub use input::{
    Change, CollectorInput, LabelMap, ObjectContent, PolicyInput, WorkStatusReport, WorkloadRef,
    WorkloadState,
};
pub use oracle::Oracle;
pub use policy::PolicySpec;
