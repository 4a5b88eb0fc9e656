//! One ImageUpdateAutomation's reconcile, for both drivers: its inputs read through a [`Lookup`] (the spec
//! checked, the GitRepository and its Secrets, the policies in scope, the signing key), the skip decision (no
//! clone when neither the remote head nor the policies moved), the run, and what the status records.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::api::conditions::{self, reason};
use crate::api::{
    CheckedAutomation, ImagePolicyStatus, ImageRef, ImageUpdateAutomation,
    ImageUpdateAutomationStatus, duration,
};
use crate::automation::{self, AutomationError, Outcome, PushSettings, Run, Source};
use crate::failure::{Failure, Ready, ready_message};
use crate::git::{GitAuth, Signer};
use crate::lookup::{Lookup, secret};
use crate::setters::PolicyImage;

/// A GitRepository's default timeout (source-controller's).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Ready's message when nothing had to change.
pub const UP_TO_DATE: &str = "repository up-to-date";

/// The driver's settings.
#[derive(Clone, Copy, Debug)]
pub struct AutomationSettings {
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Gate `GitForcePushBranch` (on by default, as Flux).
    pub force_push_branch: bool,
    /// The kept clones' disk limit in bytes (`--clone-cache-max-mb`; 0 clones afresh every run, as Flux).
    pub clone_cache_bytes: u64,
}

/// What a run needs, read and checked.
#[derive(Clone)]
pub struct Inputs {
    /// The checked spec.
    pub checked: CheckedAutomation,
    /// The repository, credentials and checkout ref.
    pub source: Source,
    /// The GitRepository's `spec.timeout`.
    pub timeout: Duration,
    /// The policies applied.
    pub policies: Vec<PolicyImage>,
    /// The same, as `status.observedPolicies`.
    pub observed: BTreeMap<String, ImageRef>,
    /// The GitRepository's `secretRef` (namespace, name), for `spec.pullRequest` without its own.
    pub source_secret: Option<(String, String)>,
    /// `spec.pullRequest`, checked (tagpilot extension).
    pub pull_request: Option<super::pull_request::CheckedPullRequest>,
    /// The kept clones' disk limit ([`AutomationSettings::clone_cache_bytes`]).
    pub clone_cache_bytes: u64,
}

/// Reads and checks everything a run needs but the signing key (read only when the run goes ahead).
pub async fn inputs<L: Lookup>(
    lookup: &L,
    settings: &AutomationSettings,
    auto: &ImageUpdateAutomation,
) -> Result<Inputs, Failure> {
    let checked = auto
        .spec
        .check()
        .map_err(|e| Failure::stalled(e.reason, e.message))?;
    automation::check_template(auto.spec.commit().message_template.as_deref()).map_err(|e| {
        Failure::stalled(
            reason::GIT_OPERATION_FAILED,
            format!("spec.git.commit.messageTemplate: {e}"),
        )
    })?;
    let pull_request = match &auto.spec.pull_request {
        Some(pr) => Some(super::pull_request::check(pr, auto)?),
        None => None,
    };
    let (source, timeout, source_secret) = source(lookup, settings, auto).await?;
    let (policies, observed) = policies(lookup, auto).await?;
    Ok(Inputs {
        checked,
        source,
        timeout,
        policies,
        observed,
        source_secret,
        pull_request,
        clone_cache_bytes: settings.clone_cache_bytes,
    })
}

