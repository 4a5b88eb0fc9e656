//! `image-reflector-controller`: reconciles Flux's ImageRepository (scan a registry's tags on an interval) and
//! ImagePolicy (choose the latest tag), as Flux's controller of the same name does, with the engines of
//! `tagpilot-core`. Flags follow Flux's.

mod context;
mod error;
mod metrics;
mod policy;
mod receiver;
mod repository;

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use futures::{FutureExt, StreamExt};
use kube::Api;
use kube::runtime::{Controller, WatchStreamExt, controller};
use tagpilot_core::api::{ImagePolicy, ImageRepository, Receiver};
use tagpilot_core::registry::RegistryClient;
use tagpilot_core::tagstore::TagStore;

use crate::context::{Context, MANAGER, Options};
use crate::metrics::Metrics;
use tagpilot_runtime::flags::{self, Gate};
use tagpilot_runtime::metrics::measured;
use tagpilot_runtime::ops::{self, CommonArgs};
use tagpilot_runtime::retry_after_error;
use tagpilot_runtime::watch::{cached, own_change};

/// Reconciles ImageRepository and ImagePolicy objects (image.toolkit.fluxcd.io).
#[derive(Parser, Debug)]
/// Repeated flags: the last wins (pflag), `--feature-gates` merge.
#[command(version, about, args_override_self = true)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Where the tags of each ImageRepository are kept.
    #[arg(long, default_value = "/data")]
    storage_path: std::path::PathBuf,
    /// Requests in flight per registry host, across all scans.
    #[arg(long, default_value_t = 8)]
    registry_concurrency: usize,
    /// Log in to ECR registries with the pod's AWS identity when an ImageRepository names no provider (as
    /// Flux's flag of the same name).
    #[arg(long)]
    aws_autologin_for_ecr: bool,
    /// Log in to GCR and Artifact Registry with the pod's Google identity when no provider is named.
    #[arg(long)]
    gcp_autologin_for_gcr: bool,
    /// Log in to ACR with the pod's Azure identity when no provider is named.
    #[arg(long)]
    azure_autologin_for_acr: bool,
    /// The most tags one ImageRepository may hold (tagpilot's flag); a repository with more is Stalled with a
    /// message giving the limit, and nothing of it is stored.
    #[arg(long, default_value_t = tagpilot_core::registry::DEFAULT_MAX_TAGS)]
    max_tags_per_repository: usize,
    /// Serve Flux's webhook Receivers on this address (`:9292`); off when empty (tagpilot's flag).
    #[arg(long, default_value = "")]
    receiver_addr: String,
    /// How soon an ImagePolicy looks again while its ImageRepository has no scan result yet (a scan also
    /// triggers it at once).
    #[arg(long, default_value = "30s", value_parser = flags::duration)]
    requeue_dependency: std::time::Duration,
    /// Badger's value-log file size in Flux. Accepted; no effect (tagpilot's tag store is not Badger).
    #[arg(long, default_value_t = 268_435_456)]
    storage_value_log_file_size: i64,
    /// The size above which Flux's FluxStorage compresses. Accepted; no effect (tagpilot's store format is
    /// its own).
    #[arg(long, default_value_t = 65_536)]
    storage_compression_threshold: i64,
    /// Badger's garbage-collection interval in minutes in Flux. Accepted; no effect (the tag store rewrites
    /// whole files and has no garbage to collect).
    #[arg(long, default_value_t = 10)]
    gc_interval: u16,
}

