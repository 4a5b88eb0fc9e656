//! Webhook receivers (`--receiver-addr`): Flux's Receiver objects are reconciled into an index of secret
//! paths, and a small HTTP server verifies each call (`tagpilot_core::receiver`) and asks the ImageRepositories
//! it names to scan (`reconcile.fluxcd.io/requestedAt`). Calls for the same repository within half a second
//! are coalesced into one request (and one more at the end of that half second), so a flood of calls makes a few
//! scans while pushes seconds apart are each scanned at once.
//!
//! A call is answered as notification-controller answers it: 404 for a path no Receiver has (or whose token has
//! changed since: the URL is the secret), 503 while the Receiver is suspended or not Ready, 400 when its Secret
//! or the Secret's token is gone (the Secret is read per call, so deleting it closes the URL at once) or the
//! call does not verify, 500 when a named resource does not exist, a wildcard has no `matchLabels`, or a
//! cross-namespace reference is refused (the other resources are still asked to scan), else 200. Targets are
//! looked up in the reflector's cache of ImageRepositories (a GET only for a name the cache lacks), so a flood
//! of calls makes no LIST; events about calls are written at most once per Receiver and reason per
//! [`EVENT_EVERY`].
//!
//! Modules: here the index of webhook paths; [`reconcile`] (Receiver objects into the index and their status),
//! [`server`] (the HTTP server: verify, coalesce, ask for scans).

mod reconcile;
mod server;

pub use reconcile::reconcile;
pub use server::{Served, serve};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tagpilot_core::api::Receiver;

/// How long calls for one repository are folded into one scan request.
const COALESCE: Duration = Duration::from_millis(500);

/// At most one event about calls per Receiver and reason in this time (the log has every call).
pub const EVENT_EVERY: Duration = Duration::from_secs(10);

/// The served paths and the Receivers (`namespace/name`) they lead to.
#[derive(Clone, Default)]
pub struct Index {
    by_path: Arc<RwLock<HashMap<String, String>>>,
}

impl Index {
    fn set(&self, key: &str, path: String) {
        let mut m = self.by_path.write().expect("index lock");
        m.retain(|_, k| k != key);
        m.insert(path, key.to_string());
    }

    fn remove(&self, key: &str) {
        self.by_path
            .write()
            .expect("index lock")
            .retain(|_, k| k != key);
    }

    /// Keeps serving the path the Receiver's status names (answered 503 while it is suspended or not Ready,
    /// as Flux, whose index is `status.webhookPath`); nothing when it never had one.
    fn keep_status_path(&self, key: &str, r: &Receiver) {
        match r.status.as_ref().and_then(|s| s.webhook_path.clone()) {
            Some(path) if !path.is_empty() => self.set(key, path),
            _ => self.remove(key),
        }
    }

    fn get(&self, path: &str) -> Option<String> {
        self.by_path.read().expect("index lock").get(path).cloned()
    }
}
