//! image-automation-controller with image-reflector-controller on the real kube-apiserver, registry and git
//! servers: Flux's guide end to end (a new tag becomes a commit), the revert, a push branch, HelmRelease
//! `:name`/`:tag` markers, suspend and resume, an SSH remote with a signed commit, specs that stall, and two
//! controllers that push one commit between them.
//!
//! One automation controller is shared by the tests; it ignores automations labelled
//! `tagpilot.test/dedicated`, which belong to controllers that single tests start themselves.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::json;
use tagpilot_core::git::{GitAuth, PushSpec, clone_branch, commit_all, push};
use tagpilot_testinfra::{ControllerProcess, Flavour, GitServer, Infra, binary_path, unique_name};

use crate::kube_support::*;

pub const DEDICATED: &str = "tagpilot.test/dedicated";

pub fn start_controller(label: &str, args: &[&str]) -> ControllerProcess {
    // Whichever test starts a controller first: the CRDs exist before anything is applied.
    crds_installed();
    let dir = Infra::get()
        .path("TAGPILOT_TESTINFRA")
        .join(format!("automation-{}-{label}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("controller work dir");
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend([
        "--work-dir".into(),
        dir.join("clones").display().to_string(),
    ]);
    all.extend(["--log-level".into(), "debug".into()]);
    ControllerProcess::start(
        &binary_path("image-automation-controller"),
        &Infra::get().kubeconfig_path(),
        &all,
        &[],
        &dir.join(format!("{}.log", unique_name("controller"))),
    )
    .expect("start image-automation-controller")
}

/// The automation controller shared by the tests (and the shared reflector, which resolves the policies).
pub fn shared_controller() -> &'static ControllerProcess {
    static SHARED: OnceLock<ControllerProcess> = OnceLock::new();
    crate::reflector::shared_controller();
    SHARED.get_or_init(|| {
        start_controller(
            "shared",
            &["--watch-label-selector", &format!("!{DEDICATED}")],
        )
    })
}

async fn client() -> kube::Client {
    shared_controller();
    Infra::get().kube_client().await
}

fn http_auth(git: &GitServer) -> GitAuth {
    GitAuth {
        username: Some(git.username.clone()),
        password: Some(git.password.clone()),
        ..GitAuth::default()
    }
}

/// A new repository on the git server whose `main` holds `files`; returns its name.
pub fn seed_repo(git: &GitServer, files: &[(&str, &str)]) -> String {
    let name = unique_name("auto");
    git.create_repo(&name);
    let tmp = tempfile::tempdir().unwrap();
    let c = clone_branch(&git.http_url(&name), tmp.path(), None, &http_auth(git)).unwrap();
    for (path, text) in files {
        let p = c.workdir().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let sig = git2::Signature::now("seed", "seed@example.com").unwrap();
    commit_all(&c, &sig, "seed").unwrap().unwrap();
    let spec = PushSpec {
        branch: "main".into(),
        ..Default::default()
    };
    push(&c, &http_auth(git), &spec).unwrap();
    name
}

/// The bare repository on the server's disk.
fn bare(git: &GitServer, name: &str) -> git2::Repository {
    git2::Repository::open_bare(git.repos_dir.join(format!("{name}.git"))).unwrap()
}

pub fn head(git: &GitServer, name: &str, branch: &str) -> Option<git2::Oid> {
    bare(git, name)
        .find_reference(&format!("refs/heads/{branch}"))
        .ok()
        .and_then(|r| r.target())
}

/// Waits until `branch` points somewhere other than `from`; returns the new head and how long it took.
pub async fn wait_head_change(
    git: &GitServer,
    name: &str,
    branch: &str,
    from: Option<git2::Oid>,
    timeout: Duration,
) -> (git2::Oid, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(h) = head(git, name, branch)
            && Some(h) != from
        {
            return (h, t0.elapsed());
        }
        assert!(
            t0.elapsed() < timeout,
            "no new commit on {name}:{branch} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A commit: author name and e-mail, message, and the changed lines (`-old`/`+new`) per file.
pub struct CommitFacts {
    pub author: (String, String),
    pub message: String,
    pub parents: Vec<git2::Oid>,
    pub changes: BTreeMap<String, Vec<String>>,
    pub signature: Option<String>,
}

pub fn commit_facts(git: &GitServer, name: &str, id: git2::Oid) -> CommitFacts {
    let repo = bare(git, name);
    let c = repo.find_commit(id).unwrap();
    let parent_tree = c.parent(0).ok().map(|p| p.tree().unwrap());
    let diff = repo
        .diff_tree_to_tree(parent_tree.as_ref(), Some(&c.tree().unwrap()), None)
        .unwrap();
    let mut changes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    diff.print(git2::DiffFormat::Patch, |delta, _, line| {
        let path = delta.new_file().path().unwrap().display().to_string();
        if matches!(line.origin(), '+' | '-') {
            changes.entry(path).or_default().push(format!(
                "{}{}",
                line.origin(),
                String::from_utf8_lossy(line.content()).trim_end()
            ));
        }
        true
    })
    .unwrap();
    let signature = repo
        .extract_signature(&id, None)
        .ok()
        .map(|(s, _)| String::from_utf8_lossy(&s).to_string());
    CommitFacts {
        author: (
            c.author().name().unwrap_or_default().to_string(),
            c.author().email().unwrap_or_default().to_string(),
        ),
        message: c.message().unwrap_or_default().to_string(),
        parents: c.parent_ids().collect(),
        changes,
        signature,
    }
}

pub fn file_at(git: &GitServer, name: &str, branch: &str, path: &str) -> String {
    let repo = bare(git, name);
    let tree = repo
        .find_reference(&format!("refs/heads/{branch}"))
        .unwrap()
        .peel_to_tree()
        .unwrap();
    let blob = repo
        .find_blob(tree.get_path(Path::new(path)).unwrap().id())
        .unwrap();
    String::from_utf8(blob.content().to_vec()).unwrap()
}

/// A Secret with string data.
pub fn secret_yaml(ns: &str, name: &str, data: &[(&str, &str)]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n"
    );
    for (k, v) in data {
        out.push_str(&format!("  {k}: {}\n", b64.encode(v)));
    }
    out
}

pub fn gitrepo_yaml(ns: &str, name: &str, url: &str, secret: &str) -> String {
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  interval: 1m0s\n  url: {url}\n  ref:\n    branch: main\n  secretRef:\n    name: {secret}\n"
    )
}

/// A GitRepository over HTTP with the server's credentials in a Secret.
pub async fn http_source(client: &kube::Client, git: &GitServer, ns: &str, name: &str, repo: &str) {
    apply_yaml(
        client,
        &secret_yaml(
            ns,
            name,
            &[("username", &git.username), ("password", &git.password)],
        ),
    )
    .await;
    apply_yaml(client, &gitrepo_yaml(ns, name, &git.http_url(repo), name)).await;
}

/// For a test's own namespace `ns`: tags 1.0.0 and 1.0.1 of `<id>/app` on the plain registry, a git
/// repository whose `app.yaml` holds the image at 1.0.0 marked for the policy `ns:app`, and the GitRepository
/// `source` over HTTP. Returns the image and the git repository's name.
pub async fn marked_app(client: &kube::Client, id: &str, ns: &str) -> (String, String) {
    let infra = Infra::get();
    let reg = infra.registry(Flavour::Plain);
    let repo_path = format!("{id}/app");
    let image = reg.image(&repo_path);
    reg.push_tags(&repo_path, &["1.0.0", "1.0.1"])
        .await
        .unwrap();
    let git = infra.git();
    let marker = format!("# {{\"$imagepolicy\": \"{ns}:app\"}}");
    let repo = seed_repo(
        &git,
        &[("app.yaml", &format!("image: {image}:1.0.0 {marker}\n"))],
    );
    http_source(client, &git, ns, "source", &repo).await;
    (image, repo)
}

pub const GUIDE_DEPLOYMENT: &str = include_str!("manifests/flux-guide-podinfo-deployment.yaml");

/// The guide's ImageUpdateAutomation (v1beta1), verbatim.
pub const GUIDE_AUTOMATION: &str = include_str!("manifests/flux-guide-automation-v1beta1.yaml");

/// Sets an ImagePolicy's semver range.
async fn set_range(policies: &Api<DynamicObject>, name: &str, range: &str) {
    policies
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"policy": {"semver": {"range": range}}}})),
        )
        .await
        .unwrap();
}

