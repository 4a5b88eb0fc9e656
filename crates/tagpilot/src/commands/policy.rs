//! `tagpilot policy select`: try an ImagePolicy on a list of tags, or (with `--image`) on an image repository
//! with tagpilot's gates (signatures, minimum age, platforms, newest build) checked against its registry.

use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use tagpilot_core::api::{
    AlphabeticalPolicy, ImagePolicyChoice, ImagePolicySpec, ImageVerification,
    LocalObjectReference, NewestBuildPolicy, NumericalPolicy, OidcIdentityMatch, SemVerPolicy,
    TagFilterSpec,
};
use tagpilot_core::cosign::Verifier;
use tagpilot_core::gates::{Choice, GateCache, GateContext, GateError, Gates, VerifySpec, choose};
use tagpilot_core::policy::{Order, Policy};
use tagpilot_core::registry::{
    DEFAULT_EXCLUSIONS, DEFAULT_MAX_TAGS, Exclusions, ImageName, RegistryClient, ScanRequest,
};
use tagpilot_core::tagstore::StoredTags;

use super::scan::RegistryArgs;

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the tag an ImagePolicy would select from a list of tags.
    ///
    /// Tags are read one per line from stdin, or from --tags-file; with --image they are listed from the
    /// registry (unless --tags-file), and the gates (--verify-*, --minimum-age, --platform, --newest-build)
    /// are checked there. Exit status: 0 with the tag printed, 1 when no tag qualifies, 2 when the policy
    /// itself is invalid.
    #[command(after_help = "Examples:\n  \
        tagpilot policy select --semver '5.0.x' < tags.txt\n  \
        tagpilot policy select --numerical asc --filter-pattern '^main-[a-f0-9]+-(?P<ts>[0-9]+)' \
        --filter-extract '$ts' --tags-file tags.txt\n  \
        tagpilot policy select --semver '1.x' --image ghcr.io/org/app --verify-key cosign.pub --minimum-age 72h\n  \
        tagpilot policy select --newest-build --image 127.0.0.1:5000/app --platform linux/arm64")]
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
    #[command(flatten)]
    gates: GateArgs,
}