/// The feature gates Flux's image-reflector-controller knows, with what each does here.
const GATES: &[Gate] = &[
    Gate {
        name: "FluxStorage",
        default: false,
        effect: "none: tagpilot's tag store serves either way",
    },
    flags::CACHE_SECRETS_AND_CONFIG_MAPS,
    flags::OBJECT_LEVEL_WORKLOAD_IDENTITY,
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let common = &args.common;
    common.feature_gates(GATES).map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(Metrics::new());
    let started = ops::start(common, MANAGER, metrics.base.clone()).await?;
    let client = started.client.clone();
    let store = TagStore::open(&args.storage_path)
        .with_context(|| format!("--storage-path {}", args.storage_path.display()))?;
    let registry = RegistryClient::new(tagpilot_core::registry::ClientOptions {
        per_registry_concurrency: args.registry_concurrency,
        ..Default::default()
    });
    let receivers = (!args.receiver_addr.is_empty()).then(receiver::Index::default);
    let mut ctx = Context::new(
        client.clone(),
        registry,
        store,
        metrics,
        ops::instance(MANAGER),
        Options {
            no_cross_namespace_refs: common.no_cross_namespace_refs,
            max_tags: args.max_tags_per_repository,
            default_service_account: Some(common.default_service_account.clone())
                .filter(|s| !s.is_empty()),
            requeue_dependency: args.requeue_dependency,
            token_cache: (common.token_cache_max_size, common.token_cache_max_duration),
            autologin: context::Autologin {
                aws: args.aws_autologin_for_ecr,
                gcp: args.gcp_autologin_for_gcr,
                azure: args.azure_autologin_for_acr,
            },
        },
        receivers.clone(),
    );
    ctx.backoff = common.backoff();
    ctx.events.notify_to(ops::notifier(common, MANAGER)?);
    let ctx = Arc::new(ctx);

    for c in ["imagerepository", "imagepolicy"] {
        ctx.metrics.base.declare_controller(c, common.concurrent);
    }
    if receivers.is_some() {
        ctx.metrics
            .base
            .declare_controller("receiver", common.concurrent);
    }
    let repos: Api<ImageRepository> = common.api(&client, &started.runtime_namespace);
    let policies: Api<ImagePolicy> = common.api(&client, &started.runtime_namespace);
    let wc = common.watcher_config();
    let config = common.controller_config();

    let (repo_store, repo_events) = cached(repos.clone(), wc.clone());
    // A reconcile's own status write does not wake its object again.
    let repo_events = repo_events.predicate_filter(own_change, Default::default());
    let repo_store_for_receivers = repo_store.clone();
    let repo_controller = Controller::for_stream(repo_events, repo_store)
        .with_config(config.clone())
        .shutdown_on_signal()
        .run(
            |o, c| {
                let m = c.metrics.base.clone();
                async move { measured(&m, "imagerepository", repository::reconcile(o, c)).await }
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let (policy_store, policy_events) = cached(policies, wc.clone());
    let policy_events = policy_events.predicate_filter(own_change, Default::default());
    let mapper = policy::policies_to_requeue(policy_store.clone());
    // The policies' reads of ImageRepositories come from the cache of the watch that wakes them.
    let (repo_cache, repo_changes) = cached(repos, wc);
    ctx.lookup.cache_repositories(repo_cache);
    let policy_controller = Controller::for_stream(policy_events, policy_store)
        .with_config(config)
        .watches_stream(repo_changes, mapper)
        .shutdown_on_signal()
        .run(
            |o, c| {
                let m = c.metrics.base.clone();
                async move { measured(&m, "imagepolicy", policy::reconcile(o, c)).await }
            },
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| async {});
    let receiver_controller = match &receivers {
        Some(index) => {
            let addr = ops::parse_addr("receiver-addr", &args.receiver_addr)?;
            let api: Api<Receiver> = common.api(&client, &started.runtime_namespace);
            let (store, events) = cached(api, common.watcher_config());
            let events = events.predicate_filter(own_change, Default::default());
            let bound = receiver::serve(
                addr,
                receiver::Served {
                    client: client.clone(),
                    events: ctx.events.clone(),
                    index: index.clone(),
                    receivers: store.clone(),
                    repositories: repo_store_for_receivers.clone(),
                    no_cross_namespace_refs: common.no_cross_namespace_refs,
                },
            )
            .await?;
            tracing::info!(receiver = %bound, "serving webhook receivers");
            Controller::for_stream(events, store)
                .with_config(common.controller_config())
                .shutdown_on_signal()
                .run(
                    |o, c| {
                        let m = c.metrics.base.clone();
                        async move { measured(&m, "receiver", receiver::reconcile(o, c)).await }
                    },
                    error_policy,
                    ctx.clone(),
                )
                .for_each(|_| async {})
                .boxed()
        }
        None => futures::future::ready(()).boxed(),
    };
    tracing::info!(storage = %args.storage_path.display(), "tag store opened");
    started.running(common.watch_all_namespaces);
    tokio::join!(repo_controller, policy_controller, receiver_controller);
    started.stop().await;
    Ok(())
}

/// Retries an object whose reconcile returned an error, with its own backoff; other objects go on.
fn error_policy<K: kube::Resource>(
    obj: Arc<K>,
    err: &error::Error,
    ctx: Arc<Context>,
) -> controller::Action {
    retry_after_error(obj.as_ref(), err, &ctx.backoff)
}
