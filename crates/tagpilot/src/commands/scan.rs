//! `tagpilot scan`: list an image repository's tags as an ImageRepository scan would.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tagpilot_core::registry::{
    Credentials, DEFAULT_EXCLUSIONS, DockerConfig, Exclusions, ImageName, RegistryClient,
    ScanRequest, Transport,
};

/// How to reach a registry from the command line: credentials and transport (shared by `scan` and
/// `policy select`).
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Credentials from a Docker config file (`.dockerconfigjson` or ~/.docker/config.json).
    #[arg(long, value_name = "FILE", conflicts_with = "username")]
    docker_config: Option<PathBuf>,
    /// User name for the registry; the password is read from stdin (--password-stdin).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    username: Option<String>,
    /// Read the password (or access token) from stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// A PEM file of CA certificates to trust (as certSecretRef's ca.crt).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// A PEM client certificate for mTLS (with --key-file).
    #[arg(long, value_name = "FILE", requires = "key_file")]
    cert_file: Option<PathBuf>,
    /// The PEM key of --cert-file.
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    key_file: Option<PathBuf>,
    /// Use plain HTTP (spec.insecure).
    #[arg(long)]
    insecure: bool,
}

impl RegistryArgs {
    /// The credentials and transport for `image`.
    pub fn access(&self, image: &ImageName) -> anyhow::Result<(Credentials, Transport)> {
        let credentials = if let Some(path) = &self.docker_config {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let config =
                DockerConfig::from_json(&bytes).with_context(|| format!("{}", path.display()))?;
            config.credentials_for(&image.registry)?.unwrap_or_default()
        } else if let Some(username) = &self.username {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            if password.is_empty() {
                bail!("--password-stdin: stdin was empty");
            }
            Credentials::Basic {
                username: username.clone(),
                password,
            }
        } else {
            Credentials::Anonymous
        };
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let transport = Transport {
            ca_pem: self.ca_file.as_ref().map(read).transpose()?,
            client_identity_pem: match (&self.cert_file, &self.key_file) {
                (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
                _ => None,
            },
            insecure: self.insecure,
            proxy: None,
        };
        Ok((credentials, transport))
    }
}

/// Arguments of `tagpilot scan`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    tagpilot scan ghcr.io/stefanprodan/podinfo\n  \
    tagpilot scan registry.example.com/team/app --docker-config ~/.docker/config.json --json\n  \
    echo \"$TOKEN\" | tagpilot scan 127.0.0.1:5000/app --username ci --password-stdin --insecure --digest 1.2.3")]
pub struct ScanArgs {
    /// The image repository, without tag: `alpine`, `ghcr.io/org/app`, `host:port/path`.
    image: String,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Exclude tags matching this regular expression; repeatable. Default: '^.*\.sig$'.
    #[arg(long = "exclude", value_name = "RE")]
    exclude: Vec<String>,
    /// Tags per page (n).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    page_size: u32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    timeout: u64,
    /// Print the digest TAG is pulled by (the index digest for a multi-arch image) instead of the tags.
    #[arg(long, value_name = "TAG")]
    digest: Option<String>,
    /// Print JSON: canonical name, count, tags (or the digest).
    #[arg(long)]
    json: bool,
}

impl ScanArgs {
    /// Runs the command: 0 on success, 1 when the registry refused or failed, 2 on bad arguments.
    pub fn run(self) -> ExitCode {
        let setup = match self.setup() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        match runtime.block_on(self.scan(setup)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }

    fn setup(&self) -> anyhow::Result<(ImageName, Credentials, Transport, Exclusions)> {
        let image = ImageName::parse(&self.image)?;
        let (credentials, transport) = self.registry.access(&image)?;
        let exclusions = if self.exclude.is_empty() {
            Exclusions::new(DEFAULT_EXCLUSIONS)?
        } else {
            Exclusions::new(&self.exclude)?
        };
        Ok((image, credentials, transport, exclusions))
    }

    async fn scan(
        &self,
        (image, credentials, transport, exclusions): (
            ImageName,
            Credentials,
            Transport,
            Exclusions,
        ),
    ) -> anyhow::Result<()> {
        let client = RegistryClient::default();
        if let Some(tag) = &self.digest {
            let digest = client.digest(&image, tag, &credentials, &transport).await?;
            if self.json {
                let out = serde_json::json!({"canonicalName": image.canonical(), "tag": tag, "digest": digest});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{digest}");
            }
            return Ok(());
        }
        let result = client
            .list_tags(&ScanRequest {
                image: &image,
                credentials: &credentials,
                transport: &transport,
                exclusions: &exclusions,
                page_size: self.page_size,
                timeout: Duration::from_secs(self.timeout),
                max_tags: tagpilot_core::registry::DEFAULT_MAX_TAGS,
            })
            .await?;
        if self.json {
            let out = serde_json::json!({
                "canonicalName": image.canonical(),
                "count": result.tags.len(),
                "excluded": result.excluded,
                "pages": result.pages,
                "requests": result.requests,
                "tags": result.tags,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            let mut out = String::with_capacity(result.tags.iter().map(|t| t.len() + 1).sum());
            for t in &result.tags {
                out.push_str(t);
                out.push('\n');
            }
            print!("{out}");
        }
        Ok(())
    }
}
