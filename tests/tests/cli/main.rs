//! The `bindery` binary on recorded watch logs, no API server: `replay` (the acceptance
//! logs, deltas, log errors), `explain`, `dry-run` and `history`, bad input, several timely workers
//! and processes, and the README's commands as written.
//!
//! One test binary, one module a former test file. No test here needs a process of its
//! own: none sets an environment variable, a signal handler or a panic hook in the test
//! process (the `bindery` processes get their environment on their `Command`), and what
//! the process holds (the built binary, the ports handed out) is the same for every test.

mod bad_input;
mod dry_run;
mod explain;
mod history;
mod log_end;
mod readme_walkthrough;
mod replay;
mod replayed;
mod timely_cluster;
mod workers;
