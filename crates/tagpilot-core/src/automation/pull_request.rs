//! tagpilot extension `spec.pullRequest`: each update is proposed as a pull/merge request, for both drivers.
//!
//! Invariants (each run, per head branch, one branch per automation or per policy):
//! - The head branch is rebuilt from the base at every run and force-pushed, only when it does not already
//!   hold the same change on the same base (no new commit, no CI run, for nothing).
//! - Never a second request for a branch: the open one is looked up first and updated (title, body,
//!   labels); a provider's "already exists" answer to a create is read as "find it and update it". The
//!   provider is the state: a restarted controller with an empty cache finds the same request.
//! - A request closed without merging is not opened again for the same images (the images' fingerprint is
//!   in its body); different images open a new one. A merged request's change is on the base: the next
//!   change starts from there.
//! - Nothing to change: nothing pushed, nothing opened; an open request whose change is already on the base
//!   is closed with a comment.
//! - Provider errors are Ready=False with the provider's message (sanitized); a rate limit retries when it
//!   resets.

use std::path::Path;

use crate::api::conditions::{self, reason};
use crate::api::{
    ImageUpdateAutomation, ImageUpdateAutomationStatus, PullRequestRef, PullRequestSpec,
};
use crate::automation::{NotPushed, Outcome, PushSettings};
use crate::failure::{Failure, Ready};
use crate::forge::{
    self, Credentials, Forge, ForgeError, Proposal, Provider, PullRequest, RepoId, State,
};
use crate::git::{CheckoutRef, GitAuth};
use crate::lookup::{Lookup, secret};
use crate::message::{self, MessageInput};
use crate::setters::PolicyImage;

use super::inputs::{Inputs, UpdatePlan, run_plan, signer};

/// The condition reason of a provider's refusal.
pub const PULL_REQUEST_FAILED: &str = "PullRequestFailed";
/// The most labels or reviewers sent.
pub const MAX_NAMES: usize = 20;
/// The marker in a request's body that names the images it proposes.
const MARKER: &str = "<!-- tagpilot:images ";

/// `spec.pullRequest`, checked.
#[derive(Clone, Debug)]
pub struct CheckedPullRequest {
    /// The provider, when set.
    pub provider: Option<Provider>,
    /// `apiURL`.
    pub api_url: Option<String>,
    /// The head branch template.
    pub branch: String,
    /// One request per policy.
    pub per_policy: bool,
    /// Title template.
    pub title: Option<String>,
    /// Body template.
    pub body: Option<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Reviewers.
    pub reviewers: Vec<String>,
    /// Draft.
    pub draft: bool,
    /// Auto-merge method.
    pub auto_merge: Option<String>,
}

