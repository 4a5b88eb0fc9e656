//! Receiver objects reconciled into the index of webhook paths, and their status.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tagpilot_core::api::conditions::reason;
use tagpilot_core::api::{Receiver, duration};
use tagpilot_core::lookup::secret;
use tagpilot_core::receiver::{self, ReceiverSecret};
use tagpilot_runtime::{Failure, Ready, ReconcileLog};

use crate::context::Context;
use crate::error::Error;

/// Reconciles one Receiver: its token, its path, its status. While it fails (and while suspended) the index
/// keeps the path its status shows, so that its calls are answered (with 503) rather than 404.
pub async fn reconcile(r: Arc<Receiver>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = r.namespace().unwrap_or_default();
    let name = r.name_any();
    let key = format!("{ns}/{name}");
    let log = ReconcileLog::new("receiver", &ns, &name);
    let Some(index) = &ctx.receivers else {
        return Ok(Action::await_change());
    };
    let old = r.status.as_ref();
    let mut status = old.cloned().unwrap_or_default();
    let result = match interval(&r) {
        Ok(_) if r.spec.suspend == Some(true) => {
            index.keep_status_path(&key, &r);
            log.debug("suspended: calls are answered 503");
            return Ok(Action::await_change());
        }
        Ok(interval) => webhook_path(&r, &ctx).await.map(|path| {
            index.set(&key, path.clone());
            status.url = Some(path.clone());
            status.webhook_path = Some(path.clone());
            Ready {
                message: format!("Receiver initialised with URL: {path}"),
                event: None,
                requeue: Some(interval),
                metadata: Default::default(),
            }
        }),
        Err(f) => Err(f),
    };
    if result.is_err() {
        index.keep_status_path(&key, &r);
    }
    Ok(ctx
        .finisher()
        .finish(r.as_ref(), old, status, result, &log)
        .await?)
}

/// `spec.interval` (10 minutes when unset).
fn interval(r: &Receiver) -> Result<Duration, Failure> {
    match r.spec.interval.as_deref() {
        None => Ok(Duration::from_secs(600)),
        Some(i) => duration::parse(i)
            .map_err(|e| Failure::stalled(reason::FAILURE, format!("spec.interval {i:?}: {e}"))),
    }
}

/// The webhook path of a Receiver whose spec tagpilot serves, from its Secret's token.
async fn webhook_path(r: &Receiver, ctx: &Context) -> Result<String, Failure> {
    if !receiver::TYPES.contains(&r.spec.type_.as_str()) {
        return Err(Failure::stalled(
            reason::FAILURE,
            format!(
                "spec.type {:?}: not served by tagpilot (served: {})",
                r.spec.type_,
                receiver::TYPES.join(", ")
            ),
        ));
    }
    if r.spec
        .resource_filter
        .as_deref()
        .is_some_and(|f| !f.is_empty())
    {
        return Err(Failure::stalled(
            reason::FAILURE,
            "spec.resourceFilter: CEL filters are not supported by tagpilot",
        ));
    }
    let ns = r.namespace().unwrap_or_default();
    let secret_name = &r.spec.secret_ref.name;
    let data = secret(
        &ctx.lookup,
        &ns,
        secret_name,
        "spec.secretRef",
        reason::FAILURE,
    )
    .await?;
    let token = ReceiverSecret::from_data(&data)
        .map_err(|why| {
            Failure::retry(
                reason::FAILURE,
                format!("secret '{ns}/{secret_name}' (spec.secretRef): {why}"),
            )
        })?
        .token;
    Ok(receiver::webhook_path(&token, &r.name_any(), &ns))
}
