//! `image-automation-controller`: reconciles Flux's ImageUpdateAutomation (clone the GitRepository, apply the
//! namespace's ImagePolicies through the `$imagepolicy` setters, commit and push), as Flux's controller of the
//! same name does, with the engines of `tagpilot-core`. Flags follow Flux's.

mod context;
mod error;
mod metrics;
mod reconcile;
mod triggers;

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use kube::Api;
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageUpdateAutomation};
use tagpilot_runtime::flags::{self, Gate};
use tagpilot_runtime::metrics::measured;
use tagpilot_runtime::ops::{self, CommonArgs};
use tagpilot_runtime::retry_after_error;
use tagpilot_runtime::watch::{cached, changes, own_change};

use crate::context::{Context, MANAGER, Options};
use crate::metrics::Metrics;

/// Reconciles ImageUpdateAutomation objects (image.toolkit.fluxcd.io).
#[derive(Parser, Debug)]
/// Repeated flags: the last wins (pflag), `--feature-gates` merge.
#[command(version, about, args_override_self = true)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Where the temporary clones go (tagpilot's flag; default: the system's temporary directory).
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
    /// Keep one clone per source (URL, credentials, branch) under --work-dir between runs, fetched and reset
    /// at each run instead of cloned again, least recently used ones removed beyond this many MiB (tagpilot's
    /// flag; 0: clone afresh every run, as Flux).
    #[arg(long, default_value_t = 1024)]
    clone_cache_max_mb: u64,
    /// SSH key-exchange algorithms, in order of preference. Accepted as Flux's flag; libssh2 (under libgit2)
    /// negotiates from its own list, which a warning at start says.
    #[arg(long, value_delimiter = ',')]
    ssh_kex_algos: Vec<String>,
    /// SSH host-key algorithms, in order of preference; as --ssh-kex-algos.
    #[arg(long, value_delimiter = ',')]
    ssh_hostkey_algos: Vec<String>,
}

/// Flux's gate: force-push a push branch other than the checkout branch (on by default).
const GIT_FORCE_PUSH_BRANCH: Gate = Gate {
    name: "GitForcePushBranch",
    default: true,
    effect: "force-pushes a push branch that differs from the checkout branch",
};

/// The feature gates Flux's image-automation-controller knows, with what each does here.
const GATES: &[Gate] = &[
    GIT_FORCE_PUSH_BRANCH,
    Gate {
        name: "GitShallowClone",
        default: true,
        effect: "none: clones are always shallow (depth 1) where the transport allows",
    },
    Gate {
        name: "GitAllBranchReferences",
        default: true,
        effect: "none: the push branch is found from the refs the server advertises",
    },
    Gate {
        name: "GitSparseCheckout",
        default: false,
        effect: "none: the whole tree is checked out",
    },
    flags::CACHE_SECRETS_AND_CONFIG_MAPS,
    flags::OBJECT_LEVEL_WORKLOAD_IDENTITY,
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let common = &args.common;
    let gates = common.feature_gates(GATES).map_err(anyhow::Error::msg)?;
    let metrics = Arc::new(Metrics::new());
    let started = ops::start(common, MANAGER, metrics.base.clone()).await?;
    if !args.ssh_kex_algos.is_empty() || !args.ssh_hostkey_algos.is_empty() {
        tracing::warn!(kex = ?args.ssh_kex_algos, hostkey = ?args.ssh_hostkey_algos,
            "--ssh-kex-algos and --ssh-hostkey-algos are accepted; libssh2 negotiates from its own algorithms");
    }
    let client = started.client.clone();
    let work_dir = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("--work-dir {}", work_dir.display()))?;
    let mut ctx = Context::new(
        client.clone(),
        metrics,
        ops::instance(MANAGER),
        Options {
            no_cross_namespace_refs: common.no_cross_namespace_refs,
            work_dir,
            force_push_branch: gates.enabled(&GIT_FORCE_PUSH_BRANCH),
            clone_cache_bytes: args.clone_cache_max_mb.saturating_mul(1 << 20),
        },
    );
    ctx.backoff = common.backoff();
    ctx.events.notify_to(ops::notifier(common, MANAGER)?);
    let ctx = Arc::new(ctx);

    ctx.metrics
        .base
        .declare_controller("imageupdateautomation", common.concurrent);
    let ns = &started.runtime_namespace;
    let automations: Api<ImageUpdateAutomation> = common.api(&client, ns);
    let policies: Api<ImagePolicy> = common.api(&client, ns);
    let sources: Api<GitRepository> = common.api(&client, ns);
    let (store, events) = cached(automations, common.watcher_config());
    // A run follows a spec change or a reconcile request, not the controller's own status writes.
    let events = events.predicate_filter(own_change, Default::default());
    // Policies and sources are watched whatever their labels: the automations' shard decides.
    let policy_changes = changes(policies, watcher::Config::default());
    let source_changes = changes(sources, watcher::Config::default());
    let controller =
        Controller::for_stream(events, store.clone())
            .with_config(common.controller_config())
            .watches_stream(policy_changes, triggers::on_policy_change(store.clone()))
            .watches_stream(source_changes, triggers::on_source_change(store))
            .shutdown_on_signal()
            .run(
                |o, c| {
                    let m = c.metrics.base.clone();
                    async move {
                        measured(&m, "imageupdateautomation", reconcile::reconcile(o, c)).await
                    }
                },
                error_policy,
                ctx.clone(),
            )
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
