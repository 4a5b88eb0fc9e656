//! Webhook receivers (`--receiver-addr`): Flux's Receiver objects are reconciled into an index of secret
//! paths, and a small HTTP server verifies each call (`tagpilot_core::receiver`) and asks the ImageRepositories
//! it names to scan (`reconcile.fluxcd.io/requestedAt`). Calls for the same repository within half a second
//! are coalesced into one request (and one more at the end of that half second), so a flood of calls makes a few
//! scans while pushes seconds apart are each scanned at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use serde_json::json;
use tagpilot_core::api::conditions::{self, reason};
use tagpilot_core::api::{
    ImageRepository, REQUESTED_AT_ANNOTATION, Receiver, ReceiverResource, ReceiverStatus, duration,
    requested_at,
};
use tagpilot_core::receiver::{self, MAX_BODY, Verdict};
use tagpilot_runtime::secrets::secret;
use tagpilot_runtime::{Events, Failure, ReconcileLog, write_status};

use crate::context::{Context, MANAGER};
use crate::error::Error;

/// How long calls for one repository are folded into one scan request.
const COALESCE: Duration = Duration::from_millis(500);

/// A served Receiver.
#[derive(Clone)]
struct Entry {
    receiver: Arc<Receiver>,
    token: String,
}

/// The served paths and what they lead to.
#[derive(Clone, Default)]
pub struct Index {
    by_path: Arc<RwLock<HashMap<String, Entry>>>,
}

impl Index {
    fn set(&self, key: &str, path: String, entry: Entry) {
        let mut m = self.by_path.write().expect("index lock");
        m.retain(|_, e| tagpilot_runtime::key(e.receiver.as_ref()) != key);
        m.insert(path, entry);
    }

    fn remove(&self, key: &str) {
        self.by_path
            .write()
            .expect("index lock")
            .retain(|_, e| tagpilot_runtime::key(e.receiver.as_ref()) != key);
    }

    fn get(&self, path: &str) -> Option<Entry> {
        self.by_path.read().expect("index lock").get(path).cloned()
    }
}

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
            index.remove(&key);
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
        index.remove(&key);
        log.debug("suspended: calls are not served");
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
        index.remove(&key);
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
            index.remove(&key);
            return fail(&r, &api, &ctx, &log, status, conds, f).await;
        }
    };
    let Some(token) = data
        .get("token")
        .map(|t| String::from_utf8_lossy(t).trim().to_string())
        .filter(|t| !t.is_empty())
    else {
        index.remove(&key);
        let f = Failure {
            reason: reason::FAILURE,
            message: format!(
                "secret '{ns}/{}' (spec.secretRef) has no 'token' key",
                r.spec.secret_ref.name
            ),
            stalled: false,
        };
        return fail(&r, &api, &ctx, &log, status, conds, f).await;
    };
    let path = receiver::webhook_path(&token, &name, &ns);
    index.set(
        &key,
        path.clone(),
        Entry {
            receiver: r.clone(),
            token,
        },
    );
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

/// Folds scan requests per repository: at most one now and one at the end of the window.
#[derive(Default)]
struct Coalescer {
    state: Mutex<HashMap<String, (Instant, bool)>>,
}

/// What the HTTP handler needs.
struct Server {
    client: Client,
    events: Events,
    index: Index,
    no_cross_namespace_refs: bool,
    coalescer: Coalescer,
}

/// Starts the receiver server on `addr`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    client: Client,
    events: Events,
    index: Index,
    no_cross_namespace_refs: bool,
) -> anyhow::Result<SocketAddr> {
    let server = Arc::new(Server {
        client,
        events,
        index,
        no_cross_namespace_refs,
        coalescer: Coalescer::default(),
    });
    let router = Router::new()
        .route("/hook/{id}", any(handle))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the receiver address {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "receiver server stopped");
        }
    });
    Ok(bound)
}

