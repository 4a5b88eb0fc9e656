//! tagpilot extension of ImageUpdateAutomation: `spec.pullRequest` proposes each update as a pull request
//! (GitHub, Gitea/Forgejo) or merge request (GitLab) instead of pushing to the base branch, and
//! `status.pullRequests` records the requests opened.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::LocalObjectReference;

/// tagpilot extension: propose updates for review as pull/merge requests. Off unless set; the commit goes to
/// the request's own branch, rebuilt from the base at each run, and never to the base.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestSpec {
    /// `github`, `gitlab`, `gitea` (or `forgejo`); inferred for github.com, *.ghe.com, gitlab.com and
    /// codeberg.org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["github", "gitlab", "gitea", "forgejo"]))]
    pub provider: Option<String>,
    /// The API URL of a self-hosted server (`https://HOST/api/v3`, `/api/v4`, `/api/v1`); derived from the
    /// GitRepository's URL when unset.
    #[serde(default, rename = "apiURL", skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// A Secret with `token` (or `password`), or a GitHub App (`githubAppID`, `githubAppPrivateKey`,
    /// optional `githubAppInstallationID` and `githubAppBaseURL`); default: the GitRepository's `secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// The branch the request merges into (default: the checkout branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The head branch, a Go template with `.AutomationObject` (and `.Policy` with `perPolicy`), each with
    /// `Namespace` and `Name`; default `tagpilot/<namespace>/<name>` (plus `/<policy>` with `perPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// One request per ImagePolicy (each image on its own branch) instead of one for the automation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_policy: Option<bool>,
    /// The title, a template with the commit message's data (default: the message's first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The body, a template with the commit message's data (default: the rest of the message, or the
    /// images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Labels added to the request (at most 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Reviewers requested on a new request: user names (`org/team` for a GitHub team; at most 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewers: Option<Vec<String>>,
    /// Open as a draft (GitHub's flag; a `Draft: ` or `WIP: ` title on GitLab and Gitea).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<bool>,
    /// Merge when the checks pass: `merge`, `squash` or `rebase` (GitHub GraphQL, GitLab 17.11+, Gitea
    /// 1.24+ / Forgejo 10+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["merge", "squash", "rebase"]))]
    pub auto_merge: Option<String>,
}

/// tagpilot extension: a request opened by the automation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestRef {
    /// The head branch.
    pub branch: String,
    /// The number (GitLab's `iid`).
    pub number: u64,
    /// The web page.
    pub url: String,
    /// `open`, `closed` or `merged`, when last seen.
    pub state: String,
}
