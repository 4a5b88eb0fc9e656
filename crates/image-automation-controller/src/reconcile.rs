//! The ImageUpdateAutomation reconciler: the core reads and checks the inputs, skips when neither the remote
//! head nor the policies moved, else runs the update (clone, setters, commit, push); the finisher records the
//! outcome, with an event for each push and each new failure.

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tagpilot_core::api::{ImageUpdateAutomation, ImageUpdateAutomationStatus};
use tagpilot_core::automation::inputs::{self, Done};
use tagpilot_runtime::{Failure, Ready, ReconcileLog};

use crate::context::Context;
use crate::error::Error;
use crate::metrics::RunResult;

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
    if auto.spec.suspend == Some(true) {
        log.debug("reconciliation is suspended for this object");
        return Ok(Action::await_change());
    }
    let old = auto.status.as_ref();
    let mut status = old.cloned().unwrap_or_default();
    let result = run(auto, ctx, log, &mut status).await;
    Ok(ctx
        .finisher()
        .finish(auto, old, status, result, log)
        .await?)
}

/// The core's reconcile, measured and logged.
async fn run(
    auto: &ImageUpdateAutomation,
    ctx: &Context,
    log: &ReconcileLog,
    status: &mut ImageUpdateAutomationStatus,
) -> Result<Ready, Failure> {
    let t0 = Instant::now();
    let result = inputs::reconcile(
        &ctx.lookup,
        &ctx.settings(),
        auto,
        &ctx.options.work_dir,
        status,
    )
    .await;
    let ran = match &result {
        Err(_) => RunResult::Failed,
        Ok((_, Done::Skipped)) => {
            log.debug("remote head and policies unchanged: nothing to do");
            RunResult::Skipped
        }
        Ok((ready, Done::Proposed)) => match ready.event {
            Some(_) => RunResult::Pushed,
            None => RunResult::UpToDate,
        },
        Ok((_, Done::Ran(outcome))) => {
            for e in &outcome.update.errors {
                log.warn(&format!("skipped {}: {}", e.path, e.message));
            }
            match &outcome.pushed {
                Some(p) => {
                    log.debug(&format!(
                        "{} file(s) changed, pushed in {} attempt(s)",
                        outcome.update.files.len(),
                        p.attempts
                    ));
                    RunResult::Pushed
                }
                None => RunResult::UpToDate,
            }
        }
    };
    ctx.metrics.ran(ran, t0.elapsed());
    result.map(|(ready, _)| ready)
}
