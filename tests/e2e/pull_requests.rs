//! Pull requests (`spec.pullRequest`, tagpilot extension) through `tagpilot run` against the real registry
//! and git server, with a stateful stand-in of each provider's API (GitHub's behind Prism validating every
//! call against GitHub's OpenAPI description): open, update instead of duplicate (also with an empty state),
//! a newer image replacing the commit, closed and merged requests, a change already on the base, auth
//! failures and rate limits, per-policy branches, GitHub App tokens for the API and for git.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tagpilot_testinfra::forge::{self, ForgeStandIn, Refusal, Validator};
use tagpilot_testinfra::{Flavour, Infra, unique_name};

use crate::automation::{GUIDE_DEPLOYMENT, head, seed_repo};
use crate::cli_run::run;

const TOKEN: &str = "pat-tagpilot-standin-0001";
const DEPLOYMENT: &str = "clusters/my-cluster/podinfo-deployment.yaml";

/// One automation's world: an image with tags, a seeded git repository, the manifests, a state directory.
pub struct World {
    image: String,
    repo_path: String,
    name: String,
    dir: tempfile::TempDir,
}

impl World {
    pub async fn new(tags: &[&str]) -> World {
        let git = Infra::get().git();
        let reg = Infra::get().registry(Flavour::Plain);
        let repo_path = format!("{}/podinfo", unique_name("pr"));
        let image = reg.image(&repo_path);
        reg.push_tags(&repo_path, tags).await.unwrap();
        let name = seed_repo(
            &git,
            &[(
                DEPLOYMENT,
                &GUIDE_DEPLOYMENT.replace("ghcr.io/stefanprodan/podinfo", &image),
            )],
        );
        World {
            image,
            repo_path,
            name,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn repo(&self) -> String {
        format!("git/{}", self.name)
    }

    pub async fn push_tags(&self, tags: &[&str]) {
        Infra::get()
            .registry(Flavour::Plain)
            .push_tags(&self.repo_path, tags)
            .await
            .unwrap();
    }

    /// Writes the manifests: repository, semver policy `5.0.x`, GitRepository (+ Secret with git
    /// credentials and `secret` extra keys), and the automation with `pull_request` as its spec.pullRequest.
    pub fn write(
        &self,
        pull_request: Value,
        secret: &[(&str, &str)],
        source_provider: Option<&str>,
    ) {
        let git = Infra::get().git();
        let dir = self.manifests();
        std::fs::create_dir_all(&dir).unwrap();
        let mut data = serde_json::Map::new();
        if source_provider.is_none() {
            data.insert("username".into(), json!(git.username));
            data.insert("password".into(), json!(git.password));
        }
        for (k, v) in secret {
            data.insert(k.to_string(), json!(v));
        }
        let mut source_spec = json!({"interval": "1m", "url": git.http_url(&self.name), "ref": {"branch": "main"},
            "secretRef": {"name": "flux-system"}});
        if let Some(p) = source_provider {
            source_spec["provider"] = json!(p);
        }
        let objects = [
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
                "metadata": {"name": "podinfo", "namespace": "flux-system"},
                "spec": {"image": self.image, "interval": "1m"}}),
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                "metadata": {"name": "podinfo", "namespace": "flux-system"},
                "spec": {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"semver": {"range": "5.0.x"}}}}),
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "flux-system", "namespace": "flux-system"}, "spec": source_spec}),
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "flux-system", "namespace": "flux-system"}, "stringData": data}),
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                "metadata": {"name": "flux-system", "namespace": "flux-system"},
                "spec": {"interval": "1m", "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                    "git": {"checkout": {"ref": {"branch": "main"}},
                        "commit": {"author": {"name": "fluxcdbot", "email": "fluxcdbot@users.noreply.github.com"},
                            "messageTemplate": "Update podinfo\n\n{{range .Changed.Changes}}- {{.OldValue}} -> {{.NewValue}}\n{{end}}"}},
                    "update": {"path": "./clusters/my-cluster", "strategy": "Setters"},
                    "pullRequest": pull_request}}),
        ];
        let text: Vec<String> = objects
            .iter()
            .map(|o| serde_json::to_string(o).unwrap())
            .collect();
        std::fs::write(dir.join("all.yaml"), text.join("\n---\n")).unwrap();
    }

    fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `tagpilot run --once`; the automation's outcome.
    pub fn run(&self) -> Value {
        self.run_with(&[])
    }

    /// `tagpilot run --once` with more arguments; the automation's outcome.
    pub fn run_with(&self, extra: &[&str]) -> Value {
        let m = self.manifests();
        let s = self.state();
        let mut args = vec![
            "--manifests",
            m.to_str().unwrap(),
            "--state-dir",
            s.to_str().unwrap(),
            "--once",
        ];
        args.extend_from_slice(extra);
        let (_, outcomes, stderr) = run(&args, &[]);
        outcomes
            .into_iter()
            .find(|o| o["kind"] == "ImageUpdateAutomation")
            .unwrap_or_else(|| panic!("no automation outcome; stderr: {stderr}"))
    }

    pub fn head(&self, branch: &str) -> Option<git2::Oid> {
        head(&Infra::get().git(), &self.name, branch)
    }

    /// The deployment's marked line on `branch`.
    pub fn image_on(&self, branch: &str) -> String {
        let git = Infra::get().git();
        let repo =
            git2::Repository::open_bare(git.repos_dir.join(format!("{}.git", self.name))).unwrap();
        let commit = repo
            .find_reference(&format!("refs/heads/{branch}"))
            .unwrap()
            .peel_to_commit()
            .unwrap();
        let blob = commit
            .tree()
            .unwrap()
            .get_path(Path::new(DEPLOYMENT))
            .unwrap()
            .to_object(&repo)
            .unwrap()
            .peel_to_blob()
            .unwrap();
        let text = String::from_utf8(blob.content().to_vec()).unwrap();
        let line = text.lines().find(|l| l.contains("$imagepolicy")).unwrap();
        line.split_whitespace()
            .find(|w| w.contains(&self.image))
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    }

    /// Commits `tag` onto main directly (someone applied the change by hand).
    fn set_main_to(&self, tag: &str) {
        let old = format!("{}:{}", self.image, self.image_on("main"));
        let new = format!("{}:{tag}", self.image);
        self.commit_to_main(|dir| {
            let p = dir.join(DEPLOYMENT);
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, text.replace(&old, &new)).unwrap();
        });
    }

    /// Commits a change made by `edit` (in a clone's working directory) onto main, as a person would.
    fn commit_to_main(&self, edit: impl FnOnce(&Path)) {
        let git = Infra::get().git();
        let tmp = tempfile::tempdir().unwrap();
        let auth = tagpilot_core::git::GitAuth {
            username: Some(git.username.clone()),
            password: Some(git.password.clone()),
            ..Default::default()
        };
        let c = tagpilot_core::git::clone_branch(
            &git.http_url(&self.name),
            tmp.path(),
            Some("main"),
            &auth,
        )
        .unwrap();
        edit(c.workdir());
        let sig = git2::Signature::now("human", "human@example.com").unwrap();
        tagpilot_core::git::commit_all(&c, &sig, "by hand")
            .unwrap()
            .unwrap();
        tagpilot_core::git::push(
            &c,
            &auth,
            &tagpilot_core::git::PushSpec {
                branch: "main".into(),
                ..Default::default()
            },
        )
        .unwrap();
    }
}

