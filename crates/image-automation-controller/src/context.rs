//! What every reconcile shares: the API client, metrics, events, options and the retry backoff.

use std::path::PathBuf;
use std::sync::Arc;

use kube::Client;
use tagpilot_core::automation::inputs::AutomationSettings;
use tagpilot_runtime::{Backoff, Events, Finisher, KubeLookup};

use crate::metrics::Metrics;

/// The controller's name: field manager of status writes, event reporter, Lease prefix.
pub const MANAGER: &str = "image-automation-controller";

/// Settings from the command line that reconciles read.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--no-cross-namespace-refs`: the GitRepository must be in the automation's namespace.
    pub no_cross_namespace_refs: bool,
    /// Where temporary clones go.
    pub work_dir: PathBuf,
    /// Feature gate GitForcePushBranch: a push branch other than the checkout branch is force-pushed.
    pub force_push_branch: bool,
    /// `--clone-cache-max-mb`, in bytes.
    pub clone_cache_bytes: u64,
}

/// Shared state of the reconciler.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Event publisher.
    pub events: Events,
    /// Command-line settings.
    pub options: Options,
    /// Retry delays after failures.
    pub backoff: Backoff,
    /// The objects the core's decisions read.
    pub lookup: KubeLookup,
}

impl Context {
    /// A context.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        instance: String,
        options: Options,
    ) -> Context {
        Context {
            events: Events::new(client.clone(), MANAGER, instance),
            lookup: KubeLookup::new(client.clone()),
            client,
            metrics,
            options,
            backoff: Backoff::default(),
        }
    }

    /// How reconciles end.
    pub fn finisher(&self) -> Finisher<'_> {
        Finisher {
            client: &self.client,
            manager: MANAGER,
            events: &self.events,
            backoff: &self.backoff,
        }
    }

    /// The core's automation settings.
    pub fn settings(&self) -> AutomationSettings {
        AutomationSettings {
            no_cross_namespace_refs: self.options.no_cross_namespace_refs,
            force_push_branch: self.options.force_push_branch,
            clone_cache_bytes: self.options.clone_cache_bytes,
        }
    }
}
