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

mod auth;

use std::path::{Path, PathBuf};

use git2::{Oid, PushOptions, Repository, Signature};

pub use auth::GitAuth;

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

/// A commit signer, as `git.commit.signingKey` gives it: an OpenPGP key (type `gpg`: `git.asc` and an optional
/// `passphrase`) or an SSH key (type `ssh`: `identity` and an optional `password`, verified with
/// `gpg.format=ssh`).
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

#[derive(Clone)]
enum SigningKey {
    Ssh(Box<ssh_key::PrivateKey>),
    OpenPgp(Box<pgp::composed::SignedSecretKey>, Option<String>),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            SigningKey::Ssh(k) => write!(f, "Signer(ssh {})", k.algorithm()),
            SigningKey::OpenPgp(k, _) => {
                use pgp::types::KeyDetails as _;
                write!(f, "Signer(openpgp {:?})", k.primary_key.fingerprint())
            }
        }
    }
}

impl Signer {
    /// From a signing-key Secret as Flux reads it: `type` `gpg` (the default) takes `git.asc` and optional
    /// `passphrase`; `ssh` takes `identity` and optional `password`.
    pub fn from_secret_data(
        kind: &str,
        data: &std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<Signer, GitError> {
        let text = |key: &str| -> Result<Option<String>, GitError> {
            data.get(key)
                .map(|v| {
                    String::from_utf8(v.clone()).map_err(|_| {
                        GitError::InvalidAuth(format!(
                            "signing key secret: \"{key}\" is not UTF-8 text"
                        ))
                    })
                })
                .transpose()
        };
        let (key_field, pass_field) = match kind {
            "" | "gpg" => ("git.asc", "passphrase"),
            "ssh" => ("identity", "password"),
            other => {
                return Err(GitError::InvalidAuth(format!(
                    "signing key type {other:?}: expected gpg or ssh"
                )));
            }
        };
        let key = text(key_field)?.ok_or_else(|| {
            GitError::InvalidAuth(format!("the signing key secret has no \"{key_field}\" key"))
        })?;
        let pass = text(pass_field)?;
        if key_field == "identity" {
            Signer::ssh(&key, pass.as_deref())
        } else {
            Signer::openpgp(&key, pass.as_deref())
        }
    }

    /// An SSH signer from an OpenSSH private key (`identity`), decrypted with `password` when it has one.
    pub fn ssh(identity: &str, password: Option<&str>) -> Result<Signer, GitError> {
        let key = ssh_key::PrivateKey::from_openssh(identity).map_err(|e| {
            GitError::InvalidAuth(format!(
                "the signing key is not an OpenSSH private key: {e}"
            ))
        })?;
        let key = match (key.is_encrypted(), password) {
            (true, Some(p)) => key.decrypt(p).map_err(|_| {
                GitError::InvalidAuth("the signing key's password does not decrypt it".into())
            })?,
            (true, None) => {
                return Err(GitError::InvalidAuth(
                    "the signing key is encrypted and no password is given".into(),
                ));
            }
            (false, _) => key,
        };
        Ok(Signer {
            key: SigningKey::Ssh(Box::new(key)),
        })
    }

    /// An OpenPGP signer from an ASCII-armored private key (`git.asc`), unlocked with `passphrase` when it
    /// is protected. The primary key signs. The key is tried once here, so that a wrong passphrase is
    /// reported before anything is committed.
    pub fn openpgp(armored: &str, passphrase: Option<&str>) -> Result<Signer, GitError> {
        use pgp::composed::Deserializable as _;
        let (key, _) = pgp::composed::SignedSecretKey::from_string(armored).map_err(|e| {
            GitError::InvalidAuth(format!(
                "the signing key is not an armored OpenPGP private key: {e}"
            ))
        })?;
        let signer = Signer {
            key: SigningKey::OpenPgp(Box::new(key), passphrase.map(str::to_string)),
        };
        signer.sign(b"").map_err(|_| {
            GitError::InvalidAuth(match passphrase {
                Some(_) => "the signing key's passphrase does not unlock it".into(),
                None => "the signing key is protected and no passphrase is given".into(),
            })
        })?;
        Ok(signer)
    }

    /// The armored signature of a commit buffer, as git writes it in the `gpgsig` header.
    fn sign(&self, content: &[u8]) -> Result<String, GitError> {
        match &self.key {
            SigningKey::Ssh(key) => {
                let sig = key
                    .sign("git", ssh_key::HashAlg::Sha512, content)
                    .map_err(|e| {
                        GitError::InvalidAuth(format!("cannot sign with the signing key: {e}"))
                    })?;
                sig.to_pem(ssh_key::LineEnding::LF)
                    .map_err(|e| GitError::InvalidAuth(format!("cannot encode the signature: {e}")))
            }
            SigningKey::OpenPgp(key, passphrase) => {
                let password = match passphrase {
                    Some(p) => pgp::types::Password::from(p.as_str()),
                    None => pgp::types::Password::empty(),
                };
                let sig = pgp::composed::DetachedSignature::sign_binary_data(
                    rand::thread_rng(),
                    &key.primary_key,
                    &password,
                    pgp::crypto::hash::HashAlgorithm::Sha256,
                    content,
                )
                .map_err(|e| {
                    GitError::InvalidAuth(format!("cannot sign with the signing key: {e}"))
                })?;
                sig.to_armored_string(pgp::composed::ArmorOptions::default())
                    .map_err(|e| GitError::InvalidAuth(format!("cannot encode the signature: {e}")))
            }
        }
    }
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

/// Clones `url` into `dir` and checks out `branch` (the remote's default branch when None). Only that
/// branch is fetched.
pub fn clone_branch(
    url: &str,
    dir: &Path,
    branch: Option<&str>,
    auth: &GitAuth,
) -> Result<Checkout, GitError> {
    clone_with(url, dir, branch, auth, 0)
}

fn clone_with(
    url: &str,
    dir: &Path,
    branch: Option<&str>,
    auth: &GitAuth,
    depth: i32,
) -> Result<Checkout, GitError> {
    let mut fetch = auth.fetch_options(url);
    if depth > 0 && !is_local(url) {
        fetch.depth(depth);
    }
    let mut builder = git2::build::RepoBuilder::new();
    builder.fetch_options(fetch);
    builder.with_checkout(checkout_options());
    if let Some(b) = branch {
        builder.branch(b);
    }
    let repo = builder.clone(url, dir).map_err(|e| {
        let not_found = e.code() == git2::ErrorCode::NotFound
            || e.message().contains("reference") && e.message().contains("not found");
        match branch {
            Some(b) if not_found => GitError::RefNotFound {
                url: url.to_string(),
                what: format!("branch \"{b}\""),
            },
            _ => git_error("clone", url, e),
        }
    })?;
    let branch = match branch {
        Some(b) => Some(b.to_string()),
        None => repo
            .head()
            .ok()
            .and_then(|h| h.shorthand().ok().map(str::to_string)),
    };
    Ok(Checkout {
        repo,
        url: url.to_string(),
        branch,
        signer: None,
    })
}

/// What to check out, as a GitRepository's `spec.ref` or an automation's `git.checkout.ref` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckoutRef {
    /// A branch (`ref.branch`); None means the remote's default branch.
    Branch(Option<String>),
    /// A tag (`ref.tag`).
    Tag(String),
    /// The highest tag within a semver range (`ref.semver`), with Flux's policy engine.
    SemVer(String),
    /// A full reference name (`ref.name`, e.g. `refs/pull/1/head`).
    Name(String),
    /// A commit (`ref.commit`), on `branch` when given.
    Commit {
        /// The commit SHA.
        sha: String,
        /// The branch it is fetched from.
        branch: Option<String>,
    },
}

/// Clones `url` into `dir` at `reference`, fetching only what that needs, one commit deep except for a
/// commit checkout (which needs the branch's history). A branch checkout leaves that branch checked out;
/// the others leave HEAD detached.
pub fn clone_ref(
    url: &str,
    dir: &Path,
    reference: &CheckoutRef,
    auth: &GitAuth,
) -> Result<Checkout, GitError> {
    if let CheckoutRef::Branch(branch) = reference {
        return clone_with(url, dir, branch.as_deref(), auth, 1);
    }
    let e = |op, err| git_error(op, url, err);
    let repo = Repository::init(dir).map_err(|x| e("clone", x))?;
    repo.remote("origin", url).map_err(|x| e("clone", x))?;
    let (refspecs, depth): (Vec<String>, i32) = match reference {
        CheckoutRef::Tag(t) => (vec![format!("+refs/tags/{t}:refs/tags/{t}")], 1),
        CheckoutRef::SemVer(_) => (vec!["+refs/tags/*:refs/tags/*".into()], 1),
        CheckoutRef::Name(n) => (vec![format!("+{n}:{n}")], 1),
        CheckoutRef::Commit {
            branch: Some(b), ..
        } => (vec![format!("+refs/heads/{b}:refs/remotes/origin/{b}")], 0),
        CheckoutRef::Commit { branch: None, .. } => {
            (vec!["+refs/heads/*:refs/remotes/origin/*".into()], 0)
        }
        CheckoutRef::Branch(_) => unreachable!("handled above"),
    };
    fetch(&repo, url, &refspecs, depth, auth)?;
    let target = match reference {
        CheckoutRef::Tag(t) => resolve(
            &repo,
            url,
            &format!("refs/tags/{t}"),
            &format!("tag \"{t}\""),
        )?,
        CheckoutRef::Name(n) => resolve(&repo, url, n, &format!("reference \"{n}\""))?,
        CheckoutRef::SemVer(range) => {
            let tags: Vec<String> = repo
                .tag_names(None)
                .map_err(|x| e("clone", x))?
                .iter()
                .flatten()
                .flatten()
                .map(str::to_string)
                .collect();
            let policy = crate::policy::Policy::semver(range).map_err(|x| GitError::Git {
                operation: "checkout",
                url: url.to_string(),
                message: x.to_string(),
            })?;
            let tag = policy.select(&tags).map_err(|_| GitError::RefNotFound {
                url: url.to_string(),
                what: format!("a tag within the semver range \"{range}\""),
            })?;
            resolve(
                &repo,
                url,
                &format!("refs/tags/{tag}"),
                &format!("tag \"{tag}\""),
            )?
        }
        CheckoutRef::Commit { sha, .. } => {
            let not_found = || GitError::RefNotFound {
                url: url.to_string(),
                what: format!("commit \"{sha}\""),
            };
            let oid = git2::Oid::from_str(sha).map_err(|_| not_found())?;
            repo.find_commit(oid).map_err(|_| not_found())?.id()
        }
        CheckoutRef::Branch(_) => unreachable!("handled above"),
    };
    repo.set_head_detached(target)
        .map_err(|x| e("checkout", x))?;
    repo.checkout_head(Some(checkout_options().force()))
        .map_err(|x| e("checkout", x))?;
    Ok(Checkout {
        repo,
        url: url.to_string(),
        branch: None,
        signer: None,
    })
}

fn fetch(
    repo: &Repository,
    url: &str,
    refspecs: &[String],
    depth: i32,
    auth: &GitAuth,
) -> Result<(), GitError> {
    fetch_listing(repo, url, refspecs, depth, auth).0
}

/// Fetches, and returns with the outcome the refs the remote advertised in that conversation (`None` when
/// it never got that far): what the remote has is read from them, never from an error's wording.
fn fetch_listing(
    repo: &Repository,
    url: &str,
    refspecs: &[String],
    depth: i32,
    auth: &GitAuth,
) -> (Result<(), GitError>, Option<Vec<String>>) {
    let mut remote = match repo.find_remote("origin") {
        Ok(r) => r,
        Err(x) => return (Err(git_error("fetch", url, x)), None),
    };
    let mut options = auth.fetch_options(url);
    if depth > 0 && !is_local(url) {
        options.depth(depth);
    }
    let result = remote
        .fetch(refspecs, Some(&mut options), None)
        .map_err(|x| git_error("fetch", url, x));
    let advertised = remote
        .list()
        .ok()
        .map(|heads| heads.iter().map(|h| h.name().to_string()).collect());
    (result, advertised)
}

/// Moves a branch checkout to `branch` for pushing there, as Flux does when `git.push.branch` differs from
/// the checkout branch: when the remote has `branch`, its head (one commit deep) is checked out so that the
/// update lands on top of it; otherwise `branch` starts at the current HEAD. Returns whether the remote had it.
pub fn switch_branch(
    checkout: &mut Checkout,
    branch: &str,
    auth: &GitAuth,
) -> Result<bool, GitError> {
    let url = checkout.url.clone();
    let e = |op, err| git_error(op, &url, err);
    let remote_ref = format!("refs/remotes/origin/{branch}");
    // Whether the branch exists is what the remote advertised; an error is never read as "absent" (that
    // would rebuild the branch from the checkout and force-push it over its history).
    let wanted = format!("refs/heads/{branch}");
    let (fetched, advertised) = fetch_listing(
        &checkout.repo,
        &url,
        &[format!("+refs/heads/{branch}:{remote_ref}")],
        1,
        auth,
    );
    let found = match (fetched, advertised) {
        (Ok(()), Some(refs)) => refs.contains(&wanted),
        (Ok(()), None) => checkout.repo.find_reference(&remote_ref).is_ok(),
        (Err(_), Some(refs)) if !refs.contains(&wanted) => false,
        (Err(e), _) => return Err(e),
    };
    let target = if found {
        resolve(
            &checkout.repo,
            &url,
            &remote_ref,
            &format!("branch \"{branch}\""),
        )?
    } else {
        checkout.head()?
    };
    let commit = checkout
        .repo
        .find_commit(target)
        .map_err(|x| e("checkout", x))?;
    checkout
        .repo
        .branch(branch, &commit, true)
        .map_err(|x| e("checkout", x))?;
    checkout
        .repo
        .set_head(&format!("refs/heads/{branch}"))
        .map_err(|x| e("checkout", x))?;
    checkout
        .repo
        .checkout_head(Some(checkout_options().force()))
        .map_err(|x| e("checkout", x))?;
    checkout.branch = Some(branch.to_string());
    Ok(found)
}

/// Whether `url` is a local repository (a path or `file://`), which libgit2 cannot fetch shallowly.
fn is_local(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with('/') || url.starts_with('.')
}

/// Checkout without filters: the working tree holds the committed bytes (no line-ending conversion, no
/// attribute lookups per file), which is what byte-exact edits need and saves ~10 failed `readlink` calls
/// per file.
fn checkout_options() -> git2::build::CheckoutBuilder<'static> {
    let mut c = git2::build::CheckoutBuilder::new();
    c.disable_filters(true);
    c
}