/// The repository an automation names, with its credentials, and the git operations' timeout.
async fn source<L: Lookup>(
    lookup: &L,
    settings: &AutomationSettings,
    auto: &ImageUpdateAutomation,
) -> Result<(Source, Duration, Option<(String, String)>), Failure> {
    let own = auto.metadata.namespace.as_deref().unwrap_or("default");
    let r = &auto.spec.source_ref;
    let ns = auto.spec.source_namespace(own);
    if ns != own && settings.no_cross_namespace_refs {
        return Err(Failure::stalled(
            reason::ACCESS_DENIED,
            format!(
                "spec.sourceRef: cannot access GitRepository '{ns}/{}': cross-namespace references are disabled (--no-cross-namespace-refs)",
                r.name
            ),
        ));
    }
    let invalid = |message: String| Failure::retry(reason::INVALID_SOURCE_CONFIGURATION, message);
    let repo = lookup
        .git_repository(&ns, &r.name)
        .await
        .map_err(|e| {
            invalid(format!(
                "cannot read GitRepository '{ns}/{}' (spec.sourceRef): {e}",
                r.name
            ))
        })?
        .ok_or_else(|| {
            invalid(format!(
                "GitRepository '{ns}/{}' (spec.sourceRef) not found",
                r.name
            ))
        })?;
    let spec = &repo.spec;
    let field = |f: &str| format!("spec.{f} of GitRepository '{ns}/{}'", r.name);
    let github_app = spec.provider.as_deref() == Some("github");
    let mut auth = match &spec.secret_ref {
        Some(s) => {
            let f = field("secretRef");
            let data = secret(
                lookup,
                &ns,
                &s.name,
                &f,
                reason::INVALID_SOURCE_CONFIGURATION,
            )
            .await?;
            if github_app {
                github_app_auth(&spec.url, &data).await.map_err(|e| {
                    invalid(format!(
                        "secret '{ns}/{}' ({f}, provider github): {e}",
                        s.name
                    ))
                })?
            } else {
                GitAuth::from_secret_data(&data)
                    .map_err(|e| invalid(format!("secret '{ns}/{}' ({f}): {e}", s.name)))?
            }
        }
        None if github_app => {
            return Err(Failure::stalled(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!(
                    "{} is required with spec.provider github (the GitHub App's Secret)",
                    field("secretRef")
                ),
            ));
        }
        None => GitAuth::default(),
    };
    if let Some(p) = &spec.proxy_secret_ref {
        let f = field("proxySecretRef");
        let data = secret(
            lookup,
            &ns,
            &p.name,
            &f,
            reason::INVALID_SOURCE_CONFIGURATION,
        )
        .await?;
        auth.set_proxy_from_secret_data(&data)
            .map_err(|e| invalid(format!("secret '{ns}/{}' ({f}): {e}", p.name)))?;
    }
    let timeout = match spec.timeout.as_deref() {
        Some(t) => duration::parse(t).map_err(|e| {
            Failure::stalled(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("{} {t:?}: {e}", field("timeout")),
            )
        })?,
        None => DEFAULT_TIMEOUT,
    };
    let source = Source {
        url: spec.url.clone(),
        checkout: auto.spec.checkout_ref(spec.reference.as_ref()),
        auth,
    };
    let secret_ref = spec
        .secret_ref
        .as_ref()
        .map(|s| (ns.clone(), s.name.clone()));
    Ok((source, timeout, secret_ref))
}