/// Checks `spec.pullRequest` before any clone; errors name the field and value (stalled: only an edit helps).
pub fn check(
    spec: &PullRequestSpec,
    auto: &ImageUpdateAutomation,
) -> Result<CheckedPullRequest, Failure> {
    let stalled = |m: String| Failure::stalled(reason::INVALID_SOURCE_CONFIGURATION, m);
    let push = auto.spec.git_spec.as_ref().and_then(|g| g.push.as_ref());
    if push
        .is_some_and(|p| p.branch.as_deref().is_some_and(|b| !b.is_empty()) || p.refspec.is_some())
    {
        return Err(stalled(
            "spec.git.push.branch and spec.git.push.refspec cannot be used with spec.pullRequest: the request's \
             head branch is spec.pullRequest.branch"
                .into(),
        ));
    }
    let provider = match spec.provider.as_deref() {
        Some(p) => Some(Provider::parse(p).ok_or_else(|| {
            stalled(format!(
                "spec.pullRequest.provider {p:?}: must be github, gitlab, gitea or forgejo"
            ))
        })?),
        None => None,
    };
    if let Some(u) = &spec.api_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(stalled(format!(
            "spec.pullRequest.apiURL {:?}: must be an http(s) URL",
            crate::sanitize::url(u)
        )));
    }
    let per_policy = spec.per_policy.unwrap_or(false);
    let branch = spec
        .branch
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            let mut b =
                "tagpilot/{{.AutomationObject.Namespace}}/{{.AutomationObject.Name}}".to_string();
            if per_policy {
                b.push_str("/{{.Policy.Name}}");
            }
            b
        });
    // Parse (and try) the templates now, so that a bad one stalls before a clone.
    message::render_branch(&branch, ("ns", "name"), Some(("ns", "policy")))
        .map_err(|e| stalled(format!("spec.pullRequest.branch: {e}")))?;
    for (field, t) in [("title", &spec.title), ("body", &spec.body)] {
        if let Some(t) = t {
            crate::template::Template::parse(&format!("pull request {field}"), t)
                .map_err(|e| stalled(format!("spec.pullRequest.{field}: {e}")))?;
        }
    }
    let names = |field: &str, v: &Option<Vec<String>>| -> Result<Vec<String>, Failure> {
        let v = v.clone().unwrap_or_default();
        if v.len() > MAX_NAMES {
            return Err(stalled(format!(
                "spec.pullRequest.{field}: {} names, at most {MAX_NAMES}",
                v.len()
            )));
        }
        if let Some(bad) = v
            .iter()
            .find(|n| n.is_empty() || n.len() > 100 || n.contains(['\n', ',']))
        {
            return Err(stalled(format!(
                "spec.pullRequest.{field}: invalid name {bad:?}"
            )));
        }
        Ok(v)
    };
    let auto_merge = match spec.auto_merge.as_deref() {
        Some(m @ ("merge" | "squash" | "rebase")) => Some(m.to_string()),
        Some(m) => {
            return Err(stalled(format!(
                "spec.pullRequest.autoMerge {m:?}: must be merge, squash or rebase"
            )));
        }
        None => None,
    };
    Ok(CheckedPullRequest {
        provider,
        api_url: spec
            .api_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string()),
        branch,
        per_policy,
        title: spec.title.clone().filter(|t| !t.is_empty()),
        body: spec.body.clone().filter(|t| !t.is_empty()),
        labels: names("labels", &spec.labels)?,
        reviewers: names("reviewers", &spec.reviewers)?,
        draft: spec.draft.unwrap_or(false),
        auto_merge,
    })
}

/// A branch name git and the providers accept: `check-ref-format` rules, at most 200 bytes.
pub fn check_branch(b: &str) -> Result<(), String> {
    let bad = b.is_empty()
        || b.len() > 200
        || b.starts_with(['-', '/', '.'])
        || b.ends_with(['/', '.'])
        || b.ends_with(".lock")
        || b.contains("..")
        || b.contains("//")
        || b.contains("@{")
        || b.contains("/.")
        || b.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        Err(format!("{b:?} is not a valid branch name"))
    } else {
        Ok(())
    }
}

