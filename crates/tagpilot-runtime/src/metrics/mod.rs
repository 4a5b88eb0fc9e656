//! Prometheus metrics every controller exposes, in a registry each controller adds its own metrics to:
//! Flux's `gotk_reconcile_duration_seconds{kind,name,namespace}` (and `gotk_reconcile_total`), and what
//! Flux's dashboards and alerts query of controller-runtime and the Go client: [`controller`]
//! (`controller_runtime_*`, `workqueue_*`), [`rest`] (`rest_client_requests_total`), [`process`]
//! (`process_*`, `go_info`, `go_memstats_alloc_bytes`), and `leader_election_master_status{name}`.

pub mod controller;
pub mod process;
pub mod rest;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: String,
    name: String,
    namespace: String,
}

/// A histogram family whose histograms have [`duration_buckets`].
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets for durations from 5 ms to about 40 s.
pub fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Flux's buckets of `gotk_reconcile_duration_seconds`: 10 from 10 ms to 30 min, evenly spaced in log scale
/// (Prometheus's `ExponentialBucketsRange(10e-3, 1800, 10)`).
fn flux_reconcile_buckets() -> Histogram {
    let factor = (1800.0f64 / 0.01).powf(1.0 / 9.0);
    Histogram::new((0..10).map(move |i| 0.01 * factor.powi(i)))
}

/// The metrics registry with the reconcile metrics registered.
pub struct Metrics {
    registry: Mutex<Registry>,
    reconcile_duration: HistogramFamily<ObjectLabels>,
    reconciles: Family<ObjectLabels, Counter>,
    controller: controller::Families,
    process: process::Process,
    requests: rest::Requests,
    leader: Family<LeaseLabel, prometheus_client::metrics::gauge::Gauge>,
    failures: Family<FailureLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    controller: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabel {
    name: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with the reconcile metrics.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            reconcile_duration: Family::new_with_constructor(
                flux_reconcile_buckets as fn() -> Histogram,
            ),
            reconciles: Family::default(),
            controller: controller::Families::new(),
            process: process::Process::default(),
            requests: Family::default(),
            leader: Family::default(),
            failures: Family::default(),
        };
        m.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a reconcile",
            m.reconcile_duration.clone(),
        );
        m.register(
            "gotk_reconcile",
            "Reconciles of an object",
            m.reconciles.clone(),
        );
        m.controller.register(&m);
        m.process.register(&m);
        m.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            m.requests.clone(),
        );
        m.register(
            "tagpilot_reconcile_failures",
            "Reconciles that ended in a failure written to the status (Ready=False), by controller and reason",
            m.failures.clone(),
        );
        m.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
            m.leader.clone(),
        );
        m
    }

    /// Declares a controller (`imagepolicy`, ...) reconciling `concurrency` objects at once: its
    /// controller-runtime series exist from the start, at zero.
    pub fn declare_controller(&self, controller: &str, concurrency: u16) {
        self.controller.declare(controller, concurrency);
    }

    /// Starts measuring one reconcile of `controller`.
    pub fn reconcile_started(self: &Arc<Self>, controller: &str) -> controller::Reconcile {
        controller::Reconcile::begin(self.clone(), controller)
    }

    /// The tower layer that counts the API client's requests to `host`.
    pub fn count_requests(&self, host: &str) -> rest::CountRequests {
        rest::CountRequests::new(self.requests.clone(), host)
    }

    /// Sets `leader_election_master_status{name=lease}`.
    pub fn leading(&self, lease: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabel { name: lease.into() })
            .set(leading.into());
    }

    /// Adds a controller's own metric.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .lock()
            .expect("metrics registry")
            .register(name, help, metric);
    }

    /// Records one reconcile of an object.
    pub fn reconciled(&self, kind: &str, namespace: &str, name: &str, took: Duration) {
        let labels = ObjectLabels {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.into(),
        };
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.reconciles.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        self.process.refresh();
        self.controller.refresh();
        let mut out = String::new();
        let r = self.registry.lock().expect("metrics registry");
        prometheus_client::encoding::text::encode(&mut out, &r).expect("encode metrics");
        out
    }
}

tokio::task_local! {
    /// The reason of the failure the reconcile running in this task recorded ([`crate::finish`]).
    static FAILED: std::cell::Cell<Option<&'static str>>;
}

/// Notes that the reconcile running in this task failed with `reason` (its status says Ready=False): it
/// counts as `error`, as a Flux reconciler's returned error does, and in `tagpilot_reconcile_failures_total`.
/// Outside [`measured`], nothing happens.
pub fn note_failure(reason: &'static str) {
    let _ = FAILED.try_with(|f| f.set(Some(reason)));
}

