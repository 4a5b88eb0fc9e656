//! One run of an image update automation, free of cluster I/O, shared by the image-automation-controller
//! and `tagpilot run`: clone the source at its checkout ref, move to the push branch, apply the policies
//! through the setters under the update path, render the commit message, commit (signed when a key is
//! given) and push, re-applying once on a fresh clone when another writer pushed first.
//!
//! Nothing is pushed unless every step succeeded: a template error, an update error or a deadline stops the
//! run before the commit leaves the temporary clone. A run that finds the remote already up to date commits
//! nothing, so repeating a run (after a restart, or from a second process) never pushes the same change
//! twice.

pub mod inputs;
pub mod pull_request;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::git::{self, Checkout, CheckoutRef, GitAuth, GitError, PushSpec, Signer};
use crate::message::{self, MessageInput};
use crate::setters::{self, PolicyImage, Setters, UpdateError, UpdateResult};
use crate::template::{Template, TemplateError};

/// Where the repository is and how to reach it (from a GitRepository and its secrets).
#[derive(Clone, Debug)]
pub struct Source {
    /// The repository URL.
    pub url: String,
    /// What to check out.
    pub checkout: CheckoutRef,
    /// Credentials, trust and proxy.
    pub auth: GitAuth,
}

/// How to commit.
#[derive(Clone, Debug)]
pub struct CommitSettings {
    /// The author's (and committer's) name.
    pub author_name: String,
    /// The author's e-mail.
    pub author_email: String,
    /// Signs commits when set.
    pub signer: Option<Signer>,
    /// `messageTemplate` (Go text/template); the default message when None.
    pub template: Option<String>,
    /// `messageTemplateValues` (`.Values`).
    pub values: BTreeMap<String, String>,
}

/// Where to push.
#[derive(Clone, Debug, Default)]
pub struct PushSettings {
    /// `git.push.branch`: None pushes to the checkout branch.
    pub branch: Option<String>,
    /// `git.push.refspec`: pushed in the same push.
    pub refspec: Option<String>,
    /// `git.push.options`, as `key=value` (or `key`).
    pub options: Vec<String>,
    /// Push to another branch without overwriting it (Flux's feature gate `GitForcePushBranch=false`; by
    /// default a push branch other than the checkout branch is the automation's own and is force-pushed).
    pub no_force_push_branch: bool,
    /// Rebuild `branch` from the checkout each run (a pull request's head): the commit is made on the
    /// checkout's head and force-pushed, unless the branch already holds the same change on the same base.
    pub rebuild: bool,
}

/// One automation run's input.
#[derive(Clone, Debug)]
pub struct Run<'a> {
    /// The automation's namespace (for `.AutomationObject`).
    pub namespace: &'a str,
    /// The automation's name.
    pub name: &'a str,
    /// The repository.
    pub source: &'a Source,
    /// Commit settings.
    pub commit: &'a CommitSettings,
    /// Push settings.
    pub push: &'a PushSettings,
    /// `update.path` within the repository (`""` or `.` for the root).
    pub update_path: &'a str,
    /// The policies to apply (each with its latest image).
    pub policies: &'a [PolicyImage],
    /// A directory for the temporary clones (removed by the caller).
    pub work_dir: &'a Path,
    /// No step starts after this instant.
    pub deadline: Option<Instant>,
    /// The status's `lastPushCommit`: a branch head that is not this commit but is the commit this run
    /// would have made is reported as [`Outcome::earlier_push`].
    pub last_push: Option<&'a str>,
    /// Nothing is pushed when the changes' [`images_fingerprint`] is this one (a pull request for exactly
    /// these images was closed without merging).
    pub hold: Option<&'a str>,
    /// Kept clones: a branch checkout is fetched and reset in its kept clone instead of cloned afresh.
    pub cache: Option<&'a git::cache::CloneCache>,
}