/// The commit a local reference points at (peeling annotated tags).
fn resolve(repo: &Repository, url: &str, name: &str, what: &str) -> Result<git2::Oid, GitError> {
    repo.find_reference(name)
        .and_then(|r| r.peel_to_commit())
        .map(|c| c.id())
        .map_err(|_| GitError::RefNotFound {
            url: url.to_string(),
            what: what.to_string(),
        })
}

/// Stages every change in the working tree (additions, modifications, deletions) and commits it on HEAD.
/// Returns None when the tree is unchanged (nothing to commit).
pub fn commit_all(
    checkout: &Checkout,
    author: &Signature<'_>,
    message: &str,
) -> Result<Option<git2::Oid>, GitError> {
    let url = &checkout.url;
    let repo = &checkout.repo;
    let e = |op, err| git_error(op, url, err);
    let mut index = repo.index().map_err(|x| e("commit", x))?;
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .map_err(|x| e("commit", x))?;
    index.update_all(["*"], None).map_err(|x| e("commit", x))?;
    index.write().map_err(|x| e("commit", x))?;
    commit_index(checkout, &mut index, author, message)
}

/// Stages only `paths` (relative to the working directory; a missing file is staged as deleted) and commits
/// them on HEAD, without scanning the rest of the tree: what the automation does with the files the setters
/// changed. Returns None when the tree is unchanged.
pub fn commit_files<P: AsRef<Path>>(
    checkout: &Checkout,
    paths: &[P],
    author: &Signature<'_>,
    message: &str,
) -> Result<Option<git2::Oid>, GitError> {
    let url = &checkout.url;
    let repo = &checkout.repo;
    let e = |err| git_error("commit", url, err);
    let mut index = repo.index().map_err(e)?;
    for p in paths {
        let p = p.as_ref();
        if checkout.workdir().join(p).exists() {
            index.add_path(p).map_err(e)?;
        } else {
            index.remove_path(p).map_err(e)?;
        }
    }
    index.write().map_err(e)?;
    commit_index(checkout, &mut index, author, message)
}

