//! Clone a repository at a branch, tag, semver range, ref or commit (one commit deep where the transport
//! allows), fetch, and switch to the push branch.

use super::*;

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

pub(super) fn fetch(
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
pub(super) fn checkout_options() -> git2::build::CheckoutBuilder<'static> {
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

/// The parent of HEAD, when HEAD has exactly one: fetched (one commit deeper) when the clone is shallow (a
/// shallow clone's tip shows no parents until then).
pub fn head_parent(checkout: &Checkout, auth: &GitAuth) -> Result<Option<git2::Oid>, GitError> {
    let url = &checkout.url;
    let e = |op, err| git_error(op, url, err);
    let head = checkout.head()?;
    let parents = |repo: &Repository| -> Result<Vec<git2::Oid>, GitError> {
        let commit = repo.find_commit(head).map_err(|x| e("fetch", x))?;
        Ok(commit.parent_ids().collect())
    };
    let mut found = parents(&checkout.repo)?;
    if found.is_empty() && checkout.repo.is_shallow() {
        let Some(branch) = &checkout.branch else {
            return Ok(None);
        };
        fetch(
            &checkout.repo,
            url,
            &[format!("+refs/heads/{branch}:refs/remotes/origin/{branch}")],
            2,
            auth,
        )?;
        // The shallow boundary is read when a repository is opened.
        let reopened = Repository::open(checkout.repo.path()).map_err(|x| e("fetch", x))?;
        found = parents(&reopened)?;
    }
    match found.as_slice() {
        [parent] if checkout.repo.find_commit(*parent).is_ok() => Ok(Some(*parent)),
        _ => Ok(None),
    }
}

/// Checks out `commit`'s tree into the working directory and the index (HEAD does not move).
pub fn checkout_tree_of(checkout: &Checkout, commit: git2::Oid) -> Result<(), GitError> {
    let e = |err| git_error("checkout", &checkout.url, err);
    let tree = checkout
        .repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(e)?;
    let mut options = checkout_options();
    options.force();
    checkout
        .repo
        .checkout_tree(tree.as_object(), Some(&mut options))
        .map_err(e)?;
    let mut index = checkout.repo.index().map_err(e)?;
    index.read_tree(&tree).map_err(e)?;
    index.write().map_err(e)
}

/// Whether the remote `branch` already holds what a commit of `paths` on HEAD would: its tip has HEAD as its
/// only parent and the same tree (a pull request's head rebuilt from its base with the same change). The
/// tip is fetched two commits deep; a missing branch holds nothing.
pub fn branch_holds<P: AsRef<Path>>(
    checkout: &Checkout,
    branch: &str,
    paths: &[P],
    auth: &GitAuth,
) -> Result<bool, GitError> {
    let url = checkout.url.clone();
    let remote_ref = format!("refs/remotes/origin/{branch}");
    let (fetched, advertised) = fetch_listing(
        &checkout.repo,
        &url,
        &[format!("+refs/heads/{branch}:{remote_ref}")],
        2,
        auth,
    );
    let wanted = format!("refs/heads/{branch}");
    match (fetched, advertised) {
        (Ok(()), Some(refs)) if !refs.contains(&wanted) => return Ok(false),
        (Err(_), Some(refs)) if !refs.contains(&wanted) => return Ok(false),
        (Err(e), _) => return Err(e),
        _ => {}
    }
    // The shallow boundary is read when a repository is opened.
    let repo = Repository::open(checkout.repo.path()).map_err(|x| git_error("fetch", &url, x))?;
    let Ok(tip) = repo
        .find_reference(&remote_ref)
        .and_then(|r| r.peel_to_commit())
    else {
        return Ok(false);
    };
    let head = checkout.head()?;
    let parents: Vec<git2::Oid> = tip.parent_ids().collect();
    Ok(parents == [head] && tip.tree_id() == super::tree_with(checkout, paths)?)
}