/// A pushed commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedCommit {
    /// The commit.
    pub commit: git2::Oid,
    /// The branch it was pushed to.
    pub branch: String,
    /// The extra refspec pushed with it.
    pub refspec: Option<String>,
    /// The commit message.
    pub message: String,
    /// 1, or 2 when the first push lost a race and the update was applied again on a fresh clone.
    pub attempts: u32,
}

impl PushedCommit {
    /// Flux's event note: `pushed commit '<sha7>' to branch '<b>'[ and refspec '<r>']`, then the message.
    pub fn event_note(&self) -> String {
        format!("{}\n{}", self.summary(), self.message)
    }

    /// The first line of [`PushedCommit::event_note`].
    pub fn summary(&self) -> String {
        let sha = self.commit.to_string();
        let mut s = format!("pushed commit '{}' to branch '{}'", &sha[..7], self.branch);
        if let Some(r) = &self.refspec {
            s.push_str(&format!(" and refspec '{r}'"));
        }
        s
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The checked-out branch, when the checkout ref is a branch.
    pub checkout_branch: Option<String>,
    /// Flux's `observedSourceRevision`: `<branch>@sha1:<commit>` of the checkout branch (the pushed commit
    /// when it was pushed there), or the checked-out commit for other refs.
    pub observed_revision: String,
    /// The setters' result (empty when nothing changed).
    pub update: UpdateResult,
    /// The pushed commit, when something changed.
    pub pushed: Option<PushedCommit>,
    /// When nothing changed because the branch head is the commit this run would have made (a push whose
    /// status write was lost, to a kill between the two) and the status does not name it: that commit and its
    /// commit time (Unix seconds) and branch.
    pub earlier_push: Option<(git2::Oid, i64, String)>,
    /// The commit message, when something changed (pushed or not).
    pub message: Option<String>,
    /// The changes' [`images_fingerprint`], when something changed.
    pub images: Option<String>,
    /// Something changed but nothing was pushed: the push branch already holds the same change on the same
    /// base ([`PushSettings::rebuild`]), or the change was held ([`Run::hold`]).
    pub not_pushed: Option<NotPushed>,
}

/// Why a change was not pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotPushed {
    /// The push branch already holds this change on this base.
    Current,
    /// [`Run::hold`] named these images.
    Held,
}

/// A short fingerprint of the images a change moves to: the policies whose markers changed, each with its
/// image, tag and digest (sorted). Equal for the same images whatever the files.
pub fn images_fingerprint(update: &UpdateResult, policies: &[PolicyImage]) -> String {
    use sha2::Digest;
    let mut lines: Vec<String> = Vec::new();
    for f in &update.files {
        for o in &f.objects {
            for c in &o.changes {
                if let Some(p) = policies.iter().find(|p| c.policy.is(p)) {
                    lines.push(format!(
                        "{}/{}={}:{}@{}",
                        p.namespace,
                        p.name,
                        p.image,
                        p.tag,
                        p.digest.as_deref().unwrap_or("")
                    ));
                }
            }
        }
    }
    lines.sort();
    lines.dedup();
    let digest = sha2::Sha256::digest(lines.join("\n").as_bytes());
    crate::hex::encode(&digest[..8])
}

/// Why a run stopped. Nothing was pushed.
#[derive(Debug, thiserror::Error)]
pub enum AutomationError {
    /// Clone, fetch, commit or push failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The setters could not run over the update path.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The commit message template does not parse or execute.
    #[error("spec.git.commit.messageTemplate: {0}")]
    Template(#[from] TemplateError),
    /// The checkout is not a branch and no push branch is set.
    #[error(
        "spec.git.push.branch is required when spec.git.checkout.ref is not a branch ({0}): there is no branch to push to"
    )]
    NoPushBranch(String),
    /// The run took longer than its timeout.
    #[error("timed out before {step} (the GitRepository's spec.timeout)")]
    Timeout {
        /// The step that did not start.
        step: &'static str,
    },
    /// Writing the clone failed.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Checks that a commit message template parses (before any clone), so that a bad template stalls at once.
