//! Flux's Grafana dashboards on tagpilot's controllers: a real Prometheus (Debian's `prometheus` package)
//! scrapes both controllers while they reconcile, labelled as Flux's PodMonitor labels pods (`namespace`,
//! `pod`), then every query of Flux's control-plane dashboard (fluxcd/flux2-monitoring-example
//! monitoring/configs/dashboards/control-plane.json) runs, each also per pod: both controllers answer.
//! Queries of Flux's other controllers (`controller="kustomization"`, ...) run with tagpilot's controller names;
//! cAdvisor's `container_memory_working_set_bytes` is the kubelet's, not a controller's, and is left out.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tagpilot_testinfra::{ControllerProcess, Infra, binary_path, unique_name};

use crate::kube_support::*;

const DEDICATED: &str = "tagpilot.test/dedicated";
const P: &str = "namespace=\"flux-system\",pod=~\".*-controller-.*\"";

/// Prometheus, stopped by its PID when dropped.
struct Prometheus {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &std::path::Path, targets: &[(&str, std::net::SocketAddr)]) -> Prometheus {
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (pod, addr) in targets {
            // The labels Flux's PodMonitor gives a controller pod's series.
            config.push_str(&format!(
                "- job_name: {pod}\n  static_configs:\n  - targets: ['{addr}']\n    labels:\n      \
                 namespace: flux-system\n      pod: {pod}\n"
            ));
        }
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let port = Infra::get().port("PROMETHEUS_PORT");
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect(
                "start prometheus (Debian's prometheus package; hack/testinfra/install-deps.sh)",
            );
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    /// The result vector of an instant query (empty on an error, which the caller's wait reports).
    async fn query(&self, q: &str) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", q)])
            .send()
            .await;
        let Ok(r) = r else { return Vec::new() };
        let v: Value = r.json().await.unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `q` returns a series for each of `pods` (label `pod`), or any data when `pods` is empty.
    async fn wait_for(&self, q: &str, pods: &[&str], timeout: Duration) {
        let t0 = Instant::now();
        loop {
            let result = self.query(q).await;
            let ok = if pods.is_empty() {
                !result.is_empty()
            } else {
                pods.iter()
                    .all(|p| result.iter().any(|s| s["metric"]["pod"] == *p))
            };
            if ok {
                return;
            }
            assert!(
                t0.elapsed() < timeout,
                "{q}: no data for {pods:?} within {timeout:?}; last result: {result:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn start(binary: &str, id: &str, dir: &std::path::Path, extra: &[String]) -> ControllerProcess {
    crds_installed();
    let mut args = vec![format!("--watch-label-selector={DEDICATED}={id}")];
    args.extend(extra.iter().cloned());
    ControllerProcess::start(
        &binary_path(binary),
        &Infra::get().kubeconfig_path(),
        &args,
        &[],
        &dir.join(format!("{}.log", unique_name(binary))),
    )
    .unwrap()
}

#[tokio::test]
async fn every_control_plane_dashboard_query_returns_data_for_both_controllers() {
    let infra = Infra::get();
    let client = infra.kube_client().await;
    let id = unique_name("dash");
    let ns = unique_name("dash");
    namespace(&client, &ns, &[]).await;
    let dir = infra.path("TAGPILOT_TESTINFRA").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let reflector = start(
        "image-reflector-controller",
        &id,
        &dir,
        &[format!("--storage-path={}", dir.join("data").display())],
    );
    let automation = start(
        "image-automation-controller",
        &id,
        &dir,
        &[format!("--work-dir={}", dir.join("tmp").display())],
    );
    let pods = [
        "image-reflector-controller-5d8f7c9b4-x2v7q",
        "image-automation-controller-7c6b9d8f5-k4m2n",
    ];
    let prom = Prometheus::start(
        &dir,
        &[
            (pods[0], reflector.metrics_addr),
            (pods[1], automation.metrics_addr),
        ],
    );

    // Work for both: a scan, policies (one of a missing repository: a 404), automations (one of a missing
    // GitRepository: a 404).
    let (image, _) = crate::automation::marked_app(&client, &id, &ns).await;
    let labels = format!("  labels:\n    {DEDICATED}: {id}\n");
    let policy = |name: &str, repo: &str| {
        format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\n{labels}\
             spec:\n  imageRepositoryRef:\n    name: {repo}\n  policy:\n    semver:\n      range: 1.0.x\n"
        )
    };
    let automation_yaml = |name: &str, source: &str| {
        format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: {name}\n  namespace: {ns}\n{labels}\
             spec:\n  interval: 1h\n  sourceRef:\n    kind: GitRepository\n    name: {source}\n  git:\n    commit:\n      \
             author:\n        email: bot@example.com\n        name: bot\n    push:\n      branch: main\n  update:\n    \
             strategy: Setters\n"
        )
    };
    apply_yaml(
        &client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: {ns}\n{labels}\
             spec:\n  image: {image}\n  interval: 1h\n  insecure: true\n"
        ),
    )
    .await;
    apply_yaml(&client, &policy("app", "app")).await;
    apply_yaml(&client, &policy("orphan", "no-such-repository")).await;
    apply_yaml(&client, &automation_yaml("auto", "source")).await;
    apply_yaml(&client, &automation_yaml("orphan", "no-such-source")).await;
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    wait_ready(&policies, "app").await;

