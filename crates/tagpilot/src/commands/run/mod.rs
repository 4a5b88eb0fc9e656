//! `tagpilot run`: the whole image automation without a cluster. Reads ImageRepository, ImagePolicy,
//! ImageUpdateAutomation, GitRepository and Secret objects from YAML, then scans, selects, updates, commits and
//! pushes with the engines the controllers use, keeping tags and observed state in a state directory so that a
//! second run repeats nothing (no duplicate commit, no clone when nothing moved).

mod manifests;
mod state;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::ResourceExt;
use serde::Serialize;
use tagpilot_core::api::{
    self, CheckedRepository, DigestReflectionPolicy, ImagePolicy, ImageRef, ImageRepository,
    ImageUpdateAutomation, conditions,
};
use tagpilot_core::automation::{self, Run, Source};
use tagpilot_core::git::{GitAuth, Signer};
use tagpilot_core::registry::secrets::{self, SecretSource};
use tagpilot_core::registry::{Credentials, RegistryClient, ScanRequest, Transport};
use tagpilot_core::tagstore::TagStore;

use manifests::{Manifests, key_of, secret_env_var};
use state::{RepositoryState, State};

/// Runs the image automation of some manifests without a cluster.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// YAML files or directories holding ImageRepository, ImagePolicy, ImageUpdateAutomation, GitRepository
    /// and Secret objects (any served version; other kinds are skipped).
    #[arg(long = "manifests", required = true, num_args = 1..)]
    manifests: Vec<PathBuf>,
    /// Run once and exit (the default).
    #[arg(long, conflicts_with = "interval")]
    once: bool,
    /// Run again every interval (Go duration: `5m`, `1h`) until interrupted.
    #[arg(long)]
    interval: Option<String>,
    /// Where the tags and the observed state are kept between runs.
    #[arg(long, default_value = ".tagpilot")]
    state_dir: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// One object's result.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    kind: &'static str,
    namespace: String,
    name: String,
    ready: bool,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pushed_commit: Option<String>,
}

impl Outcome {
    fn of<K: kube::Resource<DynamicType = ()>>(obj: &K, result: Result<String, String>) -> Outcome {
        let (ready, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        Outcome {
            kind: match K::kind(&()).as_ref() {
                "ImageRepository" => "ImageRepository",
                "ImagePolicy" => "ImagePolicy",
                _ => "ImageUpdateAutomation",
            },
            namespace: obj.namespace().unwrap_or_else(|| "default".into()),
            name: obj.name_any(),
            ready,
            message,
            pushed_commit: None,
        }
    }
}

impl RunArgs {
    /// Runs: 0 when every object succeeded, 1 when any failed, 2 on unusable arguments or manifests.
    pub fn run(self) -> ExitCode {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        match runtime.block_on(self.run_async()) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }
    }

    async fn run_async(&self) -> anyhow::Result<bool> {
        let interval = self
            .interval
            .as_deref()
            .map(|i| api::duration::parse(i).with_context(|| format!("--interval {i:?}")))
            .transpose()?;
        let m = manifests::load(&self.manifests)?;
        let store = TagStore::open(self.state_dir.join("tags"))
            .with_context(|| format!("--state-dir {}", self.state_dir.display()))?;
        let work = self.state_dir.join("work");
        std::fs::create_dir_all(&work).with_context(|| format!("create {}", work.display()))?;
        let registry = RegistryClient::default();
        let logins = tagpilot_core::cloud::Logins::default();
        let progress = std::io::stderr().is_terminal() && !self.json;
        loop {
            let mut state = State::load(&self.state_dir)?;
            let outcomes = pass(&m, &mut state, &store, &registry, &logins, &work, progress).await;
            state.save(&self.state_dir)?;
            let ok = outcomes.iter().all(|o| o.ready);
            if self.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcomes).expect("outcomes serialise")
                );
            } else {
                print_summary(&outcomes);
            }
            match interval {
                Some(i) => tokio::time::sleep(i).await,
                None => return Ok(ok),
            }
        }
    }
}

