//! Push (with the refs the server rejected), read a remote head with one ls-remote, and apply-and-push with
//! one fresh clone after a lost race.

use super::*;

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
