//! The command-line tools `gyges` offers besides the daemon, one module per subcommand.
//!
//! Each tool exposes a `clap::Args` struct and a `run` function returning the process exit
//! code; `main.rs` only dispatches.

pub mod matcher;
