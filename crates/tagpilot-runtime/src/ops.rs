//! Operations: the flags every controller takes, the health and metrics endpoints, leader election on a
//! Lease, log setup, and the start and stop around the controllers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use crate::metrics::Metrics;

pub use crate::flags::CommonArgs;

/// Exits the process `timeout` after the first SIGTERM or SIGINT, in case a graceful stop hangs (an
/// unreachable API server holds reconciles and the Lease release in retries).
fn exit_after_signal(timeout: std::time::Duration) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!(timeout = ?timeout, "shutting down");
        tokio::time::sleep(timeout).await;
        tracing::warn!(timeout = ?timeout, "graceful shutdown did not finish in time; exiting");
        std::process::exit(0);
    });
}

/// The name this instance reports in events and holds the Lease as: `$POD_NAME`, else the hostname (a pod's
/// name, as Flux's `os.Hostname()`), else the controller's name.
pub fn instance(controller: &str) -> String {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| controller.to_string())
}

/// The notifier of `--events-addr`, if set.
pub fn notifier(
    args: &CommonArgs,
    controller: &str,
) -> anyhow::Result<Option<crate::notify::Notifier>> {
    if args.events_addr.is_empty() {
        return Ok(None);
    }
    crate::notify::Notifier::new(&args.events_addr, controller, &instance(controller)).map(Some)
}

/// A controller process that has set up logging, its endpoints and (when asked) leadership.
pub struct Started {
    /// The API client.
    pub client: kube::Client,
    /// `$RUNTIME_NAMESPACE`, else `flux-system`.
    pub runtime_namespace: String,
    ready: Arc<AtomicBool>,
    leadership: Option<Leadership>,
}

/// Sets up what comes before the controllers: logs, `/metrics` and the health endpoints, the API client, and
/// leadership on the Lease [`lease_name`] when `--enable-leader-election` is set.
pub async fn start(
    args: &CommonArgs,
    controller: &str,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Started> {
    init_logging(&args.log_encoding, &args.log_level)?;
    exit_after_signal(args.graceful_shutdown_timeout);
    if !args.events_addr.is_empty() {
        crate::notify::check_address(&args.events_addr)?;
    }
    let metrics_addr = parse_addr("metrics-addr", &args.metrics_addr)?;
    let health_addr = parse_addr("health-addr", &args.health_addr)?;
    let runtime_namespace =
        std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".into());
    let config = kube::Config::infer()
        .await
        .context("connect to the Kubernetes API (in-cluster or $KUBECONFIG)")?;
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let client = kube::client::ClientBuilder::try_from(config)
        .context("set up the Kubernetes API client")?
        .with_layer(&metrics.count_requests(&host))
        .build();
    let ready = Arc::new(AtomicBool::new(false));
    let (ma, ha) = serve(metrics_addr, health_addr, metrics.clone(), ready.clone()).await?;
    tracing::info!(metrics = %ma, health = %ha, "serving metrics and health endpoints");
    let leadership = if args.enable_leader_election {
        let ns = args
            .leader_election_namespace
            .clone()
            .unwrap_or(runtime_namespace.clone());
        let lease = lease_name(controller, &args.watch_label_selector);
        metrics.leading(&lease, false);
        let held = Some(
            lead(
                client.clone(),
                &ns,
                &lease,
                LeaseTiming {
                    lease_duration: args.leader_election_lease_duration,
                    renew_deadline: args.leader_election_renew_deadline,
                    retry_period: args.leader_election_retry_period,
                    release_on_cancel: args.leader_election_release_on_cancel,
                },
            )
            .await?,
        );
        metrics.leading(&lease, true);
        held
    } else {
        None
    };
    Ok(Started {
        client,
        runtime_namespace,
        ready,
        leadership,
    })
}

impl Started {
    /// Reports ready (`/readyz`): the controllers are running.
    pub fn running(&self, watch_all_namespaces: bool) {
        self.ready.store(true, Ordering::Relaxed);
        tracing::info!(watch_all_namespaces, "starting controllers");
    }

    /// After the controllers stopped: gives up leadership.
    pub async fn stop(self) {
        if let Some(l) = self.leadership {
            l.release().await;
        }
        tracing::info!("controllers stopped; shutting down");
    }
}

/// Parses Flux's address flags: `:8080` means every interface.
pub fn parse_addr(flag: &str, value: &str) -> anyhow::Result<SocketAddr> {
    let full = if value.starts_with(':') {
        format!("0.0.0.0{value}")
    } else {
        value.to_string()
    };
    full.parse()
        .with_context(|| format!("--{flag} {value:?}: expected host:port or :port"))
}

/// Serves `/metrics` and, on the same or another address, `/healthz` and `/readyz`. Returns the bound
/// addresses (port 0 picks a free port).
pub async fn serve(
    metrics_addr: SocketAddr,
    health_addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let metrics_router = Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
            }
        }),
    );
    let health_router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = ready.load(Ordering::Relaxed);
                async move {
                    if r {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        );
    let m = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("bind the metrics address {metrics_addr}"))?;
    let h = tokio::net::TcpListener::bind(health_addr)
        .await
        .with_context(|| format!("bind the health address {health_addr}"))?;
    let (ma, ha) = (m.local_addr()?, h.local_addr()?);
    let limits = crate::http::Limits::default();
    tokio::spawn(crate::http::serve(m, metrics_router, limits));
    tokio::spawn(crate::http::serve(h, health_router, limits));
    Ok((ma, ha))
}