pub fn check_template(template: Option<&str>) -> Result<(), TemplateError> {
    match template {
        Some(t) if !t.is_empty() => Template::parse(message::TEMPLATE_NAME, t).map(|_| ()),
        _ => Ok(()),
    }
}

/// `git.push.options` as `git push -o` values: `key=value`, or `key` for an empty value, sorted by key.
pub fn push_options(options: &BTreeMap<String, String>) -> Vec<String> {
    options
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect()
}

/// The branch a checkout ref names (None for a tag, semver range, ref name or commit without a branch).
pub fn checkout_branch(reference: &CheckoutRef) -> Option<Option<&str>> {
    match reference {
        CheckoutRef::Branch(b) => Some(b.as_deref()),
        _ => None,
    }
}

/// Whether the checkout branch's remote head is still `observed_revision` (one ls-remote, no clone). Only a
/// branch checkout can be checked this way: for other refs, and when the remote cannot tell (a bearer
/// token), the answer is false and the caller runs.
pub fn source_unchanged(
    source: &Source,
    observed_revision: Option<&str>,
) -> Result<bool, GitError> {
    let (Some(branch), Some(observed)) = (checkout_branch(&source.checkout), observed_revision)
    else {
        return Ok(false);
    };
    Ok(git::remote_head(&source.url, branch, &source.auth)?
        .is_some_and(|(b, commit)| git::revision(&b, commit) == observed))
}

fn check_deadline(deadline: Option<Instant>, step: &'static str) -> Result<(), AutomationError> {
    match deadline {
        Some(d) if Instant::now() >= d => Err(AutomationError::Timeout { step }),
        _ => Ok(()),
    }
}