/// tagpilot's gates, checked against the registry of --image.
#[derive(Debug, Args)]
struct GateArgs {
    /// The image repository whose tags are chosen from (listed from its registry unless --tags-file); needed
    /// by every gate.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Only tags whose image was built at least this long ago (a Go duration: 72h).
    #[arg(long, value_name = "DURATION")]
    minimum_age: Option<String>,
    /// A platform every candidate's image must provide (linux/arm64); repeatable or comma-separated.
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    platforms: Vec<String>,
    /// A cosign public key (PEM); the tag's image must be signed by one of them. Repeatable.
    #[arg(long = "verify-key", value_name = "FILE")]
    verify_keys: Vec<PathBuf>,
    /// Keyless: Sigstore's trusted_root.json to check Fulcio certificates and Rekor entries against.
    #[arg(long, value_name = "FILE", conflicts_with = "verify_keys")]
    verify_trusted_root: Option<PathBuf>,
    /// Keyless: the OIDC issuer the certificate must name (regular expression).
    #[arg(long, value_name = "RE", requires = "verify_trusted_root")]
    verify_oidc_issuer: Option<String>,
    /// Keyless: the certificate's subject, an email or URI (regular expression).
    #[arg(long, value_name = "RE", requires = "verify_trusted_root")]
    verify_subject: Option<String>,
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
    /// The tag whose image was built last (tagpilot's newestBuild; needs --image).
    #[arg(long)]
    newest_build: bool,
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
        let (policy, gates) = match self.spec() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: invalid policy: {e:#}");
                return ExitCode::from(2);
            }
        };
        if let Some(image) = &self.gates.image {
            return self.run_gated(image, &policy, &gates);
        }
        if gates.any() {
            eprintln!(
                "error: invalid policy: --newest-build, --minimum-age, --platform and --verify-* need --image"
            );
            return ExitCode::from(2);
        }
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

    /// The engine and gates of the ImagePolicy spec these flags mean, checked as the controller checks them.
    fn spec(&self) -> anyhow::Result<(Policy, Gates)> {
        let c = &self.choice;
        let order = |o: OrderArg| Some(Order::from(o).to_string());
        let choice = ImagePolicyChoice {
            semver: c.semver.clone().map(|range| SemVerPolicy { range }),
            alphabetical: c
                .alphabetical
                .map(|o| AlphabeticalPolicy { order: order(o) }),
            numerical: c.numerical.map(|o| NumericalPolicy { order: order(o) }),
            newest_build: c.newest_build.then(NewestBuildPolicy::default),
        };
        let g = &self.gates;
        let verify = if !g.verify_keys.is_empty() {
            Some(ImageVerification {
                secret_ref: Some(LocalObjectReference {
                    name: "--verify-key".into(),
                }),
                ..Default::default()
            })
        } else if g.verify_trusted_root.is_some() {
            Some(ImageVerification {
                match_oidc_identity: Some(vec![OidcIdentityMatch {
                    issuer: g.verify_oidc_issuer.clone().unwrap_or_else(|| ".*".into()),
                    subject: g.verify_subject.clone().unwrap_or_else(|| ".*".into()),
                }]),
                trusted_root_secret_ref: Some(LocalObjectReference {
                    name: "--verify-trusted-root".into(),
                }),
                ..Default::default()
            })
        } else {
            None
        };
        let spec = ImagePolicySpec {
            policy: choice,
            filter_tags: self.filter_pattern.as_ref().map(|p| TagFilterSpec {
                pattern: Some(p.clone()),
                extract: self.filter_extract.clone(),
            }),
            minimum_age: g.minimum_age.clone(),
            platforms: (!g.platforms.is_empty()).then(|| g.platforms.clone()),
            verify,
            ..Default::default()
        };
        Ok(spec.checked()?)
    }

    fn run_gated(&self, image: &str, policy: &Policy, gates: &Gates) -> ExitCode {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        match runtime.block_on(self.select_gated(image, policy, gates)) {
            Ok(Ok(choice)) => {
                for s in &choice.skipped {
                    eprintln!("skipped {}: {}", s.tag, s.why);
                }
                println!("{}", choice.tag);
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                if let GateError::NoneEligible { skipped, .. } = &e {
                    for s in skipped {
                        eprintln!("skipped {}: {}", s.tag, s.why);
                    }
                }
                eprintln!("error: no tag selected: {e}");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }
    }

    async fn select_gated(
        &self,
        image: &str,
        policy: &Policy,
        gates: &Gates,
    ) -> anyhow::Result<Result<Choice, GateError>> {
        let image = ImageName::parse(image)?;
        let (credentials, transport) = self.gates.registry.access(&image)?;
        let verifier = self.verifier(gates)?;
        let client = RegistryClient::default();
        let tags = match &self.tags_file {
            Some(f) => read_tags(Some(f))?,
            None => {
                client
                    .list_tags(&ScanRequest {
                        image: &image,
                        credentials: &credentials,
                        transport: &transport,
                        exclusions: &Exclusions::new(DEFAULT_EXCLUSIONS)?,
                        page_size: 1000,
                        timeout: Duration::from_secs(120),
                        max_tags: DEFAULT_MAX_TAGS,
                    })
                    .await?
                    .tags
            }
        };
        let cache = GateCache::default();
        let ctx = GateContext {
            registry: &client,
            image: &image,
            credentials: &credentials,
            transport: &transport,
            cache: &cache,
            scan: "cli",
            verifier: verifier.as_ref(),
            now: jiff::Timestamp::now(),
        };
        Ok(choose(&ctx, policy, gates, &StoredTags::from_tags(&tags)).await)
    }

    /// The verifier of --verify-key or --verify-trusted-root, as a Secret of those files would give.
    fn verifier(&self, gates: &Gates) -> anyhow::Result<Option<Verifier>> {
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        Ok(match &gates.verify {
            None => None,
            Some(VerifySpec::Keys { .. }) => {
                let mut data = BTreeMap::new();
                for (i, p) in self.gates.verify_keys.iter().enumerate() {
                    data.insert(format!("{i}-{}.pub", p.display()), read(p)?);
                }
                Some(Verifier::with_keys("--verify-key", &data)?)
            }
            Some(VerifySpec::Keyless { identities, .. }) => {
                let root = self
                    .gates
                    .verify_trusted_root
                    .as_ref()
                    .expect("keyless only with --verify-trusted-root");
                let data = BTreeMap::from([("trusted_root.json".to_string(), read(root)?)]);
                Some(Verifier::keyless(
                    "--verify-trusted-root",
                    &data,
                    identities.clone(),
                )?)
            }
        })
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
