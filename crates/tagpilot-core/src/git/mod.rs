//! Git source: clone a repository, commit the changed files and push, as the image update automation does,
//! on git2 (libgit2), with the authentication a Flux GitRepository's secret gives.
//!
//! - HTTPS: `username`/`password` (Basic), `bearerToken` (an `Authorization: Bearer` header), `ca.crt` (the
//!   server certificate is verified against it, per repository, with rustls-webpki).
//! - SSH: `identity` (a private key, optional `password`) and `known_hosts`, checked strictly: a host whose key
//!   is not listed is refused with an error naming the host.
//! - Pushes report refs the server rejected (libgit2 only reports them through a callback): a non-fast-forward
//!   rejection is [`GitError::NonFastForward`], so that the caller can clone again and re-apply.
//!
//! Credentials never appear in errors or `Debug` output.
//!
//! Modules: [`clone`] (clone, fetch, switch to the push branch), [`commit`] (stage and commit, signed),
//! [`push`] (push with rejected refs, ls-remote, the apply-and-push retry), [`signing`] (OpenPGP and SSH
//! signers); here the errors and the checkout.

mod auth;
pub mod cache;
mod clone;
mod commit;
mod push;
mod signing;

use std::path::Path;

use git2::{Oid, PushOptions, Repository, Signature};

pub use auth::GitAuth;
pub use clone::{
    CheckoutRef, branch_holds, checkout_tree_of, clone_branch, clone_ref, head_parent,
    switch_branch,
};
pub use commit::{commit_all, commit_files, tree_with};
pub use push::{PushSpec, Pushed, apply_and_push, push, remote_head, revision};
pub use signing::Signer;

/// What went wrong with git. Messages name the repository URL (without credentials) and the ref.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    /// Authentication refused or missing.
    #[error("git authentication failed for {}: {message}", redact_url(.url))]
    AuthenticationFailed {
        /// Repository URL.
        url: String,
        /// What the server or libgit2 said.
        message: String,
    },
    /// The SSH host key is not in known_hosts, or the TLS certificate does not verify.
    #[error("cannot verify the server of {}: {message}", redact_url(.url))]
    UnverifiedServer {
        /// Repository URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The branch, tag or commit to check out does not exist.
    #[error("{}: {what} not found", redact_url(.url))]
    RefNotFound {
        /// Repository URL.
        url: String,
        /// `branch "x"`, ...
        what: String,
    },
    /// The remote has moved on: the push was rejected as not a fast-forward.
    #[error(
        "push to {} rejected: {reference} is not a fast-forward (another commit was pushed first)",
        redact_url(.url)
    )]
    NonFastForward {
        /// Repository URL.
        url: String,
        /// The rejected ref.
        reference: String,
    },
    /// The server rejected a ref for another reason.
    #[error("push to {} rejected: {reference}: {message}", redact_url(.url))]
    PushRejected {
        /// Repository URL.
        url: String,
        /// The rejected ref.
        reference: String,
        /// The server's reason.
        message: String,
    },
    /// The secret's data cannot be used.
    #[error("invalid git credentials: {0}")]
    InvalidAuth(String),
    /// Anything else libgit2 reported.
    #[error("git {operation} {}: {message}", redact_url(.url))]
    Git {
        /// `clone`, `push`, `commit`, ...
        operation: &'static str,
        /// Repository URL.
        url: String,
        /// libgit2's message.
        message: String,
    },
}

/// `url` without the password of its user part (`https://user:secret@host/r` -> `https://user:***@host/r`), as
/// errors show it.
pub fn redact_url(url: &str) -> String {
    crate::sanitize::url(url)
}

/// A clone checked out on a branch (or detached at a commit), ready to commit.
pub struct Checkout {
    /// The repository.
    pub repo: Repository,
    /// The remote URL (without credentials).
    pub url: String,
    /// The branch checked out, when it is one.
    pub branch: Option<String>,
    /// Signs the commits made on this checkout (`git.commit.signingKey`), when set.
    pub signer: Option<Signer>,
}
impl Checkout {
    /// The working directory.
    pub fn workdir(&self) -> &Path {
        self.repo.workdir().expect("clones are not bare")
    }