const HEAD: &str = "tagpilot/flux-system/flux-system";

/// The life of one automation's requests on `provider` at `api_url`.
async fn lifecycle(stand_in: &ForgeStandIn, provider: &str, api_url: &str, direct_url: &str) {
    let w = World::new(&["5.0.0", "5.0.1", "5.0.3"]).await;
    let seed = w.head("main");
    let spec = json!({"provider": provider, "apiURL": api_url, "labels": ["automated", "images"],
        "reviewers": ["alice"]});
    w.write(spec.clone(), &[("token", TOKEN)], None);

    // 1. Opened: the head branch holds 5.0.3 on top of main; main untouched.
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    let msg = o["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("to branch '{HEAD}'")) && msg.contains("opened "),
        "{msg}"
    );
    assert_eq!(w.head("main"), seed, "main untouched");
    assert_eq!(w.image_on(HEAD), "5.0.3");
    let prs = stand_in.prs(&w.repo());
    assert_eq!(prs.len(), 1, "{prs:?}");
    let pr = &prs[0];
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str(), pr.state.as_str()),
        (HEAD, "main", "open")
    );
    assert_eq!(pr.title, "Update podinfo");
    assert!(
        pr.body.contains(":5.0.0 -> ") && pr.body.contains(":5.0.3"),
        "{}",
        pr.body
    );
    assert_eq!(pr.labels, ["automated", "images"]);
    assert_eq!(pr.reviewers.len(), 1);
    assert_eq!(o["pullRequests"][0]["number"], pr.number);
    assert_eq!(o["pullRequests"][0]["branch"], HEAD);
    let first_head = w.head(HEAD);

    // 2. Again with an empty state (a restarted controller): the same request found, nothing pushed.
    std::fs::remove_dir_all(w.state()).unwrap();
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert!(o["pushedCommit"].is_null(), "{o}");
    assert!(
        o["message"]
            .as_str()
            .unwrap()
            .contains(&format!("kept {}", noun(provider))),
        "{o}"
    );
    assert_eq!(stand_in.prs(&w.repo()).len(), 1, "never a second request");
    assert_eq!(
        w.head(HEAD),
        first_head,
        "the branch already holds the change"
    );

    // 3. A newer image: the commit is replaced (rebuilt on main), the same request updated.
    w.push_tags(&["5.0.4"]).await;
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert!(o["message"].as_str().unwrap().contains("updated "), "{o}");
    assert_eq!(w.image_on(HEAD), "5.0.4");
    let git = Infra::get().git();
    let bare = git2::Repository::open_bare(git.repos_dir.join(format!("{}.git", w.name))).unwrap();
    let tip = bare.find_commit(w.head(HEAD).unwrap()).unwrap();
    assert_eq!(
        tip.parent_ids().collect::<Vec<_>>(),
        vec![seed.unwrap()],
        "rebuilt from main"
    );
    let prs = stand_in.prs(&w.repo());
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert!(prs[0].body.contains(":5.0.4"), "{}", prs[0].body);

    // 4. Closed without merging: not opened again for the same image; a different one opens a new request.
    stand_in.close(&w.repo(), prs[0].number);
    std::fs::remove_dir_all(w.state()).unwrap();
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert!(
        o["message"]
            .as_str()
            .unwrap()
            .contains("closed without merging"),
        "{o}"
    );
    assert_eq!(stand_in.prs(&w.repo()).len(), 1, "not reopened");
    w.push_tags(&["5.0.5"]).await;
    let o = w.run();
    assert!(o["message"].as_str().unwrap().contains("opened "), "{o}");
    let prs = stand_in.prs(&w.repo());
    assert_eq!(prs.len(), 2, "{prs:?}");
    let second = prs.iter().find(|p| p.state == "open").unwrap().clone();
    assert_eq!(w.image_on(HEAD), "5.0.5");

    // 5. Merged: main has the change, nothing more to do; the next image starts from the new main.
    stand_in.merge(&w.repo(), second.number);
    assert_eq!(w.image_on("main"), "5.0.5");
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert_eq!(o["message"], "repository up-to-date", "{o}");
    assert_eq!(stand_in.prs(&w.repo()).len(), 2);
    w.push_tags(&["5.0.6"]).await;
    let o = w.run();
    assert!(o["message"].as_str().unwrap().contains("opened "), "{o}");
    let tip = bare.find_commit(w.head(HEAD).unwrap()).unwrap();
    assert_eq!(
        tip.parent_ids().collect::<Vec<_>>(),
        vec![w.head("main").unwrap()]
    );
    let third = stand_in
        .prs(&w.repo())
        .into_iter()
        .find(|p| p.state == "open")
        .unwrap();

    // 6. The change applied on main by hand: the open request is closed with a comment.
    w.set_main_to("5.0.6");
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert!(
        o["message"].as_str().unwrap().contains("already on 'main'"),
        "{o}"
    );
    let closed = stand_in
        .prs(&w.repo())
        .into_iter()
        .find(|p| p.number == third.number)
        .unwrap();
    assert_eq!(closed.state, "closed");
    assert!(
        closed.comments[0].contains("already on `main`"),
        "{:?}",
        closed.comments
    );

    // 7. A refused token: Ready=False with the provider's message, the token never printed. (Direct: GitHub
    // answers 401 on every endpoint, but its description declares 401 on none of the pulls operations.)
    let mut direct = spec.clone();
    direct["apiURL"] = json!(direct_url);
    w.write(direct, &[("token", "wrong-token-0123456789")], None);
    w.push_tags(&["5.0.7"]).await;
    let o = w.run();
    assert_eq!(o["ready"], false, "{o}");
    assert_eq!(o["reason"], "PullRequestFailed", "{o}");
    let msg = o["message"].as_str().unwrap();
    assert!(msg.contains("HTTP 401"), "{msg}");
    assert!(!msg.contains("wrong-token"), "{msg}");

    // 8. A rate limit on create: Ready=False naming the limit and when it resets; the next run opens.
    w.write(spec, &[("token", TOKEN)], None);
    let reset = jiff::Timestamp::now().as_second() + 90;
    let (matching, status, headers, body) = rate_limited(provider, reset);
    stand_in.refuse(Refusal {
        matching,
        status,
        headers,
        body,
        times: 1,
    });
    let o = w.run();
    assert_eq!(o["ready"], false, "{o}");
    let msg = o["message"].as_str().unwrap();
    assert!(
        msg.contains("rate limit") && msg.contains("retrying in"),
        "{msg}"
    );
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert!(o["message"].as_str().unwrap().contains("opened "), "{o}");
    assert_eq!(
        stand_in
            .prs(&w.repo())
            .iter()
            .filter(|p| p.state == "open")
            .count(),
        1
    );
}

