//! Status conditions as Flux writes them (`Ready`, `Reconciling`, `Stalled`) and the reasons its tools read.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `Ready`: the object's last reconcile succeeded.
pub const READY: &str = "Ready";
/// `Reconciling`: work in progress (kstatus).
pub const RECONCILING: &str = "Reconciling";
/// `Stalled`: a retry cannot help until the object changes (kstatus).
pub const STALLED: &str = "Stalled";

/// Condition reasons used by Flux's image controllers.
pub mod reason {
    /// Ready=True.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Reconciling: work under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Reconciling after a failure.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// `spec.image` has a scheme or a tag, or does not parse.
    pub const IMAGE_URL_INVALID: &str = "ImageURLInvalid";
    /// Credentials missing or refused.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// The registry could not be read.
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    /// Anything else (a bad exclusion pattern, a bad secret).
    pub const FAILURE: &str = "Failure";
    /// A referenced object is missing or not ready.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// A cross-namespace reference that is not allowed.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// The policy cannot be built from its spec (range, regex, order, digest settings).
    pub const INVALID_POLICY: &str = "InvalidPolicy";
    /// The policy matched no tag.
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// The object is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// Clone, commit or push failed (ImageUpdateAutomation).
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// The setters could not update the files (ImageUpdateAutomation).
    pub const UPDATE_FAILED: &str = "UpdateFailed";
    /// The GitRepository or its settings cannot be used (ImageUpdateAutomation).
    pub const INVALID_SOURCE_CONFIGURATION: &str = "InvalidSourceConfiguration";
    /// `spec.policySelector` is not a valid label selector (ImageUpdateAutomation).
    pub const INVALID_POLICY_SELECTOR: &str = "InvalidPolicySelector";
    /// `spec.update.strategy` is not supported (ImageUpdateAutomation).
    pub const INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";
    /// tagpilot: no candidate tag has a valid signature (ImagePolicy `spec.verify`).
    pub const VERIFICATION_FAILED: &str = "VerificationFailed";
    /// tagpilot: every candidate tag is too young or lacks a required platform.
    pub const NO_ELIGIBLE_TAG: &str = "NoEligibleTag";
}

/// One status condition (the shape of `metav1.Condition`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// The generation the condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// A CamelCase reason.
    pub reason: String,
    /// A human-readable message.
    pub message: String,
}

/// Now, as RFC 3339 with seconds, in UTC (`2026-11-22T10:00:00Z`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Sets a condition in a list: replaces the one of the same type, keeping its `lastTransitionTime` when the
/// status did not change; conditions are kept in the order `Ready`, `Reconciling`, `Stalled`, others.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" };
    let mut cond = Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        observed_generation: generation,
        last_transition_time: now_rfc3339(),
        reason: reason.to_string(),
        message: message.to_string(),
    };
    if let Some(old) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if old.status == cond.status {
            cond.last_transition_time = std::mem::take(&mut old.last_transition_time);
        }
        *old = cond;
    } else {
        conditions.push(cond);
    }
    let rank = |t: &str| match t {
        READY => 0,
        RECONCILING => 1,
        STALLED => 2,
        _ => 3,
    };
    conditions.sort_by_key(|c| rank(&c.type_));
}

/// Removes a condition type.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// The condition of a type, if present.
pub fn get<'c>(conditions: &'c [Condition], type_: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the `Ready` condition is `True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    get(conditions, READY).is_some_and(|c| c.status == "True")
}

/// Marks the object ready: Ready=True, no Reconciling, no Stalled.
pub fn mark_ready(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) {
    set(conditions, READY, true, reason, message, generation);
    remove(conditions, RECONCILING);
    remove(conditions, STALLED);
}

/// Marks a failure: Ready=False; Stalled=True when a retry cannot help, else Reconciling=True
/// (`ProgressingWithRetry`).
pub fn mark_failed(
    conditions: &mut Vec<Condition>,
    reason: &str,
    message: &str,
    stalled: bool,
    generation: Option<i64>,
) {
    set(conditions, READY, false, reason, message, generation);
    if stalled {
        set(conditions, STALLED, true, reason, message, generation);
        remove(conditions, RECONCILING);
    } else {
        set(
            conditions,
            RECONCILING,
            true,
            reason::PROGRESSING_WITH_RETRY,
            message,
            generation,
        );
        remove(conditions, STALLED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_transition_time_while_the_status_holds() {
        let mut c = Vec::new();
        set(&mut c, READY, true, "A", "one", Some(1));
        c[0].last_transition_time = "2020-01-01T00:00:00Z".into();
        set(&mut c, READY, true, "B", "two", Some(2));
        assert_eq!(c[0].last_transition_time, "2020-01-01T00:00:00Z");
        assert_eq!(c[0].message, "two");
        set(&mut c, READY, false, "C", "three", Some(2));
        assert_ne!(c[0].last_transition_time, "2020-01-01T00:00:00Z");
    }

    #[test]
    fn failure_and_recovery() {
        let mut c = Vec::new();
        mark_failed(&mut c, reason::IMAGE_URL_INVALID, "bad", true, Some(1));
        let types: Vec<_> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, STALLED]);
        mark_failed(
            &mut c,
            reason::READ_OPERATION_FAILED,
            "down",
            false,
            Some(1),
        );
        let types: Vec<_> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, RECONCILING]);
        mark_ready(&mut c, reason::SUCCEEDED, "ok", Some(1));
        assert!(is_ready(&c));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}
