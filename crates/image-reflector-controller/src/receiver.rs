//! Webhook receivers (`--receiver-addr`): Flux's Receiver objects are reconciled into an index of secret
//! paths, and a small HTTP server verifies each call (`tagpilot_core::receiver`) and asks the ImageRepositories
//! it names to scan (`reconcile.fluxcd.io/requestedAt`). Calls for the same repository within half a second
//! are coalesced into one request (and one more at the end of that half second), so a flood of calls makes a few
//! scans while pushes seconds apart are each scanned at once.
//!
//! A call is answered as notification-controller answers it: 404 for a path no Receiver has (or whose token has
//! changed since: the URL is the secret), 503 while the Receiver is suspended or not Ready, 400 when its Secret
//! or the Secret's token is gone (the Secret is read per call, so deleting it closes the URL at once) or the
//! call does not verify, 500 when a named resource does not exist, a wildcard has no `matchLabels`, or a
//! cross-namespace reference is refused (the other resources are still asked to scan), else 200. Targets are
//! looked up in the reflector's cache of ImageRepositories (a GET only for a name the cache lacks), so a flood
//! of calls makes no LIST; events about calls are written at most once per Receiver and reason per
//! [`EVENT_EVERY`].

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
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::json;
use tagpilot_core::api::conditions::{self, reason};
use tagpilot_core::api::{
    ImageRepository, REQUESTED_AT_ANNOTATION, Receiver, ReceiverResource, ReceiverStatus, duration,
    requested_at,
};
use tagpilot_core::receiver::{self, MAX_BODY, ReceiverSecret, Verdict};
use tagpilot_runtime::secrets::secret;
use tagpilot_runtime::{Events, Failure, ReconcileLog, write_status};

use crate::context::{Context, MANAGER};
use crate::error::Error;

/// How long calls for one repository are folded into one scan request.
const COALESCE: Duration = Duration::from_millis(500);

/// At most one event about calls per Receiver and reason in this time (the log has every call).
pub const EVENT_EVERY: Duration = Duration::from_secs(10);

/// The served paths and the Receivers (`namespace/name`) they lead to.
#[derive(Clone, Default)]
pub struct Index {
    by_path: Arc<RwLock<HashMap<String, String>>>,
}

impl Index {
    fn set(&self, key: &str, path: String) {
        let mut m = self.by_path.write().expect("index lock");
        m.retain(|_, k| k != key);
        m.insert(path, key.to_string());
    }

    fn remove(&self, key: &str) {
        self.by_path
            .write()
            .expect("index lock")
            .retain(|_, k| k != key);
    }

    /// Keeps serving the path the Receiver's status names (answered 503 while it is suspended or not Ready,
    /// as Flux, whose index is `status.webhookPath`); nothing when it never had one.
    fn keep_status_path(&self, key: &str, r: &Receiver) {
        match r.status.as_ref().and_then(|s| s.webhook_path.clone()) {
            Some(path) if !path.is_empty() => self.set(key, path),
            _ => self.remove(key),
        }
    }