async fn handle(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(entry) = server.index.get(&format!("/hook/{id}")) else {
        return (StatusCode::NOT_FOUND, "not found\n".into());
    };
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "only POST\n".into());
    }
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
        .collect();
    let r = &entry.receiver;
    let events = r.spec.events.clone().unwrap_or_default();
    match receiver::verify(&r.spec.type_, &entry.token, &events, &pairs, &body) {
        Verdict::Reject(code, why) => {
            server
                .events
                .publish(
                    r.as_ref(),
                    true,
                    "ValidationFailed",
                    &format!("call rejected: {why}"),
                )
                .await;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
            (status, format!("{why}\n"))
        }
        Verdict::Ignore(why) => (StatusCode::OK, format!("ignored: {why}\n")),
        Verdict::Accept(note) => {
            let (requested, problems) = server.request_scans(r).await;
            let mut message = format!("{note}: {requested} ImageRepository scan(s) requested");
            for p in &problems {
                message.push_str(&format!("; {p}"));
            }
            server
                .events
                .publish(r.as_ref(), !problems.is_empty(), "Succeeded", &message)
                .await;
            (StatusCode::OK, format!("{message}\n"))
        }
    }
}

impl Server {
    /// Asks every ImageRepository the Receiver names to scan; returns how many and what went wrong.
    async fn request_scans(self: &Arc<Self>, r: &Receiver) -> (usize, Vec<String>) {
        let own = r.namespace().unwrap_or_default();
        let mut count = 0;
        let mut problems = Vec::new();
        for res in &r.spec.resources {
            match self.targets(&own, res).await {
                Ok(names) => {
                    for (ns, name) in names {
                        self.request(ns, name);
                        count += 1;
                    }
                }
                Err(p) => problems.push(p),
            }
        }
        (count, problems)
    }

    async fn targets(
        &self,
        own: &str,
        res: &ReceiverResource,
    ) -> Result<Vec<(String, String)>, String> {
        if res.kind != "ImageRepository" {
            return Err(format!(
                "{} '{}': only ImageRepository is served",
                res.kind, res.name
            ));
        }
        let ns = res
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or(own.to_string());
        if ns != own && self.no_cross_namespace_refs {
            return Err(format!(
                "ImageRepository '{ns}/{}': cross-namespace references are disabled",
                res.name
            ));
        }
        if res.name != "*" {
            return Ok(vec![(ns, res.name.clone())]);
        }
        let selector: Vec<String> = res
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let api: Api<ImageRepository> = Api::namespaced(self.client.clone(), &ns);
        let list = api
            .list(&ListParams::default().labels(&selector.join(",")))
            .await
            .map_err(|e| format!("cannot list the ImageRepositories of '{ns}': {e}"))?;
        Ok(list
            .items
            .iter()
            .map(|i| (ns.clone(), i.name_any()))
            .collect())
    }

    /// Requests a scan now, or once at the end of the coalescing window if one was just requested.
    fn request(self: &Arc<Self>, ns: String, name: String) {
        let key = format!("{ns}/{name}");
        let now = Instant::now();
        let wait = {
            let mut state = self.coalescer.state.lock().expect("coalescer lock");
            match state.get_mut(&key) {
                Some((last, pending)) if now.duration_since(*last) < COALESCE => {
                    if *pending {
                        return;
                    }
                    *pending = true;
                    COALESCE - now.duration_since(*last)
                }
                _ => {
                    state.insert(key.clone(), (now, false));
                    Duration::ZERO
                }
            }
        };
        let me = self.clone();
        tokio::spawn(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
                me.coalescer
                    .state
                    .lock()
                    .expect("coalescer lock")
                    .insert(key.clone(), (Instant::now(), false));
            }
            let api: Api<ImageRepository> = Api::namespaced(me.client.clone(), &ns);
            let patch = json!({"metadata": {"annotations": {
                REQUESTED_AT_ANNOTATION: jiff::Timestamp::now().to_string()
            }}});
            if let Err(e) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot request a scan");
            }
        });
    }
}