fn commit_index(
    checkout: &Checkout,
    index: &mut git2::Index,
    author: &Signature<'_>,
    message: &str,
) -> Result<Option<git2::Oid>, GitError> {
    let url = &checkout.url;
    let repo = &checkout.repo;
    let e = |err| git_error("commit", url, err);
    let tree_id = index.write_tree().map_err(e)?;
    let parent = repo.head().and_then(|h| h.peel_to_commit()).ok();
    if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id).map_err(e)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let Some(signer) = &checkout.signer else {
        return repo
            .commit(Some("HEAD"), author, author, message, &tree, &parents)
            .map(Some)
            .map_err(e);
    };
    let buffer = repo
        .commit_create_buffer(author, author, message, &tree, &parents)
        .map_err(e)?;
    let content = std::str::from_utf8(&buffer).map_err(|_| GitError::Git {
        operation: "commit",
        url: url.clone(),
        message: "the commit is not UTF-8 text".into(),
    })?;
    let signature = signer.sign(content.as_bytes())?;
    let id = repo.commit_signed(content, &signature, None).map_err(e)?;
    // commit_signed moves no ref: advance the branch HEAD points at (creating it on an empty repository).
    let head = repo.find_reference("HEAD").map_err(e)?;
    match head.symbolic_target() {
        Ok(Some(branch)) => {
            repo.reference(branch, id, true, "commit (signed)")
                .map_err(e)?;
        }
        _ => repo.set_head_detached(id).map_err(e)?,
    }
    Ok(Some(id))
}

