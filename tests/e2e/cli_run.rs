//! `tagpilot run` (no cluster) against the real registry and git server: Flux's guide manifests, a commit,
//! a re-run that changes nothing, a failing object among good ones, Secrets from the environment.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tagpilot_testinfra::{Flavour, Infra, binary_path, unique_name};

use crate::automation::{GUIDE_AUTOMATION, GUIDE_DEPLOYMENT, head, seed_repo};

/// Runs `tagpilot run --json` with `args`; returns the exit code, the outcomes and stderr.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> (i32, Vec<Value>, String) {
    let out = Command::new(binary_path("tagpilot"))
        .arg("run")
        .args(args)
        .arg("--json")
        .envs(envs.iter().copied())
        .output()
        .expect("run tagpilot");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let outcomes: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("JSON summary: {e}\nstdout: {stdout}\nstderr: {stderr}"));
    (out.status.code().unwrap_or(-1), outcomes, stderr)
}

fn outcome<'a>(outcomes: &'a [Value], kind: &str, name: &str) -> &'a Value {
    outcomes
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {outcomes:#?}"))
}

fn argv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test]
async fn the_guide_runs_without_a_cluster_and_a_rerun_changes_nothing() {
    let git = Infra::get().git();
    let reg = Infra::get().registry(Flavour::Plain);
    let repo_path = format!("{}/stefanprodan/podinfo", unique_name("run"));
    let image = reg.image(&repo_path);
    reg.push_tags(&repo_path, &["5.0.0", "5.0.1", "5.0.2", "5.0.3", "5.1.0"])
        .await
        .unwrap();
    let deployment_path = "clusters/my-cluster/podinfo-deployment.yaml";
    let name = seed_repo(
        &git,
        &[(
            deployment_path,
            &GUIDE_DEPLOYMENT.replace("ghcr.io/stefanprodan/podinfo", &image),
        )],
    );
    let seed = head(&git, &name, "main");

    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("manifests");
    std::fs::create_dir_all(&good).unwrap();
    write(
        &good,
        "image.yaml",
        &include_str!("manifests/flux-guide-v1beta1.yaml")
            .replace("ghcr.io/stefanprodan/podinfo", &image),
    );
    write(&good, "automation.yaml", GUIDE_AUTOMATION);
    // The GitRepository and its Secret, the password left to the environment.
    write(
        &good,
        "source.yaml",
        &format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\n\
             spec:\n  interval: 1m\n  url: {}\n  ref:\n    branch: main\n  secretRef:\n    name: flux-system\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata:\n  name: flux-system\n  namespace: flux-system\nstringData:\n  username: {}\n",
            git.http_url(&name),
            git.username
        ),
    );
    let bad = tmp.path().join("broken.yaml");
    write(
        tmp.path(),
        "broken.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: broken\n  namespace: flux-system\n\
         spec:\n  image: 127.0.0.1:1/nothing/here\n  interval: 1m\n",
    );
    let state = tmp.path().join("state");
    let env = [(
        "TAGPILOT_SECRET_FLUX_SYSTEM_FLUX_SYSTEM_PASSWORD",
        git.password.as_str(),
    )];
    let args = |with_bad: bool| -> Vec<String> {
        let mut a = vec!["--manifests".to_string(), good.display().to_string()];
        if with_bad {
            a.push(bad.display().to_string());
        }
        a.extend([
            "--state-dir".into(),
            state.display().to_string(),
            "--once".into(),
        ]);
        a
    };

    // 1. One failing object among good ones: the good ones go through, the exit code says a failure.
    let a = args(true);
    let (code, outcomes, stderr) = run(&argv(&a), &env);
    assert_eq!(code, 1, "{outcomes:#?}\n{stderr}");
    let broken = outcome(&outcomes, "ImageRepository", "broken");
    assert_eq!(broken["ready"], false);
    assert!(
        broken["message"].as_str().unwrap().contains("127.0.0.1:1"),
        "{broken}"
    );
    assert_eq!(
        outcome(&outcomes, "ImageRepository", "podinfo")["ready"],
        true
    );
    let policy = outcome(&outcomes, "ImagePolicy", "podinfo");
    assert!(
        policy["message"]
            .as_str()
            .unwrap()
            .ends_with("resolved to 5.0.3"),
        "{policy}"
    );
    let auto = outcome(&outcomes, "ImageUpdateAutomation", "flux-system");
    assert_eq!(auto["ready"], true, "{auto}");
    let commit = auto["pushedCommit"]
        .as_str()
        .expect("a pushed commit")
        .to_string();
    assert_eq!(head(&git, &name, "main").unwrap().to_string(), commit);
    assert_ne!(head(&git, &name, "main"), seed);
    let repo = git2::Repository::open_bare(git.repos_dir.join(format!("{name}.git"))).unwrap();
    let c = repo
        .find_commit(git2::Oid::from_str(&commit).unwrap())
        .unwrap();
    assert_eq!(c.message().unwrap(), format!("{image}:5.0.3\n"));
    assert_eq!(c.author().name().ok(), Some("fluxcdbot"));
    assert!(
        !stderr.contains("scanning"),
        "no progress output without a terminal: {stderr}"
    );

    // 2. The same run again: nothing to do, no commit, no clone.
    let (code, outcomes, _) = run(&argv(&args(false)), &env);
    assert_eq!(code, 0, "{outcomes:#?}");
    let auto = outcome(&outcomes, "ImageUpdateAutomation", "flux-system");
    assert!(auto["pushedCommit"].is_null());
    // Nothing moved: as the controller, Ready keeps the message of the last push.
    assert_eq!(
        auto["message"].as_str().unwrap(),
        format!("pushed commit '{}' to branch 'main'", &commit[..7]),
        "{auto}"
    );
    assert_eq!(head(&git, &name, "main").unwrap().to_string(), commit);

    // 2b. A push whose status write was lost (killed in between): the automation's status from before the
    // push. Over HTTP the clone is one commit deep, so the parent is fetched to check that the head is the
    // commit this run would have made; it is recorded, nothing is pushed again.
    let state_file = state.join("state.json");
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    saved["automations"]
        .as_object_mut()
        .unwrap()
        .remove("flux-system/flux-system");
    std::fs::write(&state_file, serde_json::to_vec(&saved).unwrap()).unwrap();
    let (code, outcomes, _) = run(&argv(&args(false)), &env);
    assert_eq!(code, 0, "{outcomes:#?}");
    let auto = outcome(&outcomes, "ImageUpdateAutomation", "flux-system");
    assert!(auto["pushedCommit"].is_null(), "{auto}");
    assert_eq!(
        auto["message"].as_str().unwrap(),
        format!("pushed commit '{}' to branch 'main'", &commit[..7]),
        "{auto}"
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(
        saved["automations"]["flux-system/flux-system"]["lastPushCommit"],
        commit.as_str(),
        "recorded from the remote head"
    );
    assert_eq!(head(&git, &name, "main").unwrap().to_string(), commit);

    // 3. A new patch: the next run commits it on top.
    reg.push_tags(&repo_path, &["5.0.4"]).await.unwrap();
    let (code, outcomes, _) = run(&argv(&args(false)), &env);
    assert_eq!(code, 0, "{outcomes:#?}");
    let next = outcome(&outcomes, "ImageUpdateAutomation", "flux-system")["pushedCommit"]
        .as_str()
        .expect("a second commit")
        .to_string();
    let c = repo
        .find_commit(git2::Oid::from_str(&next).unwrap())
        .unwrap();
    assert_eq!(c.message().unwrap(), format!("{image}:5.0.4\n"));
    assert_eq!(c.parent_id(0).unwrap().to_string(), commit);

    // 4. Without the password (not in the environment) git refuses: that object fails, the others do not.
    let (code, outcomes, _) = run(&argv(&args(false)), &[]);
    assert_eq!(code, 1, "{outcomes:#?}");
    let auto = outcome(&outcomes, "ImageUpdateAutomation", "flux-system");
    assert_eq!(auto["ready"], false);
    assert!(
        auto["message"]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{auto}"
    );
    assert!(!auto["message"].as_str().unwrap().contains(&git.password));
    assert_eq!(outcome(&outcomes, "ImagePolicy", "podinfo")["ready"], true);
}

