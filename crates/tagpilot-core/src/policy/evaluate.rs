//! One ImagePolicy evaluated, for both drivers: the spec checked, the repository reference and its
//! cross-namespace ACL, the repository's stored tags (those of its last scan only), the selection, the digest
//! reflection, and the new status fields.

use std::time::Duration;

use crate::api::conditions::reason;
use crate::api::{DigestReflectionPolicy, ImagePolicy, ImagePolicyStatus, ImageRef};
use crate::cosign::Verifier;
use crate::failure::{Failure, Ready, ready_message};
use crate::gates::{
    Choice, GateCache, GateContext, GateError, Gates, TrustedRootSource, VerifySpec, choose,
};
use crate::lookup::Lookup;
use crate::registry::RegistryClient;
use crate::registry::access::{AccessSettings, access};
use crate::tagstore::{StoredTags, TagStore};

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
    /// What the gates (tagpilot's extensions) learned from registries.
    pub gates: &'a GateCache,
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
    let (engine, gates) = policy
        .spec
        .checked()
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
    let no_tag = |e: &dyn std::fmt::Display| {
        Failure::retry(
            reason::RECONCILIATION_FAILED,
            format!(
                "cannot determine latest tag for policy: {e} (ImageRepository '{repo_key}' has {} tags)",
                stored.len()
            ),
        )
        .retry_after(RECHECK)
    };
    let choice = if gates.any() {
        gated(lookup, settings, policy, &engine, &repo, &gates, &stored)
            .await
            .map_err(|e| match e {
                GateFailure::Failure(f) => f,
                GateFailure::Gate(GateError::Select(e)) => no_tag(&e),
                GateFailure::Gate(e) => gate_failure(&repo.spec.image, e),
            })?
    } else {
        let tags = stored.to_vec();
        let tag = engine.select(&tags).map_err(|e| no_tag(&e))?;
        Choice {
            tag: tag.to_string(),
            digest: None,
            skipped: Vec::new(),
            eligible_at: None,
            checked: 0,
        }
    };
    let tag = choice.tag.clone();
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
                    match &choice.digest {
                        Some(d) => Some(d.clone()),
                        None => Some(digest_of(lookup, settings, &repo, &tag).await?),
                    }
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
    if !choice.skipped.is_empty() {
        message.push_str(&format!(
            "; skipped newer: {}",
            crate::gates::describe(&choice.skipped)
        ));
    }
    let kept = ready_message(status.conditions.as_deref());
    if !changed
        && choice.skipped.is_empty()
        && let Some(kept) = kept
    {
        // Same result: keep the message that announced it.
        message = kept.to_string();
    }
    // A change, or a newer tag turned down that was not reported yet.
    let news = changed || (!choice.skipped.is_empty() && kept != Some(message.as_str()));
    let mut requeue = policy.spec.digest_interval().ok().flatten();
    if let Some(at) = choice.eligible_at {
        let wait = until(at);
        requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
    }
    Ok(Evaluation::Resolved {
        ready: Ready {
            event: news.then(|| message.clone()),
            message,
            requeue,
            metadata: Default::default(),
        },
        asked_registry: asked_registry || choice.checked > 0,
    })
}

/// How long until `at` (at least a second: a tag eligible "now" is looked at again right away).
fn until(at: jiff::Timestamp) -> Duration {
    let secs = (at.as_second() - jiff::Timestamp::now().as_second()).max(1);
    Duration::from_secs(secs as u64)
}

enum GateFailure {
    Failure(Failure),
    Gate(GateError),
}

impl From<Failure> for GateFailure {
    fn from(f: Failure) -> Self {
        GateFailure::Failure(f)
    }
}