/// Runs one reconcile of `controller` under controller-runtime's metrics: `error` for an error or a recorded
/// failure, `success` when nothing is scheduled, `requeue_after` when the reconcile asks to run again later.
pub async fn measured<E>(
    metrics: &Arc<Metrics>,
    controller: &str,
    reconcile: impl std::future::Future<Output = Result<kube::runtime::controller::Action, E>>,
) -> Result<kube::runtime::controller::Action, E> {
    let r = metrics.reconcile_started(controller);
    let failed = std::cell::Cell::new(None);
    let (out, failed) = FAILED
        .scope(failed, async {
            let out = reconcile.await;
            (out, FAILED.with(|f| f.get()))
        })
        .await;
    if let Some(reason) = failed {
        metrics
            .failures
            .get_or_create(&FailureLabels {
                controller: controller.into(),
                reason: reason.into(),
            })
            .inc();
    }
    r.finish(match &out {
        Err(_) => "error",
        Ok(_) if failed.is_some() => "error",
        Ok(a) if *a == kube::runtime::controller::Action::await_change() => "success",
        Ok(_) => "requeue_after",
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recorded_failure_counts_as_an_error_and_by_reason() {
        use kube::runtime::controller::Action;
        let m = Arc::new(Metrics::new());
        m.declare_controller("imagepolicy", 1);
        let failed = measured(&m, "imagepolicy", async {
            note_failure("AccessDenied");
            Ok::<_, std::convert::Infallible>(Action::await_change())
        });
        failed.await.unwrap();
        let ok = measured(&m, "imagepolicy", async {
            Ok::<_, std::convert::Infallible>(Action::await_change())
        });
        ok.await.unwrap();
        let text = m.encode();
        assert!(
            text.contains(
                "tagpilot_reconcile_failures_total{controller=\"imagepolicy\",reason=\"AccessDenied\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "controller_runtime_reconcile_total{controller=\"imagepolicy\",result=\"error\"} 1"
            ),
            "{text}"
        );
        note_failure("outside a reconcile: nothing happens");
    }

    #[test]
    fn exposes_flux_reconcile_metrics_and_added_ones() {
        let m = Metrics::new();
        let extra: Counter = Counter::default();
        m.register("tagpilot_things", "Things", extra.clone());
        extra.inc_by(3);
        m.reconciled("ImagePolicy", "apps", "podinfo", Duration::from_millis(20));
        let text = m.encode();
        assert!(text.contains(
            "gotk_reconcile_duration_seconds_count{kind=\"ImagePolicy\",name=\"podinfo\",namespace=\"apps\"} 1"
        ), "{text}");
        assert!(
            text.contains(
                "gotk_reconcile_total{kind=\"ImagePolicy\",name=\"podinfo\",namespace=\"apps\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("tagpilot_things_total 3"), "{text}");
    }

    #[test]
    fn reconcile_duration_buckets_are_fluxs() {
        let m = Metrics::new();
        m.reconciled("ImagePolicy", "apps", "p", Duration::from_millis(5));
        let text = m.encode();
        let les: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("gotk_reconcile_duration_seconds_bucket"))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next()?.parse().ok())
            .filter(|v: &f64| v.is_finite())
            .collect();
        assert_eq!(les.len(), 10, "{text}");
        assert!(
            (les[0] - 0.01).abs() < 1e-9 && (les[9] - 1800.0).abs() < 1e-6,
            "{les:?}"
        );
    }

    #[test]
    fn controller_runtime_families_as_flux_exports_them() {
        let m = Arc::new(Metrics::new());
        m.declare_controller("imagepolicy", 4);
        let text = m.encode();
        for series in [
            "controller_runtime_reconcile_total{controller=\"imagepolicy\",result=\"error\"} 0",
            "controller_runtime_max_concurrent_reconciles{controller=\"imagepolicy\"} 4",
            "workqueue_longest_running_processor_seconds{name=\"imagepolicy\",controller=\"imagepolicy\"} 0",
            "go_info{version=\"rust\"} 1",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
        let r = m.reconcile_started("imagepolicy");
        std::thread::sleep(Duration::from_millis(20));
        let text = m.encode();
        assert!(
            text.contains("controller_runtime_active_workers{controller=\"imagepolicy\"} 1"),
            "{text}"
        );
        assert!(!text.contains("workqueue_longest_running_processor_seconds{name=\"imagepolicy\",controller=\"imagepolicy\"} 0\n"));
        r.finish("error");
        let text = m.encode();
        for series in [
            "controller_runtime_reconcile_total{controller=\"imagepolicy\",result=\"error\"} 1",
            "controller_runtime_reconcile_errors_total{controller=\"imagepolicy\"} 1",
            "workqueue_retries_total{name=\"imagepolicy\",controller=\"imagepolicy\"} 1",
            "controller_runtime_active_workers{controller=\"imagepolicy\"} 0",
            "workqueue_adds_total{name=\"imagepolicy\",controller=\"imagepolicy\"} 1",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("process_cpu_seconds_total "), "{text}");
    }
}
