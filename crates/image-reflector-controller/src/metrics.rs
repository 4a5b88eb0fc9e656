//! Prometheus metrics of the reflector: Flux's reconcile metrics (from `tagpilot-runtime`) and the scan
//! counters.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use tagpilot_runtime::metrics::{HistogramFamily, duration_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// The controller's metrics.
pub struct Metrics {
    /// The registry, with the reconcile metrics.
    pub base: Arc<tagpilot_runtime::Metrics>,
    scans: Family<ResultLabels, Counter>,
    scan_duration: HistogramFamily<ResultLabels>,
    registry_requests: Counter,
    tags_scanned: Counter,
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
            base: Arc::new(tagpilot_runtime::Metrics::new()),
            scans: Family::default(),
            scan_duration: Family::new_with_constructor(duration_buckets as fn() -> Histogram),
            registry_requests: Counter::default(),
            tags_scanned: Counter::default(),
        };
        m.base.register(
            "tagpilot_registry_scans",
            "Registry scans by result (success, failure)",
            m.scans.clone(),
        );
        m.base.register(
            "tagpilot_registry_scan_duration_seconds",
            "The duration in seconds of a registry scan",
            m.scan_duration.clone(),
        );
        m.base.register(
            "tagpilot_registry_requests",
            "HTTP requests made to registries (pages, tokens, retries, digests)",
            m.registry_requests.clone(),
        );
        m.base.register(
            "tagpilot_registry_tags_scanned",
            "Tags listed by registry scans",
            m.tags_scanned.clone(),
        );
        m
    }

    /// Records one reconcile of an object.
    pub fn reconciled(&self, kind: &str, namespace: &str, name: &str, took: Duration) {
        self.base.reconciled(kind, namespace, name, took);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_flux_reconcile_duration() {
        let m = Metrics::new();
        m.reconciled("ImagePolicy", "apps", "podinfo", Duration::from_millis(20));
        m.scanned(true, Duration::from_millis(50), 3, 42);
        let text = m.base.encode();
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
