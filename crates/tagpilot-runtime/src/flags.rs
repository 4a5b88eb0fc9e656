//! The flags both controllers take, with the names, defaults and meaning of Flux's (fluxcd/pkg's `BindFlags`
//! and the controllers' `main.go`), so that Flux's Deployments start tagpilot unchanged; and Flux's feature
//! gates.
//!
//! Flags as pflag parses them: `--x=v` or `--x v`, booleans bare or `=true|false`, Go durations; an unknown
//! flag exits 2. A flag that only tunes one of Flux's internals is accepted and has no effect; its `--help`
//! says so.

use std::collections::BTreeMap;
use std::time::Duration;

/// The flags every controller takes.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Objects of each kind reconciled at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,
    /// Watch every namespace; with `false`, only the namespace in $RUNTIME_NAMESPACE (default flux-system).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub watch_all_namespaces: bool,
    /// Only reconcile objects matching this label selector (sharding: `sharding.fluxcd.io/key=shard1`); also
    /// names the leader-election Lease apart.
    #[arg(long, default_value = "")]
    pub watch_label_selector: String,
    /// Label selector of the Secrets and ConfigMaps Flux's controllers watch for changes. Accepted as Flux's
    /// flag; no effect (neither Flux's image controllers nor tagpilot's watch them).
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,
    /// Run only while holding the Lease `<controller>-leader-election`.
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub enable_leader_election: bool,
    /// Give the Lease up at shutdown, so that a standby takes over at once.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub leader_election_release_on_cancel: bool,
    /// How long a Lease holds without renewal before a standby may take it.
    #[arg(long, default_value = "35s", value_parser = duration)]
    pub leader_election_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leadership (and exits).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub leader_election_renew_deadline: Duration,
    /// How often a standby tries to take the Lease.
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub leader_election_retry_period: Duration,
    /// Namespace of the leader-election Lease (tagpilot's flag; default: $RUNTIME_NAMESPACE, else flux-system).
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// Refuse references to objects in another namespace (an ImagePolicy's repository, an automation's
    /// GitRepository).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub no_cross_namespace_refs: bool,
    /// Address of the Prometheus endpoint (`/metrics`).
    #[arg(long, default_value = ":8080")]
    pub metrics_addr: String,
    /// Address of the health endpoints (`/healthz`, `/readyz`).
    #[arg(long, default_value = ":9440")]
    pub health_addr: String,
    /// Address of Flux's notification-controller: every event is also posted there (as Flux's recorder does);
    /// empty: Kubernetes Events only.
    #[arg(long, default_value = "")]
    pub events_addr: String,
    /// Log level: trace, debug, info, error (and warn).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Log encoding: json or console.
    #[arg(long, default_value = "json")]
    pub log_encoding: String,
    /// Requests per second to the API server. As Flux's controllers on any cluster with API Priority and
    /// Fairness (Kubernetes 1.20 and later), the client does not throttle; accepted for compatibility.
    #[arg(long, default_value_t = 50.0)]
    pub kube_api_qps: f32,
    /// Burst of requests to the API server; see --kube-api-qps.
    #[arg(long, default_value_t = 300)]
    pub kube_api_burst: i32,
    /// The first retry delay of an object whose reconcile failed; each further failure doubles it.
    #[arg(long, default_value = "750ms", value_parser = duration)]
    pub min_retry_delay: Duration,
    /// The longest retry delay of an object whose reconcile keeps failing.
    #[arg(long, default_value = "15m", value_parser = duration)]
    pub max_retry_delay: Duration,
    /// The ServiceAccount used when an object names none (spec.serviceAccountName); needs the feature gate
    /// ObjectLevelWorkloadIdentity=true, as in Flux.
    #[arg(long, default_value = "")]
    pub default_service_account: String,
    /// How many cloud registry logins (ECR, GCR/Artifact Registry, ACR) are cached (0: none).
    #[arg(long, default_value_t = 100)]
    pub token_cache_max_size: usize,
    /// The longest a cached cloud login is kept, whatever its own expiry.
    #[arg(long, default_value = "1h", value_parser = duration)]
    pub token_cache_max_duration: Duration,
    /// Feature gates, `Name=true,Other=false` (repeats merge); an unknown gate is refused.
    #[arg(long, value_parser = gate_list)]
    pub feature_gates: Vec<BTreeMap<String, bool>>,
    /// After SIGTERM or SIGINT, how long in-flight reconciles may finish before the process exits anyway,
    /// whatever the API server does (tagpilot's flag; Flux's Deployments give pods 10 s).
    #[arg(long, default_value = "8s", value_parser = duration)]
    pub graceful_shutdown_timeout: Duration,
}