async fn delete_all(client: &kube::Client, ns: &str, objects: &[(&str, &str)]) {
    for (kind, name) in objects {
        let api = if *kind == "GitRepository" {
            source_api(client, ns)
        } else {
            image_api(client, ns, "v1", kind)
        };
        let _ = api.delete(name, &DeleteParams::default()).await;
        let t0 = Instant::now();
        while api.get_opt(name).await.ok().flatten().is_some()
            && t0.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn flux_guide_end_to_end_new_tags_become_commits() {
    let _guide = FLUX_SYSTEM_GUIDE.lock().await;
    let client = client().await;
    let git = Infra::get().git();
    let reg = Infra::get().registry(Flavour::Plain);
    // A repository of its own per run: the registry keeps the tags of earlier runs.
    let repo_path = format!("{}/stefanprodan/podinfo", unique_name("guide"));
    let image = reg.image(&repo_path);
    reg.push_tags(
        &repo_path,
        &["5.0.0", "5.0.1", "5.0.2", "5.0.3", "5.1.0", "6.0.0"],
    )
    .await
    .unwrap();
    namespace(&client, "flux-system", &[]).await;
    delete_all(
        &client,
        "flux-system",
        &[
            ("ImageUpdateAutomation", "flux-system"),
            ("ImagePolicy", "podinfo"),
            ("ImageRepository", "podinfo"),
        ],
    )
    .await;
    let deployment_path = "clusters/my-cluster/podinfo-deployment.yaml";
    let deployment = GUIDE_DEPLOYMENT.replace("ghcr.io/stefanprodan/podinfo", &image);
    let name = seed_repo(&git, &[(deployment_path, &deployment)]);
    let seed = head(&git, &name, "main");
    http_source(&client, &git, "flux-system", "flux-system", &name).await;

    let guide = include_str!("manifests/flux-guide-v1beta1.yaml")
        .replace("ghcr.io/stefanprodan/podinfo", &image);
    apply_yaml(&client, &guide).await;
    apply_yaml(&client, GUIDE_AUTOMATION).await;

    // 1. The first run pushes 5.0.3, changing only the marked line.
    let (first, _) = wait_head_change(&git, &name, "main", seed, Duration::from_secs(90)).await;
    let facts = commit_facts(&git, &name, first);
    assert_eq!(
        facts.author,
        (
            "fluxcdbot".to_string(),
            "fluxcdbot@users.noreply.github.com".to_string()
        )
    );
    assert_eq!(facts.message, format!("{image}:5.0.3\n"));
    assert_eq!(facts.parents, vec![seed.unwrap()]);
    assert_eq!(
        facts.changes,
        BTreeMap::from([(
            deployment_path.to_string(),
            vec![
                format!(
                    "-        image: {image}:5.0.0 # {{\"$imagepolicy\": \"flux-system:podinfo\"}}"
                ),
                format!(
                    "+        image: {image}:5.0.3 # {{\"$imagepolicy\": \"flux-system:podinfo\"}}"
                ),
            ]
        )])
    );
    let autos = image_api(&client, "flux-system", "v1beta1", "ImageUpdateAutomation");
    let a = wait_for(
        &autos,
        "flux-system",
        Duration::from_secs(30),
        "status after the push",
        |o| o.data["status"]["lastPushCommit"] == first.to_string(),
    )
    .await;
    assert_eq!(
        ready_message(&a),
        format!(
            "pushed commit '{}' to branch 'main'",
            &first.to_string()[..7]
        )
    );
    assert_eq!(
        a.data["status"]["observedSourceRevision"],
        format!("main@sha1:{first}")
    );
    assert_eq!(
        a.data["status"]["observedPolicies"]["podinfo"],
        json!({"name": image, "tag": "5.0.3"})
    );
    assert!(a.data["status"]["lastPushTime"].is_string());
    assert!(a.data["status"]["lastAutomationRunTime"].is_string());

    // 2. A new patch: tag pushed, the ImageRepository asked to reconcile -> a second commit.
    let repos = image_api(&client, "flux-system", "v1", "ImageRepository");
    reg.push_tags(&repo_path, &["5.0.4"]).await.unwrap();
    let t0 = Instant::now();
    request_reconcile(&repos, "podinfo").await;
    let (second, _) =
        wait_head_change(&git, &name, "main", Some(first), Duration::from_secs(30)).await;
    let tag_to_commit = t0.elapsed();
    let facts = commit_facts(&git, &name, second);
    assert_eq!(facts.message, format!("{image}:5.0.4\n"));
    assert_eq!(facts.parents, vec![first]);

    // 3. The guide's revert: pin the policy to 5.0.0 -> a commit back to 5.0.0.
    let policies = image_api(&client, "flux-system", "v1beta1", "ImagePolicy");
    let t0 = Instant::now();
    set_range(&policies, "podinfo", "5.0.0").await;
    let (third, _) =
        wait_head_change(&git, &name, "main", Some(second), Duration::from_secs(30)).await;
    let policy_to_commit = t0.elapsed();
    assert_eq!(
        commit_facts(&git, &name, third).message,
        format!("{image}:5.0.0\n")
    );
    assert!(file_at(&git, &name, "main", deployment_path).contains(&format!("{image}:5.0.0 #")));

    // 4. Push to another branch, created from main; main stays.
    autos
        .patch(
            "flux-system",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"git": {"push": {"branch": "flux-image-updates"}}}})),
        )
        .await
        .unwrap();
    set_range(&policies, "podinfo", "5.0.x").await;
    let (branch_head, _) = wait_head_change(
        &git,
        &name,
        "flux-image-updates",
        None,
        Duration::from_secs(30),
    )
    .await;
    let facts = commit_facts(&git, &name, branch_head);
    assert_eq!(facts.message, format!("{image}:5.0.4\n"));
    assert_eq!(facts.parents, vec![third], "created from main");
    assert_eq!(head(&git, &name, "main"), Some(third), "main untouched");

    eprintln!(
        "LATENCY tag->commit {:.3}s policy->commit {:.3}s",
        tag_to_commit.as_secs_f64(),
        policy_to_commit.as_secs_f64()
    );
    delete_all(
        &client,
        "flux-system",
        &[("ImageUpdateAutomation", "flux-system")],
    )
    .await;
}

