//! The `gyges` binary: parses the command line and dispatches to a subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A thread-per-core data pipeline daemon, the successor to Heka and Hindsight.
#[derive(Debug, Parser)]
#[command(name = "gyges", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile a message matcher expression; print its program, or test it on a message.
    Matcher(gyges::tools::matcher::MatcherArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Matcher(args) => gyges::tools::matcher::run(args),
    }
}
