//! The engine against the oracle (`bindery_engine::Oracle`, the rules written plainly):
//! the whole pipeline on random watch histories with relists, and the acceptance, example
//! and generated logs with one epoch per event; and the history's attribution of each
//! Binding change against counterfactual replays of the same random histories.
//!
//! One test binary, one module a former test file; neither needs a process of its own
//! (no environment variable, signal handler or panic hook set in the test process).

mod histories;
mod history_counterfactual;
mod pipeline_vs_oracle;
mod replay_oracle;
