//! `image-reflector-controller`: reconciles Flux's ImageRepository (scan a registry's tags on an interval) and
//! ImagePolicy (choose the latest tag), as Flux's controller of the same name does, with the engines of
//! `tagpilot-core`. Flags follow Flux's.

mod access;
mod context;
mod error;
mod metrics;
mod policy;
mod repository;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use kube::runtime::{Controller, controller, watcher};
use kube::{Api, Client};
use tagpilot_core::api::{ImagePolicy, ImageRepository};
use tagpilot_core::registry::RegistryClient;
use tagpilot_core::tagstore::TagStore;

use crate::context::{Context, MANAGER, Options};
use crate::metrics::Metrics;
use tagpilot_runtime::key;
use tagpilot_runtime::ops;
use tagpilot_runtime::watch::{cached, changes};

/// Reconciles ImageRepository and ImagePolicy objects (image.toolkit.fluxcd.io).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Objects of each kind reconciled at the same time.
    #[arg(long, default_value_t = 4)]
    concurrent: u16,
    /// Watch every namespace; with `false`, only the namespace in $RUNTIME_NAMESPACE (default flux-system).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    watch_all_namespaces: bool,
    /// Only reconcile objects matching this label selector (sharding: `sharding.fluxcd.io/key=shard1`).
    #[arg(long, default_value = "")]
    watch_label_selector: String,
    /// Run only while holding the Lease `image-reflector-controller-leader-election`.
    #[arg(long)]
    enable_leader_election: bool,
    /// Namespace of the leader-election Lease (default: $RUNTIME_NAMESPACE, else flux-system).
    #[arg(long)]
    leader_election_namespace: Option<String>,
    /// Where the tags of each ImageRepository are kept.
    #[arg(long, default_value = "/data")]
    storage_path: std::path::PathBuf,
    /// Refuse ImagePolicies that refer to an ImageRepository in another namespace.
    #[arg(long)]
    no_cross_namespace_refs: bool,
    /// Address of the Prometheus endpoint (`/metrics`).
    #[arg(long, default_value = ":8080")]
    metrics_addr: String,
    /// Address of the health endpoints (`/healthz`, `/readyz`).
    #[arg(long, default_value = ":9440")]
    health_addr: String,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Log encoding: json or console.
    #[arg(long, default_value = "json")]
    log_encoding: String,
    /// Requests in flight per registry host, across all scans.
    #[arg(long, default_value_t = 8)]
    registry_concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ops::init_logging(&args.log_encoding, &args.log_level)?;
    let metrics_addr = ops::parse_addr("metrics-addr", &args.metrics_addr)?;
    let health_addr = ops::parse_addr("health-addr", &args.health_addr)?;
    let runtime_ns = std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".into());

    let client = Client::try_default()
        .await
        .context("connect to the Kubernetes API (in-cluster or $KUBECONFIG)")?;
    let store = TagStore::open(&args.storage_path)
        .with_context(|| format!("--storage-path {}", args.storage_path.display()))?;
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let (ma, ha) = ops::serve(
        metrics_addr,
        health_addr,
        metrics.base.clone(),
        ready.clone(),
    )
    .await?;
    tracing::info!(metrics = %ma, health = %ha, "serving metrics and health endpoints");

    let leadership = if args.enable_leader_election {
        let ns = args
            .leader_election_namespace
            .clone()
            .unwrap_or(runtime_ns.clone());
        Some(ops::lead(client.clone(), &ns, MANAGER).await?)
    } else {
        None
    };

    let registry = RegistryClient::new(tagpilot_core::registry::ClientOptions {
        per_registry_concurrency: args.registry_concurrency,
        ..Default::default()
    });
    let ctx = Arc::new(Context::new(
        client.clone(),
        registry,
        store,
        metrics,
        std::env::var("POD_NAME").unwrap_or_else(|_| "image-reflector-controller".into()),
        Options {
            no_cross_namespace_refs: args.no_cross_namespace_refs,
        },
    ));

    let (repos, policies): (Api<ImageRepository>, Api<ImagePolicy>) = if args.watch_all_namespaces {
        (Api::all(client.clone()), Api::all(client.clone()))
    } else {
        (
            Api::namespaced(client.clone(), &runtime_ns),
            Api::namespaced(client.clone(), &runtime_ns),
        )
    };
    let mut wc = watcher::Config::default();
    if !args.watch_label_selector.is_empty() {
        wc = wc.labels(&args.watch_label_selector);
    }
    let config = controller::Config::default().concurrency(args.concurrent);

    let (repo_store, repo_events) = cached(repos.clone(), wc.clone());
    let repo_controller = Controller::for_stream(repo_events, repo_store)
        .with_config(config.clone())
        .shutdown_on_signal()
        .run(repository::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let (policy_store, policy_events) = cached(policies, wc.clone());
    let mapper = policy::policies_to_requeue(policy_store.clone());
    let repo_changes = changes(repos, wc);
    let policy_controller = Controller::for_stream(policy_events, policy_store)
        .with_config(config)
        .watches_stream(repo_changes, mapper)
        .shutdown_on_signal()
        .run(policy::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        watch_all_namespaces = args.watch_all_namespaces,
        storage = %args.storage_path.display(),
        "starting controllers"
    );
    tokio::join!(repo_controller, policy_controller);
    if let Some(l) = leadership {
        l.release().await;
    }
    tracing::info!("controllers stopped; shutting down");
    Ok(())
}

/// Retries an object whose reconcile returned an error, with its own backoff; other objects go on.
fn error_policy<K>(obj: Arc<K>, err: &error::Error, ctx: Arc<Context>) -> controller::Action
where
    K: kube::Resource,
{
    let delay = ctx.backoff.next(&key(obj.as_ref()));
    tracing::warn!(
        namespace = obj.meta().namespace.as_deref().unwrap_or_default(),
        name = obj.meta().name.as_deref().unwrap_or_default(),
        error = %err,
        retry_in_s = delay.as_secs(),
        "reconcile failed"
    );
    controller::Action::requeue(delay)
}
