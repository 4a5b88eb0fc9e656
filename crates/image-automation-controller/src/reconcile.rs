//! The ImageUpdateAutomation reconciler: check the spec, read the source and the policies, skip when neither
//! the remote head nor the policies moved, else run the update (clone, setters, commit, push) and record the
//! outcome in the status, with an event for each push and each new failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tagpilot_core::api::conditions::{self, reason};
use tagpilot_core::api::{ImageUpdateAutomation, ImageUpdateAutomationStatus, requested_at};
use tagpilot_core::automation::{self, AutomationError, Run};
use tagpilot_runtime::{Failure, ReconcileLog, key, write_status};

use crate::context::{Context, MANAGER};
use crate::error::Error;
use crate::metrics::RunResult;
use crate::source;

/// Ready's message when nothing had to change.
pub const UP_TO_DATE: &str = "repository up-to-date";

/// Reconciles one ImageUpdateAutomation.
pub async fn reconcile(
    auto: Arc<ImageUpdateAutomation>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let start = Instant::now();
    let namespace = auto.namespace().unwrap_or_default();
    let name = auto.name_any();
    let log = ReconcileLog::new("imageupdateautomation", &namespace, &name);
    let result = apply(&auto, &ctx, &log).await;
    ctx.metrics.reconciled(&namespace, &name, start.elapsed());
    result
}

async fn apply(
    auto: &ImageUpdateAutomation,
    ctx: &Context,
    log: &ReconcileLog,
) -> Result<Action, Error> {
    let namespace = auto.namespace().unwrap_or_default();
    let name = auto.name_any();
    let api: Api<ImageUpdateAutomation> = Api::namespaced(ctx.client.clone(), &namespace);
    if auto.spec.suspend == Some(true) {
        log.debug("reconciliation is suspended for this object");
        return Ok(Action::await_change());
    }
    let mut status = auto.status.clone().unwrap_or_default();
    let conds = status.conditions.take().unwrap_or_default();
    let fail = |status, conds, f| fail(auto, &api, ctx, log, status, conds, f);

    let checked = match auto.spec.check() {
        Ok(c) => c,
        Err(e) => {
            let f = Failure {
                reason: e.reason,
                message: e.message,
                stalled: true,
            };
            return fail(status, conds, f).await;
        }
    };
    let commit_spec = auto.spec.commit();
    if let Err(e) = automation::check_template(commit_spec.message_template.as_deref()) {
        let f = Failure {
            reason: reason::GIT_OPERATION_FAILED,
            message: format!("spec.git.commit.messageTemplate: {e}"),
            stalled: true,
        };
        return fail(status, conds, f).await;
    }
    let (source, timeout) = match source::resolve(ctx, auto).await {
        Ok(s) => s,
        Err(f) => return fail(status, conds, f).await,
    };
    let (policies, observed) = match source::policies(ctx, auto, &checked.policy_selector).await {
        Ok(p) => p,
        Err(f) => return fail(status, conds, f).await,
    };

    // Nothing moved since the last run: no clone.
    let t0 = Instant::now();
    if status.observed_policies.as_ref() == Some(&observed) {
        let check_source = source.clone();
        let observed_revision = status.observed_source_revision.clone();
        let unchanged = tokio::task::spawn_blocking(move || {
            automation::source_unchanged(&check_source, observed_revision.as_deref())
        })
        .await
        .unwrap_or(Ok(false));
        match unchanged {
            Ok(true) => {
                ctx.metrics.ran(RunResult::Skipped, t0.elapsed());
                log.debug("remote head and policies unchanged: nothing to do");
                // Nothing moved: a Ready message about the last push stays.
                let keep = conditions::get(&conds, conditions::READY)
                    .filter(|c| c.status == "True")
                    .map(|c| c.message.clone());
                let message = keep.unwrap_or_else(|| UP_TO_DATE.to_string());
                return succeed(auto, &api, ctx, status, conds, &message, checked.interval).await;
            }
            Ok(false) => {}
            Err(e) => {
                ctx.metrics.ran(RunResult::Failed, t0.elapsed());
                let f = Failure {
                    reason: reason::GIT_OPERATION_FAILED,
                    message: e.to_string(),
                    stalled: false,
                };
                return fail(status, conds, f).await;
            }
        }
    }

    let signer = match source::signer(ctx, auto).await {
        Ok(s) => s,
        Err(f) => return fail(status, conds, f).await,
    };
    let commit = auto.spec.commit_settings(signer);
    let mut push = auto.spec.push_settings();
    push.no_force_push_branch = !ctx.options.force_push_branch;
    let work = match tempfile::Builder::new()
        .prefix(&format!("{namespace}-{name}-"))
        .tempdir_in(&ctx.options.work_dir)
    {
        Ok(w) => w,
        Err(e) => {
            let f = Failure {
                reason: reason::GIT_OPERATION_FAILED,
                message: format!(
                    "cannot create a clone directory in {}: {e}",
                    ctx.options.work_dir.display()
                ),
                stalled: false,
            };
            return fail(status, conds, f).await;
        }
    };
    let deadline = Instant::now() + timeout;
    let (ns2, name2) = (namespace.clone(), name.clone());
    let update_path = checked.update_path.clone();
    let run_policies = policies.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let r = automation::run(&Run {
            namespace: &ns2,
            name: &name2,
            source: &source,
            commit: &commit,
            push: &push,
            update_path: &update_path,
            policies: &run_policies,
            work_dir: work.path(),
            deadline: Some(deadline),
        });
        drop(work);
        r
    })
    .await;
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            ctx.metrics.ran(RunResult::Failed, t0.elapsed());
            let (reason, stalled) = match &e {
                AutomationError::Update(_) => (reason::UPDATE_FAILED, false),
                AutomationError::Template(_) => (reason::GIT_OPERATION_FAILED, true),
                AutomationError::NoPushBranch(_) => (reason::INVALID_SOURCE_CONFIGURATION, true),
                _ => (reason::GIT_OPERATION_FAILED, false),
            };
            let f = Failure {
                reason,
                message: e.to_string(),
                stalled,
            };
            return fail(status, conds, f).await;
        }
        Err(e) => {
            ctx.metrics.ran(RunResult::Failed, t0.elapsed());
            let f = Failure {
                reason: reason::GIT_OPERATION_FAILED,
                message: format!("the update run stopped: {e}"),
                stalled: false,
            };
            return fail(status, conds, f).await;
        }
    };
    for e in &outcome.update.errors {
        log.warn(&format!("skipped {}: {}", e.path, e.message));
    }
    status.observed_policies = Some(observed);
    status.observed_source_revision = Some(outcome.observed_revision.clone());
    let result = if outcome.pushed.is_some() {
        RunResult::Pushed
    } else {
        RunResult::UpToDate
    };
    ctx.metrics.ran(result, t0.elapsed());
    if let Some(p) = &outcome.pushed {
        status.last_push_commit = Some(p.commit.to_string());
        status.last_push_time = Some(conditions::now_rfc3339());
        log.info(&format!(
            "{} ({} file(s), {} attempt(s))",
            p.summary(),
            outcome.update.files.len(),
            p.attempts
        ));
    } else {
        log.debug(UP_TO_DATE);
    }
    let pushed = outcome.pushed;
    let message = pushed
        .as_ref()
        .map_or_else(|| UP_TO_DATE.to_string(), |p| p.summary());
    let action = succeed(auto, &api, ctx, status, conds, &message, checked.interval).await?;
    if let Some(p) = &pushed {
        ctx.events
            .publish(auto, false, reason::SUCCEEDED, &p.event_note())
            .await;
    }
    Ok(action)
}

