//! Receiver objects reconciled into the index of webhook paths, and their status.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use tagpilot_core::api::conditions::{self, reason};
use tagpilot_core::api::{Receiver, ReceiverStatus, duration, requested_at};
use tagpilot_core::receiver::{self, ReceiverSecret};
use tagpilot_runtime::secrets::secret;
use tagpilot_runtime::{Failure, ReconcileLog, write_status};

use crate::context::{Context, MANAGER};
use crate::error::Error;

/// Reconciles one Receiver: its token, its path, its status.
pub async fn reconcile(r: Arc<Receiver>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = r.namespace().unwrap_or_default();
    let name = r.name_any();
    let key = format!("{ns}/{name}");
    let log = ReconcileLog::new("receiver", &ns, &name);
    let api: Api<Receiver> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(index) = &ctx.receivers else {
        return Ok(Action::await_change());
    };
    let mut status = r.status.clone().unwrap_or_default();
    let mut conds = status.conditions.take().unwrap_or_default();
    let generation = r.metadata.generation;
    let interval = match r.spec.interval.as_deref().map(duration::parse).transpose() {
        Ok(i) => i.unwrap_or(Duration::from_secs(600)),
        Err(e) => {
            index.keep_status_path(&key, &r);
            let f = Failure {
                reason: reason::FAILURE,
                message: format!(
                    "spec.interval {:?}: {e}",
                    r.spec.interval.as_deref().unwrap_or("")
                ),
                stalled: true,
            };
            return fail(&r, &api, &ctx, &log, status, conds, f).await;
        }
    };
    if r.spec.suspend == Some(true) {
        index.keep_status_path(&key, &r);
        log.debug("suspended: calls are answered 503");
        return Ok(Action::await_change());
    }
    let failure = if !receiver::TYPES.contains(&r.spec.type_.as_str()) {
        Some(Failure {
            reason: reason::FAILURE,
            message: format!(
                "spec.type {:?}: not served by tagpilot (served: {})",
                r.spec.type_,
                receiver::TYPES.join(", ")
            ),
            stalled: true,
        })
    } else if r
        .spec
        .resource_filter
        .as_deref()
        .is_some_and(|f| !f.is_empty())
    {
        Some(Failure {
            reason: reason::FAILURE,
            message: "spec.resourceFilter: CEL filters are not supported by tagpilot".into(),
            stalled: true,
        })
    } else {
        None
    };
    if let Some(f) = failure {
        index.keep_status_path(&key, &r);
        return fail(&r, &api, &ctx, &log, status, conds, f).await;
    }
    let data = match secret(
        &ctx.client,
        &ns,
        &r.spec.secret_ref.name,
        "spec.secretRef",
        reason::FAILURE,
    )
    .await
    {
        Ok(d) => d,
        Err(f) => {
            index.keep_status_path(&key, &r);
            return fail(&r, &api, &ctx, &log, status, conds, f).await;
        }
    };
    let token = match ReceiverSecret::from_data(&data) {
        Ok(s) => s.token,
        Err(why) => {
            index.keep_status_path(&key, &r);
            let f = Failure {
                reason: reason::FAILURE,
                message: format!(
                    "secret '{ns}/{}' (spec.secretRef): {why}",
                    r.spec.secret_ref.name
                ),
                stalled: false,
            };
            return fail(&r, &api, &ctx, &log, status, conds, f).await;
        }
    };
    let path = receiver::webhook_path(&token, &name, &ns);
    index.set(&key, path.clone());
    let message = format!("Receiver initialised with URL: {path}");
    conditions::mark_ready(&mut conds, reason::SUCCEEDED, &message, generation);
    status.conditions = Some(conds);
    status.url = Some(path.clone());
    status.webhook_path = Some(path);
    status.observed_generation = generation;
    if let Some(req) = requested_at(&r.metadata) {
        status.last_handled_reconcile_at = Some(req.to_string());
    }
    if r.status.as_ref() != Some(&status) {
        write_status(&api, MANAGER, &name, &status).await?;
        log.info(&message);
    }
    Ok(Action::requeue(interval))
}

async fn fail(
    r: &Receiver,
    api: &Api<Receiver>,
    ctx: &Context,
    log: &ReconcileLog,
    mut status: ReceiverStatus,
    mut conds: Vec<tagpilot_core::api::Condition>,
    failure: Failure,
) -> Result<Action, Error> {
    let news = failure.record(&mut conds, r.metadata.generation);
    status.conditions = Some(conds);
    status.observed_generation = r.metadata.generation;
    if r.status.as_ref() != Some(&status) {
        write_status(api, MANAGER, &r.name_any(), &status).await?;
    }
    if news {
        ctx.events
            .publish(r, true, failure.reason, &failure.message)
            .await;
    }
    log.error(&failure.message);
    if failure.stalled {
        return Ok(Action::await_change());
    }
    Ok(Action::requeue(ctx.backoff.next(&tagpilot_runtime::key(r))))
}
