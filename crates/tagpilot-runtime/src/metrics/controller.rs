//! controller-runtime's metric families, as Flux's controllers export them (sigs.k8s.io/controller-runtime
//! `pkg/internal/controller/metrics` and `pkg/internal/metrics/workqueue.go`), per controller name
//! (`imagerepository`, `imagepolicy`, `imageupdateautomation`, `receiver`).
//!
//! kube-runtime keeps its queue to itself, so the workqueue families are measured around each reconcile:
//! `workqueue_adds_total` counts reconciles started, `workqueue_retries_total` failed ones (each is retried),
//! `workqueue_work_duration_seconds` is the reconcile time, `workqueue_unfinished_work_seconds` and
//! `workqueue_longest_running_processor_seconds` come from the reconciles in flight. `workqueue_depth` is
//! 0 and `workqueue_queue_duration_seconds` has no observations: the time an object waits in kube-runtime's
//! scheduler is not visible.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use super::HistogramFamily;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ControllerLabel {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ResultLabels {
    pub controller: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct QueueLabels {
    pub name: String,
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DepthLabels {
    pub name: String,
    pub controller: String,
    pub priority: String,
}

/// controller-runtime's reconcile-time buckets.
fn reconcile_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
        0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
        15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
    ])
}

/// The workqueue's buckets: 1e-8 s to 1000 s.
fn queue_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-8, 10.0, 12))
}

/// The families, registered once per process.
pub(super) struct Families {
    pub reconcile_total: Family<ResultLabels, Counter>,
    pub errors: Family<ControllerLabel, Counter>,
    pub terminal_errors: Family<ControllerLabel, Counter>,
    pub panics: Family<ControllerLabel, Counter>,
    pub timeouts: Family<ControllerLabel, Counter>,
    pub reconcile_time: HistogramFamily<ControllerLabel>,
    pub max_concurrent: Family<ControllerLabel, Gauge>,
    pub active_workers: Family<ControllerLabel, Gauge>,
    pub depth: Family<DepthLabels, Gauge>,
    pub adds: Family<QueueLabels, Counter>,
    pub retries: Family<QueueLabels, Counter>,
    pub queue_duration: HistogramFamily<QueueLabels>,
    pub work_duration: HistogramFamily<QueueLabels>,
    pub unfinished: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    pub longest: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    pub in_flight: Mutex<HashMap<String, HashMap<u64, Instant>>>,
    pub next_id: AtomicU64,
}

