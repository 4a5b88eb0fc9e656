//! What wakes an automation besides its own changes and its interval: a policy of its namespace with a new
//! latest image (so a new tag becomes a commit at once), and a change of the GitRepository it names.

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageUpdateAutomation};
use tagpilot_runtime::watch::Seen;

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
