//! The `gyges` command: parses arguments and hands off to the library. The only user of
//! `anyhow`-style top-level error handling; everything below returns typed errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gyges",
    version,
    about = "A thread-per-core data pipeline daemon, Heka's successor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (with no -c, on the embedded default config).
    Run(gyges::tools::run::RunArgs),
    /// Check a config and print the resolved plan.
    Validate(gyges::tools::run::ValidateArgs),
    /// Show the disk queues: segments and bytes, each consumer's cursor and lag.
    Queue(gyges::tools::queue::QueueArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => gyges::tools::run::run(args),
        Command::Validate(args) => gyges::tools::run::validate(args),
        Command::Queue(args) => gyges::tools::queue::run(args),
    }
}