    /// The commit checked out.
    pub fn head(&self) -> Result<git2::Oid, GitError> {
        self.repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| git_error("read HEAD of", &self.url, e))
    }
}

fn git_error(operation: &'static str, url: &str, e: git2::Error) -> GitError {
    // The git server's words: redacted and capped (they can quote URLs and be of any length).
    let message = crate::sanitize::message(e.message());
    let lower = message.to_lowercase();
    let url = url.to_string();
    if e.code() == git2::ErrorCode::Certificate
        || lower.contains("hostkey")
        || lower.contains("host key")
        || lower.contains("known_hosts")
        || lower.contains("certificate")
    {
        GitError::UnverifiedServer { url, message }
    } else if e.code() == git2::ErrorCode::Auth
        || lower.contains("authentication")
        || lower.contains("authenticate")
        || lower.contains("status code: 401")
    {
        GitError::AuthenticationFailed { url, message }
    } else {
        GitError::Git {
            operation,
            url,
            message,
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn urls_in_errors_hide_passwords() {
        assert_eq!(
            redact_url("https://bot:s3cret@git.example.com/org/repo.git"),
            "https://bot:***@git.example.com/org/repo.git"
        );
        assert_eq!(
            redact_url("ssh://git@host:22/r.git"),
            "ssh://git@host:22/r.git"
        );
        assert_eq!(redact_url("https://host/r.git"), "https://host/r.git");
        let e = GitError::RefNotFound {
            url: "https://bot:s3cret@host/r.git".into(),
            what: "branch \"x\"".into(),
        };
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains("bot:***@host"), "{e}");
    }

    /// A bare repository with `main` and `auto` (one commit each); returns its path and `auto`'s commit.
    fn remote_with_push_branch(dir: &Path) -> (PathBuf, Oid) {
        let bare = dir.join("remote.git");
        let repo = Repository::init_bare(&bare).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = {
            let mut b = repo.treebuilder(None).unwrap();
            let blob = repo.blob(b"a: 1\n").unwrap();
            b.insert("a.yaml", blob, 0o100644).unwrap();
            b.write().unwrap()
        };
        let tree = repo.find_tree(tree).unwrap();
        let main = repo
            .commit(Some("refs/heads/main"), &sig, &sig, "main", &tree, &[])
            .unwrap();
        let main = repo.find_commit(main).unwrap();
        let auto = repo
            .commit(
                Some("refs/heads/auto"),
                &sig,
                &sig,
                "history",
                &tree,
                &[&main],
            )
            .unwrap();
        repo.set_head("refs/heads/main").unwrap();
        (bare, auto)
    }

    #[test]
    fn a_failed_fetch_of_an_existing_push_branch_is_an_error_not_an_absent_branch() {
        let dir = tempfile::tempdir().unwrap();
        let (bare, auto) = remote_with_push_branch(dir.path());
        let url = bare.display().to_string();
        let auth = GitAuth::default();
        // Healthy: the branch exists and is checked out.
        let mut c = clone_branch(&url, &dir.path().join("c1"), Some("main"), &auth).unwrap();
        assert!(switch_branch(&mut c, "auto", &auth).unwrap());
        assert_eq!(c.head().unwrap(), auto);
        // Absent: starts at the checkout.
        let mut c = clone_branch(&url, &dir.path().join("c2"), Some("main"), &auth).unwrap();
        assert!(!switch_branch(&mut c, "new-branch", &auth).unwrap());
        // The branch moves on the remote to a commit that is then lost: fetching it fails with "object not
        // found". That is an error, not "the branch does not exist" (which would rebuild the branch from the
        // checkout and overwrite its history).
        let mut c = clone_branch(&url, &dir.path().join("c3"), Some("main"), &auth).unwrap();
        let remote = Repository::open_bare(&bare).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parent = remote.find_commit(auto).unwrap();
        let next = remote
            .commit(
                Some("refs/heads/auto"),
                &sig,
                &sig,
                "more history",
                &parent.tree().unwrap(),
                &[&parent],
            )
            .unwrap();
        let hex = next.to_string();
        std::fs::remove_file(bare.join("objects").join(&hex[..2]).join(&hex[2..])).unwrap();
        let e = switch_branch(&mut c, "auto", &auth).unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
    }
}
