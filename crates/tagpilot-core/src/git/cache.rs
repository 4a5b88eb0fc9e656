//! One local clone per source, kept between runs: a branch checkout is fetched (one commit deep) and reset
//! to the remote head instead of cloned again.
//!
//! - The key is the URL, the branch and a fingerprint of the credentials (a SHA-256; nothing secret is kept
//!   in a name): another identity never reuses a clone made with other credentials.
//! - A [`Lease`] holds an entry for one run: two automations on one source never share a work tree at the
//!   same time (the second waits).
//! - Each checkout is verified: the origin is the URL, the fetched head's tree is read whole into the index
//!   (a damaged object fails it), the work tree is reset hard and untracked files are removed. Anything that
//!   fails drops the entry and clones afresh.
//! - The cache's disk is bounded: after each run, the least recently used entries not in use are removed
//!   until the total is under the limit (an entry larger than the limit alone is removed after its run).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use super::clone::{checkout_options, fetch};
use super::*;

/// A directory of kept clones, bounded in size.
#[derive(Debug)]
pub struct CloneCache {
    root: PathBuf,
    max_bytes: u64,
    busy: Arc<(Mutex<HashSet<String>>, Condvar)>,
}

/// The cache of `root` (one per directory per process), with `max_bytes` (0 turns keeping off).
pub fn at(root: &Path, max_bytes: u64) -> Option<Arc<CloneCache>> {
    if max_bytes == 0 {
        return None;
    }
    static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<CloneCache>>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .expect("clone caches");
    let c = all.entry(root.to_path_buf()).or_insert_with(|| {
        Arc::new(CloneCache {
            root: root.to_path_buf(),
            max_bytes,
            busy: Arc::default(),
        })
    });
    Some(c.clone())
}

/// An entry held for one run; released when dropped.
pub struct Lease {
    key: String,
    dir: PathBuf,
    busy: Arc<(Mutex<HashSet<String>>, Condvar)>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (set, cv) = &*self.busy;
        set.lock().expect("clone cache").remove(&self.key);
        cv.notify_all();
        let _ = std::fs::write(self.dir.with_extension("used"), b"");
    }
}

impl CloneCache {
    /// Holds the entry of (`url`, `branch`, credentials), waiting while another run holds it.
    pub fn lease(&self, url: &str, branch: &str, auth: &GitAuth) -> Lease {
        let key = key(url, branch, auth);
        let (set, cv) = &*self.busy;
        let mut held = set.lock().expect("clone cache");
        while held.contains(&key) {
            held = cv.wait(held).expect("clone cache");
        }
        held.insert(key.clone());
        Lease {
            dir: self.root.join(&key),
            key,
            busy: self.busy.clone(),
        }
    }

    /// Removes the least recently used entries not in use until the cache holds at most its limit.
    pub fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        let held = self.busy.0.lock().expect("clone cache").clone();
        let mut dirs: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| {
                let path = e.path();
                let used = std::fs::metadata(path.with_extension("used"))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (used, dir_size(&path), path)
            })
            .collect();
        let mut total: u64 = dirs.iter().map(|d| d.1).sum();
        dirs.sort();
        for (_, size, path) in dirs {
            if total <= self.max_bytes {
                break;
            }
            let key = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if held.contains(key) {
                continue;
            }
            let _ = std::fs::remove_dir_all(&path);
            let _ = std::fs::remove_file(path.with_extension("used"));
            total = total.saturating_sub(size);
        }
    }
}

impl Lease {
    /// The kept clone of `url` at `branch`, fetched and reset to the remote head; cloned afresh when there is
    /// none or it fails verification. The second value says whether it was reused.
    pub fn checkout(
        &self,
        url: &str,
        branch: &str,
        auth: &GitAuth,
    ) -> Result<(Checkout, bool), GitError> {
        if self.dir.exists() {
            match refresh(&self.dir, url, branch, auth) {
                Ok(c) => return Ok((c, true)),
                Err(e) => {
                    tracing::info!(url = %redact_url(url), error = %e, "kept clone unusable; cloning afresh");
                    let _ = std::fs::remove_dir_all(&self.dir);
                }
            }
        }
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| GitError::Git {
                operation: "clone",
                url: redact_url(url),
                message: format!("{}: {e}", parent.display()),
            })?;
        }
        let c = clone_ref(
            url,
            &self.dir,
            &CheckoutRef::Branch(Some(branch.to_string())),
            auth,
        );
        if c.is_err() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        c.map(|c| (c, false))
    }
}