/// Git credentials of a GitRepository with `provider: github` (as Flux's source-controller): an installation
/// token of the GitHub App in the Secret, as the password of `x-access-token`, with the CA of the Secret.
async fn github_app_auth(
    url: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<GitAuth, crate::forge::ForgeError> {
    use crate::forge::{self, ForgeError, Provider, RepoId, app};
    let repo = RepoId::parse(url)?;
    let api = forge::default_api_url(Provider::GitHub, &repo);
    let app = app::GitHubApp::from_secret_data(data, &api)?.ok_or_else(|| {
        ForgeError::Config("key \"githubAppID\" is required with provider github".into())
    })?;
    let token = app::installation_token(&forge::http::client(), &app, Some(&repo)).await?;
    Ok(GitAuth {
        username: Some(app::GIT_USER.to_string()),
        password: Some(token.token),
        identity_key: Some(format!("github-app:{}", app.identity(Some(&repo)))),
        ca_pem: data.get("ca.crt").cloned(),
        ..GitAuth::default()
    })
}

/// The commit signer from `spec.git.commit.signingKey`, if any.
pub async fn signer<L: Lookup>(
    lookup: &L,
    auto: &ImageUpdateAutomation,
) -> Result<Option<Signer>, Failure> {
    let Some(key) = auto
        .spec
        .git_spec
        .as_ref()
        .and_then(|g| g.commit.signing_key.as_ref())
    else {
        return Ok(None);
    };
    let ns = auto.metadata.namespace.as_deref().unwrap_or("default");
    let data = secret(
        lookup,
        ns,
        &key.secret_ref.name,
        "spec.git.commit.signingKey.secretRef",
        reason::INVALID_SOURCE_CONFIGURATION,
    )
    .await?;
    let kind = key.type_.as_deref().unwrap_or("gpg");
    Signer::from_secret_data(kind, &data)
        .map(Some)
        .map_err(|e| {
            Failure::retry(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!(
                    "secret '{ns}/{}' (spec.git.commit.signingKey): {e}",
                    key.secret_ref.name
                ),
            )
        })
}

/// The policies the automation applies: those of its namespace that its selector picks and that have a
/// latest image; with the map written to `status.observedPolicies`.
async fn policies<L: Lookup>(
    lookup: &L,
    auto: &ImageUpdateAutomation,
) -> Result<(Vec<PolicyImage>, BTreeMap<String, ImageRef>), Failure> {
    let ns = auto.metadata.namespace.as_deref().unwrap_or("default");
    let selector = auto.spec.policy_selector.clone().unwrap_or_default();
    let list = lookup.image_policies(ns, &selector).await.map_err(|e| {
        Failure::retry(
            reason::FAILURE,
            format!("cannot list the ImagePolicies of namespace '{ns}': {e}"),
        )
    })?;
    let mut images = Vec::new();
    let mut observed = BTreeMap::new();
    for p in list {
        let Some(latest) = p.status.as_ref().and_then(ImagePolicyStatus::latest) else {
            continue;
        };
        let name = p.metadata.name.clone().unwrap_or_default();
        images.push(latest.policy_image(ns, &name));
        observed.insert(name, latest);
    }
    Ok((images, observed))
}

/// The skip decision: when the policies are those of the last run and the checkout branch's remote head is
/// still the revision it saw, nothing can change (one ls-remote, no clone). Returns Ready when skipping (and
/// records the run's time).
pub async fn nothing_moved(
    inputs: &Inputs,
    status: &mut ImageUpdateAutomationStatus,
) -> Result<Option<Ready>, Failure> {
    if status.observed_policies.as_ref() != Some(&inputs.observed) {
        return Ok(None);
    }
    let source = inputs.source.clone();
    let observed = status.observed_source_revision.clone();
    let unchanged = tokio::task::spawn_blocking(move || {
        automation::source_unchanged(&source, observed.as_deref())
    })
    .await
    .unwrap_or(Ok(false))
    .map_err(|e| Failure::retry(reason::GIT_OPERATION_FAILED, e.to_string()))?;
    if !unchanged {
        return Ok(None);
    }
    // Nothing moved: a Ready message about the last push stays.
    let message = ready_message(status.conditions.as_deref())
        .unwrap_or(UP_TO_DATE)
        .to_string();
    status.last_automation_run_time = Some(conditions::now_rfc3339());
    Ok(Some(Ready {
        message,
        event: None,
        requeue: Some(inputs.checked.interval),
        metadata: Default::default(),
    }))
}

/// The quiet period (`spec.quietPeriod`, tagpilot extension): when the policies differ from those of the
/// last run, the run waits until they have stayed as they are (`observed`) for the period, so that a burst of
/// new tags gives one commit. The first run does not wait (there is no burst to gather). Returns Ready while
/// waiting (no clone); `None` when the run may go ahead.
pub fn settling(
    quiet: Option<Duration>,
    observed: &BTreeMap<String, ImageRef>,
    status: &mut ImageUpdateAutomationStatus,
    now: jiff::Timestamp,
) -> Option<Ready> {
    let (Some(quiet), Some(last)) = (quiet, status.observed_policies.as_ref()) else {
        status.settling = None;
        return None;
    };
    if last == observed {
        // Only the source moved.
        status.settling = None;
        return None;
    }
    let fingerprint = {
        use sha2::Digest;
        let json = serde_json::to_vec(observed).unwrap_or_default();
        format!("{:x}", sha2::Sha256::digest(json))
    };
    let since = status
        .settling
        .as_ref()
        .filter(|s| s.policies == fingerprint)
        .and_then(|s| s.since.parse::<jiff::Timestamp>().ok());
    let since = match since {
        Some(t) => t,
        None => {
            status.settling = Some(crate::api::SettlingPolicies {
                policies: fingerprint,
                since: now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            });
            now.round(jiff::Unit::Second).unwrap_or(now)
        }
    };
    let due = since.checked_add(quiet).unwrap_or(jiff::Timestamp::MAX);
    if due <= now {
        status.settling = None;
        return None;
    }
    let changed: Vec<&str> = observed
        .iter()
        .filter(|(name, image)| {
            status.observed_policies.as_ref().and_then(|o| o.get(*name)) != Some(*image)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    let wait = Duration::from_secs((due.as_second() - now.as_second()).max(1) as u64);
    Some(Ready {
        message: format!(
            "waiting for the quiet period (spec.quietPeriod {}): {} changed; committing at {} unless they change \
             again",
            duration::format(quiet),
            crate::sanitize::cap(&changed.join(", "), 300),
            due.round(jiff::Unit::Second).unwrap_or(due)
        ),
        event: None,
        requeue: Some(wait),
        metadata: Default::default(),
    })
}

/// What one update run pushes: the push settings, the policies applied, and the images held back.
#[derive(Clone, Debug)]
pub struct UpdatePlan {
    /// Where and how to push.
    pub push: PushSettings,
    /// The policies to apply.
    pub policies: Vec<PolicyImage>,
    /// Images not to push again ([`Run::hold`]).
    pub hold: Option<String>,
}

/// Runs the update (clone, setters, commit, push) in `work_dir`, on a blocking thread.
pub async fn update(
    auto: &ImageUpdateAutomation,
    inputs: &Inputs,
    signer: Option<Signer>,
    settings: &AutomationSettings,
    work_dir: &Path,
    last_push: Option<String>,
) -> Result<Outcome, Failure> {
    let plan = UpdatePlan {
        push: PushSettings {
            no_force_push_branch: !settings.force_push_branch,
            ..auto.spec.push_settings()
        },
        policies: inputs.policies.clone(),
        hold: None,
    };
    run_plan(auto, inputs, signer, work_dir, last_push, plan).await
}

/// Runs `plan` (clone, setters, commit, push) in `work_dir`, on a blocking thread.
pub async fn run_plan(
    auto: &ImageUpdateAutomation,
    inputs: &Inputs,
    signer: Option<Signer>,
    work_dir: &Path,
    last_push: Option<String>,
    plan: UpdatePlan,
) -> Result<Outcome, Failure> {
    let namespace = auto.metadata.namespace.clone().unwrap_or_default();
    let name = auto.metadata.name.clone().unwrap_or_default();
    let commit = auto.spec.commit_settings(signer);
    let UpdatePlan {
        push,
        policies,
        hold,
    } = plan;
    let work = tempfile::Builder::new()
        .prefix(&format!("{namespace}-{name}-"))
        .tempdir_in(work_dir)
        .map_err(|e| {
            Failure::retry(
                reason::GIT_OPERATION_FAILED,
                format!(
                    "cannot create a clone directory in {}: {e}",
                    work_dir.display()
                ),
            )
        })?;
    let deadline = Instant::now() + inputs.timeout;
    let cache = crate::git::cache::at(&work_dir.join("kept-clones"), inputs.clone_cache_bytes);
    let source = inputs.source.clone();
    let update_path = inputs.checked.update_path.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let r = automation::run(&Run {
            namespace: &namespace,
            name: &name,
            source: &source,
            commit: &commit,
            push: &push,
            update_path: &update_path,
            policies: &policies,
            work_dir: work.path(),
            deadline: Some(deadline),
            last_push: last_push.as_deref(),
            hold: hold.as_deref(),
            cache: cache.as_deref(),
        });
        drop(work);
        r
    })
    .await;
    match outcome {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => {
            let (reason, stalled) = match &e {
                AutomationError::Update(_) => (reason::UPDATE_FAILED, false),
                AutomationError::Template(_) => (reason::GIT_OPERATION_FAILED, true),
                AutomationError::NoPushBranch(_) => (reason::INVALID_SOURCE_CONFIGURATION, true),
                _ => (reason::GIT_OPERATION_FAILED, false),
            };
            Err(Failure {
                stalled,
                ..Failure::retry(reason, e.to_string())
            })
        }
        Err(e) => Err(Failure::retry(
            reason::GIT_OPERATION_FAILED,
            format!("the update run stopped: {e}"),
        )),
    }
}

/// What a reconcile that did not fail did.
#[derive(Debug)]
pub enum Done {
    /// Nothing moved: no clone.
    Skipped,
    /// The update ran (and pushed, or found the branch up to date).
    Ran(Box<Outcome>),
    /// The update was proposed as pull requests (`spec.pullRequest`).
    Proposed,
}

/// One reconcile of `auto` whose status is `status`: inputs, the skip decision, the signing key, the update,
/// recorded in `status`. The drivers conclude the result ([`crate::failure::conclude`]).
pub async fn reconcile<L: Lookup>(
    lookup: &L,
    settings: &AutomationSettings,
    auto: &ImageUpdateAutomation,
    work_dir: &Path,
    status: &mut ImageUpdateAutomationStatus,
) -> Result<(Ready, Done), Failure> {
    let inputs = inputs(lookup, settings, auto).await?;
    if let Some(ready) = nothing_moved(&inputs, status).await? {
        return Ok((ready, Done::Skipped));
    }
    if let Some(ready) = settling(
        inputs.checked.quiet_period,
        &inputs.observed,
        status,
        jiff::Timestamp::now(),
    ) {
        return Ok((ready, Done::Skipped));
    }
    if let Some(pr) = &auto.spec.pull_request {
        let ready =
            super::pull_request::propose(lookup, auto, &inputs, pr, work_dir, status).await?;
        return Ok((ready, Done::Proposed));
    }
    let signer = signer(lookup, auto).await?;
    let outcome = update(
        auto,
        &inputs,
        signer,
        settings,
        work_dir,
        status.last_push_commit.clone(),
    )
    .await?;
    let ready = record(status, &inputs, &outcome);
    Ok((ready, Done::Ran(Box::new(outcome))))
}

/// Records a run's outcome in `status` (observed policies and revision, the push) and says what Ready says.
pub fn record(
    status: &mut ImageUpdateAutomationStatus,
    inputs: &Inputs,
    outcome: &Outcome,
) -> Ready {
    status.observed_policies = Some(inputs.observed.clone());
    status.observed_source_revision = Some(outcome.observed_revision.clone());
    status.last_automation_run_time = Some(conditions::now_rfc3339());
    let (message, event) = match &outcome.pushed {
        Some(p) => {
            status.last_push_commit = Some(p.commit.to_string());
            status.last_push_time = Some(conditions::now_rfc3339());
            (p.summary(), Some(p.event_note()))
        }
        None => match outcome.earlier_push {
            // A push whose status write was lost: recorded now, with its event.
            Some((commit, time, ref branch)) => {
                status.last_push_commit = Some(commit.to_string());
                status.last_push_time = jiff::Timestamp::from_second(time)
                    .ok()
                    .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                let sha = commit.to_string();
                let message = format!("pushed commit '{}' to branch '{branch}'", &sha[..7]);
                (message.clone(), Some(message))
            }
            None => (UP_TO_DATE.to_string(), None),
        },
    };
    Ready {
        message,
        event,
        requeue: Some(inputs.checked.interval),
        metadata: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(tags: &[(&str, &str)]) -> BTreeMap<String, ImageRef> {
        tags.iter()
            .map(|(name, tag)| {
                (
                    name.to_string(),
                    ImageRef {
                        name: format!("reg/{name}"),
                        tag: tag.to_string(),
                        digest: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_burst_waits_for_the_quiet_period_from_its_last_change() {
        let t = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
        let quiet = Some(Duration::from_secs(30));
        let mut status = ImageUpdateAutomationStatus {
            observed_policies: Some(images(&[("a", "1"), ("b", "1")])),
            ..Default::default()
        };
        // Nothing changed: no wait.
        let same = images(&[("a", "1"), ("b", "1")]);
        assert!(settling(quiet, &same, &mut status, t(0)).is_none());
        // a moves at 0: wait 30 s.
        let one = images(&[("a", "2"), ("b", "1")]);
        let r = settling(quiet, &one, &mut status, t(0)).unwrap();
        assert_eq!(r.requeue, Some(Duration::from_secs(30)));
        assert!(r.message.contains("a changed"), "{}", r.message);
        // b moves at 10: the period starts again.
        let two = images(&[("a", "2"), ("b", "2")]);
        let r = settling(quiet, &two, &mut status, t(10)).unwrap();
        assert_eq!(r.requeue, Some(Duration::from_secs(30)));
        assert!(r.message.contains("a, b changed"), "{}", r.message);
        // Still at 39: 1 s to go.
        let r = settling(quiet, &two, &mut status, t(39)).unwrap();
        assert_eq!(r.requeue, Some(Duration::from_secs(1)));
        // At 40 the run goes ahead, once, with both.
        assert!(settling(quiet, &two, &mut status, t(40)).is_none());
        assert_eq!(status.settling, None);
        // Without a quiet period, or before the first run: no wait.
        assert!(settling(None, &one, &mut status, t(41)).is_none());
        let mut fresh = ImageUpdateAutomationStatus::default();
        assert!(settling(quiet, &one, &mut fresh, t(0)).is_none());
    }
}
