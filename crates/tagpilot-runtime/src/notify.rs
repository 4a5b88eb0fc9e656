//! Events to Flux's notification-controller (`--events-addr`), as Flux's event recorder posts them
//! (fluxcd/pkg runtime/events, the event schema of fluxcd/pkg apis/event/v1beta1).
//!
//! - Body: `involvedObject` (kind, namespace, name, uid, apiVersion, resourceVersion), `severity` (`info`,
//!   `error` for warnings), `timestamp` (RFC 3339, seconds), `message`, `reason`, `metadata` (the object's
//!   `event.toolkit.fluxcd.io/*` annotations, omitted when empty), `reportingController`, `reportingInstance`.
//! - Delivery: POST `application/json` to the exact URL; 5 s per attempt; on a connection error or a 5xx
//!   other than 501, up to 4 retries after 1, 2, 4, 8 s (a 503's `Retry-After` is honoured, up to 30 s);
//!   429 (notification-controller's "duplicate") ends delivery and is not an error; other 4xx are logged.
//! - Unlike Flux's recorder, delivery runs beside the reconcile rather than inside it (a slow
//!   notification-controller does not hold reconciles), at most [`MAX_IN_FLIGHT`] at once; beyond that an
//!   event is dropped and logged. Giving up is only logged, as in Flux.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::{Resource, ResourceExt};
use serde::Serialize;

/// Events being delivered at once; more are dropped (and logged).
pub const MAX_IN_FLIGHT: usize = 64;
/// The longest message posted (the schema's documented maximum).
pub const MAX_MESSAGE: usize = 39_000;
/// The annotation prefix whose annotations travel as event metadata.
pub const METADATA_PREFIX: &str = "event.toolkit.fluxcd.io/";
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_DELAYS: [u64; 4] = [1, 2, 4, 8];

/// The object an event is about.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    /// The kind.
    pub kind: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The UID.
    pub uid: String,
    /// `group/version`.
    pub api_version: String,
    /// The resource version seen.
    pub resource_version: String,
}

/// One event in Flux's schema.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    /// The object.
    pub involved_object: InvolvedObject,
    /// `info` or `error`.
    pub severity: &'static str,
    /// RFC 3339, seconds.
    pub timestamp: String,
    /// The message.
    pub message: String,
    /// The reason (`Succeeded`, a failure reason).
    pub reason: String,
    /// The object's `event.toolkit.fluxcd.io/*` annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The controller's name.
    pub reporting_controller: String,
    /// The pod.
    pub reporting_instance: String,
}

/// Checks `--events-addr`: an `http` or `https` URL.
pub fn check_address(addr: &str) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(addr)
        .map_err(|e| anyhow::anyhow!("--events-addr {addr:?}: not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        anyhow::bail!("--events-addr {addr:?}: expected an http:// or https:// URL with a host");
    }
    Ok(())
}

/// Posts events to notification-controller.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    url: String,
    controller: String,
    instance: String,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Notifier {
    /// A notifier posting to `url` as `controller` from `instance` (the pod's hostname).
    pub fn new(url: &str, controller: &str, instance: &str) -> anyhow::Result<Notifier> {
        check_address(url)?;
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Notifier {
            http,
            url: url.to_string(),
            controller: controller.to_string(),
            instance: instance.to_string(),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// The event Flux's recorder would post about `obj`, or `None` where Flux posts none (an object without
    /// kind, name or namespace).
    pub fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        warning: bool,
        reason: &str,
        message: &str,
    ) -> Option<FluxEvent> {
        let namespace = obj.namespace().filter(|n| !n.is_empty())?;
        let name = obj.meta().name.clone().filter(|n| !n.is_empty())?;
        let metadata = obj
            .annotations()
            .iter()
            .filter(|(k, _)| k.starts_with(METADATA_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(FluxEvent {
            involved_object: InvolvedObject {
                kind: K::kind(&()).into_owned(),
                namespace,
                name,
                uid: obj.meta().uid.clone().unwrap_or_default(),
                api_version: K::api_version(&()).into_owned(),
                resource_version: obj.meta().resource_version.clone().unwrap_or_default(),
            },
            severity: if warning { "error" } else { "info" },
            timestamp: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now())
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            message: crate::events::cut(&tagpilot_core::sanitize::text(message), MAX_MESSAGE)
                .to_string(),
            reason: reason.to_string(),
            metadata,
            reporting_controller: self.controller.clone(),
            reporting_instance: self.instance.clone(),
        })
    }

    /// Delivers an event in the background (retries as Flux's client); drops it when too many are in flight.
    pub fn send(&self, event: FluxEvent) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(
                reason = %event.reason,
                name = %event.involved_object.name,
                "too many events in flight to notification-controller; dropping one"
            );
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            this.deliver(&event).await;
            drop(permit);
        });
    }

    /// Posts one event with retries; returns whether notification-controller took it (2xx or 429).
    pub async fn deliver(&self, event: &FluxEvent) -> bool {
        let o = &event.involved_object;
        for attempt in 0..=RETRY_DELAYS.len() {
            let wait = match self.http.post(&self.url).json(event).send().await {
                Ok(r) if r.status().is_success() || r.status().as_u16() == 429 => return true,
                Ok(r) if r.status().is_server_error() && r.status().as_u16() != 501 => {
                    let after = (r.status().as_u16() == 503)
                        .then(|| {
                            r.headers()
                                .get("retry-after")?
                                .to_str()
                                .ok()?
                                .parse::<u64>()
                                .ok()
                        })
                        .flatten();
                    tracing::debug!(status = %r.status(), attempt, "notification-controller refused an event; retrying");
                    after.map(|s| s.min(30))
                }
                Ok(r) => {
                    tracing::warn!(status = %r.status(), kind = %o.kind, namespace = %o.namespace,
                        name = %o.name, "notification-controller refused an event");
                    return false;
                }
                Err(e) => {
                    tracing::debug!(error = %tagpilot_core::sanitize::message(&e.to_string()), attempt,
                        "cannot post an event; retrying");
                    None
                }
            };
            let Some(delay) = RETRY_DELAYS.get(attempt) else {
                break;
            };
            tokio::time::sleep(Duration::from_secs(wait.unwrap_or(*delay))).await;
        }
        tracing::error!(kind = %o.kind, namespace = %o.namespace, name = %o.name, reason = %event.reason,
            "unable to send an event to notification-controller after retries");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_http_urls() {
        check_address("http://notification-controller.flux-system.svc.cluster.local./").unwrap();
        for bad in ["notification-controller:80", "ftp://x/", "http://"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_are_capped_on_a_character_boundary() {
        assert_eq!(crate::events::cut("ééé", 3), "é");
        assert_eq!(crate::events::cut("abc", 9), "abc");
    }
}
