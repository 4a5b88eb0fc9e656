//! tagpilot-core's git module against the real git servers: HTTP, HTTPS with a per-repository CA, SSH with
//! known_hosts, pushes to the same and a new branch, extra refspecs, push options, a non-fast-forward race.

use std::path::Path;
use std::process::Command;

use git2::Signature;
use tagpilot_core::git::{Checkout, GitAuth, GitError, PushSpec, clone_branch, commit_all, push};
use tagpilot_testinfra::{GitServer, Infra, succeed, unique_name};

fn http_auth(git: &GitServer) -> GitAuth {
    GitAuth {
        username: Some(git.username.clone()),
        password: Some(git.password.clone()),
        ..GitAuth::default()
    }
}

fn ssh_auth(git: &GitServer) -> GitAuth {
    GitAuth {
        identity: Some(std::fs::read_to_string(&git.ssh_key_file).unwrap()),
        known_hosts: Some(std::fs::read_to_string(&git.known_hosts_file).unwrap()),
        ..GitAuth::default()
    }
}

fn bot() -> Signature<'static> {
    Signature::now("fluxcdbot", "fluxcdbot@users.noreply.github.com").unwrap()
}

fn write(checkout: &Checkout, path: &str, text: &str) {
    let full = checkout.workdir().join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

/// A clone of the server's main branch.
fn clone_main(url: &str, dir: &Path, auth: &GitAuth) -> Result<Checkout, GitError> {
    clone_branch(url, dir, Some("main"), auth)
}

/// `main` of repository `name` cloned over HTTP (with the server's credentials) into `dir`.
fn clone_http(git: &GitServer, name: &str, dir: &Path) -> Checkout {
    clone_main(&git.http_url(name), dir, &http_auth(git)).unwrap()
}

/// A push of HEAD to main.
fn main_branch() -> PushSpec {
    PushSpec {
        branch: "main".into(),
        ..PushSpec::default()
    }
}

/// A repository on the server with one commit on main holding `clusters/app.yaml`.
fn seeded(git: &GitServer) -> String {
    let name = unique_name("src");
    git.create_repo(&name);
    let tmp = tempfile::tempdir().unwrap();
    let c = clone_branch(&git.http_url(&name), tmp.path(), None, &http_auth(git))
        .expect("clone the empty repository");
    write(&c, "clusters/app.yaml", "image: app:1.0.0\n");
    commit_all(&c, &bot(), "seed")
        .unwrap()
        .expect("a first commit");
    push(&c, &http_auth(git), &main_branch()).unwrap();
    name
}

/// `git ls-remote` of the repository over HTTP with the test credentials (refs -> sha).
fn ls_remote(git: &GitServer, name: &str) -> Vec<(String, String)> {
    let url = git.http_url(name).replacen(
        "http://",
        &format!("http://{}:{}@", git.username, git.password),
        1,
    );
    let out = succeed(Command::new("git").args(["ls-remote", &url]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once('\t')
                .map(|(sha, r)| (r.to_string(), sha.to_string()))
        })
        .collect()
}

fn read(c: &Checkout, path: &str) -> String {
    std::fs::read_to_string(c.workdir().join(path)).unwrap()
}

#[test]
fn clone_commit_push_over_http() {
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let c = clone_http(&git, &name, &tmp.path().join("a"));
    assert_eq!(c.branch.as_deref(), Some("main"));
    assert_eq!(
        commit_all(&c, &bot(), "nothing").unwrap(),
        None,
        "an unchanged tree is not committed"
    );
    write(&c, "clusters/app.yaml", "image: app:1.0.1\n");
    let id = commit_all(&c, &bot(), "Update app to 1.0.1\n")
        .unwrap()
        .unwrap();
    push(&c, &http_auth(&git), &main_branch()).unwrap();
    let refs = ls_remote(&git, &name);
    assert!(
        refs.contains(&("refs/heads/main".into(), id.to_string())),
        "{refs:?}"
    );
    let again = clone_http(&git, &name, &tmp.path().join("b"));
    assert_eq!(read(&again, "clusters/app.yaml"), "image: app:1.0.1\n");
    let head = again.repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.author().name().ok(), Some("fluxcdbot"));
    assert_eq!(head.message().ok(), Some("Update app to 1.0.1\n"));
}

