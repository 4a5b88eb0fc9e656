//! One scan per image however many ImageRepositories name it: objects with the same canonical image, the same
//! effective credentials and transport, and the same exclusions and tag limit share one tag listing per
//! interval (many tenants watching `ghcr.io/org/app`).
//!
//! - A scan that is due because its interval passed (or a first scan) takes a listing younger than its own
//!   interval when one was made for the same key; its tags are then never older than its interval, as
//!   without sharing, and the objects of one key converge on one listing per interval.
//! - Scans asked for (`reconcile.fluxcd.io/requestedAt`, a webhook) and retries after a failure always list
//!   afresh, and the fresh listing serves the others.
//! - Objects due together wait for one listing instead of making one each (one flight per key).
//! - A listing is kept only for a key that more than one object names: an image only one object watches
//!   costs no memory beyond its key (1,000 distinct images of 1,000 tags would otherwise hold a million
//!   tags in memory besides the tag store).
//! - Bounded: entries older than an hour are dropped when new ones come, and at most [`MAX_KEYS`] are kept
//!   (beyond, the map is emptied: a cost, never a wrong answer); at most [`MAX_USERS`] objects are counted
//!   per key. Failures are not shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Credentials, RegistryError, ScanResult, Transport};

/// Keys kept at most.
pub const MAX_KEYS: usize = 100_000;
/// Objects counted per key (two are enough to keep a listing; more are counted up to this).
pub const MAX_USERS: usize = 64;
/// A listing older than this is dropped.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// The last listing of a key and when it was made; its lock makes one listing at a time.
type Last = Arc<tokio::sync::Mutex<Option<(Instant, Arc<ScanResult>)>>>;

/// A key's listing (kept once two objects name the key) and the objects seen naming it (counted before
/// anyone waits for the listing, so that objects due together keep the first listing).
#[derive(Default)]
struct Slot {
    last: Last,
    users: std::collections::HashSet<String>,
}

/// The listings shared by a process's scans.
#[derive(Default)]
pub struct SharedScans {
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for SharedScans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedScans").finish_non_exhaustive()
    }
}

/// What a shared scan got.
#[derive(Clone, Debug)]
pub struct Shared {
    /// The listing.
    pub result: Arc<ScanResult>,
    /// When it was another object's listing (how old it was); None when this scan listed.
    pub reused: Option<Duration>,
}

/// The key of a scan: a SHA-256 of the canonical image, the credentials' fingerprint, the transport, the
/// exclusion patterns and the tag limit.
pub fn key(
    canonical_image: &str,
    credentials: &Credentials,
    transport: &Transport,
    exclusions: &[String],
    max_tags: usize,
) -> String {
    use sha2::Digest;
    use std::hash::{Hash, Hasher};
    let mut t = std::collections::hash_map::DefaultHasher::new();
    transport.hash(&mut t);
    let mut h = sha2::Sha256::new();
    h.update(canonical_image.as_bytes());
    h.update([0]);
    h.update(credentials.fingerprint().as_bytes());
    h.update([0]);
    // The transport's settings (CA, client certificate, proxy, plain HTTP) as their hash.
    h.update(t.finish().to_le_bytes());
    for e in exclusions {
        h.update(e.as_bytes());
        h.update([0]);
    }
    h.update(max_tags.to_le_bytes());
    crate::hex::encode(&h.finalize()[..16])
}