fn noun(provider: &str) -> &'static str {
    if provider == "gitlab" {
        "merge request"
    } else {
        "pull request"
    }
}

/// A provider's rate-limit answer to a create: (request match, status, headers, body).
fn rate_limited(provider: &str, reset: i64) -> (String, u16, Vec<(String, String)>, Value) {
    match provider {
        // GitHub: 403 with the primary limit's headers (a status pulls/create declares).
        "github" => (
            "POST /repos/".into(),
            403,
            vec![
                ("x-ratelimit-limit".into(), "5000".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-reset".into(), reset.to_string()),
                ("x-ratelimit-resource".into(), "core".into()),
            ],
            json!({"message": "API rate limit exceeded for installation ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}),
        ),
        "gitlab" => (
            "POST /api/v4/projects/".into(),
            429,
            vec![
                ("retry-after".into(), "90".into()),
                ("ratelimit-reset".into(), reset.to_string()),
            ],
            json!({"message": "Retry later"}),
        ),
        _ => (
            "POST /api/v1/repos/".into(),
            429,
            vec![("retry-after".into(), "90".into())],
            json!({"message": "rate limit exceeded", "url": ""}),
        ),
    }
}

fn repos_dir() -> PathBuf {
    Infra::get().git().repos_dir
}

#[tokio::test(flavor = "multi_thread")]
async fn github_pull_requests_through_the_validated_api() {
    let stand_in = ForgeStandIn::start(forge::Flavour::GitHub, &repos_dir(), &[TOKEN]).await;
    let validator = Validator::start(&stand_in.url);
    lifecycle(&stand_in, "github", &validator.url, &stand_in.url).await;
    assert!(
        validator.violations().is_empty(),
        "{:#?}",
        validator.violations()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_merge_requests() {
    let stand_in = ForgeStandIn::start(forge::Flavour::GitLab, &repos_dir(), &[TOKEN]).await;
    lifecycle(
        &stand_in,
        "gitlab",
        &stand_in.api_url(),
        &stand_in.api_url(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_pull_requests() {
    let stand_in = ForgeStandIn::start(forge::Flavour::Gitea, &repos_dir(), &[TOKEN]).await;
    lifecycle(&stand_in, "gitea", &stand_in.api_url(), &stand_in.api_url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn per_policy_branches_draft_and_auto_merge() {
    let stand_in = ForgeStandIn::start(forge::Flavour::Gitea, &repos_dir(), &[TOKEN]).await;
    let w = World::new(&["5.0.0", "5.0.2"]).await;
    w.write(
        json!({"provider": "gitea", "apiURL": stand_in.api_url(), "perPolicy": true, "draft": true,
            "autoMerge": "squash", "title": "{{range .Changed.Changes}}Bump to {{.NewValue}}{{end}}"}),
        &[("token", TOKEN)],
        None,
    );
    // A second image, with its own policy and marked file: each policy gets its own branch and request.
    let reg = Infra::get().registry(Flavour::Plain);
    let sidecar_path = format!("{}/sidecar", unique_name("pr"));
    let sidecar = reg.image(&sidecar_path);
    reg.push_tags(&sidecar_path, &["1.0.0", "1.1.0"])
        .await
        .unwrap();
    let marked =
        format!("image: {sidecar}:1.0.0 # {{\"$imagepolicy\": \"flux-system:sidecar\"}}\n");
    w.commit_to_main(|dir| {
        std::fs::write(dir.join("clusters/my-cluster/sidecar.yaml"), &marked).unwrap()
    });
    let second = [
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": "sidecar", "namespace": "flux-system"},
            "spec": {"image": sidecar, "interval": "1m"}}),
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "sidecar", "namespace": "flux-system"},
            "spec": {"imageRepositoryRef": {"name": "sidecar"}, "policy": {"semver": {"range": "1.x"}}}}),
    ];
    let text: Vec<String> = second.iter().map(|o| o.to_string()).collect();
    std::fs::write(w.manifests().join("sidecar.yaml"), text.join("\n---\n")).unwrap();
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    let mut prs = stand_in.prs(&w.repo());
    prs.sort_by(|a, b| a.head.cmp(&b.head));
    assert_eq!(prs.len(), 2, "{prs:?}");
    assert_eq!(prs[1].head, format!("{HEAD}/sidecar"));
    assert!(prs[1].title.ends_with(":1.1.0"), "{}", prs[1].title);
    assert_eq!(o["pullRequests"].as_array().map(Vec::len), Some(2), "{o}");
    assert_eq!(prs[0].head, format!("{HEAD}/podinfo"));
    assert!(
        prs[0].title.starts_with("WIP: Bump to "),
        "{}",
        prs[0].title
    );
    assert!(prs[0].title.ends_with(":5.0.2"), "{}", prs[0].title);
    assert_eq!(prs[0].auto_merge.as_deref(), Some("squash"));
    // A bad template stalls naming the field, before any clone.
    w.write(
        json!({"provider": "gitea", "apiURL": stand_in.api_url(), "branch": "{{.Nope"}),
        &[("token", TOKEN)],
        None,
    );
    let o = w.run();
    assert_eq!(o["ready"], false, "{o}");
    assert!(
        o["message"]
            .as_str()
            .unwrap()
            .contains("spec.pullRequest.branch"),
        "{o}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_github_app_authenticates_the_api_and_git() {
    let infra = Infra::get();
    let stand_in = ForgeStandIn::start(forge::Flavour::GitHub, &repos_dir(), &[]).await;
    let (pem, public) = forge::app_key();
    stand_in.add_app("4242", public, 77);
    // The git server knows the installation token as x-access-token's password.
    stand_in.set_fixed_token(infra.var("GIT_APP_TOKEN"));
    let validator = Validator::start(&stand_in.url);
    let w = World::new(&["5.0.0", "5.0.3"]).await;
    let app_secret = [
        ("githubAppID", "4242"),
        ("githubAppPrivateKey", pem.as_str()),
        ("githubAppBaseURL", validator.url.as_str()),
    ];
    // No installation ID: looked up from the repository; one exchange serves git and the API.
    w.write(
        json!({"provider": "github", "apiURL": validator.url}),
        &app_secret,
        Some("github"),
    );
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert_eq!(stand_in.prs(&w.repo()).len(), 1);
    assert_eq!(stand_in.exchanges(), 1, "{:?}", stand_in.requests());
    assert!(
        stand_in
            .requests()
            .iter()
            .any(|r| r.starts_with(&format!("GET /repos/git/{}/installation", w.name)))
    );
    // Tokens that expire within five minutes are exchanged again at each use.
    stand_in.set_token_lifetime(Duration::from_secs(240));
    std::fs::remove_dir_all(w.state()).unwrap();
    let o = w.run();
    assert_eq!(o["ready"], true, "{o}");
    assert_eq!(
        stand_in.exchanges(),
        3,
        "one for git, one again for the API"
    );
    // A key the provider does not know: Ready=False naming the app's failure, no key in the message.
    let (other_pem, _) = forge::app_key();
    let bad_secret = [
        ("githubAppID", "4242"),
        ("githubAppPrivateKey", other_pem.as_str()),
        ("githubAppBaseURL", validator.url.as_str()),
        ("githubAppInstallationID", "77"),
    ];
    w.write(
        json!({"provider": "github", "apiURL": validator.url}),
        &bad_secret,
        Some("github"),
    );
    std::fs::remove_dir_all(w.state()).unwrap();
    let o = w.run();
    assert_eq!(o["ready"], false, "{o}");
    let msg = o["message"].as_str().unwrap();
    assert!(
        msg.contains("HTTP 401") && msg.contains("provider github"),
        "{msg}"
    );
    assert!(!msg.contains("PRIVATE KEY"), "{msg}");
    assert!(
        validator.violations().is_empty(),
        "{:#?}",
        validator.violations()
    );
}

/// The controller on the real API server: a request opened and recorded in the status and the push event;
/// a restarted controller (empty cache) updates that request for a newer image instead of opening another.
#[tokio::test(flavor = "multi_thread")]
async fn the_controller_opens_one_request_and_a_restarted_one_updates_it() {
    use crate::automation::{AUTHOR, DEDICATED, Setup, secret_yaml, start_controller};
    use crate::kube_support::{apply_yaml, event_notes, wait_for};

    let stand_in = ForgeStandIn::start(forge::Flavour::GitHub, &repos_dir(), &[TOKEN]).await;
    let validator = Validator::start(&stand_in.url);
    let s = Setup::with_app("pr-ctl", &["1.0.0", "1.0.1"], "1.0.x", "").await;
    let seed = s.head("main");
    s.wait_latest("1.0.1").await;
    apply_yaml(
        &s.client,
        &secret_yaml(&s.ns, "pr-token", &[("token", TOKEN)]),
    )
    .await;
    let id = unique_name("prc");
    let selector = format!("{DEDICATED}={id}");
    let mut controller =
        start_controller(&format!("{id}-a"), &["--watch-label-selector", &selector]);
    let spec = format!(
        "{AUTHOR}  pullRequest:\n    provider: github\n    apiURL: {}\n    secretRef:\n      name: pr-token\n    labels: [automated]\n",
        validator.url
    );
    s.automation(
        "auto",
        &format!("  labels:\n    {DEDICATED}: {id}\n"),
        &spec,
    )
    .await;
    let autos = s.api("ImageUpdateAutomation");
    let a = wait_for(
        &autos,
        "auto",
        Duration::from_secs(60),
        "a pull request in the status",
        |o| o.data["status"]["pullRequests"][0]["number"].is_u64(),
    )
    .await;
    let number = a.data["status"]["pullRequests"][0]["number"]
        .as_u64()
        .unwrap();
    let url = a.data["status"]["pullRequests"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.head("main"), seed, "main untouched");
    let repo = format!("git/{}", s.repo);
    let prs = stand_in.prs(&repo);
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!(prs[0].labels, ["automated"]);
    let notes = event_notes(&s.client, &s.ns, |n| n.iter().any(|x| x.contains(&url))).await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&url) && n.contains("pushed commit")),
        "{notes:#?}"
    );

    // A restart with an empty cache, then a newer image: the same request is updated.
    controller.stop();
    let _controller = start_controller(&format!("{id}-b"), &["--watch-label-selector", &selector]);
    s.new_tag("1.0.2").await;
    wait_for(
        &autos,
        "auto",
        Duration::from_secs(60),
        "the request updated",
        |o| {
            o.data["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("updated pull request"))
                })
            })
        },
    )
    .await;
    let prs = stand_in.prs(&repo);
    assert_eq!(prs.len(), 1, "never a second request: {prs:?}");
    assert_eq!(prs[0].number, number);
    assert!(prs[0].body.contains(":1.0.2"), "{}", prs[0].body);
    assert!(
        validator.violations().is_empty(),
        "{:#?}",
        validator.violations()
    );
}
