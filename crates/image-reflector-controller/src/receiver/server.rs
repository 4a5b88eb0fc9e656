//! The webhook server: a call is verified against its Receiver, coalesced per repository, and answered as
//! notification-controller answers it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use serde_json::json;
use tagpilot_core::api::conditions;
use tagpilot_core::api::{ImageRepository, REQUESTED_AT_ANNOTATION, Receiver, ReceiverResource};
use tagpilot_core::receiver::{self, MAX_BODY, ReceiverSecret, Verdict};
use tagpilot_runtime::Events;

use super::{COALESCE, EVENT_EVERY, Index};

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