/// Fetches `branch` into a kept clone and resets it there (index, work tree, no untracked files).
fn refresh(dir: &Path, url: &str, branch: &str, auth: &GitAuth) -> Result<Checkout, GitError> {
    let e = |op, err| git_error(op, url, err);
    let repo = Repository::open(dir).map_err(|x| e("open", x))?;
    let origin = repo.find_remote("origin").map_err(|x| e("open", x))?;
    if origin.url().ok() != Some(url) {
        return Err(GitError::Git {
            operation: "open",
            url: redact_url(url),
            message: "the kept clone's origin is another URL".into(),
        });
    }
    drop(origin);
    let remote_ref = format!("refs/remotes/origin/{branch}");
    fetch(
        &repo,
        url,
        &[format!("+refs/heads/{branch}:{remote_ref}")],
        1,
        auth,
    )?;
    // The shallow boundary is read when a repository is opened.
    let repo = Repository::open(dir).map_err(|x| e("open", x))?;
    let head = repo
        .find_reference(&remote_ref)
        .and_then(|r| r.peel_to_commit())
        .map_err(|_| GitError::RefNotFound {
            url: url.to_string(),
            what: format!("branch \"{branch}\""),
        })?;
    // Reading the tree whole into the index verifies every tree and blob object it names exists.
    let tree = head.tree().map_err(|x| e("checkout", x))?;
    let mut index = repo.index().map_err(|x| e("checkout", x))?;
    index.read_tree(&tree).map_err(|x| e("checkout", x))?;
    index.write().map_err(|x| e("checkout", x))?;
    // The branch may be HEAD already: its ref is moved directly (a branch API refuses to move HEAD's).
    repo.reference(
        &format!("refs/heads/{branch}"),
        head.id(),
        true,
        "tagpilot: reset to the remote head",
    )
    .map_err(|x| e("checkout", x))?;
    repo.set_head(&format!("refs/heads/{branch}"))
        .map_err(|x| e("checkout", x))?;
    let mut options = checkout_options();
    options.force().remove_untracked(true).remove_ignored(true);
    repo.checkout_head(Some(&mut options))
        .map_err(|x| e("checkout", x))?;
    let statuses = repo
        .statuses(Some(
            git2::StatusOptions::new()
                .include_untracked(true)
                .include_ignored(true),
        ))
        .map_err(|x| e("checkout", x))?;
    if !statuses.is_empty() {
        return Err(GitError::Git {
            operation: "checkout",
            url: redact_url(url),
            message: format!(
                "{} paths differ from the head after the reset",
                statuses.len()
            ),
        });
    }
    drop(statuses);
    drop(tree);
    drop(head);
    Ok(Checkout {
        repo,
        url: url.to_string(),
        branch: Some(branch.to_string()),
        signer: None,
    })
}

/// The entry's name: a SHA-256 of the URL, the branch and the credentials.
fn key(url: &str, branch: &str, auth: &GitAuth) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    // A rotating password (an installation token) is keyed by whose it is.
    let password = auth.identity_key.as_deref().or(auth.password.as_deref());
    for part in [
        Some(url),
        Some(branch),
        auth.username.as_deref(),
        password,
        auth.bearer_token.as_deref(),
        auth.identity.as_deref(),
        auth.known_hosts.as_deref(),
        auth.proxy.as_deref(),
    ] {
        h.update(part.unwrap_or("\u{0}").as_bytes());
        h.update([0xff]);
    }
    h.update(auth.ca_pem.as_deref().unwrap_or_default());
    crate::hex::encode(&h.finalize()[..16])
}

fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare repository with `main` holding `a.txt`, as a file:// URL; and a way to add commits.
    fn remote(dir: &Path) -> (String, git2::Repository) {
        let bare = git2::Repository::init_bare(dir.join("remote.git")).unwrap();
        let url = format!("file://{}", dir.join("remote.git").display());
        commit(&bare, "one");
        (url, bare)
    }

    fn commit(bare: &git2::Repository, text: &str) {
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let blob = bare.blob(text.as_bytes()).unwrap();
        let mut tb = bare.treebuilder(None).unwrap();
        tb.insert("a.txt", blob, 0o100644).unwrap();
        let tree = bare.find_tree(tb.write().unwrap()).unwrap();
        let parent = bare
            .find_reference("refs/heads/main")
            .ok()
            .and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        bare.commit(Some("refs/heads/main"), &sig, &sig, text, &tree, &parents)
            .unwrap();
    }

    #[test]
    fn a_kept_clone_is_reset_to_the_remote_and_a_damaged_one_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let (url, bare) = remote(tmp.path());
        let cache = at(&tmp.path().join("cache"), 1 << 30).unwrap();
        let auth = GitAuth::default();
        let lease = cache.lease(&url, "main", &auth);
        let (c, reused) = lease.checkout(&url, "main", &auth).unwrap();
        assert!(!reused);
        // A run edits files, leaves junk and commits locally; none of it survives the next checkout.
        std::fs::write(c.workdir().join("a.txt"), "edited").unwrap();
        std::fs::write(c.workdir().join("junk"), "x").unwrap();
        drop(c);
        drop(lease);
        commit(&bare, "two");
        let lease = cache.lease(&url, "main", &auth);
        let (c, reused) = lease.checkout(&url, "main", &auth).unwrap();
        assert!(reused);
        assert_eq!(
            std::fs::read_to_string(c.workdir().join("a.txt")).unwrap(),
            "two"
        );
        assert!(!c.workdir().join("junk").exists());
        let dir = c.workdir().to_path_buf();
        drop(c);
        drop(lease);
        // Damage: the object database is gone. The entry is dropped and cloned afresh.
        std::fs::remove_dir_all(dir.join(".git/objects")).unwrap();
        let lease = cache.lease(&url, "main", &auth);
        let (c, reused) = lease.checkout(&url, "main", &auth).unwrap();
        assert!(!reused);
        assert_eq!(
            std::fs::read_to_string(c.workdir().join("a.txt")).unwrap(),
            "two"
        );
        drop(c);
        drop(lease);
        // Other credentials: another entry.
        let other = GitAuth {
            username: Some("u".into()),
            ..GitAuth::default()
        };
        assert_ne!(key(&url, "main", &auth), key(&url, "main", &other));
        // A rotating token of one GitHub App installation: one entry.
        let token = |t: &str| GitAuth {
            username: Some("x-access-token".into()),
            password: Some(t.into()),
            identity_key: Some("github-app:1:2".into()),
            ..GitAuth::default()
        };
        assert_eq!(
            key(&url, "main", &token("a")),
            key(&url, "main", &token("b"))
        );
    }

    #[test]
    fn the_least_recently_used_entries_go_first_and_a_held_one_waits() {
        let tmp = tempfile::tempdir().unwrap();
        let (url, _bare) = remote(tmp.path());
        let root = tmp.path().join("lru");
        let auth = GitAuth::default();
        let big = CloneCache {
            root: root.clone(),
            max_bytes: u64::MAX,
            busy: Arc::default(),
        };
        let l = big.lease(&url, "main", &auth);
        l.checkout(&url, "main", &auth).unwrap();
        drop(l);
        let one = dir_size(&root.join(key(&url, "main", &auth)));
        assert!(one > 0);
        // A limit below one entry: the unused entry is removed; a held one is kept.
        let small = CloneCache {
            root: root.clone(),
            max_bytes: 1,
            busy: Arc::default(),
        };
        let held = small.lease(&url, "main", &auth);
        small.evict();
        assert!(root.join(key(&url, "main", &auth)).exists(), "in use");
        drop(held);
        small.evict();
        assert!(!root.join(key(&url, "main", &auth)).exists());

        // Two leases of one entry: the second waits for the first.
        let cache = Arc::new(CloneCache {
            root,
            max_bytes: u64::MAX,
            busy: Arc::default(),
        });
        let first = cache.lease(&url, "main", &auth);
        let (c2, u2, a2) = (cache.clone(), url.clone(), auth.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _l = c2.lease(&u2, "main", &a2);
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "the second lease waits while the first is held"
        );
        drop(first);
        rx.recv().unwrap();
        t.join().unwrap();
    }
}