/// The provider client of the automation's repository: the provider (set, else from the host), the API URL
/// (set, else from the host), the credentials (`secretRef`, else the GitRepository's Secret).
pub async fn forge<L: Lookup>(
    lookup: &L,
    auto: &ImageUpdateAutomation,
    checked: &CheckedPullRequest,
    inputs: &Inputs,
    spec: &PullRequestSpec,
) -> Result<Forge, Failure> {
    let stalled = |m: String| Failure::stalled(reason::INVALID_SOURCE_CONFIGURATION, m);
    let repo = RepoId::parse(&inputs.source.url)
        .map_err(|e| stalled(format!("spec.pullRequest: the GitRepository's {e}")))?;
    let provider = checked
        .provider
        .or_else(|| forge::infer_provider(&repo))
        .ok_or_else(|| {
            stalled(format!(
                "spec.pullRequest.provider is required: the host {:?} is not one whose provider is known",
                repo.host
            ))
        })?;
    let api_url = checked
        .api_url
        .clone()
        .unwrap_or_else(|| forge::default_api_url(provider, &repo));
    let own = auto.metadata.namespace.as_deref().unwrap_or("default");
    let (ns, name, field) = match (&spec.secret_ref, &inputs.source_secret) {
        (Some(s), _) => (
            own.to_string(),
            s.name.clone(),
            "spec.pullRequest.secretRef".to_string(),
        ),
        (None, Some((ns, name))) => (
            ns.clone(),
            name.clone(),
            "spec.secretRef of the GitRepository (spec.pullRequest has no secretRef)".to_string(),
        ),
        (None, None) => {
            return Err(stalled(
                "spec.pullRequest.secretRef is required: the GitRepository has no secretRef either"
                    .into(),
            ));
        }
    };
    let data = secret(
        lookup,
        &ns,
        &name,
        &field,
        reason::INVALID_SOURCE_CONFIGURATION,
    )
    .await?;
    let credentials = credentials(provider, &data, &api_url)
        .map_err(|e| stalled(format!("secret '{ns}/{name}' ({field}): {e}")))?;
    Ok(Forge {
        provider,
        api_url,
        repo,
        credentials,
        http: forge::http::client(),
    })
}

/// A token (`token`, else `password`, else `bearerToken`) or, for GitHub, an App.
fn credentials(
    provider: Provider,
    data: &std::collections::BTreeMap<String, Vec<u8>>,
    api_url: &str,
) -> Result<Credentials, ForgeError> {
    if provider == Provider::GitHub
        && let Some(app) = forge::app::GitHubApp::from_secret_data(data, api_url)?
    {
        return Ok(Credentials::GitHubApp(app));
    }
    for key in ["token", "password", "bearerToken"] {
        if let Some(v) = data.get(key) {
            let t = String::from_utf8(v.clone())
                .map_err(|_| ForgeError::Config(format!("key {key:?} is not UTF-8 text")))?;
            let t = t.trim().to_string();
            if !t.is_empty() {
                return Ok(Credentials::Token(t));
            }
        }
    }
    Err(ForgeError::Config(
        "no API credentials: key \"token\" (or \"password\"), or a GitHub App (\"githubAppID\", \
         \"githubAppPrivateKey\")"
            .into(),
    ))
}

/// A provider error as a failure: the provider's message; a rate limit looks again at its reset.
pub fn failure(what: &str, e: ForgeError) -> Failure {
    let retry = e.retry_after();
    let f = Failure::retry(PULL_REQUEST_FAILED, format!("{what}: {e}"));
    match retry {
        Some(d) => f.retry_after(d),
        None => f,
    }
}

/// The images' fingerprint a request's body names.
pub fn marked_images(body: &str) -> Option<&str> {
    let start = body.rfind(MARKER)? + MARKER.len();
    let rest = &body[start..];
    let end = rest.find(" -->")?;
    Some(&rest[..end])
}

/// What one head branch got.
struct Step {
    line: Option<String>,
    event: Option<String>,
    record: Option<PullRequestRef>,
    outcome: Outcome,
}

