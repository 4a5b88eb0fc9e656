//! What wakes an automation besides its own changes and its interval: a policy of its namespace with a new
//! latest image (so a new tag becomes a commit at once), and a change of the GitRepository it names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageUpdateAutomation};

/// How long a fingerprint is kept without being seen again: deleted objects are forgotten after this. An
/// object forgotten while it lives only costs one more (cheap, clone-less) run when it is next seen.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Remembers a fingerprint per object and tells whether it changed since the last call.
#[derive(Default)]
struct Seen(Mutex<SeenState>);

#[derive(Default)]
struct SeenState {
    entries: HashMap<String, (String, Instant)>,
    last_prune: Option<Instant>,
}

impl Seen {
    fn changed(&self, key: String, fingerprint: String) -> bool {
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

/// The latest image a policy resolved (`latestRef`, else v1beta2's `latestImage`), as one string.
pub fn latest_of(policy: &ImagePolicy) -> Option<String> {
    let status = policy.status.as_ref()?;
    status
        .latest_ref
        .as_ref()
        .map(|r| r.reference())
        .or_else(|| status.latest_image.clone())
}

/// Maps an ImagePolicy event to the automations of its namespace whose selector picks it, only when the
/// policy's latest image changed (not on every status write).
pub fn on_policy_change(
    automations: Store<ImageUpdateAutomation>,
) -> impl Fn(ImagePolicy) -> Vec<ObjectRef<ImageUpdateAutomation>> + Send + Sync + 'static {
    let seen = Seen::default();
    move |policy: ImagePolicy| {
        let ns = policy.namespace().unwrap_or_default();
        let Some(latest) = latest_of(&policy) else {
            return Vec::new();
        };
        if !seen.changed(format!("{ns}/{}", policy.name_any()), latest) {
            return Vec::new();
        }
        automations
            .state()
            .iter()
            .filter(|a| a.namespace().as_deref() == Some(ns.as_str()))
            .filter(|a| {
                a.spec
                    .policy_selector
                    .as_ref()
                    .is_none_or(|s| s.matches(policy.labels()))
            })
            .map(|a| ObjectRef::from_obj(a.as_ref()))
            .collect()
    }
}

/// Maps a GitRepository event to the automations that name it, only when its spec changed (generation), not
/// on source-controller's status writes.
pub fn on_source_change(
    automations: Store<ImageUpdateAutomation>,
) -> impl Fn(GitRepository) -> Vec<ObjectRef<ImageUpdateAutomation>> + Send + Sync + 'static {
    let seen = Seen::default();
    move |source: GitRepository| {
        let ns = source.namespace().unwrap_or_default();
        let name = source.name_any();
        let generation = source.metadata.generation.unwrap_or_default().to_string();
        if !seen.changed(format!("{ns}/{name}"), generation) {
            return Vec::new();
        }
        automations
            .state()
            .iter()
            .filter(|a| {
                let own = a.namespace().unwrap_or_default();
                let r = &a.spec.source_ref;
                let rns = r
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&own);
                r.name == name && rns == ns
            })
            .map(|a| ObjectRef::from_obj(a.as_ref()))
            .collect()
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
