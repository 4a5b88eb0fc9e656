//! The `tagpilot` command line: Flux-compatible image automation tools.

mod commands;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::cluster::manage::{Action, ManageArgs};

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
    /// Create or update image objects on a cluster (`create image repository|policy|update`).
    Create(commands::cluster::create::CreateArgs),
    /// Show image objects (`get image repository|policy|update [NAME]`, `get images all`).
    Get(commands::cluster::get::GetArgs),
    /// Suspend an image object's reconciliation.
    Suspend(ManageArgs),
    /// Resume a suspended image object and wait for it to be Ready.
    Resume(ManageArgs),
    /// Ask an image repository or update automation to reconcile now, and wait until it has.
    Reconcile(ManageArgs),
    /// Delete an image object.
    Delete(ManageArgs),
    /// Install the controllers (CRDs, RBAC, Deployments, Services) on a cluster, or print them (`--export`).
    Install(commands::install::InstallArgs),
    /// Remove the controllers from a cluster (the CRDs only with `--crds`).
    Uninstall(commands::install::UninstallArgs),
    /// Commit the controllers' manifests into a repository that Flux syncs (`bootstrap git`).
    Bootstrap(commands::install::BootstrapArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => cmd.run(),
        Command::Update(args) => args.run(),
        Command::Scan(args) => args.run(),
        Command::Run(args) => args.run(),
        Command::Create(args) => args.run(),
        Command::Get(args) => args.run(),
        Command::Suspend(args) => args.run(Action::Suspend),
        Command::Resume(args) => args.run(Action::Resume),
        Command::Reconcile(args) => args.run(Action::Reconcile),
        Command::Delete(args) => args.run(Action::Delete),
        Command::Install(args) => args.run(),
        Command::Uninstall(args) => args.run(),
        Command::Bootstrap(args) => args.run(),
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "tagpilot",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
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
