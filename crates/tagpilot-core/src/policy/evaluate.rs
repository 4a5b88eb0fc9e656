//! One ImagePolicy evaluated, for both drivers: the spec checked, the repository reference and its
//! cross-namespace ACL, the repository's stored tags (those of its last scan only), the selection, the digest
//! reflection, and the new status fields.

use std::time::Duration;

use crate::api::conditions::reason;
use crate::api::{DigestReflectionPolicy, ImagePolicy, ImagePolicyStatus, ImageRef};
use crate::failure::{Failure, Ready, ready_message};
use crate::lookup::Lookup;
use crate::registry::RegistryClient;
use crate::registry::access::{AccessSettings, access};
use crate::tagstore::TagStore;

/// How soon a policy looks again after a failure that only a change elsewhere can mend (an ACL, new tags);
/// those changes also trigger a reconcile by themselves.
pub const RECHECK: Duration = Duration::from_secs(300);

/// What evaluation needs beyond the objects.
pub struct PolicySettings<'a> {
    /// The repositories' tags.
    pub store: &'a TagStore,
    /// For digests.
    pub registry: &'a RegistryClient,
    /// Registry access (digests).
    pub access: &'a AccessSettings<'a>,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// `--requeue-dependency`: how soon to look again while the repository has no scan result.
    pub requeue_dependency: Duration,
}

/// The result of an evaluation that did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evaluation {
    /// The latest image is in the status; Ready says which.
    Resolved {
        /// Ready's message and, when the latest image changed, the event.
        ready: Ready,
        /// Whether the registry was asked for a digest.
        asked_registry: bool,
    },
    /// The repository's tags are not there (yet); the last good result stands and nothing is written.
    Waiting {
        /// The repository, `namespace/name`.
        repository: String,
    },
}

