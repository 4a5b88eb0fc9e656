//! `tagpilot create image repository|policy|update`: Flux's flags; `--export` prints the object as Flux does
//! (keys sorted, durations in Go form), else it is applied (server-side) and the command waits for Ready.

use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tagpilot_core::api::{self, GROUP};

use super::{ClusterArgs, Kind, explain, ready, say, wait_ready};

/// `create image ...`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    what: CreateWhat,
}

#[derive(Debug, clap::Subcommand)]
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
enum CreateWhat {
    /// Create or update image objects.
    #[command(subcommand)]
    Image(CreateImage),
    /// Create or update a webhook Receiver (notification.toolkit.fluxcd.io).
    Receiver(ReceiverArgs),
}

#[derive(Debug, clap::Args)]
struct ReceiverArgs {
    #[command(flatten)]
    common: Common,
    /// The sender: generic, generic-hmac, github, dockerhub, harbor, quay, nexus, gcr, acr.
    #[arg(long = "type")]
    type_: String,
    /// The Secret whose `token` key is the shared secret.
    #[arg(long)]
    secret_ref: String,
    /// Objects to scan on a call: `ImageRepository/NAME` (repeatable).
    #[arg(long = "resource", required = true)]
    resources: Vec<String>,
    /// Events to act on (github), repeatable.
    #[arg(long = "event")]
    events: Vec<String>,
}

impl ReceiverArgs {
    fn build(&self, namespace: &str) -> anyhow::Result<Value> {
        if !tagpilot_core::receiver::TYPES.contains(&self.type_.as_str()) {
            bail!(
                "--type {:?}: expected one of {}",
                self.type_,
                tagpilot_core::receiver::TYPES.join(", ")
            );
        }
        let mut resources = Vec::new();
        for r in &self.resources {
            let (kind, name) = r
                .split_once('/')
                .ok_or_else(|| anyhow!("--resource {r:?}: expected Kind/name"))?;
            if kind != "ImageRepository" {
                bail!("--resource {r:?}: only ImageRepository resources are served");
            }
            resources.push(json!({"kind": kind, "name": name}));
        }
        let mut spec = json!({
            "type": self.type_,
            "secretRef": {"name": self.secret_ref},
            "resources": resources,
        });
        if !self.events.is_empty() {
            spec["events"] = json!(self.events);
        }
        let mut obj = object(Kind::Receiver, &self.common, namespace, spec)?;
        obj["apiVersion"] = json!(format!("{}/v1", tagpilot_core::api::NOTIFICATION_GROUP));
        Ok(obj)
    }
}

#[derive(Debug, clap::Subcommand)]
enum CreateImage {
    /// Create or update an ImageRepository.
    Repository(RepositoryArgs),
    /// Create or update an ImagePolicy.
    Policy(PolicyArgs),
    /// Create or update an ImageUpdateAutomation.
    Update(UpdateArgs),
}

/// What every `create` takes.
#[derive(Debug, clap::Args)]
struct Common {
    /// The object's name.
    name: String,
    /// Print the object as YAML instead of applying it.
    #[arg(long)]
    export: bool,
    /// Labels (`key=value`, repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    label: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct RepositoryArgs {
    #[command(flatten)]
    common: Common,
    /// The image repository to scan (`ghcr.io/stefanprodan/podinfo`).
    #[arg(long)]
    image: String,
    /// How often to scan.
    #[arg(long, default_value = "1m")]
    interval: String,
    /// A Secret of type kubernetes.io/dockerconfigjson with the registry credentials.
    #[arg(long)]
    secret_ref: Option<String>,
    /// A Secret with `ca.crt` (and `tls.crt`/`tls.key`) for the registry's TLS.
    #[arg(long)]
    cert_ref: Option<String>,
    /// The cloud provider for authentication (generic, aws, azure, gcp).
    #[arg(long)]
    provider: Option<String>,
    /// Regular expressions of tags to exclude (comma-separated).
    #[arg(long, value_delimiter = ',')]
    exclusion_list: Vec<String>,
    /// How long a scan may take.
    #[arg(long)]
    scan_timeout: Option<String>,
}