/// Writes a successful run to the status (Ready=True) and schedules the next run.
async fn succeed(
    auto: &ImageUpdateAutomation,
    api: &Api<ImageUpdateAutomation>,
    ctx: &Context,
    mut status: ImageUpdateAutomationStatus,
    mut conds: Vec<tagpilot_core::api::Condition>,
    message: &str,
    interval: Duration,
) -> Result<Action, Error> {
    let generation = auto.metadata.generation;
    conditions::mark_ready(&mut conds, reason::SUCCEEDED, message, generation);
    status.conditions = Some(conds);
    status.last_automation_run_time = Some(conditions::now_rfc3339());
    if let Some(req) = requested_at(&auto.metadata) {
        status.last_handled_reconcile_at = Some(req.to_string());
    }
    status.observed_generation = generation;
    write_status(api, MANAGER, &auto.name_any(), &status).await?;
    ctx.backoff.reset(&key(auto));
    Ok(Action::requeue(interval))
}

/// Writes a failure to the status, publishes a warning event when the message is new, and schedules the
/// retry (none when stalled: the spec must change).
async fn fail(
    auto: &ImageUpdateAutomation,
    api: &Api<ImageUpdateAutomation>,
    ctx: &Context,
    log: &ReconcileLog,
    mut status: ImageUpdateAutomationStatus,
    mut conds: Vec<tagpilot_core::api::Condition>,
    failure: Failure,
) -> Result<Action, Error> {
    let generation = auto.metadata.generation;
    let news = failure.record(&mut conds, generation);
    if let Some(req) = requested_at(&auto.metadata) {
        status.last_handled_reconcile_at = Some(req.to_string());
    }
    status.observed_generation = generation;
    status.conditions = Some(conds);
    if auto.status.as_ref() != Some(&status) {
        write_status(api, MANAGER, &auto.name_any(), &status).await?;
    }
    if news {
        ctx.events
            .publish(auto, true, failure.reason, &failure.message)
            .await;
    }
    log.error(&failure.message);
    if failure.stalled {
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(ctx.backoff.next(&key(auto))))
}