/// One reconcile in pull request mode: per head branch, look up the requests, run the update onto the head
/// branch, then open, update or close. Records the run in `status` and says what Ready says.
pub async fn propose<L: Lookup>(
    lookup: &L,
    auto: &ImageUpdateAutomation,
    inputs: &Inputs,
    spec: &PullRequestSpec,
    work_dir: &Path,
    status: &mut ImageUpdateAutomationStatus,
) -> Result<Ready, Failure> {
    // Checked with the other inputs, before any clone.
    let checked = match &inputs.pull_request {
        Some(c) => c.clone(),
        None => check(spec, auto)?,
    };
    let forge = forge(lookup, auto, &checked, inputs, spec).await?;
    let base = base_branch(spec, inputs).await?;
    check_branch(&base).map_err(|e| {
        Failure::stalled(
            reason::INVALID_SOURCE_CONFIGURATION,
            format!("spec.pullRequest.base: {e}"),
        )
    })?;
    let mut inputs = inputs.clone();
    inputs.source.checkout = CheckoutRef::Branch(Some(base.clone()));
    let namespace = auto.metadata.namespace.clone().unwrap_or_default();
    let name = auto.metadata.name.clone().unwrap_or_default();
    let groups: Vec<(Option<&PolicyImage>, Vec<PolicyImage>)> = if checked.per_policy {
        inputs
            .policies
            .iter()
            .map(|p| (Some(p), vec![p.clone()]))
            .collect()
    } else {
        vec![(None, inputs.policies.clone())]
    };
    let signer = signer(lookup, auto).await?;
    let mut steps = Vec::new();
    for (policy, policies) in groups {
        let head = message::render_branch(
            &checked.branch,
            (&namespace, &name),
            policy.map(|p| (p.namespace.as_str(), p.name.as_str())),
        )
        .map_err(|e| {
            Failure::stalled(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("spec.pullRequest.branch: {e}"),
            )
        })?;
        let head = head.trim().to_string();
        check_branch(&head).map_err(|e| {
            Failure::stalled(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("spec.pullRequest.branch: {e}"),
            )
        })?;
        if head == base {
            return Err(Failure::stalled(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("spec.pullRequest.branch {head:?} is the base branch"),
            ));
        }
        let step = one_branch(
            &forge,
            &checked,
            auto,
            &inputs,
            &head,
            &base,
            policies,
            signer.clone(),
            work_dir,
        )
        .await?;
        steps.push(step);
    }
    Ok(record(status, &inputs, steps))
}

/// The base: `spec.pullRequest.base`, else the checkout branch, else the remote's default branch.
async fn base_branch(spec: &PullRequestSpec, inputs: &Inputs) -> Result<String, Failure> {
    if let Some(b) = spec.base.clone().filter(|b| !b.is_empty()) {
        return Ok(b);
    }
    match &inputs.source.checkout {
        CheckoutRef::Branch(Some(b)) => Ok(b.clone()),
        CheckoutRef::Branch(None) => {
            let (url, auth): (String, GitAuth) =
                (inputs.source.url.clone(), inputs.source.auth.clone());
            let head =
                tokio::task::spawn_blocking(move || crate::git::remote_head(&url, None, &auth))
                    .await
                    .map_err(|e| Failure::retry(reason::GIT_OPERATION_FAILED, e.to_string()))?
                    .map_err(|e| Failure::retry(reason::GIT_OPERATION_FAILED, e.to_string()))?;
            head.map(|(b, _)| b).ok_or_else(|| {
                Failure::stalled(
                    reason::INVALID_SOURCE_CONFIGURATION,
                    "spec.pullRequest.base is required: the remote names no default branch",
                )
            })
        }
        _ => Err(Failure::stalled(
            reason::INVALID_SOURCE_CONFIGURATION,
            "spec.pullRequest.base is required when the checkout ref is not a branch",
        )),
    }
}