/// A namespace, a git repository seeded with files and an image repository with tags, for one test.
pub struct Setup {
    pub client: kube::Client,
    pub git: GitServer,
    pub reg: tagpilot_testinfra::Registry,
    pub ns: String,
    pub repo: String,
    pub repo_path: String,
    pub image: String,
}

impl Setup {
    pub async fn new(prefix: &str, tags: &[&str], files: &[(&str, &str)]) -> Setup {
        let client = client().await;
        let git = Infra::get().git();
        let reg = Infra::get().registry(Flavour::Plain);
        let ns = unique_name(prefix);
        let repo_path = format!("{ns}/app");
        let image = reg.image(&repo_path);
        reg.push_tags(&repo_path, tags).await.unwrap();
        namespace(&client, &ns, &[]).await;
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.replace("IMAGE", &image).replace("NS", &ns)))
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let repo = seed_repo(&git, &refs);
        Setup {
            client,
            git,
            reg,
            ns,
            repo,
            repo_path,
            image,
        }
    }

    /// A setup whose repository holds `app.yaml` with one marked image (`NS:app`, at 1.0.0), read through the
    /// GitRepository `src` over HTTP, with the ImageRepository and ImagePolicy `app` (semver `range`).
    pub async fn with_app(prefix: &str, tags: &[&str], range: &str, meta: &str) -> Setup {
        let app = "image: IMAGE:1.0.0 # {\"$imagepolicy\": \"NS:app\"}\n";
        let s = Setup::new(prefix, tags, &[("app.yaml", app)]).await;
        s.http_source().await;
        s.image_objects(range, meta).await;
        s
    }

    /// A v1 ImageRepository and ImagePolicy `app` (semver `range`), with extra metadata lines (labels).
    pub async fn image_objects(&self, range: &str, meta: &str) {
        let ns = &self.ns;
        let image = &self.image;
        apply_yaml(
            &self.client,
            &format!(
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: {ns}\n{meta}\
                 spec:\n  image: {image}\n  interval: 1h\n---\n\
                 apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: {ns}\n{meta}\
                 spec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: '{range}'\n"
            ),
        )
        .await;
    }

    /// A v1 ImageUpdateAutomation `name` on the GitRepository `src`, with `spec` lines appended.
    pub async fn automation(&self, name: &str, meta: &str, spec: &str) {
        let ns = &self.ns;
        apply_yaml(
            &self.client,
            &format!(
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: {name}\n  namespace: {ns}\n{meta}\
                 spec:\n  interval: 1h\n  sourceRef:\n    kind: GitRepository\n    name: src\n\
                 {spec}"
            ),
        )
        .await;
    }

    pub async fn http_source(&self) {
        http_source(&self.client, &self.git, &self.ns, "src", &self.repo).await;
    }

    pub fn api(&self, kind: &str) -> Api<DynamicObject> {
        image_api(&self.client, &self.ns, "v1", kind)
    }

    pub fn head(&self, branch: &str) -> Option<git2::Oid> {
        head(&self.git, &self.repo, branch)
    }

    pub async fn next_commit(&self, from: Option<git2::Oid>) -> (git2::Oid, Duration) {
        wait_head_change(&self.git, &self.repo, "main", from, Duration::from_secs(60)).await
    }

    pub fn facts(&self, id: git2::Oid) -> CommitFacts {
        commit_facts(&self.git, &self.repo, id)
    }

    /// Pushes a tag and asks the ImageRepository to scan now.
    pub async fn new_tag(&self, tag: &str) {
        self.reg.push_tags(&self.repo_path, &[tag]).await.unwrap();
        request_reconcile(&self.api("ImageRepository"), "app").await;
    }

    pub async fn wait_latest(&self, tag: &str) {
        wait_for(
            &self.api("ImagePolicy"),
            "app",
            Duration::from_secs(30),
            &format!("policy at {tag}"),
            |o| o.data["status"]["latestRef"]["tag"] == tag,
        )
        .await;
    }
}

