//! The `tagpilot` command line: Flux-compatible image automation tools.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Flux-compatible image automation: scan registries, pick the latest tag by policy, update Git.
#[derive(Debug, Parser)]
#[command(name = "tagpilot", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with image policies without a cluster.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => cmd.run(),
    }
}