/// The choice of a policy with gates: the repository's access, the verifier, then the walk.
async fn gated<L: Lookup>(
    lookup: &L,
    settings: &PolicySettings<'_>,
    policy: &ImagePolicy,
    engine: &crate::policy::Policy,
    repo: &crate::api::ImageRepository,
    gates: &Gates,
    stored: &StoredTags,
) -> Result<Choice, GateFailure> {
    let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
    let (checked, credentials, transport) = repository_access(lookup, settings, repo).await?;
    let verifier = match &gates.verify {
        None => None,
        Some(spec) => Some(verifier(lookup, namespace, spec).await?),
    };
    let scan = repo
        .status
        .as_ref()
        .and_then(|s| s.last_scan_result.as_ref())
        .map(|r| {
            format!(
                "{}/{}",
                r.scan_time.as_deref().unwrap_or_default(),
                r.revision.as_deref().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let ctx = GateContext {
        registry: settings.registry,
        image: &checked.image,
        credentials: &credentials,
        transport: &transport,
        cache: settings.gates,
        scan: &scan,
        verifier: verifier.as_ref(),
        now: jiff::Timestamp::now(),
    };
    choose(&ctx, engine, gates, stored)
        .await
        .map_err(GateFailure::Gate)
}

/// The verifier of `spec.verify`, from its Secrets.
async fn verifier<L: Lookup>(
    lookup: &L,
    namespace: &str,
    spec: &VerifySpec,
) -> Result<Verifier, Failure> {
    let invalid = |e: crate::cosign::VerifierError| {
        Failure::retry(reason::VERIFICATION_FAILED, e.0).retry_after(RECHECK)
    };
    match spec {
        VerifySpec::Keys { secret } => {
            let data = crate::lookup::secret(
                lookup,
                namespace,
                secret,
                "spec.verify.secretRef",
                reason::VERIFICATION_FAILED,
            )
            .await?;
            Verifier::with_keys(&format!("{namespace}/{secret}"), &data).map_err(invalid)
        }
        VerifySpec::Keyless {
            trusted_root,
            identities,
        } => {
            let (what, data) = match trusted_root {
                TrustedRootSource::Secret(name) => (
                    format!("secret '{namespace}/{name}' (spec.verify.trustedRootSecretRef)"),
                    crate::lookup::secret(
                        lookup,
                        namespace,
                        name,
                        "spec.verify.trustedRootSecretRef",
                        reason::VERIFICATION_FAILED,
                    )
                    .await?,
                ),
                TrustedRootSource::ConfigMap(name) => {
                    let what = format!(
                        "configmap '{namespace}/{name}' (spec.verify.trustedRootConfigMapRef)"
                    );
                    let data = lookup
                        .config_map(namespace, name)
                        .await
                        .map_err(|e| {
                            Failure::retry(
                                reason::VERIFICATION_FAILED,
                                format!("cannot read {what}: {e}"),
                            )
                        })?
                        .ok_or_else(|| {
                            Failure::retry(reason::VERIFICATION_FAILED, format!("{what} not found"))
                                .retry_after(RECHECK)
                        })?;
                    (what, data)
                }
            };
            Verifier::keyless(&what, &data, identities.clone()).map_err(invalid)
        }
    }
}

/// A walk that found nothing: which reason, and when to look again.
fn gate_failure(image: &str, e: GateError) -> Failure {
    match e {
        GateError::Registry { .. } => Failure::retry(
            reason::READ_OPERATION_FAILED,
            format!("cannot check the tags of {image} against the policy's gates: {e}"),
        ),
        GateError::NoneEligible { eligible_at, .. } => {
            let r = if e.unverified() {
                reason::VERIFICATION_FAILED
            } else {
                reason::NO_ELIGIBLE_TAG
            };
            Failure::retry(r, format!("{image}: {e}"))
                .retry_after(eligible_at.map_or(RECHECK, until))
        }
        other => Failure::retry(reason::RECONCILIATION_FAILED, format!("{image}: {other}"))
            .retry_after(RECHECK),
    }
}

/// The repository's checked spec, credentials and transport (as its scans use them).
async fn repository_access<L: Lookup>(
    lookup: &L,
    settings: &PolicySettings<'_>,
    repo: &crate::api::ImageRepository,
) -> Result<
    (
        crate::api::CheckedRepository,
        crate::registry::Credentials,
        crate::registry::Transport,
    ),
    Failure,
> {
    let checked = repo.spec.check().map_err(|e| {
        Failure::retry(
            reason::DEPENDENCY_NOT_READY,
            format!("referenced ImageRepository is invalid: {e}"),
        )
    })?;
    let (credentials, transport) = access(lookup, settings.access, repo, &checked.image).await?;
    Ok((checked, credentials, transport))
}

/// The digest of `tag` in the policy's repository.
async fn digest_of<L: Lookup>(
    lookup: &L,
    settings: &PolicySettings<'_>,
    repo: &crate::api::ImageRepository,
    tag: &str,
) -> Result<String, Failure> {
    let (checked, credentials, transport) = repository_access(lookup, settings, repo).await?;
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