pub const AUTHOR: &str = "  git:\n    commit:\n      author:\n        name: fluxcdbot\n        email: fluxcdbot@users.noreply.github.com\n";

const HELM_RELEASE: &str = r#"apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: NS
spec:
  chart:
    spec:
      chart: podinfo
  values:
    image:
      repository: IMAGE # {"$imagepolicy": "NS:app:name"}
      tag: 1.0.0 # {"$imagepolicy": "NS:app:tag"}
"#;

#[tokio::test]
async fn helmrelease_name_and_tag_markers_and_suspend_resume() {
    let s = Setup::new(
        "auto-helm",
        &["1.0.0", "1.1.0"],
        &[("apps/podinfo.yaml", HELM_RELEASE)],
    )
    .await;
    let seed = s.head("main");
    s.http_source().await;
    s.image_objects(">=1.0.0", "").await;
    // An OpenPGP key (type omitted: gpg) with a passphrase signs the commits.
    let gpg = crate::git_source::GpgHome::new();
    let armored = gpg.new_key("ed25519", "s3cret-pass");
    apply_yaml(
        &s.client,
        &secret_yaml(
            &s.ns,
            "gpg",
            &[("git.asc", &armored), ("passphrase", "s3cret-pass")],
        ),
    )
    .await;
    // No checkout ref: the GitRepository's (main); no message template: Flux's default message.
    let spec = format!(
        "{AUTHOR}      signingKey:\n        secretRef:\n          name: gpg\n  update:\n    path: ./apps\n"
    );
    s.automation("auto", "", &spec).await;

    let (first, _) = s.next_commit(seed).await;
    let facts = s.facts(first);
    assert_eq!(facts.message, "Update from image update automation");
    let marker = format!("{{\"$imagepolicy\": \"{}:app:tag\"}}", s.ns);
    assert_eq!(
        facts.changes,
        BTreeMap::from([(
            "apps/podinfo.yaml".to_string(),
            vec![
                format!("-      tag: 1.0.0 # {marker}"),
                format!("+      tag: 1.1.0 # {marker}")
            ]
        )]),
        "the :name value is already right; only the :tag line changes"
    );
    let tmp = tempfile::tempdir().unwrap();
    clone_branch(
        &s.git.http_url(&s.repo),
        tmp.path(),
        None,
        &http_auth(&s.git),
    )
    .unwrap();
    let verified = gpg.verify_commit(tmp.path());
    assert!(
        verified.status.success(),
        "git verify-commit: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The push event, Flux's wording, with the message; the metrics and health endpoints.
    let want = format!(
        "pushed commit '{}' to branch 'main'\nUpdate from image update automation",
        &first.to_string()[..7]
    );
    let notes = event_notes(&s.client, &s.ns, |n| n.contains(&want)).await;
    assert!(notes.contains(&want), "{want:?} in {notes:?}");
    let c = shared_controller();
    let (code, body) = c.http_get(c.metrics_addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("tagpilot_automation_runs_total{result=\"pushed\"}"),
        "{body}"
    );
    assert!(body.contains(&format!(
        "gotk_reconcile_total{{kind=\"ImageUpdateAutomation\",name=\"auto\",namespace=\"{}\"}}",
        s.ns
    )));
    assert_eq!(c.http_get(c.health_addr, "/readyz").unwrap().0, 200);

    // Suspended: a new tag is resolved but not pushed.
    let autos = s.api("ImageUpdateAutomation");
    autos
        .patch(
            "auto",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    wait_for(
        &autos,
        "auto",
        Duration::from_secs(10),
        "suspend seen",
        |o| o.data["spec"]["suspend"] == true,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.new_tag("1.2.0").await;
    s.wait_latest("1.2.0").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.head("main"), Some(first), "no push while suspended");

    // Resumed: the pending update is pushed.
    autos
        .patch(
            "auto",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .unwrap();
    let (second, _) = s.next_commit(Some(first)).await;
    assert!(s.facts(second).changes["apps/podinfo.yaml"][1].starts_with("+      tag: 1.2.0 #"));
}

#[tokio::test]
async fn ssh_remote_with_known_hosts_and_a_signed_commit() {
    let deployment = "image: IMAGE:1.0.0 # {\"$imagepolicy\": \"NS:app\"}\n";
    let s = Setup::new(
        "auto-ssh",
        &["1.0.0", "1.0.1"],
        &[("deploy/app.yaml", deployment)],
    )
    .await;
    let seed = s.head("main");
    let identity = std::fs::read_to_string(&s.git.ssh_key_file).unwrap();
    let known_hosts = std::fs::read_to_string(&s.git.known_hosts_file).unwrap();
    apply_yaml(
        &s.client,
        &secret_yaml(
            &s.ns,
            "ssh",
            &[("identity", &identity), ("known_hosts", &known_hosts)],
        ),
    )
    .await;
    apply_yaml(
        &s.client,
        &gitrepo_yaml(&s.ns, "src", &s.git.ssh_url(&s.repo), "ssh"),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (signing_key, _) = crate::git_source::keygen(&tmp.path().join("signing"), "");
    apply_yaml(
        &s.client,
        &secret_yaml(&s.ns, "signing", &[("identity", &signing_key)]),
    )
    .await;
    s.image_objects("1.0.x", "").await;
    let spec = format!(
        "{AUTHOR}      signingKey:\n        type: ssh\n        secretRef:\n          name: signing\n\
         \x20     messageTemplate: |\n        [{{{{ .Values.env }}}}] {{{{ .AutomationObject.Name }}}}\n        {{{{ range .Changed.Changes }}}}{{{{ .OldValue }}}} -> {{{{ .NewValue }}}}\n        {{{{ end -}}}}\n\
         \x20     messageTemplateValues:\n        env: prod\n"
    );
    s.automation("auto", "", &spec).await;

    let (commit, _) = s.next_commit(seed).await;
    let facts = s.facts(commit);
    assert_eq!(
        facts.message,
        format!("[prod] auto\n{0}:1.0.0 -> {0}:1.0.1\n", s.image)
    );
    let signature = facts.signature.expect("a signed commit");
    assert!(signature.contains("BEGIN SSH SIGNATURE"), "{signature}");
    let a = wait_ready(&s.api("ImageUpdateAutomation"), "auto").await;
    assert!(
        a.data["status"]["observedSourceRevision"]
            .as_str()
            .unwrap()
            .starts_with("main@sha1:")
    );
}

#[tokio::test]
async fn bad_specs_stall_with_clear_messages_and_push_nothing() {
    let s = Setup::with_app("auto-bad", &["1.0.0", "2.0.0"], ">=1.0.0", "").await;
    let seed = s.head("main");
    s.wait_latest("2.0.0").await;
    let autos = s.api("ImageUpdateAutomation");

    s.automation(
        "template",
        "",
        &format!("{AUTHOR}      messageTemplate: '{{{{range .Updated.Images}}}}'\n"),
    )
    .await;
    let a = wait_not_ready(&autos, "template", "GitOperationFailed").await;
    assert_message_contains(&a, "spec.git.commit.messageTemplate");
    assert_eq!(
        condition(&a, "Stalled").map(|c| c.0).as_deref(),
        Some("True")
    );

    s.automation(
        "selector",
        "",
        &format!(
            "{AUTHOR}  policySelector:\n    matchExpressions:\n    - key: tier\n      operator: In\n"
        ),
    )
    .await;
    let a = wait_not_ready(&autos, "selector", "InvalidPolicySelector").await;
    assert_message_contains(&a, "operator In needs at least one value");

    apply_yaml(
        &s.client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: nosource\n  namespace: {}\n\
             spec:\n  interval: 1h\n  sourceRef:\n    kind: GitRepository\n    name: missing\n{AUTHOR}",
            s.ns
        ),
    )
    .await;
    let a = wait_not_ready(&autos, "nosource", "InvalidSourceConfiguration").await;
    assert_message_contains(
        &a,
        &format!(
            "GitRepository '{}/missing' (spec.sourceRef) not found",
            s.ns
        ),
    );

    s.automation(
        "nopath",
        "",
        &format!("{AUTHOR}  update:\n    path: ./does-not-exist\n"),
    )
    .await;
    let a = wait_not_ready(&autos, "nopath", "UpdateFailed").await;
    assert_message_contains(&a, "./does-not-exist");
    assert_eq!(s.head("main"), seed, "nothing pushed");
}

#[tokio::test]
async fn two_controllers_at_once_push_one_commit() {
    let s = Setup::with_app("auto-two", &["1.0.0", "1.0.1"], "1.0.x", "").await;
    let seed = s.head("main");
    s.wait_latest("1.0.1").await;
    let id = unique_name("two");
    let selector = format!("{DEDICATED}={id}");
    let mut first = start_controller(&format!("{id}-a"), &["--watch-label-selector", &selector]);
    let mut second = start_controller(&format!("{id}-b"), &["--watch-label-selector", &selector]);
    s.automation(
        "auto",
        &format!("  labels:\n    {DEDICATED}: {id}\n"),
        AUTHOR,
    )
    .await;
    let (commit, _) = s.next_commit(seed).await;
    // Both run again on a request, and again on a new tag.
    request_reconcile(&s.api("ImageUpdateAutomation"), "auto").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.head("main"), Some(commit), "one commit for one change");
    assert_eq!(s.facts(commit).parents, vec![seed.unwrap()]);
    s.new_tag("1.0.2").await;
    let (next, _) = s.next_commit(Some(commit)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.head("main"), Some(next), "again one commit");
    assert_eq!(s.facts(next).parents, vec![commit]);
    first.stop();
    second.stop();
    // Two commits in all. Both controllers may log the same commit: made in the same second from the same
    // clone, their commits are byte-identical, and the second push changes nothing.
    let logs = first.log_text() + &second.log_text();
    let pushed: std::collections::BTreeSet<&str> = logs
        .match_indices("pushed commit '")
        .map(|(i, m)| &logs[i + m.len()..i + m.len() + 7])
        .collect();
    assert_eq!(
        pushed,
        [&commit.to_string()[..7], &next.to_string()[..7]].into(),
        "{logs}"
    );
}

/// The latency of the loop on loopback, with controllers of its own (not slowed by other tests' objects):
/// a new tag (pushed, then the ImageRepository asked to reconcile) to the commit on the git server, and a
/// policy change to the commit. Printed as `LATENCY`; timings are reported, not asserted.
#[tokio::test]
async fn latency_from_tag_and_policy_change_to_commit() {
    let deployment = "image: IMAGE:1.0.0 # {\"$imagepolicy\": \"NS:app\"}\n";
    let s = Setup::new("auto-latency", &["1.0.0"], &[("app.yaml", deployment)]).await;
    let id = unique_name("lat");
    let selector = format!("{DEDICATED}={id}");
    let _reflector = crate::reflector::start_controller(
        &Infra::get().kubeconfig_path(),
        &id,
        &["--watch-label-selector", &selector],
    );
    let mut automation = start_controller(&id, &["--watch-label-selector", &selector]);
    let meta = format!("  labels:\n    {DEDICATED}: {id}\n");
    s.http_source().await;
    s.image_objects("1.0.x", &meta).await;
    s.automation("auto", &meta, AUTHOR).await;
    wait_ready(&s.api("ImageUpdateAutomation"), "auto").await;

    let mut from_tag = Vec::new();
    let mut from_policy = Vec::new();
    let mut head = s.head("main");
    let policies = s.api("ImagePolicy");
    for i in 1..=7 {
        let tag = format!("1.0.{i}");
        let t0 = Instant::now();
        s.new_tag(&tag).await;
        let (h, _) = s.next_commit(head).await;
        from_tag.push(t0.elapsed());
        assert!(s.facts(h).changes["app.yaml"][1].contains(&format!(":{tag} #")));
        head = Some(h);

        // Pin the previous patch, then back.
        let t0 = Instant::now();
        set_range(&policies, "app", &format!("1.0.{}", i - 1)).await;
        let (h, _) = s.next_commit(head).await;
        from_policy.push(t0.elapsed());
        head = Some(h);
        set_range(&policies, "app", "1.0.x").await;
        let (h, _) = s.next_commit(head).await;
        head = Some(h);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mt, mp) = (median(&mut from_tag), median(&mut from_policy));
    eprintln!(
        "LATENCY over {} rounds: tag->commit median {:.3}s (min {:.3}s, max {:.3}s); policy->commit median {:.3}s (min {:.3}s, max {:.3}s)",
        from_tag.len(),
        mt.as_secs_f64(),
        from_tag[0].as_secs_f64(),
        from_tag[from_tag.len() - 1].as_secs_f64(),
        mp.as_secs_f64(),
        from_policy[0].as_secs_f64(),
        from_policy[from_policy.len() - 1].as_secs_f64(),
    );
    automation.stop();
}

#[tokio::test]
async fn policy_selector_and_a_source_in_another_namespace() {
    let files = "web: IMAGE:1.0.0 # {\"$imagepolicy\": \"NS:app\"}\nworker: IMAGE:1.0.0 # {\"$imagepolicy\": \"NS:other\"}\n";
    let s = Setup::new(
        "auto-sel",
        &["1.0.0", "1.0.1", "2.0.0"],
        &[("app.yaml", files)],
    )
    .await;
    let seed = s.head("main");
    s.image_objects("1.0.x", "  labels:\n    tier: web\n").await;
    apply_yaml(
        &s.client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: other\n  namespace: {}\n\
             spec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: '>=2.0.0'\n",
            s.ns
        ),
    )
    .await;
    s.wait_latest("1.0.1").await;
    // The GitRepository lives in another namespace.
    let source_ns = unique_name("auto-src");
    namespace(&s.client, &source_ns, &[]).await;
    http_source(&s.client, &s.git, &source_ns, "src", &s.repo).await;
    let spec = format!("{AUTHOR}  policySelector:\n    matchLabels:\n      tier: web\n");
    apply_yaml(
        &s.client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: auto\n  namespace: {}\n\
             spec:\n  interval: 1h\n  sourceRef:\n    kind: GitRepository\n    name: src\n    namespace: {source_ns}\n{spec}",
            s.ns
        ),
    )
    .await;
    let (commit, _) = s.next_commit(seed).await;
    let changes = &s.facts(commit).changes["app.yaml"];
    assert_eq!(
        changes.len(),
        2,
        "only the selected policy's line: {changes:?}"
    );
    assert!(changes[1].starts_with(&format!("+web: {}:1.0.1 #", s.image)));
    let a = wait_ready(&s.api("ImageUpdateAutomation"), "auto").await;
    let observed = a.data["status"]["observedPolicies"].as_object().unwrap();
    assert_eq!(observed.keys().collect::<Vec<_>>(), ["app"]);

    // A controller with --no-cross-namespace-refs refuses the same automation.
    let id = unique_name("nocross");
    let mut strict = start_controller(
        &id,
        &[
            "--watch-label-selector",
            &format!("{DEDICATED}={id}"),
            "--no-cross-namespace-refs",
        ],
    );
    let autos = s.api("ImageUpdateAutomation");
    autos
        .patch(
            "auto",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {DEDICATED: id}}})),
        )
        .await
        .unwrap();
    let a = wait_not_ready(&autos, "auto", "AccessDenied").await;
    assert_message_contains(&a, "cross-namespace references are disabled");
    strict.stop();
}

