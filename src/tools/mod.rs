//! The subcommands of the `gyges` binary, one file each.

pub mod queue;
pub mod run;
