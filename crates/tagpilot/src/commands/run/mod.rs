//! `tagpilot run`: the whole image automation without a cluster. A driver of the core's decisions, as the
//! controllers are: it reads ImageRepository, ImagePolicy, ImageUpdateAutomation, GitRepository, Secret,
//! ServiceAccount and Namespace objects from YAML ([`manifests`]), serves them to the decisions through a
//! [`lookup::ManifestLookup`], and keeps every object's status (the controllers' types) and the tags in a state
//! directory, so that a second run repeats nothing (no duplicate commit, no clone when nothing moved).

mod lookup;
mod manifests;
mod state;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kube::ResourceExt;
use serde::Serialize;
use tagpilot_core::api;
use tagpilot_core::automation::inputs::{self, AutomationSettings, Done};
use tagpilot_core::failure::{Failure, Ready, ReconcileStatus, conclude};
use tagpilot_core::policy::evaluate::{Evaluation, PolicySettings, evaluate};
use tagpilot_core::registry::RegistryClient;
use tagpilot_core::registry::access::AccessSettings;
use tagpilot_core::registry::scan::{checked, scan_repository};
use tagpilot_core::tagstore::TagStore;

use lookup::ManifestLookup;
use manifests::{Manifests, key_of};
use state::State;

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
    /// Keep one clone per source under --state-dir between runs (fetched and reset, not cloned again),
    /// least recently used ones removed beyond this many MiB (0: clone afresh every run).
    #[arg(long, default_value_t = 1024)]
    clone_cache_max_mb: u64,
}

/// One object's result.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome {
    kind: &'static str,
    namespace: String,
    name: String,
    ready: bool,
    /// Ready's reason, as the controllers write it (none for a suspended object, which has no result).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pushed_commit: Option<String>,
    /// The automation's pull requests (`spec.pullRequest`, tagpilot extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_requests: Option<Vec<tagpilot_core::api::PullRequestRef>>,
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
            reason: None,
            message,
            pushed_commit: None,
            pull_requests: None,
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
        let (http, env) = (reqwest::Client::new(), tagpilot_core::cloud::Env::process());
        let gates = tagpilot_core::gates::GateCache::default();
        let engines = Engines {
            store: &store,
            registry: &registry,
            gates: &gates,
            // Cloud logins (spec.provider) with the identity of the environment the run is in; no
            // autologin flags and no default ServiceAccount outside a cluster.
            access: AccessSettings {
                autologin: Default::default(),
                default_service_account: None,
                logins: &logins,
                http: &http,
                env: &env,
            },
            work: &work,
            clone_cache_bytes: self.clone_cache_max_mb.saturating_mul(1 << 20),
            progress: std::io::stderr().is_terminal() && !self.json,
        };
        loop {
            let mut state = State::load(&self.state_dir)?;
            let outcomes = pass(&m, &mut state, &engines).await;
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

/// What a pass needs beyond the manifests and the state.
struct Engines<'a> {
    store: &'a TagStore,
    registry: &'a RegistryClient,
    gates: &'a tagpilot_core::gates::GateCache,
    access: AccessSettings<'a>,
    work: &'a Path,
    /// `--clone-cache-max-mb`, in bytes.
    clone_cache_bytes: u64,
    progress: bool,
}

/// Concludes `result` into `status` (as the controllers do) and says it as an outcome.
fn concluded<K, S>(obj: &K, status: &mut S, result: Result<Ready, Failure>) -> Outcome
where
    K: kube::Resource<DynamicType = ()>,
    S: ReconcileStatus,
{
    conclude(status, obj.meta(), result.as_ref());
    let reason = match &result {
        Ok(_) => tagpilot_core::api::conditions::reason::SUCCEEDED,
        Err(f) => f.reason,
    };
    // The message as the status holds it (a failure's is sanitised there).
    let message = status
        .conditions_mut()
        .as_deref()
        .and_then(|c| api::conditions::get(c, api::conditions::READY))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    Outcome {
        reason: Some(reason),
        ..Outcome::of(obj, result.map(|_| message.clone()).map_err(|_| message))
    }
}

