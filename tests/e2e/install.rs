//! `tagpilot install` on the real API server, `config/default` accepted by a server-side dry run, and the
//! controllers' RBAC: sufficient (both controllers run Flux's guide as their ServiceAccounts, by impersonation)
//! and minimal (what they never do is denied).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tagpilot_testinfra::{ControllerProcess, Infra, binary_path, succeed, unique_name};

use crate::automation::Setup;
use crate::kube_support::*;

/// A copy of the test kubeconfig that acts as `user` (impersonation), so that RBAC decides as for the
/// ServiceAccount.
fn impersonating(user: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(Infra::get().kubeconfig_path()).unwrap();
    let mut kc: serde_json::Value = yaml_serde::from_str(&text).unwrap();
    for u in kc["users"].as_array_mut().unwrap() {
        u["user"]["as"] = serde_json::json!(user);
    }
    let path = dir.join(format!("{}.kubeconfig", user.replace(':', "_")));
    std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
    path
}

fn kubectl(args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(Infra::get().kubeconfig_path())
        .args(args)
        .output()
        .expect("run kubectl")
}

#[tokio::test]
async fn config_default_applies_and_the_controllers_run_under_their_own_least_privilege_rbac() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // config/default as kustomize builds it, accepted by the API server (dry run, server-side).
    let out = kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=tagpilot-e2e-dry-run",
        "--force-conflicts",
        "-k",
        &root.join("config/default").display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("deployment.apps/image-automation-controller serverside-applied")
    );

    // `tagpilot install` into a namespace of its own (the Deployments cannot start here: no nodes).
    let id = unique_name("rbac");
    let selector = format!("tagpilot.test/dedicated={id}");
    let meta = format!("  labels:\n    tagpilot.test/dedicated: {id}\n");
    // Labelled: the shared controllers leave these objects to the two started below.
    let s = Setup::with_app("install", &["1.0.0", "1.0.1"], "1.0.x", &meta).await;
    let seed = s.head("main");
    let install_ns = unique_name("tagpilot-system");
    succeed(
        Command::new(binary_path("tagpilot"))
            .args(["install", "--wait=false", "-n", &install_ns, "--kubeconfig"])
            .arg(Infra::get().kubeconfig_path()),
    );
    let out = kubectl(&[
        "-n",
        &install_ns,
        "get",
        "deployments,serviceaccounts,services,roles",
        "-o",
        "name",
    ]);
    let names = String::from_utf8_lossy(&out.stdout);
    for want in [
        "deployment.apps/image-reflector-controller",
        "deployment.apps/image-automation-controller",
        "serviceaccount/image-reflector-controller",
        "service/image-automation-controller-metrics",
        "role.rbac.authorization.k8s.io/image-reflector-controller-leader-election",
    ] {
        assert!(names.contains(want), "{want} in {names}");
    }

    // Both controllers as their ServiceAccounts, with leader election in the install namespace.
    let tmp = tempfile::tempdir().unwrap();
    let sa = |c: &str| format!("system:serviceaccount:{install_ns}:{c}");
    let lease_args = [
        "--enable-leader-election",
        "--leader-election-namespace",
        &install_ns,
    ];
    let reflector_kc = impersonating(&sa("image-reflector-controller"), tmp.path());
    let mut args: Vec<&str> = vec!["--watch-label-selector", &selector];
    args.extend(lease_args);
    let mut reflector = crate::reflector::start_controller(&reflector_kc, &id, &args);
    let automation_kc = impersonating(&sa("image-automation-controller"), tmp.path());
    let dir = Infra::get()
        .path("TAGPILOT_TESTINFRA")
        .join(format!("install-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend([
        "--work-dir".into(),
        dir.join("clones").display().to_string(),
    ]);
    let mut automation = ControllerProcess::start(
        &binary_path("image-automation-controller"),
        &automation_kc,
        &all,
        &[],
        &dir.join("controller.log"),
    )
    .unwrap();
    s.automation("auto", &meta, crate::automation::AUTHOR).await;
    let (commit, _) = s.next_commit(seed).await;
    assert_eq!(
        s.facts(commit).changes["app.yaml"][1],
        format!(
            "+image: {}:1.0.1 # {{\"$imagepolicy\": \"{}:app\"}}",
            s.image, s.ns
        )
    );
    wait_for(
        &s.api("ImageUpdateAutomation"),
        "auto",
        Duration::from_secs(30),
        "the push in the status",
        |o| o.data["status"]["lastPushCommit"] == commit.to_string(),
    )
    .await;
    for (c, p) in [("reflector", &reflector), ("automation", &automation)] {
        let log = p.log_text();
        assert!(
            !log.contains("forbidden"),
            "{c} was refused something: {log}"
        );
        assert!(log.contains("acquired leadership"), "{c}: {log}");
    }
    reflector.stop();
    automation.stop();
    for (c, p) in [("reflector", &reflector), ("automation", &automation)] {
        let log = p.log_text();
        // Releasing updates the Lease: the Role allows what the election does.
        assert!(log.contains("released leadership"), "{c}: {log}");
        assert!(!log.contains("forbidden"), "{c}: {log}");
    }

    // Minimal: what the controllers never do is denied.
    for (c, verb, resource) in [
        ("image-reflector-controller", "list", "secrets"),
        (
            "image-reflector-controller",
            "delete",
            "imagerepositories.image.toolkit.fluxcd.io",
        ),
        ("image-automation-controller", "update", "deployments.apps"),
        (
            "image-automation-controller",
            "patch",
            "imagepolicies.image.toolkit.fluxcd.io/status",
        ),
        (
            "image-automation-controller",
            "get",
            "imagerepositories.image.toolkit.fluxcd.io",
        ),
    ] {
        let out = kubectl(&[
            "auth",
            "can-i",
            verb,
            resource,
            "-A",
            &format!("--as={}", sa(c)),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "no",
            "{c} may {verb} {resource}"
        );
    }
    let out = kubectl(&[
        "auth",
        "can-i",
        "get",
        "secrets",
        "-n",
        &s.ns,
        &format!("--as={}", sa("image-automation-controller")),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");

    // uninstall removes what install applied (the CRDs stay).
    succeed(
        Command::new(binary_path("tagpilot"))
            .args(["uninstall", "-s", "-n", &install_ns, "--kubeconfig"])
            .arg(Infra::get().kubeconfig_path()),
    );
    let out = kubectl(&["-n", &install_ns, "get", "deployments", "-o", "name"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");
    let out = kubectl(&[
        "get",
        "crd",
        "imagepolicies.image.toolkit.fluxcd.io",
        "-o",
        "name",
    ]);
    assert!(out.status.success(), "the CRDs stay");
}

#[tokio::test]
async fn bootstrap_commits_the_manifests_next_to_fluxs_own_once() {
    let git = Infra::get().git();
    let flux_kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n";
    let configmap = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: flux-system\n"
        )
    };
    let name = crate::automation::seed_repo(
        &git,
        &[
            (
                "clusters/my-cluster/flux-system/kustomization.yaml",
                flux_kustomization,
            ),
            (
                "clusters/my-cluster/flux-system/gotk-components.yaml",
                &configmap("gotk-components"),
            ),
            (
                "clusters/my-cluster/flux-system/gotk-sync.yaml",
                &configmap("gotk-sync"),
            ),
        ],
    );
    let seed = crate::automation::head(&git, &name, "main");
    let bootstrap = || {
        let mut child = Command::new(binary_path("tagpilot"))
            .args([
                "bootstrap",
                "git",
                "--url",
                &git.http_url(&name),
                "--branch",
                "main",
            ])
            .args([
                "--path",
                "clusters/my-cluster",
                "--username",
                &git.username,
                "--password-stdin",
            ])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(git.password.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let said = bootstrap();
    assert!(said.contains("components manifests pushed"), "{said}");
    let first = crate::automation::head(&git, &name, "main");
    assert_ne!(first, seed);

    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(git.http_url(&name).replacen(
            "http://",
            &format!("http://{}:{}@", git.username, git.password),
            1,
        ))
        .arg(tmp.path().join("clone"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tmp.path().join("clone/clusters/my-cluster/flux-system");
    assert_eq!(
        std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap(),
        format!("{flux_kustomization}- tagpilot-components.yaml\n"),
        "Flux's kustomization keeps its text, with our file added"
    );
    // The directory builds with kustomize, Flux's objects and ours together.
    let out = succeed(Command::new("kubectl").arg("kustomize").arg(&dir));
    let built = String::from_utf8_lossy(&out.stdout);
    assert!(built.contains("name: gotk-sync"));
    assert!(built.contains("name: image-automation-controller"));

    // Again: nothing new to commit.
    let said = bootstrap();
    assert!(
        said.contains("components manifests are up to date"),
        "{said}"
    );
    assert_eq!(crate::automation::head(&git, &name, "main"), first);
}
