//! The `gyges` command: the daemon's entry point and the Heka tools. It only parses arguments
//! and dispatches; every subcommand lives in `gyges::tools`.

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
    /// Run the daemon (with no -c, on the embedded default config).
    Run(tools::run::RunArgs),
    /// Check a config and print the resolved plan.
    Validate(tools::run::ValidateArgs),
    /// Compile a message matcher expression; print its program, or test it on a message.
    Matcher(tools::matcher::MatcherArgs),
    /// Print the messages of a Heka-framed file as JSON lines.
    Cat(tools::cat::CatArgs),
    /// Send JSON messages (one per line) as Heka frames over TCP.
    Inject(tools::inject::InjectArgs),
    /// Generate numbered load over TCP, as Heka frames or text lines.
    Flood(tools::flood::FloodArgs),
    /// Show the disk queues: segments and bytes, each consumer's cursor and lag.
    Queue(tools::queue::QueueArgs),
    /// Load or unload a SandboxFilter through a SandboxManagerFilter (signed control message).
    Sandbox(tools::sandbox::SandboxArgs),
    /// Show per-plugin rates and queue lag of a running daemon, from its /metrics.
    Top(tools::top::TopArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(args) => tools::run::run(args),
        Command::Validate(args) => tools::run::validate(args),
        Command::Matcher(args) => tools::matcher::run(args),
        Command::Cat(args) => tools::cat::run(args),
        Command::Inject(args) => tools::inject::run(args),
        Command::Flood(args) => tools::flood::run(args),
        Command::Queue(args) => tools::queue::run(args),
        Command::Top(args) => tools::top::run(args),
        Command::Sandbox(args) => tools::sandbox::run(args),
    }
}
