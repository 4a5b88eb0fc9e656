//! Watches feeding the controllers' caches, and [`Seen`]: the fingerprints that let a watch of another kind
//! wake an object only when what it depends on changed (not on every status write).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::Stream;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};

/// A watch of `api` feeding a cache, with `managedFields` dropped from every object: they are the bulk of an
/// object written by server-side apply and nothing here reads them (RSS at 2,000 ImageRepositories: 63 MiB
/// with them). Returns the cache and the stream of changed objects.
pub fn cached<K>(
    api: Api<K>,
    wc: watcher::Config,
) -> (
    reflector::Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let events = watcher(api, wc)
        .default_backoff()
        .modify(strip_managed_fields)
        .reflect(writer)
        .touched_objects();
    (reader, events)
}

/// A watch of `api` without a cache: the stream of changed objects, `managedFields` dropped.
pub fn changes<K>(
    api: Api<K>,
    wc: watcher::Config,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    watcher(api, wc)
        .default_backoff()
        .modify(strip_managed_fields)
        .touched_objects()
}

/// What wakes an object's own reconcile: its generation (spec), annotations (`reconcile.fluxcd.io/requestedAt`),
/// deletion and finalizers; not its status. As Flux's controllers ignore status-only changes, a reconcile's own
/// status write does not wake the object again (which would make its first retry immediate).
pub fn own_change<K: kube::Resource>(obj: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let m = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.generation.hash(&mut h);
    m.annotations.hash(&mut h);
    m.deletion_timestamp.is_some().hash(&mut h);
    m.finalizers.hash(&mut h);
    Some(h.finish())
}

fn strip_managed_fields<K: kube::Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

/// How long a fingerprint is kept without being seen again: deleted objects are forgotten after this. An
/// object forgotten while it lives only costs one more (cheap, clone-less) run when it is next seen.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Remembers a fingerprint per object and tells whether it changed since the last call; entries not seen for
/// [`FORGET_AFTER`] are pruned (deleted objects do not accumulate).
#[derive(Default)]
pub struct Seen(Mutex<SeenState>);

#[derive(Default)]
struct SeenState {
    entries: HashMap<String, (String, Instant)>,
    last_prune: Option<Instant>,
}

impl Seen {
    /// Whether `key`'s fingerprint differs from the one last seen (a first sight counts as a change).
    pub fn changed(&self, key: String, fingerprint: String) -> bool {
        self.changed_at(key, fingerprint, Instant::now())
    }

    fn changed_at(&self, key: String, fingerprint: String, now: Instant) -> bool {
        let mut seen = self.0.lock().expect("seen lock");
        if seen
            .last_prune
            .is_none_or(|t| now.saturating_duration_since(t) >= FORGET_AFTER / 24)
        {
            seen.entries
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < FORGET_AFTER);
            seen.last_prune = Some(now);
        }
        let same = seen
            .entries
            .get(&key)
            .is_some_and(|(f, _)| *f == fingerprint);
        seen.entries.insert(key, (fingerprint, now));
        !same
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().expect("seen lock").entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_not_seen_for_a_day_are_forgotten() {
        let seen = Seen::default();
        let t0 = Instant::now();
        assert!(seen.changed_at("ns/gone".into(), "a:1".into(), t0));
        assert!(seen.changed_at("ns/kept".into(), "a:1".into(), t0));
        let later = t0 + FORGET_AFTER - Duration::from_secs(60);
        assert!(!seen.changed_at("ns/kept".into(), "a:1".into(), later));
        let much_later = t0 + FORGET_AFTER + Duration::from_secs(3600);
        assert!(!seen.changed_at("ns/kept".into(), "a:1".into(), much_later));
        assert_eq!(seen.len(), 1, "the deleted object's entry is gone");
    }

    #[test]
    fn a_fingerprint_triggers_once() {
        let seen = Seen::default();
        assert!(seen.changed("ns/p".into(), "app:1.0.0".into()));
        assert!(!seen.changed("ns/p".into(), "app:1.0.0".into()));
        assert!(seen.changed("ns/p".into(), "app:1.0.1".into()));
        assert!(seen.changed("ns/q".into(), "app:1.0.1".into()));
    }
}
