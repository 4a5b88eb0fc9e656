//! GitHub's REST API (v3, version 2022-11-28) for pull requests, and GraphQL for auto-merge (which REST does
//! not have). Operations: `pulls/list`, `pulls/create`, `pulls/update`, `issues/add-labels`,
//! `pulls/request-reviewers`, `issues/create-comment`; `enablePullRequestAutoMerge`.

use reqwest::Method;
use serde_json::{Value, json};

use super::repo::encode;
use super::{Forge, ForgeError, MAX_BODY_TEXT, MAX_PAGES, Proposal, PullRequest, State};

/// A pull request from its JSON (`pull-request` or `pull-request-simple`).
pub fn parse(v: &Value) -> Option<PullRequest> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let merged = v.get("merged").and_then(Value::as_bool).unwrap_or(false)
        || v.get("merged_at").is_some_and(|m| !m.is_null());
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
        node_id: v.get("node_id").and_then(Value::as_str).map(str::to_string),
        labels: names(v.get("labels")),
    })
}

/// The `name`s of a list of labels.
pub(crate) fn names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| l.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(path: &str) -> ForgeError {
    ForgeError::Transport {
        provider: "github",
        url: path.to_string(),
        message: "the answer is not a pull request as GitHub's API describes it".into(),
    }
}

fn repo_path(forge: &Forge) -> String {
    format!("/repos/{}", forge.repo.owner_repo())
}

/// The newest request from `head` into `base` in `state` (`open` or `closed`).
pub async fn find(
    forge: &Forge,
    head: &str,
    base: &str,
    state: &str,
) -> Result<Option<PullRequest>, ForgeError> {
    let head_filter = encode(&format!("{}:{head}", forge.repo.owner()));
    for page in 1..=MAX_PAGES {
        let path = format!(
            "{}/pulls?state={state}&head={head_filter}&base={}&sort=created&direction=desc&per_page=100&page={page}",
            repo_path(forge),
            encode(base)
        );
        let a = forge.call(Method::GET, &path, None).await?;
        let list = a.body.as_array().ok_or_else(|| invalid(&path))?;
        // The filter is the server's; the branch is checked here too.
        if let Some(pr) = list
            .iter()
            .filter_map(parse)
            .find(|p| p.head == head && p.base == base)
        {
            return Ok(Some(pr));
        }
        if list.len() < 100 {
            break;
        }
    }
    Ok(None)
}

/// `POST /repos/{o}/{r}/pulls`.
pub async fn create(forge: &Forge, p: &Proposal) -> Result<PullRequest, ForgeError> {
    let path = format!("{}/pulls", repo_path(forge));
    let body = json!({
        "title": forge.title(p),
        "head": p.head,
        "base": p.base,
        "body": crate::sanitize::cap(&p.body, MAX_BODY_TEXT),
        "draft": p.draft,
        "maintainer_can_modify": false,
    });
    forge.call_request(Method::POST, &path, &body, parse).await
}

/// `PATCH /repos/{o}/{r}/pulls/{n}` with the title and body.
pub async fn edit(
    forge: &Forge,
    number: u64,
    title: &str,
    body: &str,
) -> Result<PullRequest, ForgeError> {
    let path = format!("{}/pulls/{number}", repo_path(forge));
    let b = json!({"title": title, "body": crate::sanitize::cap(body, MAX_BODY_TEXT)});
    forge.call_request(Method::PATCH, &path, &b, parse).await
}

/// `POST /repos/{o}/{r}/issues/{n}/labels`.
pub async fn add_labels(forge: &Forge, number: u64, labels: &[String]) -> Result<(), ForgeError> {
    let path = format!("{}/issues/{number}/labels", repo_path(forge));
    forge
        .send(Method::POST, &path, &json!({ "labels": labels }))
        .await
}

/// `POST /repos/{o}/{r}/pulls/{n}/requested_reviewers` (a `org/team` name is a team).
pub async fn request_reviewers(
    forge: &Forge,
    number: u64,
    reviewers: &[String],
) -> Result<(), ForgeError> {
    let (teams, users): (Vec<&String>, Vec<&String>) =
        reviewers.iter().partition(|r| r.contains('/'));
    let teams: Vec<&str> = teams.iter().filter_map(|t| t.split('/').nth(1)).collect();
    let path = format!("{}/pulls/{number}/requested_reviewers", repo_path(forge));
    forge
        .send(
            Method::POST,
            &path,
            &json!({"reviewers": users, "team_reviewers": teams}),
        )
        .await
}

/// GraphQL `enablePullRequestAutoMerge` (the repository must allow auto-merge).
pub async fn enable_auto_merge(
    forge: &Forge,
    pr: &PullRequest,
    method: &str,
) -> Result<(), ForgeError> {
    let Some(node) = &pr.node_id else {
        return Err(invalid("pull request without node_id"));
    };
    let method = method.to_ascii_uppercase();
    let query = "mutation($id: ID!, $method: PullRequestMergeMethod!) { enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method}) { clientMutationId } }";
    let body = json!({"query": query, "variables": {"id": node, "method": method}});
    let a = forge
        .call(Method::POST, &graphql_path(forge), Some(&body))
        .await?;
    match a.body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => Err(ForgeError::Api {
            provider: "github",
            method: "POST",
            path: "graphql".into(),
            status: 200,
            message: super::http::error_message(
                serde_json::to_string(&json!({"errors": errors}))
                    .unwrap_or_default()
                    .as_bytes(),
            ),
        }),
        _ => Ok(()),
    }
}

/// GraphQL's path relative to the REST URL: `/graphql` on api.github.com, `../graphql` (`/api/graphql`) on
/// GitHub Enterprise Server.
fn graphql_path(forge: &Forge) -> String {
    if forge.api_url.ends_with("/api/v3") {
        "/../graphql".into()
    } else {
        "/graphql".into()
    }
}

/// Comments and closes.
pub async fn close(forge: &Forge, number: u64, comment: &str) -> Result<(), ForgeError> {
    let path = format!("{}/issues/{number}/comments", repo_path(forge));
    forge
        .send(Method::POST, &path, &json!({ "body": comment }))
        .await?;
    let path = format!("{}/pulls/{number}", repo_path(forge));
    forge
        .send(Method::PATCH, &path, &json!({"state": "closed"}))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_requests_from_list_and_object() {
        let v = json!({"number": 7, "html_url": "https://github.com/o/r/pull/7", "state": "closed",
            "merged_at": "2026-01-01T00:00:00Z", "title": "t", "body": null,
            "head": {"ref": "b"}, "base": {"ref": "main"}, "node_id": "PR_x", "labels": [{"name": "auto"}]});
        let pr = parse(&v).unwrap();
        assert_eq!(
            (pr.number, pr.state, pr.body.as_str()),
            (7, State::Merged, "")
        );
        assert_eq!(pr.labels, ["auto"]);
        let v = json!({"number": 8, "state": "closed", "merged": false, "head": {"ref": "b"}, "base": {"ref": "main"}});
        assert_eq!(parse(&v).unwrap().state, State::Closed);
        assert!(parse(&json!({"number": 1})).is_none());
    }
}
