//! The ImagePolicy reconciler: check the reference (and its cross-namespace ACL), read the repository's
//! stored tags, choose the latest, reflect the digest, write the status in the fields of every version.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use tagpilot_core::api::conditions::{self, reason};
use tagpilot_core::api::{
    Condition, DigestReflectionPolicy, ImagePolicy, ImagePolicyStatus, ImageRef, ImageRepository,
    requested_at,
};

use crate::access::registry_access;
use crate::context::{Context, MANAGER};
use crate::error::Error;
use tagpilot_runtime::key;
use tagpilot_runtime::watch::Seen;
use tagpilot_runtime::{Failure, ReconcileLog, write_status};

const KIND: &str = "ImagePolicy";
/// How soon a policy looks again after a failure that only a change elsewhere can mend (an ACL, new tags);
/// those changes also trigger a reconcile by themselves.
const RECHECK: Duration = Duration::from_secs(300);

/// Reconciles one ImagePolicy.
pub async fn reconcile(policy: Arc<ImagePolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let namespace = policy.namespace().unwrap_or_default();
    let name = policy.name_any();
    let log = ReconcileLog::new("imagepolicy", &namespace, &name);
    let result = apply(&policy, &ctx, &log).await;
    ctx.metrics
        .reconciled(KIND, &namespace, &name, start.elapsed());
    result
}

async fn apply(policy: &ImagePolicy, ctx: &Context, log: &ReconcileLog) -> Result<Action, Error> {
    if policy.spec.suspend == Some(true) {
        log.debug("reconciliation is suspended for this object");
        return Ok(Action::await_change());
    }
    let namespace = policy.namespace().unwrap_or_default();
    let api: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), &namespace);
    let status = policy.status.clone().unwrap_or_default();

    let engine = match policy.spec.to_policy() {
        Ok(p) => p,
        Err(e) => {
            let f = Failure {
                reason: reason::INVALID_POLICY,
                message: e.to_string(),
                stalled: true,
            };
            return fail(policy, &api, ctx, log, status, f, None).await;
        }
    };
    let reference = &policy.spec.image_repository_ref;
    let repo_ns = reference
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| namespace.clone());
    let repo_key = format!("{repo_ns}/{}", reference.name);
    if repo_ns != namespace && ctx.options.no_cross_namespace_refs {
        let f = Failure {
            reason: reason::ACCESS_DENIED,
            message: format!(
                "spec.imageRepositoryRef.namespace {repo_ns:?}: cross-namespace references are not allowed \
                 (--no-cross-namespace-refs)"
            ),
            stalled: true,
        };
        return fail(policy, &api, ctx, log, status, f, None).await;
    }
    let repos: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), &repo_ns);
    let Some(repo) = repos.get_opt(&reference.name).await? else {
        let f = Failure {
            reason: reason::DEPENDENCY_NOT_READY,
            message: format!(
                "referenced ImageRepository '{repo_key}' (spec.imageRepositoryRef) not found"
            ),
            stalled: false,
        };
        return fail(policy, &api, ctx, log, status, f, None).await;
    };
    if repo_ns != namespace {
        let ns: Api<Namespace> = Api::all(ctx.client.clone());
        let labels = ns
            .get_opt(&namespace)
            .await?
            .map(|n| n.labels().clone())
            .unwrap_or_default();
        if !repo.spec.allows_access_from(&repo_ns, &namespace, &labels) {
            let f = Failure {
                reason: reason::ACCESS_DENIED,
                message: format!(
                    "ImageRepository '{repo_key}' (spec.imageRepositoryRef) does not allow access from \
                     namespace '{namespace}' (its spec.accessFrom)"
                ),
                stalled: false,
            };
            return fail(policy, &api, ctx, log, status, f, Some(RECHECK)).await;
        }
    }

    // Only the tags of the repository's last scan: never a list from before a restart or a lost volume.
    let wanted = repo
        .status
        .as_ref()
        .and_then(|s| s.last_scan_result.as_ref())
        .and_then(|r| r.revision.clone());
    let stored = match &wanted {
        Some(_) => ctx.store.read(&repo_ns, &reference.name)?,
        None => None,
    };
    let Some(stored) = stored.filter(|s| Some(s.revision()) == wanted.as_deref()) else {
        log.debug(&format!(
            "waiting for the tags of ImageRepository '{repo_key}'"
        ));
        if status.latest_ref.is_some() {
            // Keep the last good result until the repository has been scanned again.
            return Ok(Action::requeue(ctx.options.requeue_dependency));
        }
        let f = Failure {
            reason: reason::DEPENDENCY_NOT_READY,
            message: format!("waiting for ImageRepository '{repo_key}' to be scanned"),
            stalled: false,
        };
        return fail(
            policy,
            &api,
            ctx,
            log,
            status,
            f,
            Some(ctx.options.requeue_dependency),
        )
        .await;
    };
    let tag = {
        let tags = stored.to_vec();
        match engine.select(&tags) {
            Ok(t) => t.to_string(),
            Err(e) => {
                let f = Failure {
                    reason: reason::RECONCILIATION_FAILED,
                    message: format!(
                        "cannot determine latest tag for policy: {e} (ImageRepository '{repo_key}' has {} tags)",
                        stored.len()
                    ),
                    stalled: false,
                };
                drop(tags);
                return fail(policy, &api, ctx, log, status, f, Some(RECHECK)).await;
            }
        }
    };
    drop(stored);

    let image = repo.spec.image.clone();
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
                None => match resolve_digest(ctx, &repo, &repo_ns, &tag).await {
                    Ok(d) => Some(d),
                    Err(f) => return fail(policy, &api, ctx, log, status, f, None).await,
                },
            }
        }
    };
    let latest = ImageRef {
        name: image.clone(),
        tag: tag.clone(),
        digest: digest.clone(),
    };
    let mut new = status.clone();
    let changed = status.latest_ref.as_ref() != Some(&latest);
    if changed && let Some(prev) = &status.latest_ref {
        new.observed_previous_ref = Some(prev.clone());
        new.observed_previous_image = Some(prev.reference());
    }
    new.latest_ref = Some(latest.clone());
    new.latest_image = Some(latest.reference());
    new.observed_generation = policy.metadata.generation;
    if let Some(req) = requested_at(&policy.metadata) {
        new.last_handled_reconcile_at = Some(req.to_string());
    }
    let mut message = format!("Latest image tag for {image} resolved to {tag}");
    if let Some(d) = &digest {
        message.push_str(&format!(" with digest {d}"));
    }
    if changed && let Some(prev) = &status.latest_ref {
        message.push_str(&format!(" (previously {})", prev.reference()));
    }
    let mut conds: Vec<Condition> = new.conditions.take().unwrap_or_default();
    if !changed
        && let Some(ready) = conditions::get(&conds, conditions::READY)
        && ready.status == "True"
    {
        // Same result: keep the message that announced it.
        message = ready.message.clone();
    }
    conditions::mark_ready(
        &mut conds,
        reason::SUCCEEDED,
        &message,
        policy.metadata.generation,
    );
    new.conditions = Some(conds);
    if policy.status.as_ref() != Some(&new) {
        write_status(&api, MANAGER, &policy.name_any(), &new).await?;
    }
    ctx.backoff.reset(&key(policy));
    if changed {
        ctx.events
            .publish(policy, false, reason::SUCCEEDED, &message)
            .await;
        log.info(&message);
    }
    match policy.spec.digest_interval() {
        Ok(Some(interval)) => Ok(Action::requeue(interval)),
        _ => Ok(Action::await_change()),
    }
}

