//! Where Bindery's output goes. [`file`](mod@file): the final Bindings as a Kubernetes `List`,
//! the returned object statuses, and each epoch's Binding changes as JSON lines. [`apiserver`]: Bindings and BindingPolicy
//! statuses written to the WDS (coalesced, rate-limited, retried, drift restored).

#![warn(missing_docs)]

pub mod apiserver;
pub mod file;

pub use apiserver::{
    BindingSink, CombinedDrift, DesiredBinding, DesiredCollectorStatus, DesiredCombined,
    DesiredReport, DesiredStatus, Drift, KUBESTELLAR_FINALIZER, SinkConfig, SinkError, SinkEvent,
    SinkEvents, SinkHandle, SinkObserver, SinkStats, WriteObject, WriteReport, WriteResult,
    combined_key, workload_api,
};
pub use file::{
    DeltaWriter, Statuses, statuses_document, write_binding_list, write_binding_list_of,
    write_statuses,
};
