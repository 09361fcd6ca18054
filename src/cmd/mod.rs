//! The subcommands, one module each: its flags (`Args`, with `options()` checking them)
//! beside the command (`execute`).

pub mod crds;
pub mod dry_run;
pub mod explain;
pub mod generate;
pub mod history;
pub mod log_time;
pub mod replay;
pub mod run;
pub mod stdout;