async fn resolve_digest(
    ctx: &Context,
    repo: &ImageRepository,
    namespace: &str,
    tag: &str,
) -> Result<String, Failure> {
    let checked = repo.spec.check().map_err(|e| Failure {
        reason: reason::DEPENDENCY_NOT_READY,
        message: format!("referenced ImageRepository is invalid: {e}"),
        stalled: false,
    })?;
    let (credentials, transport) = registry_access(ctx, repo, namespace, &checked.image).await?;
    ctx.metrics.registry_request();
    ctx.registry
        .digest(&checked.image, tag, &credentials, &transport)
        .await
        .map_err(|e| Failure {
            reason: reason::READ_OPERATION_FAILED,
            message: format!(
                "cannot resolve the digest of {}:{tag}: {e}",
                repo.spec.image
            ),
            stalled: false,
        })
}

/// Writes a failure, keeping `latestRef` (the last good result), and schedules the retry.
async fn fail(
    policy: &ImagePolicy,
    api: &Api<ImagePolicy>,
    ctx: &Context,
    log: &ReconcileLog,
    mut status: ImagePolicyStatus,
    failure: Failure,
    retry: Option<Duration>,
) -> Result<Action, Error> {
    let generation = policy.metadata.generation;
    let mut conds = status.conditions.take().unwrap_or_default();
    let news = failure.record(&mut conds, generation);
    status.observed_generation = generation;
    if let Some(req) = requested_at(&policy.metadata) {
        status.last_handled_reconcile_at = Some(req.to_string());
    }
    status.conditions = Some(conds);
    if policy.status.as_ref() != Some(&status) {
        write_status(api, MANAGER, &policy.name_any(), &status).await?;
    }
    if news {
        if failure.reason == reason::DEPENDENCY_NOT_READY {
            // Waiting for the repository is a normal state (a first scan, a restart), not an error.
            log.info(&failure.message);
        } else {
            ctx.events
                .publish(policy, true, failure.reason, &failure.message)
                .await;
            log.error(&failure.message);
        }
    }
    if failure.stalled {
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(
        retry.unwrap_or_else(|| ctx.backoff.next(&key(policy))),
    ))
}

/// Maps an ImageRepository event to the policies that refer to it, only when the repository's tag revision or
/// generation changed (not on every status write such as a new scan time). The fingerprints of deleted
/// repositories are pruned ([`Seen`]).
pub fn policies_to_requeue(
    policies: Store<ImagePolicy>,
) -> impl Fn(ImageRepository) -> Vec<ObjectRef<ImagePolicy>> + Send + Sync + 'static {
    let seen = Seen::default();
    move |repo: ImageRepository| {
        let repo_ns = repo.namespace().unwrap_or_default();
        let repo_name = repo.name_any();
        let revision = repo
            .status
            .as_ref()
            .and_then(|s| s.last_scan_result.as_ref())
            .and_then(|r| r.revision.clone());
        let fingerprint = format!("{:?}/{revision:?}", repo.metadata.generation);
        if !seen.changed(format!("{repo_ns}/{repo_name}"), fingerprint) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut dedup = HashSet::new();
        for p in policies.state() {
            let pns = p.namespace().unwrap_or_default();
            let r = &p.spec.image_repository_ref;
            let rns = r
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(&pns);
            if r.name == repo_name && rns == repo_ns && dedup.insert(key(p.as_ref())) {
                out.push(ObjectRef::from_obj(p.as_ref()));
            }
        }
        out
    }
}
