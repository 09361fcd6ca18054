//! What deploying Bindery takes: the generated CRDs, the Helm chart (rendered by a real
//! `helm template`, applied to real kube-apiservers), how `bindery` finds its servers and
//! serves its probes, and the dashboard in a real headless Chromium.
//!
//! One test binary, one module a former test file. No test here needs a process of its
//! own: none sets an environment variable, a signal handler or a panic hook in the test
//! process (the `bindery` processes get their environment on their `Command`).

mod chart;
mod crds;
mod dashboard_browser;
mod deployable;
