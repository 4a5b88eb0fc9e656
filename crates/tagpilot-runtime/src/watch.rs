//! Watches feeding the controllers' caches.

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

fn strip_managed_fields<K: kube::Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}
