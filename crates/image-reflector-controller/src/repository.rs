//! The ImageRepository reconciler: scan when due (Flux's `shouldScan`), store the tags, write the status.

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, ResourceExt};
use tagpilot_core::api::conditions;
use tagpilot_core::api::{FINALIZER, ImageRepository, ImageRepositoryStatus, ScanDue};
use tagpilot_core::cloud::Env;
use tagpilot_core::registry::scan::{checked, scan_repository};
use tagpilot_runtime::{Failure, Ready, ReconcileLog, write_status};

use crate::context::{Context, MANAGER};
use crate::error::Error;

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
            FinalizerEvent::Apply(r) => apply(&r, &ctx, &log).await,
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

async fn apply(repo: &ImageRepository, ctx: &Context, log: &ReconcileLog) -> Result<Action, Error> {
    if repo.spec.suspend == Some(true) {
        log.debug("reconciliation is suspended for this object");
        return Ok(Action::await_change());
    }
    let old = repo.status.as_ref();
    let mut status = old.cloned().unwrap_or_default();
    let result = match scan_if_due(repo, ctx, log, &mut status).await? {
        Due::Scanned(result) => result,
        Due::After(wait) => {
            // Not due: keep the last scan; only record a new generation (a spec change that needs no scan).
            if status.observed_generation != repo.metadata.generation {
                status.observed_generation = repo.metadata.generation;
                let api: Api<ImageRepository> =
                    Api::namespaced(ctx.client.clone(), &repo.namespace().unwrap_or_default());
                write_status(&api, MANAGER, &repo.name_any(), &status).await?;
            }
            return Ok(Action::requeue(wait));
        }
    };
    Ok(ctx
        .finisher()
        .finish(repo, old, status, result, log)
        .await?)
}

/// Whether a scan ran, and its result.
enum Due {
    Scanned(Result<Ready, Failure>),
    After(std::time::Duration),
}

/// Scans when due (Flux's `shouldScan`; at once after a failure), recording the scan in `status`.
async fn scan_if_due(
    repo: &ImageRepository,
    ctx: &Context,
    log: &ReconcileLog,
    status: &mut ImageRepositoryStatus,
) -> Result<Due, Error> {
    let checked = match checked(repo) {
        Ok(c) => c,
        Err(f) => return Ok(Due::Scanned(Err(f))),
    };
    let namespace = repo.namespace().unwrap_or_default();
    let stored = ctx.store.revision(&namespace, &repo.name_any())?;
    let mut due = repo.scan_due(
        &checked.image.canonical(),
        checked.interval,
        stored.as_deref(),
        jiff::Timestamp::now(),
    );
    let ready = status
        .conditions
        .as_deref()
        .is_some_and(conditions::is_ready);
    if matches!(due, ScanDue::After(_)) && !ready {
        due = ScanDue::Now("retrying after a failure");
    }
    let may_share = match due {
        ScanDue::After(wait) => return Ok(Due::After(wait)),
        ScanDue::Now(why) => {
            log.debug(&format!("scanning: {why}"));
            ScanDue::may_share(why)
        }
    };
    let env = Env::process();
    let t0 = Instant::now();
    let scanned = scan_repository(
        &ctx.lookup,
        &ctx.access_settings(&env),
        ctx.scanner(),
        repo,
        &checked,
        may_share,
        status,
    )
    .await;
    let scanned = match scanned {
        Ok(s) => s,
        Err(f) => {
            ctx.metrics.scanned(false, t0.elapsed(), 0, 0);
            return Ok(Due::Scanned(Err(f)));
        }
    };
    ctx.metrics
        .scanned(true, t0.elapsed(), scanned.requests, scanned.count);
    if let Some(age) = scanned.shared {
        log.debug(&format!(
            "tags from another ImageRepository's scan of the same image ({}s old)",
            age.as_secs()
        ));
    }
    if scanned.invalid > 0 {
        log.info(&format!(
            "scan listed {} names that are not OCI tags; dropped",
            scanned.invalid
        ));
    }
    if !scanned.new_tags.is_empty() {
        // The event says what Flux's says; the new tags go to the log.
        log.info(&format!("new tags: {}", scanned.new_tags.join(", ")));
    }
    Ok(Due::Scanned(Ok(scanned.ready)))
}
