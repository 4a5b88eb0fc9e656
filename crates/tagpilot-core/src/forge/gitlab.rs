//! GitLab's REST API (v4) for merge requests: list, create, update (`add_labels`, `reviewer_ids`), notes,
//! close (`state_event`), and auto-merge (`PUT .../merge` with `auto_merge`).

use reqwest::Method;
use serde_json::{Value, json};

use super::repo::encode;
use super::{Forge, ForgeError, MAX_BODY_TEXT, MAX_PAGES, Proposal, PullRequest, State};

/// A merge request from its JSON (`MergeRequestBasic` or `MergeRequest`).
pub fn parse(v: &Value) -> Option<PullRequest> {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let state = match v.get("state")?.as_str()? {
        "opened" => State::Open,
        "merged" => State::Merged,
        _ => State::Closed,
    };
    Some(PullRequest {
        number: v.get("iid")?.as_u64()?,
        url: s("web_url"),
        state,
        title: s("title"),
        body: s("description"),
        head: v.get("source_branch")?.as_str()?.to_string(),
        base: v.get("target_branch")?.as_str()?.to_string(),
        node_id: None,
        labels: v
            .get("labels")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|l| {
                        l.as_str()
                            .or_else(|| l.get("name").and_then(Value::as_str))
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn invalid(path: &str) -> ForgeError {
    ForgeError::Transport {
        provider: "gitlab",
        url: path.to_string(),
        message: "the answer is not a merge request as GitLab's API describes it".into(),
    }
}

fn project(forge: &Forge) -> String {
    format!("/projects/{}", forge.repo.project_id())
}

async fn list(
    forge: &Forge,
    head: &str,
    base: &str,
    state: Option<&str>,
) -> Result<Vec<PullRequest>, ForgeError> {
    let mut out = Vec::new();
    for page in 1..=MAX_PAGES {
        let state = state.map(|s| format!("state={s}&")).unwrap_or_default();
        let path = format!(
            "{}/merge_requests?{state}source_branch={}&target_branch={}&order_by=created_at&sort=desc&per_page=100&page={page}",
            project(forge),
            encode(head),
            encode(base)
        );
        let a = forge.call(Method::GET, &path, None).await?;
        let items = a.body.as_array().ok_or_else(|| invalid(&path))?;
        out.extend(
            items
                .iter()
                .filter_map(parse)
                .filter(|p| p.head == head && p.base == base),
        );
        if items.len() < 100 || !out.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// The newest merge request from `head` into `base` in `state` (`opened`).
pub async fn find(
    forge: &Forge,
    head: &str,
    base: &str,
    state: &str,
) -> Result<Option<PullRequest>, ForgeError> {
    Ok(list(forge, head, base, Some(state))
        .await?
        .into_iter()
        .next())
}

/// The newest closed or merged merge request from `head` into `base`.
pub async fn find_ended(
    forge: &Forge,
    head: &str,
    base: &str,
) -> Result<Option<PullRequest>, ForgeError> {
    let mut ended: Vec<PullRequest> = Vec::new();
    for state in ["closed", "merged"] {
        ended.extend(list(forge, head, base, Some(state)).await?);
    }
    // iids grow: the newest is the greatest.
    Ok(ended.into_iter().max_by_key(|p| p.number))
}

/// `POST /projects/{id}/merge_requests`.
pub async fn create(forge: &Forge, p: &Proposal) -> Result<PullRequest, ForgeError> {
    let path = format!("{}/merge_requests", project(forge));
    let mut body = json!({
        "source_branch": p.head,
        "target_branch": p.base,
        "title": forge.title(p),
        "description": crate::sanitize::cap(&p.body, MAX_BODY_TEXT),
        "remove_source_branch": true,
    });
    if !p.labels.is_empty() {
        body["labels"] = Value::String(p.labels.join(","));
    }
    forge.call_request(Method::POST, &path, &body, parse).await
}

/// `PUT /projects/{id}/merge_requests/{iid}` with the title and description.
pub async fn edit(
    forge: &Forge,
    iid: u64,
    title: &str,
    body: &str,
) -> Result<PullRequest, ForgeError> {
    let path = format!("{}/merge_requests/{iid}", project(forge));
    let b = json!({"title": title, "description": crate::sanitize::cap(body, MAX_BODY_TEXT)});
    forge.call_request(Method::PUT, &path, &b, parse).await
}

/// `PUT ... {add_labels}` (GitLab creates missing labels).
pub async fn add_labels(forge: &Forge, iid: u64, labels: &[String]) -> Result<(), ForgeError> {
    let path = format!("{}/merge_requests/{iid}", project(forge));
    forge
        .send(Method::PUT, &path, &json!({"add_labels": labels.join(",")}))
        .await
}

/// Reviewers by user name: each looked up (`GET /users?username=`), then `PUT ... {reviewer_ids}`.
pub async fn request_reviewers(
    forge: &Forge,
    iid: u64,
    reviewers: &[String],
) -> Result<(), ForgeError> {
    let mut ids = Vec::new();
    for name in reviewers.iter().take(20) {
        let a = forge
            .call(
                Method::GET,
                &format!("/users?username={}", encode(name)),
                None,
            )
            .await?;
        match a
            .body
            .as_array()
            .and_then(|l| l.first())
            .and_then(|u| u.get("id"))
        {
            Some(id) => ids.push(id.clone()),
            None => tracing::warn!(reviewer = %name, "no GitLab user of this name"),
        }
    }
    let path = format!("{}/merge_requests/{iid}", project(forge));
    forge
        .send(Method::PUT, &path, &json!({ "reviewer_ids": ids }))
        .await
}

/// `PUT .../merge {auto_merge: true}` (GitLab 17.11+; merges when the pipeline succeeds), squashing when
/// asked for.
pub async fn enable_auto_merge(forge: &Forge, iid: u64, method: &str) -> Result<(), ForgeError> {
    let path = format!("{}/merge_requests/{iid}/merge", project(forge));
    let body = json!({"auto_merge": true, "squash": method == "squash", "should_remove_source_branch": true});
    forge.send(Method::PUT, &path, &body).await
}

/// A note, then `state_event=close`.
pub async fn close(forge: &Forge, iid: u64, comment: &str) -> Result<(), ForgeError> {
    let notes = format!("{}/merge_requests/{iid}/notes", project(forge));
    forge
        .send(Method::POST, &notes, &json!({ "body": comment }))
        .await?;
    let path = format!("{}/merge_requests/{iid}", project(forge));
    forge
        .send(Method::PUT, &path, &json!({"state_event": "close"}))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_requests_from_json() {
        let v = json!({"iid": 3, "web_url": "https://gitlab.com/g/p/-/merge_requests/3", "state": "merged",
            "title": "t", "description": "d", "source_branch": "b", "target_branch": "main", "labels": ["x"]});
        let pr = parse(&v).unwrap();
        assert_eq!(
            (pr.number, pr.state, pr.labels.clone()),
            (3, State::Merged, vec!["x".to_string()])
        );
        assert_eq!(
            parse(
                &json!({"iid": 3, "state": "locked", "source_branch": "b", "target_branch": "m"})
            )
            .unwrap()
            .state,
            State::Closed
        );
    }
}