#[test]
fn https_trusts_the_secrets_ca_and_nothing_else() {
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let without = clone_main(
        &git.https_url(&name),
        &tmp.path().join("a"),
        &http_auth(&git),
    );
    let Err(err) = without else {
        panic!("a server signed by an unknown CA is refused")
    };
    assert!(matches!(err, GitError::UnverifiedServer { .. }), "{err}");
    let with_ca = GitAuth {
        ca_pem: Some(std::fs::read(&git.ca_file).unwrap()),
        ..http_auth(&git)
    };
    let c = clone_main(&git.https_url(&name), &tmp.path().join("b"), &with_ca).unwrap();
    write(&c, "clusters/app.yaml", "image: app:2.0.0\n");
    commit_all(&c, &bot(), "https").unwrap().unwrap();
    push(&c, &with_ca, &main_branch()).unwrap();
}

#[test]
fn ssh_checks_known_hosts_strictly() {
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let c = clone_main(&git.ssh_url(&name), &tmp.path().join("a"), &ssh_auth(&git)).unwrap();
    write(&c, "clusters/app.yaml", "image: app:3.0.0\n");
    commit_all(&c, &bot(), "ssh").unwrap().unwrap();
    push(&c, &ssh_auth(&git), &main_branch()).unwrap();

    let wrong = GitAuth {
        known_hosts: Some(format!(
            "[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
            port(&git)
        )),
        ..ssh_auth(&git)
    };
    let Err(err) = clone_main(&git.ssh_url(&name), &tmp.path().join("b"), &wrong) else {
        panic!("an unknown host key is refused")
    };
    assert!(matches!(err, GitError::UnverifiedServer { .. }), "{err}");
    let none = GitAuth {
        known_hosts: None,
        ..ssh_auth(&git)
    };
    let Err(err) = clone_main(&git.ssh_url(&name), &tmp.path().join("c"), &none) else {
        panic!("no known_hosts, no connection")
    };
    assert!(matches!(err, GitError::UnverifiedServer { .. }), "{err}");
}

