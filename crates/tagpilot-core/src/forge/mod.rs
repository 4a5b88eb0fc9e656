//! Pull and merge requests on GitHub, GitLab and Gitea/Forgejo (tagpilot extension `spec.pullRequest` of an
//! ImageUpdateAutomation), and GitHub App installation tokens (also for `GitRepository.spec.provider: github`).
//!
//! - [`Forge`]: one repository on one provider, with its credentials: find the open request for a head
//!   branch, the latest closed one, create, update, label, request reviewers, enable auto-merge, comment and
//!   close. Each provider's calls are in its own file ([`github`], [`gitlab`], [`gitea`]), as their
//!   documented REST APIs describe them.
//! - [`app`]: GitHub App JWTs and installation tokens, cached per app and installation until five minutes
//!   before they expire.
//! - Errors keep the provider's own message (sanitized: no credentials, one capped line) and say when to
//!   retry: a rate limit waits for its reset.
//!
//! Every answer is read through [`http::read_json`] (at most [`http::MAX_BODY`]); lists are read at most
//! [`MAX_PAGES`] pages deep.

pub mod app;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod http;
mod repo;

use std::time::Duration;

pub use repo::{RepoId, default_api_url, infer_provider};

/// Pages of a list read at most (100 items each on GitHub and GitLab, 50 on Gitea).
pub const MAX_PAGES: usize = 10;
/// The longest title sent (GitHub's and GitLab's limit is 255 characters).
pub const MAX_TITLE: usize = 255;
/// The longest body sent (GitHub's limit is 65,536 characters; GitLab's 1,000,000).
pub const MAX_BODY_TEXT: usize = 60_000;

/// A code hosting service's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// GitHub.com, GitHub Enterprise Server and GHE.com (REST v3, GraphQL for auto-merge).
    GitHub,
    /// GitLab.com and self-managed GitLab (REST v4).
    GitLab,
    /// Gitea and Forgejo (API v1).
    Gitea,
}

impl Provider {
    /// The name used in `spec.pullRequest.provider`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Gitea => "gitea",
        }
    }

    /// Parses `github`, `gitlab`, `gitea` or `forgejo`.
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "github" => Some(Provider::GitHub),
            "gitlab" => Some(Provider::GitLab),
            "gitea" | "forgejo" => Some(Provider::Gitea),
            _ => None,
        }
    }

    /// What the provider calls a request.
    pub fn noun(self) -> &'static str {
        match self {
            Provider::GitLab => "merge request",
            _ => "pull request",
        }
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Open.
    Open,
    /// Closed without merging.
    Closed,
    /// Merged.
    Merged,
}

/// A pull or merge request as the provider reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequest {
    /// GitHub's and Gitea's number, GitLab's `iid`.
    pub number: u64,
    /// The web page.
    pub url: String,
    /// Open, closed or merged.
    pub state: State,
    /// The title.
    pub title: String,
    /// The body (GitLab's description).
    pub body: String,
    /// The head branch.
    pub head: String,
    /// The base branch.
    pub base: String,
    /// GitHub's GraphQL node id (for auto-merge).
    pub node_id: Option<String>,
    /// The labels it has.
    pub labels: Vec<String>,
}

/// What a new or updated request says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Proposal {
    /// The head branch (pushed before).
    pub head: String,
    /// The base branch.
    pub base: String,
    /// The title (a draft prefix added where the provider has no draft field).
    pub title: String,
    /// The body.
    pub body: String,
    /// Labels to add.
    pub labels: Vec<String>,
    /// Reviewers (user names) to request.
    pub reviewers: Vec<String>,
    /// Opened as a draft.
    pub draft: bool,
    /// Merge automatically when the checks pass: `merge`, `squash` or `rebase`.
    pub auto_merge: Option<String>,
}

/// A provider call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The provider answered with an error status.
    #[error("{provider} API {method} {path}: HTTP {status}: {message}")]
    Api {
        /// The provider's name.
        provider: &'static str,
        /// The method.
        method: &'static str,
        /// The path (no query, no credentials).
        path: String,
        /// The HTTP status.
        status: u16,
        /// The provider's message, sanitized and capped.
        message: String,
    },
    /// A rate limit: the call may be made again after `retry_after`.
    #[error("{provider} API rate limit exceeded ({message}); retrying in {}s", retry_after.as_secs())]
    RateLimited {
        /// The provider's name.
        provider: &'static str,
        /// The provider's message, sanitized and capped.
        message: String,
        /// When the limit resets (or `Retry-After`).
        retry_after: Duration,
    },
    /// The provider could not be reached, or its answer was not what its API describes.
    #[error("{provider} API {url}: {message}")]
    Transport {
        /// The provider's name.
        provider: &'static str,
        /// The URL (no credentials).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The settings cannot be used (a bad URL, key or secret); names the field.
    #[error("{0}")]
    Config(String),
}

