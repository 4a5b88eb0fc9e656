//! Gitea's and Forgejo's API (v1) for pull requests: `repoListPullRequests`, `repoCreatePullRequest`,
//! `repoEditPullRequest`, `issueAddLabel`, `repoCreatePullReviewRequests`, `issueCreateComment`,
//! `repoMergePullRequest` (scheduled with `merge_when_checks_succeed`).

use reqwest::Method;
use serde_json::{Value, json};

use super::{Forge, ForgeError, MAX_BODY_TEXT, MAX_PAGES, Proposal, PullRequest, State};

/// Gitea's list page size (its default `MAX_RESPONSE_ITEMS`).
const PAGE: usize = 50;

/// A pull request from its JSON (`PullRequest`).
pub fn parse(v: &Value) -> Option<PullRequest> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let merged = v.get("merged").and_then(Value::as_bool).unwrap_or(false);
    let state = match (v.get("state")?.as_str()?, merged) {
        ("open", _) => State::Open,
        (_, true) => State::Merged,
        _ => State::Closed,
    };
    Some(PullRequest {
        number: v.get("number")?.as_u64()?,
        url: s("html_url"),
        state,
        title: s("title"),
        body: s("body"),
        head: v.pointer("/head/ref")?.as_str()?.to_string(),
        base: v.pointer("/base/ref")?.as_str()?.to_string(),
        node_id: None,
        labels: super::github::names(v.get("labels")),
    })
}

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

/// `PATCH /repos/{o}/{r}/pulls/{index}` with the title and body.
pub async fn edit(
    forge: &Forge,
    index: u64,
    title: &str,
    body: &str,
) -> Result<PullRequest, ForgeError> {
    let path = format!("{}/pulls/{index}", repo_path(forge));
    let b = json!({"title": title, "body": crate::sanitize::cap(body, MAX_BODY_TEXT)});
    forge.call_request(Method::PATCH, &path, &b, parse).await
}

/// `POST /repos/{o}/{r}/issues/{index}/labels` with label names (existing labels of the repository).
pub async fn add_labels(forge: &Forge, index: u64, labels: &[String]) -> Result<(), ForgeError> {
    let path = format!("{}/issues/{index}/labels", repo_path(forge));
    forge
        .send(Method::POST, &path, &json!({ "labels": labels }))
        .await
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

/// Comments and closes.
pub async fn close(forge: &Forge, index: u64, comment: &str) -> Result<(), ForgeError> {
    let path = format!("{}/issues/{index}/comments", repo_path(forge));
    forge
        .send(Method::POST, &path, &json!({ "body": comment }))
        .await?;
    let path = format!("{}/pulls/{index}", repo_path(forge));
    forge
        .send(Method::PATCH, &path, &json!({"state": "closed"}))
        .await
}
