//! Gitea's and Forgejo's API (v1) for pull requests (where it follows GitHub's, GitHub's functions serve): `repoListPullRequests`, `repoCreatePullRequest`,
//! `repoEditPullRequest`, `issueAddLabel`, `repoCreatePullReviewRequests`, `issueCreateComment`,
//! `repoMergePullRequest` (scheduled with `merge_when_checks_succeed`).

use reqwest::Method;
use serde_json::json;

use super::{Forge, ForgeError, MAX_BODY_TEXT, MAX_PAGES, Proposal, PullRequest};

/// Gitea's pull request object, and its edit, label, comment and close calls, follow GitHub's (same paths,
/// same fields): GitHub's code serves both.
pub use super::github::{add_labels, close, edit, parse};

/// Gitea's list page size (its default `MAX_RESPONSE_ITEMS`).
const PAGE: usize = 50;

fn invalid(path: &str) -> ForgeError {
    ForgeError::Transport {
        provider: "gitea",
        url: path.to_string(),
        message: "the answer is not a pull request as Gitea's API describes it".into(),
    }
}

fn repo_path(forge: &Forge) -> String {
    format!("/repos/{}", forge.repo.owner_repo())
}

/// The newest request from `head` into `base` in `state` (`open` or `closed`); the list has no branch
/// filter, so pages are read (newest first) until one matches.
pub async fn find(
    forge: &Forge,
    head: &str,
    base: &str,
    state: &str,
) -> Result<Option<PullRequest>, ForgeError> {
    let mut best: Option<PullRequest> = None;
    for page in 1..=MAX_PAGES {
        let path = format!(
            "{}/pulls?state={state}&sort=newest&limit={PAGE}&page={page}",
            repo_path(forge)
        );
        let a = forge.call(Method::GET, &path, None).await?;
        let list = a.body.as_array().ok_or_else(|| invalid(&path))?;
        for pr in list.iter().filter_map(parse) {
            if pr.head == head
                && pr.base == base
                && best.as_ref().is_none_or(|b| pr.number > b.number)
            {
                best = Some(pr);
            }
        }
        if best.is_some() || list.len() < PAGE {
            break;
        }
    }
    Ok(best)
}

/// `POST /repos/{o}/{r}/pulls`.
pub async fn create(forge: &Forge, p: &Proposal) -> Result<PullRequest, ForgeError> {
    let path = format!("{}/pulls", repo_path(forge));
    let body = json!({
        "head": p.head,
        "base": p.base,
        "title": forge.title(p),
        "body": crate::sanitize::cap(&p.body, MAX_BODY_TEXT),
    });
    forge.call_request(Method::POST, &path, &body, parse).await
}

/// `POST /repos/{o}/{r}/pulls/{index}/requested_reviewers`.
pub async fn request_reviewers(
    forge: &Forge,
    index: u64,
    reviewers: &[String],
) -> Result<(), ForgeError> {
    let path = format!("{}/pulls/{index}/requested_reviewers", repo_path(forge));
    forge
        .send(Method::POST, &path, &json!({ "reviewers": reviewers }))
        .await
}

/// `POST /repos/{o}/{r}/pulls/{index}/merge` with `merge_when_checks_succeed` (Gitea 1.24+, Forgejo 10+).
pub async fn enable_auto_merge(forge: &Forge, index: u64, method: &str) -> Result<(), ForgeError> {
    let path = format!("{}/pulls/{index}/merge", repo_path(forge));
    let body =
        json!({"Do": method, "merge_when_checks_succeed": true, "delete_branch_after_merge": true});
    forge.send(Method::POST, &path, &body).await
}