#[allow(clippy::too_many_arguments)]
async fn one_branch(
    forge: &Forge,
    checked: &CheckedPullRequest,
    auto: &ImageUpdateAutomation,
    inputs: &Inputs,
    head: &str,
    base: &str,
    policies: Vec<PolicyImage>,
    signer: Option<crate::git::Signer>,
    work_dir: &Path,
) -> Result<Step, Failure> {
    let noun = forge.provider.noun();
    let open = forge
        .find_open(head, base)
        .await
        .map_err(|e| failure(&format!("looking up the open {noun} of branch '{head}'"), e))?;
    let closed = match &open {
        Some(_) => None,
        None => forge
            .find_closed(head, base)
            .await
            .map_err(|e| {
                failure(
                    &format!("looking up the closed {noun}s of branch '{head}'"),
                    e,
                )
            })?
            .filter(|p| p.state == State::Closed),
    };
    let plan = UpdatePlan {
        push: PushSettings {
            branch: Some(head.to_string()),
            refspec: None,
            options: auto.spec.push_settings().options,
            no_force_push_branch: false,
            rebuild: true,
        },
        policies: policies.clone(),
        hold: closed
            .as_ref()
            .and_then(|p| marked_images(&p.body))
            .map(str::to_string),
    };
    let outcome = run_plan(auto, inputs, signer, work_dir, None, plan).await?;
    let Some(commit_message) = outcome.message.clone() else {
        // Nothing to change: an open request's change is on the base already.
        let Some(pr) = open else {
            return Ok(Step {
                line: None,
                event: None,
                record: None,
                outcome,
            });
        };
        let comment =
            format!("Closed by tagpilot: the images this {noun} proposes are already on `{base}`.");
        forge
            .close(&pr, &comment)
            .await
            .map_err(|e| failure(&format!("closing {noun} #{}", pr.number), e))?;
        let line = format!(
            "closed {noun} #{} ({}): its change is already on '{base}'",
            pr.number, pr.url
        );
        return Ok(Step {
            event: Some(line.clone()),
            line: Some(line),
            record: Some(reference(&pr, head, "closed")),
            outcome,
        });
    };
    if outcome.not_pushed == Some(NotPushed::Held)
        && let Some(pr) = closed
    {
        let line = format!(
            "{noun} #{} ({}) for these images was closed without merging: not opened again until the images change",
            pr.number, pr.url
        );
        return Ok(Step {
            line: Some(line),
            event: None,
            record: Some(reference(&pr, head, "closed")),
            outcome,
        });
    }
    let proposal = proposal(
        checked,
        auto,
        &outcome,
        &policies,
        head,
        base,
        &commit_message,
    )?;
    let (pr, verb) = match open {
        Some(pr) => {
            let same = pr.title == forge.title(&proposal) && pr.body == proposal.body;
            let updated = forge
                .update(&pr, &proposal)
                .await
                .map_err(|e| failure(&format!("updating {noun} #{}", pr.number), e))?;
            let verb = if same && outcome.pushed.is_none() {
                "kept"
            } else {
                "updated"
            };
            (updated, verb)
        }
        None => {
            let (pr, new) = forge.open(&proposal).await.map_err(|e| {
                failure(
                    &format!("opening a {noun} from branch '{head}' into '{base}'"),
                    e,
                )
            })?;
            (pr, if new { "opened" } else { "updated" })
        }
    };
    let mut line = format!("{verb} {noun} #{} ({})", pr.number, pr.url);
    let event = match &outcome.pushed {
        Some(p) => {
            line = format!("{}; {line}", p.summary());
            Some(format!("{line}\n{}", p.message))
        }
        None if verb == "opened" => Some(line.clone()),
        None => None,
    };
    Ok(Step {
        line: Some(line),
        event,
        record: Some(reference(&pr, head, "open")),
        outcome,
    })
}

fn reference(pr: &PullRequest, head: &str, state: &str) -> PullRequestRef {
    PullRequestRef {
        branch: head.to_string(),
        number: pr.number,
        url: crate::sanitize::cap(&pr.url, 500),
        state: state.to_string(),
    }
}