/// Runs the automation once: see the module documentation.
pub fn run(r: &Run<'_>) -> Result<Outcome, AutomationError> {
    check_template(r.commit.template.as_deref())?;
    let push_branch = r.push.branch.clone();
    if checkout_branch(&r.source.checkout).is_none() && push_branch.is_none() {
        return Err(AutomationError::NoPushBranch(describe(&r.source.checkout)));
    }
    let setters = Setters::from_policies(r.policies);
    let signature =
        git2::Signature::now(&r.commit.author_name, &r.commit.author_email).map_err(|e| {
            GitError::Git {
                operation: "commit",
                url: r.source.url.clone(),
                message: format!(
                    "author {:?} <{}>: {}",
                    r.commit.author_name,
                    r.commit.author_email,
                    e.message()
                ),
            }
        })?;

    // Facts of the last clone, for the outcome.
    let mut checked_out: Option<(Option<String>, git2::Oid)> = None;
    let switched = std::cell::Cell::new(false);
    let mut update = UpdateResult::default();
    let mut message_text = String::new();
    let mut earlier_push = None;
    let mut images = None;
    let mut not_pushed = None;

    // One run at a time in a kept clone of the checkout branch (another run of the same source waits).
    // A URL with credentials in it is never kept on disk (a kept clone's config holds its origin's URL).
    let keepable = crate::sanitize::url(&r.source.url) == r.source.url;
    let lease = match (r.cache, &r.source.checkout) {
        (Some(c), CheckoutRef::Branch(Some(b))) if keepable => {
            Some(c.lease(&r.source.url, b, &r.source.auth))
        }
        _ => None,
    };
    let pushed = git::apply_and_push(
        r.work_dir,
        |dir| {
            if let Some(d) = r.deadline
                && Instant::now() >= d
            {
                return Err(GitError::Git {
                    operation: "clone",
                    url: r.source.url.clone(),
                    message: "timed out before the clone (the GitRepository's spec.timeout)".into(),
                });
            }
            let mut checkout = match (&lease, &r.source.checkout) {
                (Some(l), CheckoutRef::Branch(Some(b))) => {
                    l.checkout(&r.source.url, b, &r.source.auth)?.0
                }
                _ => git::clone_ref(&r.source.url, dir, &r.source.checkout, &r.source.auth)?,
            };
            checkout.signer = r.commit.signer.clone();
            checked_out = Some((checkout.branch.clone(), checkout.head()?));
            // Flux switches to the push branch when it differs from the checkout branch.
            if let Some(p) = &push_branch
                && checkout.branch.as_ref() != Some(p)
                && !r.push.rebuild
            {
                git::switch_branch(&mut checkout, p, &r.source.auth)?;
                switched.set(true);
            }
            Ok(checkout)
        },
        &r.source.auth,
        |checkout: &Checkout| PushSpec {
            branch: match (&push_branch, r.push.rebuild) {
                (Some(p), true) => p.clone(),
                _ => checkout.branch.clone().unwrap_or_default(),
            },
            // Another branch is the automation's own: it is overwritten, as Flux does.
            force: r.push.rebuild || (switched.get() && !r.push.no_force_push_branch),
            refspecs: r.push.refspec.iter().cloned().collect(),
            options: r.push.options.clone(),
        },
        |checkout: &Checkout| -> Result<Option<git2::Oid>, AutomationError> {
            update = setters::update_tree(checkout.workdir(), r.update_path, &setters, true)?;
            if update.files.is_empty() {
                earlier_push = earlier(checkout, r, &setters)?;
                return Ok(None);
            }
            message_text = commit_message(r, &update)?;
            let fingerprint = images_fingerprint(&update, r.policies);
            images = Some(fingerprint.clone());
            if r.hold == Some(fingerprint.as_str()) {
                not_pushed = Some(NotPushed::Held);
                return Ok(None);
            }
            let paths = changed_paths(checkout, r.update_path, &update)?;
            if r.push.rebuild
                && let Some(p) = &push_branch
                && git::branch_holds(checkout, p, &paths, &r.source.auth)?
            {
                not_pushed = Some(NotPushed::Current);
                return Ok(None);
            }
            let commit = git::commit_files(checkout, &paths, &signature, &message_text)?;
            check_deadline(r.deadline, "push")?;
            Ok(commit)
        },
    )?;

    drop(lease);
    if let Some(c) = r.cache {
        c.evict();
    }
    // apply_and_push returns Ok only after a clone.
    let (branch, commit) = checked_out.ok_or_else(|| GitError::Git {
        operation: "clone",
        url: r.source.url.clone(),
        message: "no clone was made".into(),
    })?;
    let target_branch = push_branch
        .clone()
        .or_else(|| branch.clone())
        .unwrap_or_default();
    let observed_revision = match (&branch, &pushed) {
        (Some(b), Some(_)) if r.push.rebuild => git::revision(b, commit),
        (Some(b), Some(p)) if *b == target_branch => git::revision(b, p.commit),
        (Some(b), _) => git::revision(b, commit),
        (None, _) => format!("sha1:{commit}"),
    };
    let message = (!update.files.is_empty()).then(|| message_text.clone());
    Ok(Outcome {
        checkout_branch: branch,
        observed_revision,
        update,
        pushed: pushed.map(|p| PushedCommit {
            commit: p.commit,
            branch: target_branch,
            refspec: r.push.refspec.clone(),
            message: message_text,
            attempts: p.attempts,
        }),
        earlier_push,
        message,
        images,
        not_pushed,
    })
}

/// The commit message of `update`.
fn commit_message(r: &Run<'_>, update: &UpdateResult) -> Result<String, AutomationError> {
    let input = MessageInput {
        namespace: r.namespace,
        name: r.name,
        result: update,
        policies: r.policies,
        values: &r.commit.values,
    };
    Ok(message::render(r.commit.template.as_deref(), &input)?)
}

