//! The one way a reconcile ends, for every reconciler: the result ([`Ready`] or [`Failure`]) concluded into
//! the status by the core ([`conclude`]), the status written only when it changed, an event only for a change
//! or a new failure, a log line, the failure counted by reason, and the next reconcile scheduled (the retry
//! backoff for a failure, none when stalled).

use std::fmt::Debug;

use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tagpilot_core::api::conditions::reason;
use tagpilot_core::failure::{Failure, Ready, ReconcileStatus, conclude};

use crate::{Backoff, Events, ReconcileLog, key, write_status};

/// What finishing needs from a controller.
pub struct Finisher<'a> {
    /// The API client.
    pub client: &'a kube::Client,
    /// The field manager of status writes.
    pub manager: &'static str,
    /// Events.
    pub events: &'a Events,
    /// Retry delays.
    pub backoff: &'a Backoff,
}

impl Finisher<'_> {
    /// Ends a reconcile of `obj`, whose status was `old` and becomes `status` with `result` concluded in it.
    pub async fn finish<K, S>(
        &self,
        obj: &K,
        old: Option<&S>,
        mut status: S,
        result: Result<Ready, Failure>,
        log: &ReconcileLog,
    ) -> Result<Action, kube::Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
        S: ReconcileStatus + PartialEq + Serialize,
    {
        let news = conclude(&mut status, obj.meta(), result.as_ref());
        if old != Some(&status) {
            let api: Api<K> =
                Api::namespaced(self.client.clone(), &obj.namespace().unwrap_or_default());
            write_status(&api, self.manager, &obj.name_any(), &status).await?;
        }
        match result {
            Ok(ready) => {
                self.backoff.reset(&key(obj));
                match &ready.event {
                    Some(note) => {
                        self.events
                            .publish_with(obj, false, reason::SUCCEEDED, note, &ready.metadata)
                            .await;
                        log.info(&ready.message);
                    }
                    None => log.debug(&ready.message),
                }
                Ok(ready
                    .requeue
                    .map_or_else(Action::await_change, Action::requeue))
            }
            Err(failure) => {
                crate::metrics::note_failure(failure.reason);
                if failure.reason == reason::DEPENDENCY_NOT_READY {
                    // Waiting for another object is a normal state (a first scan, a restart), not an error.
                    if news {
                        log.info(&failure.message);
                    }
                } else {
                    if news {
                        self.events
                            .publish(obj, true, failure.reason, &failure.message)
                            .await;
                    }
                    log.error(&failure.message);
                }
                Ok(if failure.stalled {
                    Action::await_change()
                } else {
                    Action::requeue(
                        failure
                            .retry_after
                            .unwrap_or_else(|| self.backoff.next(&key(obj))),
                    )
                })
            }
        }
    }
}
