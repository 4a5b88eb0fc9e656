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

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use kube::Api;
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::runtime::{Predicate, predicates};
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageUpdateAutomation};
use tagpilot_runtime::ops::{self, CommonArgs};
use tagpilot_runtime::retry_after_error;
use tagpilot_runtime::watch::{cached, changes};

use crate::context::{Context, MANAGER, Options};
use crate::metrics::Metrics;

/// Reconciles ImageUpdateAutomation objects (image.toolkit.fluxcd.io).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Where the temporary clones go (default: the system's temporary directory).
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let common = &args.common;
    let metrics = Arc::new(Metrics::new());
    let started = ops::start(common, MANAGER, metrics.base.clone()).await?;
    let client = started.client.clone();
    let work_dir = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("--work-dir {}", work_dir.display()))?;
    let ctx = Arc::new(Context::new(
        client.clone(),
        metrics,
        std::env::var("POD_NAME").unwrap_or_else(|_| MANAGER.into()),
        Options {
            no_cross_namespace_refs: common.no_cross_namespace_refs,
            work_dir,
        },
    ));

    let ns = &started.runtime_namespace;
    let automations: Api<ImageUpdateAutomation> = common.api(&client, ns);
    let policies: Api<ImagePolicy> = common.api(&client, ns);
    let sources: Api<GitRepository> = common.api(&client, ns);
    let (store, events) = cached(automations, common.watcher_config());
    // A run follows a spec change or a reconcile request, not the controller's own status writes.
    let events = events.predicate_filter(
        predicates::generation.combine(predicates::annotations),
        Default::default(),
    );
    // Policies and sources are watched whatever their labels: the automations' shard decides.
    let policy_changes = changes(policies, watcher::Config::default());
    let source_changes = changes(sources, watcher::Config::default());
    let controller = Controller::for_stream(events, store.clone())
        .with_config(common.controller_config())
        .watches_stream(policy_changes, triggers::on_policy_change(store.clone()))
        .watches_stream(source_changes, triggers::on_source_change(store))
        .shutdown_on_signal()
        .run(reconcile::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    started.running(common.watch_all_namespaces);
    controller.await;
    started.stop().await;
    Ok(())
}

/// Retries an automation whose reconcile returned an error, with its own backoff; others go on.
fn error_policy(
    obj: Arc<ImageUpdateAutomation>,
    err: &error::Error,
    ctx: Arc<Context>,
) -> controller::Action {
    retry_after_error(obj.as_ref(), err, &ctx.backoff)
}