/// What to push.
#[derive(Clone, Debug, Default)]
pub struct PushSpec {
    /// The branch to push HEAD to (the checkout branch, or another one, which is created or overwritten).
    pub branch: String,
    /// Force the push (as Flux does when pushing to a branch other than the checkout branch).
    pub force: bool,
    /// Extra refspecs pushed in the same push (`refs/heads/x:refs/for/main` for Gerrit).
    pub refspecs: Vec<String>,
    /// Push options (`git push -o`).
    pub options: Vec<String>,
}

/// Pushes HEAD to `spec.branch` (and the extra refspecs). A ref the server rejects is an error.
pub fn push(checkout: &Checkout, auth: &GitAuth, spec: &PushSpec) -> Result<(), GitError> {
    let url = &checkout.url;
    let mut remote = checkout
        .repo
        .find_remote("origin")
        .map_err(|e| git_error("push", url, e))?;
    let rejected: std::cell::RefCell<Vec<(String, String)>> = Default::default();
    let mut callbacks = auth.callbacks(url);
    callbacks.push_update_reference(|reference, status| {
        if let Some(message) = status {
            rejected
                .borrow_mut()
                .push((reference.to_string(), message.to_string()));
        }
        Ok(())
    });
    let mut options = PushOptions::new();
    options.remote_callbacks(callbacks);
    options.proxy_options(auth.proxy_options());
    let headers = auth.extra_headers();
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    options.custom_headers(&header_refs);
    options.follow_redirects(auth.redirects());
    let push_options: Vec<&str> = spec.options.iter().map(String::as_str).collect();
    options.remote_push_options(&push_options);
    let mut refspecs = vec![format!(
        "{}HEAD:refs/heads/{}",
        if spec.force { "+" } else { "" },
        spec.branch
    )];
    refspecs.extend(spec.refspecs.iter().cloned());
    let result = remote.push(&refspecs, Some(&mut options));
    drop(options);
    if let Some((reference, message)) = rejected.into_inner().into_iter().next() {
        return Err(
            if message.contains("non-fast-forward") || message.contains("fetch first") {
                GitError::NonFastForward {
                    url: url.clone(),
                    reference,
                }
            } else {
                GitError::PushRejected {
                    url: url.clone(),
                    reference,
                    message,
                }
            },
        );
    }
    result.map_err(|e| {
        if e.code() == git2::ErrorCode::NotFastForward {
            GitError::NonFastForward {
                url: url.clone(),
                reference: format!("refs/heads/{}", spec.branch),
            }
        } else {
            git_error("push", url, e)
        }
    })
}