#[derive(Debug, clap::Args)]
struct PolicyArgs {
    #[command(flatten)]
    common: Common,
    /// The ImageRepository (`name`, or `namespace/name`).
    #[arg(long)]
    image_ref: String,
    /// A semver range (`5.0.x`, `>=1.0.0 <2.0.0`).
    #[arg(long, group = "select")]
    select_semver: Option<String>,
    /// Numerical order: `asc` picks the highest, `desc` the lowest.
    #[arg(long, group = "select")]
    select_numeric: Option<String>,
    /// Alphabetical order: `asc` picks the last, `desc` the first.
    #[arg(long, group = "select")]
    select_alpha: Option<String>,
    /// Only tags matching this regular expression.
    #[arg(long)]
    filter_regex: Option<String>,
    /// The part of the matched tag to order by (`$ts`).
    #[arg(long)]
    filter_extract: Option<String>,
    /// tagpilot: pick the tag whose image was built last.
    #[arg(long, group = "select")]
    select_newest_build: bool,
    /// tagpilot: only tags at least this old (`72h`).
    #[arg(long)]
    minimum_age: Option<String>,
    /// tagpilot: what --minimum-age counts from: `Created` (the image's creation time) or `FirstSeen`.
    #[arg(long, requires = "minimum_age")]
    age_source: Option<String>,
    /// tagpilot: platforms every candidate must provide (`linux/amd64,linux/arm64`).
    #[arg(long = "platform", value_delimiter = ',')]
    platforms: Vec<String>,
    /// tagpilot: verify signatures with this provider (`cosign`).
    #[arg(long)]
    verify_provider: Option<String>,
    /// tagpilot: the Secret with the cosign public keys (`*.pub`).
    #[arg(long, requires = "verify_provider")]
    verify_secret_ref: Option<String>,
    /// tagpilot, keyless: the OIDC issuer (regular expression).
    #[arg(long, requires = "verify_provider")]
    verify_oidc_issuer: Option<String>,
    /// tagpilot, keyless: the certificate subject (regular expression).
    #[arg(long, requires = "verify_provider")]
    verify_subject: Option<String>,
    /// tagpilot, keyless: the Secret with `trusted_root.json`.
    #[arg(long, requires = "verify_provider")]
    verify_trusted_root_secret_ref: Option<String>,
}

#[derive(Debug, clap::Args)]
struct UpdateArgs {
    #[command(flatten)]
    common: Common,
    /// The GitRepository (`name`, or `namespace/name`).
    #[arg(long)]
    git_repo_ref: String,
    /// The path in the repository whose files are updated.
    #[arg(long, default_value = "./")]
    git_repo_path: String,
    /// The branch to check out (default: the GitRepository's).
    #[arg(long)]
    checkout_branch: Option<String>,
    /// The branch to push to (default: the checkout branch).
    #[arg(long)]
    push_branch: Option<String>,
    /// The commit author's name.
    #[arg(long, default_value = "Flux")]
    author_name: String,
    /// The commit author's e-mail.
    #[arg(long)]
    author_email: String,
    /// The commit message template (Go text/template).
    #[arg(long)]
    commit_template: Option<String>,
    /// How often to run.
    #[arg(long, default_value = "1m")]
    interval: String,
    /// tagpilot: wait until the policies have been still this long before committing (`2m`).
    #[arg(long)]
    quiet_period: Option<String>,
}

fn go_duration(flag: &str, value: &str) -> anyhow::Result<String> {
    let d = api::duration::parse(value).map_err(|e| anyhow!("--{flag} {value:?}: {e}"))?;
    Ok(api::duration::format(d))
}

/// `name` or `namespace/name` as a reference.
fn reference(value: &str) -> Value {
    match value.split_once('/') {
        Some((ns, name)) => json!({"name": name, "namespace": ns}),
        None => json!({"name": value}),
    }
}

fn order(flag: &str, value: &str) -> anyhow::Result<String> {
    match value {
        "asc" | "desc" => Ok(value.to_string()),
        other => bail!("--{flag} {other:?}: expected asc or desc"),
    }
}

fn object(kind: Kind, common: &Common, namespace: &str, spec: Value) -> anyhow::Result<Value> {
    let mut metadata = json!({"name": common.name, "namespace": namespace});
    if !common.label.is_empty() {
        let mut labels = serde_json::Map::new();
        for l in &common.label {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| anyhow!("--label {l:?}: expected key=value"))?;
            labels.insert(k.to_string(), Value::String(v.to_string()));
        }
        metadata["labels"] = Value::Object(labels);
    }
    Ok(json!({
        "apiVersion": format!("{GROUP}/v1"),
        "kind": kind.kind(),
        "metadata": metadata,
        "spec": spec,
    }))
}

