//! Prometheus metrics of the automation controller: Flux's reconcile metrics (from `tagpilot-runtime`) and the
//! outcome of each run.

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

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunResult {
    /// The remote head and the policies were unchanged: no clone.
    Skipped,
    /// Cloned; nothing to change.
    UpToDate,
    /// A commit was pushed.
    Pushed,
    /// The run failed.
    Failed,
}

/// The controller's metrics.
pub struct Metrics {
    /// The registry, with the reconcile metrics.
    pub base: Arc<tagpilot_runtime::Metrics>,
    runs: Family<ResultLabels, Counter>,
    run_duration: HistogramFamily<ResultLabels>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let m = Metrics {
            base: Arc::new(tagpilot_runtime::Metrics::new()),
            runs: Family::default(),
            run_duration: Family::new_with_constructor(duration_buckets as fn() -> Histogram),
        };
        m.base.register(
            "tagpilot_automation_runs",
            "Automation runs by result (skipped, up_to_date, pushed, failed)",
            m.runs.clone(),
        );
        m.base.register(
            "tagpilot_automation_run_duration_seconds",
            "The duration in seconds of an automation run (ls-remote, clone, update, commit, push)",
            m.run_duration.clone(),
        );
        m
    }

    /// Records one reconcile of an object.
    pub fn reconciled(&self, namespace: &str, name: &str, took: Duration) {
        self.base
            .reconciled("ImageUpdateAutomation", namespace, name, took);
    }

    /// Records a run's result and duration.
    pub fn ran(&self, result: RunResult, took: Duration) {
        let labels = ResultLabels {
            result: match result {
                RunResult::Skipped => "skipped",
                RunResult::UpToDate => "up_to_date",
                RunResult::Pushed => "pushed",
                RunResult::Failed => "failed",
            }
            .into(),
        };
        self.runs.get_or_create(&labels).inc();
        self.run_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_run_results() {
        let m = Metrics::new();
        m.reconciled("flux-system", "podinfo", Duration::from_millis(20));
        m.ran(RunResult::Pushed, Duration::from_millis(300));
        let text = m.base.encode();
        assert!(
            text.contains("tagpilot_automation_runs_total{result=\"pushed\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "gotk_reconcile_total{kind=\"ImageUpdateAutomation\",name=\"podinfo\",namespace=\"flux-system\"} 1"
        ), "{text}");
    }
}