/// Evaluates `policy`, writing the latest image into `status` (which holds the object's current status).
pub async fn evaluate<L: Lookup>(
    lookup: &L,
    settings: &PolicySettings<'_>,
    policy: &ImagePolicy,
    status: &mut ImagePolicyStatus,
) -> Result<Evaluation, Failure> {
    let engine = policy
        .spec
        .to_policy()
        .map_err(|e| Failure::stalled(reason::INVALID_POLICY, e.to_string()))?;
    let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
    let reference = &policy.spec.image_repository_ref;
    let repo_ns = reference
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(namespace);
    let repo_key = format!("{repo_ns}/{}", reference.name);
    if repo_ns != namespace && settings.no_cross_namespace_refs {
        return Err(Failure::stalled(
            reason::ACCESS_DENIED,
            format!(
                "spec.imageRepositoryRef.namespace {repo_ns:?}: cross-namespace references are not allowed \
                 (--no-cross-namespace-refs)"
            ),
        ));
    }
    let not_ready = |message: String| Failure::retry(reason::DEPENDENCY_NOT_READY, message);
    let repo = lookup
        .image_repository(repo_ns, &reference.name)
        .await
        .map_err(|e| {
            not_ready(format!(
                "cannot read ImageRepository '{repo_key}' (spec.imageRepositoryRef): {e}"
            ))
        })?
        .ok_or_else(|| {
            not_ready(format!(
                "referenced ImageRepository '{repo_key}' (spec.imageRepositoryRef) not found"
            ))
        })?;
    if repo_ns != namespace {
        let labels = lookup
            .namespace_labels(namespace)
            .await
            .map_err(|e| {
                Failure::retry(
                    reason::ACCESS_DENIED,
                    format!("cannot read the labels of namespace '{namespace}': {e}"),
                )
            })?
            .unwrap_or_default();
        if !repo.spec.allows_access_from(repo_ns, namespace, &labels) {
            return Err(Failure::retry(
                reason::ACCESS_DENIED,
                format!(
                    "ImageRepository '{repo_key}' (spec.imageRepositoryRef) does not allow access from \
                     namespace '{namespace}' (its spec.accessFrom)"
                ),
            )
            .retry_after(RECHECK));
        }
    }

    // Only the tags of the repository's last scan: never a list from before a restart or a lost volume.
    let wanted = repo
        .status
        .as_ref()
        .and_then(|s| s.last_scan_result.as_ref())
        .and_then(|r| r.revision.as_deref());
    let stored = match wanted {
        Some(_) => settings.store.read(repo_ns, &reference.name).map_err(|e| {
            Failure::retry(
                reason::FAILURE,
                format!("cannot read the stored tags of ImageRepository '{repo_key}': {e}"),
            )
        })?,
        None => None,
    };
    let Some(stored) = stored.filter(|s| Some(s.revision()) == wanted) else {
        if status.latest_ref.is_some() {
            return Ok(Evaluation::Waiting {
                repository: repo_key,
            });
        }
        return Err(not_ready(format!(
            "waiting for ImageRepository '{repo_key}' to be scanned"
        ))
        .retry_after(settings.requeue_dependency));
    };
    let tag = {
        let tags = stored.to_vec();
        engine.select(&tags).map(str::to_string).map_err(|e| {
            Failure::retry(
                reason::RECONCILIATION_FAILED,
                format!(
                    "cannot determine latest tag for policy: {e} (ImageRepository '{repo_key}' has {} tags)",
                    stored.len()
                ),
            )
            .retry_after(RECHECK)
        })?
    };
    drop(stored);

    let image = repo.spec.image.clone();
    let mut asked_registry = false;
    let digest = match policy.spec.digest_policy() {
        DigestReflectionPolicy::Never => None,
        p => {
            let reuse = status
                .latest_ref
                .as_ref()
                .filter(|r| {
                    p == DigestReflectionPolicy::IfNotPresent && r.name == image && r.tag == tag
                })
                .and_then(|r| r.digest.clone());
            match reuse {
                Some(d) => Some(d),
                None => {
                    asked_registry = true;
                    Some(digest_of(lookup, settings, &repo, &tag).await?)
                }
            }
        }
    };
    let latest = ImageRef {
        name: image.clone(),
        tag: tag.clone(),
        digest: digest.clone(),
    };
    let previous = status.latest_ref.clone();
    let changed = previous.as_ref() != Some(&latest);
    if changed && let Some(prev) = &previous {
        status.observed_previous_ref = Some(prev.clone());
        status.observed_previous_image = Some(prev.reference());
    }
    status.latest_image = Some(latest.reference());
    status.latest_ref = Some(latest);
    let mut message = format!("Latest image tag for {image} resolved to {tag}");
    if let Some(d) = &digest {
        message.push_str(&format!(" with digest {d}"));
    }
    if changed && let Some(prev) = &previous {
        message.push_str(&format!(" (previously {})", prev.reference()));
    }
    if !changed && let Some(kept) = ready_message(status.conditions.as_deref()) {
        // Same result: keep the message that announced it.
        message = kept.to_string();
    }
    Ok(Evaluation::Resolved {
        ready: Ready {
            event: changed.then(|| message.clone()),
            message,
            requeue: policy.spec.digest_interval().ok().flatten(),
        },
        asked_registry,
    })
}

/// The digest of `tag` in the policy's repository.
async fn digest_of<L: Lookup>(
    lookup: &L,
    settings: &PolicySettings<'_>,
    repo: &crate::api::ImageRepository,
    tag: &str,
) -> Result<String, Failure> {
    let checked = repo.spec.check().map_err(|e| {
        Failure::retry(
            reason::DEPENDENCY_NOT_READY,
            format!("referenced ImageRepository is invalid: {e}"),
        )
    })?;
    let (credentials, transport) = access(lookup, settings.access, repo, &checked.image).await?;
    settings
        .registry
        .digest(&checked.image, tag, &credentials, &transport)
        .await
        .map_err(|e| {
            Failure::retry(
                reason::READ_OPERATION_FAILED,
                format!(
                    "cannot resolve the digest of {}:{tag}: {e}",
                    repo.spec.image
                ),
            )
        })
}
