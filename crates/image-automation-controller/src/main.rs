//! `image-automation-controller`: reconciles Flux's ImageUpdateAutomation (clone the GitRepository, apply the
//! namespace's ImagePolicies through the `$imagepolicy` setters, commit and push), as Flux's controller of the
//! same name does, with the engines of `tagpilot-core`. Flags follow Flux's.

mod context;
mod error;
mod metrics;
mod reconcile;
mod source;
mod triggers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::runtime::{Predicate, predicates};
use kube::{Api, Client};
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageUpdateAutomation};
use tagpilot_runtime::ops;
use tagpilot_runtime::watch::{cached, changes};

use crate::context::{Context, MANAGER, Options};
use crate::metrics::Metrics;

/// Reconciles ImageUpdateAutomation objects (image.toolkit.fluxcd.io).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Automations run at the same time.
    #[arg(long, default_value_t = 4)]
    concurrent: u16,
    /// Watch every namespace; with `false`, only the namespace in $RUNTIME_NAMESPACE (default flux-system).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    watch_all_namespaces: bool,
    /// Only reconcile objects matching this label selector (sharding: `sharding.fluxcd.io/key=shard1`).
    #[arg(long, default_value = "")]
    watch_label_selector: String,
    /// Run only while holding the Lease `image-automation-controller-leader-election`.
    #[arg(long)]
    enable_leader_election: bool,
    /// Namespace of the leader-election Lease (default: $RUNTIME_NAMESPACE, else flux-system).
    #[arg(long)]
    leader_election_namespace: Option<String>,
    /// Refuse automations whose sourceRef names a GitRepository in another namespace.
    #[arg(long)]
    no_cross_namespace_refs: bool,
    /// Where the temporary clones go (default: the system's temporary directory).
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ops::init_logging(&args.log_encoding, &args.log_level)?;
    let metrics_addr = ops::parse_addr("metrics-addr", &args.metrics_addr)?;
    let health_addr = ops::parse_addr("health-addr", &args.health_addr)?;
    let runtime_ns = std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".into());
    let work_dir = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("--work-dir {}", work_dir.display()))?;

    let client = Client::try_default()
        .await
        .context("connect to the Kubernetes API (in-cluster or $KUBECONFIG)")?;
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

    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics,
        std::env::var("POD_NAME").unwrap_or_else(|_| MANAGER.into()),
        Options {
            no_cross_namespace_refs: args.no_cross_namespace_refs,
            work_dir,
        },
    ));

    let api = |c: &Client| -> (
        Api<ImageUpdateAutomation>,
        Api<ImagePolicy>,
        Api<GitRepository>,
    ) {
        if args.watch_all_namespaces {
            (
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
            )
        } else {
            (
                Api::namespaced(c.clone(), &runtime_ns),
                Api::namespaced(c.clone(), &runtime_ns),
                Api::namespaced(c.clone(), &runtime_ns),
            )
        }
    };
    let (automations, policies, sources) = api(&client);
    let mut wc = watcher::Config::default();
    if !args.watch_label_selector.is_empty() {
        wc = wc.labels(&args.watch_label_selector);
    }
    let (store, events) = cached(automations, wc);
    // A run follows a spec change or a reconcile request, not the controller's own status writes.
    let events = events.predicate_filter(
        predicates::generation.combine(predicates::annotations),
        Default::default(),
    );
    // Policies and sources are watched whatever their labels: the automations' shard decides.
    let policy_changes = changes(policies, watcher::Config::default());
    let source_changes = changes(sources, watcher::Config::default());
    let controller = Controller::for_stream(events, store.clone())
        .with_config(controller::Config::default().concurrency(args.concurrent))
        .watches_stream(policy_changes, triggers::on_policy_change(store.clone()))
        .watches_stream(source_changes, triggers::on_source_change(store))
        .shutdown_on_signal()
        .run(reconcile::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        watch_all_namespaces = args.watch_all_namespaces,
        "starting controllers"
    );
    controller.await;
    if let Some(l) = leadership {
        l.release().await;
    }
    tracing::info!("controllers stopped; shutting down");
    Ok(())
}

/// Retries an automation whose reconcile returned an error, with its own backoff; others go on.
fn error_policy(
    obj: Arc<ImageUpdateAutomation>,
    err: &error::Error,
    ctx: Arc<Context>,
) -> controller::Action {
    use kube::ResourceExt;
    let delay = ctx.backoff.next(&tagpilot_runtime::key(obj.as_ref()));
    tracing::warn!(
        controller = "imageupdateautomation",
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        error = %err,
        retry_in_s = delay.as_secs(),
        "reconcile failed"
    );
    controller::Action::requeue(delay)
}
