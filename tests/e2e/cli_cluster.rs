//! The Flux-style commands of `tagpilot` on the real API server (with the shared image-reflector-controller):
//! the guide's `create image repository|policy` (applied and exported), `get` tables and `-o json`,
//! `suspend`/`resume`, `reconcile` waiting for the scan, `delete` with its confirmation, and the errors for a
//! missing object and a cluster without the CRDs.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tagpilot_testinfra::{Flavour, Infra, binary_path, unique_name};

use crate::kube_support::{IMAGE_CRDS, client_for, delete_crds, namespace};

/// Runs `tagpilot` with `args` against the cluster of `kubeconfig`, with `stdin`; returns (code, stdout,
/// stderr).
fn tagpilot(kubeconfig: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(binary_path("tagpilot"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tagpilot");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A table as the commands print it (tab-separated, padded), as rows of trimmed cells.
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split('\t').map(|c| c.trim().to_string()).collect())
        .collect()
}

#[tokio::test]
async fn the_guides_image_commands_work_on_a_cluster() {
    crate::reflector::shared_controller();
    let infra = Infra::get();
    let client = infra.kube_client().await;
    let kc = infra.kubeconfig_path();
    let ns = unique_name("cli");
    namespace(&client, &ns, &[]).await;
    let reg = infra.registry(Flavour::Plain);
    let repo_path = format!("{ns}/podinfo");
    let image = reg.image(&repo_path);
    reg.push_tags(&repo_path, &["5.0.0", "5.0.1", "5.0.2", "5.0.3", "5.1.0"])
        .await
        .unwrap();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-n", &ns]);
        tagpilot(&kc, &all, "")
    };

    // --export prints the guide's YAML; no cluster is needed for it.
    let image_flag = format!("--image={image}");
    let (code, out, _) = run(&[
        "create",
        "image",
        "repository",
        "podinfo",
        &image_flag,
        "--interval=1h",
        "--export",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: podinfo\n  \
             namespace: {ns}\nspec:\n  image: {image}\n  interval: 1h0m0s\n"
        )
    );

    // Applied, the commands wait for Ready and say what was found.
    let (code, _, err) = run(&[
        "create",
        "image",
        "repository",
        "podinfo",
        &image_flag,
        "--interval=1h",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("✔ ImageRepository reconciliation completed"),
        "{err}"
    );
    assert!(err.contains("✔ fetched 5 tags"), "{err}");
    let (code, _, err) = run(&[
        "create",
        "image",
        "policy",
        "podinfo",
        "--image-ref=podinfo",
        "--select-semver=5.0.x",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("✔ selected: {image}:5.0.3")), "{err}");
    assert!(
        !err.contains('\r'),
        "no spinner without a terminal: {err:?}"
    );

    // Tables as Flux's.
    let (code, out, _) = run(&["get", "image", "repository"]);
    assert_eq!(code, 0);
    let rows = table(&out);
    assert_eq!(
        rows[0],
        ["NAME", "LAST SCAN", "SUSPENDED", "READY", "MESSAGE"],
        "{out}"
    );
    assert_eq!(rows[1][0], "podinfo", "{out}");
    assert_eq!(rows[1][2..4], ["False", "True"], "{out}");
    assert!(
        rows[1][4].starts_with("successful scan: found 5 tags"),
        "{out}"
    );
    assert!(
        out.lines()
            .next()
            .unwrap()
            .starts_with("NAME   \tLAST SCAN"),
        "columns padded as Flux's: {out}"
    );
    let (_, out, _) = run(&["get", "image", "policy", "podinfo", "-o", "json"]);
    let p: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(p["status"]["latestRef"]["tag"], "5.0.3");
    assert!(p["metadata"]["managedFields"].is_null());
    // Every namespace: other tests' objects are in this table too, so only cells are compared (the padding
    // of a column depends on its longest cell, whoever's it is).
    let (_, out, _) = tagpilot(&kc, &["get", "images", "all", "-A"], "");
    let rows = table(&out);
    assert!(
        rows.iter()
            .any(|r| r.first().map(String::as_str) == Some("NAMESPACE")),
        "{out}"
    );
    let latest = format!("{image}:5.0.3");
    assert!(
        rows.iter().any(|r| r.len() > 2
            && r[0] == ns
            && r[1] == "imagepolicy/podinfo"
            && r.contains(&latest)),
        "{out}"
    );

    // Suspend, a refused reconcile, resume.
    let (code, _, err) = run(&["suspend", "image", "repository", "podinfo"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(&["get", "image", "repository"]);
    assert_eq!(table(&out)[1][2], "True", "SUSPENDED True: {out}");
    let (code, _, err) = run(&["reconcile", "image", "repository", "podinfo"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "resume the suspended ImageRepository '{ns}/podinfo' first"
        )),
        "{err}"
    );
    let (code, _, err) = run(&["resume", "image", "repository", "podinfo"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("✔ ImageRepository reconciliation completed"),
        "{err}"
    );

    // A new tag: reconcile waits for the scan; the policy follows.
    reg.push_tags(&repo_path, &["5.0.4"]).await.unwrap();
    let (code, _, err) = run(&["reconcile", "image", "repository", "podinfo"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("successful scan: found 6 tags"), "{err}");
    let t0 = Instant::now();
    loop {
        let (_, out, _) = run(&["get", "image", "policy"]);
        if out.contains(&format!("{image}:5.0.4")) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Delete asks first.
    let (code, _, err) = tagpilot(
        &kc,
        &["delete", "image", "policy", "podinfo", "-n", &ns],
        "n\n",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("Are you sure you want to delete this image policy? [y/N]"),
        "{err}"
    );
    assert!(err.contains("aborting"), "{err}");
    let (code, _, err) = run(&["delete", "image", "policy", "podinfo", "-s"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["get", "image", "policy", "podinfo"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("ImagePolicy '{ns}/podinfo' not found")),
        "{err}"
    );
    let (code, _, err) = run(&[
        "create",
        "image",
        "policy",
        "bad",
        "--image-ref=podinfo",
        "--select-semver=1.x.x.x!",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("spec.policy.semver.range \"1.x.x.x!\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_cluster_without_the_crds_is_told_how_to_install_them() {
    let infra = Infra::get();
    let port = infra.bare_apiserver_port();
    let kc = infra.start_apiserver("bare", port);
    // Its etcd prefix outlives a run of the suite: whatever reached it before (a benchmark that once
    // talked to this port by mistake left our CRDs there) is removed, so that the cluster is bare.
    delete_crds(&client_for(&kc).await, &IMAGE_CRDS).await;
    let (code, _, err) = tagpilot(&kc, &["get", "image", "repository", "-n", "default"], "");
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "the ImageRepository API (image.toolkit.fluxcd.io/v1) is not installed on this cluster"
        ),
        "{err}"
    );
    assert!(err.contains("kubectl apply -k config/crd"), "{err}");
    let (code, _, err) = tagpilot(
        &kc,
        &["suspend", "image", "update", "x", "-n", "default"],
        "",
    );
    assert_eq!(code, 1);
    assert!(err.contains("is not installed on this cluster"), "{err}");
}

#[test]
fn version_and_shell_completion() {
    let out = Command::new(binary_path("tagpilot"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("tagpilot {}", env!("CARGO_PKG_VERSION"))
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(binary_path("tagpilot"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("tagpilot"), "{shell}");
        assert!(
            script.contains("reconcile"),
            "{shell}: subcommands completed"
        );
    }
}

/// The screen of a tmux session.
fn screen(session: &str) -> String {
    let out = Command::new("tmux")
        .args(["capture-pane", "-p", "-t", session])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test]
async fn the_spinner_is_readable_in_a_terminal_and_gone_when_done() {
    crate::reflector::shared_controller();
    let infra = Infra::get();
    let client = infra.kube_client().await;
    let ns = unique_name("cli-tty");
    namespace(&client, &ns, &[]).await;
    let session = unique_name("tagpilot-tty");
    // A registry that refuses: the wait runs into its timeout, drawing the spinner meanwhile.
    let command = format!(
        "{} create image repository dead --image=127.0.0.1:1/nothing/here -n {ns} --kubeconfig {} --timeout 4s; echo EXIT=$?; sleep 60",
        binary_path("tagpilot").display(),
        infra.kubeconfig_path().display()
    );
    let ok = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "20",
            "-s",
            &session,
            &command,
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let t0 = Instant::now();
    let mut seen_spinner = false;
    let final_screen = loop {
        let s = screen(&session);
        if s.contains("waiting for ImageRepository reconciliation (") {
            seen_spinner = true;
        }
        if s.contains("EXIT=") {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    assert!(seen_spinner, "a spinner line while waiting");
    assert!(final_screen.contains("EXIT=1"), "{final_screen}");
    assert!(
        final_screen.contains("✗ timed out after 4s waiting for ImageRepository reconciliation"),
        "{final_screen}"
    );
    assert!(
        !final_screen.contains("reconciliation ("),
        "the spinner line is cleared: {final_screen}"
    );
    let lines: Vec<&str> = final_screen
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines[0], "✚ generating ImageRepository", "{final_screen}");
}