/// The files `update` changed, relative to the working directory.
fn changed_paths(
    checkout: &Checkout,
    update_path: &str,
    update: &UpdateResult,
) -> Result<Vec<PathBuf>, AutomationError> {
    let base = setters::resolve_update_path(checkout.workdir(), update_path)?;
    let root = checkout
        .workdir()
        .canonicalize()
        .map_err(|source| AutomationError::Io {
            path: checkout.workdir().to_path_buf(),
            source,
        })?;
    let prefix = base.strip_prefix(&root).unwrap_or(Path::new(""));
    Ok(update.files.iter().map(|f| prefix.join(&f.path)).collect())
}

/// Invariant: a push is recorded even when its status write was lost. When the setters change nothing, the
/// branch head may be this automation's own push that a kill kept out of the status. It is taken for that
/// push only when it is the commit this run would have made: by the run's author, not the status's
/// `lastPushCommit`, one parent, which the setters turn into exactly the head's tree, with the message they
/// render. The check fetches the parent of a shallow clone; it costs nothing in the common cases (the head
/// is the recorded push, or another author's).
fn earlier(
    checkout: &Checkout,
    r: &Run<'_>,
    setters: &Setters,
) -> Result<Option<(git2::Oid, i64, String)>, AutomationError> {
    let head = checkout.head()?;
    if r.last_push == Some(head.to_string().as_str()) {
        return Ok(None);
    }
    let (tree, message, time) = {
        let commit = checkout.repo.find_commit(head).map_err(|e| GitError::Git {
            operation: "commit",
            url: r.source.url.clone(),
            message: e.message().to_string(),
        })?;
        let author = commit.author();
        if author.name().ok() != Some(r.commit.author_name.as_str())
            || author.email().ok() != Some(r.commit.author_email.as_str())
        {
            return Ok(None);
        }
        (
            commit.tree_id(),
            commit.message().unwrap_or_default().to_string(),
            commit.time().seconds(),
        )
    };
    let Some(parent) = git::head_parent(checkout, &r.source.auth)? else {
        return Ok(None);
    };
    git::checkout_tree_of(checkout, parent)?;
    let update = setters::update_tree(checkout.workdir(), r.update_path, setters, true)?;
    if update.files.is_empty() {
        return Ok(None);
    }
    let paths = changed_paths(checkout, r.update_path, &update)?;
    let same = git::tree_with(checkout, &paths)? == tree && commit_message(r, &update)? == message;
    Ok(same.then(|| (head, time, checkout.branch.clone().unwrap_or_default())))
}