fn port(git: &GitServer) -> String {
    git.ssh_base
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn wrong_password_is_an_authentication_error_without_the_password() {
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let wrong = GitAuth {
        password: Some("not-the-password".into()),
        ..http_auth(&git)
    };
    let Err(err) = clone_main(&git.http_url(&name), tmp.path(), &wrong) else {
        panic!("refused")
    };
    assert!(
        matches!(err, GitError::AuthenticationFailed { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-password"));
    let Err(err) = clone_branch(
        &git.http_url(&name),
        &tmp.path().join("x"),
        Some("nope"),
        &http_auth(&git),
    ) else {
        panic!("a missing branch is an error")
    };
    assert!(matches!(err, GitError::RefNotFound { .. }), "{err}");
}

#[test]
fn push_to_a_new_branch_with_refspecs_and_options() {
    let git = Infra::get().git();
    let name = seeded(&git);
    let repo_dir = git.repos_dir.join(format!("{name}.git"));
    let configured = Command::new("git")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(&repo_dir)
        .args(["config", "receive.advertisePushOptions", "true"])
        .status()
        .unwrap();
    assert!(configured.success());
    let tmp = tempfile::tempdir().unwrap();
    let c = clone_http(&git, &name, &tmp.path().join("a"));
    write(&c, "clusters/app.yaml", "image: app:4.0.0\n");
    let id = commit_all(&c, &bot(), "to a branch").unwrap().unwrap();
    let spec = PushSpec {
        branch: "flux-image-updates".into(),
        force: true,
        refspecs: vec!["HEAD:refs/for/main".into()],
        options: vec!["topic=image-updates".into()],
    };
    push(&c, &http_auth(&git), &spec).unwrap();
    let refs = ls_remote(&git, &name);
    assert!(
        refs.contains(&("refs/heads/flux-image-updates".into(), id.to_string())),
        "{refs:?}"
    );
    assert!(
        refs.contains(&("refs/for/main".into(), id.to_string())),
        "{refs:?}"
    );
    let main = refs.iter().find(|(r, _)| r == "refs/heads/main").unwrap();
    assert_ne!(main.1, id.to_string(), "main is untouched");
    // The update branch is overwritten (force) by a commit that does not descend from it.
    let d = clone_http(&git, &name, &tmp.path().join("b"));
    write(&d, "clusters/app.yaml", "image: app:4.0.1\n");
    let id2 = commit_all(&d, &bot(), "again").unwrap().unwrap();
    push(
        &d,
        &http_auth(&git),
        &PushSpec {
            branch: "flux-image-updates".into(),
            force: true,
            ..PushSpec::default()
        },
    )
    .unwrap();
    assert!(
        ls_remote(&git, &name).contains(&("refs/heads/flux-image-updates".into(), id2.to_string()))
    );
}

#[test]
fn a_push_race_is_a_non_fast_forward_error() {
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let a = clone_http(&git, &name, &tmp.path().join("a"));
    let b = clone_http(&git, &name, &tmp.path().join("b"));
    write(&a, "clusters/app.yaml", "image: app:5.0.0\n");
    commit_all(&a, &bot(), "a").unwrap().unwrap();
    push(&a, &http_auth(&git), &main_branch()).unwrap();
    write(&b, "clusters/other.yaml", "x: 1\n");
    commit_all(&b, &bot(), "b").unwrap().unwrap();
    let err = push(&b, &http_auth(&git), &main_branch()).unwrap_err();
    assert!(matches!(err, GitError::NonFastForward { .. }), "{err}");
    assert!(Path::new(&tmp.path().join("b")).exists());
}

/// main: c1 (tag v1.0.0) - c2 (annotated tag v1.1.0) - c3 (tag v2.0.0-rc.1, also refs/pull/1/head).
fn tagged(git: &GitServer) -> (String, [git2::Oid; 3]) {
    let name = seeded(git);
    let tmp = tempfile::tempdir().unwrap();
    let c = clone_main(&git.http_url(&name), tmp.path(), &http_auth(git)).unwrap();
    let mut ids = Vec::new();
    for (i, version) in ["1.0.0", "1.1.0", "2.0.0-rc.1"].iter().enumerate() {
        write(
            &c,
            "clusters/release.yaml",
            &format!("version: {version}\n"),
        );
        let id = commit_all(&c, &bot(), &format!("release {version}"))
            .unwrap()
            .unwrap();
        let obj = c.repo.find_object(id, None).unwrap();
        if i == 1 {
            c.repo
                .tag(&format!("v{version}"), &obj, &bot(), "annotated", false)
                .unwrap();
        } else {
            c.repo
                .tag_lightweight(&format!("v{version}"), &obj, false)
                .unwrap();
        }
        ids.push(id);
    }
    let refspecs = ["v1.0.0", "v1.1.0", "v2.0.0-rc.1"]
        .iter()
        .map(|t| format!("refs/tags/{t}:refs/tags/{t}"))
        .chain(["HEAD:refs/pull/1/head".to_string()]);
    push(
        &c,
        &http_auth(git),
        &PushSpec {
            branch: "main".into(),
            refspecs: refspecs.collect(),
            ..PushSpec::default()
        },
    )
    .unwrap();
    (name, [ids[0], ids[1], ids[2]])
}

#[test]
fn checkout_tags_semver_names_and_commits() {
    use tagpilot_core::git::{CheckoutRef, clone_ref};
    let git = Infra::get().git();
    let (name, [c1, c2, c3]) = tagged(&git);
    let url = git.http_url(&name);
    let tmp = tempfile::tempdir().unwrap();
    let at = |dir: &str, r: CheckoutRef| {
        clone_ref(&url, &tmp.path().join(dir), &r, &http_auth(&git))
            .map(|c| (c.head().unwrap(), c.branch))
    };
    assert_eq!(
        at("tag", CheckoutRef::Tag("v1.0.0".into())).unwrap(),
        (c1, None)
    );
    assert_eq!(
        at("annotated", CheckoutRef::Tag("v1.1.0".into())).unwrap(),
        (c2, None),
        "annotated tags are peeled"
    );
    assert_eq!(
        at("semver", CheckoutRef::SemVer("1.x".into())).unwrap().0,
        c2
    );
    assert_eq!(
        at("semver-pre", CheckoutRef::SemVer(">=2.0.0-0".into()))
            .unwrap()
            .0,
        c3
    );
    assert_eq!(
        at("name", CheckoutRef::Name("refs/pull/1/head".into()))
            .unwrap()
            .0,
        c3
    );
    let commit = CheckoutRef::Commit {
        sha: c1.to_string(),
        branch: Some("main".into()),
    };
    assert_eq!(at("commit", commit).unwrap().0, c1);
    assert_eq!(
        at("branch", CheckoutRef::Branch(None)).unwrap(),
        (c3, Some("main".into()))
    );
    for (dir, missing) in [
        ("m1", CheckoutRef::Tag("v9.9.9".into())),
        ("m2", CheckoutRef::SemVer("9.x".into())),
        (
            "m3",
            CheckoutRef::Commit {
                sha: "0123456789012345678901234567890123456789".into(),
                branch: None,
            },
        ),
    ] {
        let err = at(dir, missing).unwrap_err();
        assert!(matches!(err, GitError::RefNotFound { .. }), "{err}");
    }
}

#[test]
fn a_shallow_branch_clone_commits_and_pushes() {
    use tagpilot_core::git::{CheckoutRef, clone_ref, commit_files};
    let git = Infra::get().git();
    let (name, [_, _, c3]) = tagged(&git);
    let tmp = tempfile::tempdir().unwrap();
    let main = CheckoutRef::Branch(Some("main".into()));
    let c = clone_ref(&git.http_url(&name), tmp.path(), &main, &http_auth(&git)).unwrap();
    assert!(c.repo.is_shallow(), "only the tip is fetched");
    write(&c, "clusters/app.yaml", "image: app:2.0.0\n");
    std::fs::remove_file(c.workdir().join("clusters/release.yaml")).unwrap();
    // Only the named path is staged: the removal is not part of this commit.
    let x = commit_files(&c, &["clusters/app.yaml"], &bot(), "app only")
        .unwrap()
        .unwrap();
    let tree = c.repo.find_commit(x).unwrap().tree().unwrap();
    assert!(tree.get_path(Path::new("clusters/release.yaml")).is_ok());
    assert_eq!(c.repo.find_commit(x).unwrap().parent_id(0).unwrap(), c3);
    // A named path that no longer exists is staged as deleted.
    let paths = ["clusters/app.yaml", "clusters/release.yaml"];
    let id = commit_files(&c, &paths, &bot(), "from a shallow clone")
        .unwrap()
        .unwrap();
    let tree = c.repo.find_commit(id).unwrap().tree().unwrap();
    assert!(tree.get_path(Path::new("clusters/release.yaml")).is_err());
    assert_eq!(
        commit_files(&c, &paths, &bot(), "again").unwrap(),
        None,
        "nothing left to commit"
    );
    push(&c, &http_auth(&git), &main_branch()).unwrap();
    assert!(ls_remote(&git, &name).contains(&("refs/heads/main".into(), id.to_string())));
}

pub fn keygen(path: &Path, passphrase: &str) -> (String, String) {
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "fluxcdbot",
            "-f",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let public = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    (std::fs::read_to_string(path).unwrap(), public)
}

#[test]
fn ssh_signed_commits_verify_with_git() {
    use tagpilot_core::git::{Signer, commit_files};
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let (identity, public) = keygen(&tmp.path().join("signing"), "");
    let (_, other_public) = keygen(&tmp.path().join("other"), "");
    let mut c = clone_http(&git, &name, &tmp.path().join("a"));
    c.signer = Some(Signer::ssh(&identity, None).unwrap());
    write(&c, "clusters/app.yaml", "image: app:6.0.0\n");
    let id = commit_files(&c, &["clusters/app.yaml"], &bot(), "Update app to 6.0.0\n")
        .unwrap()
        .unwrap();
    assert_eq!(c.head().unwrap(), id, "HEAD follows the signed commit");
    push(&c, &http_auth(&git), &main_branch()).unwrap();

    let fresh = clone_http(&git, &name, &tmp.path().join("b"));
    assert_eq!(fresh.head().unwrap(), id);
    let verify = |signer: &str| {
        let allowed = tmp.path().join("allowed_signers");
        std::fs::write(
            &allowed,
            format!("fluxcdbot@users.noreply.github.com {signer}\n"),
        )
        .unwrap();
        Command::new("git")
            .arg("-C")
            .arg(fresh.workdir())
            .args(["-c", "gpg.format=ssh", "-c"])
            .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
            .args(["verify-commit", "HEAD"])
            .output()
            .unwrap()
    };
    let good = verify(&public);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        String::from_utf8_lossy(&good.stderr).contains("Good \"git\" signature"),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        !verify(&other_public).status.success(),
        "another key does not verify"
    );

    let (encrypted, _) = keygen(&tmp.path().join("encrypted"), "passphrase");
    assert!(Signer::ssh(&encrypted, Some("passphrase")).is_ok());
    let err = Signer::ssh(&encrypted, None).unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
    let err = Signer::ssh(&encrypted, Some("wrong")).unwrap_err();
    assert!(!err.to_string().contains("wrong"), "{err}");
}

/// Runs gpg in its own home; the agent it starts is stopped by [`GpgHome`]'s drop.
pub struct GpgHome(tempfile::TempDir);

impl GpgHome {
    pub fn new() -> GpgHome {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        GpgHome(dir)
    }

    fn gpg(&self, args: &[&str]) -> std::process::Output {
        Command::new("gpg")
            .env("GNUPGHOME", self.0.path())
            .args(["--batch", "--yes"])
            .args(args)
            .output()
            .unwrap()
    }

    /// A new key for fluxcdbot, exported armored and protected with `passphrase`.
    pub fn new_key(&self, algo: &str, passphrase: &str) -> String {
        let uid = "fluxcdbot <fluxcdbot@users.noreply.github.com>";
        let o = self.gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            uid,
            algo,
            "sign",
            "never",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = self.gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
            "--armor",
            "--export-secret-keys",
            uid,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn verify_commit(&self, dir: &Path) -> std::process::Output {
        Command::new("git")
            .env("GNUPGHOME", self.0.path())
            .arg("-C")
            .arg(dir)
            .args(["verify-commit", "HEAD"])
            .output()
            .unwrap()
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.0.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

#[test]
fn openpgp_signed_commits_verify_with_git() {
    use tagpilot_core::git::{Signer, commit_files};
    let git = Infra::get().git();
    let stranger = GpgHome::new();
    stranger.new_key("ed25519", "");
    for (algo, passphrase) in [("ed25519", "s3cret-pass"), ("rsa3072", "")] {
        let home = GpgHome::new();
        let armored = home.new_key(algo, passphrase);
        let name = seeded(&git);
        let tmp = tempfile::tempdir().unwrap();
        let mut c = clone_http(&git, &name, &tmp.path().join("a"));
        let pass = (!passphrase.is_empty()).then_some(passphrase);
        c.signer = Some(Signer::openpgp(&armored, pass).unwrap());
        write(&c, "clusters/app.yaml", "image: app:7.0.0\n");
        let id = commit_files(&c, &["clusters/app.yaml"], &bot(), "Update app to 7.0.0\n")
            .unwrap()
            .unwrap();
        push(&c, &http_auth(&git), &main_branch()).unwrap();
        let fresh = clone_http(&git, &name, &tmp.path().join("b"));
        assert_eq!(fresh.head().unwrap(), id);
        let good = home.verify_commit(fresh.workdir());
        let stderr = String::from_utf8_lossy(&good.stderr);
        assert!(
            good.status.success() && stderr.contains("Good signature from \"fluxcdbot"),
            "{algo}: {stderr}"
        );
        assert!(
            !stranger.verify_commit(fresh.workdir()).status.success(),
            "{algo}: an unknown key does not verify"
        );
        if !passphrase.is_empty() {
            let err = Signer::openpgp(&armored, None).unwrap_err().to_string();
            assert!(err.contains("no passphrase"), "{err}");
            let err = Signer::openpgp(&armored, Some("wrong-guess"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("does not unlock") && !err.contains("wrong-guess"),
                "{err}"
            );
        }
    }
    let err = Signer::openpgp(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not an armored OpenPGP private key"), "{err}");
}

/// Another client pushes `file` to main, as a second automation or a person would.
fn push_elsewhere(git: &GitServer, name: &str, dir: &Path, file: &str) -> git2::Oid {
    let c = clone_main(&git.http_url(name), dir, &http_auth(git)).unwrap();
    write(&c, file, "x: 1\n");
    let id = commit_all(&c, &bot(), &format!("add {file}"))
        .unwrap()
        .unwrap();
    push(&c, &http_auth(git), &main_branch()).unwrap();
    id
}

#[test]
fn a_lost_push_race_reclones_and_reapplies_once() {
    use tagpilot_core::git::apply_and_push;
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let url = git.http_url(&name);
    let mut applied = 0;
    let pushed = apply_and_push::<GitError>(
        &tmp.path().join("work"),
        |dir| clone_main(&url, dir, &http_auth(&git)),
        &http_auth(&git),
        |_| main_branch(),
        |c| {
            applied += 1;
            if applied == 1 {
                // Someone else pushes between our clone and our push.
                push_elsewhere(
                    &git,
                    &name,
                    &tmp.path().join("other"),
                    "clusters/other.yaml",
                );
            }
            write(c, "clusters/app.yaml", "image: app:8.0.0\n");
            commit_all(c, &bot(), "Update app to 8.0.0")
        },
    )
    .unwrap()
    .expect("a commit was pushed");
    assert_eq!(pushed.attempts, 2);
    assert_eq!(applied, 2);
    let fresh = clone_main(&url, &tmp.path().join("fresh"), &http_auth(&git)).unwrap();
    assert_eq!(fresh.head().unwrap(), pushed.commit);
    assert_eq!(read(&fresh, "clusters/app.yaml"), "image: app:8.0.0\n");
    assert_eq!(
        read(&fresh, "clusters/other.yaml"),
        "x: 1\n",
        "the other push is kept"
    );

    // Losing twice is reported, not retried forever.
    let mut round = 0;
    let err = apply_and_push::<GitError>(
        &tmp.path().join("work2"),
        |dir| clone_main(&url, dir, &http_auth(&git)),
        &http_auth(&git),
        |_| main_branch(),
        |c| {
            round += 1;
            push_elsewhere(
                &git,
                &name,
                &tmp.path().join(format!("other{round}")),
                &format!("f{round}.yaml"),
            );
            write(c, "clusters/app.yaml", &format!("image: app:9.0.{round}\n"));
            commit_all(c, &bot(), "Update app")
        },
    )
    .unwrap_err();
    assert!(matches!(err, GitError::NonFastForward { .. }), "{err}");
    assert_eq!(round, 2);

    // Nothing to change: nothing pushed.
    let none = apply_and_push::<GitError>(
        &tmp.path().join("work3"),
        |dir| clone_main(&url, dir, &http_auth(&git)),
        &http_auth(&git),
        |_| main_branch(),
        |_| Ok(None),
    )
    .unwrap();
    assert!(none.is_none());
}

#[test]
fn remote_head_is_read_without_a_clone() {
    use tagpilot_core::git::{remote_head, revision};
    let git = Infra::get().git();
    let name = seeded(&git);
    let tmp = tempfile::tempdir().unwrap();
    let c = clone_http(&git, &name, &tmp.path().join("a"));
    let first = c.head().unwrap();
    for (url, auth) in [
        (git.http_url(&name), http_auth(&git)),
        (git.ssh_url(&name), ssh_auth(&git)),
    ] {
        assert_eq!(
            remote_head(&url, Some("main"), &auth).unwrap(),
            Some(("main".into(), first)),
            "{url}"
        );
        assert_eq!(
            remote_head(&url, None, &auth).unwrap(),
            Some(("main".into(), first)),
            "{url}: default branch"
        );
        assert_eq!(remote_head(&url, Some("nope"), &auth).unwrap(), None);
    }
    assert_eq!(revision("main", first), format!("main@sha1:{first}"));
    let second = push_elsewhere(&git, &name, &tmp.path().join("b"), "new.yaml");
    assert_eq!(
        remote_head(&git.http_url(&name), Some("main"), &http_auth(&git)).unwrap(),
        Some(("main".into(), second))
    );
    let bearer = GitAuth {
        bearer_token: Some("t".into()),
        ..GitAuth::default()
    };
    assert_eq!(
        remote_head(&git.http_url(&name), Some("main"), &bearer).unwrap(),
        None,
        "unknown with a bearer token"
    );
    let wrong = GitAuth {
        username: Some(git.username.clone()),
        password: Some("wrong".into()),
        ..GitAuth::default()
    };
    let err = remote_head(&git.http_url(&name), Some("main"), &wrong)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("wrong"), "{err}");
}
