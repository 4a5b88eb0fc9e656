//! Prometheus metrics: Flux's `gotk_reconcile_duration_seconds{kind,name,namespace}` and the scan counters.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The controller's metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    reconcile_duration: HistogramFamily<ObjectLabels>,
    reconciles: Family<ObjectLabels, Counter>,
    scans: Family<ResultLabels, Counter>,
    scan_duration: HistogramFamily<ResultLabels>,
    registry_requests: Counter,
    tags_scanned: Counter,
}

fn reconcile_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            reconcile_duration: Family::new_with_constructor(
                reconcile_buckets as fn() -> Histogram,
            ),
            reconciles: Family::default(),
            scans: Family::default(),
            scan_duration: Family::new_with_constructor(reconcile_buckets as fn() -> Histogram),
            registry_requests: Counter::default(),
            tags_scanned: Counter::default(),
        };
        {
            let mut r = m.registry.lock().expect("metrics registry");
            r.register(
                "gotk_reconcile_duration_seconds",
                "The duration in seconds of a reconcile",
                m.reconcile_duration.clone(),
            );
            r.register(
                "gotk_reconcile",
                "Reconciles of an object",
                m.reconciles.clone(),
            );
            r.register(
                "tagpilot_registry_scans",
                "Registry scans by result (success, failure)",
                m.scans.clone(),
            );
            r.register(
                "tagpilot_registry_scan_duration_seconds",
                "The duration in seconds of a registry scan",
                m.scan_duration.clone(),
            );
            r.register(
                "tagpilot_registry_requests",
                "HTTP requests made to registries (pages, tokens, retries, digests)",
                m.registry_requests.clone(),
            );
            r.register(
                "tagpilot_registry_tags_scanned",
                "Tags listed by registry scans",
                m.tags_scanned.clone(),
            );
        }
        m
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

    /// Records a scan: its result, duration, requests and tags.
    pub fn scanned(&self, ok: bool, took: Duration, requests: u32, tags: usize) {
        let labels = ResultLabels {
            result: if ok { "success" } else { "failure" }.into(),
        };
        self.scans.get_or_create(&labels).inc();
        self.scan_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.registry_requests.inc_by(u64::from(requests));
        self.tags_scanned.inc_by(tags as u64);
    }

    /// Counts registry requests outside scans (digests).
    pub fn registry_request(&self) {
        self.registry_requests.inc();
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
    fn exposes_flux_reconcile_duration() {
        let m = Metrics::new();
        m.reconciled("ImagePolicy", "apps", "podinfo", Duration::from_millis(20));
        m.scanned(true, Duration::from_millis(50), 3, 42);
        let text = m.encode();
        assert!(text.contains(
            "gotk_reconcile_duration_seconds_count{kind=\"ImagePolicy\",name=\"podinfo\",namespace=\"apps\"} 1"
        ), "{text}");
        assert!(
            text.contains("tagpilot_registry_scans_total{result=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tagpilot_registry_requests_total 3"),
            "{text}"
        );
    }
}