fn print_summary(outcomes: &[Outcome]) {
    let width = |f: &dyn Fn(&Outcome) -> usize, title: &str| {
        outcomes.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let kw = width(&|o| o.kind.len(), "KIND");
    let nsw = width(&|o| o.namespace.len(), "NAMESPACE");
    let nw = width(&|o| o.name.len(), "NAME");
    println!(
        "{:kw$}  {:nsw$}  {:nw$}  READY  MESSAGE",
        "KIND", "NAMESPACE", "NAME"
    );
    for o in outcomes {
        let first_line = o.message.lines().next().unwrap_or_default();
        println!(
            "{:kw$}  {:nsw$}  {:nw$}  {:5}  {first_line}",
            o.kind,
            o.namespace,
            o.name,
            if o.ready { "True" } else { "False" }
        );
    }
    let failed = outcomes.iter().filter(|o| !o.ready).count();
    println!("{} objects, {failed} failed", outcomes.len());
}

/// The data of a Secret an object names, with an error naming the object's field and where it was looked for.
fn secret(
    m: &Manifests,
    namespace: &str,
    name: &str,
    field: &str,
) -> Result<secrets::SecretData, String> {
    m.secret(namespace, name).ok_or_else(|| {
        format!(
            "secret '{namespace}/{name}' ({field}) is neither in the manifests nor in the environment \
             (e.g. {})",
            secret_env_var(namespace, name, "password")
        )
    })
}

/// How to reach an ImageRepository's registry, from its spec and Secrets.
struct Access {
    checked: CheckedRepository,
    credentials: Credentials,
    transport: Transport,
}

fn access(m: &Manifests, repo: &ImageRepository) -> Result<Access, String> {
    let spec = &repo.spec;
    let ns = repo.namespace().unwrap_or_else(|| "default".into());
    let checked = spec.check().map_err(|e| e.message)?;
    if spec
        .service_account_name
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(
            "spec.serviceAccountName: ServiceAccounts exist only in a cluster; give a spec.secretRef instead"
                .into(),
        );
    }
    let pull = match &spec.secret_ref {
        Some(r) => Some((
            format!("{ns}/{}", r.name),
            secret(m, &ns, &r.name, "spec.secretRef")?,
        )),
        None => None,
    };
    let sources: Vec<SecretSource<'_>> = pull
        .iter()
        .map(|(secret, data)| SecretSource {
            secret,
            field: "spec.secretRef",
            data,
        })
        .collect();
    let credentials =
        secrets::credentials(&sources, &checked.image.registry).map_err(|e| e.to_string())?;
    let optional = |r: Option<&api::LocalObjectReference>, field: &str| {
        r.map(|r| secret(m, &ns, &r.name, field).map(|d| (format!("{ns}/{}", r.name), d)))
            .transpose()
    };
    let cert = optional(spec.cert_secret_ref.as_ref(), "spec.certSecretRef")?;
    let proxy = optional(spec.proxy_secret_ref.as_ref(), "spec.proxySecretRef")?;
    let transport = secrets::repository_transport(
        cert.as_ref(),
        proxy.as_ref(),
        spec.insecure.unwrap_or(false),
    )
    .map_err(|e| e.to_string())?;
    Ok(Access {
        checked,
        credentials,
        transport,
    })
}

async fn scan(
    repo: &ImageRepository,
    access: &Access,
    registry: &RegistryClient,
    store: &TagStore,
) -> Result<RepositoryState, String> {
    let ns = repo.namespace().unwrap_or_else(|| "default".into());
    let result = registry
        .list_tags(&ScanRequest {
            image: &access.checked.image,
            credentials: &access.credentials,
            transport: &access.transport,
            exclusions: &access.checked.exclusions,
            page_size: 1000,
            timeout: access.checked.timeout,
            max_tags: tagpilot_core::registry::DEFAULT_MAX_TAGS,
        })
        .await
        .map_err(|e| e.to_string())?;
    let revision = store
        .write(&ns, &repo.name_any(), &result.tags)
        .map_err(|e| e.to_string())?;
    Ok(RepositoryState {
        image: repo.spec.image.clone(),
        revision,
        tag_count: result.tags.len(),
        scan_time: conditions::now_rfc3339(),
    })
}

