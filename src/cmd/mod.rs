//! The subcommands, one module each.

pub mod dry_run;
pub mod explain;
pub mod generate;
pub mod replay;
pub mod run;
pub mod stdout;