#[tokio::test]
async fn two_replicas_with_leader_election_push_once_and_the_standby_takes_over() {
    let s = Setup::with_app("auto-lead", &["1.0.0", "1.0.1"], "1.0.x", "").await;
    let seed = s.head("main");
    s.wait_latest("1.0.1").await;
    let id = unique_name("lead");
    let selector = format!("{DEDICATED}={id}");
    let args = [
        "--watch-label-selector",
        &selector,
        "--enable-leader-election",
        "--leader-election-namespace",
        &s.ns,
    ];
    let log_has = |p: &ControllerProcess, what: &str| p.log_text().contains(what);
    let mut first = start_controller(&format!("{id}-a"), &args);
    assert!(
        first
            .wait_for_log("acquired leadership", Duration::from_secs(15))
            .await,
        "{}",
        first.log_text()
    );
    let mut second = start_controller(&format!("{id}-b"), &args);
    s.automation(
        "auto",
        &format!("  labels:\n    {DEDICATED}: {id}\n"),
        AUTHOR,
    )
    .await;
    let (commit, _) = s.next_commit(seed).await;
    assert!(log_has(&second, "waiting for leadership"));
    assert!(!log_has(&second, "pushed commit"), "the standby pushed");

    // The leader stops; the standby takes over (at the latest when the 15 s lease would expire) and pushes
    // the next change, once.
    assert!(first.stop(), "graceful shutdown");
    assert!(
        log_has(&first, "released leadership"),
        "{}",
        first.log_text()
    );
    s.new_tag("1.0.2").await;
    let (next, _) = wait_head_change(
        &s.git,
        &s.repo,
        "main",
        Some(commit),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(s.facts(next).parents, vec![commit]);
    assert!(log_has(&second, "acquired leadership"));
    second.stop();
    assert_eq!(first.log_text().matches("pushed commit").count(), 1);
    assert_eq!(second.log_text().matches("pushed commit").count(), 1);
}
