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

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: default
spec:
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
      - name: podinfod
        image: IMAGE:5.0.0 # {"$imagepolicy": "flux-system:podinfo"}
        readinessProbe:
          httpGet:
            path: /readyz
            port: 9898
"#;

const GUIDE: &str = r#"apiVersion: image.toolkit.fluxcd.io/v1beta1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: IMAGE
  interval: 1m0s
---
apiVersion: image.toolkit.fluxcd.io/v1beta1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: 5.0.x
---
apiVersion: image.toolkit.fluxcd.io/v1beta1
kind: ImageUpdateAutomation
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: '{{range .Updated.Images}}{{println .}}{{end}}'
    push:
      branch: main
  update:
    path: ./clusters/my-cluster
    strategy: Setters
"#;

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
    std::fs::write(&file, DEPLOYMENT.replace("IMAGE", &image))?;
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
    std::fs::write(dir.join("podinfo.yaml"), GUIDE.replace("IMAGE", &image))?;
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
