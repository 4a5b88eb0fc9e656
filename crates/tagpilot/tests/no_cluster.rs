//! A cluster command with no cluster configured says so once, with how to point at one.

use std::process::Command;

#[test]
fn a_cluster_command_without_a_kubeconfig_says_once_that_no_cluster_was_found() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tagpilot"))
        .args([
            "create",
            "image",
            "repository",
            "podinfo",
            "--image",
            "ghcr.io/stefanprodan/podinfo",
        ])
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("no cluster found").count(), 1, "{err}");
    assert!(err.contains("KUBERNETES_SERVICE_HOST is not set"), "{err}");
    assert!(err.contains(".kube/config does not exist"), "{err}");
    assert!(
        err.contains("--kubeconfig FILE or KUBECONFIG=FILE"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{err}"
    );
    // A $KUBECONFIG that names nothing is named.
    let out = Command::new(env!("CARGO_BIN_EXE_tagpilot"))
        .args(["get", "images", "all"])
        .env_clear()
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("missing"))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("$KUBECONFIG (") && err.contains("names no existing file"),
        "{err}"
    );
}
