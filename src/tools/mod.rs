//! The subcommands of the `gyges` binary, one module each.
//!
//! Each tool exposes a `clap::Args` struct and a `run` function returning the process exit
//! code; `main.rs` only dispatches.

pub mod matcher;
pub mod run;
