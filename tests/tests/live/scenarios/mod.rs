//! `bindery run` against real kube-apiservers (envtest), scenario by scenario: policy
//! edits, namespace relabels, object updates and deletes; a CRD created and deleted at
//! run time; policy deletion; a restart of bindery (never a partial Binding, unchanged
//! Bindings not rewritten); a restart of the WDS API server; invalid selectors reported
//! in the status; least privilege with the WDS RBAC of the Helm chart.
//!
//! Each test starts its own control plane. Expected Bindings are written out in full:
//! entries built from the objects as stored (their resourceVersions), sorted as
//! `docs/binding-semantics.md` says, and the owner reference to the policy.
//!
//! One module a theme: [`changes`], [`restarts`], [`reporting`], [`rbac`]; what they
//! share is the `World` of a control plane and Bindery runs (`bindery_tests::world`) and
//! the builders of objects and expected Bindings (`bindery_tests::objects`).

mod changes;
mod rbac;
mod reporting;
mod restarts;
