//! What every reconcile shares: the API client, the registry client, the tag store, metrics, the event
//! reporter identity, options, and the per-object retry backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client, Resource, ResourceExt};
use tagpilot_core::registry::RegistryClient;
use tagpilot_core::tagstore::TagStore;

use crate::metrics::Metrics;

/// The field manager of status writes.
pub const MANAGER: &str = "image-reflector-controller";

/// Settings from the command line that reconciles read.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--no-cross-namespace-refs`: ImagePolicies may only refer to repositories in their namespace.
    pub no_cross_namespace_refs: bool,
}

/// Shared state of the reconcilers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The registry client (connection pools, tokens, per-registry limits).
    pub registry: RegistryClient,
    /// Tags per ImageRepository.
    pub store: TagStore,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    reporter: String,
    instance: String,
    /// Command-line settings.
    pub options: Options,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context.
    pub fn new(
        client: Client,
        registry: RegistryClient,
        store: TagStore,
        metrics: Arc<Metrics>,
        instance: String,
        options: Options,
    ) -> Context {
        Context {
            client,
            registry,
            store,
            metrics,
            reporter: MANAGER.to_string(),
            instance,
            options,
            failures: Mutex::default(),
        }
    }

    /// The next retry delay of an object after a failure: 1 s doubling to 5 min.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("backoff lock");
        let n = f.entry(key.to_string()).or_insert(0);
        *n = (*n + 1).min(16);
        Duration::from_secs((1u64 << (*n - 1)).min(300))
    }

    /// Forgets an object's failures after a success.
    pub fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }

    /// Publishes an event about an object (events.k8s.io/v1). Each call makes one event: unlike kube's
    /// `Recorder`, which folds events of the same reason into one series and keeps the first note, so a second
    /// "new latest image" would be lost. A failure to publish is logged, never fatal.
    pub async fn event<K>(&self, obj: &K, warning: bool, reason: &str, note: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let namespace = obj.namespace().unwrap_or_else(|| "default".into());
        let now = jiff::Timestamp::now();
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    obj.name_any(),
                    now.as_nanosecond() as u64 ^ rand::random::<u32>() as u64
                )),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(reason.to_string()),
            note: Some(truncate(note, 1024)),
            action: Some("Reconcile".into()),
            regarding: Some(obj.object_ref(&())),
            reporting_controller: Some(self.reporter.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &ev).await {
            tracing::warn!(
                namespace = namespace,
                name = obj.name_any(),
                error = %e,
                "cannot publish event"
            );
        }
    }
}

/// `namespace/name`.
pub fn key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}