impl RepositoryArgs {
    fn build(&self, namespace: &str) -> anyhow::Result<Value> {
        let mut spec = json!({
            "image": self.image,
            "interval": go_duration("interval", &self.interval)?,
        });
        if let Some(s) = &self.secret_ref {
            spec["secretRef"] = json!({"name": s});
        }
        if let Some(s) = &self.cert_ref {
            spec["certSecretRef"] = json!({"name": s});
        }
        if let Some(p) = &self.provider {
            spec["provider"] = json!(p);
        }
        if !self.exclusion_list.is_empty() {
            spec["exclusionList"] = json!(self.exclusion_list);
        }
        if let Some(t) = &self.scan_timeout {
            spec["timeout"] = json!(go_duration("scan-timeout", t)?);
        }
        // The spec must be one the controller accepts.
        let typed: api::ImageRepositorySpec = serde_json::from_value(spec.clone())?;
        typed.check().map_err(|e| anyhow!("{}", e.message))?;
        object(Kind::Repository, &self.common, namespace, spec)
    }
}

impl PolicyArgs {
    fn build(&self, namespace: &str) -> anyhow::Result<Value> {
        let policy = match (
            &self.select_semver,
            &self.select_numeric,
            &self.select_alpha,
            self.select_newest_build,
        ) {
            (Some(r), None, None, false) => json!({"semver": {"range": r}}),
            (None, Some(o), None, false) => {
                json!({"numerical": {"order": order("select-numeric", o)?}})
            }
            (None, None, Some(o), false) => {
                json!({"alphabetical": {"order": order("select-alpha", o)?}})
            }
            (None, None, None, true) => json!({"newestBuild": {}}),
            _ => bail!(
                "one of --select-semver, --select-numeric, --select-alpha, --select-newest-build is required"
            ),
        };
        let mut spec = json!({
            "imageRepositoryRef": reference(&self.image_ref),
            "policy": policy,
        });
        if self.filter_regex.is_some() || self.filter_extract.is_some() {
            let Some(pattern) = &self.filter_regex else {
                bail!("--filter-extract needs --filter-regex");
            };
            let mut f = json!({"pattern": pattern});
            if let Some(e) = &self.filter_extract {
                f["extract"] = json!(e);
            }
            spec["filterTags"] = f;
        }
        if let Some(a) = &self.minimum_age {
            spec["minimumAge"] = json!(a);
        }
        if let Some(s) = &self.age_source {
            spec["ageSource"] = json!(s);
        }
        if !self.platforms.is_empty() {
            spec["platforms"] = json!(self.platforms);
        }
        if let Some(provider) = &self.verify_provider {
            let mut v = json!({"provider": provider});
            if let Some(s) = &self.verify_secret_ref {
                v["secretRef"] = json!({"name": s});
            }
            if self.verify_oidc_issuer.is_some() || self.verify_subject.is_some() {
                v["matchOIDCIdentity"] = json!([{
                    "issuer": self.verify_oidc_issuer.as_deref().unwrap_or(".*"),
                    "subject": self.verify_subject.as_deref().unwrap_or(".*"),
                }]);
            }
            if let Some(s) = &self.verify_trusted_root_secret_ref {
                v["trustedRootSecretRef"] = json!({"name": s});
            }
            spec["verify"] = v;
        }
        let typed: api::ImagePolicySpec = serde_json::from_value(spec.clone())
            .map_err(|e| anyhow::anyhow!("ImagePolicy spec: {e}"))?;
        typed.to_policy()?;
        object(Kind::Policy, &self.common, namespace, spec)
    }
}

impl UpdateArgs {
    fn build(&self, namespace: &str) -> anyhow::Result<Value> {
        let mut source = reference(&self.git_repo_ref);
        source["kind"] = json!("GitRepository");
        let mut git = json!({
            "commit": {"author": {"name": self.author_name, "email": self.author_email}},
        });
        if let Some(b) = &self.checkout_branch {
            git["checkout"] = json!({"ref": {"branch": b}});
        }
        if let Some(t) = &self.commit_template {
            git["commit"]["messageTemplate"] = json!(t);
        }
        if let Some(b) = &self.push_branch {
            git["push"] = json!({"branch": b});
        }
        let mut spec = json!({
            "sourceRef": source,
            "git": git,
            "interval": go_duration("interval", &self.interval)?,
            "update": {"path": self.git_repo_path, "strategy": "Setters"},
        });
        if let Some(q) = &self.quiet_period {
            spec["quietPeriod"] = json!(go_duration("quiet-period", q)?);
        }
        let typed: api::ImageUpdateAutomationSpec = serde_json::from_value(spec.clone())?;
        typed.check().map_err(|e| anyhow!("{}", e.message))?;
        tagpilot_core::automation::check_template(self.commit_template.as_deref())
            .map_err(|e| anyhow!("--commit-template: {e}"))?;
        object(Kind::Update, &self.common, namespace, spec)
    }
}

