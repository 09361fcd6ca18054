//! Bindery's engine: turns WECs, workload objects and BindingPolicies into KubeStellar
//! Bindings, incrementally, with a differential dataflow. Pure: no I/O, deterministic.
//!
//! - [`input`]: the changes the engine is told ([`Change`]).
//! - [`policy`], [`selector`]: BindingPolicy and label selector parsing, validation and
//!   the tests of the semantics spec.
//! - [`dataflow`]: the differential dataflow (the only module using timely/DD).
//! - [`engine`]: [`Engine`], which feeds the dataflow and materializes its output.
//! - [`binding`]: Bindings and their exact JSON.
//! - [`oracle`]: a plain full recomputation the dataflow is tested against.
//! - [`explain`]: why a policy binds a WEC or selects an object, test by test.
//! - [`strict_json`]: JSON/YAML values with duplicate keys marked and nesting bounded.

#![warn(missing_docs)]

pub mod binding;
pub mod dataflow;
pub mod engine;
pub mod explain;
pub mod index;
pub mod input;
pub mod intern;
pub mod labels;
pub mod model;
pub mod oracle;
pub mod policy;
pub mod selector;
pub mod strict_json;

pub use binding::{Binding, WorkloadEntry, binding_list};
pub use engine::{BindingChange, Engine, EpochOutput, PolicyStatus};
pub use explain::{ExplainError, Explanation, ObjectKey, Query};
pub use input::{Change, LabelMap, PolicyInput, WorkloadRef, WorkloadState};
pub use oracle::Oracle;
pub use policy::PolicySpec;