/// Parses a Go duration (`750ms`, `1h30m`).
pub fn duration(v: &str) -> Result<Duration, String> {
    tagpilot_core::api::duration::parse(v).map_err(|e| e.to_string())
}

/// Parses one `--feature-gates` value: `A=true,B=false` (pflag's mapStringBool).
fn gate_list(v: &str) -> Result<BTreeMap<String, bool>, String> {
    let mut out = BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, b) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected Name=true or Name=false"))?;
        let b = match b.trim() {
            "true" | "True" | "TRUE" | "1" | "t" | "T" => true,
            "false" | "False" | "FALSE" | "0" | "f" | "F" => false,
            other => return Err(format!("{k}={other}: expected true or false")),
        };
        out.insert(k.trim().to_string(), b);
    }
    Ok(out)
}

/// A feature gate a controller knows: its name, default, and what it does in tagpilot.
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    /// The gate's name, as Flux spells it.
    pub name: &'static str,
    /// Its default.
    pub default: bool,
    /// What it changes in tagpilot.
    pub effect: &'static str,
}

/// Flux's gate of both controllers (fluxcd/pkg auth).
pub const OBJECT_LEVEL_WORKLOAD_IDENTITY: Gate = Gate {
    name: "ObjectLevelWorkloadIdentity",
    default: false,
    effect: "allows --default-service-account",
};

/// Flux's gate of both controllers: Flux caches Secrets and ConfigMaps; tagpilot always reads them directly
/// (as Flux with the gate off).
pub const CACHE_SECRETS_AND_CONFIG_MAPS: Gate = Gate {
    name: "CacheSecretsAndConfigMaps",
    default: false,
    effect: "none: Secrets are read when used",
};

/// The feature gates in force: the controller's known gates with their defaults, overridden by
/// `--feature-gates`.
#[derive(Clone, Debug)]
pub struct FeatureGates {
    gates: BTreeMap<&'static str, bool>,
}

impl FeatureGates {
    /// The gates of a controller from the `--feature-gates` values. An unknown (or mis-cased) gate is refused
    /// with Flux's message: `feature-gate 'X' not supported`.
    pub fn new(known: &[Gate], given: &[BTreeMap<String, bool>]) -> Result<FeatureGates, String> {
        let mut gates: BTreeMap<&'static str, bool> =
            known.iter().map(|g| (g.name, g.default)).collect();
        for map in given {
            for (k, v) in map {
                let Some(g) = known.iter().find(|g| g.name == k) else {
                    return Err(format!("feature-gate '{k}' not supported"));
                };
                gates.insert(g.name, *v);
            }
        }
        Ok(FeatureGates { gates })
    }

    /// Whether a gate is on.
    pub fn enabled(&self, gate: &Gate) -> bool {
        self.gates.get(gate.name).copied().unwrap_or(gate.default)
    }
}

impl CommonArgs {
    /// The feature gates in force, and the checks Flux makes of them at start: `--default-service-account`
    /// needs ObjectLevelWorkloadIdentity.
    pub fn feature_gates(&self, known: &[Gate]) -> Result<FeatureGates, String> {
        let gates = FeatureGates::new(known, &self.feature_gates)?;
        if !self.default_service_account.is_empty()
            && !gates.enabled(&OBJECT_LEVEL_WORKLOAD_IDENTITY)
        {
            return Err(format!(
                "--default-service-account {:?} requires the feature gate {}=true",
                self.default_service_account, OBJECT_LEVEL_WORKLOAD_IDENTITY.name
            ));
        }
        Ok(gates)
    }