/// The request's title and body from the templates (or the commit message), with the images' marker.
#[allow(clippy::too_many_arguments)]
fn proposal(
    checked: &CheckedPullRequest,
    auto: &ImageUpdateAutomation,
    outcome: &Outcome,
    policies: &[PolicyImage],
    head: &str,
    base: &str,
    commit_message: &str,
) -> Result<Proposal, Failure> {
    let values = auto
        .spec
        .commit()
        .message_template_values
        .unwrap_or_default();
    let namespace = auto.metadata.namespace.clone().unwrap_or_default();
    let name = auto.metadata.name.clone().unwrap_or_default();
    let input = MessageInput {
        namespace: &namespace,
        name: &name,
        result: &outcome.update,
        policies,
        values: &values,
    };
    let render = |field: &str, t: &str| {
        message::render_named(&format!("pull request {field}"), t, &input).map_err(|e| {
            Failure::stalled(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("spec.pullRequest.{field}: {e}"),
            )
        })
    };
    let (first, rest) = commit_message
        .trim()
        .split_once('\n')
        .unwrap_or((commit_message.trim(), ""));
    let title = match &checked.title {
        Some(t) => render("title", t)?,
        None => first.to_string(),
    };
    let title = title.lines().next().unwrap_or_default().trim().to_string();
    let mut body = match &checked.body {
        Some(t) => render("body", t)?,
        None if !rest.trim().is_empty() => rest.trim().to_string(),
        None => {
            let mut b = format!("Image updates by ImageUpdateAutomation `{namespace}/{name}`:\n");
            for p in policies.iter().filter(|p| changed(outcome, p)) {
                b.push_str(&format!("\n- `{}:{}`", p.image, p.tag));
            }
            b
        }
    };
    body = crate::sanitize::cap(&body, forge::MAX_BODY_TEXT);
    body.push_str(&format!(
        "\n\n{MARKER}{} -->",
        outcome.images.as_deref().unwrap_or_default()
    ));
    Ok(Proposal {
        head: head.to_string(),
        base: base.to_string(),
        title: if title.is_empty() {
            message::DEFAULT_MESSAGE.to_string()
        } else {
            title
        },
        body,
        labels: checked.labels.clone(),
        reviewers: checked.reviewers.clone(),
        draft: checked.draft,
        auto_merge: checked.auto_merge.clone(),
    })
}

fn changed(outcome: &Outcome, p: &PolicyImage) -> bool {
    outcome
        .update
        .files
        .iter()
        .flat_map(|f| f.objects.iter())
        .flat_map(|o| o.changes.iter())
        .any(|c| c.policy.is(p))
}

/// Records the run: observed policies and the base's revision, the push, the requests; Ready's message.
fn record(status: &mut ImageUpdateAutomationStatus, inputs: &Inputs, steps: Vec<Step>) -> Ready {
    status.observed_policies = Some(inputs.observed.clone());
    status.last_automation_run_time = Some(conditions::now_rfc3339());
    let mut refs: Vec<PullRequestRef> = status.pull_requests.take().unwrap_or_default();
    let mut lines = Vec::new();
    let mut events = Vec::new();
    let mut metadata = std::collections::BTreeMap::new();
    for s in steps {
        if s.event.is_some()
            && let Some(r) = &s.record
        {
            // Flux's key for a change request, group-prefixed as Flux's recorder sends it.
            metadata.insert(
                format!("{}/change_request", crate::api::GROUP),
                r.url.clone(),
            );
        }
        status.observed_source_revision = Some(s.outcome.observed_revision.clone());
        if let Some(p) = &s.outcome.pushed {
            status.last_push_commit = Some(p.commit.to_string());
            status.last_push_time = Some(conditions::now_rfc3339());
        }
        if let Some(r) = s.record {
            refs.retain(|x| x.branch != r.branch);
            refs.push(r);
        }
        lines.extend(s.line);
        events.extend(s.event);
    }
    // Bounded: the newest per branch, at most 100 branches.
    let excess = refs.len().saturating_sub(100);
    refs.drain(..excess);
    status.pull_requests = (!refs.is_empty()).then_some(refs);
    Ready {
        message: if lines.is_empty() {
            super::inputs::UP_TO_DATE.to_string()
        } else {
            lines.join("; ")
        },
        event: (!events.is_empty()).then(|| events.join("\n")),
        requeue: Some(inputs.checked.interval),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_git_accepts() {
        assert!(check_branch("tagpilot/ns/app").is_ok());
        for bad in [
            "", "-x", "a..b", "a b", "a/", "x.lock", "a~1", "a:b", "/a", "a//b", "a/.b",
        ] {
            assert!(check_branch(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn images_marker_read_back() {
        let body = format!("text\n\n{MARKER}0123abcd -->");
        assert_eq!(marked_images(&body), Some("0123abcd"));
        assert_eq!(marked_images("no marker"), None);
    }
}