fn describe(reference: &CheckoutRef) -> String {
    match reference {
        CheckoutRef::Branch(b) => format!("branch {:?}", b.as_deref().unwrap_or("(default)")),
        CheckoutRef::Tag(t) => format!("tag {t:?}"),
        CheckoutRef::SemVer(s) => format!("semver {s:?}"),
        CheckoutRef::Name(n) => format!("name {n:?}"),
        CheckoutRef::Commit { sha, .. } => format!("commit {sha:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_options_as_git_push_o() {
        let opts: BTreeMap<String, String> = [
            ("merge_request.create".to_string(), String::new()),
            ("merge_request.target".to_string(), "main".to_string()),
        ]
        .into();
        assert_eq!(
            push_options(&opts),
            ["merge_request.create", "merge_request.target=main"]
        );
    }

    #[test]
    fn templates_checked_before_cloning() {
        assert!(check_template(None).is_ok());
        assert!(check_template(Some("{{range .Updated.Images}}{{println .}}{{end}}")).is_ok());
        let e = check_template(Some("{{range .Updated.Images}}")).unwrap_err();
        assert!(e.to_string().contains("commit message"), "{e}");
    }

    #[test]
    fn event_note_as_flux() {
        let p = PushedCommit {
            commit: git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap(),
            branch: "main".into(),
            refspec: None,
            message: "podinfo:5.0.3\n".into(),
            attempts: 1,
        };
        assert_eq!(
            p.event_note(),
            "pushed commit '0123456' to branch 'main'\npodinfo:5.0.3\n"
        );
        let p = PushedCommit {
            refspec: Some("refs/heads/main:refs/for/main".into()),
            ..p
        };
        assert!(
            p.summary()
                .ends_with(" and refspec 'refs/heads/main:refs/for/main'")
        );
    }

    /// Commits by a bot with `template`.
    fn bot_commit(template: Option<&str>) -> CommitSettings {
        CommitSettings {
            author_name: "fluxcdbot".into(),
            author_email: "fluxcdbot@users.noreply.github.com".into(),
            signer: None,
            template: template.map(str::to_string),
            values: BTreeMap::new(),
        }
    }

    /// A bare repository with `main` holding one marked file, as a file:// URL.
    fn seeded_remote(dir: &Path) -> String {
        let bare = dir.join("remote.git");
        let repo = git2::Repository::init_bare(&bare).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let text = "spec:\n  image: ghcr.io/p/app:1.0.0 # {\"$imagepolicy\": \"ns:app\"}\n";
        let blob = repo.blob(text.as_bytes()).unwrap();
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("app.yaml", blob, 0o100644).unwrap();
        let sub = sub.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("apps", sub, 0o040000).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "seed", &tree, &[])
            .unwrap();
        repo.set_head("refs/heads/main").unwrap();
        format!("file://{}", bare.display())
    }

    fn policy(tag: &str) -> PolicyImage {
        PolicyImage {
            namespace: "ns".into(),
            name: "app".into(),
            image: "ghcr.io/p/app".into(),
            tag: tag.into(),
            digest: None,
        }
    }

    fn file_at(url: &str, branch: &str) -> String {
        let repo = git2::Repository::open_bare(url.trim_start_matches("file://")).unwrap();
        let c = repo
            .find_reference(&format!("refs/heads/{branch}"))
            .unwrap()
            .peel_to_commit()
            .unwrap();
        let e = c
            .tree()
            .unwrap()
            .get_path(Path::new("apps/app.yaml"))
            .unwrap();
        let blob = repo.find_blob(e.id()).unwrap();
        String::from_utf8(blob.content().to_vec()).unwrap()
    }

    #[test]
    fn runs_commit_once_and_push_to_another_branch_on_top_of_it() {
        let tmp = tempfile::tempdir().unwrap();
        let url = seeded_remote(tmp.path());
        let source = Source {
            url: url.clone(),
            checkout: CheckoutRef::Branch(Some("main".into())),
            auth: GitAuth::default(),
        };
        let commit = bot_commit(Some("{{range .Updated.Images}}{{println .}}{{end}}"));
        let push = PushSettings::default();
        let policies = [policy("1.0.1")];
        let work = tmp.path().join("work-1");
        let run1 = Run {
            namespace: "ns",
            name: "auto",
            source: &source,
            commit: &commit,
            push: &push,
            update_path: "./apps",
            policies: &policies,
            work_dir: &work,
            deadline: None,
            last_push: None,
            hold: None,
            cache: None,
        };
        let out = run(&run1).unwrap();
        let pushed = out.pushed.expect("a commit");
        assert_eq!(pushed.message, "ghcr.io/p/app:1.0.1\n");
        assert_eq!(pushed.branch, "main");
        assert_eq!(
            out.observed_revision,
            format!("main@sha1:{}", pushed.commit)
        );
        assert!(file_at(&url, "main").contains("app:1.0.1 #"));
        assert!(source_unchanged(&source, Some(&out.observed_revision)).unwrap());
        assert!(!source_unchanged(&source, Some("main@sha1:0000")).unwrap());

        // The same run again: nothing to change, nothing pushed.
        let work2 = tmp.path().join("work-2");
        let again = run(&Run {
            work_dir: &work2,
            ..run1.clone()
        })
        .unwrap();
        assert!(again.pushed.is_none());
        assert_eq!(again.observed_revision, out.observed_revision);
        // Its status write was lost (no lastPushCommit): the head is the commit this run would have made.
        let (earlier, _, branch) = again.earlier_push.expect("the lost push found");
        assert_eq!((earlier, branch.as_str()), (pushed.commit, "main"));
        let sha = pushed.commit.to_string();
        let recorded = run(&Run {
            work_dir: &tmp.path().join("work-2b"),
            last_push: Some(&sha),
            ..run1.clone()
        })
        .unwrap();
        assert_eq!(recorded.earlier_push, None, "already in the status");
        let other_author = CommitSettings {
            author_name: "someone".into(),
            ..commit.clone()
        };
        let theirs = run(&Run {
            work_dir: &tmp.path().join("work-2c"),
            commit: &other_author,
            ..run1.clone()
        })
        .unwrap();
        assert_eq!(theirs.earlier_push, None, "not by this run's author");

        // Push to another branch: created from main, then later updates land on top of it.
        let other = PushSettings {
            branch: Some("image-updates".into()),
            ..Default::default()
        };
        let policies = [policy("1.0.2")];
        let work3 = tmp.path().join("work-3");
        let out3 = run(&Run {
            push: &other,
            policies: &policies,
            work_dir: &work3,
            ..run1.clone()
        })
        .unwrap();
        let p3 = out3.pushed.expect("a commit on the other branch");
        assert_eq!(p3.branch, "image-updates");
        assert!(file_at(&url, "image-updates").contains("app:1.0.2 #"));
        assert!(
            file_at(&url, "main").contains("app:1.0.1 #"),
            "main untouched"
        );
        assert_eq!(
            out3.observed_revision,
            format!("main@sha1:{}", pushed.commit),
            "the checkout branch's commit"
        );
        let policies = [policy("1.0.3")];
        let work4 = tmp.path().join("work-4");
        let out4 = run(&Run {
            push: &other,
            policies: &policies,
            work_dir: &work4,
            ..run1.clone()
        })
        .unwrap();
        let p4 = out4.pushed.unwrap();
        let repo = git2::Repository::open_bare(url.trim_start_matches("file://")).unwrap();
        let parent = repo.find_commit(p4.commit).unwrap().parent_id(0).unwrap();
        assert_eq!(parent, p3.commit, "on top of the existing push branch");
    }

    #[test]
    fn a_template_error_pushes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let url = seeded_remote(tmp.path());
        let source = Source {
            url: url.clone(),
            checkout: CheckoutRef::Branch(None),
            auth: GitAuth::default(),
        };
        let commit = bot_commit(Some("{{ .Nope.Missing }}"));
        let work = tmp.path().join("work");
        let e = run(&Run {
            namespace: "ns",
            name: "auto",
            source: &source,
            commit: &commit,
            push: &PushSettings::default(),
            update_path: "",
            policies: &[policy("2.0.0")],
            work_dir: &work,
            deadline: None,
            last_push: None,
            hold: None,
            cache: None,
        })
        .unwrap_err();
        assert!(matches!(e, AutomationError::Template(_)), "{e}");
        assert!(file_at(&url, "main").contains("app:1.0.0 #"));
    }

    #[test]
    fn a_tag_checkout_needs_a_push_branch() {
        let tmp = tempfile::tempdir().unwrap();
        let source = Source {
            url: seeded_remote(tmp.path()),
            checkout: CheckoutRef::Tag("v1".into()),
            auth: GitAuth::default(),
        };
        let commit = bot_commit(None);
        let e = run(&Run {
            namespace: "ns",
            name: "auto",
            source: &source,
            commit: &commit,
            push: &PushSettings::default(),
            update_path: "",
            policies: &[],
            work_dir: tmp.path(),
            deadline: None,
            last_push: None,
            hold: None,
            cache: None,
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("spec.git.push.branch is required"),
            "{e}"
        );
    }
}