#[test]
fn unusable_manifests_are_refused_with_the_file_and_object() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "bad.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: p\nspec:\n  policy: 3\n",
    );
    let out = Command::new(binary_path("tagpilot"))
        .args(["run", "--manifests"])
        .arg(tmp.path())
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml (document 1): ImagePolicy 'p'"),
        "{stderr}"
    );
}

#[test]
fn a_cloud_provider_logs_in_with_the_environment_identity() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "ecr.yaml",
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: apps\n\
         spec:\n  image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app\n  interval: 5m\n  provider: aws\n",
    );
    let dir = tmp.path().display().to_string();
    let state = tmp.path().join("state").display().to_string();
    // No AWS identity here: the chain ends at the instance metadata service, which does not answer.
    let (code, outcomes, _) = run(
        &["--manifests", &dir, "--state-dir", &state],
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")],
    );
    assert_eq!(code, 1);
    let o = outcome(&outcomes, "ImageRepository", "app");
    assert!(
        o["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.provider aws: aws: instance metadata (IMDSv2): http://127.0.0.1:1"),
        "{o}"
    );
}

/// A token given as the user name of the git URL (`https://TOKEN@host/...`) never appears in what `tagpilot
/// run` prints or stores (before: printed whole in `--json`, as in status, events and logs).
#[tokio::test]
async fn tokens_in_urls_are_never_printed_or_stored() {
    let reg = Infra::get().registry(Flavour::Plain);
    let repo_path = format!("{}/stefanprodan/podinfo", unique_name("run-redact"));
    let image = reg.image(&repo_path);
    reg.push_tags(&repo_path, &["5.0.0", "5.0.1"])
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "image.yaml",
        &include_str!("manifests/flux-guide-v1beta1.yaml")
            .replace("ghcr.io/stefanprodan/podinfo", &image),
    );
    write(&dir, "automation.yaml", GUIDE_AUTOMATION);
    // Nothing listens on port 1: the automation fails, and its message names the URL.
    write(
        &dir,
        "source.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\n\
         spec:\n  interval: 1m\n  url: http://ghp_T0KENasUSERNAME@127.0.0.1:1/org/repo.git\n  ref:\n    branch: main\n",
    );
    let state = tmp.path().join("state");
    let a = [
        "--manifests".to_string(),
        dir.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
        "--once".into(),
    ];
    let out = Command::new(binary_path("tagpilot"))
        .arg("run")
        .args(&a)
        .arg("--json")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("127.0.0.1:1"),
        "the URL is named: {printed}"
    );
    assert!(printed.contains("***@127.0.0.1:1"), "{printed}");
    assert!(!printed.contains("ghp_T0KEN"), "{printed}");
    let mut stored = String::new();
    for e in walk(&state) {
        stored.push_str(&String::from_utf8_lossy(&std::fs::read(e).unwrap()));
    }
    assert!(
        !stored.contains("ghp_T0KEN"),
        "the state directory holds the token"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Kept clones (`--clone-cache-max-mb`): the second run fetches and resets the kept clone instead of cloning;
/// a damaged one is replaced; 0 keeps nothing.
#[tokio::test(flavor = "multi_thread")]
async fn kept_clones_are_reused_and_a_damaged_one_replaced() {
    let w = crate::pull_requests::World::new(&["5.0.0", "5.0.1"]).await;
    w.write(Value::Null, &[], None);
    let o = w.run();
    assert!(o["pushedCommit"].is_string(), "{o}");
    let kept_root = w.state().join("work/kept-clones");
    let kept: Vec<std::path::PathBuf> = std::fs::read_dir(&kept_root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let marker = kept[0].join(".git/tagpilot-test-marker");
    std::fs::write(&marker, "kept").unwrap();

    w.push_tags(&["5.0.2"]).await;
    let o = w.run();
    assert!(o["pushedCommit"].is_string(), "{o}");
    assert_eq!(w.image_on("main"), "5.0.2");
    assert!(
        marker.exists(),
        "the kept clone was fetched and reset, not cloned again"
    );
    assert_eq!(
        w.head("main").unwrap().to_string(),
        o["pushedCommit"].as_str().unwrap()
    );

    // Damaged (its objects gone): dropped and cloned afresh; the run still pushes.
    std::fs::remove_dir_all(kept[0].join(".git/objects")).unwrap();
    w.push_tags(&["5.0.3"]).await;
    let o = w.run();
    assert!(o["pushedCommit"].is_string(), "{o}");
    assert_eq!(w.image_on("main"), "5.0.3");
    assert!(!marker.exists(), "replaced");

    // 0 keeps nothing.
    std::fs::remove_dir_all(&kept_root).unwrap();
    w.push_tags(&["5.0.4"]).await;
    let o = w.run_with(&["--clone-cache-max-mb", "0"]);
    assert!(o["pushedCommit"].is_string(), "{o}");
    assert!(!kept_root.exists() || std::fs::read_dir(&kept_root).unwrap().next().is_none());
}
