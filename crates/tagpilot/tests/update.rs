//! `tagpilot update` as a user runs it on a directory of YAML.

use std::path::Path;
use std::process::{Command, Output};

const DEPLOYMENT: &str = "---\n# podinfo\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\n  namespace: default\n\
spec:\n  template:\n    spec:\n      containers:\n        - name: podinfod\n          \
image: ghcr.io/stefanprodan/podinfo:5.0.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n";

fn tagpilot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tagpilot"))
        .args(args)
        .output()
        .unwrap()
}

/// `tagpilot update --path PATH --policy flux-system:podinfo=...:5.0.3 EXTRA...`
fn update_podinfo(path: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "update",
        "--path",
        path,
        "--policy",
        "flux-system:podinfo=ghcr.io/stefanprodan/podinfo:5.0.3",
    ];
    args.extend_from_slice(extra);
    tagpilot(&args)
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("clusters/my-cluster")).unwrap();
    std::fs::write(
        dir.path()
            .join("clusters/my-cluster/podinfo-deployment.yaml"),
        DEPLOYMENT,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("clusters/my-cluster/broken.yaml"),
        "a: [\"$imagepolicy\"\n",
    )
    .unwrap();
    dir
}

fn read(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("clusters/my-cluster/podinfo-deployment.yaml")).unwrap()
}

#[test]
fn updates_in_place_and_prints_a_summary() {
    let dir = repo();
    let path = dir.path().to_str().unwrap();
    let o = update_podinfo(path, &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(read(dir.path()), DEPLOYMENT.replace("5.0.0", "5.0.3"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("clusters/my-cluster/podinfo-deployment.yaml Deployment/default/podinfo: ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3 (flux-system:podinfo)"), "{stdout}");
    assert!(stdout.ends_with("1 file updated\n"), "{stdout}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: clusters/my-cluster/broken.yaml: invalid YAML"),
        "{stderr}"
    );
    let again = update_podinfo(path, &[]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), "no changes\n");
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let dir = repo();
    let o = tagpilot(&[
        "update",
        "--path",
        dir.path().to_str().unwrap(),
        "--dry-run",
        "--policy",
        "flux-system:podinfo=ghcr.io/stefanprodan/podinfo:5.0.3",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(read(dir.path()), DEPLOYMENT);
    let diff = String::from_utf8_lossy(&o.stdout);
    assert!(diff.starts_with("--- a/clusters/my-cluster/podinfo-deployment.yaml\n+++ b/clusters/my-cluster/podinfo-deployment.yaml\n"), "{diff}");
    assert!(
        diff.contains("+          image: ghcr.io/stefanprodan/podinfo:5.0.3 #"),
        "{diff}"
    );
}

#[test]
fn json_result_from_a_policies_file() {
    let dir = repo();
    let policies = dir.path().join("policies.yaml");
    std::fs::write(
        &policies,
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: podinfo, namespace: flux-system}\n\
         status:\n  latestRef: {name: ghcr.io/stefanprodan/podinfo, tag: 5.0.3, digest: 'sha256:aa'}\n",
    )
    .unwrap();
    let o = tagpilot(&[
        "update",
        "--path",
        dir.path().join("clusters").to_str().unwrap(),
        "--json",
        "--policies",
        policies.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"][0]["path"], "my-cluster/podinfo-deployment.yaml");
    assert_eq!(v["files"][0]["objects"][0]["object"]["kind"], "Deployment");
    assert_eq!(
        v["files"][0]["objects"][0]["changes"][0]["newValue"],
        "ghcr.io/stefanprodan/podinfo:5.0.3@sha256:aa"
    );
    assert_eq!(v["errors"][0]["path"], "my-cluster/broken.yaml");
}

#[test]
fn bad_arguments_exit_2() {
    let dir = repo();
    let path = dir.path().to_str().unwrap();
    for args in [
        vec!["update", "--path", path],
        vec!["update", "--path", path, "--policy", "podinfo=img:1"],
        vec![
            "update",
            "--path",
            "/nonexistent/dir",
            "--policy",
            "a:b=img:1",
        ],
        vec![
            "update",
            "--path",
            path,
            "--policies",
            "/nonexistent/policies.yaml",
        ],
    ] {
        let o = tagpilot(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).starts_with("error: "),
            "{args:?}"
        );
    }
    assert_eq!(read(dir.path()), DEPLOYMENT);
}

const SEED_TEMPLATE: &str = "Automated image update\n\nAutomation name: {{ .AutomationObject }}\n\nFiles:\n\
{{ range $filename, $_ := .Updated.Files -}}\n- {{ $filename }}\n{{ end -}}\n\nObjects:\n\
{{ range $resource, $_ := .Updated.Objects -}}\n- {{ $resource.Kind }} {{ $resource.Name }}\n{{ end -}}\n\n\
Images:\n{{ range .Updated.Images -}}\n- {{.}}\n{{ end -}}\n";

#[test]
fn previews_the_commit_message() {
    let dir = repo();
    let path = dir.path().to_str().unwrap();
    let tmpl = dir.path().join("msg.tmpl");
    std::fs::write(&tmpl, SEED_TEMPLATE).unwrap();
    let o = update_podinfo(
        path,
        &[
            "--dry-run",
            "--message-template",
            tmpl.to_str().unwrap(),
            "--automation",
            "flux-system/podinfo-update",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let message = stdout
        .split_once("\ncommit message:\n")
        .expect("a message section")
        .1;
    assert_eq!(
        message,
        "Automated image update\n\nAutomation name: flux-system/podinfo-update\n\nFiles:\n\
         - clusters/my-cluster/podinfo-deployment.yaml\nObjects:\n- Deployment podinfo\n\
         Images:\n- ghcr.io/stefanprodan/podinfo:5.0.3\n\n"
    );
    assert_eq!(read(dir.path()), DEPLOYMENT, "a dry run writes nothing");

    // v1 model with values, as JSON.
    std::fs::write(&tmpl, "{{ .Values.env }}: {{ range .Changed.Changes }}{{ .OldValue }} -> {{ .NewValue }}{{ end }}").unwrap();
    let o = update_podinfo(
        path,
        &[
            "--json",
            "--message-template",
            tmpl.to_str().unwrap(),
            "--value",
            "env=prod",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["commitMessage"],
        "prod: ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3"
    );
    assert_eq!(read(dir.path()), DEPLOYMENT.replace("5.0.0", "5.0.3"));
}

#[test]
fn a_failing_template_writes_nothing() {
    let dir = repo();
    let path = dir.path().to_str().unwrap();
    let tmpl = dir.path().join("msg.tmpl");
    for (text, want) in [
        (
            "ok\n{{ range .Updated.Images }}",
            "template: commit message:2:",
        ),
        (
            "ok\n\n{{ .Updated.Images.Nope }}",
            "template: commit message:3:",
        ),
    ] {
        std::fs::write(&tmpl, text).unwrap();
        let o = update_podinfo(path, &["--message-template", tmpl.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("--message-template") && stderr.contains(want),
            "{stderr}"
        );
        assert_eq!(
            read(dir.path()),
            DEPLOYMENT,
            "nothing is written when the message fails"
        );
    }
    let o = tagpilot(&[
        "update",
        "--path",
        path,
        "--policy",
        "a:b=img:1",
        "--message-template",
        tmpl.to_str().unwrap(),
        "--value",
        "novalue",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--value \"novalue\": expected KEY=VALUE"));
}
