//! Prometheus metrics every controller exposes (Flux's `gotk_reconcile_duration_seconds{kind,name,namespace}`
//! and `gotk_reconcile_total`), in a registry each controller adds its own metrics to.

use std::sync::Mutex;
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

/// The metrics registry with the reconcile metrics registered.
pub struct Metrics {
    registry: Mutex<Registry>,
    reconcile_duration: HistogramFamily<ObjectLabels>,
    reconciles: Family<ObjectLabels, Counter>,
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
            reconcile_duration: Family::new_with_constructor(duration_buckets as fn() -> Histogram),
            reconciles: Family::default(),
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
        m
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
        let mut out = String::new();
        let r = self.registry.lock().expect("metrics registry");
        prometheus_client::encoding::text::encode(&mut out, &r).expect("encode metrics");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
