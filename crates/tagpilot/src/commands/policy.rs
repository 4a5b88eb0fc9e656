//! `tagpilot policy select`: try an ImagePolicy on a list of tags.

use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tagpilot_core::policy::{Order, Policy, PolicyError, Selector};
use tagpilot_core::semver::Range;

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the tag an ImagePolicy would select from a list of tags.
    ///
    /// Tags are read one per line from stdin, or from --tags-file. Exit status: 0 with the tag printed,
    /// 1 when no tag qualifies, 2 when the policy itself is invalid.
    #[command(after_help = "Examples:\n  \
        tagpilot policy select --semver '5.0.x' < tags.txt\n  \
        tagpilot policy select --numerical asc --filter-pattern '^main-[a-f0-9]+-(?P<ts>[0-9]+)' \
        --filter-extract '$ts' --tags-file tags.txt")]
    Select(SelectArgs),
}

/// Arguments of `policy select`.
#[derive(Debug, Args)]
pub struct SelectArgs {
    #[command(flatten)]
    choice: PolicyChoice,
    /// Keep only tags matching this regular expression (Go RE2 syntax, unanchored).
    #[arg(long, value_name = "RE")]
    filter_pattern: Option<String>,
    /// Replace each kept tag with this template before selecting (`$1`, `${1}`, `$name`).
    #[arg(long, value_name = "TEMPLATE", requires = "filter_pattern")]
    filter_extract: Option<String>,
    /// Read the tags from FILE instead of stdin.
    #[arg(long, value_name = "FILE")]
    tags_file: Option<PathBuf>,
}

/// Exactly one policy.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct PolicyChoice {
    /// Latest version within a semver range (Masterminds syntax, as Flux), e.g. '5.0.x' or '>=1.0.0 <2.0.0'.
    #[arg(long, value_name = "RANGE")]
    semver: Option<String>,
    /// Byte-wise order: asc selects the greatest tag, desc the least.
    #[arg(long, value_name = "ORDER")]
    alphabetical: Option<OrderArg>,
    /// Numeric order: asc selects the greatest number, desc the least; every tag must be a number.
    #[arg(long, value_name = "ORDER")]
    numerical: Option<OrderArg>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OrderArg {
    Asc,
    Desc,
}

impl From<OrderArg> for Order {
    fn from(o: OrderArg) -> Order {
        match o {
            OrderArg::Asc => Order::Asc,
            OrderArg::Desc => Order::Desc,
        }
    }
}

impl PolicyCommand {
    /// Runs the command and returns the process exit status.
    pub fn run(self) -> ExitCode {
        match self {
            PolicyCommand::Select(args) => args.run(),
        }
    }
}

impl SelectArgs {
    fn run(self) -> ExitCode {
        let policy = match self.policy() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: invalid policy: {e}");
                return ExitCode::from(2);
            }
        };
        let tags = match read_tags(self.tags_file.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        match policy.select(&tags) {
            Ok(tag) => {
                println!("{tag}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: no tag selected: {e}");
                ExitCode::from(1)
            }
        }
    }

    fn policy(&self) -> Result<Policy, PolicyError> {
        let c = &self.choice;
        let selector = if let Some(r) = &c.semver {
            Selector::SemVer(Range::parse(r)?)
        } else if let Some(o) = c.alphabetical {
            Selector::Alphabetical(o.into())
        } else if let Some(o) = c.numerical {
            Selector::Numerical(o.into())
        } else {
            unreachable!("clap requires exactly one policy")
        };
        let policy = Policy::new(selector);
        match &self.filter_pattern {
            Some(p) => policy.with_filter(p, self.filter_extract.as_deref()),
            None => Ok(policy),
        }
    }
}

/// Tags one per line; surrounding whitespace and blank lines are ignored.
fn read_tags(file: Option<&PathBuf>) -> anyhow::Result<Vec<String>> {
    let mut text = String::new();
    match file {
        Some(path) => {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read tags file {}", path.display()))?;
        }
        None => {
            io::stdin()
                .lock()
                .read_to_string(&mut text)
                .context("cannot read tags from stdin")?;
        }
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
