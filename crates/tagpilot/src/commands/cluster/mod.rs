//! Flux-style commands on a cluster (`create`, `get`, `suspend`, `resume`, `reconcile`, `delete` of the image
//! kinds), with Flux's flags and kubectl-like errors.

pub mod create;
pub mod get;
pub mod manage;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use tagpilot_core::api::GROUP;

/// The flags every cluster command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace scope of the operation.
    #[arg(short = 'n', long, global = true, default_value = "flux-system")]
    pub namespace: String,
    /// Every namespace (for `get`).
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// How long to wait for an object to become Ready.
    #[arg(long, global = true, default_value = "5m")]
    pub timeout: String,
}

impl ClusterArgs {
    /// An API client from the kubeconfig (or in-cluster).
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &options).await?
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options).await?,
            None => {
                if let Some(why) = no_cluster_configured() {
                    anyhow::bail!(
                        "no cluster found: {why}. Point at one with --kubeconfig FILE or KUBECONFIG=FILE \
                         (or run inside a cluster)"
                    );
                }
                kube::Config::infer().await?
            }
        };
        Ok(kube::Client::try_from(config)?)
    }

    /// `--timeout` as a duration.
    pub fn timeout(&self) -> anyhow::Result<Duration> {
        tagpilot_core::api::duration::parse(&self.timeout)
            .map_err(|e| anyhow!("--timeout {:?}: {e}", self.timeout))
    }
}

/// Why no cluster configuration can be found, when none can: not in a cluster (no `KUBERNETES_SERVICE_HOST`),
/// and neither `$KUBECONFIG` nor `~/.kube/config` names an existing file.
fn no_cluster_configured() -> Option<String> {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return None;
    }
    let kubeconfig = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(v) => {
            let paths: Vec<_> = std::env::split_paths(&v).collect();
            if paths.iter().any(|p| p.is_file()) {
                return None;
            }
            format!(
                "$KUBECONFIG ({}) names no existing file",
                v.to_string_lossy()
            )
        }
        None => {
            let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
            let default = home.map(|h| h.join(".kube").join("config"));
            if default.as_ref().is_some_and(|p| p.is_file()) {
                return None;
            }
            format!(
                "$KUBECONFIG is not set and {} does not exist",
                default.map_or("~/.kube/config".into(), |p| p.display().to_string())
            )
        }
    };
    Some(format!(
        "not running in a cluster (KUBERNETES_SERVICE_HOST is not set), {kubeconfig}"
    ))
}

/// An image kind as the commands name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ImageRepository.
    Repository,
    /// ImagePolicy.
    Policy,
    /// ImageUpdateAutomation.
    Update,
    /// Receiver (notification.toolkit.fluxcd.io).
    Receiver,
}

impl Kind {
    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Repository => "ImageRepository",
            Kind::Policy => "ImagePolicy",
            Kind::Update => "ImageUpdateAutomation",
            Kind::Receiver => "Receiver",
        }
    }

    /// The API group.
    pub fn group(self) -> &'static str {
        match self {
            Kind::Receiver => tagpilot_core::api::NOTIFICATION_GROUP,
            _ => GROUP,
        }
    }

    /// The resource's plural.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Repository => "imagerepositories",
            Kind::Policy => "imagepolicies",
            Kind::Update => "imageupdateautomations",
            Kind::Receiver => "receivers",
        }
    }

    /// What Flux's messages call it (`image repository`).
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Repository => "image repository",
            Kind::Policy => "image policy",
            Kind::Update => "image update automation",
            Kind::Receiver => "receiver",
        }
    }

    /// The API of this kind (v1) in `namespace`, or in every namespace.
    pub fn api(self, client: &kube::Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group(), "v1", self.kind()),
            self.plural(),
        );
        match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        }
    }
}