    let t = Duration::from_secs(60);
    let both = &pods[..];
    // The dashboard's variable: label_values(workqueue_work_duration_seconds_count, namespace).
    prom.wait_for(
        "count by (namespace, pod) (workqueue_work_duration_seconds_count{namespace=\"flux-system\"})",
        both,
        t,
    )
    .await;
    // Each panel: the dashboard's query as written, then per pod.
    let panels = [
        (
            format!("sum(go_info{{{P}}})"),
            format!("sum by (pod) (go_info{{{P}}})"),
        ),
        (
            format!("max(workqueue_longest_running_processor_seconds{{{P}}})"),
            format!("max by (pod) (workqueue_longest_running_processor_seconds{{{P}}})"),
        ),
        (
            format!("sum(go_memstats_alloc_bytes{{{P}}})"),
            format!("sum by (pod) (go_memstats_alloc_bytes{{{P}}})"),
        ),
        (
            format!("sum(rate(rest_client_requests_total{{{P}}}[1m]))"),
            format!("sum by (pod) (rate(rest_client_requests_total{{{P}}}[1m]))"),
        ),
        (
            "sum(rate(rest_client_requests_total{namespace=\"flux-system\"}[1m]))".to_string(),
            "sum by (pod) (rate(rest_client_requests_total{namespace=\"flux-system\"}[1m]))"
                .to_string(),
        ),
        (
            format!("sum(rate(rest_client_requests_total{{{P},code!~\"2..\"}}[1m]))"),
            format!("sum by (pod) (rate(rest_client_requests_total{{{P},code!~\"2..\"}}[1m]))"),
        ),
        (
            format!("rate(process_cpu_seconds_total{{{P}}}[1m])"),
            format!("rate(process_cpu_seconds_total{{{P}}}[1m])"),
        ),
    ];
    for (dashboard, per_pod) in &panels {
        prom.wait_for(dashboard, &[], t).await;
        prom.wait_for(per_pod, both, t).await;
    }
    // The reconcile panels, with tagpilot's controller names.
    for (controller, pod) in [
        ("imagerepository", pods[0]),
        ("imagepolicy", pods[0]),
        ("imageupdateautomation", pods[1]),
    ] {
        for result in ["result!=\"error\"", "result=\"error\""] {
            let q = format!(
                "sum(increase(controller_runtime_reconcile_total{{controller=\"{controller}\",{result}}}[1m]))"
            );
            prom.wait_for(&q, &[], t).await;
            prom.wait_for(
                &format!(
                    "sum by (pod) (increase(controller_runtime_reconcile_total{{controller=\"{controller}\",{result}}}[1m]))"
                ),
                &[pod],
                t,
            )
            .await;
        }
        for quantile in ["0.5", "0.9", "0.99"] {
            let q = format!(
                "histogram_quantile({quantile}, sum(rate(controller_runtime_reconcile_time_seconds_bucket{{controller=\"{controller}\"}}[5m])) by (le))"
            );
            prom.wait_for(&q, &[], t).await;
        }
    }
    // A failed reconcile (the orphan policy and automation) shows as an error in both controllers.
    for (controller, pod) in [("imagepolicy", pods[0]), ("imageupdateautomation", pods[1])] {
        prom.wait_for(
            &format!("controller_runtime_reconcile_errors_total{{controller=\"{controller}\"}} > 0 or controller_runtime_reconcile_total{{controller=\"{controller}\",result=\"requeue_after\"}} > 0"),
            &[pod],
            t,
        )
        .await;
    }
}
