//! Stage the working tree (or given files) and commit it, signed when a signer is set.

use super::*;

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
    let e = |err| git_error("commit", &checkout.url, err);
    let mut index = staged(checkout, paths)?;
    index.write().map_err(e)?;
    commit_index(checkout, &mut index, author, message)
}

/// The index with `paths` staged (a missing file as deleted); not written.
fn staged<P: AsRef<Path>>(checkout: &Checkout, paths: &[P]) -> Result<git2::Index, GitError> {
    let e = |err| git_error("commit", &checkout.url, err);
    let mut index = checkout.repo.index().map_err(e)?;
    for p in paths {
        let p = p.as_ref();
        if checkout.workdir().join(p).exists() {
            index.add_path(p).map_err(e)?;
        } else {
            index.remove_path(p).map_err(e)?;
        }
    }
    Ok(index)
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

/// The tree the index would have with `paths` (relative to the working directory) staged: what a commit of
/// those files would hold, without committing.
pub fn tree_with<P: AsRef<Path>>(checkout: &Checkout, paths: &[P]) -> Result<git2::Oid, GitError> {
    staged(checkout, paths)?
        .write_tree()
        .map_err(|err| git_error("commit", &checkout.url, err))
}
