//! The README demo's fixtures (`make demo`): on the servers `up.sh registry git` started, pushes podinfo-like
//! tags 5.0.0..5.0.3 to `<registry>/stefanprodan/podinfo`, creates a git repository holding Flux's guide
//! `clusters/my-cluster/podinfo-deployment.yaml` (at 5.0.0), and writes the guide's manifests (ImageRepository,
//! ImagePolicy, ImageUpdateAutomation) plus the GitRepository and its Secret into a directory.
//!
//! `demo-setup DIR` prints shell assignments: `MANIFESTS=...`, `REPO_URL=...` (with credentials, for `git clone`).

use std::path::PathBuf;

use anyhow::Context;
use tagpilot_core::git::{GitAuth, PushSpec, clone_branch, commit_all, push};
use tagpilot_testinfra::{Flavour, Infra};

/// The guide's files, shared with the end-to-end tests.
const DEPLOYMENT: &str =
    include_str!("../../../../tests/e2e/manifests/flux-guide-podinfo-deployment.yaml");
const IMAGE_OBJECTS: &str = include_str!("../../../../tests/e2e/manifests/flux-guide-v1beta1.yaml");
const AUTOMATION: &str =
    include_str!("../../../../tests/e2e/manifests/flux-guide-automation-v1beta1.yaml");

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: demo-setup DIR (where the manifests go)")?,
    );
    let infra = Infra::get();
    let reg = infra.registry(Flavour::Plain);
    let repo_path = "stefanprodan/podinfo";
    let image = reg.image(repo_path);
    reg.push_tags(repo_path, &["5.0.0", "5.0.1", "5.0.2", "5.0.3"])
        .await
        .context("push the podinfo tags")?;

    let git = infra.git();
    let name = format!(
        "demo-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    git.create_repo(&name);
    let auth = GitAuth {
        username: Some(git.username.clone()),
        password: Some(git.password.clone()),
        ..GitAuth::default()
    };
    let work = tempfile::tempdir()?;
    let c = clone_branch(&git.http_url(&name), work.path(), None, &auth)?;
    let file = c
        .workdir()
        .join("clusters/my-cluster/podinfo-deployment.yaml");
    std::fs::create_dir_all(file.parent().expect("a parent"))?;
    std::fs::write(
        &file,
        DEPLOYMENT.replace("ghcr.io/stefanprodan/podinfo", &image),
    )?;
    let me = git2::Signature::now("demo", "demo@example.com")?;
    commit_all(&c, &me, "Add podinfo deployment")?;
    push(
        &c,
        &auth,
        &PushSpec {
            branch: "main".into(),
            ..Default::default()
        },
    )?;

    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("podinfo.yaml"),
        format!(
            "{}---\n{AUTOMATION}",
            IMAGE_OBJECTS.replace("ghcr.io/stefanprodan/podinfo", &image)
        ),
    )?;
    std::fs::write(
        dir.join("flux-system.yaml"),
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\n\
             spec:\n  interval: 1m0s\n  url: {}\n  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: flux-system\n  namespace: flux-system\nstringData:\n  username: {}\n  password: {}\n",
            git.http_url(&name),
            git.username,
            git.password
        ),
    )?;
    println!("MANIFESTS={}", dir.display());
    println!(
        "REPO_URL={}",
        git.http_url(&name).replacen(
            "http://",
            &format!("http://{}:{}@", git.username, git.password),
            1
        )
    );
    Ok(())
}