/// A fresh temporary directory for a clone (removed when dropped).
pub fn temp_clone_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("tagpilot-clone-").tempdir()
}

/// Where a clone of `url` would go under `base` (a name derived from the URL, for logs and reuse).
pub fn clone_dir_name(base: &Path, url: &str) -> PathBuf {
    let name: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join(name)
}

/// The commit a remote branch points at, read with one ls-remote (no clone): `branch` None reads the
/// remote's default branch. Returns the branch name and commit, or `None` when the branch does not exist.
///
/// libgit2 cannot send custom headers on this connection, so with a `bearerToken` the answer is `Ok(None)`
/// ("unknown") and the caller clones, as it would without the check.
pub fn remote_head(
    url: &str,
    branch: Option<&str>,
    auth: &GitAuth,
) -> Result<Option<(String, Oid)>, GitError> {
    if auth.bearer_token.is_some() {
        return Ok(None);
    }
    let mut remote =
        git2::Remote::create_detached(url).map_err(|e| git_error("ls-remote", url, e))?;
    let connection = remote
        .connect_auth(
            git2::Direction::Fetch,
            Some(auth.callbacks(url)),
            Some(auth.proxy_options()),
        )
        .map_err(|e| git_error("ls-remote", url, e))?;
    let heads = connection
        .list()
        .map_err(|e| git_error("ls-remote", url, e))?;
    let wanted = match branch {
        Some(b) => format!("refs/heads/{b}"),
        None => match heads
            .iter()
            .find(|h| h.name() == "HEAD")
            .and_then(|h| h.symref_target())
        {
            Some(target) => target.to_string(),
            None => return Ok(None),
        },
    };
    Ok(heads.iter().find(|h| h.name() == wanted).map(|h| {
        (
            wanted.trim_start_matches("refs/heads/").to_string(),
            h.oid(),
        )
    }))
}

