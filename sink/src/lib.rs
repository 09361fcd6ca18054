//! Where Bindery's output goes. [`file`]: the final Bindings as a Kubernetes `List`, and
//! each epoch's Binding changes as JSON lines. (The API-server sink comes with live mode.)

#![warn(missing_docs)]

pub mod file;

pub use file::{DeltaWriter, write_binding_list};
