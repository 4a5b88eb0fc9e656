//! The ImageRepository reconciler: scan when due (Flux's `shouldScan`), store the tags, write the status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, ResourceExt};
use tagpilot_core::api::conditions::{self, reason};
use tagpilot_core::api::{FINALIZER, ImageRepository, ScanDue, ScanResultStatus};
use tagpilot_core::registry::{RegistryError, ScanRequest};

use crate::access::registry_access;
use crate::context::{Context, MANAGER};
use crate::error::Error;
use tagpilot_runtime::key;
use tagpilot_runtime::{Failure, ReconcileLog, write_status};

const KIND: &str = "ImageRepository";

/// Reconciles one ImageRepository.
pub async fn reconcile(repo: Arc<ImageRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = Instant::now();
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    let log = ReconcileLog::new("imagerepository", &namespace, &name);
    let api: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, repo, |event| async {
        match event {
            FinalizerEvent::Apply(r) => apply(&r, &api, &ctx, &log).await,
            FinalizerEvent::Cleanup(r) => {
                ctx.store.remove(&namespace, &r.name_any())?;
                log.info("deleted: stored tags removed");
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    });
    ctx.metrics
        .reconciled(KIND, &namespace, &name, start.elapsed());
    result
}

async fn apply(
    repo: &ImageRepository,
    api: &Api<ImageRepository>,
    ctx: &Context,
    log: &ReconcileLog,
) -> Result<Action, Error> {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();
    if repo.spec.suspend == Some(true) {
        log.debug("reconciliation is suspended for this object");
        return Ok(Action::await_change());
    }
    let generation = repo.metadata.generation;
    let old = repo.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let mut conds = status.conditions.take().unwrap_or_default();

    let checked = match repo.spec.check() {
        Ok(c) => c,
        Err(invalid) => {
            let failure = Failure {
                reason: invalid.reason,
                message: invalid.message,
                stalled: true,
            };
            return fail(repo, api, ctx, log, status, conds, failure).await;
        }
    };
    let canonical = checked.image.canonical();
    let stored = ctx.store.revision(&namespace, &name)?;
    let mut due = repo.scan_due(
        &canonical,
        checked.interval,
        stored.as_deref(),
        jiff::Timestamp::now(),
    );
    if matches!(due, ScanDue::After(_)) && !conditions::is_ready(&conds) {
        due = ScanDue::Now("retrying after a failure");
    }
    let why = match due {
        ScanDue::After(wait) => {
            // Not due: keep the last scan; only record a new generation (a spec change that needs no scan).
            if status.observed_generation != generation {
                status.observed_generation = generation;
                status.conditions = Some(conds);
                write_status(api, MANAGER, &name, &status).await?;
            }
            return Ok(Action::requeue(wait));
        }
        ScanDue::Now(why) => why,
    };
    log.debug(&format!("scanning: {why}"));

    let (credentials, transport) =
        match registry_access(ctx, repo, &namespace, &checked.image).await {
            Ok(a) => a,
            Err(failure) => return fail(repo, api, ctx, log, status, conds, failure).await,
        };
    let t0 = Instant::now();
    let scan = ctx
        .registry
        .list_tags(&ScanRequest {
            image: &checked.image,
            credentials: &credentials,
            transport: &transport,
            exclusions: &checked.exclusions,
            page_size: 1000,
            timeout: checked.timeout,
            max_tags: ctx.options.max_tags,
        })
        .await;
    let scan = match scan {
        Ok(s) => s,
        Err(e) => {
            ctx.metrics.scanned(false, t0.elapsed(), 0, 0);
            let reason = match e {
                RegistryError::AuthenticationFailed { .. } => reason::AUTHENTICATION_FAILED,
                RegistryError::InvalidTransport(_) => reason::FAILURE,
                _ => reason::READ_OPERATION_FAILED,
            };
            let failure = Failure {
                reason,
                message: format!("scan failed: {e}"),
                // Over the tag limit: no retry helps until the limit or the registry changes.
                stalled: matches!(e, RegistryError::TooManyTags { .. }),
            };
            return fail(repo, api, ctx, log, status, conds, failure).await;
        }
    };
    ctx.metrics
        .scanned(true, t0.elapsed(), scan.requests, scan.tags.len());
    if scan.invalid > 0 {
        log.info(&format!(
            "scan listed {} names that are not OCI tags; dropped",
            scan.invalid
        ));
    }

    let previous = match &stored {
        Some(_) => ctx.store.read(&namespace, &name)?,
        None => None,
    };
    let revision = ctx.store.write(&namespace, &name, &scan.tags)?;
    let count = scan.tags.len();
    status.canonical_image_name = Some(canonical);
    status.last_scan_result = Some(ScanResultStatus {
        revision: Some(revision.clone()),
        tag_count: count as i64,
        scan_time: Some(conditions::now_rfc3339()),
        latest_tags: Some(scan.tags.iter().take(10).cloned().collect()),
    });
    status.observed_exclusion_list = Some(checked.exclusion_list.clone());
    if let Some(req) = repo.requested_at() {
        status.last_handled_reconcile_at = Some(req.to_string());
    }
    status.observed_generation = generation;
    let message = format!("successful scan: found {count} tags with checksum {revision}");
    conditions::mark_ready(&mut conds, reason::SUCCEEDED, &message, generation);
    status.conditions = Some(conds);
    write_status(api, MANAGER, &name, &status).await?;
    ctx.backoff.reset(&key(repo));

    let old_revision = old
        .last_scan_result
        .as_ref()
        .and_then(|r| r.revision.clone());
    if old_revision.as_deref() != Some(revision.as_str()) {
        let note = match &previous {
            Some(prev) => {
                let before: HashSet<&str> = prev.iter().collect();
                let new: Vec<&str> = scan
                    .tags
                    .iter()
                    .map(String::as_str)
                    .filter(|t| !before.contains(t))
                    .take(10)
                    .collect();
                if new.is_empty() {
                    message.clone()
                } else {
                    format!("{message}; new tags: {}", new.join(", "))
                }
            }
            None => message.clone(),
        };
        // The event says what Flux's says; the new tags go to the log.
        ctx.events
            .publish(repo, false, reason::SUCCEEDED, &message)
            .await;
        log.info(&note);
    } else {
        log.debug(&message);
    }
    Ok(Action::requeue(checked.interval))
}

/// Writes a failure to the status (keeping the last scan result and the stored tags), publishes a warning
/// event when the message is new, and schedules the retry.
async fn fail(
    repo: &ImageRepository,
    api: &Api<ImageRepository>,
    ctx: &Context,
    log: &ReconcileLog,
    mut status: tagpilot_core::api::ImageRepositoryStatus,
    mut conds: Vec<tagpilot_core::api::Condition>,
    failure: Failure,
) -> Result<Action, Error> {
    let generation = repo.metadata.generation;
    let news = failure.record(&mut conds, generation);
    if let Some(req) = repo.requested_at() {
        status.last_handled_reconcile_at = Some(req.to_string());
    }
    status.observed_generation = generation;
    status.conditions = Some(conds);
    if repo.status.as_ref() != Some(&status) {
        write_status(api, MANAGER, &repo.name_any(), &status).await?;
    }
    if news {
        ctx.events
            .publish(repo, true, failure.reason, &failure.message)
            .await;
    }
    log.error(&failure.message);
    if failure.stalled {
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(ctx.backoff.next(&key(repo))))
}