/// A source revision as Flux writes `status.observedSourceRevision`: `<branch>@sha1:<commit>`.
pub fn revision(branch: &str, commit: Oid) -> String {
    format!("{branch}@sha1:{commit}")
}

/// What [`apply_and_push`] pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The commit pushed.
    pub commit: Oid,
    /// 1, or 2 when the first push lost a race and the update was re-applied on a fresh clone.
    pub attempts: u32,
}

/// Clones (with `clone`, into a fresh directory under `dir`), applies the update (`apply` edits and commits,
/// returning the commit, or `None` when nothing changed) and pushes as `spec` says for that checkout. A push rejected as not a fast-forward
/// (someone pushed in between) re-clones and re-applies once; a second rejection is returned.
pub fn apply_and_push<E: From<GitError>>(
    dir: &Path,
    mut clone: impl FnMut(&Path) -> Result<Checkout, GitError>,
    auth: &GitAuth,
    spec: impl Fn(&Checkout) -> PushSpec,
    mut apply: impl FnMut(&Checkout) -> Result<Option<Oid>, E>,
) -> Result<Option<Pushed>, E> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let work = dir.join(format!("attempt-{attempts}"));
        let checkout = clone(&work)?;
        let Some(commit) = apply(&checkout)? else {
            return Ok(None);
        };
        match push(&checkout, auth, &spec(&checkout)) {
            Ok(()) => return Ok(Some(Pushed { commit, attempts })),
            Err(GitError::NonFastForward { .. }) if attempts == 1 => {
                tracing::info!(url = %redact_url(&checkout.url), "push lost a race; re-cloning and re-applying once");
                drop(checkout);
                let _ = std::fs::remove_dir_all(&work);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