/// One pass over every object: scans, then policies, then automations, each through the core's decisions.
async fn pass(m: &Manifests, state: &mut State, e: &Engines<'_>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let settings = AutomationSettings {
        no_cross_namespace_refs: false,
        force_push_branch: true,
        clone_cache_bytes: e.clone_cache_bytes,
    };

    // Scans, all at once (the registry client limits requests per registry).
    if e.progress && !m.repositories.is_empty() {
        eprintln!("scanning {} image repositories ...", m.repositories.len());
    }
    let lookup = ManifestLookup {
        manifests: m,
        state,
    };
    // Repositories of one image (and credentials, exclusions) share one listing within a pass.
    let shared = tagpilot_core::registry::share::SharedScans::default();
    let scanner = tagpilot_core::registry::scan::Scanner {
        registry: e.registry,
        store: e.store,
        shared: &shared,
        max_tags: tagpilot_core::registry::DEFAULT_MAX_TAGS,
    };
    let scans = futures::future::join_all(m.repositories.iter().map(|repo| {
        let lookup = &lookup;
        async move {
            if repo.spec.suspend == Some(true) {
                return (repo, None);
            }
            let t0 = Instant::now();
            let mut status = lookup
                .state
                .repositories
                .get(&key_of(repo))
                .cloned()
                .unwrap_or_default();
            let result = match checked(repo) {
                Ok(checked) => {
                    scan_repository(
                        lookup,
                        &e.access,
                        scanner,
                        repo,
                        &checked,
                        true,
                        &mut status,
                    )
                    .await
                }
                Err(f) => Err(f),
            };
            if e.progress {
                match &result {
                    Ok(s) => eprintln!(
                        "  {}: {} tags in {:.1}s",
                        key_of(repo),
                        s.count,
                        t0.elapsed().as_secs_f64()
                    ),
                    Err(_) => eprintln!("  {}: failed", key_of(repo)),
                }
            }
            (repo, Some((status, result.map(|s| s.ready))))
        }
    }))
    .await;
    for (repo, scanned) in scans {
        let Some((mut status, result)) = scanned else {
            outcomes.push(Outcome::of(repo, Ok("suspended: not scanned".into())));
            continue;
        };
        outcomes.push(concluded(repo, &mut status, result));
        state.repositories.insert(key_of(repo), status);
    }

    for policy in &m.policies {
        if policy.spec.suspend == Some(true) {
            outcomes.push(Outcome::of(policy, Ok("suspended".into())));
            continue;
        }
        let key = key_of(policy);
        let mut status = state.policies.get(&key).cloned().unwrap_or_default();
        let policy_settings = PolicySettings {
            store: e.store,
            registry: e.registry,
            access: &e.access,
            no_cross_namespace_refs: false,
            requeue_dependency: Duration::from_secs(30),
            gates: e.gates,
        };
        let lookup = ManifestLookup {
            manifests: m,
            state,
        };
        let result = match evaluate(&lookup, &policy_settings, policy, &mut status).await {
            Ok(Evaluation::Resolved { ready, .. }) => Ok(ready),
            Ok(Evaluation::Waiting { repository }) => {
                // The last good result stands, as in the controller.
                outcomes.push(Outcome::of(
                    policy,
                    Ok(format!(
                        "waiting for the tags of ImageRepository '{repository}'; the last result stands"
                    )),
                ));
                continue;
            }
            Err(f) => Err(f),
        };
        outcomes.push(concluded(policy, &mut status, result));
        state.policies.insert(key, status);
    }

    for auto in &m.automations {
        if auto.spec.suspend == Some(true) {
            outcomes.push(Outcome::of(auto, Ok("suspended".into())));
            continue;
        }
        let key = key_of(auto);
        let mut status = state.automations.get(&key).cloned().unwrap_or_default();
        let lookup = ManifestLookup {
            manifests: m,
            state,
        };
        let last_push = status.last_push_commit.clone();
        let result = inputs::reconcile(&lookup, &settings, auto, e.work, &mut status).await;
        let mut pushed = None;
        let result = result.map(|(ready, done)| {
            if let Done::Ran(outcome) = &done {
                for err in &outcome.update.errors {
                    eprintln!(
                        "warning: ImageUpdateAutomation '{key}': skipped {}: {}",
                        err.path, err.message
                    );
                }
                pushed = outcome.pushed.as_ref().map(|p| p.commit.to_string());
            }
            if let Done::Proposed = &done {
                pushed = status
                    .last_push_commit
                    .clone()
                    .filter(|c| Some(c) != last_push.as_ref());
            }
            ready
        });
        let mut o = concluded(auto, &mut status, result);
        o.pushed_commit = pushed;
        if auto.spec.pull_request.is_some() {
            o.pull_requests = status.pull_requests.clone();
        }
        outcomes.push(o);
        state.automations.insert(key, status);
    }
    outcomes
}
