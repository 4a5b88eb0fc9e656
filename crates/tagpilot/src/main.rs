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
    /// Apply resolved image policies to the marked values in a directory of YAML.
    Update(commands::update::UpdateArgs),
    /// List the tags of an image repository (or a tag's digest), as an ImageRepository scan does.
    Scan(commands::scan::ScanArgs),
    /// Run the whole image automation of some manifests without a cluster: scan, select, update, commit, push.
    Run(commands::run::RunArgs),
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => cmd.run(),
        Command::Update(args) => args.run(),
        Command::Scan(args) => args.run(),
        Command::Run(args) => args.run(),
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`tagpilot ... | head`) would fail with a panic;
/// restore the default so the process ends quietly, as other command-line tools do.
fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default at startup, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
