//! The container images' root filesystems (`hack/image/rootfs.sh --only`, the Dockerfile's build stage): one
//! image per controller whose entrypoint is that controller (as Flux's, whose Deployments set no `command`);
//! both controllers run from them, chrooted, as user 65534, with exactly the args and env of Flux's
//! Deployments, through Flux's guide (a new tag becomes a commit).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use tagpilot_testinfra::{ControllerProcess, Infra, binary_path, succeed, unique_name};

use crate::automation::{AUTHOR, Setup};

/// A host-side wrapper that runs `entrypoint` of the rootfs chrooted as 65534 (the image's `USER`).
fn wrapper(rootfs: &Path, entrypoint: &str) -> std::path::PathBuf {
    let path = rootfs.with_extension("entrypoint.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec chroot --userspec=65534:65534 {} {entrypoint} \"$@\"\n",
            rootfs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The ENTRYPOINT and USER of a Dockerfile target.
fn dockerfile_target(target: &str) -> (String, String) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let start = text
        .find(&format!("FROM scratch AS {target}\n"))
        .unwrap_or_else(|| panic!("Dockerfile target {target}"));
    let stage = &text[start..];
    let stage = &stage[..stage[1..]
        .find("\nFROM ")
        .map(|i| i + 1)
        .unwrap_or(stage.len())];
    let field = |key: &str| {
        stage
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in target {target}"))
            .trim()
            .to_string()
    };
    let entrypoint: Vec<String> = serde_json::from_str(&field("ENTRYPOINT ")).unwrap();
    assert_eq!(entrypoint.len(), 1, "{entrypoint:?}");
    (entrypoint[0].clone(), field("USER "))
}

#[tokio::test]
async fn each_controller_runs_from_its_own_image_with_fluxs_deployment_args_as_nobody() {
    let infra = Infra::get();
    let debug_dir = binary_path("tagpilot").parent().unwrap().to_path_buf();
    let controllers = [
        "image-reflector-controller",
        "image-automation-controller",
        "tagpilot",
    ];
    let mut roots = std::collections::BTreeMap::new();
    for c in controllers {
        let (entrypoint, user) = dockerfile_target(c);
        assert_eq!(entrypoint, format!("/usr/local/bin/{c}"));
        assert_eq!(
            user, "65534:65534",
            "numeric USER (runAsNonRoot without runAsUser)"
        );
        let rootfs = debug_dir.join(format!("../e2e-rootfs-{}-{c}", std::process::id()));
        succeed(
            Command::new("bash")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/image/rootfs.sh"))
                .arg(&rootfs)
                .args(["--profile", "debug", "--no-build", "--link", "--only", c]),
        );
        let bins: Vec<String> = std::fs::read_dir(rootfs.join("usr/local/bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(bins, [c], "the image of {c} holds only {c}");
        let out = Command::new("chroot")
            .args(["--userspec=65534:65534"])
            .arg(&rootfs)
            .args([&entrypoint, "--version"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{c}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        roots.insert(c, (rootfs, entrypoint));
    }

    // A kubeconfig inside each rootfs, credentials embedded (in a pod: the ServiceAccount's token).
    let b64 = base64::engine::general_purpose::STANDARD;
    let ca = std::fs::read(infra.path("KUBE_CA_FILE")).unwrap();
    let token = std::fs::read_to_string(infra.path("KUBE_TOKEN_FILE")).unwrap();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
         users:\n- name: admin\n  user:\n    token: {}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n\
         current-context: test\n",
        infra.var("KUBE_API_URL"),
        b64.encode(&ca),
        token.trim()
    );
    for (rootfs, _) in roots.values() {
        std::fs::write(rootfs.join("tmp/kubeconfig"), &kubeconfig).unwrap();
        std::fs::set_permissions(
            rootfs.join("tmp/kubeconfig"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }

    let id = unique_name("rootfs");
    let meta = format!("  labels:\n    tagpilot.test/dedicated: {id}\n");
    let s = Setup::with_app("rootfs", &["1.0.0", "1.0.1"], "1.0.x", &meta).await;
    let seed = s.head("main");
    let logs = infra
        .path("TAGPILOT_TESTINFRA")
        .join(format!("rootfs-{id}"));
    std::fs::create_dir_all(&logs).unwrap();
    let start = |c: &str| {
        let (rootfs, entrypoint) = &roots[c];
        // Flux's Deployment args (fluxcd/flux2 manifests/bases; the defaults --storage-path=/data and the
        // temporary directory /tmp are the emptyDir mounts), and only this test's objects.
        let mut args: Vec<String> = crate::flux_drop_in::flux_args(
            "http://notification-controller.flux-system.svc.cluster.local./",
        );
        args.push(format!(
            "--watch-label-selector=tagpilot.test/dedicated={id}"
        ));
        ControllerProcess::start(
            &wrapper(rootfs, entrypoint),
            Path::new("/tmp/kubeconfig"),
            &args,
            &[
                ("RUNTIME_NAMESPACE", s.ns.as_str()),
                ("GOMEMLIMIT", "1073741824"),
                ("HOME", "/tmp"),
            ],
            &logs.join(format!("{c}.log")),
        )
        .unwrap()
    };
    let mut reflector = start("image-reflector-controller");
    let mut automation = start("image-automation-controller");
    s.automation("auto", &meta, AUTHOR).await;
    let (commit, _) = s.next_commit(seed).await;
    assert!(s.facts(commit).changes["app.yaml"][1].contains(":1.0.1 #"));
    reflector.stop();
    automation.stop();
    // The tags were stored in the reflector image's /data, by user 65534.
    let (reflector_root, _) = &roots["image-reflector-controller"];
    let stored = std::fs::read_dir(reflector_root.join("data"))
        .unwrap()
        .count();
    assert!(stored > 0, "tags stored under /data");
    for (rootfs, _) in roots.values() {
        let _ = std::fs::remove_dir_all(rootfs);
        let _ = std::fs::remove_file(rootfs.with_extension("entrypoint.sh"));
    }
}