impl ForgeError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ForgeError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// When a rate limit allows the next call.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ForgeError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Credentials for a provider's API.
#[derive(Clone)]
pub enum Credentials {
    /// A token: GitHub's and Gitea's `Authorization`, GitLab's `PRIVATE-TOKEN`.
    Token(String),
    /// A GitHub App, exchanged for installation tokens.
    GitHubApp(app::GitHubApp),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::GitHubApp(a) => write!(f, "GitHubApp({})", a.app_id),
        }
    }
}

/// One repository on one provider.
#[derive(Clone, Debug)]
pub struct Forge {
    /// The provider.
    pub provider: Provider,
    /// The API base URL, without a trailing `/`.
    pub api_url: String,
    /// The repository.
    pub repo: RepoId,
    /// The credentials.
    pub credentials: Credentials,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Forge {
    /// The open request from `head` into `base`, if any.
    pub async fn find_open(
        &self,
        head: &str,
        base: &str,
    ) -> Result<Option<PullRequest>, ForgeError> {
        match self.provider {
            Provider::GitHub => github::find(self, head, base, "open").await,
            Provider::GitLab => gitlab::find(self, head, base, "opened").await,
            Provider::Gitea => gitea::find(self, head, base, "open").await,
        }
    }

    /// The most recent closed or merged request from `head` into `base`, if any.
    pub async fn find_closed(
        &self,
        head: &str,
        base: &str,
    ) -> Result<Option<PullRequest>, ForgeError> {
        match self.provider {
            Provider::GitHub => github::find(self, head, base, "closed").await,
            Provider::GitLab => gitlab::find_ended(self, head, base).await,
            Provider::Gitea => gitea::find(self, head, base, "closed").await,
        }
    }

    /// Opens a request; when the provider says one already exists for the branch, that one is updated
    /// instead (never a second request for a branch).
    pub async fn open(&self, p: &Proposal) -> Result<(PullRequest, bool), ForgeError> {
        let created = match self.provider {
            Provider::GitHub => github::create(self, p).await,
            Provider::GitLab => gitlab::create(self, p).await,
            Provider::Gitea => gitea::create(self, p).await,
        };
        match created {
            Ok(pr) => {
                self.decorate(&pr, p, true).await;
                Ok((pr, true))
            }
            Err(e) if already_exists(self.provider, &e) => {
                let existing = self.find_open(&p.head, &p.base).await?.ok_or(e)?;
                Ok((self.update(&existing, p).await?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Brings an open request's title, body and labels to `p` (only what differs is sent).
    pub async fn update(&self, pr: &PullRequest, p: &Proposal) -> Result<PullRequest, ForgeError> {
        let title = self.title(p);
        let updated = if pr.title != title || pr.body != p.body {
            match self.provider {
                Provider::GitHub => github::edit(self, pr.number, &title, &p.body).await?,
                Provider::GitLab => gitlab::edit(self, pr.number, &title, &p.body).await?,
                Provider::Gitea => gitea::edit(self, pr.number, &title, &p.body).await?,
            }
        } else {
            pr.clone()
        };
        self.decorate(&updated, p, false).await;
        Ok(updated)
    }

    /// Labels, reviewers and auto-merge: a provider refusing them does not fail the request (logged), as the
    /// request itself is what matters.
    async fn decorate(&self, pr: &PullRequest, p: &Proposal, new: bool) {
        let missing: Vec<String> = p
            .labels
            .iter()
            .filter(|l| !pr.labels.contains(l))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let r = match self.provider {
                Provider::GitHub => github::add_labels(self, pr.number, &missing).await,
                Provider::GitLab => gitlab::add_labels(self, pr.number, &missing).await,
                Provider::Gitea => gitea::add_labels(self, pr.number, &missing).await,
            };
            if let Err(e) = r {
                tracing::warn!(number = pr.number, error = %e, "labels not added");
            }
        }
        if new && !p.reviewers.is_empty() {
            let r = match self.provider {
                Provider::GitHub => github::request_reviewers(self, pr.number, &p.reviewers).await,
                Provider::GitLab => gitlab::request_reviewers(self, pr.number, &p.reviewers).await,
                Provider::Gitea => gitea::request_reviewers(self, pr.number, &p.reviewers).await,
            };
            if let Err(e) = r {
                tracing::warn!(number = pr.number, error = %e, "reviewers not requested");
            }
        }
        if let (true, Some(method)) = (new, &p.auto_merge) {
            let r = match self.provider {
                Provider::GitHub => github::enable_auto_merge(self, pr, method).await,
                Provider::GitLab => gitlab::enable_auto_merge(self, pr.number, method).await,
                Provider::Gitea => gitea::enable_auto_merge(self, pr.number, method).await,
            };
            if let Err(e) = r {
                tracing::warn!(number = pr.number, error = %e, "auto-merge not enabled");
            }
        }
    }

    /// Comments on an open request and closes it.
    pub async fn close(&self, pr: &PullRequest, comment: &str) -> Result<(), ForgeError> {
        match self.provider {
            Provider::GitHub => github::close(self, pr.number, comment).await,
            Provider::GitLab => gitlab::close(self, pr.number, comment).await,
            Provider::Gitea => gitea::close(self, pr.number, comment).await,
        }
    }

    /// The title as sent: GitLab and Gitea have no draft flag on create, a title prefix says it.
    pub fn title(&self, p: &Proposal) -> String {
        let title = crate::sanitize::cap(&p.title, MAX_TITLE);
        match (p.draft, self.provider) {
            (true, Provider::GitLab) if !title.starts_with("Draft: ") => format!("Draft: {title}"),
            (true, Provider::Gitea) if !title.starts_with("WIP: ") => format!("WIP: {title}"),
            _ => title,
        }
    }

    /// The token for this call (an installation token for a GitHub App, exchanged or cached).
    pub(crate) async fn token(&self) -> Result<String, ForgeError> {
        match &self.credentials {
            Credentials::Token(t) => Ok(t.clone()),
            Credentials::GitHubApp(a) => app::installation_token(&self.http, a, Some(&self.repo))
                .await
                .map(|t| t.token),
        }
    }
}

impl Forge {
    /// Calls `path` with `body` and reads the answer as a request with `parse` (the provider's shape).
    pub(crate) async fn call_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
        parse: fn(&serde_json::Value) -> Option<PullRequest>,
    ) -> Result<PullRequest, ForgeError> {
        let a = self.call(method, path, Some(body)).await?;
        parse(&a.body).ok_or_else(|| ForgeError::Transport {
            provider: self.provider.name(),
            url: path.to_string(),
            message: format!(
                "the answer is not a {} as the provider's API describes it",
                self.provider.noun()
            ),
        })
    }

    /// Calls `path` with `body`; the answer is not needed.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(), ForgeError> {
        self.call(method, path, Some(body)).await.map(drop)
    }
}

/// Whether an error is the provider's "a request for this branch already exists".
fn already_exists(provider: Provider, e: &ForgeError) -> bool {
    match (provider, e) {
        (
            Provider::GitHub,
            ForgeError::Api {
                status: 422,
                message,
                ..
            },
        ) => message.contains("already exists"),
        (Provider::GitLab | Provider::Gitea, ForgeError::Api { status: 409, .. }) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_by_name() {
        assert_eq!(Provider::parse("forgejo"), Some(Provider::Gitea));
        assert_eq!(Provider::parse("GitHub"), None);
        assert_eq!(Provider::GitLab.noun(), "merge request");
    }

    #[test]
    fn already_exists_answers() {
        let api = |status, message: &str| ForgeError::Api {
            provider: "x",
            method: "POST",
            path: "/".into(),
            status,
            message: message.into(),
        };
        assert!(already_exists(
            Provider::GitHub,
            &api(
                422,
                "Validation Failed: A pull request already exists for o:b."
            )
        ));
        assert!(!already_exists(
            Provider::GitHub,
            &api(422, "Validation Failed: No commits between main and b")
        ));
        assert!(already_exists(
            Provider::GitLab,
            &api(409, "Another open merge request")
        ));
        assert!(already_exists(
            Provider::Gitea,
            &api(409, "pull request already exists")
        ));
        assert!(!already_exists(Provider::Gitea, &api(422, "same branch")));
    }
}
