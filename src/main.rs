//! The `gyges` command: the daemon's entry point and the Heka tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gyges::tools;

/// A thread-per-core data pipeline daemon, the successor to Heka and Hindsight.
#[derive(Parser, Debug)]
#[command(name = "gyges", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the messages of a Heka-framed file as JSON lines.
    Cat(tools::cat::CatArgs),
    /// Send JSON messages (one per line) as Heka frames over TCP.
    Inject(tools::inject::InjectArgs),
    /// Generate numbered load over TCP, as Heka frames or text lines.
    Flood(tools::flood::FloodArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Cat(args) => tools::cat::run(args),
        Command::Inject(args) => tools::inject::run(args),
        Command::Flood(args) => tools::flood::run(args),
    }
}