/// One pass over every object: scans, then policies, then automations.
async fn pass(
    m: &Manifests,
    state: &mut State,
    store: &TagStore,
    registry: &RegistryClient,
    logins: &tagpilot_core::cloud::Logins,
    work: &Path,
    progress: bool,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();

    // Scans, all at once (the registry client limits requests per registry).
    let mut accesses: BTreeMap<String, Result<Access, String>> = m
        .repositories
        .iter()
        .map(|r| (key_of(r), access(m, r)))
        .collect();
    // Cloud logins (spec.provider) with the identity of the environment the run is in.
    let (cloud_http, env) = (reqwest::Client::new(), tagpilot_core::cloud::Env::process());
    for r in &m.repositories {
        let Some(p @ ("aws" | "gcp" | "azure")) = r.spec.provider.as_deref() else {
            continue;
        };
        let key = key_of(r);
        if let Some(Ok(a)) = accesses.get_mut(&key) {
            match logins
                .credentials_for(p, &cloud_http, &env, &a.checked.image.registry)
                .await
            {
                Ok(c) => a.credentials = c,
                Err(e) => {
                    accesses.insert(key, Err(format!("spec.provider {p}: {e}")));
                }
            }
        }
    }
    if progress && !m.repositories.is_empty() {
        eprintln!("scanning {} image repositories ...", m.repositories.len());
    }
    let scans = futures::future::join_all(m.repositories.iter().map(|repo| {
        let access = &accesses[&key_of(repo)];
        async move {
            let t0 = Instant::now();
            if repo.spec.suspend == Some(true) {
                return (repo, None, t0.elapsed());
            }
            let r = match access {
                Ok(a) => scan(repo, a, registry, store).await,
                Err(e) => Err(e.clone()),
            };
            if progress {
                match &r {
                    Ok(s) => eprintln!(
                        "  {}: {} tags in {:.1}s",
                        key_of(repo),
                        s.tag_count,
                        t0.elapsed().as_secs_f64()
                    ),
                    Err(_) => eprintln!("  {}: failed", key_of(repo)),
                }
            }
            (repo, Some(r), t0.elapsed())
        }
    }))
    .await;
    for (repo, result, _) in scans {
        let result = match result {
            None => Ok("suspended: not scanned".to_string()),
            Some(Ok(s)) => {
                let message = format!(
                    "successful scan: found {} tags with checksum {}",
                    s.tag_count, s.revision
                );
                state.repositories.insert(key_of(repo), s);
                Ok(message)
            }
            Some(Err(e)) => Err(e),
        };
        outcomes.push(Outcome::of(repo, result));
    }

    for policy in &m.policies {
        let result = if policy.spec.suspend == Some(true) {
            Ok("suspended".to_string())
        } else {
            select(m, policy, state, store, registry, &accesses).await
        };
        outcomes.push(Outcome::of(policy, result));
    }

    for auto in &m.automations {
        let mut pushed = None;
        let result = if auto.spec.suspend == Some(true) {
            Ok("suspended".to_string())
        } else {
            update(m, auto, state, work, &mut pushed).await
        };
        let mut o = Outcome::of(auto, result);
        o.pushed_commit = pushed;
        outcomes.push(o);
    }
    outcomes
}

/// Evaluates a policy over its repository's stored tags (those of its last successful scan).
async fn select(
    m: &Manifests,
    policy: &ImagePolicy,
    state: &mut State,
    store: &TagStore,
    registry: &RegistryClient,
    accesses: &BTreeMap<String, Result<Access, String>>,
) -> Result<String, String> {
    let engine = policy.spec.to_policy().map_err(|e| e.to_string())?;
    let ns = policy.namespace().unwrap_or_else(|| "default".into());
    let r = &policy.spec.image_repository_ref;
    let repo_ns = r.namespace.clone().filter(|n| !n.is_empty()).unwrap_or(ns);
    let repo_key = format!("{repo_ns}/{}", r.name);
    let repo = m
        .repositories
        .iter()
        .find(|x| key_of(*x) == repo_key)
        .ok_or_else(|| {
            format!(
                "ImageRepository '{repo_key}' (spec.imageRepositoryRef) is not in the manifests"
            )
        })?;
    let scanned = state
        .repositories
        .get(&repo_key)
        .filter(|s| s.image == repo.spec.image)
        .ok_or_else(|| format!("ImageRepository '{repo_key}' has not been scanned successfully"))?;
    let stored = store
        .read(&repo_ns, &r.name)
        .map_err(|e| e.to_string())?
        .filter(|s| s.revision() == scanned.revision)
        .ok_or_else(|| {
            format!("the tags of ImageRepository '{repo_key}' are missing; it will be rescanned")
        })?;
    let tag = engine
        .select(&stored.to_vec())
        .map_err(|e| {
            format!(
                "cannot determine latest tag for policy: {e} (ImageRepository '{repo_key}' has {} tags)",
                stored.len()
            )
        })?
        .to_string();
    drop(stored);
    let key = key_of(policy);
    let previous = state.policies.get(&key).cloned();
    let digest = match policy.spec.digest_policy() {
        DigestReflectionPolicy::Never => None,
        p => match previous.as_ref().filter(|prev| {
            p == DigestReflectionPolicy::IfNotPresent
                && prev.name == repo.spec.image
                && prev.tag == tag
                && prev.digest.is_some()
        }) {
            Some(prev) => prev.digest.clone(),
            None => {
                let a = accesses[&repo_key].as_ref().map_err(Clone::clone)?;
                Some(
                    registry
                        .digest(&a.checked.image, &tag, &a.credentials, &a.transport)
                        .await
                        .map_err(|e| {
                            format!(
                                "cannot resolve the digest of {}:{tag}: {e}",
                                repo.spec.image
                            )
                        })?,
                )
            }
        },
    };
    let latest = ImageRef {
        name: repo.spec.image.clone(),
        tag: tag.clone(),
        digest,
    };
    let mut message = format!("Latest image tag for {} resolved to {tag}", repo.spec.image);
    if let Some(prev) = previous.filter(|p| *p != latest) {
        message.push_str(&format!(" (previously {})", prev.reference()));
    }
    state.policies.insert(key, latest);
    Ok(message)
}