    /// The retry backoff of failed reconciles (`--min-retry-delay`, `--max-retry-delay`).
    pub fn backoff(&self) -> crate::Backoff {
        crate::Backoff::new(self.min_retry_delay, self.max_retry_delay)
    }

    /// The API of a kind over the watched namespaces: all, or `runtime_namespace`.
    pub fn api<K>(&self, client: &kube::Client, runtime_namespace: &str) -> kube::Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        if self.watch_all_namespaces {
            kube::Api::all(client.clone())
        } else {
            kube::Api::namespaced(client.clone(), runtime_namespace)
        }
    }

    /// The watch settings of the reconciled kinds (`--watch-label-selector`).
    pub fn watcher_config(&self) -> kube::runtime::watcher::Config {
        let wc = kube::runtime::watcher::Config::default();
        if self.watch_label_selector.is_empty() {
            wc
        } else {
            wc.labels(&self.watch_label_selector)
        }
    }

    /// The controller settings (`--concurrent`).
    pub fn controller_config(&self) -> kube::runtime::controller::Config {
        kube::runtime::controller::Config::default().concurrency(self.concurrent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(args_override_self = true)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    const KNOWN: &[Gate] = &[
        OBJECT_LEVEL_WORKLOAD_IDENTITY,
        CACHE_SECRETS_AND_CONFIG_MAPS,
    ];

    #[test]
    fn fluxs_deployment_args_parse_with_fluxs_defaults() {
        let c = Cli::try_parse_from([
            "x",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
        ])
        .unwrap()
        .common;
        assert!(c.watch_all_namespaces && c.enable_leader_election);
        assert_eq!(c.leader_election_lease_duration, Duration::from_secs(35));
        assert_eq!(c.min_retry_delay, Duration::from_millis(750));
        assert_eq!(c.max_retry_delay, Duration::from_secs(900));
        assert_eq!(c.token_cache_max_duration, Duration::from_secs(3600));
        assert_eq!((c.kube_api_qps, c.kube_api_burst), (50.0, 300));
        let c = Cli::try_parse_from([
            "x",
            "--log-encoding=console",
            "--log-encoding=json",
            "--watch-all-namespaces=false",
            "--concurrent",
            "10",
        ])
        .unwrap()
        .common;
        assert!(!c.watch_all_namespaces);
        assert_eq!(c.concurrent, 10);
        assert_eq!(c.log_encoding, "json", "the last of a repeated flag wins");
        let e = Cli::try_parse_from(["x", "--no-such-flag"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn feature_gates_merge_and_unknown_ones_are_refused() {
        let c = Cli::try_parse_from([
            "x",
            "--feature-gates=CacheSecretsAndConfigMaps=true",
            "--feature-gates",
            "ObjectLevelWorkloadIdentity=true,CacheSecretsAndConfigMaps=false",
        ])
        .unwrap()
        .common;
        let g = c.feature_gates(KNOWN).unwrap();
        assert!(g.enabled(&OBJECT_LEVEL_WORKLOAD_IDENTITY));
        assert!(!g.enabled(&CACHE_SECRETS_AND_CONFIG_MAPS));
        for bad in ["NoSuchGate=true", "cachesecretsandconfigmaps=true"] {
            let c = Cli::try_parse_from(["x", &format!("--feature-gates={bad}")])
                .unwrap()
                .common;
            let name = bad.split('=').next().unwrap();
            assert_eq!(
                c.feature_gates(KNOWN).unwrap_err(),
                format!("feature-gate '{name}' not supported")
            );
        }
        let c = Cli::try_parse_from(["x", "--default-service-account=puller"])
            .unwrap()
            .common;
        let e = c.feature_gates(KNOWN).unwrap_err();
        assert!(e.contains("ObjectLevelWorkloadIdentity=true"), "{e}");
    }
}