/// Turns an API error into kubectl-like wording: a missing object, a missing API (the CRDs are not installed),
/// a forbidden request.
pub async fn explain(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    name: Option<&str>,
    e: kube::Error,
) -> anyhow::Error {
    let kube::Error::Api(status) = &e else {
        return anyhow!("{e}");
    };
    match status.code {
        404 => {
            let installed = client
                .request_text(
                    http::Request::get(format!("/apis/{}/v1", kind.group()))
                        .body(Vec::new())
                        .expect("a request"),
                )
                .await
                .is_ok();
            match (installed, name) {
                (false, _) => anyhow!(
                    "the {} API ({}/v1) is not installed on this cluster: install the CRDs with \
                     'kubectl apply -k config/crd' (or 'tagpilot install')",
                    kind.kind(),
                    kind.group()
                ),
                (true, Some(n)) => anyhow!("{} '{namespace}/{n}' not found", kind.kind()),
                (true, None) => anyhow!("{}", status.message),
            }
        }
        403 => anyhow!("forbidden: {}", status.message),
        _ => anyhow!("{} ({}): {}", status.reason, status.code, status.message),
    }
}

/// The `Ready` condition: (status, message).
pub fn ready(obj: &DynamicObject) -> Option<(String, String)> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// A progress line on stderr that redraws in place with a spinner on a terminal, and prints nothing else.
pub struct Spinner {
    on: bool,
    frame: usize,
    what: String,
}

impl Spinner {
    /// A spinner for `what` (`waiting for ImageRepository reconciliation`).
    pub fn new(what: &str) -> Spinner {
        Spinner {
            on: std::io::stderr().is_terminal(),
            frame: 0,
            what: what.to_string(),
        }
    }

    /// Draws the next frame.
    pub fn tick(&mut self, elapsed: Duration) {
        if !self.on {
            return;
        }
        const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
        self.frame = (self.frame + 1) % FRAMES.len();
        eprint!(
            "\r{} {} ({}s)",
            FRAMES[self.frame],
            self.what,
            elapsed.as_secs()
        );
    }

    /// Clears the line.
    pub fn done(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Polls `name` until `done` says so (or the timeout passes), with a spinner; returns the object.
pub async fn wait_until(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&DynamicObject) -> Option<Result<(), String>>,
) -> anyhow::Result<DynamicObject> {
    let t0 = Instant::now();
    let mut spinner = Spinner::new(what);
    loop {
        let obj = api.get(name).await?;
        if let Some(result) = done(&obj) {
            spinner.done();
            return result.map(|()| obj).map_err(|m| anyhow!(m));
        }
        if t0.elapsed() > timeout {
            spinner.done();
            let message = ready(&obj).map(|r| r.1).unwrap_or_default();
            return Err(anyhow!(
                "timed out after {}s {what}{}",
                timeout.as_secs(),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            ));
        }
        spinner.tick(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the object's Ready condition is about its current generation; fails on Ready=False when the
/// object says it is stalled.
pub async fn wait_ready(
    api: &Api<DynamicObject>,
    kind: Kind,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<DynamicObject> {
    wait_until(
        api,
        name,
        &format!("waiting for {} reconciliation", kind.kind()),
        timeout,
        |o| {
            let generation = o.metadata.generation;
            let conds = o.data["status"]["conditions"].as_array()?;
            let ready = conds.iter().find(|c| c["type"] == "Ready")?;
            if ready["observedGeneration"].as_i64() != generation
                && o.data["status"]["observedGeneration"].as_i64() != generation
            {
                return None;
            }
            match ready["status"].as_str() {
                Some("True") => Some(Ok(())),
                _ if conds
                    .iter()
                    .any(|c| c["type"] == "Stalled" && c["status"] == "True") =>
                {
                    Some(Err(ready["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()))
                }
                _ => None,
            }
        },
    )
    .await
}

/// Prints Flux-style progress lines on stderr.
pub fn say(symbol: &str, message: &str) {
    eprintln!("{symbol} {message}");
}