/// Runs an automation: skipped without a clone when the remote head and the policies are what it last saw.
async fn update(
    m: &Manifests,
    auto: &ImageUpdateAutomation,
    state: &mut State,
    work: &Path,
    pushed: &mut Option<String>,
) -> Result<String, String> {
    let checked = auto.spec.check().map_err(|e| e.message)?;
    let ns = auto.namespace().unwrap_or_else(|| "default".into());
    let r = &auto.spec.source_ref;
    let source_ns = auto.spec.source_namespace(&ns);
    let source_key = format!("{source_ns}/{}", r.name);
    let repo = m
        .sources
        .iter()
        .find(|s| key_of(*s) == source_key)
        .ok_or_else(|| {
            format!("GitRepository '{source_key}' (spec.sourceRef) is not in the manifests")
        })?;
    let mut auth = match &repo.spec.secret_ref {
        Some(s) => {
            let data = secret(
                m,
                &source_ns,
                &s.name,
                "spec.secretRef of the GitRepository",
            )?;
            GitAuth::from_secret_data(&data)
                .map_err(|e| format!("secret '{source_ns}/{}': {e}", s.name))?
        }
        None => GitAuth::default(),
    };
    if let Some(p) = &repo.spec.proxy_secret_ref {
        let data = secret(
            m,
            &source_ns,
            &p.name,
            "spec.proxySecretRef of the GitRepository",
        )?;
        auth.set_proxy_from_secret_data(&data)
            .map_err(|e| format!("secret '{source_ns}/{}': {e}", p.name))?;
    }
    let timeout = match repo.spec.timeout.as_deref() {
        Some(t) => api::duration::parse(t)
            .map_err(|e| format!("spec.timeout {t:?} of GitRepository '{source_key}': {e}"))?,
        None => Duration::from_secs(60),
    };
    let source = Source {
        url: repo.spec.url.clone(),
        checkout: auto.spec.checkout_ref(repo.spec.reference.as_ref()),
        auth,
    };

    let selector = auto.spec.policy_selector.clone().unwrap_or_default();
    let mut images = Vec::new();
    let mut observed = BTreeMap::new();
    for p in m.policies.iter().filter(|p| {
        p.namespace().unwrap_or_else(|| "default".into()) == ns && selector.matches(p.labels())
    }) {
        if let Some(latest) = state.policies.get(&key_of(p)) {
            images.push(latest.policy_image(&ns, &p.name_any()));
            observed.insert(p.name_any(), latest.clone());
        }
    }
    let key = key_of(auto);
    let last = state.automations.get(&key).cloned().unwrap_or_default();
    if last.observed_policies == observed {
        let check = source.clone();
        let revision = last.observed_source_revision.clone();
        let unchanged = tokio::task::spawn_blocking(move || {
            automation::source_unchanged(&check, revision.as_deref())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if unchanged {
            return Ok("repository up-to-date (nothing moved since the last run)".into());
        }
    }

    let commit_spec = auto.spec.commit();
    let signer = match &commit_spec.signing_key {
        Some(k) => {
            let data = secret(
                m,
                &ns,
                &k.secret_ref.name,
                "spec.git.commit.signingKey.secretRef",
            )?;
            Some(
                Signer::from_secret_data(k.type_.as_deref().unwrap_or("gpg"), &data)
                    .map_err(|e| format!("secret '{ns}/{}': {e}", k.secret_ref.name))?,
            )
        }
        None => None,
    };
    let commit = auto.spec.commit_settings(signer);
    let push = auto.spec.push_settings();
    let dir = tempfile::Builder::new()
        .prefix(&format!("{ns}-{}-", auto.name_any()))
        .tempdir_in(work)
        .map_err(|e| format!("cannot create a clone directory in {}: {e}", work.display()))?;
    let name = auto.name_any();
    let outcome = tokio::task::spawn_blocking(move || {
        automation::run(&Run {
            namespace: &ns,
            name: &name,
            source: &source,
            commit: &commit,
            push: &push,
            update_path: &checked.update_path,
            policies: &images,
            work_dir: dir.path(),
            deadline: Some(Instant::now() + timeout),
        })
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;

    for e in &outcome.update.errors {
        eprintln!(
            "warning: ImageUpdateAutomation '{key}': skipped {}: {}",
            e.path, e.message
        );
    }
    let entry = state.automations.entry(key).or_default();
    entry.observed_policies = observed;
    entry.observed_source_revision = Some(outcome.observed_revision.clone());
    match outcome.pushed {
        Some(p) => {
            entry.last_push_commit = Some(p.commit.to_string());
            entry.last_push_time = Some(conditions::now_rfc3339());
            *pushed = Some(p.commit.to_string());
            Ok(p.event_note())
        }
        None => Ok("repository up-to-date".into()),
    }
}
