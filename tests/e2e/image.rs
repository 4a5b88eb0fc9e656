//! The container image's root filesystem (`hack/image/rootfs.sh`, the Dockerfile's build stage): both
//! controllers run from it, chrooted, as user 65534, through Flux's guide (a new tag becomes a commit).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use tagpilot_testinfra::{ControllerProcess, Infra, binary_path, succeed, unique_name};

use crate::automation::{AUTHOR, Setup};

/// A host-side wrapper that runs `binary` of the rootfs chrooted as 65534.
fn wrapper(rootfs: &Path, binary: &str) -> std::path::PathBuf {
    let path = rootfs.with_extension(format!("{binary}.sh"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec chroot --userspec=65534:65534 {} /usr/local/bin/{binary} \"$@\"\n",
            rootfs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn the_controllers_run_from_the_image_rootfs_as_nobody() {
    let infra = Infra::get();
    let debug_dir = binary_path("tagpilot").parent().unwrap().to_path_buf();
    let rootfs = debug_dir.join(format!("../e2e-rootfs-{}", std::process::id()));
    succeed(
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/image/rootfs.sh"))
            .arg(&rootfs)
            .args(["--profile", "debug", "--no-build", "--link"]),
    );
    for b in [
        "tagpilot",
        "image-reflector-controller",
        "image-automation-controller",
    ] {
        let out = Command::new("chroot")
            .args(["--userspec=65534:65534"])
            .arg(&rootfs)
            .args([&format!("/usr/local/bin/{b}"), "--version"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{b}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A kubeconfig inside the rootfs, credentials embedded.
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
    std::fs::write(rootfs.join("tmp/kubeconfig"), kubeconfig).unwrap();
    std::fs::set_permissions(
        rootfs.join("tmp/kubeconfig"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let id = unique_name("rootfs");
    let selector = format!("tagpilot.test/dedicated={id}");
    let meta = format!("  labels:\n    tagpilot.test/dedicated: {id}\n");
    let s = Setup::with_app("rootfs", &["1.0.0", "1.0.1"], "1.0.x", &meta).await;
    let seed = s.head("main");
    let logs = infra
        .path("TAGPILOT_TESTINFRA")
        .join(format!("rootfs-{id}"));
    std::fs::create_dir_all(&logs).unwrap();
    let start = |binary: &str, extra: &[&str]| {
        let mut args = vec!["--watch-label-selector".to_string(), selector.clone()];
        args.extend(extra.iter().map(|a| a.to_string()));
        ControllerProcess::start(
            &wrapper(&rootfs, binary),
            Path::new("/tmp/kubeconfig"),
            &args,
            &[("HOME", "/tmp")],
            &logs.join(format!("{binary}.log")),
        )
        .unwrap()
    };
    let mut reflector = start("image-reflector-controller", &["--storage-path", "/data"]);
    let mut automation = start("image-automation-controller", &["--work-dir", "/tmp"]);
    s.automation("auto", &meta, AUTHOR).await;
    let (commit, _) = s.next_commit(seed).await;
    assert!(s.facts(commit).changes["app.yaml"][1].contains(":1.0.1 #"));
    reflector.stop();
    automation.stop();
    // The tags were stored in the rootfs's /data, by user 65534.
    let stored = std::fs::read_dir(rootfs.join("data")).unwrap().count();
    assert!(stored > 0, "tags stored under /data");
    let _ = std::fs::remove_dir_all(&rootfs);
    for b in ["image-reflector-controller", "image-automation-controller"] {
        let _ = std::fs::remove_file(rootfs.with_extension(format!("{b}.sh")));
    }
}
