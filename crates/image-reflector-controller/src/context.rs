//! What every reconcile shares: the API client, the registry client, the tag store, metrics, events,
//! options, and the per-object retry backoff.

use std::sync::Arc;

use kube::Client;
use tagpilot_core::cloud::Env;
use tagpilot_core::registry::RegistryClient;
use tagpilot_core::registry::access::AccessSettings;
use tagpilot_core::tagstore::TagStore;
use tagpilot_runtime::{Backoff, Events, Finisher, KubeLookup};

use crate::metrics::Metrics;

/// The controller's name: field manager of status writes, event reporter, Lease prefix.
pub const MANAGER: &str = "image-reflector-controller";

/// Settings from the command line that reconciles read.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--no-cross-namespace-refs`: ImagePolicies may only refer to repositories in their namespace.
    pub no_cross_namespace_refs: bool,
    /// `--aws-autologin-for-ecr`, `--gcp-autologin-for-gcr`, `--azure-autologin-for-acr`.
    pub autologin: Autologin,
    /// `--max-tags-per-repository`.
    pub max_tags: usize,
    /// `--default-service-account`: whose imagePullSecrets serve ImageRepositories without
    /// `serviceAccountName`.
    pub default_service_account: Option<String>,
    /// `--requeue-dependency`: how soon a policy looks again while its repository has no scan result.
    pub requeue_dependency: std::time::Duration,
    /// `--token-cache-max-size`, `--token-cache-max-duration`: the cloud login cache's bounds.
    pub token_cache: (usize, std::time::Duration),
}

pub use tagpilot_core::registry::access::Autologin;

/// Shared state of the reconcilers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The registry client (connection pools, tokens, per-registry limits).
    pub registry: RegistryClient,
    /// Tags per ImageRepository.
    pub store: TagStore,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Event publisher.
    pub events: Events,
    /// Command-line settings.
    pub options: Options,
    /// Retry delays after failures.
    pub backoff: Backoff,
    /// The webhook receivers' index, when `--receiver-addr` serves them.
    pub receivers: Option<crate::receiver::Index>,
    /// Cloud registry logins, cached until shortly before they expire.
    pub cloud_logins: tagpilot_core::cloud::Logins,
    /// The HTTP client of cloud token endpoints.
    pub cloud_http: reqwest::Client,
    /// The objects the core's decisions read.
    pub lookup: KubeLookup,
    /// What ImagePolicy gates learned from registries (digests per scan, image facts, good signatures).
    pub gates: tagpilot_core::gates::GateCache,
    /// Tag listings shared by ImageRepositories of the same image and credentials (one scan per image).
    pub shared_scans: tagpilot_core::registry::share::SharedScans,
}

impl Context {
    /// A context.
    pub fn new(
        client: Client,
        registry: RegistryClient,
        store: TagStore,
        metrics: Arc<Metrics>,
        instance: String,
        options: Options,
        receivers: Option<crate::receiver::Index>,
    ) -> Context {
        let cloud_logins =
            tagpilot_core::cloud::Logins::new(options.token_cache.0, options.token_cache.1);
        Context {
            events: Events::new(client.clone(), MANAGER, instance),
            lookup: KubeLookup::new(client.clone()),
            client,
            registry,
            store,
            metrics,
            options,
            backoff: Backoff::default(),
            receivers,
            cloud_logins,
            cloud_http: reqwest::Client::new(),
            gates: Default::default(),
            shared_scans: Default::default(),
        }
    }

    /// What scans run with.
    pub fn scanner(&self) -> tagpilot_core::registry::scan::Scanner<'_> {
        tagpilot_core::registry::scan::Scanner {
            registry: &self.registry,
            store: &self.store,
            shared: &self.shared_scans,
            max_tags: self.options.max_tags,
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

    /// Registry access's settings, with the cloud identity of `env`.
    pub fn access_settings<'a>(&'a self, env: &'a Env) -> AccessSettings<'a> {
        AccessSettings {
            autologin: self.options.autologin,
            default_service_account: self.options.default_service_account.as_deref(),
            logins: &self.cloud_logins,
            http: &self.cloud_http,
            env,
        }
    }
}
