//! `bindery run`, `explain` and `dry-run` against real kube-apiservers and etcd (envtest,
//! `bindery_tests::envtest`): the seed's example and live changes, scenario by scenario,
//! faults, leader election, ownership of Bindings, metrics, shutdown, the WorkStatus and
//! StatusCollector watches;
//! and the test control plane itself.
//!
//! One test binary, one module a former test file (`scenarios` a former binary of its
//! own). Each test starts its own control plane on free ports, so they run side by side.
//! No test here needs a process of its own: none sets an environment variable, a signal
//! handler or a panic hook in the test process (signals go to the `bindery` processes it
//! starts, which get their environment on their `Command`).

mod combined_statuses;
mod e2e;
mod envtest_smoke;
mod explain;
mod faults;
mod history;
mod install_crds;
mod json_logs;
mod leader;
mod metrics;
mod ownership;
mod scenarios;
mod shutdown;
mod status_collectors;
mod status_return;
mod work_statuses;
