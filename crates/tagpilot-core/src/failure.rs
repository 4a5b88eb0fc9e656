//! How a reconcile ends, for both drivers (the controllers and `tagpilot run`): [`Ready`] or a [`Failure`], and
//! [`conclude`], which writes either into an object's status the one way both drivers share.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{Condition, conditions};

/// A reconcile that could not reach its goal; written to the status as Ready=False.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The condition reason.
    pub reason: &'static str,
    /// The message, naming the object's field and value at fault.
    pub message: String,
    /// Whether a retry cannot help until the object changes (Stalled=True; no retry is scheduled).
    pub stalled: bool,
    /// Look again after this long instead of the retry backoff: for failures that a change elsewhere mends
    /// (an ACL, new tags), which also trigger a reconcile by themselves.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure that a retry may mend (retried with the backoff).
    pub fn retry(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            stalled: false,
            retry_after: None,
        }
    }

    /// A failure only a change of the object can mend (Stalled=True).
    pub fn stalled(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            stalled: true,
            ..Failure::retry(reason, message)
        }
    }

    /// The same failure, looked at again after `after` instead of the backoff.
    pub fn retry_after(self, after: Duration) -> Failure {
        Failure {
            retry_after: Some(after),
            ..self
        }
    }

    /// Records the failure in the conditions (Ready=False; Stalled or Reconciling). Returns whether it is news:
    /// the object was not already failing with this message (so an event and an error log are due).
    pub fn record(&self, conds: &mut Vec<Condition>, generation: Option<i64>) -> bool {
        let before = conditions::get(conds, conditions::READY).cloned();
        // The one way a failure reaches a status: credentials in URLs redacted, outside text capped.
        let message = crate::sanitize::message(&self.message);
        conditions::mark_failed(conds, self.reason, &message, self.stalled, generation);
        before.is_none_or(|c| c.message != message || c.status != "False")
    }
}

/// A reconcile that reached its goal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Ready's message.
    pub message: String,
    /// An event to publish (Normal, reason Succeeded): only when something changed (new tags, a new latest
    /// image, a push). `None` says nothing changed.
    pub event: Option<String>,
    /// When to reconcile again (`None`: only on a change).
    pub requeue: Option<Duration>,
    /// Metadata of the event for notification-controller (Flux's keys, group-prefixed:
    /// `image.toolkit.fluxcd.io/change_request` for a pull request's URL).
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// The fields every status of ours has: conditions, `observedGeneration`, `lastHandledReconcileAt`.
pub trait ReconcileStatus {
    /// The conditions.
    fn conditions_mut(&mut self) -> &mut Option<Vec<Condition>>;
    /// `observedGeneration`.
    fn observed_generation_mut(&mut self) -> &mut Option<i64>;
    /// `lastHandledReconcileAt`.
    fn last_handled_reconcile_at_mut(&mut self) -> &mut Option<String>;
}

macro_rules! reconcile_status {
    ($($t:ty),*) => {$(
        impl ReconcileStatus for $t {
            fn conditions_mut(&mut self) -> &mut Option<Vec<Condition>> {
                &mut self.conditions
            }
            fn observed_generation_mut(&mut self) -> &mut Option<i64> {
                &mut self.observed_generation
            }
            fn last_handled_reconcile_at_mut(&mut self) -> &mut Option<String> {
                &mut self.last_handled_reconcile_at
            }
        }
    )*};
}
reconcile_status!(
    crate::api::ImageRepositoryStatus,
    crate::api::ImagePolicyStatus,
    crate::api::ImageUpdateAutomationStatus,
    crate::api::ReceiverStatus
);

/// Writes a reconcile's result into `status`: Ready (or the failure with Stalled/Reconciling), the observed
/// generation, and the `reconcile.fluxcd.io/requestedAt` it handled. Returns whether a failure is news
/// ([`Failure::record`]); `false` for a success.
pub fn conclude<S: ReconcileStatus>(
    status: &mut S,
    meta: &ObjectMeta,
    result: Result<&Ready, &Failure>,
) -> bool {
    let generation = meta.generation;
    let mut conds = status.conditions_mut().take().unwrap_or_default();
    let news = match result {
        Ok(ready) => {
            conditions::mark_ready(
                &mut conds,
                conditions::reason::SUCCEEDED,
                &ready.message,
                generation,
            );
            false
        }
        Err(failure) => failure.record(&mut conds, generation),
    };
    *status.conditions_mut() = Some(conds);
    *status.observed_generation_mut() = generation;
    if let Some(req) = crate::api::requested_at(meta) {
        *status.last_handled_reconcile_at_mut() = Some(req.to_string());
    }
    news
}

/// The Ready message an object already shows when it is Ready=True (kept when nothing changed).
pub fn ready_message(conds: Option<&[Condition]>) -> Option<&str> {
    conditions::get(conds?, conditions::READY)
        .filter(|c| c.status == "True")
        .map(|c| c.message.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_news_once_per_message() {
        let mut conds = Vec::new();
        let f = Failure::retry("ReadOperationFailed", "scan failed: down");
        assert!(f.record(&mut conds, Some(1)));
        assert!(!f.record(&mut conds, Some(1)), "the same failure again");
        let g = Failure {
            message: "scan failed: refused".into(),
            ..f.clone()
        };
        assert!(g.record(&mut conds, Some(1)));
        conditions::mark_ready(&mut conds, "Succeeded", "ok", Some(1));
        assert!(
            g.record(&mut conds, Some(1)),
            "failing again after a success"
        );
    }

    #[test]
    fn conclude_writes_generation_and_the_request_it_handled() {
        let mut status = crate::api::ImagePolicyStatus::default();
        let mut meta = ObjectMeta {
            generation: Some(3),
            ..ObjectMeta::default()
        };
        meta.annotations = Some(
            [(
                "reconcile.fluxcd.io/requestedAt".to_string(),
                "2026-11-29T10:00:00Z".to_string(),
            )]
            .into(),
        );
        let ready = Ready {
            message: "resolved".into(),
            ..Ready::default()
        };
        assert!(!conclude(&mut status, &meta, Ok(&ready)));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(
            status.last_handled_reconcile_at.as_deref(),
            Some("2026-11-29T10:00:00Z")
        );
        assert_eq!(
            ready_message(status.conditions.as_deref()),
            Some("resolved")
        );
        let f = Failure::stalled("InvalidPolicy", "spec.policy: none");
        assert!(conclude(&mut status, &meta, Err(&f)));
        assert!(!conclude(&mut status, &meta, Err(&f)), "not news twice");
        assert_eq!(ready_message(status.conditions.as_deref()), None);
    }
}
