//! Events about reconciled objects: a Kubernetes event each (core `v1` Events, as Flux's recorder writes them,
//! so that Flux's RBAC, which grants `events` in the core group, allows them), and with `--events-addr` the
//! same event posted to Flux's notification-controller ([`crate::notify`]).

use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client, Resource, ResourceExt};

/// Publishes events as one controller instance.
#[derive(Clone)]
pub struct Events {
    client: Client,
    reporter: String,
    instance: String,
    notifier: Option<crate::notify::Notifier>,
}

impl Events {
    /// Events reported by `controller` (its name), from `instance` (the pod).
    pub fn new(client: Client, controller: &str, instance: String) -> Events {
        Events {
            client,
            reporter: controller.to_string(),
            instance,
            notifier: None,
        }
    }

    /// Also posts every event to notification-controller.
    pub fn notify_to(&mut self, notifier: Option<crate::notify::Notifier>) {
        self.notifier = notifier;
    }

    /// Publishes an event about an object. Each call makes one event: unlike kube's `Recorder`, which folds
    /// events of the same reason into one series and keeps the first note, so a second "new latest image"
    /// would be lost. A failure to publish is logged, never fatal. With a notifier, the event also goes to
    /// notification-controller (severity `error` for warnings, `info` otherwise).
    pub async fn publish<K>(&self, obj: &K, warning: bool, reason: &str, note: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish_with(obj, warning, reason, note, &Default::default())
            .await
    }

    /// [`Events::publish`], with metadata for notification-controller (Flux's group-prefixed keys, such as
    /// `image.toolkit.fluxcd.io/change_request`).
    pub async fn publish_with<K>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        note: &str,
        metadata: &std::collections::BTreeMap<String, String>,
    ) where
        K: Resource<DynamicType = ()>,
    {
        if let Some(n) = &self.notifier
            && let Some(mut ev) = n.event(obj, warning, reason, note)
        {
            ev.metadata.extend(metadata.clone());
            n.send(ev);
        }
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
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(reason.to_string()),
            message: Some(truncate(&tagpilot_core::sanitize::text(note), 1024)),
            involved_object: obj.object_ref(&()),
            source: Some(EventSource {
                component: Some(self.reporter.clone()),
                ..Default::default()
            }),
            reporting_component: Some(self.reporter.clone()),
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

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` bytes (on a character boundary), with `...` when cut.
fn truncate(s: &str, max: usize) -> String {
    let c = cut(s, max);
    if c.len() == s.len() {
        s.to_string()
    } else {
        format!("{c}...")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        assert_eq!(super::truncate("abc", 5), "abc");
        assert_eq!(super::truncate("ééé", 3), "é...");
    }
}