impl Families {
    pub fn new() -> Families {
        Families {
            reconcile_total: Family::default(),
            errors: Family::default(),
            terminal_errors: Family::default(),
            panics: Family::default(),
            timeouts: Family::default(),
            reconcile_time: Family::new_with_constructor(reconcile_buckets as fn() -> Histogram),
            max_concurrent: Family::default(),
            active_workers: Family::default(),
            depth: Family::default(),
            adds: Family::default(),
            retries: Family::default(),
            queue_duration: Family::new_with_constructor(queue_buckets as fn() -> Histogram),
            work_duration: Family::new_with_constructor(queue_buckets as fn() -> Histogram),
            unfinished: Family::default(),
            longest: Family::default(),
            in_flight: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    pub fn register(&self, m: &super::Metrics) {
        m.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            self.reconcile_total.clone(),
        );
        m.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            self.errors.clone(),
        );
        m.register(
            "controller_runtime_terminal_reconcile_errors",
            "Total number of terminal reconciliation errors per controller",
            self.terminal_errors.clone(),
        );
        m.register(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            self.panics.clone(),
        );
        m.register(
            "controller_runtime_reconcile_timeouts",
            "Total number of reconciliation timeouts per controller",
            self.timeouts.clone(),
        );
        m.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            self.reconcile_time.clone(),
        );
        m.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            self.max_concurrent.clone(),
        );
        m.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            self.active_workers.clone(),
        );
        m.register(
            "workqueue_depth",
            "Current depth of workqueue",
            self.depth.clone(),
        );
        m.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            self.adds.clone(),
        );
        m.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            self.retries.clone(),
        );
        m.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            self.queue_duration.clone(),
        );
        m.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            self.work_duration.clone(),
        );
        m.register(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress",
            self.unfinished.clone(),
        );
        m.register(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            self.longest.clone(),
        );
    }

    /// Declares a controller: its series exist (at zero) before its first reconcile.
    pub fn declare(&self, controller: &str, concurrency: u16) {
        let c = ControllerLabel {
            controller: controller.into(),
        };
        for result in ["success", "error", "requeue", "requeue_after"] {
            let _ = self.reconcile_total.get_or_create(&ResultLabels {
                controller: controller.into(),
                result: result.into(),
            });
        }
        for f in [
            &self.errors,
            &self.terminal_errors,
            &self.panics,
            &self.timeouts,
        ] {
            let _ = f.get_or_create(&c);
        }
        let _ = self.reconcile_time.get_or_create(&c);
        self.max_concurrent
            .get_or_create(&c)
            .set(concurrency.into());
        let _ = self.active_workers.get_or_create(&c);
        let q = queue(controller);
        let _ = self.depth.get_or_create(&DepthLabels {
            name: controller.into(),
            controller: controller.into(),
            priority: "0".into(),
        });
        let _ = self.adds.get_or_create(&q);
        let _ = self.retries.get_or_create(&q);
        let _ = self.queue_duration.get_or_create(&q);
        let _ = self.work_duration.get_or_create(&q);
        let _ = self.unfinished.get_or_create(&q);
        let _ = self.longest.get_or_create(&q);
        self.in_flight
            .lock()
            .expect("in-flight reconciles")
            .entry(controller.into())
            .or_default();
    }

    /// Updates the gauges of the reconciles in flight (at each scrape).
    pub fn refresh(&self) {
        let now = Instant::now();
        for (controller, running) in self.in_flight.lock().expect("in-flight reconciles").iter() {
            let ages = running
                .values()
                .map(|t| now.duration_since(*t).as_secs_f64());
            let (sum, max) = ages.fold((0.0, 0.0f64), |(s, m), a| (s + a, m.max(a)));
            let q = queue(controller);
            self.unfinished.get_or_create(&q).set(sum);
            self.longest.get_or_create(&q).set(max);
        }
    }
}

pub(super) fn queue(controller: &str) -> QueueLabels {
    QueueLabels {
        name: controller.into(),
        controller: controller.into(),
    }
}

/// One reconcile in flight; records its end with [`Reconcile::finish`].
pub struct Reconcile {
    pub(super) metrics: Arc<super::Metrics>,
    pub(super) controller: String,
    pub(super) id: u64,
    pub(super) start: Instant,
}

impl Reconcile {
    pub(super) fn begin(metrics: Arc<super::Metrics>, controller: &str) -> Reconcile {
        let f = &metrics.controller;
        let id = f.next_id.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        f.in_flight
            .lock()
            .expect("in-flight reconciles")
            .entry(controller.into())
            .or_default()
            .insert(id, start);
        f.adds.get_or_create(&queue(controller)).inc();
        f.active_workers
            .get_or_create(&ControllerLabel {
                controller: controller.into(),
            })
            .inc();
        Reconcile {
            metrics,
            controller: controller.into(),
            id,
            start,
        }
    }

    /// Records the end: `result` is `success`, `error`, `requeue` or `requeue_after`.
    pub fn finish(self, result: &str) {
        let f = &self.metrics.controller;
        let took = self.start.elapsed().as_secs_f64();
        let c = ControllerLabel {
            controller: self.controller.clone(),
        };
        f.reconcile_total
            .get_or_create(&ResultLabels {
                controller: self.controller.clone(),
                result: result.into(),
            })
            .inc();
        if result == "error" {
            f.errors.get_or_create(&c).inc();
            f.retries.get_or_create(&queue(&self.controller)).inc();
        }
        f.reconcile_time.get_or_create(&c).observe(took);
        f.work_duration
            .get_or_create(&queue(&self.controller))
            .observe(took);
    }
}

impl Drop for Reconcile {
    fn drop(&mut self) {
        let f = &self.metrics.controller;
        if let Some(m) = f
            .in_flight
            .lock()
            .expect("in-flight reconciles")
            .get_mut(&self.controller)
        {
            m.remove(&self.id);
        }
        f.active_workers
            .get_or_create(&ControllerLabel {
                controller: self.controller.clone(),
            })
            .dec();
    }
}