impl SharedScans {
    /// The listing of `key` for the object `user` (`namespace/name`): another scan's when it is younger than
    /// `reuse_within` (None: always list), else `list`'s, which is then kept for the others if another object
    /// names the key.
    pub async fn list<F>(
        &self,
        key: &str,
        user: &str,
        reuse_within: Option<Duration>,
        list: F,
    ) -> Result<Shared, RegistryError>
    where
        F: std::future::Future<Output = Result<ScanResult, RegistryError>>,
    {
        let (last, users) = {
            let mut slots = self.slots.lock().expect("shared scans");
            if !slots.contains_key(key) {
                slots.retain(|_, s| {
                    s.last
                        .try_lock()
                        .map(|g| g.as_ref().is_none_or(|(at, _)| at.elapsed() < MAX_AGE))
                        .unwrap_or(true)
                });
                if slots.len() >= MAX_KEYS {
                    slots.clear();
                }
            }
            let slot = slots.entry(key.to_string()).or_default();
            if slot.users.len() < MAX_USERS {
                slot.users.insert(user.to_string());
            }
            (slot.last.clone(), slot.users.len())
        };
        // One listing at a time per key: those who wait take its result.
        let mut held = last.lock().await;
        if let (Some(within), Some((at, result))) = (reuse_within, held.as_ref())
            && at.elapsed() < within
        {
            return Ok(Shared {
                result: result.clone(),
                reused: Some(at.elapsed()),
            });
        }
        let result = Arc::new(list.await?);
        // Read again: objects may have come while this one listed.
        let users = users.max(
            self.slots
                .lock()
                .expect("shared scans")
                .get(key)
                .map_or(0, |s| s.users.len()),
        );
        *held = (users > 1).then(|| (Instant::now(), result.clone()));
        Ok(Shared {
            result,
            reused: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn listing(tag: &str) -> ScanResult {
        ScanResult {
            tags: vec![tag.to_string()],
            excluded: 0,
            pages: 1,
            requests: 1,
            invalid: 0,
        }
    }

    #[tokio::test]
    async fn one_listing_serves_many_until_its_interval_passes() {
        let shared = SharedScans::default();
        let listed = AtomicUsize::new(0);
        let list = |tag: &'static str| {
            listed.fetch_add(1, Ordering::SeqCst);
            async move { Ok(listing(tag)) }
        };
        let k = key(
            "r/a",
            &Credentials::Anonymous,
            &Transport::default(),
            &[],
            10,
        );
        let hour = Some(Duration::from_secs(3600));
        // One object alone: its listing is not kept (it would only cost memory).
        let alone = shared.list(&k, "ns/a", hour, list("0")).await.unwrap();
        assert!(alone.reused.is_none());
        let again = shared.list(&k, "ns/a", hour, list("1")).await.unwrap();
        assert!(again.reused.is_none(), "not kept for one object");
        // A second object names the key: its listing is kept and serves the others.
        let first = shared.list(&k, "ns/b", hour, list("1")).await.unwrap();
        assert!(first.reused.is_none());
        // 200 objects due together: none lists again.
        let all = futures::future::join_all((0..200).map(|i| {
            let (shared, listed, k) = (&shared, &listed, &k);
            async move {
                let user = format!("t{i}/app");
                shared
                    .list(k, &user, hour, async {
                        listed.fetch_add(1, Ordering::SeqCst);
                        Ok(listing("x"))
                    })
                    .await
            }
        }))
        .await;
        assert!(all.iter().all(|r| r.as_ref().unwrap().reused.is_some()));
        assert_eq!(listed.load(Ordering::SeqCst), 3);
        // A requested scan lists afresh, and its listing serves the next ones.
        let fresh = shared.list(&k, "ns/a", None, list("2")).await.unwrap();
        assert_eq!(fresh.result.tags, ["2"]);
        let next = shared.list(&k, "ns/b", hour, list("3")).await.unwrap();
        assert_eq!(next.result.tags, ["2"]);
        // An interval shorter than the listing's age: listed again.
        let zero = shared
            .list(&k, "ns/a", Some(Duration::ZERO), list("4"))
            .await
            .unwrap();
        assert_eq!(zero.result.tags, ["4"]);
        // Other credentials, exclusions or limits: other keys.
        let basic = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        assert_ne!(k, key("r/a", &basic, &Transport::default(), &[], 10));
        assert_ne!(
            k,
            key(
                "r/a",
                &Credentials::Anonymous,
                &Transport::default(),
                &["^x".into()],
                10
            )
        );
        assert_ne!(
            k,
            key(
                "r/a",
                &Credentials::Anonymous,
                &Transport::default(),
                &[],
                11
            )
        );
        // Failures are not shared.
        let k2 = key(
            "r/b",
            &Credentials::Anonymous,
            &Transport::default(),
            &[],
            10,
        );
        let e = shared
            .list(&k2, "ns/a", hour, async {
                Err(RegistryError::Timeout {
                    image: "r/b".into(),
                    seconds: 1,
                })
            })
            .await;
        assert!(e.is_err());
        let ok = shared.list(&k2, "ns/b", hour, list("5")).await.unwrap();
        assert!(ok.reused.is_none());
    }
}