/// The YAML Flux's `--export` prints: a document marker, then the object with sorted keys.
pub fn export_yaml(obj: &Value) -> String {
    format!(
        "---\n{}",
        yaml_serde::to_string(obj).expect("an object serialises")
    )
}

impl CreateArgs {
    /// Runs the command: 0 on success, 1 on failure.
    pub fn run(self) -> ExitCode {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        match runtime.block_on(self.create()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("✗ {e:#}");
                ExitCode::from(1)
            }
        }
    }

    async fn create(&self) -> anyhow::Result<()> {
        let ns = &self.cluster.namespace;
        let (kind, common, obj) = match &self.what {
            CreateWhat::Image(CreateImage::Repository(a)) => {
                (Kind::Repository, &a.common, a.build(ns)?)
            }
            CreateWhat::Image(CreateImage::Policy(a)) => (Kind::Policy, &a.common, a.build(ns)?),
            CreateWhat::Image(CreateImage::Update(a)) => (Kind::Update, &a.common, a.build(ns)?),
            CreateWhat::Receiver(a) => (Kind::Receiver, &a.common, a.build(ns)?),
        };
        if common.export {
            print!("{}", export_yaml(&obj));
            return Ok(());
        }
        let timeout = self.cluster.timeout()?;
        let client = self.cluster.client().await?;
        let api = kind.api(&client, Some(ns));
        say("✚", &format!("generating {}", kind.kind()));
        say("►", &format!("applying {}", kind.kind()));
        let typed: DynamicObject = serde_json::from_value(obj).context("the object")?;
        if let Err(e) = api
            .patch(
                &common.name,
                &PatchParams::apply("tagpilot").force(),
                &Patch::Apply(&typed),
            )
            .await
        {
            return Err(explain(&client, kind, ns, Some(&common.name), e).await);
        }
        say("✔", &format!("{} created", kind.kind()));
        say("◎", &format!("waiting for {} reconciliation", kind.kind()));
        let done = wait_ready(&api, kind, &common.name, timeout).await?;
        say("✔", &format!("{} reconciliation completed", kind.kind()));
        match kind {
            Kind::Repository => {
                let n = done.data["status"]["lastScanResult"]["tagCount"]
                    .as_i64()
                    .unwrap_or(0);
                say("✔", &format!("fetched {n} tags"));
            }
            Kind::Policy => {
                let r = &done.data["status"]["latestRef"];
                say(
                    "✔",
                    &format!(
                        "selected: {}:{}",
                        r["name"].as_str().unwrap_or_default(),
                        r["tag"].as_str().unwrap_or_default()
                    ),
                );
            }
            Kind::Update => {
                if let Some((_, m)) = ready(&done) {
                    say("✔", &m);
                }
            }
            Kind::Receiver => {
                let path = done.data["status"]["webhookPath"]
                    .as_str()
                    .unwrap_or_default();
                say("✔", &format!("generated webhook URL {path}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        create: CreateArgs,
    }

    fn export(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("create").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{e}"));
        let obj = match &cli.create.what {
            CreateWhat::Image(CreateImage::Repository(a)) => a.build("flux-system"),
            CreateWhat::Image(CreateImage::Policy(a)) => a.build("flux-system"),
            CreateWhat::Image(CreateImage::Update(a)) => a.build("flux-system"),
            CreateWhat::Receiver(a) => a.build("flux-system"),
        }
        .unwrap();
        export_yaml(&obj)
    }

    #[test]
    fn exports_as_the_guide_shows() {
        assert_eq!(
            export(&[
                "image",
                "repository",
                "podinfo",
                "--image=ghcr.io/stefanprodan/podinfo",
                "--interval=5m",
                "--export"
            ]),
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: podinfo\n  \
             namespace: flux-system\nspec:\n  image: ghcr.io/stefanprodan/podinfo\n  interval: 5m0s\n"
        );
        assert_eq!(
            export(&[
                "image",
                "policy",
                "podinfo",
                "--image-ref=podinfo",
                "--select-semver=5.0.x",
                "--export"
            ]),
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo\n  \
             namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: podinfo\n  policy:\n    semver:\n      \
             range: 5.0.x\n"
        );
    }

    #[test]
    fn exports_the_guides_update_automation() {
        assert_eq!(
            export(&[
                "image",
                "update",
                "flux-system",
                "--interval=30m",
                "--git-repo-ref=flux-system",
                "--git-repo-path=./clusters/my-cluster",
                "--checkout-branch=main",
                "--push-branch=main",
                "--author-name=fluxcdbot",
                "--author-email=fluxcdbot@users.noreply.github.com",
                "--commit-template={{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}",
                "--export",
            ]),
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: flux-system\n  \
             namespace: flux-system\nspec:\n  git:\n    checkout:\n      ref:\n        branch: main\n    commit:\n      \
             author:\n        email: fluxcdbot@users.noreply.github.com\n        name: fluxcdbot\n      \
             messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}'\n    \
             push:\n      branch: main\n  interval: 30m0s\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  \
             update:\n    path: ./clusters/my-cluster\n    strategy: Setters\n"
        );
    }

    #[test]
    fn exports_a_receiver() {
        assert_eq!(
            export(&[
                "receiver",
                "podinfo",
                "--type=dockerhub",
                "--secret-ref=webhook-token",
                "--resource=ImageRepository/podinfo",
                "--export",
            ]),
            "---\napiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata:\n  name: podinfo\n  \
             namespace: flux-system\nspec:\n  resources:\n  - kind: ImageRepository\n    name: podinfo\n  secretRef:\n    \
             name: webhook-token\n  type: dockerhub\n"
        );
    }

    #[test]
    fn every_gate_exports_as_the_extension_fields() {
        let y = export(&[
            "image",
            "policy",
            "app",
            "--image-ref=app",
            "--select-newest-build",
            "--minimum-age=72h",
            "--age-source=FirstSeen",
            "--platform=linux/amd64,linux/arm64",
            "--verify-provider=cosign",
            "--verify-oidc-issuer=https://token\\.actions\\.githubusercontent\\.com",
            "--verify-subject=https://github\\.com/org/.*",
            "--verify-trusted-root-secret-ref=sigstore-root",
        ]);
        let doc: serde_json::Value = yaml_serde::from_str(&y).unwrap();
        let spec = &doc["spec"];
        assert_eq!(spec["policy"], json!({"newestBuild": {}}));
        assert_eq!(spec["minimumAge"], "72h");
        assert_eq!(spec["ageSource"], "FirstSeen");
        assert_eq!(spec["platforms"], json!(["linux/amd64", "linux/arm64"]));
        assert_eq!(
            spec["verify"]["trustedRootSecretRef"]["name"],
            "sigstore-root"
        );
        assert_eq!(
            spec["verify"]["matchOIDCIdentity"][0]["subject"],
            "https://github\\.com/org/.*"
        );
        let typed: api::ImagePolicySpec = serde_json::from_value(spec.clone()).unwrap();
        assert!(typed.gates().unwrap().any());
        let y = export(&[
            "image",
            "update",
            "app",
            "--git-repo-ref=source",
            "--author-email=bot@example.com",
            "--quiet-period=2m",
        ]);
        assert!(y.contains("quietPeriod: 2m0s"), "{y}");
    }

    #[test]
    fn bad_flags_are_refused_before_any_request() {
        let cli = Cli::try_parse_from([
            "create",
            "image",
            "policy",
            "p",
            "--image-ref=podinfo",
            "--select-semver=1.x.x.x!",
        ])
        .unwrap();
        let CreateWhat::Image(CreateImage::Policy(a)) = &cli.create.what else {
            panic!()
        };
        let e = a.build("flux-system").unwrap_err().to_string();
        assert!(e.contains("spec.policy.semver.range \"1.x.x.x!\""), "{e}");
        assert!(
            Cli::try_parse_from([
                "create",
                "image",
                "policy",
                "p",
                "--image-ref=podinfo",
                "--select-semver=1.x",
                "--select-alpha=asc"
            ])
            .is_err(),
            "one selection only"
        );
    }
}
