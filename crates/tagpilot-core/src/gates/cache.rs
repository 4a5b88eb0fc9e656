//! What the gates learned from registries, shared by every policy of a process: a tag's digest for the scan it
//! was read in, an image's facts and a good signature check by digest. Each map is bounded: when full it is
//! emptied (the cost is asking again, never a wrong answer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::ImageFacts;

/// Entries per map before it is emptied.
const MAX_ENTRIES: usize = 200_000;

/// The gates' cache; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct GateCache {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// `image:tag` -> (the scan it was read in, digest).
    digests: Mutex<HashMap<String, (String, String)>>,
    /// `image@digest` -> facts.
    facts: Mutex<HashMap<String, Arc<ImageFacts>>>,
    /// (`image@digest`, verifier fingerprint) -> what verified it.
    verified: Mutex<HashMap<(String, String), String>>,
}

fn insert<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut map = map.lock().unwrap();
    if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

impl GateCache {
    /// The digest of `image:tag` read during `scan` (the repository's last scan time), if known.
    pub fn digest(&self, image: &str, tag: &str, scan: &str) -> Option<String> {
        let map = self.inner.digests.lock().unwrap();
        map.get(&format!("{image}:{tag}"))
            .filter(|(s, _)| s == scan)
            .map(|(_, d)| d.clone())
    }

    /// Whether `image:tag` was ever seen (in any scan): its digest may be asked for with a HEAD alone.
    pub fn seen_tag(&self, image: &str, tag: &str) -> bool {
        let map = self.inner.digests.lock().unwrap();
        map.contains_key(&format!("{image}:{tag}"))
    }

    /// Records the digest of `image:tag` for `scan`.
    pub fn put_digest(&self, image: &str, tag: &str, scan: &str, digest: &str) {
        insert(
            &self.inner.digests,
            format!("{image}:{tag}"),
            (scan.to_string(), digest.to_string()),
        );
    }

    /// The facts of `image@digest`, if known.
    pub fn facts(&self, image: &str, digest: &str) -> Option<Arc<ImageFacts>> {
        let map = self.inner.facts.lock().unwrap();
        map.get(&format!("{image}@{digest}")).cloned()
    }

    /// Records the facts of `image@digest`.
    pub fn put_facts(&self, image: &str, digest: &str, facts: Arc<ImageFacts>) {
        insert(&self.inner.facts, format!("{image}@{digest}"), facts);
    }

    /// What verified `image@digest` with the verifier `fingerprint`, if it did.
    pub fn verified(&self, image: &str, digest: &str, fingerprint: &str) -> Option<String> {
        let map = self.inner.verified.lock().unwrap();
        map.get(&(format!("{image}@{digest}"), fingerprint.to_string()))
            .cloned()
    }

    /// Records a good verification (failures are not kept: a signature may be added later).
    pub fn put_verified(&self, image: &str, digest: &str, fingerprint: &str, by: &str) {
        insert(
            &self.inner.verified,
            (format!("{image}@{digest}"), fingerprint.to_string()),
            by.to_string(),
        );
    }
}
