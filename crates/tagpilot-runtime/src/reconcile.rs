//! What every reconciler shares: status writes by server-side apply, logging with the reconcile's identity,
//! and the per-object retry backoff.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Writes the whole status of an object with server-side apply as `manager` (the controller owns every
/// status field), pruned to the fields the served CRD declares ([`crate::schema`]): a write the server refuses
/// for an undeclared field reads the CRD again and is retried once.
pub async fn write_status<K, S>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    status: &S,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let client: kube::Client = api.clone().into();
    let full = serde_json::to_value(status).map_err(kube::Error::SerdeError)?;
    let mut retried = false;
    loop {
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": crate::schema::prune_status::<K>(&client, full.clone()).await,
        });
        match api
            .patch_status(
                name,
                &PatchParams::apply(manager).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if !retried && e.to_string().contains("not declared in schema") => {
                crate::schema::forget::<K>();
                retried = true;
            }
            Err(e) => return Err(e),
        }
    }
}

/// `namespace/name`.
pub fn key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Retry delays per object after failures: from `--min-retry-delay` (750 ms) doubling to `--max-retry-delay`
/// (15 min), as Flux's per-item rate limiter; forgotten after a success.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Default for Backoff {
    /// Flux's defaults: 750 ms to 15 min.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(750), Duration::from_secs(900))
    }
}

impl Backoff {
    /// Delays from `min` doubling to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            failures: Mutex::default(),
        }
    }

    /// The next retry delay of the object `key` after a failure.
    pub fn next(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().expect("backoff lock");
        let n = f.entry(key.to_string()).or_insert(0);
        *n = (*n + 1).min(40);
        self.min
            .checked_mul(1u32 << (*n - 1).min(31))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Forgets an object's failures after a success.
    pub fn reset(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }
}

/// The error policy of a controller: logs the error and retries the object with its own backoff (other
/// objects go on).
pub fn retry_after_error<K: Resource>(
    obj: &K,
    err: &dyn std::fmt::Display,
    backoff: &Backoff,
) -> kube::runtime::controller::Action {
    let delay = backoff.next(&key(obj));
    tracing::warn!(
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        error = %err,
        retry_in_s = delay.as_secs(),
        "reconcile failed"
    );
    kube::runtime::controller::Action::requeue(delay)
}

/// Log lines of one reconcile, each with `controller`, `namespace`, `name` and `reconcileID`.
pub struct ReconcileLog {
    controller: &'static str,
    namespace: String,
    name: String,
    id: String,
}

impl ReconcileLog {
    /// A new reconcile of an object, with a fresh ID.
    pub fn new(controller: &'static str, namespace: &str, name: &str) -> ReconcileLog {
        let r: u128 = rand::random();
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (r >> 96) as u32,
            (r >> 80) as u16,
            (r >> 64) as u16 & 0xfff,
            ((r >> 48) as u16 & 0x3fff) | 0x8000,
            r as u64 & 0xffff_ffff_ffff
        );
        ReconcileLog {
            controller,
            namespace: namespace.to_string(),
            name: name.to_string(),
            id,
        }
    }

    /// An info line.
    pub fn info(&self, message: &str) {
        let message = tagpilot_core::sanitize::message(message);
        tracing::info!(controller = self.controller, namespace = %self.namespace, name = %self.name,
            reconcileID = %self.id, "{message}");
    }

    /// A debug line.
    pub fn debug(&self, message: &str) {
        let message = tagpilot_core::sanitize::message(message);
        tracing::debug!(controller = self.controller, namespace = %self.namespace, name = %self.name,
            reconcileID = %self.id, "{message}");
    }

    /// A warning line.
    pub fn warn(&self, message: &str) {
        let message = tagpilot_core::sanitize::message(message);
        tracing::warn!(controller = self.controller, namespace = %self.namespace, name = %self.name,
            reconcileID = %self.id, "{message}");
    }

    /// An error line.
    pub fn error(&self, message: &str) {
        let message = tagpilot_core::sanitize::message(message);
        tracing::error!(controller = self.controller, namespace = %self.namespace, name = %self.name,
            reconcileID = %self.id, "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_maximum_and_resets() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        let delays: Vec<u64> = (0..12).map(|_| b.next("ns/a").as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(b.next("ns/b").as_secs(), 1, "per object");
        b.reset("ns/a");
        assert_eq!(b.next("ns/a").as_secs(), 1);
        let flux = Backoff::default();
        assert_eq!(flux.next("x"), Duration::from_millis(750));
        assert_eq!(flux.next("x"), Duration::from_millis(1500));
        for _ in 0..50 {
            flux.next("x");
        }
        assert_eq!(flux.next("x"), Duration::from_secs(900));
    }
}