    fn get(&self, path: &str) -> Option<String> {
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
    receivers: Store<Receiver>,
    repositories: Store<ImageRepository>,
    no_cross_namespace_refs: bool,
    coalescer: Coalescer,
    /// When an event about calls was last written, per Receiver and reason.
    last_events: Mutex<HashMap<(String, &'static str), Instant>>,
}

/// The caches and settings the receiver server reads.
pub struct Served {
    /// The API client (Secrets per call, scan requests).
    pub client: Client,
    /// Events about calls.
    pub events: Events,
    /// Paths to Receivers.
    pub index: Index,
    /// The Receivers' cache.
    pub receivers: Store<Receiver>,
    /// The ImageRepositories' cache.
    pub repositories: Store<ImageRepository>,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
}

/// Starts the receiver server on `addr`; returns the bound address.
pub async fn serve(addr: SocketAddr, served: Served) -> anyhow::Result<SocketAddr> {
    let server = Arc::new(Server {
        client: served.client,
        events: served.events,
        index: served.index,
        receivers: served.receivers,
        repositories: served.repositories,
        no_cross_namespace_refs: served.no_cross_namespace_refs,
        coalescer: Coalescer::default(),
        last_events: Mutex::default(),
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
    tokio::spawn(tagpilot_runtime::http::serve(
        listener,
        router,
        tagpilot_runtime::http::Limits::default(),
    ));
    Ok(bound)
}

fn answer(code: StatusCode, text: impl Into<String>) -> (StatusCode, String) {
    let mut text = text.into();
    text.push('\n');
    (code, text)
}

async fn handle(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = format!("/hook/{id}");
    let Some(key) = server.index.get(&path) else {
        return answer(StatusCode::NOT_FOUND, "not found");
    };
    let (ns, name) = key.split_once('/').unwrap_or(("", &key));
    let Some(r) = server.receivers.get(&ObjectRef::new(name).within(ns)) else {
        // Deleted since it was indexed.
        server.index.remove(&key);
        return answer(StatusCode::NOT_FOUND, "not found");
    };
    if method != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "only POST");
    }
    let ready = r
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .is_some_and(conditions::is_ready);
    if r.spec.suspend == Some(true) || !ready {
        let why = if r.spec.suspend == Some(true) {
            "the Receiver is suspended"
        } else {
            "the Receiver is not ready"
        };
        tracing::info!(namespace = %ns, name = %name, "call refused: {why}");
        return answer(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    // The Secret as it is now: deleting it, or its token, closes the URL at once.
    let data = match tagpilot_runtime::secrets::secret_data(
        &server.client,
        ns,
        &r.spec.secret_ref.name,
    )
    .await
    {
        Ok(Some(data)) => data,
        Ok(None) => {
            return server
                .reject(
                    &r,
                    400,
                    format!("secret '{ns}/{}' not found", r.spec.secret_ref.name),
                )
                .await;
        }
        Err(e) => {
            tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot read the receiver's secret");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the Receiver's secret",
            );
        }
    };
    let secret = match ReceiverSecret::from_data(&data) {
        Ok(s) => s,
        Err(why) => {
            return server
                .reject(
                    &r,
                    400,
                    format!("secret '{ns}/{}': {why}", r.spec.secret_ref.name),
                )
                .await;
        }
    };
    if receiver::webhook_path(&secret.token, name, ns) != path {
        // The token changed: this URL is no longer the Receiver's.
        return answer(StatusCode::NOT_FOUND, "not found");
    }
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
        .collect();
    let events = r.spec.events.clone().unwrap_or_default();
    match receiver::verify(&r.spec.type_, &secret, &events, &pairs, &body) {
        Verdict::Reject(code, why) => server.reject(&r, code, why).await,
        Verdict::Ignore(why) => answer(StatusCode::OK, format!("ignored: {why}")),
        Verdict::Accept(note) => {
            let (requested, problems) = server.request_scans(&r).await;
            let mut message = format!("{note}: {requested} ImageRepository scan(s) requested");
            for p in &problems {
                message.push_str(&format!("; {p}"));
            }
            let failed = !problems.is_empty();
            server
                .event(
                    &r,
                    failed,
                    if failed {
                        "ReconciliationFailed"
                    } else {
                        "Succeeded"
                    },
                    &message,
                )
                .await;
            let code = if failed {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            answer(code, message)
        }
    }
}

impl Server {
    /// Refuses a call: an event (rate-limited), the status and the reason.
    async fn reject(&self, r: &Receiver, code: u16, why: String) -> (StatusCode, String) {
        self.event(
            r,
            true,
            "ValidationFailed",
            &format!("call rejected: {why}"),
        )
        .await;
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
        answer(status, why)
    }

    /// Writes an event about a call unless one of this reason was written for the Receiver within
    /// [`EVENT_EVERY`]; logs every call.
    async fn event(&self, r: &Receiver, warning: bool, reason: &'static str, message: &str) {
        let key = tagpilot_runtime::key(r);
        tracing::info!(receiver = %key, reason, "{message}");
        let now = Instant::now();
        {
            let mut last = self.last_events.lock().expect("event limiter lock");
            if last.len() > 10_000 {
                last.retain(|_, at| now.duration_since(*at) < EVENT_EVERY);
            }
            match last.get(&(key.clone(), reason)) {
                Some(at) if now.duration_since(*at) < EVENT_EVERY => return,
                _ => {
                    last.insert((key, reason), now);
                }
            }
        }
        self.events.publish(r, warning, reason, message).await;
    }

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

    /// The ImageRepositories a resource entry names, from the cache.
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
            let cached = self
                .repositories
                .get(&ObjectRef::new(&res.name).within(&ns))
                .is_some();
            // Outside this controller's watch (another shard's): asked of the API server.
            let exists = cached
                || Api::<ImageRepository>::namespaced(self.client.clone(), &ns)
                    .get_metadata_opt(&res.name)
                    .await
                    .map_err(|e| format!("cannot read ImageRepository '{ns}/{}': {e}", res.name))?
                    .is_some();
            if !exists {
                return Err(format!("ImageRepository '{ns}/{}' not found", res.name));
            }
            return Ok(vec![(ns, res.name.clone())]);
        }
        let Some(labels) = res.match_labels.as_ref().filter(|l| !l.is_empty()) else {
            return Err(format!(
                "ImageRepository '{ns}/*': a wildcard name needs matchLabels"
            ));
        };
        Ok(self
            .repositories
            .state()
            .iter()
            .filter(|i| i.namespace().as_deref() == Some(ns.as_str()))
            .filter(|i| {
                let have = i.labels();
                labels.iter().all(|(k, v)| have.get(k) == Some(v))
            })
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