/// Leadership held on the Lease; lost leadership ends the process (another replica takes over).
pub struct Leadership {
    release_on_cancel: bool,
    renewing: tokio::task::JoinHandle<()>,
    elector: std::sync::Arc<tokio::sync::Mutex<crate::lease::Elector>>,
}

/// The Lease a controller elects its leader on, named as Flux names it: `<controller>-leader-election`, and
/// with a `--watch-label-selector` `-` and the first 8 hex digits of the selector's SHA-256, so that shards
/// elect their leaders apart (fluxcd/pkg `leaderelection.GenerateID`).
pub fn lease_name(controller: &str, watch_label_selector: &str) -> String {
    let base = format!("{controller}-leader-election");
    if watch_label_selector.is_empty() {
        return base;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(watch_label_selector.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{base}-{hex}")
}

pub use crate::lease::LeaseTiming;

/// Waits until this process holds the Lease `lease_name` in `namespace` (as `<hostname>_<uuid>`, as
/// client-go names candidates), then keeps it renewed in the background.
pub async fn lead(
    client: kube::Client,
    namespace: &str,
    lease_name: &str,
    timing: LeaseTiming,
) -> anyhow::Result<Leadership> {
    let r: u128 = rand::random();
    let identity = format!("{}_{:032x}", instance("tagpilot"), r);
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client, namespace);
    let mut elector = crate::lease::Elector::new(api, lease_name, &identity, timing);
    tracing::info!(namespace, lease = %lease_name, identity = %identity, "waiting for leadership");
    elector.acquire().await;
    tracing::info!(namespace, lease = %lease_name, "acquired leadership");
    let elector = std::sync::Arc::new(tokio::sync::Mutex::new(elector));
    let held = elector.clone();
    let renewing = tokio::spawn(async move {
        held.lock().await.keep().await;
        tracing::error!("leader election lost");
        std::process::exit(1);
    });
    Ok(Leadership {
        release_on_cancel: timing.release_on_cancel,
        renewing,
        elector,
    })
}

impl Leadership {
    /// Gives the Lease up at shutdown so that a standby replica takes over at its next try.
    pub async fn release(self) {
        self.renewing.abort();
        let _ = self.renewing.await;
        if !self.release_on_cancel {
            tracing::info!(
                "leaving the Lease to expire (--leader-election-release-on-cancel=false)"
            );
            return;
        }
        let mut elector = self.elector.lock().await;
        match tokio::time::timeout(std::time::Duration::from_secs(5), elector.release()).await {
            Ok(Ok(())) => tracing::info!("released leadership"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the Lease"),
            Err(_) => tracing::warn!("cannot release the Lease in time"),
        }
    }
}

/// Log output: JSON lines (Flux's default) or human-readable, at a level.
pub fn init_logging(encoding: &str, level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},kube_runtime::controller=warn,hyper=warn,reqwest=warn"
    ))
    .with_context(|| format!("--log-level {level:?}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match encoding {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        "console" => builder.init(),
        other => anyhow::bail!("--log-encoding {other:?}: expected json or console"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_as_flux_generates_them() {
        assert_eq!(
            lease_name("image-reflector-controller", ""),
            "image-reflector-controller-leader-election"
        );
        assert_eq!(
            lease_name(
                "image-reflector-controller",
                "sharding.fluxcd.io/key=shard1"
            ),
            "image-reflector-controller-leader-election-73fdc1be"
        );
        // fluxcd/pkg's own vector: GenerateID("foo", "bar") = "foo-fcde2b2e".
        assert!(lease_name("x", "bar").ends_with("-fcde2b2e"));
    }

    #[test]
    fn flux_style_addresses() {
        assert_eq!(
            parse_addr("m", ":8080").unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            parse_addr("m", "127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        let e = parse_addr("metrics-addr", "nope").unwrap_err().to_string();
        assert!(e.contains("--metrics-addr \"nope\""), "{e}");
    }
}
