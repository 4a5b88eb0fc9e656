//! The ImagePolicy reconciler: check the reference (and its cross-namespace ACL), read the repository's
//! stored tags, choose the latest, reflect the digest, write the status in the fields of every version.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use tagpilot_core::api::{ImagePolicy, ImageRepository};
use tagpilot_core::cloud::Env;
use tagpilot_core::policy::evaluate::{Evaluation, PolicySettings, evaluate};
use tagpilot_runtime::watch::Seen;
use tagpilot_runtime::{ReconcileLog, key};

use crate::context::Context;
use crate::error::Error;

const KIND: &str = "ImagePolicy";

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
    let old = policy.status.as_ref();
    let mut status = old.cloned().unwrap_or_default();
    let env = Env::process();
    let access = ctx.access_settings(&env);
    let settings = PolicySettings {
        store: &ctx.store,
        registry: &ctx.registry,
        access: &access,
        no_cross_namespace_refs: ctx.options.no_cross_namespace_refs,
        requeue_dependency: ctx.options.requeue_dependency,
        gates: &ctx.gates,
    };
    let result = match evaluate(&ctx.lookup, &settings, policy, &mut status).await {
        Ok(Evaluation::Resolved {
            ready,
            asked_registry,
        }) => {
            if asked_registry {
                ctx.metrics.registry_request();
            }
            Ok(ready)
        }
        Ok(Evaluation::Waiting { repository }) => {
            // Keep the last good result until the repository has been scanned again.
            log.debug(&format!(
                "waiting for the tags of ImageRepository '{repository}'"
            ));
            return Ok(Action::requeue(ctx.options.requeue_dependency));
        }
        Err(f) => Err(f),
    };
    Ok(ctx
        .finisher()
        .finish(policy, old, status, result, log)
        .await?)
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
